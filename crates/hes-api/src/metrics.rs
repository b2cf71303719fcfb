//! Prometheus metrics of the API: requests per route, method and status class, and a latency
//! histogram per route. Labels are the matched route templates, so cardinality stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    /// (route, method, status class) → requests.
    requests: BTreeMap<(String, String, &'static str), u64>,
    latency: BTreeMap<String, Histogram>,
    ws_connections: i64,
    ws_dropped: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Escapes a label value.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let mut m = self.lock();
        *m.requests
            .entry((route.to_string(), method.to_string(), class(status)))
            .or_default() += 1;
        let h = m.latency.entry(route.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                if let Some(c) = h.counts.get_mut(i) {
                    *c += 1;
                }
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn ws_connected(&self, delta: i64) {
        self.lock().ws_connections += delta;
    }

    pub fn ws_dropped(&self, n: u64) {
        self.lock().ws_dropped += n;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, uptime: Duration) -> String {
        let m = self.lock();
        let mut out = String::new();
        let _ = writeln!(out, "# HELP hes_api_requests_total HTTP requests answered.");
        let _ = writeln!(out, "# TYPE hes_api_requests_total counter");
        for ((route, method, class), n) in &m.requests {
            let _ = writeln!(
                out,
                "hes_api_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                esc(route),
                esc(method),
                class,
                n
            );
        }
        let _ = writeln!(
            out,
            "# HELP hes_api_request_duration_seconds Time to answer, per route."
        );
        let _ = writeln!(out, "# TYPE hes_api_request_duration_seconds histogram");
        for (route, h) in &m.latency {
            let r = esc(route);
            for (b, c) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "hes_api_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "hes_api_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "hes_api_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "hes_api_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP hes_api_ws_connections Open WebSocket connections."
        );
        let _ = writeln!(out, "# TYPE hes_api_ws_connections gauge");
        let _ = writeln!(out, "hes_api_ws_connections {}", m.ws_connections);
        let _ = writeln!(
            out,
            "# HELP hes_api_ws_dropped_total Live messages dropped for slow WebSocket clients."
        );
        let _ = writeln!(out, "# TYPE hes_api_ws_dropped_total counter");
        let _ = writeln!(out, "hes_api_ws_dropped_total {}", m.ws_dropped);
        let _ = writeln!(
            out,
            "# HELP hes_api_uptime_seconds Seconds since the API started."
        );
        let _ = writeln!(out, "# TYPE hes_api_uptime_seconds gauge");
        let _ = writeln!(out, "hes_api_uptime_seconds {}", uptime.as_secs());
        out
    }
}
