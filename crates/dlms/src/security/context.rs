//! One association's ciphering state: keys, system titles and invocation counters, and the
//! wrapping and unwrapping of whole APDUs with it.

use std::fmt;

use super::gcm::{open, seal, SecurityHeader};
use super::general::{GeneralCiphering, KeyId, KeyInfo};
use super::tags::{
    ded_tag, glo_tag, plain_tag, GENERAL_CIPHERING, GENERAL_DED_CIPHERING, GENERAL_GLO_CIPHERING,
};
use super::{CipherKeys, Redacted, SecurityControl, SecurityError};
use crate::codec::{put_length, put_octets, Codec, DecodeError, Reader};
use crate::types::{SecurityLevel, SystemTitle};

/// The suite of [`SecurityContext::new`]; [`SecurityContext::with_suite`] changes it.
const SUITE_0: u8 = 0;

/// A plain APDU recovered by [`SecurityContext::unprotect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprotected {
    pub apdu: Vec<u8>,
    /// The protection the APDU actually had.
    pub level: SecurityLevel,
    pub invocation_counter: u32,
    /// The originator's system title when the APDU carried one (general-glo/-ded/-ciphering).
    pub system_title: Option<SystemTitle>,
    /// Protected with the dedicated key.
    pub dedicated: bool,
}

/// Rejects invocation counters that do not strictly increase (Green Book 9.2.7.2.4.3: the
/// receiver keeps the last accepted value and refuses anything not above it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayGuard {
    last: Option<u32>,
}

impl ReplayGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard that refuses `last_seen` and everything below it.
    pub fn with_floor(last_seen: u32) -> Self {
        Self {
            last: Some(last_seen),
        }
    }

    pub fn last(&self) -> Option<u32> {
        self.last
    }

    /// Whether `ic` would be accepted, without recording it.
    pub fn check(&self, ic: u32) -> Result<(), SecurityError> {
        match self.last {
            Some(last) if ic <= last => Err(SecurityError::Replay { received: ic, last }),
            _ => Ok(()),
        }
    }

    /// Accepts and records `ic` if it is above every counter accepted so far.
    pub fn check_and_update(&mut self, ic: u32) -> Result<(), SecurityError> {
        self.check(ic)?;
        self.last = Some(ic);
        Ok(())
    }
}

/// One association's ciphering state, one per side.
///
/// A single invocation counter sequence is used for the global and the dedicated key, both
/// when sending and when receiving (as Gurux does).
///
/// Deliberately not `Clone`: two copies would send the same invocation counter twice, and
/// reusing a GCM IV under one key gives away the authentication key and the plaintexts.
pub struct SecurityContext {
    /// The protection applied to outgoing APDUs and required of incoming ones.
    pub level: SecurityLevel,
    pub own_system_title: SystemTitle,
    /// Needed to unprotect service-specific APDUs, which do not carry it.
    pub peer_system_title: Option<SystemTitle>,
    pub global: CipherKeys,
    pub dedicated_key: Option<[u8; 16]>,
    /// The next counter to send; `None` once `u32::MAX` has been used.
    next_tx: Option<u32>,
    rx: ReplayGuard,
    /// Security suite (0, 1 or 2): the SC nibble sent and the only one accepted.
    suite: u8,
    /// Suite 2's 256-bit EK and AK, which replace `global` (and leave no dedicated key).
    wide: Option<Box<WideKeys>>,
}

/// AES-256 keys of suite 2.
#[derive(Clone)]
pub struct WideKeys {
    pub ek: [u8; 32],
    pub ak: [u8; 32],
}

impl fmt::Debug for WideKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WideKeys")
            .field("ek", &Redacted)
            .field("ak", &Redacted)
            .finish()
    }
}

impl fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityContext")
            .field("level", &self.level)
            .field("own_system_title", &self.own_system_title)
            .field("peer_system_title", &self.peer_system_title)
            .field("global", &self.global)
            .field(
                "dedicated_key",
                &self.dedicated_key.as_ref().map(|_| Redacted),
            )
            .field("next_tx", &self.next_tx)
            .field("rx", &self.rx)
            .field("suite", &self.suite)
            .field("wide", &self.wide)
            .finish()
    }
}

/// Which of the two unicast keys encrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyChoice {
    Global,
    Dedicated,
}

impl SecurityContext {
    pub fn new(
        level: SecurityLevel,
        own: SystemTitle,
        global: CipherKeys,
        first_tx_ic: u32,
    ) -> Self {
        Self {
            level,
            own_system_title: own,
            peer_system_title: None,
            global,
            dedicated_key: None,
            next_tx: Some(first_tx_ic),
            rx: ReplayGuard::new(),
            suite: SUITE_0,
            wide: None,
        }
    }

    /// The same keys under suite 0 or 1 (both AES-GCM-128: only the SC nibble differs, and
    /// an APDU of the other suite is refused). Suite 2 needs [`Self::new_suite2`].
    pub fn with_suite(mut self, suite: u8) -> Result<Self, SecurityError> {
        if suite > 1 {
            return Err(SecurityError::UnsupportedSuite(suite));
        }
        self.suite = suite;
        Ok(self)
    }

    /// A suite 2 context: AES-GCM-256 under `keys`. There is no dedicated key.
    pub fn new_suite2(
        level: SecurityLevel,
        own: SystemTitle,
        keys: WideKeys,
        first_tx_ic: u32,
    ) -> Self {
        let mut ctx = Self::new(
            level,
            own,
            CipherKeys {
                ek: [0; 16],
                ak: [0; 16],
            },
            first_tx_ic,
        );
        ctx.suite = 2;
        ctx.wide = Some(Box::new(keys));
        ctx
    }

    pub fn suite(&self) -> u8 {
        self.suite
    }

    /// The invocation counter the next protected APDU will carry (to persist it). Once
    /// `u32::MAX` has been used this stays at `u32::MAX` and [`Self::tx_exhausted`] is true.
    pub fn next_tx_invocation_counter(&self) -> u32 {
        self.next_tx.unwrap_or(u32::MAX)
    }

    /// Every counter has been used: nothing more can be sent under these keys.
    pub fn tx_exhausted(&self) -> bool {
        self.next_tx.is_none()
    }

    /// The peer's highest accepted invocation counter (to persist it).
    pub fn last_rx_invocation_counter(&self) -> Option<u32> {
        self.rx.last()
    }

    /// Refuses `last_seen` and every lower counter from the peer, e.g. after a restart from a
    /// persisted value. Never lowers an existing floor.
    pub fn set_rx_floor(&mut self, last_seen: u32) {
        if self.rx.check(last_seen).is_ok() {
            self.rx = ReplayGuard::with_floor(last_seen);
        }
    }

    /// Consumes one invocation counter for a use outside `protect`, such as the HLS-GMAC
    /// proof, which is computed under the same keys and so must not reuse an IV.
    pub fn take_tx_invocation_counter(&mut self) -> Result<u32, SecurityError> {
        self.take_tx_ic()
    }

    fn take_tx_ic(&mut self) -> Result<u32, SecurityError> {
        let ic = self.next_tx.ok_or(SecurityError::CounterExhausted)?;
        self.next_tx = ic.checked_add(1);
        Ok(ic)
    }

    fn tx_sc(&self) -> Result<SecurityControl, SecurityError> {
        if self.level == SecurityLevel::None {
            return Err(SecurityError::NoProtection);
        }
        Ok(SecurityControl::from_level(self.level, self.suite))
    }

    fn ek(&self, key: KeyChoice) -> Result<&[u8], SecurityError> {
        match (key, &self.wide) {
            (KeyChoice::Global, Some(w)) => Ok(&w.ek),
            (KeyChoice::Global, None) => Ok(&self.global.ek),
            (KeyChoice::Dedicated, Some(_)) => Err(SecurityError::MissingKey),
            (KeyChoice::Dedicated, None) => self
                .dedicated_key
                .as_ref()
                .map(|k| &k[..])
                .ok_or(SecurityError::MissingKey),
        }
    }

    fn ak(&self) -> &[u8] {
        match &self.wide {
            Some(w) => &w.ak,
            None => &self.global.ak,
        }
    }

    /// `SC || IC || ciphertext || T` of `plain_apdu`, consuming one invocation counter.
    fn seal_payload(
        &mut self,
        key: KeyChoice,
        extra_aad: &[u8],
        plain_apdu: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        let sc = self.tx_sc()?;
        // Fail on a missing key before a counter is spent.
        self.ek(key)?;
        let ic = self.take_tx_ic()?;
        seal(
            sc,
            &self.own_system_title,
            ic,
            self.ek(key)?,
            self.ak(),
            extra_aad,
            plain_apdu,
        )
    }

    /// Service-specific ciphering: `glo-/ded-tag || length || SC || IC || ciphertext || T`.
    pub fn protect(
        &mut self,
        plain_apdu: &[u8],
        dedicated: bool,
    ) -> Result<Vec<u8>, SecurityError> {
        let plain = *plain_apdu.first().ok_or(DecodeError::Truncated {
            what: "APDU tag",
            needed: 1,
        })?;
        let (tag, key) = if dedicated {
            (ded_tag(plain), KeyChoice::Dedicated)
        } else {
            (glo_tag(plain), KeyChoice::Global)
        };
        let tag = tag.ok_or(SecurityError::UnknownTag(plain))?;
        let content = self.seal_payload(key, &[], plain_apdu)?;
        let mut out = Vec::with_capacity(content.len() + 6);
        out.push(tag);
        put_octets(&mut out, &content);
        Ok(out)
    }

    /// `general-glo-ciphering`: `DB || 08 || own system title || length || SC || IC || ... || T`.
    pub fn protect_general_glo(&mut self, plain_apdu: &[u8]) -> Result<Vec<u8>, SecurityError> {
        self.protect_general(GENERAL_GLO_CIPHERING, KeyChoice::Global, plain_apdu)
    }

    /// `general-ded-ciphering`, with the dedicated key.
    pub fn protect_general_ded(&mut self, plain_apdu: &[u8]) -> Result<Vec<u8>, SecurityError> {
        self.protect_general(GENERAL_DED_CIPHERING, KeyChoice::Dedicated, plain_apdu)
    }

    fn protect_general(
        &mut self,
        tag: u8,
        key: KeyChoice,
        plain_apdu: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        let content = self.seal_payload(key, &[], plain_apdu)?;
        let mut out = Vec::with_capacity(content.len() + 15);
        out.push(tag);
        put_octets(&mut out, &self.own_system_title.0);
        put_length(&mut out, content.len());
        out.extend_from_slice(&content);
        Ok(out)
    }

    /// `general-ciphering` with the global unicast key, identified explicitly in key-info.
    /// `date-time` and `other-information` are left empty.
    pub fn protect_general_ciphering(
        &mut self,
        transaction_id: &[u8],
        recipient: &SystemTitle,
        plain_apdu: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        let mut apdu = GeneralCiphering {
            transaction_id: transaction_id.to_vec(),
            originator_system_title: self.own_system_title.0.to_vec(),
            recipient_system_title: recipient.0.to_vec(),
            date_time: Vec::new(),
            other_information: Vec::new(),
            key_info: Some(KeyInfo::IdentifiedKey(KeyId::GlobalUnicastEncryptionKey)),
            ciphered_content: Vec::new(),
        };
        let header = apdu.authenticated_header();
        apdu.ciphered_content = self.seal_payload(KeyChoice::Global, &header, plain_apdu)?;
        Ok(apdu.to_bytes())
    }

    /// Removes the protection of a glo-/ded- service-specific APDU, a general-glo/-ded-ciphering
    /// or a general-ciphering (global key) APDU, refusing replays and anything weaker than
    /// [`Self::level`].
    pub fn unprotect(&mut self, apdu: &[u8]) -> Result<Unprotected, SecurityError> {
        let mut r = Reader::new(apdu);
        let tag = r.u8("ciphered APDU tag")?;
        match tag {
            GENERAL_GLO_CIPHERING | GENERAL_DED_CIPHERING => {
                let title = r.octets("system-title")?;
                let title = match title.len() {
                    // Some pre-established associations omit it (Gurux's ignoreSystemTitle).
                    0 => None,
                    _ => Some(SystemTitle::from_slice(title).ok_or(DecodeError::Invalid {
                        what: "system-title",
                        why: "must be 8 bytes",
                    })?),
                };
                let content = r.octets("ciphered-content")?;
                r.finish("general ciphering APDU")?;
                let key = match tag {
                    GENERAL_DED_CIPHERING => KeyChoice::Dedicated,
                    _ => KeyChoice::Global,
                };
                let originator = self.originator(title)?;
                let (apdu, header) = self.open_payload(key, &originator, &[], content)?;
                Ok(self.accepted(apdu, header, title, key))
            }
            GENERAL_CIPHERING => {
                let mut r = Reader::new(apdu);
                let (gc, aad_header) = GeneralCiphering::decode_with_header(&mut r)?;
                r.finish("general-ciphering")?;
                match gc.key_info {
                    None | Some(KeyInfo::IdentifiedKey(KeyId::GlobalUnicastEncryptionKey)) => {}
                    Some(KeyInfo::IdentifiedKey(KeyId::GlobalBroadcastEncryptionKey)) => {
                        return Err(SecurityError::MissingKey)
                    }
                    Some(_) => return Err(SecurityError::UnsupportedKeyInfo),
                }
                let title = SystemTitle::from_slice(&gc.originator_system_title).ok_or(
                    DecodeError::Invalid {
                        what: "originator-system-title",
                        why: "must be 8 bytes",
                    },
                )?;
                if !gc.recipient_system_title.is_empty()
                    && gc.recipient_system_title != self.own_system_title.0
                {
                    let recipient = SystemTitle::from_slice(&gc.recipient_system_title)
                        .unwrap_or(SystemTitle([0; 8]));
                    return Err(SecurityError::SystemTitleMismatch(recipient));
                }
                let originator = self.originator(Some(title))?;
                let (apdu, header) = self.open_payload(
                    KeyChoice::Global,
                    &originator,
                    aad_header,
                    &gc.ciphered_content,
                )?;
                Ok(self.accepted(apdu, header, Some(title), KeyChoice::Global))
            }
            _ => {
                let (plain, dedicated) = plain_tag(tag).ok_or(SecurityError::UnknownTag(tag))?;
                let content = r.octets("ciphered-content")?;
                r.finish("ciphered APDU")?;
                let originator = self
                    .peer_system_title
                    .ok_or(SecurityError::MissingSystemTitle)?;
                let key = if dedicated {
                    KeyChoice::Dedicated
                } else {
                    KeyChoice::Global
                };
                let (apdu, header) = self.open_payload(key, &originator, &[], content)?;
                // The outer tag is not authenticated; the service inside must agree with it.
                if apdu.first() != Some(&plain) {
                    return Err(DecodeError::Invalid {
                        what: "ciphered APDU",
                        why: "content does not match the ciphered tag",
                    }
                    .into());
                }
                Ok(self.accepted(apdu, header, None, key))
            }
        }
    }

    /// The system title to use in the IV: the one the APDU carries, which must be the peer's
    /// when we know it.
    fn originator(&self, carried: Option<SystemTitle>) -> Result<SystemTitle, SecurityError> {
        match (carried, self.peer_system_title) {
            (Some(c), Some(p)) if c != p => Err(SecurityError::SystemTitleMismatch(c)),
            (Some(c), _) => Ok(c),
            (None, Some(p)) => Ok(p),
            (None, None) => Err(SecurityError::MissingSystemTitle),
        }
    }

    /// Checks policy and replay, then the cryptography. The counter is recorded only by
    /// [`Self::accepted`], after the tag verified, so forged APDUs cannot move it.
    fn open_payload<'a>(
        &self,
        key: KeyChoice,
        originator: &SystemTitle,
        extra_aad: &[u8],
        content: &'a [u8],
    ) -> Result<(Vec<u8>, SecurityHeader<'a>), SecurityError> {
        let header = SecurityHeader::parse(content)?;
        if header.sc.suite() != self.suite {
            return Err(SecurityError::UnsupportedSuite(header.sc.suite()));
        }
        let received = header.sc.level();
        let required = self.level;
        let needs_auth = matches!(
            required,
            SecurityLevel::Authenticated | SecurityLevel::AuthenticatedEncrypted
        );
        let needs_enc = matches!(
            required,
            SecurityLevel::Encrypted | SecurityLevel::AuthenticatedEncrypted
        );
        if (needs_auth && !header.sc.authenticated()) || (needs_enc && !header.sc.encrypted()) {
            return Err(SecurityError::InsufficientProtection { required, received });
        }
        if header.sc.broadcast() {
            // No broadcast key is configured in this context.
            return Err(SecurityError::MissingKey);
        }
        self.rx.check(header.ic)?;
        let ek = self.ek(key)?;
        let plain = open(&header, originator, ek, self.ak(), extra_aad)?;
        Ok((plain, header))
    }

    fn accepted(
        &mut self,
        apdu: Vec<u8>,
        header: SecurityHeader<'_>,
        system_title: Option<SystemTitle>,
        key: KeyChoice,
    ) -> Unprotected {
        self.rx = ReplayGuard::with_floor(header.ic);
        Unprotected {
            apdu,
            level: header.sc.level(),
            invocation_counter: header.ic,
            system_title,
            dedicated: key == KeyChoice::Dedicated,
        }
    }
}
