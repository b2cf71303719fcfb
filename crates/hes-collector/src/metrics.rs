//! The collector's Prometheus metrics (recorded into the process's recorder, crate
//! `hes-metrics`). Labels are fixed sets: outcomes, the reasons of [`SessionError::reason`]
//! and the push listener's rejections, session steps, job states and priorities, and cells as
//! configured (the network's gateways, never meters).
//!
//! [`SessionError::reason`]: crate::session::SessionError::reason

use std::time::Instant;

pub const SESSIONS: &str = "hes_collector_sessions_total";
pub const SESSION_DURATION: &str = "hes_collector_session_duration_seconds";
pub const SESSIONS_OPEN: &str = "hes_collector_sessions_open";
pub const STEP_DURATION: &str = "hes_collector_step_duration_seconds";
pub const STEP_ERRORS: &str = "hes_collector_step_errors_total";
pub const BYTES_SENT: &str = "hes_collector_sent_bytes_total";
pub const BYTES_RECEIVED: &str = "hes_collector_received_bytes_total";
pub const COUNTER_RESYNCS: &str = "hes_collector_counter_resyncs_total";
pub const JOBS_FINISHED: &str = "hes_collector_jobs_finished_total";
pub const JOB_RETRIES: &str = "hes_collector_job_retries_total";
pub const PUSH_GAPS: &str = "hes_push_gaps_filled_total";
pub const JOBS_IN_FLIGHT: &str = "hes_collector_jobs_in_flight";
pub const JOB_REQUESTS: &str = "hes_collector_job_requests_total";
pub const CELL_SESSIONS: &str = "hes_collector_cell_sessions";
pub const LIMIT_WAITS: &str = "hes_collector_limit_full_total";
pub const PUSH_CONNECTIONS: &str = "hes_push_connections_total";
pub const PUSH_RECEIVED: &str = "hes_push_notifications_total";
pub const PUSH_REJECTED: &str = "hes_push_rejected_total";
pub const PUSH_READINGS: &str = "hes_push_readings_total";
pub const PUSH_EVENTS: &str = "hes_push_events_total";
pub const COLLECTION_DEADLINE: &str = "hes_collection_deadline_timestamp_seconds";
pub const COLLECTION_JOBS: &str = "hes_collection_cycle_jobs";

/// Describes the collector's metrics (once is enough; again is harmless).
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        SESSIONS,
        "Meter sessions ended, by outcome (ok, failed) and reason."
    );
    describe_histogram!(
        SESSION_DURATION,
        Unit::Seconds,
        "Meter sessions from connect to release, by outcome."
    );
    describe_gauge!(SESSIONS_OPEN, "Meter sessions open now.");
    describe_counter!(
        PUSH_GAPS,
        "Meters whose push of an interval never came, read by pull instead."
    );
    describe_histogram!(
        STEP_DURATION,
        Unit::Seconds,
        "Steps of a session (associate, reads, release), by step."
    );
    describe_counter!(STEP_ERRORS, "Failed session steps, by step and reason.");
    describe_counter!(BYTES_SENT, Unit::Bytes, "Bytes sent to meters.");
    describe_counter!(BYTES_RECEIVED, Unit::Bytes, "Bytes received from meters.");
    describe_counter!(
        COUNTER_RESYNCS,
        "Invocation counters read back from a meter that refused ours."
    );
    describe_counter!(JOBS_FINISHED, "Jobs finished here, by state and priority.");
    describe_counter!(JOB_RETRIES, "Job attempts to be tried again, by reason.");
    describe_gauge!(
        JOBS_IN_FLIGHT,
        "Jobs taken from the jobs topic and not finished."
    );
    describe_counter!(JOB_REQUESTS, "Records of the jobs topic taken, by outcome.");
    describe_gauge!(
        CELL_SESSIONS,
        "Places this collector holds in a cell's shared limit."
    );
    describe_counter!(
        LIMIT_WAITS,
        "Jobs deferred because a shared limit was full."
    );
    describe_counter!(PUSH_CONNECTIONS, "Push connections, by outcome.");
    describe_counter!(PUSH_RECEIVED, "Data notifications accepted.");
    describe_counter!(PUSH_REJECTED, "Data notifications rejected, by reason.");
    describe_counter!(PUSH_READINGS, "Readings received in pushes.");
    describe_counter!(PUSH_EVENTS, "Events received in pushes.");
    describe_gauge!(
        COLLECTION_DEADLINE,
        Unit::Seconds,
        "End of the window of a schedule's latest cycle, Unix seconds."
    );
    describe_gauge!(COLLECTION_JOBS, "Jobs of a schedule's latest cycle.");
    // Series that exist from the start at 0, so that a rate over them is 0 rather than
    // nothing before the first one happens.
    for reason in ["unknown_meter", "crypto", "replay", "malformed", "bus"] {
        ::metrics::counter!(PUSH_REJECTED, "reason" => reason).increment(0);
    }
    ::metrics::counter!(PUSH_RECEIVED).increment(0);
    ::metrics::counter!(SESSIONS, "outcome" => "ok", "reason" => "none").increment(0);
}

/// One session step's latency, and its failure if it failed.
pub fn step<T, E: Reason>(step: &'static str, started: Instant, r: &Result<T, E>) {
    ::metrics::histogram!(STEP_DURATION, "step" => step).record(started.elapsed().as_secs_f64());
    if let Err(e) = r {
        ::metrics::counter!(STEP_ERRORS, "step" => step, "reason" => e.reason()).increment(1);
    }
}

/// An error with a short, fixed reason (a label value).
pub trait Reason {
    fn reason(&self) -> &'static str;
}

impl Reason for crate::session::SessionError {
    fn reason(&self) -> &'static str {
        crate::session::SessionError::reason(self)
    }
}

/// One ended session.
pub fn session(outcome: &'static str, reason: &'static str, started: Instant) {
    ::metrics::counter!(SESSIONS, "outcome" => outcome, "reason" => reason).increment(1);
    ::metrics::histogram!(SESSION_DURATION, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

/// A job's end here (`state`: its final state, `priority`: scheduled or on demand).
pub fn job_finished(state: hes_model::JobState, priority: hes_model::Priority) {
    let state = match state {
        hes_model::JobState::Succeeded => "succeeded",
        hes_model::JobState::Cancelled => "cancelled",
        _ => "failed",
    };
    ::metrics::counter!(JOBS_FINISHED, "state" => state, "priority" => priority_label(priority))
        .increment(1);
}

/// A job attempt to be tried again.
pub fn job_retry(reason: &'static str) {
    ::metrics::counter!(JOB_RETRIES, "reason" => reason).increment(1);
}

pub fn priority_label(p: hes_model::Priority) -> &'static str {
    match p {
        hes_model::Priority::Scheduled => "scheduled",
        hes_model::Priority::OnDemand => "on_demand",
    }
}
