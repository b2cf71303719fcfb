//! `export_range` over PostgreSQL: a fresh database on `HES_DATABASE_URL` (run
//! `eval "$(scripts/services up)"` first; without it this fails, it never skips), dropped at the
//! end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

fn database_url() -> String {
    std::env::var("HES_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "HES_DATABASE_URL is not set: the PostgreSQL tests need a real server. \
             Run `eval \"$(scripts/services up)\"` first."
        )
    })
}

/// `url` with its database name replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{db}{query}")
}

async fn admin(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_range_pages_through_postgres() {
    let admin_url = database_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("hes_warehouse_test_{}_{nanos}", std::process::id());
    admin(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
    let store = hes_store::PgStore::connect(&with_db(&admin_url, &name))
        .await
        .unwrap();
    common::export_range_case(&store).await;
    drop(store);
    admin(
        &admin_url,
        &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
    )
    .await;
}
