//! Versioned schema migrations, embedded in the binary, applied in order, each in its own
//! transaction together with its row in `schema_migrations`.

use crate::{is_postgres_url, StoreError};

/// One schema step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// PostgreSQL migrations, in order.
pub const PG_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "readings_events",
        sql: include_str!("../migrations/pg/0001_readings_events.sql"),
    },
    Migration {
        version: 2,
        name: "quality_aggregates",
        sql: include_str!("../migrations/pg/0002_quality_aggregates.sql"),
    },
    Migration {
        version: 3,
        name: "timescale_policies",
        sql: include_str!("../migrations/pg/0003_timescale_policies.sql"),
    },
    Migration {
        version: 4,
        name: "state",
        sql: include_str!("../migrations/pg/0004_state.sql"),
    },
    Migration {
        version: 5,
        name: "push_counters",
        sql: include_str!("../migrations/pg/0005_push_counters.sql"),
    },
    Migration {
        version: 6,
        name: "webhooks",
        sql: include_str!("../migrations/pg/0006_webhooks.sql"),
    },
    Migration {
        version: 7,
        name: "cim_outbox",
        sql: include_str!("../migrations/pg/0007_cim_outbox.sql"),
    },
    Migration {
        version: 8,
        name: "job_dispatch",
        sql: include_str!("../migrations/pg/0008_job_dispatch.sql"),
    },
    Migration {
        version: 9,
        name: "push_intervals",
        sql: include_str!("../migrations/pg/0009_push_intervals.sql"),
    },
    // The API's tables (hes-api) use versions 100 and up.
    Migration {
        version: 100,
        name: "api_accounts",
        sql: include_str!("../migrations/pg/0100_api_accounts.sql"),
    },
    Migration {
        version: 101,
        name: "api_sessions_keys",
        sql: include_str!("../migrations/pg/0101_api_sessions_keys.sql"),
    },
];

/// SQLite migrations, in order.
pub const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "readings_events",
        sql: include_str!("../migrations/sqlite/0001_readings_events.sql"),
    },
    Migration {
        version: 2,
        name: "quality_aggregates",
        sql: include_str!("../migrations/sqlite/0002_quality_aggregates.sql"),
    },
    Migration {
        version: 3,
        name: "state",
        sql: include_str!("../migrations/sqlite/0003_state.sql"),
    },
    Migration {
        version: 4,
        name: "push_counters",
        sql: include_str!("../migrations/sqlite/0004_push_counters.sql"),
    },
    Migration {
        version: 5,
        name: "webhooks",
        sql: include_str!("../migrations/sqlite/0005_webhooks.sql"),
    },
    Migration {
        version: 6,
        name: "cim_outbox",
        sql: include_str!("../migrations/sqlite/0006_cim_outbox.sql"),
    },
    Migration {
        version: 7,
        name: "job_dispatch",
        sql: include_str!("../migrations/sqlite/0007_job_dispatch.sql"),
    },
    Migration {
        version: 8,
        name: "push_intervals",
        sql: include_str!("../migrations/sqlite/0008_push_intervals.sql"),
    },
    // The API's tables (hes-api) use versions 100 and up.
    Migration {
        version: 100,
        name: "api_accounts",
        sql: include_str!("../migrations/sqlite/0100_api_accounts.sql"),
    },
    Migration {
        version: 101,
        name: "api_sessions_keys",
        sql: include_str!("../migrations/sqlite/0101_api_sessions_keys.sql"),
    },
];

/// Brings the schema of a PostgreSQL database (`postgres://…` URL) or a SQLite file (any other
/// text is a path) up to date. Returns the versions it applied, in order: none when the schema
/// was current already.
pub async fn migrate(url_or_path: &str) -> Result<Vec<u32>, StoreError> {
    if is_postgres_url(url_or_path) {
        // The store's connection settings: with several hosts, an unreachable one is skipped
        // after the connect timeout instead of the kernel's.
        let (mut client, conn) = crate::pg::failover::config(url_or_path)?
            .connect(tokio_postgres::NoTls)
            .await?;
        let task = tokio::spawn(conn);
        let applied = migrate_pg(&mut client).await;
        drop(client);
        let _ = task.await;
        applied
    } else {
        let path = url_or_path.to_string();
        tokio::task::spawn_blocking(move || {
            let mut conn = rusqlite::Connection::open(path)?;
            migrate_sqlite(&mut conn)
        })
        .await?
    }
}

/// Key of the advisory lock that serialises migrations run at once by several processes.
const PG_MIGRATION_LOCK: i64 = 0x0068_6573_5f6d_6967; // "hes_mig"

pub(crate) async fn migrate_pg(
    client: &mut tokio_postgres::Client,
) -> Result<Vec<u32>, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .or_else(|e| {
            // Two processes creating the table at once: the loser sees a duplicate type.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    let mut applied = Vec::new();
    for m in PG_MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_MIGRATION_LOCK])
            .await?;
        let version = i32::try_from(m.version).map_err(|_| StoreError::Migration {
            version: m.version,
            why: "version too large".into(),
        })?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&version],
            )
            .await?
            .is_some();
        if done {
            continue;
        }
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| StoreError::Migration {
                version: m.version,
                why: e.to_string(),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &m.name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied PostgreSQL migration"
        );
        applied.push(m.version);
    }
    Ok(applied)
}

pub(crate) fn migrate_sqlite(conn: &mut rusqlite::Connection) -> Result<Vec<u32>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL DEFAULT (unixepoch()))",
    )?;
    let mut applied = Vec::new();
    for m in SQLITE_MIGRATIONS {
        // IMMEDIATE takes the write lock first, so two processes cannot both apply a step.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [m.version],
            |r| r.get(0),
        )?;
        if done {
            continue;
        }
        tx.execute_batch(m.sql).map_err(|e| StoreError::Migration {
            version: m.version,
            why: e.to_string(),
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
            rusqlite::params![m.version, m.name],
        )?;
        tx.commit()?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied SQLite migration"
        );
        applied.push(m.version);
    }
    Ok(applied)
}
