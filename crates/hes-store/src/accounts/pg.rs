//! The PostgreSQL adapter of [`Accounts`], through its own small `deadpool-postgres` pool on
//! the store's database.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{
    groups_from_text, groups_to_text, role_from_text, Accounts, AccountsError, ApiToken,
    AuditEntry, AuditFilter, BoxFuture, EventFilter, EventKey, EventRow, RefreshUse, SigningKey,
    StoredSchedule, User, UserUpdate,
};

pub struct PgAccounts {
    pool: Pool,
}

impl std::fmt::Debug for PgAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAccounts").finish_non_exhaustive()
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

fn refs(ps: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    ps.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

/// Deletes a user's refresh tokens and revokes the API tokens it owns.
async fn end_sessions(
    tx: &deadpool_postgres::Transaction<'_>,
    username: &str,
) -> Result<(), AccountsError> {
    tx.execute(
        "DELETE FROM api_refresh_tokens WHERE username = $1",
        &[&username],
    )
    .await?;
    tx.execute(
        "UPDATE api_tokens SET revoked_at = $2 WHERE owner = $1 AND revoked_at IS NULL",
        &[&username, &hes_model::clock::unix_now()],
    )
    .await?;
    Ok(())
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl PgAccounts {
    /// Connects (a pool of 4) and applies the pending migrations.
    pub async fn connect(url: &str) -> Result<Self, AccountsError> {
        crate::migrate(url).await?;
        let cfg = crate::pg::failover::config(url)?;
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(4)
            .build()
            .map_err(|e| AccountsError::Pool(e.to_string()))?;
        Ok(Self { pool })
    }
}

const USER_COLUMNS: &str = "username, password_hash, role, groups, created_at";
const TOKEN_COLUMNS: &str =
    "id, name, owner, role, scopes, groups, created_at, expires_at, revoked_at";

fn user_from_row(r: &Row) -> Result<User, AccountsError> {
    Ok(User {
        username: r.try_get(0)?,
        password_hash: r.try_get(1)?,
        role: role_from_text(r.try_get(2)?)?,
        groups: groups_from_text(r.try_get(3)?)?,
        created_at: r.try_get(4)?,
    })
}

fn token_from_row(r: &Row) -> Result<ApiToken, AccountsError> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        owner: r.try_get(2)?,
        role: role_from_text(r.try_get(3)?)?,
        scopes: groups_from_text(r.try_get(4)?)?,
        groups: groups_from_text(r.try_get(5)?)?,
        created_at: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
    })
}

fn event_from_row(r: &Row) -> Result<EventRow, AccountsError> {
    let code: i32 = r.try_get(3)?;
    Ok(EventRow {
        meter: r.try_get(0)?,
        log: r.try_get(1)?,
        time: r.try_get(2)?,
        code: u16::try_from(code).map_err(|_| AccountsError::Corrupt("event code".into()))?,
        acked_by: r.try_get(4)?,
        acked_at: r.try_get(5)?,
    })
}

fn event_where(f: &EventFilter) -> (String, Vec<Param>) {
    let mut clauses = vec!["TRUE".to_string()];
    let mut ps: Vec<Param> = Vec::new();
    if let Some(meters) = &f.meters {
        ps.push(Box::new(meters.clone()));
        clauses.push(format!("e.meter = ANY(${})", ps.len()));
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
        ps.push(Box::new(from));
        clauses.push(format!("e.time >= ${}", ps.len()));
    }
    if let Some(to) = f.to {
        ps.push(Box::new(to));
        clauses.push(format!("e.time <= ${}", ps.len()));
    }
    (clauses.join(" AND "), ps)
}

const EVENTS_FROM: &str = "events e LEFT JOIN api_event_acks a
    ON a.meter = e.meter AND a.log = e.log AND a.time = e.time AND a.code = e.code";

impl Accounts for PgAccounts {
    fn user<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<User>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let row = c
                .query_opt(
                    &format!("SELECT {USER_COLUMNS} FROM api_users WHERE username = $1"),
                    &[&username],
                )
                .await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    fn users(&self) -> BoxFuture<'_, Result<Vec<User>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let rows = c
                .query(
                    &format!("SELECT {USER_COLUMNS} FROM api_users ORDER BY username"),
                    &[],
                )
                .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    fn create_user<'a>(&'a self, u: &'a User) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            c.execute(
                "INSERT INTO api_users (username, password_hash, role, groups, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &u.username,
                    &u.password_hash,
                    &u.role.as_str(),
                    &groups_to_text(&u.groups),
                    &u.created_at,
                ],
            )
            .await
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
        u: &'a UserUpdate,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let mut c = self.pool.get().await?;
            let tx = c.transaction().await?;
            let role = u.role.map(|r| r.as_str().to_string());
            let groups = u.groups.as_ref().map(|g| groups_to_text(g));
            let changed = u.password_hash.is_some() || role.is_some() || groups.is_some();
            let n = tx
                .execute(
                    "UPDATE api_users SET password_hash = coalesce($2, password_hash),
                        role = coalesce($3, role), groups = coalesce($4, groups),
                        token_gen = token_gen + CASE WHEN $5 THEN 1 ELSE 0 END
                     WHERE username = $1",
                    &[&username, &u.password_hash, &role, &groups, &changed],
                )
                .await?;
            if n == 0 {
                return Err(AccountsError::NotFound(format!("user {username}")));
            }
            if changed {
                end_sessions(&tx, username).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn delete_user<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let mut c = self.pool.get().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute("DELETE FROM api_users WHERE username = $1", &[&username])
                .await?;
            if n == 0 {
                return Err(AccountsError::NotFound(format!("user {username}")));
            }
            end_sessions(&tx, username).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn create_token<'a>(
        &'a self,
        t: &'a ApiToken,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            c.execute(
                "INSERT INTO api_tokens (id, name, secret_hash, owner, role, scopes, groups,
                                         created_at, expires_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
                &[
                    &t.id,
                    &t.name,
                    &secret_hash,
                    &t.owner,
                    &t.role.as_str(),
                    &groups_to_text(&t.scopes),
                    &groups_to_text(&t.groups),
                    &t.created_at,
                    &t.expires_at,
                ],
            )
            .await
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
        Box::pin(async move {
            let c = self.pool.get().await?;
            let rows = c
                .query(
                    &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"),
                    &[],
                )
                .await?;
            rows.iter().map(token_from_row).collect()
        })
    }

    fn token_by_hash<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<ApiToken>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            // Every request with an API token asks: one round trip, not a parse first.
            let st = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = $1"
                ))
                .await?;
            let row = c.query_opt(&st, &[&secret_hash]).await?;
            row.as_ref().map(token_from_row).transpose()
        })
    }

    fn revoke_token<'a>(
        &'a self,
        id: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let n = c
                .execute(
                    "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
                    &[&id, &at],
                )
                .await?;
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
        Box::pin(async move {
            let c = self.pool.get().await?;
            c.execute(
                "DELETE FROM api_refresh_tokens WHERE expires_at < $1",
                &[&(expires_at - 2 * 86_400)],
            )
            .await?;
            c.execute(
                "INSERT INTO api_refresh_tokens (secret_hash, username, expires_at, used_at)
                 VALUES ($1, $2, $3, NULL)",
                &[&secret_hash, &username, &expires_at],
            )
            .await?;
            Ok(())
        })
    }

    fn use_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<RefreshUse, AccountsError>> {
        Box::pin(async move {
            let mut c = self.pool.get().await?;
            let tx = c.transaction().await?;
            let row = tx
                .query_opt(
                    "SELECT username, expires_at, used_at FROM api_refresh_tokens
                     WHERE secret_hash = $1 FOR UPDATE",
                    &[&secret_hash],
                )
                .await?;
            let out = match row {
                None => RefreshUse::Invalid,
                Some(r) => {
                    let username: String = r.try_get(0)?;
                    let expires_at: i64 = r.try_get(1)?;
                    let used_at: Option<i64> = r.try_get(2)?;
                    if used_at.is_some() {
                        tx.execute(
                            "UPDATE api_refresh_tokens SET used_at = coalesce(used_at, $2)
                             WHERE username = $1",
                            &[&username, &now],
                        )
                        .await?;
                        RefreshUse::Reused { username }
                    } else if expires_at <= now {
                        RefreshUse::Invalid
                    } else {
                        tx.execute(
                            "UPDATE api_refresh_tokens SET used_at = $2 WHERE secret_hash = $1",
                            &[&secret_hash, &now],
                        )
                        .await?;
                        RefreshUse::Valid { username }
                    }
                }
            };
            tx.commit().await?;
            Ok(out)
        })
    }

    fn token_generation<'a>(
        &'a self,
        username: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let st = c
                .prepare_cached("SELECT token_gen FROM api_users WHERE username = $1")
                .await?;
            let row = c.query_opt(&st, &[&username]).await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    fn refresh_owner<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let row = c
                .query_opt(
                    "SELECT username FROM api_refresh_tokens WHERE secret_hash = $1",
                    &[&secret_hash],
                )
                .await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    fn revoke_refresh<'a>(
        &'a self,
        secret_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let row = c
                .query_opt(
                    "DELETE FROM api_refresh_tokens WHERE secret_hash = $1
                     RETURNING username, used_at",
                    &[&secret_hash],
                )
                .await?;
            let Some(r) = row else { return Ok(None) };
            let used: Option<i64> = r.try_get(1)?;
            Ok(used.is_none().then(|| r.try_get(0)).transpose()?)
        })
    }

    fn signing_keys(&self) -> BoxFuture<'_, Result<Vec<SigningKey>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let rows = c
                .query(
                    "SELECT seq, kid, secret, created_at FROM api_jwt_keys ORDER BY seq",
                    &[],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let seq: i64 = r.try_get(0)?;
                let secret: String = r.try_get(2)?;
                out.push(SigningKey {
                    seq,
                    kid: r.try_get(1)?,
                    secret: hex::decode(secret)
                        .map_err(|_| AccountsError::Corrupt(format!("signing key {seq}")))?,
                    created_at: r.try_get(3)?,
                });
            }
            Ok(out)
        })
    }

    fn add_signing_key<'a>(
        &'a self,
        k: &'a SigningKey,
    ) -> BoxFuture<'a, Result<bool, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let n = c
                .execute(
                    "INSERT INTO api_jwt_keys (seq, kid, secret, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&k.seq, &k.kid, &hex::encode(&k.secret), &k.created_at],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn drop_signing_keys_before(&self, seq: i64) -> BoxFuture<'_, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            c.execute("DELETE FROM api_jwt_keys WHERE seq < $1", &[&seq])
                .await?;
            Ok(())
        })
    }

    fn replace_signing_key_secrets<'a>(
        &'a self,
        keys: &'a [SigningKey],
    ) -> BoxFuture<'a, Result<usize, AccountsError>> {
        Box::pin(async move {
            let mut c = self.pool.get().await?;
            let tx = c.transaction().await?;
            let mut n = 0;
            for k in keys {
                n += tx
                    .execute(
                        "UPDATE api_jwt_keys SET secret = $3 WHERE seq = $1 AND kid = $2",
                        &[&k.seq, &k.kid, &hex::encode(&k.secret)],
                    )
                    .await? as usize;
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    fn audit<'a>(&'a self, e: &'a AuditEntry) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            c.execute(
                "INSERT INTO api_audit (time, actor, action, target, detail)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &e.time,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.detail.to_string(),
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn audit_list<'a>(
        &'a self,
        f: &'a AuditFilter,
    ) -> BoxFuture<'a, Result<(Vec<AuditEntry>, u64), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let mut clauses = vec!["TRUE".to_string()];
            let mut ps: Vec<Param> = Vec::new();
            if let Some(a) = &f.actor {
                ps.push(Box::new(a.clone()));
                clauses.push(format!("actor = ${}", ps.len()));
            }
            if let Some(a) = &f.action {
                ps.push(Box::new(a.clone()));
                clauses.push(format!("action = ${}", ps.len()));
            }
            if let Some(t) = f.from {
                ps.push(Box::new(t));
                clauses.push(format!("time >= ${}", ps.len()));
            }
            if let Some(t) = f.to {
                ps.push(Box::new(t));
                clauses.push(format!("time <= ${}", ps.len()));
            }
            let w = clauses.join(" AND ");
            let total: i64 = c
                .query_one(
                    &format!("SELECT count(*) FROM api_audit WHERE {w}"),
                    &refs(&ps),
                )
                .await?
                .try_get(0)?;
            ps.push(Box::new(i64::from(f.limit)));
            ps.push(Box::new(i64::from(f.offset)));
            let sql = format!(
                "SELECT time, actor, action, target, detail FROM api_audit WHERE {w}
                 ORDER BY id DESC LIMIT ${} OFFSET ${}",
                ps.len() - 1,
                ps.len()
            );
            let rows = c.query(&sql, &refs(&ps)).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let detail: String = r.try_get(4)?;
                out.push(AuditEntry {
                    time: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    action: r.try_get(2)?,
                    target: r.try_get(3)?,
                    detail: serde_json::from_str(&detail)?,
                });
            }
            Ok((out, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn events<'a>(
        &'a self,
        f: &'a EventFilter,
    ) -> BoxFuture<'a, Result<(Vec<EventRow>, u64), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let (w, mut ps) = event_where(f);
            // Cached by text: the filters make only a few shapes of WHERE clause.
            let st = c
                .prepare_cached(&format!("SELECT count(*) FROM {EVENTS_FROM} WHERE {w}"))
                .await?;
            let total: i64 = c.query_one(&st, &refs(&ps)).await?.try_get(0)?;
            if f.limit == 0 {
                // Only the count was asked for (the fleet statistics, on every request).
                return Ok((Vec::new(), u64::try_from(total).unwrap_or(0)));
            }
            ps.push(Box::new(i64::from(f.limit)));
            ps.push(Box::new(i64::from(f.offset)));
            let sql = format!(
                "SELECT e.meter, e.log, e.time, e.code, a.acked_by, a.acked_at FROM {EVENTS_FROM}
                 WHERE {w} ORDER BY e.time DESC, e.meter, e.log, e.code LIMIT ${} OFFSET ${}",
                ps.len() - 1,
                ps.len()
            );
            let st = c.prepare_cached(&sql).await?;
            let rows = c.query(&st, &refs(&ps)).await?;
            let out = rows.iter().map(event_from_row).collect::<Result<_, _>>()?;
            Ok((out, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn event<'a>(
        &'a self,
        k: &'a EventKey,
    ) -> BoxFuture<'a, Result<Option<EventRow>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let code = i32::from(k.code);
            let row = c
                .query_opt(
                    &format!(
                        "SELECT e.meter, e.log, e.time, e.code, a.acked_by, a.acked_at
                         FROM {EVENTS_FROM}
                         WHERE e.meter = $1 AND e.log = $2 AND e.time = $3 AND e.code = $4"
                    ),
                    &[&k.meter, &k.log, &k.time, &code],
                )
                .await?;
            row.as_ref().map(event_from_row).transpose()
        })
    }

    fn ack_event<'a>(
        &'a self,
        k: &'a EventKey,
        by: &'a str,
        at: i64,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let code = i32::from(k.code);
            let exists = c
                .query_opt(
                    "SELECT 1 FROM events WHERE meter = $1 AND log = $2 AND time = $3 AND code = $4",
                    &[&k.meter, &k.log, &k.time, &code],
                )
                .await?
                .is_some();
            if !exists {
                return Err(AccountsError::NotFound("event".into()));
            }
            c.execute(
                "INSERT INTO api_event_acks (meter, log, time, code, acked_by, acked_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&k.meter, &k.log, &k.time, &code, &by, &at],
            )
            .await?;
            Ok(())
        })
    }

    fn reading_channels<'a>(
        &'a self,
        meter: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let rows = c
                .query(
                    "SELECT DISTINCT obis FROM readings WHERE meter = $1 ORDER BY obis",
                    &[&meter],
                )
                .await?;
            rows.iter()
                .map(|r| r.try_get::<_, String>(0).map_err(Into::into))
                .collect()
        })
    }

    fn readings_per_day<'a>(
        &'a self,
        obis: &'a str,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<(i64, u64)>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let rows = c
                .query(
                    "SELECT time - (time % 86400) AS day, count(*) FROM readings
                     WHERE obis = $1 AND time >= $2 AND time < $3 GROUP BY day ORDER BY day",
                    &[&obis, &from, &to],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let d: i64 = r.try_get(0)?;
                let n: i64 = r.try_get(1)?;
                out.push((d, u64::try_from(n).unwrap_or(0)));
            }
            Ok(out)
        })
    }

    fn readings_total(&self) -> BoxFuture<'_, Result<u64, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let n: i64 = c
                .query_one("SELECT count(*) FROM readings", &[])
                .await?
                .try_get(0)?;
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
        Box::pin(async move {
            let c = self.pool.get().await?;
            let rows = c
                .query(
                    "SELECT time - (time % 86400) AS day, count(*) FROM readings
                     WHERE meter = ANY($4) AND obis = $1 AND time >= $2 AND time < $3
                     GROUP BY day ORDER BY day",
                    &[&obis, &from, &to, &meters],
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let d: i64 = r.try_get(0)?;
                let n: i64 = r.try_get(1)?;
                out.push((d, u64::try_from(n).unwrap_or(0)));
            }
            Ok(out)
        })
    }

    fn readings_total_of<'a>(
        &'a self,
        meters: &'a [String],
    ) -> BoxFuture<'a, Result<u64, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM readings WHERE meter = ANY($1)",
                    &[&meters],
                )
                .await?
                .try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<StoredSchedule>, AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let rows = c
                .query("SELECT name, spec FROM api_schedules ORDER BY name", &[])
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredSchedule {
                        name: r.try_get(0)?,
                        spec: r.try_get(1)?,
                    })
                })
                .collect()
        })
    }

    fn put_schedule<'a>(
        &'a self,
        s: &'a StoredSchedule,
    ) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            c.execute(
                "INSERT INTO api_schedules (name, spec) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
                &[&s.name, &s.spec],
            )
            .await?;
            Ok(())
        })
    }

    fn delete_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            let n = c
                .execute("DELETE FROM api_schedules WHERE name = $1", &[&name])
                .await?;
            if n == 0 {
                return Err(AccountsError::NotFound(format!("schedule {name}")));
            }
            Ok(())
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), AccountsError>> {
        Box::pin(async move {
            let c = self.pool.get().await?;
            c.query_one("SELECT 1", &[]).await?;
            Ok(())
        })
    }
}
