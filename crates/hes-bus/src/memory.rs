//! The in-process bus of the embedded mode: every topic is an in-memory log split into
//! partitions by a stable hash of the key, read through consumer groups with committed
//! offsets, the way Kafka is. Nothing survives the process.
//!
//! [`MemoryBus::new`] keeps every record (tests and one-shot commands read them back with
//! [`MemoryBus::read`]); [`MemoryBus::bounded`] drops each record once every consumer group of
//! its topic has committed past it, so a long-running process holds only what is not yet
//! consumed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::{BoxFuture, Bus, BusError, Consumer, Delivery, Record};

/// Partitions of a topic that nobody created with `ensure_topics` (first publish or
/// subscription creates it), unless `MemoryBus::with_partitions` says otherwise.
pub const DEFAULT_PARTITIONS: i32 = 8;

type PartitionId = (String, i32);

#[derive(Debug, Default, Clone)]
struct Partition {
    /// The offset of `records`' first entry (records before it were dropped).
    base: i64,
    records: VecDeque<Arc<Record>>,
}

impl Partition {
    fn get(&self, offset: i64) -> Option<&Arc<Record>> {
        let i = usize::try_from(offset.checked_sub(self.base)?).ok()?;
        self.records.get(i)
    }

    /// Drops the records before `offset`.
    fn trim_to(&mut self, offset: i64) {
        while self.base < offset && self.records.pop_front().is_some() {
            self.base += 1;
        }
    }
}

#[derive(Debug)]
struct Topic {
    /// Every record in publish order, what `MemoryBus::read` returns (unbounded buses only).
    log: Option<Vec<Arc<Record>>>,
    /// How many records were ever published.
    published: usize,
    partitions: Vec<Partition>,
}

impl Topic {
    fn new(partitions: i32, keep_log: bool) -> Self {
        let n = usize::try_from(partitions.max(1)).unwrap_or(1);
        Self {
            log: keep_log.then(Vec::new),
            published: 0,
            partitions: vec![Partition::default(); n],
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    /// Live members and the topics each subscribed to.
    members: BTreeMap<u64, Vec<String>>,
    /// Owner of each partition, with the epoch of that assignment: a new epoch whenever a
    /// partition changes hands, so that the new owner starts from the committed offset.
    owners: HashMap<PartitionId, (u64, u64)>,
    /// The next offset to read of each partition (Kafka's committed offset).
    committed: HashMap<PartitionId, i64>,
}

#[derive(Debug)]
struct State {
    topics: HashMap<String, Topic>,
    groups: HashMap<String, Group>,
    default_partitions: i32,
    next_member: u64,
    next_epoch: u64,
    /// Drop records every group has committed past (and keep no publish-order log).
    bounded: bool,
}

impl State {
    fn topic(&mut self, name: &str) -> &mut Topic {
        let (n, keep) = (self.default_partitions, !self.bounded);
        self.topics
            .entry(name.to_string())
            .or_insert_with(|| Topic::new(n, keep))
    }

    /// Drops the records of a partition that every group reading its topic has committed.
    fn trim(&mut self, id: &PartitionId) {
        let mut lowest: Option<i64> = None;
        for g in self.groups.values() {
            let reads = g.members.values().any(|ts| ts.contains(&id.0))
                || g.committed.keys().any(|(t, _)| *t == id.0);
            if reads {
                let c = g.committed.get(id).copied().unwrap_or(0);
                lowest = Some(lowest.map_or(c, |l| l.min(c)));
            }
        }
        let (Some(lowest), Some(topic)) = (lowest, self.topics.get_mut(&id.0)) else {
            return;
        };
        if let Some(p) = usize::try_from(id.1)
            .ok()
            .and_then(|p| topic.partitions.get_mut(p))
        {
            p.trim_to(lowest);
        }
    }

    /// Spreads the partitions of every subscribed topic over the group's members that
    /// subscribed to it. A partition keeps its owner (and epoch) when the owner stays.
    fn rebalance(&mut self, group: &str) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let mut wanted: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (member, topics) in &g.members {
            for t in topics {
                wanted.entry(t.as_str()).or_default().push(*member);
            }
        }
        let mut owners = HashMap::new();
        for (topic, members) in wanted {
            let n = self.topics.get(topic).map_or(0, |t| t.partitions.len());
            for p in 0..n {
                let Some(&member) = members.get(p % members.len().max(1)) else {
                    continue;
                };
                let Ok(p) = i32::try_from(p) else { continue };
                let id = (topic.to_string(), p);
                let epoch = match g.owners.get(&id) {
                    Some(&(old, epoch)) if old == member => epoch,
                    _ => {
                        self.next_epoch += 1;
                        self.next_epoch
                    }
                };
                owners.insert(id, (member, epoch));
            }
        }
        g.owners = owners;
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// FNV-1a: stable across runs and platforms, so a key always lands in the same partition.
fn partition_of(key: &str, partitions: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let n = u64::try_from(partitions.max(1)).unwrap_or(1);
    usize::try_from(h % n).unwrap_or(0)
}

/// The in-process bus of the embedded mode: topics are partitioned in-memory logs, read by
/// offset (`read`) or through consumer groups (`subscribe`).
#[derive(Debug, Clone)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::with_partitions(DEFAULT_PARTITIONS)
    }
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus whose implicitly created topics have `partitions` partitions (at least 1).
    pub fn with_partitions(partitions: i32) -> Self {
        Self::build(partitions, false)
    }

    /// A bus that drops each record once every consumer group of its topic has committed
    /// past it (a group that subscribes later starts from the oldest record still held).
    /// [`MemoryBus::read`] returns nothing on it. For long-running processes.
    pub fn bounded() -> Self {
        Self::build(DEFAULT_PARTITIONS, true)
    }

    fn build(partitions: i32, bounded: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    topics: HashMap::new(),
                    groups: HashMap::new(),
                    default_partitions: partitions.max(1),
                    next_member: 0,
                    next_epoch: 0,
                    bounded,
                }),
                notify: Notify::new(),
            }),
        }
    }

    /// Records held in `topic` (published and not yet dropped).
    pub fn held(&self, topic: &str) -> usize {
        let st = self.shared.lock();
        st.topics
            .get(topic)
            .map_or(0, |t| t.partitions.iter().map(|p| p.records.len()).sum())
    }

    /// Records of `topic` from `offset` on (across all partitions, in publish order), and
    /// the next offset. Nothing on a [`MemoryBus::bounded`] bus.
    pub fn read(&self, topic: &str, offset: usize) -> (Vec<Record>, usize) {
        let st = self.shared.lock();
        let log = st
            .topics
            .get(topic)
            .and_then(|t| t.log.as_deref())
            .unwrap_or_default();
        let from = offset.min(log.len());
        let records = log
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|r| Record::clone(r))
            .collect();
        (records, log.len())
    }

    /// How many records were ever published on `topic`.
    pub fn len(&self, topic: &str) -> usize {
        self.shared
            .lock()
            .topics
            .get(topic)
            .map_or(0, |t| t.published)
    }

    /// Decodes every record of `topic` (records that do not decode are left out).
    pub fn decode_all<T: crate::Payload>(&self, topic: &str) -> Vec<T> {
        self.read(topic, 0)
            .0
            .iter()
            .filter_map(|r| T::decode_record(&r.payload).ok())
            .flatten()
            .collect()
    }

    /// Waits until something is published (or `timeout` passes).
    pub async fn changed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.shared.notify.notified()).await;
    }

    /// The partition `key` goes to in `topic` (`None` when the topic does not exist yet).
    pub fn partition_for(&self, topic: &str, key: &str) -> Option<i32> {
        let st = self.shared.lock();
        let n = st.topics.get(topic)?.partitions.len();
        i32::try_from(partition_of(key, n)).ok()
    }

    /// The committed offset (next offset to read) of a group's partition, if any.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        let st = self.shared.lock();
        let g = st.groups.get(group)?;
        g.committed.get(&(topic.to_string(), partition)).copied()
    }
}

impl Bus for MemoryBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<Record>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        {
            let mut st = self.shared.lock();
            let t = st.topic(topic);
            let n = t.partitions.len();
            for r in records {
                let p = partition_of(&r.key, n);
                let r = Arc::new(r);
                if let Some(log) = t.log.as_mut() {
                    log.push(Arc::clone(&r));
                }
                t.published += 1;
                if let Some(part) = t.partitions.get_mut(p) {
                    part.records.push_back(r);
                }
            }
        }
        self.shared.notify.notify_waiters();
        Box::pin(async { Ok(()) })
    }

    fn subscribe(
        &self,
        topics: &[&str],
        group: &str,
    ) -> BoxFuture<'_, Result<Box<dyn Consumer>, BusError>> {
        let result = if topics.is_empty() {
            Err(BusError::Refused("subscribe: no topics".into()))
        } else {
            let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
            let member = {
                let mut st = self.shared.lock();
                for t in &topics {
                    st.topic(t);
                }
                st.next_member += 1;
                let member = st.next_member;
                st.groups
                    .entry(group.to_string())
                    .or_default()
                    .members
                    .insert(member, topics);
                st.rebalance(group);
                member
            };
            self.shared.notify.notify_waiters();
            Ok(Box::new(MemoryConsumer {
                shared: Arc::clone(&self.shared),
                group: group.to_string(),
                member,
                positions: HashMap::new(),
                cursor: 0,
            }) as Box<dyn Consumer>)
        };
        Box::pin(std::future::ready(result))
    }

    fn ensure_topics(
        &self,
        topics: &[&str],
        partitions: i32,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        {
            let mut st = self.shared.lock();
            for t in topics {
                let keep = !st.bounded;
                st.topics
                    .entry(t.to_string())
                    .or_insert_with(|| Topic::new(partitions, keep));
            }
        }
        Box::pin(async { Ok(()) })
    }
}

/// A member of a consumer group of a `MemoryBus`. Dropping it leaves the group: its
/// partitions go to the other members, which resume from the committed offsets.
#[derive(Debug)]
pub struct MemoryConsumer {
    shared: Arc<Shared>,
    group: String,
    member: u64,
    /// Fetch position of each owned partition, with the assignment epoch it belongs to.
    positions: HashMap<PartitionId, (u64, i64)>,
    /// Where the next round-robin scan over the owned partitions starts (fairness).
    cursor: usize,
}

impl MemoryConsumer {
    fn poll_once(&mut self) -> Option<Delivery> {
        let st = self.shared.lock();
        let g = st.groups.get(&self.group)?;
        let member = self.member;
        self.positions.retain(|id, (epoch, _)| {
            g.owners
                .get(id)
                .is_some_and(|&(m, e)| m == member && e == *epoch)
        });
        let mut mine: Vec<(&PartitionId, u64)> = g
            .owners
            .iter()
            .filter(|(_, &(m, _))| m == member)
            .map(|(id, &(_, e))| (id, e))
            .collect();
        mine.sort();
        let n = mine.len();
        for i in 0..n {
            let at = (self.cursor + i) % n;
            let Some(&(id, epoch)) = mine.get(at) else {
                continue;
            };
            let position = self
                .positions
                .entry(id.clone())
                .or_insert_with(|| (epoch, g.committed.get(id).copied().unwrap_or(0)));
            let Some(topic) = st.topics.get(&id.0) else {
                continue;
            };
            let Some(part) = usize::try_from(id.1)
                .ok()
                .and_then(|p| topic.partitions.get(p))
            else {
                continue;
            };
            // Records before the partition's base were dropped (every group had them): a
            // position before it starts at the oldest held.
            if position.1 < part.base {
                position.1 = part.base;
            }
            let Some(record) = part.get(position.1) else {
                continue;
            };
            let d = Delivery {
                topic: id.0.clone(),
                partition: id.1,
                offset: position.1,
                key: record.key.clone(),
                payload: record.payload.clone(),
            };
            position.1 += 1;
            self.cursor = at + 1;
            return Some(d);
        }
        None
    }
}

impl Consumer for MemoryConsumer {
    fn next(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Option<Delivery>, BusError>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let shared = Arc::clone(&self.shared);
            loop {
                let notified = shared.notify.notified();
                tokio::pin!(notified);
                // Registered before looking, so that a publish in between is not missed.
                notified.as_mut().enable();
                if let Some(d) = self.poll_once() {
                    return Ok(Some(d));
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Ok(None);
                }
            }
        })
    }

    fn commit(&mut self, d: &Delivery) -> BoxFuture<'_, Result<(), BusError>> {
        let id = (d.topic.clone(), d.partition);
        let next = d.offset.saturating_add(1);
        let result = {
            let mut st = self.shared.lock();
            match st.groups.get_mut(&self.group) {
                Some(g) if g.owners.get(&id).is_some_and(|&(m, _)| m == self.member) => {
                    g.committed.insert(id.clone(), next);
                    if st.bounded {
                        st.trim(&id);
                    }
                    Ok(())
                }
                _ => Err(BusError::Rebalanced(format!(
                    "{} partition {} is no longer assigned to this member",
                    d.topic, d.partition
                ))),
            }
        };
        Box::pin(std::future::ready(result))
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            if let Some(g) = st.groups.get_mut(&self.group) {
                g.members.remove(&self.member);
            }
            st.rebalance(&self.group);
        }
        self.shared.notify.notify_waiters();
    }
}
