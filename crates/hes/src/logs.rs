//! The log set-up of every subcommand: to stderr, filtered by `HES_LOG` (default `warn`), as
//! text or, with `HES_LOG_FORMAT=json`, one JSON object a line with the fields of the event and
//! of the spans it is in (`session` with the meter id, `job` with the job, meter and trace ids,
//! `batch` of the pipeline), for a log shipper to forward and an aggregator to search by
//! `meter` or `job` (docs/monitoring.md).

use tracing_subscriber::EnvFilter;

/// The format asked for by `HES_LOG_FORMAT`: `json`, else text.
fn json() -> bool {
    std::env::var("HES_LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"))
}

pub fn init() {
    let filter = EnvFilter::try_from_env("HES_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json() {
        builder
            .json()
            // Every span's fields, outermost first: a line carries the job, meter and trace
            // ids of whatever it happened in.
            .with_current_span(false)
            .with_span_list(true)
            .flatten_event(true)
            .init();
    } else {
        builder.init();
    }
}
