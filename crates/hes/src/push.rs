//! `hes push-listen`: the push listener on its own, for meters of an inventory: deciphers their
//! data notifications and writes readings and events as JSON lines (`--out`), printing its
//! counters every second. Several of them can stand behind a TCP load balancer
//! (`deploy/haproxy/`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hes_collector::bus::MemoryBus;
use hes_collector::push::{serve_pushes, PushListenerConfig, PushStats};
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_model::inventory::InventoryEntry;
use hes_model::topics;
use rand::RngCore;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The meters whose pushes are accepted (JSON, or CSV for `.csv`).
    #[arg(long)]
    pub inventory: PathBuf,
    #[arg(long, default_value = "127.0.0.1:4060")]
    pub listen: SocketAddr,
    /// Append every reading and event received here, one JSON document a line.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
}

pub async fn run(args: PushArgs) -> u8 {
    match listen(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hes push-listen: {e:#}");
            1
        }
    }
}

async fn listen(args: PushArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.inventory)
        .with_context(|| format!("reading {}", args.inventory.display()))?;
    let entries: Vec<InventoryEntry> = if args.inventory.extension().is_some_and(|e| e == "csv") {
        hes_model::inventory::from_csv(&text)?
    } else {
        serde_json::from_str(&text).context("inventory JSON")?
    };
    let kek = match Kek::from_env() {
        Ok(k) => k,
        Err(_) => {
            let mut k = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut k);
            Kek::from_bytes(&k)?
        }
    };
    let registry = Arc::new(Registry::in_memory(kek));
    registry.import(&entries, |_| BTreeMap::new())?;
    let bus = Arc::new(MemoryBus::new());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("LISTENING {}", listener.local_addr()?.port());
    let stats = Arc::new(PushStats::default());
    let cfg = PushListenerConfig {
        max_connections: args.max_connections,
        stats: stats.clone(),
        ..PushListenerConfig::default()
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve_pushes(listener, registry, bus.clone(), cfg, rx));
    let mut out = match &args.out {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        None => None,
    };
    let mut offsets = [0usize; 2];
    let n = |a: &AtomicU64| PushStats::get(a);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        for (topic, offset) in [topics::READINGS_RAW, topics::EVENTS]
            .iter()
            .zip(&mut offsets)
        {
            let (records, next) = bus.read(topic, *offset);
            *offset = next;
            if let Some(f) = out.as_mut() {
                for r in records {
                    f.write_all(&r.payload)?;
                    f.write_all(b"\n")?;
                }
                f.flush()?;
            }
        }
        println!(
            "PUSHES connections={} notifications={} readings={} events={} rejected={}",
            n(&stats.connections),
            n(&stats.notifications),
            n(&stats.readings),
            n(&stats.events),
            n(&stats.rejected_unknown_meter)
                + n(&stats.rejected_crypto)
                + n(&stats.rejected_replay)
                + n(&stats.rejected_malformed),
        );
    }
    let _ = stop.send(true);
    let _ = server.await;
    Ok(())
}
