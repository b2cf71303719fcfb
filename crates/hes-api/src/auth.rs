//! Authentication: argon2 password hashes, HS256 access tokens (JWT), opaque refresh and API
//! token secrets (stored as SHA-256 hashes), the authenticated principal with its permissions
//! and group scope, and the login rate limiter.

pub use hes_model::clock::unix_now;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::{Accounts, Role, SigningKey};
use crate::error::ApiError;

/// Argon2id cost. The default follows the OWASP minimum (19 MiB, 2 passes); tests use less.
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub m_kib: u32,
    pub t: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self {
            m_kib: 19_456,
            t: 2,
        }
    }
}

fn argon2(cost: HashCost) -> Result<Argon2<'static>, ApiError> {
    let params = argon2::Params::new(cost.m_kib, cost.t, 1, None).map_err(ApiError::internal)?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// A PHC string (`$argon2id$v=19$...`). CPU-heavy: call from `spawn_blocking`.
pub fn hash_password(password: &str, cost: HashCost) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Ok(argon2(cost)?
        .hash_password(password.as_bytes(), &salt)
        .map_err(ApiError::internal)?
        .to_string())
}

/// Whether `password` matches the PHC string `hash` (its own parameters apply). A malformed
/// hash never matches. CPU-heavy: call from `spawn_blocking`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// The rules every password follows (the first admin's from `HES_ADMIN_PASSWORD` too).
pub fn check_password(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < 8 || p.len() > 1024 {
        return Err(ApiError::BadRequest(
            "password: 8 to 1024 characters".into(),
        ));
    }
    Ok(())
}

/// Hex SHA-256 of a token secret: what the database keeps.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `n` random bytes as base64url.
pub fn random_secret(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A generated password for the first admin: 20 characters of base64url.
pub fn generate_password() -> String {
    random_secret(15)
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default)]
    pub groups: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    /// The user's token generation when the token was issued: a change of the user's
    /// password, role or groups bumps it in the store, and older tokens stop being accepted.
    #[serde(default)]
    pub gen: i64,
}

/// Shortest `HES_JWT_SECRET`, in bytes (HS256 wants a key as long as its hash).
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone)]
struct SignKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SignKey {
    fn new(kid: String, bytes: &[u8]) -> Self {
        Self {
            kid,
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        }
    }
}

/// The current key signs; the others (older keys kept in the store) still verify.
#[derive(Clone)]
struct KeySet {
    current: SignKey,
    others: Vec<SignKey>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<&SignKey> {
        match kid {
            None => Some(&self.current),
            Some(k) => std::iter::once(&self.current)
                .chain(&self.others)
                .find(|x| x.kid == k),
        }
    }
}

/// The keys that sign access tokens (HS256, with a `kid` header); every API node of a
/// deployment shares them: either one key given to every node (`HES_JWT_SECRET`), or keys
/// kept in the accounts database ([`JwtKey::from_store`]), created once by whichever node
/// starts first and rotated with [`JwtKey::rotate`]. Never printed (`Debug` shows no key).
#[derive(Clone)]
pub struct JwtKey {
    set: Arc<RwLock<KeySet>>,
    store: Option<Arc<dyn Accounts>>,
    /// Seals the keys kept in the store under the KEK (the registry's), so that a copy of the
    /// accounts database cannot forge tokens.
    sealer: Option<Arc<hes_store::Registry>>,
    reloaded: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKey(..)")
    }
}

/// A key id that names a key without revealing it: the start of its SHA-256.
fn kid_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes).get(..8).unwrap_or_default())
}

impl JwtKey {
    fn of(
        set: KeySet,
        store: Option<Arc<dyn Accounts>>,
        sealer: Option<Arc<hes_store::Registry>>,
    ) -> Self {
        Self {
            set: Arc::new(RwLock::new(set)),
            store,
            sealer,
            reloaded: Arc::new(Mutex::new(None)),
        }
    }

    /// One fixed key (any length: see [`JwtKey::from_secret_text`] for the checked one).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self::of(
            KeySet {
                current: SignKey::new(kid_of(&bytes), &bytes),
                others: Vec::new(),
            },
            None,
            None,
        )
    }

    pub fn random() -> Self {
        let mut b = vec![0u8; MIN_SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut b);
        Self::new(b)
    }

    /// The key of `HES_JWT_SECRET`: hex, at least 32 bytes. The error says why without
    /// repeating the value.
    pub fn from_secret_text(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| "HES_JWT_SECRET must be hex (64 or more hex digits)".to_string())?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "HES_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes ({} hex digits); it has {}",
                2 * MIN_SECRET_BYTES,
                bytes.len()
            ));
        }
        Ok(Self::new(bytes))
    }

    /// The keys kept in the accounts database; the first is created when there is none (in
    /// one statement, so that nodes starting together agree on it).
    pub async fn from_store(accounts: Arc<dyn Accounts>) -> Result<Self, ApiError> {
        let set = load_or_create(&*accounts, None).await?;
        Ok(Self::of(set, Some(accounts), None))
    }

    /// [`JwtKey::from_store`] with the keys sealed under the KEK of `registry` at rest (the
    /// production set-up): a key that does not open under it stops the node with an error.
    pub async fn from_store_sealed(
        accounts: Arc<dyn Accounts>,
        registry: Arc<hes_store::Registry>,
    ) -> Result<Self, ApiError> {
        let set = load_or_create(&*accounts, Some(&registry)).await?;
        Ok(Self::of(set, Some(accounts), Some(registry)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.set.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.read().current.kid.clone()
    }

    /// Reads the keys from the store again (a key rotated by another node, or by this one).
    pub async fn reload(&self) -> Result<(), ApiError> {
        if let Some(store) = &self.store {
            let set = load_or_create(&**store, self.sealer.as_deref()).await?;
            *self.set.write().unwrap_or_else(|p| p.into_inner()) = set;
        }
        Ok(())
    }

    /// A new key becomes current (for every node: the others take it when they meet a token
    /// it signed, or at their next reload); keys replaced more than `keep_s` ago (the
    /// longest an access token lives) are dropped. Returns the new key's id.
    pub async fn rotate(&self, keep_s: i64) -> Result<String, ApiError> {
        let Some(store) = &self.store else {
            return Err(ApiError::Conflict(
                "the signing key is set by HES_JWT_SECRET; change it on every node instead".into(),
            ));
        };
        let now = unix_now();
        let keys = store.signing_keys().await?;
        let seq = keys.iter().map(|k| k.seq).max().unwrap_or(0) + 1;
        let mut secret = vec![0u8; MIN_SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut secret);
        let kid = format!("{seq}-{}", random_secret(6));
        let key = SigningKey {
            seq,
            secret: seal(self.sealer.as_deref(), &kid, secret)?,
            kid,
            created_at: now,
        };
        // Two rotations at once: one adds `seq`, the other's key is dropped, both end with
        // the same current key.
        store.add_signing_key(&key).await?;
        // A key may go once its successor has signed for `keep_s`: no token it signed lives on.
        let keys = store.signing_keys().await?;
        if let Some(oldest_needed) = keys.windows(2).find_map(|w| match w {
            [old, next] if next.created_at > now - keep_s => Some(old.seq),
            _ => None,
        }) {
            store.drop_signing_keys_before(oldest_needed).await?;
        } else if let Some(last) = keys.last() {
            store.drop_signing_keys_before(last.seq).await?;
        }
        self.reload().await?;
        Ok(self.current_kid())
    }

    /// A signed HS256 JWT with the current key's id.
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        let key = self.read().current.clone();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid);
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(ApiError::internal)
    }

    /// The claims of a token one of the keys signed that has not expired at `now`. Only HS256
    /// is accepted (no `none`, no algorithm confusion).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        let invalid = || ApiError::Unauthorized("invalid access token".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let key = self
            .read()
            .find(header.kid.as_deref())
            .cloned()
            .ok_or_else(invalid)?;
        verify_with(&key, token, now)
    }

    /// [`JwtKey::verify`], reading the keys from the store again (at most once a second) when
    /// the token names a key this node does not know yet (rotated by another node).
    pub async fn verify_fresh(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        match self.verify(token, now) {
            Err(ApiError::Unauthorized(_)) if self.store.is_some() && self.unknown_kid(token) => {
                let due = {
                    let mut at = self.reloaded.lock().unwrap_or_else(|p| p.into_inner());
                    let due = at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                    if due {
                        *at = Some(Instant::now());
                    }
                    due
                };
                if due {
                    self.reload().await?;
                }
                self.verify(token, now)
            }
            other => other,
        }
    }

    fn unknown_kid(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.kid)
            .is_some_and(|k| self.read().find(Some(&k)).is_none())
    }
}

fn verify_with(key: &SignKey, token: &str, now: i64) -> Result<Claims, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked against the caller's clock below, without leeway, so that tests and
    // every node agree on the instant a token dies.
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
        .map_err(|_| ApiError::Unauthorized("invalid access token".into()))?
        .claims;
    if claims.exp <= now {
        return Err(ApiError::Unauthorized("access token expired".into()));
    }
    Ok(claims)
}

/// What a stored key's bytes start with when they are sealed under the KEK.
const SEALED: &[u8] = b"kek:";

fn seal_context(kid: &str) -> String {
    format!("api-jwt-key:{kid}")
}

/// The bytes to store for `secret`: sealed under the KEK when there is one (a KEK in an HSM
/// that cannot seal stops here, rather than store something that never opens).
fn seal(
    sealer: Option<&hes_store::Registry>,
    kid: &str,
    secret: Vec<u8>,
) -> Result<Vec<u8>, ApiError> {
    match sealer {
        Some(r) => {
            let sealed = r
                .kek()
                .try_seal(&secret, &seal_context(kid))
                .map_err(|e| ApiError::Internal(format!("sealing signing key {kid}: {e}")))?;
            Ok([SEALED, sealed.as_str().as_bytes()].concat())
        }
        None => Ok(secret),
    }
}

/// The key of a stored row; a sealed one needs the KEK it was sealed under (bound to its id,
/// so that a sealed key moved to another row does not open either).
fn unseal(sealer: Option<&hes_store::Registry>, k: &SigningKey) -> Result<Vec<u8>, ApiError> {
    let Some(sealed) = k.secret.strip_prefix(SEALED) else {
        return Ok(k.secret.clone());
    };
    let sealer = sealer.ok_or_else(|| {
        ApiError::Internal(format!(
            "signing key {} is sealed and no KEK is given",
            k.kid
        ))
    })?;
    let text = String::from_utf8(sealed.to_vec())
        .map_err(|_| ApiError::Internal(format!("signing key {}: malformed", k.kid)))?;
    let open = sealer
        .kek()
        .open(
            &hes_model::secrets::Sealed::from_stored(text),
            &seal_context(&k.kid),
        )
        .map_err(|e| ApiError::Internal(format!("signing key {}: {e}", k.kid)))?;
    Ok(open.expose().to_vec())
}

/// A stored signing key re-sealed from one KEK to another (`hes kek rotate`): `None` when it
/// is not sealed (kept in clear without a KEK) or opens under `to` already.
pub fn reseal_signing_key(
    from: &hes_model::secrets::Kek,
    to: &hes_model::secrets::Kek,
    k: &SigningKey,
) -> Result<Option<SigningKey>, hes_model::secrets::SecretError> {
    let Some(sealed) = k.secret.strip_prefix(SEALED) else {
        return Ok(None);
    };
    let sealed = hes_model::secrets::Sealed::from_stored(
        String::from_utf8(sealed.to_vec())
            .map_err(|_| hes_model::secrets::SecretError::Malformed)?,
    );
    let ctx = seal_context(&k.kid);
    let open = match from.open(&sealed, &ctx) {
        Ok(open) => open,
        Err(hes_model::secrets::SecretError::Unseal) if to.open(&sealed, &ctx).is_ok() => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let resealed = to.try_seal(open.expose(), &ctx)?;
    Ok(Some(SigningKey {
        secret: [SEALED, resealed.as_str().as_bytes()].concat(),
        ..k.clone()
    }))
}

async fn load_or_create(
    accounts: &dyn Accounts,
    sealer: Option<&hes_store::Registry>,
) -> Result<KeySet, ApiError> {
    let mut keys = accounts.signing_keys().await?;
    if keys.is_empty() {
        let mut secret = vec![0u8; MIN_SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut secret);
        let kid = format!("1-{}", random_secret(6));
        let first = SigningKey {
            seq: 1,
            secret: seal(sealer, &kid, secret)?,
            kid,
            created_at: unix_now(),
        };
        // Another node may have added its first key since: then that one is kept.
        accounts.add_signing_key(&first).await?;
        keys = accounts.signing_keys().await?;
    }
    let mut keys: Vec<SignKey> = keys
        .iter()
        .rev()
        .map(|k| Ok(SignKey::new(k.kid.clone(), &unseal(sealer, k)?)))
        .collect::<Result<_, ApiError>>()?;
    if keys.is_empty() {
        return Err(ApiError::Internal("no signing key in the store".into()));
    }
    let current = keys.remove(0);
    Ok(KeySet {
        current,
        others: keys,
    })
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read meters, readings, events, jobs, statistics.
    Read,
    /// Send commands, cancel jobs.
    Command,
    /// Acknowledge events.
    Ack,
    /// Users, tokens, meters, schedules, the audit log.
    Admin,
    /// Webhook subscriptions (for the meters of the principal's groups).
    Webhooks,
}

impl Permission {
    pub fn scope(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Command => "command",
            Self::Ack => "ack",
            Self::Admin => "admin",
            Self::Webhooks => "webhooks",
        }
    }
}

/// Token scopes that exist.
pub const SCOPES: [&str; 5] = ["read", "command", "ack", "admin", "webhooks"];

/// Who is asking: a user (JWT) or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// `(key, value)` meter groups; empty = every meter.
    pub groups: Vec<(String, String)>,
    /// The scopes of an API token (`None` for a user).
    pub scopes: Option<Vec<String>>,
}

/// `key=value` into a pair.
pub fn parse_group(g: &str) -> Option<(String, String)> {
    let (k, v) = g.split_once('=')?;
    if k.is_empty() || v.is_empty() {
        return None;
    }
    Some((k.to_string(), v.to_string()))
}

impl Principal {
    pub fn new(name: String, role: Role, groups: &[String], scopes: Option<Vec<String>>) -> Self {
        Self {
            name,
            role,
            groups: groups.iter().filter_map(|g| parse_group(g)).collect(),
            scopes,
        }
    }

    pub fn allows(&self, p: Permission) -> bool {
        let by_role = match self.role {
            Role::Admin => true,
            // Webhooks too (they push the data of the operator's own groups out).
            Role::Operator => p != Permission::Admin,
            Role::Viewer => p == Permission::Read,
            // An integrator reads; anything else only through its token's scopes.
            Role::Integrator => p != Permission::Admin,
        };
        let by_scope = match &self.scopes {
            None => self.role != Role::Integrator || p == Permission::Read,
            Some(s) if s.is_empty() => self.role != Role::Integrator || p == Permission::Read,
            Some(s) => s.iter().any(|x| x == p.scope()),
        };
        by_role && by_scope
    }

    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.allows(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} may not {} here",
                self.role.as_str(),
                p.scope()
            )))
        }
    }

    pub fn unrestricted(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether the principal's group scope covers a meter with these groups.
    pub fn sees_groups(&self, groups: &std::collections::BTreeMap<String, String>) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|(k, v)| groups.get(k).is_some_and(|x| x == v))
    }

    /// Whether a user or token with this role, these scopes and groups would have no right
    /// and no meter beyond this principal's: what it may create, change or hand out. A
    /// group-scoped principal covers only principals scoped to some of its own groups.
    pub fn covers(&self, role: Role, scopes: Option<&[String]>, groups: &[String]) -> bool {
        let other = Principal::new(String::new(), role, groups, scopes.map(<[String]>::to_vec));
        let rights = [
            Permission::Read,
            Permission::Command,
            Permission::Ack,
            Permission::Admin,
            Permission::Webhooks,
        ];
        rights.iter().all(|p| !other.allows(*p) || self.allows(*p))
            && self.covers_groups(&other.groups)
            // Entries that are not key=value would be dropped above and widen the scope.
            && other.groups.len() == groups.len()
    }

    /// Whether these groups lie within the principal's (no groups: every meter).
    pub fn covers_groups(&self, groups: &[(String, String)]) -> bool {
        self.groups.is_empty()
            || (!groups.is_empty() && groups.iter().all(|g| self.groups.contains(g)))
    }

    pub fn groups_text(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// Failed logins per key (a username, a client address) within a sliding window; bounded in
/// memory (the oldest keys are dropped first when full).
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    max_keys: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            max_keys: 100_000,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds to wait)` when any of `keys` is over the limit.
    pub fn check(&self, keys: &[&str]) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.lock();
        for k in keys {
            if let Some(q) = map.get_mut(*k) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > self.window)
                {
                    q.pop_front();
                }
                if q.len() >= self.max_failures {
                    let oldest = q.front().copied().unwrap_or(now);
                    let wait = self.window.saturating_sub(now.duration_since(oldest));
                    return Err(wait.as_secs().max(1));
                }
            }
        }
        Ok(())
    }

    /// Counts an attempt against every key before it is tried (so that concurrent attempts
    /// cannot all pass the check before any is counted): `Err(seconds to wait)`, counting
    /// nothing, when any key is at its limit. A successful attempt is taken back with
    /// [`LoginLimiter::succeeded_attempt`].
    pub fn attempt(&self, keys: &[&str]) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.lock();
        for k in keys {
            if let Some(q) = map.get_mut(*k) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > self.window)
                {
                    q.pop_front();
                }
                if q.len() >= self.max_failures {
                    let oldest = q.front().copied().unwrap_or(now);
                    let wait = self.window.saturating_sub(now.duration_since(oldest));
                    return Err(wait.as_secs().max(1));
                }
            }
        }
        Self::record(
            &mut map,
            keys,
            now,
            self.window,
            self.max_keys,
            self.max_failures,
        );
        Ok(())
    }

    /// A login that succeeded: its user's failures are forgotten, and the attempt it counted
    /// against the other keys (the client address) is taken back.
    pub fn succeeded_attempt(&self, user_key: &str, other_keys: &[&str]) {
        let mut map = self.lock();
        map.remove(user_key);
        for k in other_keys {
            if let Some(q) = map.get_mut(*k) {
                q.pop_back();
            }
        }
    }

    fn record(
        map: &mut HashMap<String, VecDeque<Instant>>,
        keys: &[&str],
        now: Instant,
        window: Duration,
        max_keys: usize,
        max_failures: usize,
    ) {
        if map.len() >= max_keys {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= window));
            if map.len() >= max_keys {
                map.clear();
            }
        }
        for k in keys {
            let q = map.entry((*k).to_string()).or_default();
            q.push_back(now);
            while q.len() > max_failures {
                q.pop_front();
            }
        }
    }

    pub fn failed(&self, keys: &[&str]) {
        let mut map = self.lock();
        Self::record(
            &mut map,
            keys,
            Instant::now(),
            self.window,
            self.max_keys,
            self.max_failures,
        );
    }

    pub fn succeeded(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn jwt_round_trip_and_tamper() {
        let k = JwtKey::random();
        let c = Claims {
            sub: "ann".into(),
            role: Role::Viewer,
            groups: vec!["cell=cell-3".into()],
            iat: 100,
            exp: 1000,
            gen: 3,
        };
        let t = k.sign(&c).unwrap();
        assert_eq!(k.verify(&t, 500).unwrap(), c);
        assert!(k.verify(&t, 1000).is_err());
        assert!(JwtKey::random().verify(&t, 500).is_err());
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"ann","role":"admin","iat":1,"exp":9999}"#);
        parts[1] = &forged;
        assert!(k.verify(&parts.join("."), 500).is_err());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
        );
        assert!(k.verify(&none, 500).is_err());
        assert!(k.verify("garbage", 500).is_err());
        // Signed right but with another algorithm: refused.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &c,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(JwtKey::new(b"k".to_vec()).verify(&hs512, 500).is_err());
        // Same key bytes, another node: accepted.
        let shared = JwtKey::new(b"shared secret".to_vec());
        let t = shared.sign(&c).unwrap();
        assert_eq!(
            JwtKey::new(b"shared secret".to_vec())
                .verify(&t, 999)
                .unwrap(),
            c
        );
    }

    #[test]
    fn secrets_are_long_enough_and_tokens_name_their_key() {
        assert!(JwtKey::from_secret_text("00ff")
            .unwrap_err()
            .contains("at least 32 bytes"));
        assert!(JwtKey::from_secret_text("zz").is_err());
        let k = JwtKey::from_secret_text(&"ab".repeat(32)).unwrap();
        let c = Claims {
            sub: "ann".into(),
            role: Role::Viewer,
            groups: vec![],
            iat: 1,
            exp: 100,
            gen: 0,
        };
        let t = k.sign(&c).unwrap();
        let h = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(h.kid.as_deref(), Some(k.current_kid().as_str()));
        assert!(!format!("{k:?}").contains("ab"));
    }

    #[test]
    fn attempts_count_before_they_are_tried() {
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        assert!(l.attempt(&["u:ann", "ip:1"]).is_ok());
        assert!(l.attempt(&["u:ann", "ip:1"]).is_ok());
        assert!(l.attempt(&["u:ann", "ip:1"]).is_err());
        let l = LoginLimiter::new(2, Duration::from_secs(60));
        assert!(l.attempt(&["u:ann", "ip:1"]).is_ok());
        l.succeeded_attempt("u:ann", &["ip:1"]);
        assert!(l.attempt(&["u:bob", "ip:1"]).is_ok());
        assert!(l.attempt(&["u:cid", "ip:1"]).is_ok());
        assert!(l.attempt(&["u:dan", "ip:1"]).is_err());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let cost = HashCost { m_kib: 64, t: 1 };
        let h = hash_password("s3cret", cost).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3creT", &h));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn permissions_by_role_and_scope() {
        let p = |role, scopes: Option<Vec<&str>>| {
            Principal::new(
                "x".into(),
                role,
                &[],
                scopes.map(|s| s.into_iter().map(String::from).collect()),
            )
        };
        assert!(p(Role::Viewer, None).allows(Permission::Read));
        assert!(!p(Role::Viewer, None).allows(Permission::Command));
        assert!(p(Role::Operator, None).allows(Permission::Command));
        assert!(!p(Role::Operator, None).allows(Permission::Admin));
        assert!(p(Role::Admin, None).allows(Permission::Admin));
        assert!(!p(Role::Integrator, None).allows(Permission::Command));
        assert!(p(Role::Integrator, Some(vec!["read", "command"])).allows(Permission::Command));
        assert!(!p(Role::Integrator, Some(vec!["admin"])).allows(Permission::Admin));
        assert!(!p(Role::Admin, Some(vec!["read"])).allows(Permission::Command));
    }

    #[test]
    fn limiter_blocks_after_the_limit() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(l.check(&["u:ann", "ip:1"]).is_ok());
            l.failed(&["u:ann", "ip:1"]);
        }
        assert!(l.check(&["u:ann"]).is_err());
        assert!(l.check(&["ip:1"]).is_err());
        assert!(l.check(&["u:bob", "ip:2"]).is_ok());
        l.succeeded("u:ann");
        assert!(l.check(&["u:ann"]).is_ok());
    }
}
