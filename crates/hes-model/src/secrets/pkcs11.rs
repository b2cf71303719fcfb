//! The KEK in a PKCS#11 token: an AES-256 secret key object that is sensitive and not
//! extractable, used for AES-GCM by the token itself. Its bytes never enter this process.
//!
//! Named by a URI in the spirit of RFC 7512:
//! `pkcs11:token=hes;object=hes-kek?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/path`
//! (`module`, `label` and `pin-file` are accepted as the shorter names; `;`, `?` and `&` all
//! separate attributes). The PIN comes only from a file: a PIN in the URI is refused, since the
//! URI ends up in command lines, environments and logs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rand::RngCore;

use super::SecretError;

/// Sessions kept open per KEK: a PKCS#11 session serves one operation at a time, so concurrent
/// sealers each take their own (SoftHSM2 and most tokens allow many).
const SESSIONS: usize = 4;

/// Where the KEK is: parsed from a `pkcs11:` URI.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub module: PathBuf,
    pub token: String,
    pub label: String,
    pub pin_file: PathBuf,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only where the PIN is, never the PIN (it is not here anyway).
        write!(
            f,
            "pkcs11:token={};object={}?module-path={}&pin-source={}",
            self.token,
            self.label,
            self.module.display(),
            self.pin_file.display()
        )
    }
}

fn hsm(what: impl std::fmt::Display) -> SecretError {
    SecretError::Hsm(what.to_string())
}

fn percent_decode(text: &str) -> Result<String, SecretError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let pair = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| hsm(format!("malformed percent-escape in the URI near {i}")))?;
            out.push(pair);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| hsm("the URI is not UTF-8"))
}

impl Pkcs11Uri {
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let rest = text
            .trim()
            .strip_prefix("pkcs11:")
            .ok_or_else(|| hsm("a PKCS#11 KEK is named by a URI starting with `pkcs11:`"))?;
        let mut attrs = HashMap::new();
        for part in rest.split([';', '?', '&']).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| hsm(format!("`{part}` in the URI is not name=value")))?;
            let key =
                match k {
                    "module" | "module-path" => "module",
                    "token" => "token",
                    "label" | "object" => "label",
                    "pin-file" | "pin-source" => "pin",
                    "pin-value" | "pin" => return Err(hsm(
                        "a PIN in the URI is refused (it would show in process lists and logs): \
                         give pin-file=PATH",
                    )),
                    // RFC 7512 attributes we do not select by.
                    "type"
                    | "manufacturer"
                    | "model"
                    | "serial"
                    | "library-description"
                    | "library-manufacturer"
                    | "library-version"
                    | "slot-description"
                    | "slot-manufacturer"
                    | "slot-id"
                    | "id"
                    | "module-name" => continue,
                    other => return Err(hsm(format!("unknown URI attribute `{other}`"))),
                };
            attrs.insert(key, percent_decode(v)?);
        }
        let mut take = |k: &str| {
            attrs
                .remove(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| hsm(format!("the URI has no {k}")))
        };
        let module = PathBuf::from(take("module")?);
        let token = take("token")?;
        let label = take("label")?;
        let pin = take("pin")?;
        let pin_file = PathBuf::from(pin.strip_prefix("file:").unwrap_or(&pin));
        Ok(Self {
            module,
            token,
            label,
            pin_file,
        })
    }

    fn what(&self) -> String {
        format!("token `{}`, key `{}`", self.token, self.label)
    }
}

/// One PKCS#11 context per module and process: `C_Initialize` may run once, and two KEKs on
/// one module (rotation between tokens) share it.
fn context(module: &Path) -> Result<Pkcs11, SecretError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = MODULES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| hsm("PKCS#11 module table poisoned"))?;
    if let Some(c) = map.get(module) {
        return Ok(c.clone());
    }
    if !module.is_file() {
        return Err(hsm(format!(
            "PKCS#11 module {} not found (softhsm2 installs /usr/lib/softhsm/libsofthsm2.so)",
            module.display()
        )));
    }
    let ctx = Pkcs11::new(module)
        .map_err(|e| hsm(format!("loading PKCS#11 module {}: {e}", module.display())))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(hsm(format!(
                "initialising PKCS#11 module {}: {e}",
                module.display()
            )))
        }
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn read_pin(uri: &Pkcs11Uri) -> Result<AuthPin, SecretError> {
    let text = std::fs::read_to_string(&uri.pin_file).map_err(|e| {
        hsm(format!(
            "reading the PIN file {}: {e}",
            uri.pin_file.display()
        ))
    })?;
    let pin = text.trim_end_matches(['\r', '\n']);
    if pin.is_empty() {
        return Err(hsm(format!(
            "the PIN file {} is empty",
            uri.pin_file.display()
        )));
    }
    Ok(AuthPin::from(pin.to_owned()))
}

fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, SecretError> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| hsm(format!("listing tokens: {e}")))?;
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| hsm(format!("token information: {e}")))?;
        if info.label().trim_end() == uri.token {
            return Ok(slot);
        }
    }
    Err(hsm(format!(
        "no initialised token labelled `{}` in {} (is SOFTHSM2_CONF set?)",
        uri.token,
        uri.module.display()
    )))
}

fn login(session: &Session, uri: &Pkcs11Uri) -> Result<(), SecretError> {
    match session.login(UserType::User, Some(&read_pin(uri)?)) {
        // The login state is the application's, shared by its sessions on the token.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            Err(hsm(format!("{}: wrong PIN", uri.what())))
        }
        Err(e) => Err(hsm(format!("{}: login: {e}", uri.what()))),
    }
}

fn key_template(uri: &Pkcs11Uri) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(uri.label.as_bytes().to_vec()),
    ]
}

/// The KEK object, checked: AES, 32 bytes, sensitive, not extractable. A key the token would
/// hand out is refused rather than used.
fn find_key(session: &Session, uri: &Pkcs11Uri) -> Result<Option<ObjectHandle>, SecretError> {
    let found = session
        .find_objects(&key_template(uri))
        .map_err(|e| hsm(format!("{}: searching: {e}", uri.what())))?;
    let key = match found.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(hsm(format!(
                "{}: more than one key has this label",
                uri.what()
            )))
        }
    };
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::ValueLen,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
            ],
        )
        .map_err(|e| hsm(format!("{}: attributes: {e}", uri.what())))?;
    let (mut sensitive, mut extractable, mut len, mut enc, mut dec) =
        (false, true, 0usize, false, false);
    for a in attrs {
        match a {
            Attribute::Sensitive(v) => sensitive = v,
            Attribute::Extractable(v) => extractable = v,
            Attribute::ValueLen(v) => len = v.into(),
            Attribute::Encrypt(v) => enc = v,
            Attribute::Decrypt(v) => dec = v,
            _ => {}
        }
    }
    if !sensitive || extractable {
        return Err(hsm(format!(
            "{}: the key is extractable or not sensitive; a KEK must never leave the token \
             (create it with `hes kek init`)",
            uri.what()
        )));
    }
    if len != 32 {
        return Err(hsm(format!("{}: not an AES-256 key", uri.what())));
    }
    if !enc || !dec {
        return Err(hsm(format!(
            "{}: the key may not encrypt and decrypt",
            uri.what()
        )));
    }
    Ok(Some(key))
}

/// Creates the KEK on the token unless it is there; `true` when created.
pub fn init_key(uri: &Pkcs11Uri) -> Result<bool, SecretError> {
    let ctx = context(&uri.module)?;
    let slot = find_slot(&ctx, uri)?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| hsm(format!("{}: opening a session: {e}", uri.what())))?;
    login(&session, uri)?;
    if find_key(&session, uri)?.is_some() {
        return Ok(false);
    }
    let mut template = key_template(uri);
    template.extend([
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
    ]);
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(|e| hsm(format!("{}: generating the key: {e}", uri.what())))?;
    Ok(true)
}

/// An open KEK on a token, with its sessions.
pub struct HsmKek {
    uri: Pkcs11Uri,
    slot: Slot,
    ctx: Pkcs11,
    // A handle is only valid while its session's login lasts: found again on reconnection.
    key: Mutex<ObjectHandle>,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for HsmKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HsmKek({})", self.uri.what())
    }
}

/// Errors after which a new session (and login) may succeed: the token restarted, the session
/// or the login was ended from outside, the key's handle went with them.
fn lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::DeviceError,
            _
        )
    )
}

impl HsmKek {
    pub fn connect(uri: &Pkcs11Uri) -> Result<Self, SecretError> {
        let ctx = context(&uri.module)?;
        let slot = find_slot(&ctx, uri)?;
        let mut sessions = Vec::with_capacity(SESSIONS);
        for _ in 0..SESSIONS {
            let s = ctx
                .open_ro_session(slot)
                .map_err(|e| hsm(format!("{}: opening a session: {e}", uri.what())))?;
            sessions.push(s);
        }
        let first = sessions.first().ok_or_else(|| hsm("no session"))?;
        let key = login_and_find(first, uri)?;
        Ok(Self {
            uri: uri.clone(),
            slot,
            ctx,
            key: Mutex::new(key),
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
        })
    }

    pub fn describe(&self) -> String {
        self.uri.what()
    }

    /// Ends the application's login on the token (every session's, every KEK's of this
    /// process on it): the next operation logs in again. For tests of that recovery.
    #[doc(hidden)]
    pub fn logout(&self) -> Result<(), SecretError> {
        let s = self.session()?;
        s.logout()
            .map_err(|e| hsm(format!("{}: logout: {e}", self.uri.what())))
    }

    fn key(&self) -> Result<ObjectHandle, SecretError> {
        self.key
            .lock()
            .map(|k| *k)
            .map_err(|_| hsm("the KEK handle lock is poisoned"))
    }

    fn session(&self) -> Result<std::sync::MutexGuard<'_, Session>, SecretError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.sessions.len();
        // A free session if there is one, else wait for the one in turn.
        for i in 0..n {
            if let Some(Ok(s)) = self.sessions.get((start + i) % n).map(Mutex::try_lock) {
                return Ok(s);
            }
        }
        self.sessions
            .get(start % n.max(1))
            .ok_or_else(|| hsm("no session"))?
            .lock()
            .map_err(|_| hsm("a PKCS#11 session lock is poisoned"))
    }

    /// Runs `op` on a session; when the session or the login is gone, once more on a new
    /// session, logged in, with the key found again. `what` names the operation in errors.
    fn run<T>(
        &self,
        what: &str,
        op: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, SecretError> {
        let mut s = self.session()?;
        let e = match op(&s, self.key()?) {
            Ok(v) => return Ok(v),
            Err(e) if !lost(&e) => return Err(self.classify(&s, what, e)),
            Err(e) => e,
        };
        let fresh = self.ctx.open_ro_session(self.slot).map_err(|e2| {
            hsm(format!(
                "{}: {what}: {e}; a new session: {e2}",
                self.uri.what()
            ))
        })?;
        let key = login_and_find(&fresh, &self.uri)?;
        *self
            .key
            .lock()
            .map_err(|_| hsm("the KEK handle lock is poisoned"))? = key;
        *s = fresh;
        op(&s, key).map_err(|e| self.classify(&s, what, e))
    }

    fn classify(&self, s: &Session, what: &str, e: CkError) -> SecretError {
        match e {
            // The tag does not verify: wrong KEK, context or bytes, not a token fault.
            CkError::Pkcs11(RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange, _) => {
                SecretError::Unseal
            }
            // SoftHSM2 reports a tag mismatch as a general error; a token that still answers on
            // the same session is healthy, so the input was at fault.
            CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _)
                if what == "decrypting" && s.get_session_info().is_ok() =>
            {
                SecretError::Unseal
            }
            e => hsm(format!("{}: {what}: {e}", self.uri.what())),
        }
    }

    pub fn seal(&self, plain: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        let mut iv = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut iv);
        let ct = self.run("encrypting", |s, key| {
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, context.as_bytes(), 128.into())?;
            s.encrypt(&Mechanism::AesGcm(params), key, plain)
        })?;
        if ct.len() != plain.len() + 16 {
            return Err(hsm(format!(
                "{}: the token returned {} bytes for {} (expected ciphertext and a 16-byte tag)",
                self.uri.what(),
                ct.len(),
                plain.len()
            )));
        }
        let mut out = iv.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, nonce: &[u8], ct: &[u8], context: &str) -> Result<Vec<u8>, SecretError> {
        let mut iv = [0u8; 12];
        iv.copy_from_slice(nonce.get(..12).ok_or(SecretError::Malformed)?);
        self.run("decrypting", |s, key| {
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, context.as_bytes(), 128.into())?;
            s.decrypt(&Mechanism::AesGcm(params), key, ct)
        })
    }
}

fn login_and_find(session: &Session, uri: &Pkcs11Uri) -> Result<ObjectHandle, SecretError> {
    login(session, uri)?;
    find_key(session, uri)?.ok_or_else(|| {
        hsm(format!(
            "{}: no such key on the token (create it with `hes kek init --pkcs11 URI`)",
            uri.what()
        ))
    })
}
