//! A fresh PostgreSQL database for one test, on the server `HES_DATABASE_URL` names: tests
//! that migrate, count or delete do not see each other's rows, nor earlier runs'.

use std::time::Duration;

use tokio_postgres::NoTls;

/// The variable with the server's URL (`eval "$(scripts/services up)"` sets it).
pub const DATABASE_URL_ENV: &str = "HES_DATABASE_URL";

/// Bound of connecting to the server to create or drop a database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database of its own: created empty by [`TestDb::create`], dropped by
/// [`TestDb::drop_db`], or when dropped (on a thread of its own, best effort).
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

/// What went wrong creating or dropping a test database.
#[derive(Debug)]
pub enum PgError {
    Env(crate::MissingEnv),
    Url(String),
    Postgres(tokio_postgres::Error),
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(e) => e.fmt(f),
            Self::Url(u) => write!(f, "{DATABASE_URL_ENV}: not a postgres:// URL: {u}"),
            Self::Postgres(e) => write!(f, "postgres: {e}"),
        }
    }
}

impl std::error::Error for PgError {}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

/// `url` with its database name replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    Some(format!("{scheme}://{authority}/{db}{query}"))
}

/// Runs `sql` on the server of `url`, in a connection of its own.
async fn execute(url: &str, sql: &str) -> Result<(), PgError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, conn) = config.connect(NoTls).await?;
    let task = tokio::spawn(conn);
    let r = client.batch_execute(sql).await;
    drop(client);
    let _ = task.await;
    Ok(r?)
}

impl TestDb {
    /// Creates an empty database named `hes_test_<pid>_<n>_<clock>` on the server of
    /// `HES_DATABASE_URL`.
    pub async fn create() -> Result<Self, PgError> {
        let admin_url = crate::service_env(DATABASE_URL_ENV).map_err(PgError::Env)?;
        Self::create_on(&admin_url).await
    }

    /// [`TestDb::create`] on the server of `admin_url` (a role that may create databases).
    pub async fn create_on(admin_url: &str) -> Result<Self, PgError> {
        let name = crate::unique("hes_test");
        let url = with_database(admin_url, &name).ok_or_else(|| PgError::Url(admin_url.into()))?;
        execute(admin_url, &format!("CREATE DATABASE \"{name}\"")).await?;
        Ok(Self {
            admin_url: admin_url.to_string(),
            name,
            url,
            dropped: false,
        })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, closing whatever connections are left to it.
    pub async fn drop_db(mut self) -> Result<(), PgError> {
        self.dropped = true;
        execute(&self.admin_url, &drop_sql(&self.name)).await
    }
}

fn drop_sql(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
}

impl Drop for TestDb {
    /// Drops the database on a thread with a runtime of its own (a drop may happen inside an
    /// async test, which cannot block on its own runtime); kept when the test fails, for a
    /// look.
    fn drop(&mut self) {
        if self.dropped || std::thread::panicking() {
            return;
        }
        let (admin_url, sql) = (self.admin_url.clone(), drop_sql(&self.name));
        let done = std::thread::Builder::new()
            .name("testkit-dropdb".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    let _ = rt.block_on(execute(&admin_url, &sql));
                }
            });
        if let Ok(t) = done {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u@h:5432/hes?sslmode=disable", "t1").unwrap(),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h", "t1").unwrap(),
            "postgres://u@h/t1"
        );
        assert!(with_database("nonsense", "t1").is_none());
    }

    async fn exists(admin_url: &str, name: &str) -> bool {
        let (client, conn) = tokio_postgres::connect(admin_url, NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        let rows = client
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
        !rows.is_empty()
    }

    /// Needs PostgreSQL (`eval "$(scripts/services up)"`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creates_a_usable_database_and_drops_it() {
        let admin = crate::service_env(DATABASE_URL_ENV).unwrap();
        let db = TestDb::create().await.unwrap();
        assert!(db.name().starts_with("hes_test_"));
        execute(db.url(), "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let name = db.name().to_string();
        assert!(exists(&admin, &name).await);
        db.drop_db().await.unwrap();
        assert!(!exists(&admin, &name).await);

        // Dropped with the value, too, from inside the runtime.
        let db = TestDb::create().await.unwrap();
        let name = db.name().to_string();
        drop(db);
        assert!(!exists(&admin, &name).await);
    }
}
