//! `hes push-listen`: the push listener on its own, for meters of an inventory: deciphers their
//! data notifications and writes readings and events as JSON lines (`--out`), printing its
//! counters every second. Several of them can stand behind a TCP load balancer
//! (`deploy/haproxy/`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hes_bus::kafka::KafkaBus;
use hes_collector::bus::{Bus, MemoryBus};
use hes_collector::push::{serve_pushes, PushListenerConfig, PushStats};
use hes_model::topics;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The meters whose pushes are accepted (JSON, or CSV for `.csv`).
    #[arg(long)]
    pub inventory: PathBuf,
    #[arg(long, default_value = "127.0.0.1:4060")]
    pub listen: SocketAddr,
    /// Append every reading and event received here, one JSON document a line.
    #[arg(long, conflicts_with = "brokers")]
    pub out: Option<PathBuf>,
    /// Publish readings and events to this Kafka (the distributed mode) instead: a push counts
    /// as received once Kafka has acknowledged it.
    #[arg(long)]
    pub brokers: Option<String>,
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. `127.0.0.1:9465`.
    #[arg(long, env = "HES_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
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
    let (registry, _) = crate::meters::registry_from(&args.inventory, None).await?;
    let memory = Arc::new(MemoryBus::new());
    let bus: Arc<dyn Bus> = match &args.brokers {
        Some(b) => {
            let k = KafkaBus::connect(b)?;
            k.ensure_topics(&[topics::READINGS_RAW, topics::EVENTS], 12)
                .await?;
            Arc::new(k)
        }
        None => memory.clone(),
    };
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
    hes_collector::metrics::describe();
    if let Some(addr) = args.metrics_addr {
        let local = hes_metrics::serve(addr, rx.clone())
            .await
            .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
        println!("METRICS http://{local}/metrics");
    }
    let server = tokio::spawn(serve_pushes(listener, registry, bus, cfg, rx));
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
            let (records, next) = memory.read(topic, *offset);
            *offset = next;
            if let Some(f) = out.as_mut() {
                for r in records {
                    f.write_all(hes_collector::bus::json_lines(topic, &r.payload).as_bytes())?;
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
                + n(&stats.rejected_malformed)
                + n(&stats.store_failures),
        );
    }
    let _ = stop.send(true);
    let _ = server.await;
    Ok(())
}
