//! A meter as the head-end's registry keeps it: address, transport, groups, status, quirks and
//! its secrets sealed under the KEK (see [`crate::secrets`]). The registry lives in the store
//! (`hes_store::MeterRegistry`); every role reads it from there.

use std::collections::BTreeMap;

use dlms::SystemTitle;
use serde::{Deserialize, Serialize};

use crate::inventory::{Credentials, Endpoint, InventoryEntry};
use crate::secrets::{Kek, Sealed, Secret, SecretError};
use crate::MeterId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterStatus {
    /// Read on schedule.
    Active,
    /// Known but not read (installation, maintenance).
    Inactive,
    /// Removed from service.
    Decommissioned,
}

impl MeterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Decommissioned => "decommissioned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "decommissioned" => Some(Self::Decommissioned),
            _ => None,
        }
    }
}

/// The sealed secrets of a meter, all of one key version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKeys {
    pub ek: Sealed,
    pub ak: Sealed,
    pub kek: Sealed,
    pub password: Sealed,
    /// Bumped at each key rotation; bound into every sealed value.
    pub version: u32,
}

/// One meter as the head-end knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterRecord {
    pub id: MeterId,
    pub serial: String,
    pub logical_device_name: String,
    pub endpoint: Endpoint,
    /// Hex, 8 bytes, upper case: how pushes find the meter. Unique in the registry.
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

/// Why an inventory entry cannot become a meter record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("meter {id:?}: {field}: {why}")]
pub struct InvalidMeter {
    pub id: String,
    pub field: &'static str,
    pub why: &'static str,
}

/// What a sealed value is bound to: the meter, the field and the key version. A sealed value
/// copied to another meter's row, another field or another version does not open.
pub fn seal_context(id: &MeterId, field: &str, version: u32) -> String {
    format!("{}/{field}/v{version}", id.0)
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

    /// A checked record from an inventory entry, its secrets sealed under `kek` at key
    /// version 0.
    pub fn from_entry(e: &InventoryEntry, kek: &Kek) -> Result<Self, InvalidMeter> {
        let invalid = |field, why| InvalidMeter {
            id: e.id.clone(),
            field,
            why,
        };
        if e.id.trim().is_empty() || e.id.len() > 64 || e.id.chars().any(char::is_control) {
            return Err(invalid(
                "id",
                "empty, longer than 64 or with control characters",
            ));
        }
        let (ek, ak, master) = e
            .keys()
            .ok_or_else(|| invalid("ek/ak/kek", "not 16 bytes of hex"))?;
        if hex::decode(&e.system_title).map(|t| t.len()) != Ok(8) {
            return Err(invalid("system_title", "not 8 bytes of hex"));
        }
        if e.endpoint.host.trim().is_empty() {
            return Err(invalid("host", "empty"));
        }
        if e.endpoint.port == 0 {
            return Err(invalid("port", "zero"));
        }
        if !(64..=65535).contains(&e.max_pdu) {
            return Err(invalid("max_pdu", "below 64"));
        }
        for (k, v) in &e.groups {
            if k.is_empty() || k.contains('=') || v.is_empty() || k.len() > 64 || v.len() > 128 {
                return Err(invalid("groups", "a group is key=value, both non-empty"));
            }
        }
        let id = MeterId(e.id.clone());
        let seal = |plain: &[u8], field| {
            kek.try_seal(plain, &seal_context(&id, field, 0))
                .map_err(|_| {
                    invalid(
                        "keys",
                        "the key-encryption key cannot seal (HSM unavailable?)",
                    )
                })
        };
        let keys = SealedKeys {
            ek: seal(&ek, "ek")?,
            ak: seal(&ak, "ak")?,
            kek: seal(&master, "kek")?,
            password: seal(e.password.as_bytes(), "password")?,
            version: 0,
        };
        Ok(Self {
            id,
            serial: e.serial.clone(),
            logical_device_name: e.logical_device_name.clone(),
            endpoint: e.endpoint.clone(),
            system_title: e.system_title.to_ascii_uppercase(),
            max_pdu: e.max_pdu,
            groups: e.groups.clone(),
            status: MeterStatus::Active,
            quirks: e.quirks.clone(),
            keys,
        })
    }

    /// Opens the secrets for one session.
    pub fn open_keys(&self, kek: &Kek) -> Result<OpenKeys, SecretError> {
        let v = self.keys.version;
        let open = |s: &Sealed, field| kek.open(s, &seal_context(&self.id, field, v));
        Ok(OpenKeys {
            ek: open(&self.keys.ek, "ek")?.key16()?,
            ak: open(&self.keys.ak, "ak")?.key16()?,
            kek: open(&self.keys.kek, "kek")?.key16()?,
            password: open(&self.keys.password, "password")?,
        })
    }

    /// The sealed secrets of the next key version with a new EK and AK (the master key and
    /// the password sealed again for that version).
    pub fn next_keys(
        &self,
        kek: &Kek,
        ek: &[u8; 16],
        ak: &[u8; 16],
    ) -> Result<SealedKeys, SecretError> {
        let open = self.open_keys(kek)?;
        let v = self
            .keys
            .version
            .checked_add(1)
            .ok_or(SecretError::Malformed)?;
        let ctx = |field| seal_context(&self.id, field, v);
        Ok(SealedKeys {
            ek: kek.try_seal(ek, &ctx("ek"))?,
            ak: kek.try_seal(ak, &ctx("ak"))?,
            kek: kek.try_seal(&open.kek, &ctx("kek"))?,
            password: kek.try_seal(open.password.expose(), &ctx("password"))?,
            version: v,
        })
    }

    /// The same secrets at the same key version sealed under another KEK (a KEK rotation:
    /// the meter's keys do not change, only what protects them at rest).
    pub fn reseal(&self, from: &Kek, to: &Kek) -> Result<SealedKeys, SecretError> {
        let open = self.open_keys(from)?;
        let v = self.keys.version;
        let ctx = |field| seal_context(&self.id, field, v);
        Ok(SealedKeys {
            ek: to.try_seal(&open.ek, &ctx("ek"))?,
            ak: to.try_seal(&open.ak, &ctx("ak"))?,
            kek: to.try_seal(&open.kek, &ctx("kek"))?,
            password: to.try_seal(open.password.expose(), &ctx("password"))?,
            version: v,
        })
    }

    /// The inventory entry of this meter; its secrets only when `with_secrets` (else empty).
    pub fn to_entry(&self, kek: &Kek, with_secrets: bool) -> Result<InventoryEntry, SecretError> {
        let (password, ek, ak, master) = if with_secrets {
            let k = self.open_keys(kek)?;
            (
                String::from_utf8_lossy(k.password.expose()).into_owned(),
                hex::encode_upper(k.ek),
                hex::encode_upper(k.ak),
                hex::encode_upper(k.kek),
            )
        } else {
            Default::default()
        };
        Ok(InventoryEntry {
            id: self.id.0.clone(),
            serial: self.serial.clone(),
            logical_device_name: self.logical_device_name.clone(),
            endpoint: self.endpoint.clone(),
            password,
            ek,
            ak,
            kek: master,
            system_title: self.system_title.clone(),
            security: "hls-gmac-authenticated-encrypted".into(),
            max_pdu: self.max_pdu,
            quirks: self.quirks.clone(),
            groups: self.groups.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::inventory::Transport;

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
            groups: BTreeMap::from([("cell".to_string(), "c1".to_string())]),
        }
    }

    #[test]
    fn sealed_keys_open_only_for_their_meter_field_and_version() {
        let kek = Kek::from_bytes(&[3u8; 32]).unwrap();
        let a = MeterRecord::from_entry(&entry(1), &kek).unwrap();
        let b = MeterRecord::from_entry(&entry(2), &kek).unwrap();
        let keys = a.open_keys(&kek).unwrap();
        assert_eq!((keys.ek[1], keys.password.expose()), (1, &b"12345678"[..]));
        // No secret in the record's text or Debug.
        let text = format!("{a:?} {}", serde_json::to_string(&a).unwrap()).to_ascii_uppercase();
        for secret in ["000102030405060708090A0B0C0D0E0F", "D0D1D2D3", "12345678"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // A sealed value moved to another meter's row does not open.
        let mut moved = b.clone();
        moved.keys.ek = a.keys.ek.clone();
        assert_eq!(moved.open_keys(&kek).unwrap_err(), SecretError::Unseal);
        // Nor under another version.
        let mut bumped = a.clone();
        bumped.keys.version = 1;
        assert_eq!(bumped.open_keys(&kek).unwrap_err(), SecretError::Unseal);
        // Rotation: a new version that opens, with the master key and password kept.
        let next = a.next_keys(&kek, &[9; 16], &[8; 16]).unwrap();
        let mut rotated = a.clone();
        rotated.keys = next;
        let k = rotated.open_keys(&kek).unwrap();
        assert_eq!((k.ek, k.ak, k.kek), ([9; 16], [8; 16], keys.kek));
        assert_eq!(rotated.keys.version, 1);
        // Another KEK opens nothing.
        let other = Kek::from_bytes(&[4u8; 32]).unwrap();
        assert!(a.open_keys(&other).is_err());
        // A KEK rotation: the same keys at the same version, now under the other KEK only.
        let mut moved_kek = rotated.clone();
        moved_kek.keys = rotated.reseal(&kek, &other).unwrap();
        assert_eq!(moved_kek.keys.version, 1);
        let r = moved_kek.open_keys(&other).unwrap();
        assert_eq!((r.ek, r.ak, r.kek), (k.ek, k.ak, k.kek));
        assert_eq!(moved_kek.open_keys(&kek).unwrap_err(), SecretError::Unseal);
        // Export: secrets only when asked.
        assert_eq!(a.to_entry(&kek, false).unwrap().ek, "");
        assert_eq!(a.to_entry(&kek, true).unwrap(), entry(1));
    }

    #[test]
    fn bad_entries_name_their_field() {
        let kek = Kek::from_bytes(&[3u8; 32]).unwrap();
        let mut e = entry(1);
        e.system_title = "00".into();
        assert_eq!(
            MeterRecord::from_entry(&e, &kek).unwrap_err().field,
            "system_title"
        );
        let mut e = entry(1);
        e.ek = "zz".into();
        assert_eq!(
            MeterRecord::from_entry(&e, &kek).unwrap_err().field,
            "ek/ak/kek"
        );
        let mut e = entry(1);
        e.id = " ".into();
        assert_eq!(MeterRecord::from_entry(&e, &kek).unwrap_err().field, "id");
    }
}
