//! The meter registry as every role sees it: the rows of the state port (see [`StateStore`])
//! with a snapshot in memory for the lookups that must not wait (groups, push system titles),
//! refreshed from the store by revision. Sessions take a meter's record from the store itself
//! ([`Registry::current`]), so a key rotation committed by any node is used at the next session.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hes_model::inventory::InventoryEntry;
use hes_model::meter::{InvalidMeter, MeterRecord, MeterStatus, OpenKeys};
use hes_model::secrets::{Kek, SecretError};
use hes_model::MeterId;

use crate::{StateStore, StoreError};

pub use hes_model::meter::SealedKeys;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("secrets: {0}")]
    Secret(#[from] SecretError),
    /// An import entry (1-based position in the file or list) that does not check out.
    #[error("entry {line}: {err}")]
    Invalid { line: usize, err: InvalidMeter },
    #[error("no meter {0}")]
    NoMeter(MeterId),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// How many rows one refresh reads at a time.
const PAGE: usize = 10_000;

#[derive(Debug, Default)]
struct Snapshot {
    revision: i64,
    meters: BTreeMap<MeterId, Arc<MeterRecord>>,
    by_title: HashMap<String, MeterId>,
}

impl Snapshot {
    fn put(&mut self, m: MeterRecord) {
        if let Some(old) = self.meters.get(&m.id) {
            if old.system_title != m.system_title {
                self.by_title.remove(&old.system_title);
            }
        }
        self.by_title
            .insert(m.system_title.to_ascii_uppercase(), m.id.clone());
        self.meters.insert(m.id.clone(), Arc::new(m));
    }
}

/// Every meter, from the store.
pub struct Registry {
    state: Arc<dyn StateStore>,
    kek: Kek,
    snap: RwLock<Snapshot>,
    /// When a miss last refreshed the snapshot: unknown system titles (a flood of them, even)
    /// cost the store at most one refresh a second.
    miss_refresh: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("meters", &self.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// The registry kept in `state`, its secrets sealed under `kek`; loads the snapshot.
    pub async fn open(state: Arc<dyn StateStore>, kek: Kek) -> Result<Arc<Self>, RegistryError> {
        let r = Arc::new(Self {
            state,
            kek,
            snap: RwLock::new(Snapshot::default()),
            miss_refresh: std::sync::Mutex::new(None),
        });
        r.refresh().await?;
        Ok(r)
    }

    /// An empty registry in a private in-memory SQLite store (tests, one-off tools).
    pub async fn in_memory(kek: Kek) -> Result<Arc<Self>, RegistryError> {
        let store = crate::SqliteStore::in_memory().await?;
        Self::open(Arc::new(store), kek).await
    }

    /// The state port the registry lives in.
    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snap.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snap.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads what changed in the store since the snapshot; whether anything did.
    pub async fn refresh(&self) -> Result<bool, RegistryError> {
        let mut since = self.read().revision;
        // Within a revision, pages go on by id: one import gives all its meters one revision.
        let mut after: Option<String> = None;
        let mut changed = false;
        loop {
            let (rows, current) = self
                .state
                .meters_since(since, after.as_deref(), PAGE)
                .await?;
            let full = rows.len() == PAGE;
            let mut snap = self.write();
            for m in rows {
                if m.revision > since {
                    since = m.revision;
                }
                after = Some(m.record.id.0.clone());
                snap.put(m.record);
                changed = true;
            }
            if !full {
                snap.revision = snap.revision.max(current.max(since));
                return Ok(changed);
            }
            // Every revision below the last page's is complete; that one may go on.
            snap.revision = snap.revision.max(since - 1);
        }
    }

    /// Refreshes every `every` until `stop`; a store that does not answer is tried again.
    pub fn spawn_refresh(
        self: &Arc<Self>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                if let Err(e) = me.refresh().await {
                    tracing::warn!(error = %e, "refreshing the meter registry");
                }
            }
        })
    }

    /// A meter from the snapshot.
    pub fn get(&self, id: &MeterId) -> Option<Arc<MeterRecord>> {
        self.read().meters.get(id).cloned()
    }

    /// A meter as the store has it now (keys of the latest rotation), also put in the snapshot.
    pub async fn current(&self, id: &MeterId) -> Result<Arc<MeterRecord>, RegistryError> {
        let m = self
            .state
            .meter(id)
            .await?
            .ok_or_else(|| RegistryError::NoMeter(id.clone()))?;
        let mut snap = self.write();
        snap.put(m);
        snap.meters
            .get(id)
            .cloned()
            .ok_or_else(|| RegistryError::NoMeter(id.clone()))
    }

    /// The meter that pushes with this system title (from the snapshot).
    pub fn by_system_title(&self, title: &[u8]) -> Option<Arc<MeterRecord>> {
        let snap = self.read();
        let id = snap.by_title.get(&hex::encode_upper(title))?;
        snap.meters.get(id).cloned()
    }

    /// [`Registry::by_system_title`], refreshing once on a miss (a meter imported by another
    /// node a moment ago).
    pub async fn find_by_system_title(&self, title: &[u8]) -> Option<Arc<MeterRecord>> {
        if let Some(m) = self.by_system_title(title) {
            return Some(m);
        }
        {
            let mut last = self.miss_refresh.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
                return None;
            }
            *last = Some(now);
        }
        match self.refresh().await {
            Ok(true) => self.by_system_title(title),
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the meter registry");
                None
            }
        }
    }

    pub fn ids(&self) -> Vec<MeterId> {
        self.read().meters.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().meters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().meters.is_empty()
    }

    /// Active meters whose group `key` is `value` (every active meter when `key` is empty).
    pub fn in_group(&self, key: &str, value: &str) -> Vec<Arc<MeterRecord>> {
        self.read()
            .meters
            .values()
            .filter(|m| m.status == MeterStatus::Active)
            .filter(|m| key.is_empty() || m.group(key) == Some(value))
            .cloned()
            .collect()
    }

    /// Every meter, in id order.
    pub fn all(&self) -> Vec<Arc<MeterRecord>> {
        self.read().meters.values().cloned().collect()
    }

    /// Opens a meter's secrets for one session.
    pub fn open_keys(&self, m: &MeterRecord) -> Result<OpenKeys, RegistryError> {
        Ok(m.open_keys(&self.kek)?)
    }

    /// Imports inventory entries, all or none: every entry is checked first (the error names
    /// its position and field), then the store refuses ids that exist (unless `replace`) and
    /// system titles another meter has.
    pub async fn import(
        &self,
        entries: &[InventoryEntry],
        replace: bool,
    ) -> Result<usize, RegistryError> {
        let records = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                MeterRecord::from_entry(e, &self.kek)
                    .map_err(|err| RegistryError::Invalid { line: i + 1, err })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = self.state.import_meters(&records, replace).await?;
        self.refresh().await?;
        Ok(n)
    }

    /// Commits a meter's new EK and AK as its next key version (after a successful key
    /// transfer); returns the new version.
    pub async fn replace_keys(
        &self,
        id: &MeterId,
        ek: &[u8; 16],
        ak: &[u8; 16],
    ) -> Result<u32, RegistryError> {
        let m = self.current(id).await?;
        let next = m.next_keys(&self.kek, ek, ak)?;
        self.state.rotate_keys(id, m.keys.version, &next).await?;
        self.current(id).await?;
        Ok(next.version)
    }

    pub async fn set_groups(
        &self,
        id: &MeterId,
        groups: BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        self.state.set_meter_groups(id, &groups).await?;
        self.current(id).await?;
        Ok(())
    }

    pub async fn set_status(&self, id: &MeterId, status: MeterStatus) -> Result<(), RegistryError> {
        self.state.set_meter_status(id, status).await?;
        self.current(id).await?;
        Ok(())
    }

    /// Every meter as inventory entries; the secrets in clear only when `with_secrets`.
    pub async fn export(&self, with_secrets: bool) -> Result<Vec<InventoryEntry>, RegistryError> {
        self.refresh().await?;
        self.all()
            .iter()
            .map(|m| Ok(m.to_entry(&self.kek, with_secrets)?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use hes_model::inventory::{Endpoint, Transport};

    fn entry(i: u32) -> InventoryEntry {
        InventoryEntry {
            id: format!("MTR{i:08}"),
            serial: format!("{i:08}"),
            logical_device_name: format!("HES{i:013}"),
            endpoint: Endpoint {
                host: "127.1.0.1".into(),
                port: 4059,
                transport: Transport::Wrapper,
                client_sap_public: 16,
                client_sap_reader: 17,
                client_sap_management: 1,
                hdlc_server_logical: 1,
                hdlc_server_physical: 16,
            },
            password: "12345678".into(),
            ek: "000102030405060708090A0B0C0D0E0F".into(),
            ak: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF".into(),
            kek: "101112131415161718191A1B1C1D1E1F".into(),
            system_title: format!("48455300{i:08X}"),
            security: "hls-gmac-authenticated-encrypted".into(),
            max_pdu: 1024,
            quirks: vec![],
            groups: BTreeMap::from([("cell".to_string(), format!("cell-{}", i % 2))]),
        }
    }

    #[tokio::test]
    async fn two_views_of_one_store_see_each_others_changes() {
        let kek = || Kek::from_bytes(&[3u8; 32]).unwrap();
        let store: Arc<dyn StateStore> = Arc::new(crate::SqliteStore::in_memory().await.unwrap());
        let a = Registry::open(store.clone(), kek()).await.unwrap();
        let b = Registry::open(store.clone(), kek()).await.unwrap();
        assert_eq!(a.import(&[entry(1), entry(2)], false).await.unwrap(), 2);
        assert!(b.is_empty());
        assert!(b.refresh().await.unwrap());
        assert_eq!(b.in_group("cell", "cell-1").len(), 1);
        let m = b
            .by_system_title(&[0x48, 0x45, 0x53, 0, 0, 0, 0, 2])
            .unwrap();
        assert_eq!(m.id, MeterId::from("MTR00000002"));
        // A rotation through one view is what the other's next session opens.
        assert_eq!(a.replace_keys(&m.id, &[9; 16], &[8; 16]).await.unwrap(), 1);
        let fresh = b.current(&m.id).await.unwrap();
        assert_eq!(b.open_keys(&fresh).unwrap().ek, [9; 16]);
        // A bad entry: nothing imported, the error names the entry and the field.
        let mut bad = entry(4);
        bad.ak = "00".into();
        let e = a.import(&[entry(3), bad], false).await.unwrap_err();
        assert!(
            e.to_string().contains("entry 2") && e.to_string().contains("ek/ak/kek"),
            "{e}"
        );
        assert_eq!(a.len(), 2);
        // Export keeps secrets out unless asked.
        let out = a.export(false).await.unwrap();
        assert!(out.iter().all(|e| e.ek.is_empty() && e.password.is_empty()));
        let out = a.export(true).await.unwrap();
        assert_eq!(out[0], entry(1));
        // Another KEK opens nothing.
        let wrong = Registry::open(store, Kek::from_bytes(&[4u8; 32]).unwrap())
            .await
            .unwrap();
        assert!(wrong.open_keys(&wrong.get(&m.id).unwrap()).is_err());
    }
}
