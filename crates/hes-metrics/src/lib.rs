//! The process's Prometheus metrics, whatever roles it runs: one recorder ([`install`]) that
//! every crate records into through the `metrics` facade (`metrics::counter!` and friends),
//! rendered by [`render`] with the process's CPU and memory, and served at `/metrics` by the
//! API's router or, on a node without the API, by [`serve`].
//!
//! Conventions every role keeps: names start with `hes_<role>_`, carry their unit
//! (`_seconds`, `_bytes`, `_total` for counters), and label values come from small fixed sets
//! (an outcome, a reason, a step, a stage, a partition number, a configured cell or schedule);
//! never a meter id, a job id or anything a client sends.

pub mod cert;
pub mod process;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Upper bounds of every histogram's buckets, seconds: from an API answer (a millisecond) to
/// a long meter session (two minutes). Every histogram of the head-end is a duration.
pub const BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How often histograms are folded when nobody scrapes (they hold raw samples until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder once and returns the handle that renders it;
/// later calls (several routers in one test process, several roles in one `hes`) get the same
/// handle. Should another recorder already be global, this one still renders, but only what
/// is recorded into it directly.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(e) = ::metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "another metrics recorder is installed");
            }
            process::describe();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms fold at scrapes");
            }
            handle
        })
        .clone()
}

/// The Prometheus text exposition of everything the process records, the process's own
/// figures (CPU, memory, descriptors) refreshed first.
pub fn render() -> String {
    let handle = install();
    process::sample();
    handle.render()
}

/// The content type of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A router with `GET /metrics` alone, to merge into a role's own or to serve by itself.
pub fn router() -> Router {
    install();
    Router::new().route(
        "/metrics",
        get(|| async { ([(header::CONTENT_TYPE, CONTENT_TYPE)], render()).into_response() }),
    )
}

/// Serves [`router`] on `addr` until `stop` turns true (or its sender goes); returns the
/// address bound (`addr` may ask for port 0).
pub async fn serve(
    addr: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router();
    tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(local)
}

/// Seconds since `start`, for a histogram.
pub fn seconds_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn serves_what_is_recorded_and_the_process_figures() {
        let (_stop, rx) = tokio::sync::watch::channel(false);
        let addr = serve("127.0.0.1:0".parse().unwrap(), rx).await.unwrap();
        ::metrics::counter!("hes_test_things_total", "outcome" => "ok").increment(3);
        ::metrics::histogram!("hes_test_step_seconds").record(0.003);
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains("hes_test_things_total{outcome=\"ok\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("hes_test_step_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        if cfg!(target_os = "linux") {
            assert!(text.contains("process_resident_memory_bytes "), "{text}");
            assert!(text.contains("process_cpu_seconds_total "), "{text}");
        }
    }
}
