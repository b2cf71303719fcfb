//! Fixtures of the store's suites: a fresh SQLite file or PostgreSQL database per test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hes_store::SqliteStore;

pub mod cluster;

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

pub struct SqliteFixture {
    pub store: SqliteStore,
    dir: PathBuf,
}

pub async fn sqlite_fixture() -> SqliteFixture {
    let dir = std::env::temp_dir().join(unique("hes_store_test"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(dir.join("hes.db")).await.unwrap();
    SqliteFixture { store, dir }
}

impl SqliteFixture {
    pub async fn finish(self) {
        drop(self.store);
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}

pub fn database_url() -> String {
    std::env::var("HES_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "HES_DATABASE_URL is not set: the PostgreSQL tests need a real server. \
             Run `eval \"$(scripts/services up)\"` first."
        )
    })
}

/// `url` with its database name replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{db}{query}")
}

pub async fn admin(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

/// A fresh, empty database; dropped by `drop_database`.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

pub async fn pg_database() -> PgDatabase {
    let admin_url = database_url();
    let name = unique("hes_store_test");
    admin(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
    let url = with_db(&admin_url, &name);
    PgDatabase {
        admin_url,
        name,
        url,
    }
}

impl PgDatabase {
    pub async fn drop_database(self) {
        admin(
            &self.admin_url,
            &format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name),
        )
        .await;
    }
}
