//! `hes demo` runs with no set-up: a small fleet is read on schedule and pushes, the pipeline
//! validates, stores and aggregates, and the status lines say so.

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
            "--http",
            "127.98.255.2:0",
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
    // A profile and an event-log read per meter at start.
    assert!(field("jobs ok") >= 80, "{last}");
    assert_eq!(field("failed"), 0, "{last}");
    // 40 meters × 96 entries × 4 channels from the first cycle, all validated.
    assert!(field("validated") >= 40 * 96 * 4, "{last}");
    assert!(field("pushes") >= 40, "{last}");
    // Everything validated reached the store, once (natural keys): a push of a register value
    // the profile also holds is the same row.
    assert!(field("stored") >= 40 * 96 * 4, "{last}");
    assert!(field("stored") <= field("validated"), "{last}");
    assert!(field("events") > 0, "{last}");
    // Hours, days and months per meter, and the cells' days and months.
    assert!(field("aggregates") >= 40 * 24, "{last}");
    assert!(dir.join("hes.db").exists());
    // It says where the UI is.
    assert!(text.contains("Web UI: open http://127.98.255.2:"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
