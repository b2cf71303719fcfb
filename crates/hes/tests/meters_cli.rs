//! `hes meters` and `hes jobs` against an SQLite store: an inventory imported once, all or
//! nothing, with errors that name the entry and the field; no secret at rest or in an export
//! unless asked; the KEK required and checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::{Command, Output};

use hes_testkit::inventory::{entries, write_json};
use hes_testkit::TempDir;

const KEK: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn hes(db: &std::path::Path, kek: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
    cmd.args(args)
        .env("HES_DATABASE_URL", db)
        .env_remove("HES_KEK")
        .env_remove("HES_KEK_FILE");
    if let Some(k) = kek {
        cmd.env("HES_KEK", k);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn import_once_all_or_nothing_and_export_without_secrets() {
    let dir = TempDir::new("hes-meters-cli").unwrap();
    let db = dir.join("hes.db");
    let file = dir.join("inventory.json");
    let list = entries(3);
    write_json(&file, &list).unwrap();
    let f = file.to_str().unwrap();

    let o = hes(&db, Some(KEK), &["meters", "import", f]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("imported 3 meters"), "{}", text(&o));
    // No key or password in the database file.
    let raw = std::fs::read(&db).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_ascii_uppercase();
    for secret in [&list[0].ek, &list[0].ak, &list[0].kek, &list[0].password] {
        assert!(
            !raw.contains(&secret.to_ascii_uppercase()),
            "{secret} at rest"
        );
    }

    // Again: every id exists, so nothing happens and the error says which.
    let o = hes(&db, Some(KEK), &["meters", "import", f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains(&list[0].id), "{}", text(&o));
    // With --replace it goes through.
    let o = hes(&db, Some(KEK), &["meters", "import", "--replace", f]);
    assert!(o.status.success(), "{}", text(&o));

    // A malformed entry: nothing of the file is imported, the error names entry and field.
    let mut more = entries(5);
    more.drain(..3);
    more[1].ak = "00".into();
    let bad = dir.join("bad.json");
    write_json(&bad, &more).unwrap();
    let o = hes(&db, Some(KEK), &["meters", "import", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("entry 2") && t.contains("ek/ak/kek"), "{t}");
    let o = hes(&db, Some(KEK), &["meters", "list"]);
    assert!(text(&o).starts_with("3 meters"), "{}", text(&o));

    // A system title another meter has: refused.
    let mut thief = entries(4).pop().unwrap();
    thief.system_title = list[1].system_title.clone();
    let t_file = dir.join("thief.json");
    write_json(&t_file, &[thief]).unwrap();
    let o = hes(
        &db,
        Some(KEK),
        &["meters", "import", t_file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains(&list[1].id), "{}", text(&o));

    // Export: no secrets unless asked; with them, what was imported.
    let o = hes(&db, Some(KEK), &["meters", "export"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_ascii_uppercase();
    assert!(!out.contains(&list[0].ek.to_ascii_uppercase()));
    let o = hes(&db, Some(KEK), &["meters", "export", "--with-secrets"]);
    let back: Vec<hes_model::inventory::InventoryEntry> =
        serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(back, list);

    // The KEK: missing, malformed or another one.
    let o = hes(&db, None, &["meters", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("key-encryption key"), "{}", text(&o));
    let o = hes(&db, Some("xyz"), &["meters", "list"]);
    assert_eq!(o.status.code(), Some(1));
    let other = "ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let o = hes(&db, Some(other), &["meters", "export", "--with-secrets"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does not open"), "{}", text(&o));

    // The jobs in the same store: none yet.
    let o = hes(&db, Some(KEK), &["jobs"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).starts_with("0 jobs"), "{}", text(&o));
    let o = hes(&db, Some(KEK), &["jobs", "show", "7"]);
    assert_eq!(o.status.code(), Some(1));
}
