//! Authentication: argon2 password hashes, HS256 access tokens (JWT), opaque refresh and API
//! token secrets (stored as SHA-256 hashes), the authenticated principal with its permissions
//! and group scope, and the login rate limiter.

pub use hes_model::clock::unix_now;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::Role;
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
}

/// The key that signs access tokens; every API node of a deployment shares it.
#[derive(Clone)]
pub struct JwtKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKey(..)")
    }
}

impl JwtKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            encoding: EncodingKey::from_secret(&bytes),
            decoding: DecodingKey::from_secret(&bytes),
        }
    }

    pub fn random() -> Self {
        let mut b = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut b);
        Self::new(b)
    }

    /// A signed HS256 JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The claims of a token this key signed that has not expired at `now`. Only HS256 is
    /// accepted (no `none`, no algorithm confusion).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the caller's clock below, without leeway, so that tests and
        // every node agree on the instant a token dies.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ApiError::Unauthorized("invalid access token".into()))?
            .claims;
        if claims.exp <= now {
            return Err(ApiError::Unauthorized("access token expired".into()));
        }
        Ok(claims)
    }
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
}

impl Permission {
    pub fn scope(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Command => "command",
            Self::Ack => "ack",
            Self::Admin => "admin",
        }
    }
}

/// Token scopes that exist.
pub const SCOPES: [&str; 4] = ["read", "command", "ack", "admin"];

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

    pub fn failed(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.max_keys {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= window));
            if map.len() >= self.max_keys {
                map.clear();
            }
        }
        for k in keys {
            let q = map.entry((*k).to_string()).or_default();
            q.push_back(now);
            while q.len() > self.max_failures {
                q.pop_front();
            }
        }
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
