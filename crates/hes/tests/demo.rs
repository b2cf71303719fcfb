//! `hes demo` runs with no set-up: a small fleet is read on schedule and pushes, the pipeline
//! validates, stores and aggregates, and the status lines say so. The test waits (bounded) for
//! a status line that shows all of it, then stops the demo with Ctrl-C.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;
use std::time::Duration;

use hes_testkit::{Proc, TempDir};

/// A counter of a status line (`[  10 s] jobs ok 80 failed 0 ... | pushes 40 | queued 0`).
fn field(line: &str, name: &str) -> Option<u64> {
    let rest = line.split(name).nth(1)?.trim_start();
    rest.split_whitespace().next()?.parse().ok()
}

/// Whether a status line shows the first cycle done: a profile and an event-log read per
/// meter, 40 meters × 96 entries × 4 channels validated and stored once (natural keys: a push
/// of a register value the profile also holds is the same row), pushes from every meter,
/// events, and hours, days and months per meter and the cells' days and months.
fn first_cycle_done(line: &str) -> bool {
    let f = |name| field(line, name).unwrap_or(0);
    line.starts_with('[')
        && f("jobs ok") >= 80
        && f("validated") >= 40 * 96 * 4
        && f("pushes") >= 40
        && f("stored") >= 40 * 96 * 4
        && f("events") > 0
        && f("aggregates") >= 40 * 24
}

#[test]
fn the_demo_collects_and_receives_pushes() {
    let dir = TempDir::new("hes-demo").unwrap();
    let data = dir.join("data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hes"));
    cmd.args(["demo", "--meters", "40", "--host", "127.98.0.1"])
        .args([
            "--push-listen",
            "127.98.255.1:0",
            "--http",
            "127.98.255.2:0",
            "--every",
            "5",
        ])
        .arg("--data-dir")
        .arg(&data);
    let mut demo = Proc::spawn("hes demo", cmd).unwrap();
    // It says where the UI is.
    demo.wait_for(Duration::from_secs(60), "the UI's address", |l| {
        l.contains("Web UI: open http://127.98.255.2:")
    })
    .unwrap();
    let line = demo
        .wait_for(
            Duration::from_secs(180),
            "a status line with the first cycle",
            first_cycle_done,
        )
        .unwrap();
    assert_eq!(field(&line, "failed"), Some(0), "{line}");
    assert!(
        field(&line, "stored") <= field(&line, "validated"),
        "{line}"
    );
    assert!(data.join("hes.db").exists());
    demo.interrupt().unwrap();
    let status = demo.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "{status}: {}", demo.stderr.tail(30));
}
