//! The accounts port, the API's durable state: users, API tokens, refresh tokens, the audit
//! log, event acknowledgements and schedules, plus the read queries over the store's `events`
//! and `readings` tables the Store trait does not offer (filtered event lists, channel lists,
//! per-day counts). Adapters: SQLite (`SqliteAccounts`) and PostgreSQL (`PgAccounts`), opened
//! on the same database as the store; both pass `tests/accounts_conformance.rs`.
//! Only hashes of secrets are stored.

use serde::{Deserialize, Serialize};

mod pg;
mod sqlite;

pub use crate::BoxFuture;
pub use pg::PgAccounts;
pub use sqlite::SqliteAccounts;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    #[error("{0} exists already")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("stored data: {0}")]
    Corrupt(String),
    #[error("store: {0}")]
    Store(#[from] crate::StoreError),
    #[error("background task: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for AccountsError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for AccountsError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Pool(e.to_string())
    }
}

impl From<serde_json::Error> for AccountsError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// What a user or token may do, before group scopes narrow which meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, users and tokens included.
    Admin,
    /// Read, commands, acknowledgements.
    Operator,
    /// Read only.
    Viewer,
    /// Read, plus what its token's scopes allow.
    Integrator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
            Self::Integrator => "integrator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "operator" => Some(Self::Operator),
            "viewer" => Some(Self::Viewer),
            "integrator" => Some(Self::Integrator),
            _ => None,
        }
    }
}

/// A user. `groups` are `key=value` meter groups; empty means every meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
    pub groups: Vec<String>,
    pub created_at: i64,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub groups: Option<Vec<String>>,
}

/// An API token (its secret is kept only as a SHA-256 hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub role: Role,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A key that signs the API's access tokens (kept in the store when no key is configured, so
/// that every API node signs and verifies with the same ones). The highest `seq` is current.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub seq: i64,
    /// The `kid` header of the tokens it signs.
    pub kid: String,
    pub secret: Vec<u8>,
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("seq", &self.seq)
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid and now spent: issue a new pair.
    Valid { username: String },
    /// Spent before: someone replays it. Every refresh token of the user is revoked.
    Reused { username: String },
    /// Unknown or expired.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: u32,
    pub offset: u32,
}

/// Event severities, from the log an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Alarm,
}

use hes_model::event_class::{class_sql, classify, EventClass};
pub use hes_model::event_class::{FRAUD_LOG, POWER_QUALITY_LOG, STANDARD_LOG};

impl Severity {
    /// By the event's standard code, else its log (`hes_model::event_class`).
    pub fn of_event(log: &str, code: u16) -> Self {
        match classify(log, code) {
            EventClass::Alarm => Self::Alarm,
            EventClass::Warning => Self::Warning,
            EventClass::Info => Self::Info,
        }
    }

    /// The SQL condition on `e.log` and `e.code` that selects this severity (constants only).
    pub(crate) fn sql(self) -> String {
        class_sql(
            match self {
                Self::Alarm => EventClass::Alarm,
                Self::Warning => EventClass::Warning,
                Self::Info => EventClass::Info,
            },
            "e",
        )
    }
}

/// A stored event with its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub meter: String,
    pub log: String,
    pub time: i64,
    pub code: u16,
    pub acked_by: Option<String>,
    pub acked_at: Option<i64>,
}

/// The natural key of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    pub meter: String,
    pub log: String,
    pub time: i64,
    pub code: u16,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these meters (`None`: every meter).
    pub meters: Option<Vec<String>>,
    pub severity: Option<Severity>,
    pub acknowledged: Option<bool>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: u32,
    pub offset: u32,
}

/// A schedule as the API keeps it (the spec is the JSON the client posted, checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchedule {
    pub name: String,
    pub spec: String,
}

/// The port. Times are Unix seconds.
pub trait Accounts: Send + Sync {
    fn user<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<User>, AccountsError>>;
    fn users(&self) -> BoxFuture<'_, Result<Vec<User>, AccountsError>>;
    /// Fails with `Conflict` when the name is taken.
    fn create_user<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<(), AccountsError>>;
    /// A change of anything (password, role, groups) also ends every session of the user, in
    /// the same transaction: its token generation is bumped (its access tokens die), its
    /// refresh tokens are deleted and the API tokens it owns are revoked at `at`.
    fn update_user<'a>(
        &'a self,
        username: &'a str,
        update: &'a UserUpdate,
    ) -> BoxFuture<'a, Result<(), AccountsError>>;
    /// Also deletes the user's refresh tokens and revokes the API tokens it owns.
    fn delete_user<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<(), AccountsError>>;
    /// The user's token generation (carried by its access tokens; `None`: no such user).
    fn token_generation<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, AccountsError>>;

    fn create_token<'a>(
        &'a self,
        token: &'a ApiToken,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<(), AccountsError>>;
    fn tokens(&self) -> BoxFuture<'_, Result<Vec<ApiToken>, AccountsError>>;
    fn token_by_hash<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiToken>, AccountsError>>;
    /// Fails with `NotFound` for an unknown id; revoking twice keeps the first time.
    fn revoke_token<'a>(&'a self, id: &'a str, at: i64)
        -> BoxFuture<'a, Result<(), AccountsError>>;

    fn put_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
        username: &'a str,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), AccountsError>>;
    /// Spends a refresh token atomically: two concurrent uses cannot both be `Valid`.
    fn use_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<RefreshUse, AccountsError>>;

    /// The user a refresh token was issued to (spent or not; `None`: unknown).
    fn refresh_owner<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, AccountsError>>;
    /// Forgets a refresh token (logout); the user it belonged to while it was unspent.
    fn revoke_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, AccountsError>>;

    /// The signing keys, by `seq`.
    fn signing_keys(&self) -> BoxFuture<'_, Result<Vec<SigningKey>, AccountsError>>;
    /// Adds a key unless one with its `seq` exists (one statement: two nodes adding `seq` 1
    /// at once agree on the first); whether this one was added.
    fn add_signing_key<'a>(
        &'a self,
        key: &'a SigningKey,
    ) -> BoxFuture<'a, Result<bool, AccountsError>>;
    /// Drops the keys with a `seq` below this one.
    fn drop_signing_keys_before(&self, seq: i64) -> BoxFuture<'_, Result<(), AccountsError>>;
    /// Replaces the stored bytes of the keys given (matched by `seq` and `kid`), all or none;
    /// how many rows changed. For re-sealing them under another KEK.
    fn replace_signing_key_secrets<'a>(
        &'a self,
        keys: &'a [SigningKey],
    ) -> BoxFuture<'a, Result<usize, AccountsError>>;

    fn audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), AccountsError>>;
    /// Newest first; with the total matching the filter.
    fn audit_list<'a>(
        &'a self,
        filter: &'a AuditFilter,
    ) -> BoxFuture<'a, Result<(Vec<AuditEntry>, u64), AccountsError>>;

    /// Newest first; with the total matching the filter.
    fn events<'a>(
        &'a self,
        filter: &'a EventFilter,
    ) -> BoxFuture<'a, Result<(Vec<EventRow>, u64), AccountsError>>;
    fn event<'a>(
        &'a self,
        key: &'a EventKey,
    ) -> BoxFuture<'a, Result<Option<EventRow>, AccountsError>>;
    /// Acknowledges a stored event (`NotFound` when there is none); the first
    /// acknowledgement stays.
    fn ack_event<'a>(
        &'a self,
        key: &'a EventKey,
        by: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(), AccountsError>>;

    /// The OBIS codes (text) a meter has stored readings of.
    fn reading_channels<'a>(
        &'a self,
        meter: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, AccountsError>>;
    /// Readings of `obis` stored per UTC day (day start, count) in `[from, to)`. A scan: SQLite
    /// runs it on a connection of its own.
    fn readings_per_day<'a>(
        &'a self,
        obis: &'a str,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<(i64, u64)>, AccountsError>>;

    /// How many readings are stored (a full count: for statistics refreshed in the background;
    /// SQLite runs it on a connection of its own so that it holds up nothing else).
    fn readings_total(&self) -> BoxFuture<'_, Result<u64, AccountsError>>;
    /// [`Accounts::readings_per_day`] over these meters only (a group-scoped caller's).
    fn readings_per_day_of<'a>(
        &'a self,
        obis: &'a str,
        from: i64,
        to: i64,
        meters: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(i64, u64)>, AccountsError>>;
    /// How many readings of these meters are stored.
    fn readings_total_of<'a>(
        &'a self,
        meters: &'a [String],
    ) -> BoxFuture<'a, Result<u64, AccountsError>>;

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<StoredSchedule>, AccountsError>>;
    /// Creates or replaces.
    fn put_schedule<'a>(
        &'a self,
        schedule: &'a StoredSchedule,
    ) -> BoxFuture<'a, Result<(), AccountsError>>;
    fn delete_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AccountsError>>;

    /// A trivial query: the database answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), AccountsError>>;
}

impl std::fmt::Debug for dyn Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Accounts")
    }
}

pub(crate) fn groups_to_text(g: &[String]) -> String {
    serde_json::to_string(g).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn groups_from_text(s: &str) -> Result<Vec<String>, AccountsError> {
    Ok(serde_json::from_str(s)?)
}

pub(crate) fn role_from_text(s: &str) -> Result<Role, AccountsError> {
    Role::parse(s).ok_or_else(|| AccountsError::Corrupt(format!("unknown role {s:?}")))
}

/// Opens the adapter for a store location: a `postgres://` URL or an SQLite file path.
pub async fn open(url_or_path: &str) -> Result<std::sync::Arc<dyn Accounts>, AccountsError> {
    if crate::is_postgres_url(url_or_path) {
        Ok(std::sync::Arc::new(PgAccounts::connect(url_or_path).await?))
    } else {
        Ok(std::sync::Arc::new(
            SqliteAccounts::open(url_or_path).await?,
        ))
    }
}
