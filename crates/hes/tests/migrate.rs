//! `hes migrate` applies the schema once, then finds it up to date.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn migrate_applies_then_finds_the_schema_up_to_date() {
    let db = std::env::temp_dir().join(format!("hes-migrate-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_hes"))
            .args(["migrate", "--database-url"])
            .arg(&db)
            .env_remove("HES_DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run().starts_with("applied migrations 1"));
    assert_eq!(run().trim(), "schema up to date");
    let _ = std::fs::remove_file(&db);
}
