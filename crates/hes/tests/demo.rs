//! `hes demo` runs with no set-up: a small fleet is read on schedule and pushes, and the status
//! lines say so.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;

#[test]
fn the_demo_collects_and_receives_pushes() {
    let dir = std::env::temp_dir().join(format!("hes-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_hes"))
        .args(["demo", "--meters", "40", "--host", "127.98.0.1"])
        .args([
            "--push-listen",
            "127.98.255.1:0",
            "--every",
            "5",
            "--seconds",
            "9",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = text.lines().rfind(|l| l.starts_with('[')).unwrap();
    let field = |name: &str| -> u64 {
        let rest = last.split(name).nth(1).unwrap().trim_start();
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(field("jobs ok") >= 40, "{last}");
    assert_eq!(field("failed"), 0, "{last}");
    // 40 meters × 96 entries × 4 channels from the first cycle.
    assert!(field("readings") >= 40 * 96 * 4, "{last}");
    assert!(field("pushes") >= 40, "{last}");
    // Everything on the bus reached the store, once (natural keys): a push of a register value
    // the profile also holds is the same row.
    assert!(field("stored") >= 40 * 96 * 4, "{last}");
    assert!(field("stored") <= field("readings"), "{last}");
    assert!(dir.join("hes.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
