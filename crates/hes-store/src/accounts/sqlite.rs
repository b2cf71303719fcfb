//! The SQLite adapter of [`Accounts`]: its own connections to the store's database file (WAL
//! mode lets them read while the store writes), used from `spawn_blocking`: one for writes,
//! a few read-only ones for the lookups every request makes (API tokens, events), and one for
//! the long scans behind statistics.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::sqlite::ReadPool;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{
    groups_from_text, groups_to_text, role_from_text, Accounts, AccountsError, ApiToken,
    AuditEntry, AuditFilter, BoxFuture, EventFilter, EventKey, EventRow, RefreshUse, SigningKey,
    StoredSchedule, User, UserUpdate,
};

#[derive(Debug, Clone)]
pub struct SqliteAccounts {
    conn: Arc<Mutex<Connection>>,
    /// For the pure reads, so that they neither wait on one another nor on a write.
    read: ReadPool,
    /// For the long scans behind statistics, so that they hold up no other query.
    scan: Arc<Mutex<Connection>>,
}

impl SqliteAccounts {
    /// Opens the database file (creating it), applying the pending migrations (the store's
    /// and the API's).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, AccountsError> {
        let path = path.as_ref().to_path_buf();
        let text = path.to_string_lossy().into_owned();
        crate::migrate(&text).await?;
        let (conn, scan, read) = tokio::task::spawn_blocking(move || {
            let open = || {
                let conn = Connection::open(&path)?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok::<_, AccountsError>(conn)
            };
            let (conn, scan) = (open()?, open()?);
            let read = ReadPool::open(&path, ReadPool::default_size())?;
            Ok::<_, AccountsError>((conn, scan, read))
        })
        .await??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            read,
            scan: Arc::new(Mutex::new(scan)),
        })
    }

    fn with<'a, T: Send + 'static>(
        &'a self,
        f: impl FnOnce(&mut Connection) -> Result<T, AccountsError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, AccountsError>> {
        Self::on(Arc::clone(&self.conn), f)
    }

    fn with_read<'a, T: Send + 'static>(
        &'a self,
        f: impl FnOnce(&Connection) -> Result<T, AccountsError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, AccountsError>> {
        let read = self.read.clone();
        Box::pin(async move { read.run(f).await })
    }

    fn with_scan<'a, T: Send + 'static>(
        &'a self,
        f: impl FnOnce(&mut Connection) -> Result<T, AccountsError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, AccountsError>> {
        Self::on(Arc::clone(&self.scan), f)
    }

    fn on<'a, T: Send + 'static>(
        conn: Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, AccountsError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, AccountsError>> {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut guard = conn
                    .lock()
                    .map_err(|_| AccountsError::Task("a previous call panicked".into()))?;
                f(&mut guard)
            })
            .await?
        })
    }
}

/// Deletes a user's refresh tokens and revokes the API tokens it owns.
fn end_sessions(tx: &rusqlite::Transaction<'_>, username: &str) -> Result<(), AccountsError> {
    tx.execute(
        "DELETE FROM api_refresh_tokens WHERE username = ?1",
        [username],
    )?;
    tx.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE owner = ?1 AND revoked_at IS NULL",
        params![username, hes_model::clock::unix_now()],
    )?;
    Ok(())
}

/// The meters of a scoped statistic, as the JSON array `json_each` reads.
fn meters_json(meters: &[String]) -> String {
    serde_json::to_string(meters).unwrap_or_else(|_| "[]".into())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn user_from_row(r: &rusqlite::Row<'_>) -> Result<User, AccountsError> {
    let role: String = r.get(2)?;
    let groups: String = r.get(3)?;
    Ok(User {
        username: r.get(0)?,
        password_hash: r.get(1)?,
        role: role_from_text(&role)?,
        groups: groups_from_text(&groups)?,
        created_at: r.get(4)?,
    })
}

const USER_COLUMNS: &str = "username, password_hash, role, groups, created_at";
const TOKEN_COLUMNS: &str =
    "id, name, owner, role, scopes, groups, created_at, expires_at, revoked_at";

fn token_from_row(r: &rusqlite::Row<'_>) -> Result<ApiToken, AccountsError> {
    let role: String = r.get(3)?;
    let scopes: String = r.get(4)?;
    let groups: String = r.get(5)?;
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        owner: r.get(2)?,
        role: role_from_text(&role)?,
        scopes: groups_from_text(&scopes)?,
        groups: groups_from_text(&groups)?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

fn event_from_row(r: &rusqlite::Row<'_>) -> Result<EventRow, AccountsError> {
    let code: i64 = r.get(3)?;
    Ok(EventRow {
        meter: r.get(0)?,
        log: r.get(1)?,
        time: r.get(2)?,
        code: u16::try_from(code).map_err(|_| AccountsError::Corrupt("event code".into()))?,
        acked_by: r.get(4)?,
        acked_at: r.get(5)?,
    })
}

/// The WHERE clause and parameters of an event filter.
fn event_where(f: &EventFilter) -> (String, Vec<Value>) {
    let mut clauses = vec!["1 = 1".to_string()];
    let mut params = Vec::new();
    if let Some(meters) = &f.meters {
        params.push(Value::Text(groups_to_text(meters)));
        clauses.push(format!(
            "e.meter IN (SELECT value FROM json_each(?{}))",
            params.len()
        ));
    }
    if let Some(sev) = f.severity {
        clauses.push(sev.sql());
    }
    match f.acknowledged {
        Some(true) => clauses.push("a.acked_at IS NOT NULL".into()),
        Some(false) => clauses.push("a.acked_at IS NULL".into()),
        None => {}
    }
    if let Some(from) = f.from {
        params.push(Value::Integer(from));
        clauses.push(format!("e.time >= ?{}", params.len()));
    }
    if let Some(to) = f.to {
        params.push(Value::Integer(to));
        clauses.push(format!("e.time <= ?{}", params.len()));
    }
    (clauses.join(" AND "), params)
}

impl Accounts for SqliteAccounts {
    fn user<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<User>, AccountsError>> {
        let username = username.to_string();
        self.with_read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM api_users WHERE username = ?1"
            ))?;
            let mut rows = st.query([username])?;
            match rows.next()? {
                Some(r) => Ok(Some(user_from_row(r)?)),
                None => Ok(None),
            }
        })
    }

    fn users(&self) -> BoxFuture<'_, Result<Vec<User>, AccountsError>> {
        self.with_read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM api_users ORDER BY username"
            ))?;
            let mut rows = st.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(user_from_row(r)?);
            }
            Ok(out)
        })
    }

    fn create_user<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Result<(), AccountsError>> {
        let u = user.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO api_users (username, password_hash, role, groups, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    u.username,
                    u.password_hash,
                    u.role.as_str(),
                    groups_to_text(&u.groups),
                    u.created_at
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    AccountsError::Conflict(format!("user {}", u.username))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
    }

    fn update_user<'a>(
        &'a self,
        username: &'a str,
        update: &'a UserUpdate,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        let username = username.to_string();
        let u = update.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM api_users WHERE username = ?1)",
                [&username],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(AccountsError::NotFound(format!("user {username}")));
            }
            if let Some(h) = &u.password_hash {
                tx.execute(
                    "UPDATE api_users SET password_hash = ?2 WHERE username = ?1",
                    params![username, h],
                )?;
            }
            if let Some(r) = u.role {
                tx.execute(
                    "UPDATE api_users SET role = ?2 WHERE username = ?1",
                    params![username, r.as_str()],
                )?;
            }
            if let Some(g) = &u.groups {
                tx.execute(
                    "UPDATE api_users SET groups = ?2 WHERE username = ?1",
                    params![username, groups_to_text(g)],
                )?;
            }
            if u.password_hash.is_some() || u.role.is_some() || u.groups.is_some() {
                end_sessions(&tx, &username)?;
                tx.execute(
                    "UPDATE api_users SET token_gen = token_gen + 1 WHERE username = ?1",
                    [&username],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn delete_user<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<(), AccountsError>> {
        let username = username.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM api_users WHERE username = ?1", [&username])?;
            if n == 0 {
                return Err(AccountsError::NotFound(format!("user {username}")));
            }
            end_sessions(&tx, &username)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn create_token<'a>(
        &'a self,
        token: &'a ApiToken,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        let t = token.clone();
        let h = secret_hash.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO api_tokens (id, name, secret_hash, owner, role, scopes, groups,
                                         created_at, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)",
                params![
                    t.id,
                    t.name,
                    h,
                    t.owner,
                    t.role.as_str(),
                    groups_to_text(&t.scopes),
                    groups_to_text(&t.groups),
                    t.created_at,
                    t.expires_at
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    AccountsError::Conflict(format!("token {}", t.id))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })
    }

    fn tokens(&self) -> BoxFuture<'_, Result<Vec<ApiToken>, AccountsError>> {
        self.with_read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
            ))?;
            let mut rows = st.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(token_from_row(r)?);
            }
            Ok(out)
        })
    }

    fn token_by_hash<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiToken>, AccountsError>> {
        let h = secret_hash.to_string();
        self.with_read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = ?1"
            ))?;
            let mut rows = st.query([h])?;
            match rows.next()? {
                Some(r) => Ok(Some(token_from_row(r)?)),
                None => Ok(None),
            }
        })
    }

    fn revoke_token<'a>(
        &'a self,
        id: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        let id = id.to_string();
        self.with(move |c| {
            let n = c.execute(
                "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            )?;
            if n == 0 {
                return Err(AccountsError::NotFound(format!("token {id}")));
            }
            Ok(())
        })
    }

    fn put_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
        username: &'a str,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        let (h, u) = (secret_hash.to_string(), username.to_string());
        self.with(move |c| {
            // Spent and expired tokens are kept a day for reuse detection, then forgotten.
            c.execute(
                "DELETE FROM api_refresh_tokens WHERE expires_at < ?1",
                [expires_at - 2 * 86_400],
            )?;
            c.execute(
                "INSERT INTO api_refresh_tokens (secret_hash, username, expires_at, used_at)
                 VALUES (?1, ?2, ?3, NULL)",
                params![h, u, expires_at],
            )?;
            Ok(())
        })
    }

    fn use_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<RefreshUse, AccountsError>> {
        let h = secret_hash.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let row: Option<(String, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT username, expires_at, used_at FROM api_refresh_tokens
                     WHERE secret_hash = ?1",
                    [&h],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let out = match row {
                None => RefreshUse::Invalid,
                Some((username, _, Some(_))) => {
                    tx.execute(
                        "UPDATE api_refresh_tokens SET used_at = coalesce(used_at, ?2)
                         WHERE username = ?1",
                        params![username, now],
                    )?;
                    RefreshUse::Reused { username }
                }
                Some((_, expires_at, None)) if expires_at <= now => RefreshUse::Invalid,
                Some((username, _, None)) => {
                    tx.execute(
                        "UPDATE api_refresh_tokens SET used_at = ?2 WHERE secret_hash = ?1",
                        params![h, now],
                    )?;
                    RefreshUse::Valid { username }
                }
            };
            tx.commit()?;
            Ok(out)
        })
    }

    fn token_generation<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, AccountsError>> {
        let username = username.to_string();
        self.with_read(move |c| {
            Ok(
                c.prepare_cached("SELECT token_gen FROM api_users WHERE username = ?1")?
                    .query_row([&username], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn refresh_owner<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, AccountsError>> {
        let h = secret_hash.to_string();
        self.with_read(move |c| {
            Ok(
                c.prepare_cached("SELECT username FROM api_refresh_tokens WHERE secret_hash = ?1")?
                    .query_row([&h], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn revoke_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, AccountsError>> {
        let h = secret_hash.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                "DELETE FROM api_refresh_tokens WHERE secret_hash = ?1 RETURNING username, used_at",
                [&h],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .optional()?
            .and_then(|(u, used)| used.is_none().then_some(u)))
        })
    }

    fn signing_keys(&self) -> BoxFuture<'_, Result<Vec<SigningKey>, AccountsError>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, kid, secret, created_at FROM api_jwt_keys ORDER BY seq",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, kid, secret, created_at) = row?;
                out.push(SigningKey {
                    seq,
                    kid,
                    secret: hex::decode(secret)
                        .map_err(|_| AccountsError::Corrupt(format!("signing key {seq}")))?,
                    created_at,
                });
            }
            Ok(out)
        })
    }

    fn add_signing_key<'a>(
        &'a self,
        key: &'a SigningKey,
    ) -> BoxFuture<'a, Result<bool, AccountsError>> {
        let k = key.clone();
        self.with(move |c| {
            let n = c.execute(
                "INSERT INTO api_jwt_keys (seq, kid, secret, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![k.seq, k.kid, hex::encode(&k.secret), k.created_at],
            )?;
            Ok(n == 1)
        })
    }

    fn drop_signing_keys_before(&self, seq: i64) -> BoxFuture<'_, Result<(), AccountsError>> {
        self.with(move |c| {
            c.execute("DELETE FROM api_jwt_keys WHERE seq < ?1", [seq])?;
            Ok(())
        })
    }

    fn replace_signing_key_secrets<'a>(
        &'a self,
        keys: &'a [SigningKey],
    ) -> BoxFuture<'a, Result<usize, AccountsError>> {
        let keys = keys.to_vec();
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut n = 0;
            for k in &keys {
                n += tx.execute(
                    "UPDATE api_jwt_keys SET secret = ?3 WHERE seq = ?1 AND kid = ?2",
                    params![k.seq, k.kid, hex::encode(&k.secret)],
                )?;
            }
            tx.commit()?;
            Ok(n)
        })
    }

    fn audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<(), AccountsError>> {
        let e = entry.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO api_audit (time, actor, action, target, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.time, e.actor, e.action, e.target, e.detail.to_string()],
            )?;
            Ok(())
        })
    }

    fn audit_list<'a>(
        &'a self,
        filter: &'a AuditFilter,
    ) -> BoxFuture<'a, Result<(Vec<AuditEntry>, u64), AccountsError>> {
        let f = filter.clone();
        self.with_read(move |c| {
            let mut clauses = vec!["1 = 1".to_string()];
            let mut ps: Vec<Value> = Vec::new();
            if let Some(a) = f.actor {
                ps.push(Value::Text(a));
                clauses.push(format!("actor = ?{}", ps.len()));
            }
            if let Some(a) = f.action {
                ps.push(Value::Text(a));
                clauses.push(format!("action = ?{}", ps.len()));
            }
            if let Some(t) = f.from {
                ps.push(Value::Integer(t));
                clauses.push(format!("time >= ?{}", ps.len()));
            }
            if let Some(t) = f.to {
                ps.push(Value::Integer(t));
                clauses.push(format!("time <= ?{}", ps.len()));
            }
            let w = clauses.join(" AND ");
            let total: i64 = c.query_row(
                &format!("SELECT count(*) FROM api_audit WHERE {w}"),
                params_from_iter(ps.iter()),
                |r| r.get(0),
            )?;
            ps.push(Value::Integer(i64::from(f.limit)));
            ps.push(Value::Integer(i64::from(f.offset)));
            let sql = format!(
                "SELECT time, actor, action, target, detail FROM api_audit WHERE {w}
                 ORDER BY id DESC LIMIT ?{} OFFSET ?{}",
                ps.len() - 1,
                ps.len()
            );
            let mut st = c.prepare(&sql)?;
            let mut rows = st.query(params_from_iter(ps.iter()))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let detail: String = r.get(4)?;
                out.push(AuditEntry {
                    time: r.get(0)?,
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    target: r.get(3)?,
                    detail: serde_json::from_str(&detail)?,
                });
            }
            Ok((out, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn events<'a>(
        &'a self,
        filter: &'a EventFilter,
    ) -> BoxFuture<'a, Result<(Vec<EventRow>, u64), AccountsError>> {
        let f = filter.clone();
        self.with_read(move |c| {
            let (w, mut ps) = event_where(&f);
            let from = "events e LEFT JOIN api_event_acks a
                        ON a.meter = e.meter AND a.log = e.log AND a.time = e.time AND a.code = e.code";
            let total: i64 = c
                .prepare_cached(&format!("SELECT count(*) FROM {from} WHERE {w}"))?
                .query_row(params_from_iter(ps.iter()), |r| r.get(0))?;
            if f.limit == 0 {
                // Only the count was asked for (the fleet statistics, on every request).
                return Ok((Vec::new(), u64::try_from(total).unwrap_or(0)));
            }
            ps.push(Value::Integer(i64::from(f.limit)));
            ps.push(Value::Integer(i64::from(f.offset)));
            let sql = format!(
                "SELECT e.meter, e.log, e.time, e.code, a.acked_by, a.acked_at FROM {from}
                 WHERE {w} ORDER BY e.time DESC, e.meter, e.log, e.code LIMIT ?{} OFFSET ?{}",
                ps.len() - 1,
                ps.len()
            );
            let mut st = c.prepare(&sql)?;
            let mut rows = st.query(params_from_iter(ps.iter()))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(event_from_row(r)?);
            }
            Ok((out, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn event<'a>(
        &'a self,
        key: &'a EventKey,
    ) -> BoxFuture<'a, Result<Option<EventRow>, AccountsError>> {
        let k = key.clone();
        self.with_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT e.meter, e.log, e.time, e.code, a.acked_by, a.acked_at
                 FROM events e LEFT JOIN api_event_acks a
                 ON a.meter = e.meter AND a.log = e.log AND a.time = e.time AND a.code = e.code
                 WHERE e.meter = ?1 AND e.log = ?2 AND e.time = ?3 AND e.code = ?4",
            )?;
            let mut rows = st.query(params![k.meter, k.log, k.time, k.code])?;
            match rows.next()? {
                Some(r) => Ok(Some(event_from_row(r)?)),
                None => Ok(None),
            }
        })
    }

    fn ack_event<'a>(
        &'a self,
        key: &'a EventKey,
        by: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        let k = key.clone();
        let by = by.to_string();
        self.with(move |c| {
            let n = c.execute(
                "INSERT INTO api_event_acks (meter, log, time, code, acked_by, acked_at)
                 SELECT meter, log, time, code, ?5, ?6 FROM events
                 WHERE meter = ?1 AND log = ?2 AND time = ?3 AND code = ?4
                 ON CONFLICT DO NOTHING",
                params![k.meter, k.log, k.time, k.code, by, at],
            )?;
            if n == 0 {
                let exists: bool = c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM events
                     WHERE meter = ?1 AND log = ?2 AND time = ?3 AND code = ?4)",
                    params![k.meter, k.log, k.time, k.code],
                    |r| r.get(0),
                )?;
                if !exists {
                    return Err(AccountsError::NotFound("event".into()));
                }
            }
            Ok(())
        })
    }

    fn reading_channels<'a>(
        &'a self,
        meter: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, AccountsError>> {
        let m = meter.to_string();
        self.with_read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT obis FROM readings WHERE meter = ?1 ORDER BY obis",
            )?;
            let rows = st.query_map([m], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn readings_per_day<'a>(
        &'a self,
        obis: &'a str,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<(i64, u64)>, AccountsError>> {
        let o = obis.to_string();
        self.with_scan(move |c| {
            let mut st = c.prepare_cached(
                "SELECT time - (time % 86400) AS day, count(*) FROM readings
                 WHERE obis = ?1 AND time >= ?2 AND time < ?3 GROUP BY day ORDER BY day",
            )?;
            let rows = st.query_map(params![o, from, to], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (d, n) = r?;
                out.push((d, u64::try_from(n).unwrap_or(0)));
            }
            Ok(out)
        })
    }

    fn readings_total(&self) -> BoxFuture<'_, Result<u64, AccountsError>> {
        self.with_scan(|c| {
            let n: i64 = c.query_row("SELECT count(*) FROM readings", [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn readings_per_day_of<'a>(
        &'a self,
        obis: &'a str,
        from: i64,
        to: i64,
        meters: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<(i64, u64)>, AccountsError>> {
        let (o, m) = (obis.to_string(), meters_json(meters));
        self.with_scan(move |c| {
            let mut st = c.prepare_cached(
                "SELECT time - (time % 86400) AS day, count(*) FROM readings
                 WHERE meter IN (SELECT value FROM json_each(?4))
                   AND obis = ?1 AND time >= ?2 AND time < ?3 GROUP BY day ORDER BY day",
            )?;
            let rows = st.query_map(params![o, from, to, m], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (d, n) = r?;
                out.push((d, u64::try_from(n).unwrap_or(0)));
            }
            Ok(out)
        })
    }

    fn readings_total_of<'a>(
        &'a self,
        meters: &'a [String],
    ) -> BoxFuture<'a, Result<u64, AccountsError>> {
        let m = meters_json(meters);
        self.with_scan(move |c| {
            let n: i64 = c.query_row(
                "SELECT count(*) FROM readings WHERE meter IN (SELECT value FROM json_each(?1))",
                [m],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<StoredSchedule>, AccountsError>> {
        self.with_read(|c| {
            let mut st = c.prepare_cached("SELECT name, spec FROM api_schedules ORDER BY name")?;
            let rows = st.query_map([], |r| {
                Ok(StoredSchedule {
                    name: r.get(0)?,
                    spec: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn put_schedule<'a>(
        &'a self,
        schedule: &'a StoredSchedule,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        let s = schedule.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO api_schedules (name, spec) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
                params![s.name, s.spec],
            )?;
            Ok(())
        })
    }

    fn delete_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AccountsError>> {
        let n = name.to_string();
        self.with(move |c| {
            if c.execute("DELETE FROM api_schedules WHERE name = ?1", [&n])? == 0 {
                return Err(AccountsError::NotFound(format!("schedule {n}")));
            }
            Ok(())
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), AccountsError>> {
        self.with_read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
    }
}
