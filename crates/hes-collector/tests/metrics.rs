//! A collector's `/metrics` after it read a simulated meter: the session by outcome, the
//! latency of the session and its steps, the bytes exchanged and the job's end, with labels
//! from fixed sets only (no meter id anywhere in the exposition).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dlms::SystemTitle;
use hes_collector::bus::MemoryBus;
use hes_collector::counters::Counters;
use hes_collector::jobs::{Audit, Engine, EngineConfig};
use hes_collector::registry::Registry;
use hes_collector::secrets::Kek;
use hes_collector::session::Env;
use hes_model::{JobKind, JobState, MeterId, Priority};
use hes_sim::fleet::{Fleet, FleetConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// The value of the sample `series` (name and labels exactly as exposed), if there.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_session_after_reading_a_simulated_meter() {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let addr = hes_metrics::serve("127.0.0.1:0".parse().unwrap(), rx.clone())
        .await
        .unwrap();
    hes_collector::metrics::describe();
    let mut cfg = FleetConfig::new(1);
    cfg.first_host = IpAddr::from([127, 72, 0, 1]);
    let fleet = Fleet::start(cfg).await.unwrap();
    let registry = Registry::in_memory(Kek::from_bytes(&[6; 32]).unwrap())
        .await
        .unwrap();
    registry.import(&fleet.inventory(), false).await.unwrap();
    let env = Arc::new(Env {
        registry: registry.clone(),
        counters: Arc::new(Counters::new(registry.state().clone())),
        client_title: SystemTitle(*b"HESTEST2"),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
    });
    let engine = Engine::new(
        env,
        Arc::new(MemoryBus::new()),
        EngineConfig::default(),
        Audit::in_memory(),
    );
    tokio::spawn(engine.clone().run(rx));
    let meter = MeterId(fleet.meters()[0].spec.id());
    let id = engine
        .submit(
            meter.clone(),
            JobKind::ReadInstant,
            Priority::OnDemand,
            "test",
        )
        .await
        .unwrap();
    assert!(engine.wait_idle(Duration::from_secs(60)).await);
    assert_eq!(engine.job(id).unwrap().state, JobState::Succeeded);

    let text = scrape(addr).await;
    let ok = value(
        &text,
        "hes_collector_sessions_total{outcome=\"ok\",reason=\"none\"}",
    );
    assert!(ok >= Some(1.0), "{text}");
    assert!(
        value(
            &text,
            "hes_collector_session_duration_seconds_count{outcome=\"ok\"}"
        ) >= Some(1.0),
        "{text}"
    );
    for step in ["associate", "read_instant", "release"] {
        let series = format!("hes_collector_step_duration_seconds_count{{step=\"{step}\"}}");
        assert!(value(&text, &series) >= Some(1.0), "{series}: {text}");
    }
    assert!(
        value(&text, "hes_collector_sent_bytes_total") > Some(0.0),
        "{text}"
    );
    assert!(
        value(&text, "hes_collector_received_bytes_total") > Some(0.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            "hes_collector_jobs_finished_total{state=\"succeeded\",priority=\"on_demand\"}"
        ) >= Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, "hes_collector_sessions_open") == Some(0.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE hes_collector_sessions_total counter"),
        "{text}"
    );
    assert!(
        !text.contains(&meter.0),
        "a meter id in the metrics: {text}"
    );
    let _ = stop.send(true);
    fleet.shutdown();
}
