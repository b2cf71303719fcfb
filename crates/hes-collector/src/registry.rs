//! The meter registry: every meter's address, transport, security, groups and status, with its
//! keys and password sealed under the KEK. Imported from an inventory (JSON or CSV); kept in
//! memory and saved as one JSON file (atomically) in the embedded mode.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use dlms::SystemTitle;
use hes_model::inventory::{Credentials, Endpoint, InventoryEntry};
use hes_model::MeterId;
use serde::{Deserialize, Serialize};

use crate::secrets::{Kek, Sealed, Secret, SecretError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterStatus {
    /// Read on schedule.
    Active,
    /// Known but not read (installation, maintenance).
    Inactive,
    /// Removed from service.
    Decommissioned,
}

/// The sealed secrets of a meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKeys {
    pub ek: Sealed,
    pub ak: Sealed,
    pub kek: Sealed,
    pub password: Sealed,
    /// Bumped at each key rotation.
    pub version: u32,
}

/// One meter as the head-end knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterRecord {
    pub id: MeterId,
    pub serial: String,
    pub logical_device_name: String,
    pub endpoint: Endpoint,
    /// Hex, 8 bytes: how pushes find the meter.
    pub system_title: String,
    pub max_pdu: u16,
    /// Groups the meter belongs to: region, feeder, transformer, tariff, cell (gateway) …
    pub groups: BTreeMap<String, String>,
    pub status: MeterStatus,
    pub quirks: Vec<String>,
    pub keys: SealedKeys,
}

/// A meter's opened secrets, for the length of one session.
pub struct OpenKeys {
    pub ek: [u8; 16],
    pub ak: [u8; 16],
    pub kek: [u8; 16],
    pub password: Secret,
}

impl std::fmt::Debug for OpenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenKeys(..)")
    }
}

impl OpenKeys {
    pub fn credentials(&self) -> Credentials<'_> {
        Credentials {
            password: self.password.expose(),
            ek: self.ek,
            ak: self.ak,
        }
    }
}

impl MeterRecord {
    /// The group of a meter for a concurrency limit (`cell` or another key), if it has one.
    pub fn group(&self, key: &str) -> Option<&str> {
        self.groups.get(key).map(String::as_str)
    }

    pub fn system_title(&self) -> Option<SystemTitle> {
        hex::decode(&self.system_title)
            .ok()
            .and_then(|b| SystemTitle::from_slice(&b))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("secrets: {0}")]
    Secret(#[from] SecretError),
    #[error("meter {id}: {why}")]
    Invalid { id: String, why: &'static str },
    #[error("no meter {0}")]
    NoMeter(MeterId),
    #[error("registry file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("registry file {path}: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn context(id: &MeterId, what: &str) -> String {
    format!("{id}/{what}")
}

/// All meters, by id and by system title.
#[derive(Debug)]
pub struct Registry {
    kek: Kek,
    inner: RwLock<Inner>,
    path: Option<PathBuf>,
}

#[derive(Debug, Default)]
struct Inner {
    meters: BTreeMap<MeterId, Arc<MeterRecord>>,
    by_title: HashMap<String, MeterId>,
}

impl Inner {
    fn from_records(records: Vec<MeterRecord>) -> Self {
        let mut inner = Self {
            meters: records
                .into_iter()
                .map(|r| (r.id.clone(), Arc::new(r)))
                .collect(),
            by_title: HashMap::new(),
        };
        inner.index();
        inner
    }

    fn index(&mut self) {
        self.by_title = self
            .meters
            .values()
            .map(|m| (m.system_title.to_ascii_uppercase(), m.id.clone()))
            .collect();
    }
}

impl Registry {
    /// An empty registry kept in memory only.
    pub fn in_memory(kek: Kek) -> Self {
        Self {
            kek,
            inner: RwLock::new(Inner::default()),
            path: None,
        }
    }

    /// The registry saved in `path` (created on the first save when absent).
    pub fn open(kek: Kek, path: &Path) -> Result<Self, RegistryError> {
        let inner = match std::fs::read(path) {
            Ok(bytes) => {
                Inner::from_records(serde_json::from_slice::<Vec<MeterRecord>>(&bytes).map_err(
                    |source| RegistryError::Format {
                        path: path.to_path_buf(),
                        source,
                    },
                )?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Inner::default(),
            Err(source) => {
                return Err(RegistryError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(Self {
            kek,
            inner: RwLock::new(inner),
            path: Some(path.to_path_buf()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the registry file: to a temporary file, synced, then renamed over the old one.
    pub fn save(&self) -> Result<(), RegistryError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        // Taken out so that the lock is not held while writing.
        let arcs: Vec<Arc<MeterRecord>> = self.read().meters.values().cloned().collect();
        let records: Vec<&MeterRecord> = arcs.iter().map(|a| &**a).collect();
        let bytes = serde_json::to_vec(&records).map_err(|source| RegistryError::Format {
            path: path.clone(),
            source,
        })?;
        crate::write_atomically(path, &bytes).map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })
    }

    /// Adds or replaces meters from inventory entries, sealing their secrets. Every entry is
    /// checked first: one bad entry imports nothing.
    pub fn import(
        &self,
        entries: &[InventoryEntry],
        groups: impl Fn(&InventoryEntry) -> BTreeMap<String, String>,
    ) -> Result<usize, RegistryError> {
        let mut records = Vec::with_capacity(entries.len());
        for e in entries {
            let id = MeterId(e.id.clone());
            let invalid = |why| RegistryError::Invalid {
                id: e.id.clone(),
                why,
            };
            let (ek, ak, kek) = e
                .keys()
                .ok_or_else(|| invalid("keys are not 16 bytes of hex"))?;
            if hex::decode(&e.system_title).map(|t| t.len()) != Ok(8) {
                return Err(invalid("system title is not 8 bytes of hex"));
            }
            if e.id.is_empty() {
                return Err(invalid("empty id"));
            }
            let keys = SealedKeys {
                ek: self.kek.seal(&ek, &context(&id, "ek")),
                ak: self.kek.seal(&ak, &context(&id, "ak")),
                kek: self.kek.seal(&kek, &context(&id, "kek")),
                password: self
                    .kek
                    .seal(e.password.as_bytes(), &context(&id, "password")),
                version: 0,
            };
            records.push(MeterRecord {
                id,
                serial: e.serial.clone(),
                logical_device_name: e.logical_device_name.clone(),
                endpoint: e.endpoint.clone(),
                system_title: e.system_title.to_ascii_uppercase(),
                max_pdu: e.max_pdu,
                groups: groups(e),
                status: MeterStatus::Active,
                quirks: e.quirks.clone(),
                keys,
            });
        }
        let n = records.len();
        let mut inner = self.write();
        for r in records {
            inner.meters.insert(r.id.clone(), Arc::new(r));
        }
        inner.index();
        drop(inner);
        self.save()?;
        Ok(n)
    }

    pub fn get(&self, id: &MeterId) -> Option<Arc<MeterRecord>> {
        self.read().meters.get(id).cloned()
    }

    /// The meter that pushes with this system title.
    pub fn by_system_title(&self, title: &[u8]) -> Option<Arc<MeterRecord>> {
        let inner = self.read();
        let id = inner.by_title.get(&hex::encode_upper(title))?;
        inner.meters.get(id).cloned()
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

    /// Meters whose group `key` is `value` (all active meters when `key` is empty).
    pub fn in_group(&self, key: &str, value: &str) -> Vec<Arc<MeterRecord>> {
        self.read()
            .meters
            .values()
            .filter(|m| m.status == MeterStatus::Active)
            .filter(|m| key.is_empty() || m.group(key) == Some(value))
            .cloned()
            .collect()
    }

    /// Opens a meter's secrets for one session.
    pub fn open_keys(&self, m: &MeterRecord) -> Result<OpenKeys, RegistryError> {
        let open16 = |s: &Sealed, what| -> Result<[u8; 16], RegistryError> {
            Ok(self.kek.open(s, &context(&m.id, what))?.key16()?)
        };
        Ok(OpenKeys {
            ek: open16(&m.keys.ek, "ek")?,
            ak: open16(&m.keys.ak, "ak")?,
            kek: open16(&m.keys.kek, "kek")?,
            password: self
                .kek
                .open(&m.keys.password, &context(&m.id, "password"))?,
        })
    }

    /// Records new keys after a successful key transfer.
    pub fn replace_keys(
        &self,
        id: &MeterId,
        ek: &[u8; 16],
        ak: &[u8; 16],
    ) -> Result<(), RegistryError> {
        let mut inner = self.write();
        let old = inner
            .meters
            .get(id)
            .cloned()
            .ok_or_else(|| RegistryError::NoMeter(id.clone()))?;
        let mut m = (*old).clone();
        m.keys.ek = self.kek.seal(ek, &context(id, "ek"));
        m.keys.ak = self.kek.seal(ak, &context(id, "ak"));
        m.keys.version += 1;
        inner.meters.insert(id.clone(), Arc::new(m));
        drop(inner);
        self.save()
    }

    /// Replaces a meter's groups.
    pub fn set_groups(
        &self,
        id: &MeterId,
        groups: BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        let mut inner = self.write();
        let old = inner
            .meters
            .get(id)
            .cloned()
            .ok_or_else(|| RegistryError::NoMeter(id.clone()))?;
        let mut m = (*old).clone();
        m.groups = groups;
        inner.meters.insert(id.clone(), Arc::new(m));
        drop(inner);
        self.save()
    }

    /// Every meter, in id order.
    pub fn all(&self) -> Vec<Arc<MeterRecord>> {
        self.read().meters.values().cloned().collect()
    }

    pub fn set_status(&self, id: &MeterId, status: MeterStatus) -> Result<(), RegistryError> {
        let mut inner = self.write();
        let old = inner
            .meters
            .get(id)
            .cloned()
            .ok_or_else(|| RegistryError::NoMeter(id.clone()))?;
        let mut m = (*old).clone();
        m.status = status;
        inner.meters.insert(id.clone(), Arc::new(m));
        drop(inner);
        self.save()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use hes_model::inventory::Transport;

    pub(crate) fn entry(i: u32) -> InventoryEntry {
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
        }
    }

    #[test]
    fn import_seals_keys_saves_and_reopens() {
        let dir = std::env::temp_dir().join(format!("hes-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("registry.json");
        let _ = std::fs::remove_file(&path);
        let kek = || Kek::from_bytes(&[3u8; 32]).unwrap();
        let reg = Registry::open(kek(), &path).unwrap();
        let n = reg
            .import(&[entry(1), entry(2)], |e| {
                BTreeMap::from([("cell".to_string(), format!("cell-{}", &e.serial[7..]))])
            })
            .unwrap();
        assert_eq!(n, 2);
        // No key or password in the file, in any case.
        let text = std::fs::read_to_string(&path).unwrap();
        for secret in ["000102030405060708090A0B0C0D0E0F", "D0D1D2D3", "12345678"] {
            assert!(
                !text.to_ascii_uppercase().contains(secret),
                "{secret} at rest"
            );
        }
        let again = Registry::open(kek(), &path).unwrap();
        let m = again.get(&"MTR00000002".into()).unwrap();
        let keys = again.open_keys(&m).unwrap();
        assert_eq!(keys.ek[1], 1);
        assert_eq!(keys.password.expose(), b"12345678");
        assert!(!format!("{keys:?} {m:?}").contains("12345678"));
        assert_eq!(
            again
                .by_system_title(&[0x48, 0x45, 0x53, 0, 0, 0, 0, 2])
                .unwrap()
                .id,
            m.id
        );
        assert_eq!(again.in_group("cell", "cell-1").len(), 1);
        // Another KEK opens nothing.
        let wrong = Registry::open(Kek::from_bytes(&[4u8; 32]).unwrap(), &path).unwrap();
        assert!(wrong.open_keys(&m).is_err());
        // A bad entry imports nothing.
        let mut bad = entry(3);
        bad.ek = "00".into();
        assert!(again.import(&[entry(4), bad], |_| BTreeMap::new()).is_err());
        assert_eq!(again.len(), 2);
        again.replace_keys(&m.id, &[9; 16], &[8; 16]).unwrap();
        let m = again.get(&m.id).unwrap();
        assert_eq!(
            (again.open_keys(&m).unwrap().ek, m.keys.version),
            ([9; 16], 1)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
