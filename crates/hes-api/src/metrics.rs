//! Prometheus metrics through the `metrics` facade and the process's one recorder (crate
//! `hes-metrics`), which every role records into and `/metrics` renders. The API's own: requests per route, method and status class, and a
//! latency histogram per route. Route labels are matched route templates and methods are
//! a known few, so cardinality stays bounded.

use std::time::Duration;

/// The process's one recorder (crate `hes-metrics`), which every role records into.
pub use hes_metrics::install;

const REQUESTS: &str = "hes_api_requests_total";
const DURATION: &str = "hes_api_request_duration_seconds";
const WS_CONNECTIONS: &str = "hes_api_ws_connections";
const WS_DROPPED: &str = "hes_api_ws_dropped_total";
const UPTIME: &str = "hes_api_uptime_seconds";
/// Webhook deliveries enqueued by the fan-out.
pub(crate) const WEBHOOK_ENQUEUED: &str = "hes_webhook_enqueued_total";
/// Webhook delivery attempts, by outcome (delivered, retry, dead).
pub(crate) const WEBHOOK_ATTEMPTS: &str = "hes_webhook_attempts_total";
pub(crate) const WEBHOOK_DURATION: &str = "hes_webhook_attempt_duration_seconds";

fn describe() {
    ::metrics::describe_counter!(REQUESTS, "HTTP requests answered.");
    ::metrics::describe_histogram!(
        DURATION,
        ::metrics::Unit::Seconds,
        "Time to answer, per route."
    );
    ::metrics::describe_gauge!(WS_CONNECTIONS, "Open WebSocket connections.");
    ::metrics::describe_counter!(
        WS_DROPPED,
        "Live messages dropped for slow WebSocket clients."
    );
    ::metrics::describe_gauge!(UPTIME, "Seconds since the API started.");
    ::metrics::describe_counter!(WEBHOOK_ENQUEUED, "Webhook deliveries enqueued.");
    ::metrics::describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by outcome (delivered, retry, dead)."
    );
    ::metrics::describe_histogram!(
        WEBHOOK_DURATION,
        ::metrics::Unit::Seconds,
        "Time of one webhook delivery attempt."
    );
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

/// The method as a label: a method clients may invent must not grow the series.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The API's metrics, recorded into the process's recorder.
#[derive(Debug, Clone)]
pub struct Metrics {
    _installed: (),
}

impl Default for Metrics {
    fn default() -> Self {
        install();
        describe();
        Self { _installed: () }
    }
}

impl Metrics {
    /// One answered request; `route` is the matched route template (or "unmatched").
    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        ::metrics::counter!(
            REQUESTS,
            "route" => route.to_string(),
            "method" => method_label(method),
            "status" => class(status)
        )
        .increment(1);
        ::metrics::histogram!(DURATION, "route" => route.to_string()).record(took.as_secs_f64());
    }

    pub fn ws_connected(&self, delta: i64) {
        // Deltas of ±1: exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        ::metrics::gauge!(WS_CONNECTIONS).increment(delta as f64);
    }

    pub fn ws_dropped(&self, n: u64) {
        ::metrics::counter!(WS_DROPPED).increment(n);
    }

    /// The Prometheus text exposition of everything the process records.
    pub fn render(&self, uptime: Duration) -> String {
        // Whole seconds, as before: exact in an f64 for any uptime.
        #[allow(clippy::cast_precision_loss)]
        ::metrics::gauge!(UPTIME).set(uptime.as_secs() as f64);
        hes_metrics::render()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn labels_are_bounded_and_install_is_idempotent() {
        let m = Metrics::default();
        let again = Metrics::default();
        m.observe("/unit/{id}", "BREW", 418, Duration::from_millis(3));
        again.observe("/unit/{id}", "GET", 200, Duration::from_millis(3));
        let text = install().render();
        assert!(
            text.contains(
                "hes_api_requests_total{route=\"/unit/{id}\",method=\"other\",status=\"4xx\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "hes_api_request_duration_seconds_bucket{route=\"/unit/{id}\",le=\"0.005\"} 2"
            ),
            "{text}"
        );
        assert!(!text.contains("BREW"));
    }
}
