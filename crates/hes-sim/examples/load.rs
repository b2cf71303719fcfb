//! Load generator for the simulator's serving-rate benchmark: full HLS-GMAC read sessions
//! (connect, associate with authenticated encryption, read, release) against the meters of an
//! inventory, `--concurrency` at once, each meter used by one worker at a time.
//!
//! `cargo run --release -p hes-sim --example load -- INVENTORY.json [--sessions N]
//!  [--concurrency C] [--profile]` prints sessions per second. `--profile` reads the last day of
//! the 15-minute load profile (96 entries) in each session; otherwise the clock and the A+
//! register.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlms::client::ClientConfig;
use dlms::cosem::profile_generic::entry_descriptor;
use dlms::xdlms::{GetDataResult, SelectiveAccess};
use dlms::{AttributeDescriptor, ObisCode, SystemTitle};
use dlms_net::Connection;
use hes_sim::fleet::{InventoryEntry, Role};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn config(m: &InventoryEntry, role: Role, ic: u32) -> ClientConfig {
    let mut cfg = m
        .client_config(role, SystemTitle(*b"LOADGEN1"), ic, rand_challenge())
        .expect("inventory keys");
    cfg.response_timeout = Duration::from_secs(10);
    cfg
}

fn rand_challenge() -> Vec<u8> {
    use rand::RngCore;
    let mut c = vec![0u8; 16];
    rand::thread_rng().fill_bytes(&mut c);
    c
}

async fn session(m: &InventoryEntry, ic: u32, profile: bool) -> Result<u32, String> {
    let mut c = Connection::connect(
        &m.endpoint.host,
        m.endpoint.port,
        config(m, Role::Management, ic),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    let get = |class_id, obis: ObisCode, attribute| AttributeDescriptor {
        class_id,
        instance: obis,
        attribute,
    };
    let check = |r: GetDataResult| match r {
        GetDataResult::Data(_) => Ok(()),
        GetDataResult::Error(e) => Err(format!("{e:?}")),
    };
    if profile {
        let sel = SelectiveAccess {
            selector: 2,
            parameters: entry_descriptor(0, 0, 1, 0),
        };
        // The last 96 entries: entries-in-use minus 95 to the end.
        let r = c
            .get(get(7, hes_sim::obis::LOAD_PROFILE, 7), None)
            .await
            .map_err(|e| e.to_string())?;
        let in_use = match r {
            GetDataResult::Data(dlms::Data::DoubleLongUnsigned(n)) => n,
            other => return Err(format!("{other:?}")),
        };
        let sel = SelectiveAccess {
            parameters: entry_descriptor(in_use.saturating_sub(95).max(1), 0, 1, 0),
            ..sel
        };
        check(
            c.get(get(7, hes_sim::obis::LOAD_PROFILE, 2), Some(sel))
                .await
                .map_err(|e| e.to_string())?,
        )?;
    } else {
        check(
            c.get(get(8, hes_sim::obis::CLOCK, 2), None)
                .await
                .map_err(|e| e.to_string())?,
        )?;
        check(
            c.get(get(3, hes_sim::obis::IMPORT, 2), None)
                .await
                .map_err(|e| e.to_string())?,
        )?;
    }
    let next = c.next_invocation_counter().unwrap_or(ic + 8);
    c.release().await.map_err(|e| e.to_string())?;
    Ok(next)
}

/// The last invocation counter the meter saw from the management client (public client).
async fn last_counter(m: &InventoryEntry) -> Result<u32, String> {
    let cfg = config(m, Role::Public, 1);
    let mut c = Connection::connect(
        &m.endpoint.host,
        m.endpoint.port,
        cfg,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    let ic = AttributeDescriptor {
        class_id: 1,
        instance: hes_sim::obis::INVOCATION_COUNTER,
        attribute: 2,
    };
    let r = c.get(ic, None).await.map_err(|e| e.to_string())?;
    let _ = c.release().await;
    match r {
        GetDataResult::Data(dlms::Data::DoubleLongUnsigned(n)) => Ok(n),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: load INVENTORY.json [--sessions N] [--concurrency C]");
    let inv: Vec<InventoryEntry> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("inventory")).expect("json");
    let sessions: u64 = arg(&args, "--sessions").map_or(10_000, |s| s.parse().unwrap());
    let concurrency: usize = arg(&args, "--concurrency").map_or(32, |s| s.parse().unwrap());
    let profile = args.iter().any(|a| a == "--profile");
    let inv = Arc::new(inv);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let inv = inv.clone();
        let done = done.clone();
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            // Worker w owns meters w, w+C, w+2C, ...: one session per meter at a time, and
            // the invocation counters it used.
            let mine: Vec<usize> = (w..inv.len()).step_by(concurrency).collect();
            if mine.is_empty() {
                return;
            }
            // 0: not known yet; read from the meter's public view first, as a head-end does.
            let mut ics = vec![0u32; mine.len()];
            let mut k = 0usize;
            loop {
                let n = done.fetch_add(1, Ordering::Relaxed);
                if n >= sessions {
                    done.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                let slot = k % mine.len();
                let m = &inv[mine[slot]];
                if ics[slot] == 0 {
                    match last_counter(m).await {
                        Ok(last) => ics[slot] = last + 1,
                        Err(e) => {
                            eprintln!("{}: reading the invocation counter: {e}", m.id);
                            ics[slot] = 1;
                        }
                    }
                }
                match session(m, ics[slot], profile).await {
                    Ok(next) => ics[slot] = next,
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("{}: {e}", m.id);
                        }
                        ics[slot] += 1000;
                    }
                }
                k += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let f = failed.load(Ordering::Relaxed);
    println!(
        "{} sessions ({} failed) over {} meters, concurrency {concurrency}, {}: {:.0} sessions/s",
        n,
        f,
        inv.len(),
        if profile {
            "96-entry profile"
        } else {
            "clock + A+"
        },
        n as f64 / secs
    );
}
