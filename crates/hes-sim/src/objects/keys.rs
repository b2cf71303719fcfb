//! Security setup (class 64 version 1, `0.0.43.0.0.255`): the meter's keys and system titles,
//! and the `key_transfer` method (2) by which a head-end rotates keys.
//!
//! `key_transfer` takes an array of `{key_id, key_wrapped}`: each key is wrapped (AES key
//! wrap, RFC 3394) under the **current** master key, also when the same call replaces the
//! master key. Every entry is unwrapped before anything changes, and one bad entry (a wrong
//! KEK, a length other than 24, a key id given twice, more than four entries, none at all)
//! fails the whole call with `other-reason` and changes nothing; a malformed parameter is
//! `type-unmatched`. On success the key version counter goes up by one. The new keys are for
//! new associations: applying them is the caller's business.
//!
//! The global broadcast key is stored but the simulator does not use it.
//!
//! Key bytes never appear in `Debug` output.

use std::fmt;

use dlms::axdr::Data;
use dlms::cosem::security_setup::{
    key_transfer_from_data, system_title_to_data, KeyId, SecurityPolicy, CLIENT_SYSTEM_TITLE,
    KEY_TRANSFER, SECURITY_POLICY, SECURITY_SUITE, SERVER_SYSTEM_TITLE,
};
use dlms::security::unwrap_key;
use dlms::xdlms::{ActionResult, DataAccessResult};
use dlms::SystemTitle;

/// The meter's symmetric keys.
#[derive(Clone)]
pub struct KeySet {
    /// Global unicast encryption key.
    pub ek: [u8; 16],
    /// Authentication key.
    pub ak: [u8; 16],
    /// Master key (key encryption key) that wraps the others in a key transfer.
    pub kek: [u8; 16],
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("ek", &"<redacted>")
            .field("ak", &"<redacted>")
            .field("kek", &"<redacted>")
            .finish()
    }
}

/// The security policy (version 1 bit flags) the meter reports: authenticated and encrypted
/// requests and responses, `0x6C`. Suite 0 (AES-GCM-128) has no signatures.
pub const SECURITY_POLICY_AUTH_ENC: u8 = SecurityPolicy::AUTHENTICATED_REQUEST
    | SecurityPolicy::ENCRYPTED_REQUEST
    | SecurityPolicy::AUTHENTICATED_RESPONSE
    | SecurityPolicy::ENCRYPTED_RESPONSE;

/// The security suite the meter reports: 0, AES-GCM-128.
pub const SECURITY_SUITE_0: u8 = 0;

/// The state of one security setup object.
pub struct SecuritySetup {
    keys: KeySet,
    broadcast_key: Option<[u8; 16]>,
    server_system_title: SystemTitle,
    client_system_title: Option<SystemTitle>,
    key_version: u32,
}

impl fmt::Debug for SecuritySetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecuritySetup")
            .field("keys", &self.keys)
            .field("broadcast_key", &self.broadcast_key.map(|_| "<redacted>"))
            .field("server_system_title", &self.server_system_title)
            .field("client_system_title", &self.client_system_title)
            .field("key_version", &self.key_version)
            .finish()
    }
}

impl SecuritySetup {
    /// A meter with `server_system_title` and `keys`, key version 0, no client seen yet.
    pub fn new(server_system_title: SystemTitle, keys: KeySet) -> Self {
        Self {
            keys,
            broadcast_key: None,
            server_system_title,
            client_system_title: None,
            key_version: 0,
        }
    }

    /// The current keys: new associations use these.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The global broadcast key, if one was transferred (stored, unused).
    pub fn broadcast_key(&self) -> Option<&[u8; 16]> {
        self.broadcast_key.as_ref()
    }

    /// How many successful key transfers there were.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    pub fn server_system_title(&self) -> SystemTitle {
        self.server_system_title
    }

    pub fn client_system_title(&self) -> Option<SystemTitle> {
        self.client_system_title
    }

    /// Records the system title of the last client that associated (attribute 4).
    pub fn set_client_system_title(&mut self, title: Option<SystemTitle>) {
        self.client_system_title = title;
    }

    pub fn get(&self, attribute: i8, _now: i64) -> Result<Data, DataAccessResult> {
        match attribute {
            SECURITY_POLICY => Ok(SecurityPolicy(SECURITY_POLICY_AUTH_ENC).to_data()),
            SECURITY_SUITE => Ok(Data::Enum(SECURITY_SUITE_0)),
            CLIENT_SYSTEM_TITLE => Ok(self
                .client_system_title
                .as_ref()
                .map_or(Data::OctetString(Vec::new()), system_title_to_data)),
            SERVER_SYSTEM_TITLE => Ok(system_title_to_data(&self.server_system_title)),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    /// Every attribute is read-only (the policy changes by method only, which is not
    /// implemented).
    pub fn set(&mut self, attribute: i8, _value: Data, _now: i64) -> DataAccessResult {
        match attribute {
            1..=5 => DataAccessResult::ReadWriteDenied,
            _ => DataAccessResult::ObjectUndefined,
        }
    }

    /// Method 2, `key_transfer`; the other methods are not implemented.
    pub fn action(
        &mut self,
        method: i8,
        params: Option<Data>,
        _now: i64,
    ) -> Result<Option<Data>, ActionResult> {
        match method {
            KEY_TRANSFER => self.key_transfer(params.as_ref()).map(|()| None),
            _ => Err(ActionResult::ObjectUndefined),
        }
    }

    fn key_transfer(&mut self, params: Option<&Data>) -> Result<(), ActionResult> {
        let entries = params
            .and_then(|d| key_transfer_from_data(d).ok())
            .ok_or(ActionResult::TypeUnmatched)?;
        if entries.is_empty() || entries.len() > 4 {
            return Err(ActionResult::OtherReason);
        }
        // Unwrap all first: nothing changes unless every entry is good.
        let mut next = self.keys.clone();
        let mut broadcast = self.broadcast_key;
        let mut seen = [false; 4];
        for e in &entries {
            let slot = seen
                .get_mut(e.key_id as usize)
                .ok_or(ActionResult::OtherReason)?;
            if *slot {
                return Err(ActionResult::OtherReason);
            }
            *slot = true;
            let key = unwrap_key(&self.keys.kek, &e.key_wrapped)
                .map_err(|_| ActionResult::OtherReason)?;
            match e.key_id {
                KeyId::GlobalUnicastEncryption => next.ek = key,
                KeyId::GlobalBroadcastEncryption => broadcast = Some(key),
                KeyId::Authentication => next.ak = key,
                KeyId::Master => next.kek = key,
            }
        }
        self.keys = next;
        self.broadcast_key = broadcast;
        self.key_version = self.key_version.wrapping_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::expect_used,
        clippy::panic
    )]
    use super::*;
    use dlms::cosem::security_setup::key_transfer_params;
    use dlms::security::wrap_key;

    const EK: [u8; 16] = [0x11; 16];
    const AK: [u8; 16] = [0x22; 16];
    const KEK: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE,
        0xFF,
    ];
    const NEW_EK: [u8; 16] = [0xE1; 16];
    const NEW_AK: [u8; 16] = [0xA1; 16];
    const NEW_KEK: [u8; 16] = [0x3C; 16];
    const TITLE: SystemTitle = SystemTitle(*b"HES\0\0\0\0\x01");

    fn setup() -> SecuritySetup {
        SecuritySetup::new(
            TITLE,
            KeySet {
                ek: EK,
                ak: AK,
                kek: KEK,
            },
        )
    }

    #[test]
    fn attributes() {
        let mut s = setup();
        assert_eq!(s.get(2, 0), Ok(Data::Enum(0x6C)));
        assert_eq!(s.get(3, 0), Ok(Data::Enum(0)));
        assert_eq!(s.get(4, 0), Ok(Data::OctetString(vec![])));
        assert_eq!(s.get(5, 0), Ok(Data::OctetString(TITLE.0.to_vec())));
        assert_eq!(s.get(6, 0), Err(DataAccessResult::ObjectUndefined));
        let client = SystemTitle(*b"HESCLNT1");
        s.set_client_system_title(Some(client));
        assert_eq!(s.get(4, 0), Ok(Data::OctetString(b"HESCLNT1".to_vec())));
        assert_eq!(s.client_system_title(), Some(client));
        assert_eq!(
            s.set(2, Data::Enum(0), 0),
            DataAccessResult::ReadWriteDenied
        );
        assert_eq!(
            s.set(9, Data::Enum(0), 0),
            DataAccessResult::ObjectUndefined
        );
        assert_eq!(s.get(2, 0), Ok(Data::Enum(0x6C)));
        assert_eq!(s.action(1, None, 0), Err(ActionResult::ObjectUndefined));
    }

    #[test]
    fn key_transfer_with_the_current_master_key() {
        let mut s = setup();
        let p = key_transfer_params(&[
            (
                KeyId::GlobalUnicastEncryption,
                wrap_key(&KEK, &NEW_EK).to_vec(),
            ),
            (KeyId::Authentication, wrap_key(&KEK, &NEW_AK).to_vec()),
        ]);
        assert_eq!(s.action(2, Some(p), 0), Ok(None));
        assert_eq!(s.keys().ek, NEW_EK);
        assert_eq!(s.keys().ak, NEW_AK);
        assert_eq!(s.keys().kek, KEK);
        assert_eq!(s.key_version(), 1);
        // The master key itself, with a broadcast key in the same call: both wrapped with the
        // master key in force before the call.
        let p = key_transfer_params(&[
            (KeyId::Master, wrap_key(&KEK, &NEW_KEK).to_vec()),
            (
                KeyId::GlobalBroadcastEncryption,
                wrap_key(&KEK, &[7; 16]).to_vec(),
            ),
        ]);
        assert_eq!(s.action(2, Some(p), 0), Ok(None));
        assert_eq!(s.keys().kek, NEW_KEK);
        assert_eq!(s.broadcast_key(), Some(&[7; 16]));
        assert_eq!(s.keys().ek, NEW_EK);
        assert_eq!(s.key_version(), 2);
        // From now on the new master key wraps.
        let p = key_transfer_params(&[(KeyId::Authentication, wrap_key(&KEK, &AK).to_vec())]);
        assert_eq!(s.action(2, Some(p), 0), Err(ActionResult::OtherReason));
        let p = key_transfer_params(&[(KeyId::Authentication, wrap_key(&NEW_KEK, &AK).to_vec())]);
        assert_eq!(s.action(2, Some(p), 0), Ok(None));
        assert_eq!(s.keys().ak, AK);
        assert_eq!(s.key_version(), 3);
    }

    #[test]
    fn one_bad_entry_changes_nothing() {
        let mut s = setup();
        let good = wrap_key(&KEK, &NEW_EK).to_vec();
        let wrong_kek = wrap_key(&NEW_KEK, &NEW_AK).to_vec();
        let mut flipped = wrap_key(&KEK, &NEW_AK).to_vec();
        flipped[10] ^= 1;
        let cases = [
            vec![
                (KeyId::GlobalUnicastEncryption, good.clone()),
                (KeyId::Authentication, wrong_kek),
            ],
            vec![
                (KeyId::GlobalUnicastEncryption, good.clone()),
                (KeyId::Authentication, flipped),
            ],
            vec![(KeyId::GlobalUnicastEncryption, good[..16].to_vec())],
            vec![(KeyId::GlobalUnicastEncryption, vec![0; 32])],
            vec![
                (KeyId::GlobalUnicastEncryption, good.clone()),
                (KeyId::GlobalUnicastEncryption, good.clone()),
            ],
            vec![
                (KeyId::GlobalUnicastEncryption, good.clone()),
                (KeyId::GlobalBroadcastEncryption, good.clone()),
                (KeyId::Authentication, good.clone()),
                (KeyId::Master, good.clone()),
                (KeyId::Master, good.clone()),
            ],
            vec![],
        ];
        for keys in cases {
            let n = keys.len();
            assert_eq!(
                s.action(2, Some(key_transfer_params(&keys)), 0),
                Err(ActionResult::OtherReason),
                "{n} entries"
            );
            assert_eq!(s.keys().ek, EK);
            assert_eq!(s.keys().ak, AK);
            assert_eq!(s.keys().kek, KEK);
            assert_eq!(s.broadcast_key(), None);
            assert_eq!(s.key_version(), 0);
        }
        for p in [
            None,
            Some(Data::Null),
            Some(Data::Array(vec![Data::Structure(vec![
                Data::Enum(4),
                Data::OctetString(good.clone()),
            ])])),
            Some(Data::Array(vec![Data::Structure(vec![
                Data::Unsigned(0),
                Data::OctetString(good.clone()),
            ])])),
            Some(Data::Array(vec![Data::Structure(vec![Data::Enum(0)])])),
        ] {
            assert_eq!(s.action(2, p, 0), Err(ActionResult::TypeUnmatched));
        }
        assert_eq!(s.keys().ek, EK);
        assert_eq!(s.key_version(), 0);
    }

    #[test]
    fn debug_does_not_show_keys() {
        let mut s = setup();
        let p = key_transfer_params(&[(
            KeyId::GlobalBroadcastEncryption,
            wrap_key(&KEK, &NEW_EK).to_vec(),
        )]);
        s.action(2, Some(p), 0).unwrap();
        let texts = [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{:?}", s.keys()),
        ];
        for text in &texts {
            assert!(text.contains("redacted"), "{text}");
            for key in [EK, AK, KEK, NEW_EK] {
                let lower: String = key.iter().map(|b| format!("{b:02x}")).collect();
                let upper: String = key.iter().map(|b| format!("{b:02X}")).collect();
                assert!(!text.contains(&lower), "{text}");
                assert!(!text.contains(&upper), "{text}");
                // The derived form of a byte array.
                assert!(!text.contains(&format!("{key:?}")), "{text}");
                assert!(!text.contains(&format!("{:?}", &key[..4])[1..12]), "{text}");
            }
        }
        assert!(texts[0].contains("key_version: 1"));
    }
}
