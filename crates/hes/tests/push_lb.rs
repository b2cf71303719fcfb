//! Push listeners behind HAProxy (`deploy/haproxy/haproxy.cfg`), end to end with the built
//! binary: two `hes push-listen` behind one HAProxy, a fleet of 300 simulated meters pushing to
//! HAProxy. Every meter's pushes arrive, both listeners get a share, nothing is rejected; when
//! one listener is killed, every meter's pushes keep arriving at the other within seconds.
//!
//! Every check waits (bounded) for what it asserts: a listener's status line follows its
//! records by a moment, HAProxy's log follows its connections.
//!
//! Needs `haproxy` (Debian package): `scripts/lib/ensure-toolchain` installs it. Without it the
//! test fails; it is never skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hes_testkit::{wait_until, Lines, Proc, TempDir};

const HES: &str = env!("CARGO_BIN_EXE_hes");
const METERS: usize = 300;
/// The production configuration, adapted to the test's ports (see `haproxy_config`).
const DEPLOY_CFG: &str = include_str!("../../../deploy/haproxy/haproxy.cfg");
const LISTEN_HOST: &str = "127.63.0.1";

/// The counters of a listener's `PUSHES ...` status line, as (name, value) pairs.
fn pushes(line: &str) -> Option<Vec<(String, u64)>> {
    let rest = line.strip_prefix("PUSHES ")?;
    Some(
        rest.split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// One counter of a `PUSHES ...` line.
fn counter(line: &str, name: &str) -> Option<u64> {
    pushes(line)?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The first `PUSHES` line from line `mark` on with some readings, waiting for it: a listener
/// writes its records to `--out` just before it prints the counters that include them, so
/// the line may come a moment after the records.
fn pushes_with_readings(name: &str, lines: &Lines, mark: usize) -> String {
    lines
        .wait_for_from(mark, Duration::from_secs(15), name, |l| {
            counter(l, "readings").is_some_and(|n| n > 0)
        })
        .unwrap()
}

/// Reads the JSON lines a listener appends to its `--out` file, only whole lines, from where
/// the previous call stopped.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

/// One record (reading or event) of an `--out` file: its meter and when it was received.
struct Record {
    meter: String,
    received_at: i64,
}

impl Tail {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn read_new(&mut self) -> Vec<Record> {
        let Ok(mut f) = fs::File::open(&self.path) else {
            return Vec::new();
        };
        f.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).unwrap();
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        whole
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                    panic!(
                        "{}: not JSON ({e}): {}",
                        self.path.display(),
                        String::from_utf8_lossy(l)
                    )
                });
                Record {
                    meter: v["meter"]
                        .as_str()
                        .expect("record without meter")
                        .to_string(),
                    received_at: v["received_at"]
                        .as_i64()
                        .expect("record without received_at"),
                }
            })
            .collect()
    }
}

fn haproxy_binary() -> &'static str {
    for candidate in ["haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"] {
        let ok = Command::new(candidate)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return candidate;
        }
    }
    panic!(
        "haproxy is not installed: this test needs it. Run scripts/lib/ensure-toolchain \
         (as root; it installs the Debian package haproxy)"
    );
}

/// Three distinct free ports on the listeners' address.
fn free_ports() -> [u16; 3] {
    let socks: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind((LISTEN_HOST, 0)).unwrap())
        .collect();
    let ports: Vec<u16> = socks
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

/// `deploy/haproxy/haproxy.cfg` with the test's frontend and two listeners; logging to stderr
/// at `info` (one line per connection, read by the test), and a connection limit any
/// file-descriptor limit allows.
fn haproxy_config(frontend: u16, listeners: [u16; 2]) -> String {
    let mut cfg = DEPLOY_CFG.to_string();
    let mut replace = |from: &str, to: &str| {
        assert!(
            cfg.contains(from),
            "deploy/haproxy/haproxy.cfg no longer has `{from}`: update tests/push_lb.rs"
        );
        cfg = cfg.replace(from, to);
    };
    replace(
        "log /dev/log local0 notice",
        "log stderr format raw local0 info",
    );
    replace("maxconn 50000", "maxconn 4000");
    replace("bind :4060", &format!("bind {LISTEN_HOST}:{frontend}"));
    replace(
        "server push1 127.0.0.1:4061",
        &format!("server push1 {LISTEN_HOST}:{}", listeners[0]),
    );
    replace(
        "server push2 127.0.0.1:4062",
        &format!("server push2 {LISTEN_HOST}:{}", listeners[1]),
    );
    replace("    server push3 127.0.0.1:4063\n", "");
    cfg
}

/// The fleet: 300 meters on 127.64.0.1 and up, pushing every 0.25 s (900 s of meter time at
/// 3600 times real time) to HAProxy. Its shared listening port is fixed (`meter_port`) rather
/// than left to the system (`--port 0`) so that the inventory, which has it, is the same in
/// every run.
fn sim_command(frontend: u16, meter_port: u16, inventory: &Path) -> Command {
    let mut cmd = Command::new(HES);
    cmd.args(["sim", "--meters", &METERS.to_string()])
        .args(["--host", "127.64.0.1", "--listen", "shared"])
        .arg("--port")
        .arg(meter_port.to_string())
        .args(["--speed", "3600"])
        .arg("--push-to")
        .arg(format!("{LISTEN_HOST}:{frontend}"))
        .arg("--inventory")
        .arg(inventory);
    cmd
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn pushes_through_haproxy_spread_over_listeners_and_fail_over() {
    let haproxy = haproxy_binary();
    let started = Instant::now();
    let dir = TempDir::new("hes-push-lb").unwrap();
    let [frontend, port_a, port_b] = free_ports();
    let meter_port = TcpListener::bind(("0.0.0.0", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    // The inventory, written by a first run of the fleet (its pushes find nobody and are
    // dropped); the listeners need it before they start. The fleet started again with the same
    // arguments writes the same inventory (checked below).
    let inventory = dir.join("fleet.json");
    let mut first = Proc::spawn(
        "sim-inventory",
        sim_command(frontend, meter_port, &inventory),
    )
    .unwrap();
    first
        .wait_for(Duration::from_secs(60), "READY", |l| l.starts_with("READY"))
        .unwrap();
    first.kill();
    let inventory_text = fs::read(&inventory).unwrap();

    let mut listeners = Vec::new();
    for (name, port) in [("listener-a", port_a), ("listener-b", port_b)] {
        let out = dir.join(format!("{name}.jsonl"));
        let mut cmd = Command::new(HES);
        cmd.arg("push-listen")
            .arg("--inventory")
            .arg(&inventory)
            .arg("--listen")
            .arg(format!("{LISTEN_HOST}:{port}"))
            .arg("--out")
            .arg(&out);
        let p = Proc::spawn(name, cmd).unwrap();
        p.wait_for(Duration::from_secs(30), "LISTENING", |l| {
            l.starts_with("LISTENING")
        })
        .unwrap();
        listeners.push((name, p, Tail::new(out)));
    }

    let cfg = dir.join("haproxy.cfg");
    fs::write(&cfg, haproxy_config(frontend, [port_a, port_b])).unwrap();
    let mut cmd = Command::new(haproxy);
    cmd.arg("-f").arg(&cfg).arg("-db");
    let haproxy = Proc::spawn("haproxy", cmd).unwrap();
    wait_until(Duration::from_secs(10), "haproxy accepting", || {
        std::net::TcpStream::connect((LISTEN_HOST, frontend)).ok()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", haproxy.stderr.tail(20)));

    let inventory2 = dir.join("fleet2.json");
    let sim = Proc::spawn("sim", sim_command(frontend, meter_port, &inventory2)).unwrap();
    sim.wait_for(Duration::from_secs(60), "READY", |l| l.starts_with("READY"))
        .unwrap();
    let pushing_since = Instant::now();
    assert!(
        fs::read(&inventory2).unwrap() == inventory_text,
        "the fleet's inventory differs between two runs with the same arguments"
    );
    let meters: BTreeSet<String> =
        serde_json::from_slice::<Vec<serde_json::Value>>(&inventory_text)
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(meters.len(), METERS);

    // Every meter's pushes arrive, and both listeners have a share.
    let mut seen: [BTreeSet<String>; 2] = Default::default();
    let mut records = [0usize; 2];
    let all_in = wait_until(Duration::from_secs(30), "pushes from every meter", || {
        for (i, (_, _, tail)) in listeners.iter_mut().enumerate() {
            for r in tail.read_new() {
                records[i] += 1;
                seen[i].insert(r.meter);
            }
        }
        let union = seen[0].union(&seen[1]).count();
        (union == METERS && !seen[0].is_empty() && !seen[1].is_empty())
            .then(|| pushing_since.elapsed())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: pushes from {} of {METERS} meters (listener a: {} meters, b: {}); \
             haproxy: {}",
            seen[0].union(&seen[1]).count(),
            seen[0].len(),
            seen[1].len(),
            haproxy.stderr.tail(20)
        )
    });
    for s in &seen {
        assert!(
            s.is_subset(&meters),
            "records from meters not in the inventory"
        );
    }
    let share = |i: usize| records[i] as f64 / (records[0] + records[1]) as f64;
    eprintln!(
        "push_lb: all {METERS} meters in after {all_in:.1?}; listener a {} records ({:.0} %, \
         {} meters), b {} records ({:.0} %, {} meters)",
        records[0],
        share(0) * 100.0,
        seen[0].len(),
        records[1],
        share(1) * 100.0,
        seen[1].len()
    );
    // leastconn over two equal listeners: neither is starved.
    assert!(
        share(0) > 0.1 && share(1) > 0.1,
        "uneven spread: a {:?}, b {:?}",
        records[0],
        records[1]
    );
    // Each listener counts what it wrote (its status line may follow its records by a moment)
    // and rejected nothing.
    for (name, p, _) in &listeners {
        let line = pushes_with_readings(name, &p.stdout, 0);
        assert_eq!(counter(&line, "rejected"), Some(0), "{name}: {line}");
    }

    // Listener a dies. Records received from the next whole second on were sent after it died;
    // every meter must have some at listener b, within a few seconds (HAProxy retries refused
    // connections on the other listener at once, and the health check takes a out).
    let killed_at = Instant::now();
    let after = unix_now().floor() as i64 + 1;
    listeners[0].1.kill();
    let (_, b, tail_b) = &mut listeners[1];
    let mut survivor: BTreeSet<String> = BTreeSet::new();
    let mut all_at_b = None;
    let mut down = None;
    wait_until(Duration::from_secs(10), "failover to listener b", || {
        for r in tail_b.read_new() {
            if r.received_at >= after {
                survivor.insert(r.meter);
            }
        }
        if all_at_b.is_none() && survivor.len() == METERS {
            all_at_b = Some(killed_at.elapsed());
        }
        if down.is_none() && haproxy.stderr.any(|l| l.contains("push1 is DOWN")) {
            down = Some(killed_at.elapsed());
        }
        all_at_b.zip(down)
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: pushes from {} of {METERS} meters at b, a marked down: {down:?}; \
             haproxy: {}",
            survivor.len(),
            haproxy.stderr.tail(20)
        )
    });
    eprintln!(
        "push_lb: listener a killed; every meter's pushes at b again (received from second \
         {after} on) after {:.1?}; haproxy marked a down after {:.1?}; test {:.1?}",
        all_at_b.unwrap_or_default(),
        down.unwrap_or_default(),
        started.elapsed()
    );
    // Listener b still rejected nothing, up to a status line printed after everything above.
    let mark = b.stdout.len();
    let line = pushes_with_readings("listener-b", &b.stdout, mark);
    assert_eq!(counter(&line, "rejected"), Some(0), "listener b: {line}");
    // HAProxy's log, one line per connection (option tcplog), written when the connection
    // ends: `... dlms_push push_listeners/<server> Tw/Tc/Tt bytes <termination state>
    // act/fe/be/srv/<retries> ...`, retries with a `+` when the connection was redispatched.
    // Connections refused by the dead listener were redispatched (waited for: logged once
    // they end), and none failed to find a live listener (state `SC`).
    let tally = || {
        let (mut logged, mut redispatched, mut failed) = (0, 0, Vec::new());
        for line in haproxy.stderr.snapshot() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(i) = fields.iter().position(|f| *f == "dlms_push") else {
                continue;
            };
            let (Some(state), Some(conns)) = (fields.get(i + 4), fields.get(i + 5)) else {
                continue;
            };
            logged += 1;
            if conns.rsplit('/').next().is_some_and(|r| r.starts_with('+')) {
                redispatched += 1;
            }
            if state.starts_with("SC") {
                failed.push(line.clone());
            }
        }
        (logged, redispatched, failed)
    };
    let redispatched = wait_until(Duration::from_secs(10), "a redispatched connection", || {
        let (_, r, _) = tally();
        (r > 0).then_some(r)
    })
    .unwrap_or(0);
    let (logged, _, failed) = tally();
    for line in haproxy.stderr.snapshot() {
        if line.contains("push") && !line.contains("dlms_push") {
            eprintln!("push_lb: haproxy: {line}");
        }
    }
    eprintln!(
        "push_lb: haproxy logged {logged} connections, {redispatched} redispatched, {} failed",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "connections HAProxy could not place: {failed:#?}"
    );
    assert!(
        redispatched > 0,
        "no connection was redispatched within 10 s"
    );
}
