//! The production bus: Apache Kafka through rdkafka (bundled librdkafka 2.12).
//!
//! - Producer: idempotent (`enable.idempotence=true`, `acks=all`), the record key is the
//!   Kafka key (librdkafka's default partitioner sends one key to one partition), and
//!   `publish` returns when every record of the batch is acknowledged.
//! - Consumers: `enable.auto.commit=false`, `auto.offset.reset=earliest`, offsets committed
//!   synchronously by `Consumer::commit` (delivery offset + 1), cooperative-sticky
//!   assignment (incremental rebalances: a member joining or leaving moves only the
//!   partitions that change hands; the others keep being consumed).
//! - Topics: `subscribe` creates the topics it names that do not exist yet (with the bus's
//!   partition count, `with_partitions`) and waits until the broker's metadata shows them
//!   before joining the group, so that a consumer never starts on a missing topic (librdkafka
//!   would log a false "Subscribed topic not available" error). Created topics get the
//!   replication factor of `with_replication`, and `min.insync.replicas` one less than it
//!   when it is above 1 (3 and 2 in production: a write survives the loss of one broker).
//! - Every wait is bounded (see the constants below).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::{BoxFuture, Bus, BusError, Consumer, Delivery, Record, DEFAULT_PARTITIONS};

/// The environment variable with the bootstrap servers (`host:port,host:port`).
pub const BROKERS_ENV: &str = "HES_KAFKA_BROKERS";
/// The environment variable with the replication factor of the topics a bus creates when its
/// caller does not give one (`with_replication`): `scripts/zones up` sets it to 3.
pub const REPLICATION_ENV: &str = "HES_KAFKA_REPLICATION";

/// The replication factor `HES_KAFKA_REPLICATION` names, 1 when it is unset or not a number
/// of at least 1 (a single development broker).
pub fn replication_from_env() -> i32 {
    std::env::var(REPLICATION_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|r| *r >= 1)
        .unwrap_or(1)
}
/// How long a record may wait for its acknowledgement (`message.timeout.ms`), retries
/// included; `publish` fails after that.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of topic creation (`ensure_topics`).
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound of one synchronous offset commit.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Group session timeout: a member that stops heartbeating loses its partitions after this.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat interval; also how quickly members notice a rebalance.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

fn kafka_err(what: &str, e: KafkaError) -> BusError {
    BusError::Kafka(format!("{what}: {e}"))
}

/// The Kafka adapter of the bus port.
pub struct KafkaBus {
    brokers: String,
    replication: i32,
    /// Partitions of the topics `subscribe` creates.
    partitions: i32,
    /// Prepended to every topic name on the broker (empty unless set): lets several
    /// installations, or test runs, share a cluster without seeing each other's records.
    namespace: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("brokers", &self.brokers)
            .field("replication", &self.replication)
            .field("partitions", &self.partitions)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Creates the producer and the admin client for `brokers`. No network I/O happens
    /// here: librdkafka connects lazily (see `ping` for a reachability check). The
    /// replication factor starts as [`replication_from_env`] (`with_replication` sets it).
    pub fn connect(brokers: &str) -> Result<Self, BusError> {
        if brokers.trim().is_empty() {
            return Err(BusError::Config("no Kafka brokers given".into()));
        }
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "hes-bus")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", millis(DELIVERY_TIMEOUT))
            // A broker lost, a leader moving, a partition short of in-sync replicas
            // (NOT_ENOUGH_REPLICAS) are retried by librdkafka (idempotence sets `retries` to
            // the maximum, without duplicates or reordering) until `message.timeout.ms`: only
            // an outage longer than that fails `publish`, whose callers retry the batch.
            .set("linger.ms", "5")
            .create()
            .map_err(|e| kafka_err("producer", e))?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "hes-bus-admin")
            .create()
            .map_err(|e| kafka_err("admin client", e))?;
        Ok(Self {
            brokers: brokers.to_string(),
            replication: replication_from_env(),
            partitions: DEFAULT_PARTITIONS,
            namespace: String::new(),
            producer,
            admin,
        })
    }

    /// `connect` to the brokers named by `HES_KAFKA_BROKERS`.
    pub fn from_env() -> Result<Self, BusError> {
        match std::env::var(BROKERS_ENV) {
            Ok(b) if !b.trim().is_empty() => Self::connect(&b),
            _ => Err(BusError::Config(format!(
                "{BROKERS_ENV} is not set (for local services: eval \"$(scripts/services up)\")"
            ))),
        }
    }

    /// Replication factor of the topics this bus creates (`ensure_topics`, `subscribe`):
    /// `HES_KAFKA_REPLICATION`, else 1 (a single broker), unless set here. Above 1, the topics also get `min.insync.replicas` one
    /// less than it (see [`KafkaBus::topic_configs`]).
    pub fn with_replication(mut self, replication: i32) -> Self {
        self.replication = replication.max(1);
        self
    }

    /// Partition count of the topics `subscribe` creates (`DEFAULT_PARTITIONS` unless set).
    /// `ensure_topics` takes its own.
    pub fn with_partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions.max(1);
        self
    }

    pub fn replication(&self) -> i32 {
        self.replication
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// The topic configuration this bus creates topics with: `min.insync.replicas` =
    /// replication − 1 when replicated (with `acks=all`, a write is acknowledged once that
    /// many replicas have it, so losing one broker loses no acknowledged record and keeps the
    /// topic writable); nothing for a single replica (the broker's default, 1).
    pub fn topic_configs(&self) -> Vec<(&'static str, String)> {
        if self.replication > 1 {
            vec![("min.insync.replicas", (self.replication - 1).to_string())]
        } else {
            Vec::new()
        }
    }

    /// Prefixes every topic with `namespace` on the broker (deliveries still name the topic
    /// without it).
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_string();
        self
    }

    fn topic(&self, t: &str) -> String {
        format!("{}{t}", self.namespace)
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Checks that a broker answers a metadata request within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), BusError> {
        let producer = self.producer.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            use rdkafka::producer::Producer as _;
            let r = producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| kafka_err("metadata", e));
            let _ = tx.send(r);
        });
        match tokio::time::timeout(timeout + Duration::from_secs(1), rx).await {
            Ok(Ok(r)) => r,
            _ => Err(BusError::Timeout(format!(
                "no broker answered within {timeout:?}"
            ))),
        }
    }

    /// The partition count of every topic the cluster has whose partitions all have a leader
    /// (a topic just created is listed before its partitions are ready), by name on the
    /// broker (namespace included).
    async fn ready_topics(&self) -> Result<HashMap<String, usize>, BusError> {
        let producer = self.producer.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("hes-bus-kafka-metadata".into())
            .spawn(move || {
                use rdkafka::producer::Producer as _;
                // All topics (`None`): asking for one by name could make a broker with
                // auto-creation on create it with its defaults.
                let r = producer
                    .client()
                    .fetch_metadata(None, ADMIN_TIMEOUT)
                    .map(|m| {
                        m.topics()
                            .iter()
                            .filter(|t| {
                                t.error().is_none()
                                    && !t.partitions().is_empty()
                                    && t.partitions()
                                        .iter()
                                        .all(|p| p.error().is_none() && p.leader() >= 0)
                            })
                            .map(|t| (t.name().to_string(), t.partitions().len()))
                            .collect()
                    })
                    .map_err(|e| kafka_err("metadata", e));
                let _ = tx.send(r);
            })
            .map_err(|e| BusError::Kafka(format!("metadata thread: {e}")))?;
        match tokio::time::timeout(ADMIN_TIMEOUT + Duration::from_secs(1), rx).await {
            Ok(Ok(r)) => r,
            _ => Err(BusError::Timeout(format!(
                "no broker answered a metadata request within {ADMIN_TIMEOUT:?}"
            ))),
        }
    }

    /// The partition count of `topic` (without the namespace) if it exists and every
    /// partition has a leader.
    pub async fn topic_partitions(&self, topic: &str) -> Result<Option<usize>, BusError> {
        Ok(self.ready_topics().await?.get(&self.topic(topic)).copied())
    }

    /// Creates the topics of `names` (namespace included) that do not exist, with
    /// `partitions` partitions, then waits (bounded) until the metadata shows every one of
    /// `names` ready.
    async fn create_and_await(&self, names: &[String], partitions: i32) -> Result<(), BusError> {
        let ready = self.ready_topics().await?;
        let missing: Vec<&String> = names.iter().filter(|n| !ready.contains_key(*n)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let configs = self.topic_configs();
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|n| {
                configs.iter().fold(
                    NewTopic::new(n, partitions, TopicReplication::Fixed(self.replication)),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT));
        let results = tokio::time::timeout(
            ADMIN_TIMEOUT + Duration::from_secs(5),
            self.admin.create_topics(new.iter(), &opts),
        )
        .await
        .map_err(|_| BusError::Timeout("create topics".into()))?
        .map_err(|e| kafka_err("create topics", e))?;
        for r in results {
            match r {
                // Created meanwhile by another process: as good.
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(BusError::Kafka(format!(
                        "create topic {name} (replication {}): {code}",
                        self.replication
                    )))
                }
            }
        }
        // The controller has created them; the broker answering metadata may learn of them a
        // moment later.
        let deadline = tokio::time::Instant::now() + ADMIN_TIMEOUT;
        loop {
            let ready = self.ready_topics().await?;
            let waiting: Vec<&String> = missing
                .iter()
                .copied()
                .filter(|n| !ready.contains_key(*n))
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BusError::Timeout(format!(
                    "topics created but not in the metadata after {ADMIN_TIMEOUT:?}: {waiting:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "hes-bus-consumer")
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", millis(SESSION_TIMEOUT))
            .set("heartbeat.interval.ms", millis(HEARTBEAT_INTERVAL))
            .set("enable.partition.eof", "false");
        c
    }
}

impl Bus for KafkaBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<Record>,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        let topic = self.topic(topic);
        Box::pin(async move {
            let topic = topic.as_str();
            let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
            let mut pending = Vec::with_capacity(records.len());
            let mut first_error = None;
            for r in &records {
                let mut record = FutureRecord::to(topic).key(&r.key).payload(&r.payload);
                loop {
                    match self.producer.send_result(record) {
                        Ok(f) => {
                            pending.push(f);
                            break;
                        }
                        // librdkafka's queue is full: wait (bounded) for room.
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                            if tokio::time::Instant::now() < deadline =>
                        {
                            record = back;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err((e, _)) => {
                            first_error = Some(kafka_err("enqueue", e));
                            break;
                        }
                    }
                }
                if first_error.is_some() {
                    break;
                }
            }
            // Wait for every enqueued record, even after an error, so that `publish` never
            // returns while its records are still in flight.
            for f in pending {
                let r = match f.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(kafka_err("delivery", e)),
                    Err(_) => Err(BusError::Kafka("delivery: producer dropped".into())),
                };
                if let (Err(e), None) = (r, &first_error) {
                    first_error = Some(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }

    /// Creates the topics that do not exist yet (see the module's documentation), then joins
    /// the group.
    fn subscribe(
        &self,
        topics: &[&str],
        group: &str,
    ) -> BoxFuture<'_, Result<Box<dyn Consumer>, BusError>> {
        let names: Vec<String> = topics.iter().map(|t| self.topic(t)).collect();
        let group = group.to_string();
        Box::pin(async move {
            if names.is_empty() {
                return Err(BusError::Refused("subscribe: no topics".into()));
            }
            self.create_and_await(&names, self.partitions).await?;
            let consumer: StreamConsumer = self
                .consumer_config(&group)
                .create()
                .map_err(|e| kafka_err("consumer", e))?;
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            consumer
                .subscribe(&names)
                .map_err(|e| kafka_err("subscribe", e))?;
            Ok(Box::new(KafkaConsumer {
                inner: Some(Arc::new(consumer)),
                namespace: self.namespace.clone(),
            }) as Box<dyn Consumer>)
        })
    }

    fn ensure_topics(
        &self,
        topics: &[&str],
        partitions: i32,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        let names: Vec<String> = topics.iter().map(|t| self.topic(t)).collect();
        Box::pin(async move { self.create_and_await(&names, partitions).await })
    }
}

/// A member of a Kafka consumer group. Dropping it closes it (commit nothing, leave the
/// group) on a background thread, so that a drop never blocks an async task; `close` does
/// the same and waits, bounded.
pub struct KafkaConsumer {
    inner: Option<Arc<StreamConsumer>>,
    namespace: String,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaConsumer")
    }
}

impl KafkaConsumer {
    /// Closes the consumer on its own thread; the receiver learns when that is done.
    /// librdkafka's close (revoke, leave the group) can block, far longer than expected when
    /// the broker is gone: it must never run on an async worker.
    fn close_in_background(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let consumer = self.inner.take()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("hes-bus-kafka-close".into())
            .spawn(move || {
                drop(consumer);
                let _ = tx.send(());
            });
        match spawned {
            Ok(_) => Some(rx),
            Err(e) => {
                tracing::warn!("cannot start a thread to close a Kafka consumer: {e}");
                None
            }
        }
    }
}

impl KafkaConsumer {
    /// Commits the offsets after each of `ds` in one synchronous request.
    async fn commit_offsets(&self, ds: &[Delivery]) -> Result<(), BusError> {
        let Some(consumer) = self.inner.clone() else {
            return Err(BusError::Refused("consumer closed".into()));
        };
        if ds.is_empty() {
            return Ok(());
        }
        let offsets: Vec<(String, i32, i64)> = ds
            .iter()
            .map(|d| {
                (
                    format!("{}{}", self.namespace, d.topic),
                    d.partition,
                    d.offset.saturating_add(1),
                )
            })
            .collect();
        let what = offsets
            .iter()
            .map(|(t, p, o)| format!("{t}/{p}@{o}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A synchronous commit blocks its thread until the coordinator answers.
        std::thread::Builder::new()
            .name("hes-bus-kafka-commit".into())
            .spawn(move || {
                let mut tpl = TopicPartitionList::new();
                let mut r = Ok(());
                for (topic, partition, next) in &offsets {
                    if let Err(e) =
                        tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))
                    {
                        r = Err(e);
                        break;
                    }
                }
                let r = r.and_then(|()| consumer.commit(&tpl, CommitMode::Sync));
                let _ = tx.send(r);
            })
            .map_err(|e| BusError::Kafka(format!("commit thread: {e}")))?;
        match tokio::time::timeout(COMMIT_TIMEOUT, rx).await {
            Err(_) => Err(BusError::Timeout(format!("commit {what}"))),
            Ok(Err(_)) => Err(BusError::Kafka(format!("commit {what}: thread died"))),
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::StaleMemberEpoch
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::State),
            )))) => Err(BusError::Rebalanced(format!("commit {what}: {code}"))),
            Ok(Ok(Err(e))) => Err(kafka_err(&format!("commit {what}"), e)),
        }
    }
}

/// How long a partition's watermarks may take to come (for the lag metric).
const LAG_TIMEOUT: Duration = Duration::from_secs(2);

impl Consumer for KafkaConsumer {
    fn next(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Option<Delivery>, BusError>> {
        Box::pin(async move {
            let Some(consumer) = self.inner.as_deref() else {
                return Err(BusError::Refused("consumer closed".into()));
            };
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                // `recv` is cancellation safe: a timeout loses no message.
                match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Err(_) => return Ok(None),
                    Ok(Ok(m)) => {
                        let topic = m.topic();
                        return Ok(Some(Delivery {
                            topic: topic
                                .strip_prefix(self.namespace.as_str())
                                .unwrap_or(topic)
                                .to_string(),
                            partition: m.partition(),
                            offset: m.offset(),
                            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                            payload: m.payload().unwrap_or_default().to_vec(),
                        }));
                    }
                    // Per-partition and transport errors are transient: librdkafka retries.
                    Ok(Err(KafkaError::MessageConsumption(code))) => {
                        tracing::warn!("kafka consumer: {code} (retrying)");
                    }
                    Ok(Err(e)) => return Err(kafka_err("consume", e)),
                }
            }
        })
    }

    fn lag(&self) -> BoxFuture<'static, Vec<(String, i32, i64)>> {
        let Some(consumer) = self.inner.clone() else {
            return Box::pin(async { Vec::new() });
        };
        let namespace = self.namespace.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Watermarks are a request to the broker that blocks its thread.
        let spawned = std::thread::Builder::new()
            .name("hes-bus-kafka-lag".into())
            .spawn(move || {
                let mut out = Vec::new();
                if let Ok(positions) = consumer.position() {
                    for e in positions.elements() {
                        let Offset::Offset(pos) = e.offset() else {
                            continue;
                        };
                        if let Ok((_, high)) =
                            consumer.fetch_watermarks(e.topic(), e.partition(), LAG_TIMEOUT)
                        {
                            let topic = e.topic();
                            let topic = topic.strip_prefix(namespace.as_str()).unwrap_or(topic);
                            out.push((topic.to_string(), e.partition(), (high - pos).max(0)));
                        }
                    }
                }
                let _ = tx.send(out);
            });
        Box::pin(async move {
            match spawned {
                Ok(_) => rx.await.unwrap_or_default(),
                Err(_) => Vec::new(),
            }
        })
    }

    fn commit(&mut self, d: &Delivery) -> BoxFuture<'_, Result<(), BusError>> {
        let d = d.clone();
        Box::pin(async move { self.commit_offsets(std::slice::from_ref(&d)).await })
    }

    fn commit_all<'a>(&'a mut self, ds: &'a [Delivery]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(self.commit_offsets(ds))
    }

    fn close(mut self: Box<Self>, timeout: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        let done = self.close_in_background();
        Box::pin(async move {
            let Some(done) = done else { return Ok(()) };
            match tokio::time::timeout(timeout, done).await {
                Ok(_) => Ok(()),
                Err(_) => Err(BusError::Timeout(format!(
                    "closing the consumer took more than {timeout:?} (it goes on in the background)"
                ))),
            }
        })
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        let _ = self.close_in_background();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicated_topics_need_all_but_one_replica_in_sync() -> Result<(), BusError> {
        let bus = KafkaBus::connect("127.0.0.1:1")?;
        assert_eq!((bus.replication(), bus.partitions()), (1, 8));
        assert!(bus.topic_configs().is_empty());
        let bus = bus.with_replication(3).with_partitions(12);
        assert_eq!((bus.replication(), bus.partitions()), (3, 12));
        assert_eq!(
            bus.topic_configs(),
            vec![("min.insync.replicas", "2".to_string())]
        );
        let bus = bus.with_replication(0).with_partitions(0);
        assert_eq!((bus.replication(), bus.partitions()), (1, 1));
        assert!(bus.topic_configs().is_empty());
        Ok(())
    }
}
