//! `scripts/backup` end to end on a PostgreSQL server of the test's own: archiving on, a base
//! backup, readings and meters written, a named restore point, more written, then a
//! point-in-time restore to the point into a fresh data directory on another port. The restored
//! database holds exactly what was written before the point, and its registry opens with the
//! same KEK (the backup holds the secrets sealed, never in clear).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use dlms::ObisCode;
use hes_model::inventory::{Endpoint, InventoryEntry, Transport};
use hes_model::secrets::Kek;
use hes_model::{MeterId, Reading, Source};
use hes_store::{PgStore, Registry, StateStore, Store};

mod common;
use common::cluster::{self, Server};

const ENERGY: ObisCode = ObisCode([1, 0, 1, 8, 0, 255]);
/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200;

fn reading(n: i64) -> Reading {
    Reading {
        meter: MeterId::from("backup-meter"),
        obis: ENERGY,
        class_id: 3,
        attribute: 2,
        time: T0 + n * 900,
        value: n,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: T0 + n * 900 + 7,
    }
}

fn entry(i: u32) -> InventoryEntry {
    InventoryEntry {
        id: format!("BKP{i:08}"),
        serial: format!("{i:08}"),
        logical_device_name: format!("HES{i:013}"),
        endpoint: Endpoint {
            host: format!("127.1.0.{i}"),
            port: 4059,
            transport: Transport::Wrapper,
            client_sap_public: 16,
            client_sap_reader: 17,
            client_sap_management: 1,
            hdlc_server_logical: 1,
            hdlc_server_physical: 16,
        },
        password: "12345678".into(),
        ek: format!("{i:032X}"),
        ak: "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF".into(),
        kek: "101112131415161718191A1B1C1D1E1F".into(),
        system_title: format!("48455300{i:08X}"),
        security: "hls-gmac-authenticated-encrypted".into(),
        max_pdu: 1024,
        quirks: vec![],
        groups: BTreeMap::new(),
    }
}

/// `scripts/backup ARGS` against `server`, with the repository in `repo`; its stdout.
fn backup(server: &Server, repo: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/backup");
    let out = Command::new(script)
        .args(args)
        .env("HES_BACKUP_PGDATA", &server.data)
        .env("HES_BACKUP_PGPORT", server.port.to_string())
        .env("HES_BACKUP_DIR", repo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(out.status.success(), "scripts/backup {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

async fn registry(store: Arc<PgStore>, kek: Kek) -> Arc<Registry> {
    Registry::open(store as Arc<dyn StateStore>, kek)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_to_a_named_point_holds_exactly_what_came_before_it() {
    let bin = cluster::pg_bin();
    let root = cluster::root_dir("hes_backup");
    let server = Server::init(&bin, &root, "data", "");
    let repo = root.join("repo");
    let kek = || Kek::from_bytes(&[7u8; 32]).unwrap();

    backup(&server, &repo, &["init"]);
    backup(&server, &repo, &["full"]);
    let store = Arc::new(PgStore::connect(&server.url()).await.unwrap());
    let reg = registry(store.clone(), kek()).await;
    reg.import(&[entry(1), entry(2)], false).await.unwrap();
    let first: Vec<Reading> = (0..50).map(reading).collect();
    store.insert_readings(&first).await.unwrap();

    backup(&server, &repo, &["point", "before-second-batch"]);

    let second: Vec<Reading> = (50..120).map(reading).collect();
    store.insert_readings(&second).await.unwrap();
    reg.import(&[entry(3)], false).await.unwrap();
    assert_eq!(store.count_readings().await.unwrap(), 120);
    let listed = backup(&server, &repo, &["list"]);
    assert!(listed.contains("before-second-batch"), "{listed}");

    let target = root.join("restored");
    let port = cluster::free_port();
    let started = Instant::now();
    let out = backup(
        &server,
        &repo,
        &[
            "restore",
            "--to-name",
            "before-second-batch",
            "--target-dir",
            target.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ],
    );
    let restore_time = started.elapsed();
    // The script names the database `hes`; the test's is `postgres`.
    assert!(
        out.contains(&format!("postgres://postgres@127.0.0.1:{port}/")),
        "{out}"
    );
    let restored = Server {
        bin: bin.clone(),
        data: target.join("data"),
        port,
    };
    println!("restore to a named point: {restore_time:?}");

    let back = Arc::new(PgStore::connect(&restored.url()).await.unwrap());
    let values: Vec<i64> = back
        .readings(&MeterId::from("backup-meter"), ENERGY, T0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values, (0..50).collect::<Vec<_>>());
    // The registry as it was at the point, its secrets opened with the same KEK.
    let reg_back = registry(back.clone(), kek()).await;
    let mut ids = reg_back.ids();
    ids.sort();
    assert_eq!(
        ids,
        [MeterId::from("BKP00000001"), MeterId::from("BKP00000002")]
    );
    let exported = reg_back.export(true).await.unwrap();
    let ek: Vec<String> = exported.iter().map(|e| e.ek.to_uppercase()).collect();
    assert!(ek.contains(&format!("{:032X}", 2)), "{ek:?}");
    // Another KEK opens nothing: the backup held the secrets sealed.
    let other = registry(back.clone(), Kek::from_bytes(&[8u8; 32]).unwrap()).await;
    assert!(other.export(true).await.is_err());

    drop((back, reg_back, other, reg, store));
    drop(restored);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}
