//! Domain types every head-end service shares: meters, readings, events, jobs and their results.
//!
//! Times are Unix seconds (UTC). A reading keeps what the meter said — its own timestamp, the
//! OBIS code, the raw integer, scaler and unit — so that nothing is lost before validation; the
//! pipeline derives SI values from it.

pub mod aggregate;
pub mod backoff;
pub mod clock;
pub mod data_json;
pub mod event_class;
pub mod health;
pub mod inventory;
pub mod meter;
pub mod quality;
pub mod schedule;
pub mod secrets;

pub use aggregate::{Aggregate, Period};
pub use quality::{Quality, ValidatedReading};

use std::fmt;

use dlms::ObisCode;
use serde::{Deserialize, Serialize};

/// Serialises an OBIS code as its dotted text, `1.0.1.8.0.255`.
pub mod obis_text {
    use dlms::ObisCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(o: &ObisCode, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(o)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObisCode, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A meter's identity in the head-end (the inventory's `id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeterId(pub String);

impl fmt::Display for MeterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MeterId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// How a reading came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Scheduled,
    OnDemand,
    Push,
}

/// One value as the meter holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    pub meter: MeterId,
    /// The object (`class_id`, logical name, attribute) the value belongs to. For a profile
    /// entry, the captured column's object.
    #[serde(with = "obis_text")]
    pub obis: ObisCode,
    pub class_id: u16,
    pub attribute: i8,
    /// The meter's timestamp: the capture time of a profile entry, the meter's clock for a
    /// register read.
    pub time: i64,
    /// The raw value (registers are integers in DLMS; scaled by `10^scaler`).
    pub value: i64,
    pub scaler: i8,
    /// DLMS unit code (Blue Book table: 30 Wh, 32 varh, 27 W, 35 V, 33 A, ...).
    pub unit: u8,
    /// The meter's status for the value (profile status column when there is one), else 0.
    pub status: u8,
    pub source: Source,
    /// When the head-end received it.
    pub received_at: i64,
}

impl Reading {
    /// The natural key: one value per meter, object and meter timestamp.
    pub fn key(&self) -> (MeterId, ObisCode, i8, i64) {
        (self.meter.clone(), self.obis, self.attribute, self.time)
    }
}

/// One entry of a meter's event log (or an alarm it pushed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub meter: MeterId,
    /// The log (profile) it came from, or the push setup for alarms.
    #[serde(with = "obis_text")]
    pub log: ObisCode,
    pub time: i64,
    pub code: u16,
    pub source: Source,
    pub received_at: i64,
}

pub type JobId = u64;

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Registers and instantaneous values now.
    ReadInstant,
    /// The 15-minute load profile from `from` (or the whole buffer) to now.
    ReadLoadProfile { from: Option<i64> },
    /// The daily profile from `from`.
    ReadDaily { from: Option<i64> },
    /// The monthly billing profile.
    ReadBilling { from: Option<i64> },
    /// Every event log from `from`.
    ReadEvents { from: Option<i64> },
    /// Open (`connect = false`) or close the relay, then read its state back.
    Relay { connect: bool },
    /// Set the meter's clock to the head-end's time and report the drift.
    ClockSync,
    /// Transfer, verify and activate a firmware image (by its identifier in the image store).
    FirmwareUpgrade { image: String },
    /// Replace the meter's keys (EK and AK) through key transfer.
    RotateKeys,
    /// Write a two-rate calendar as the passive calendar (day rate on weekdays from
    /// `day_from_min` to `day_to_min` minutes after midnight, night rate otherwise and on
    /// weekends) and activate it now or at `activate_at` (Unix seconds).
    SetCalendar {
        name: String,
        day_from_min: u16,
        day_to_min: u16,
        activate_at: Option<i64>,
    },
}

impl JobKind {
    /// Commands change the meter; reads do not.
    pub fn is_command(&self) -> bool {
        matches!(
            self,
            Self::Relay { .. }
                | Self::ClockSync
                | Self::FirmwareUpgrade { .. }
                | Self::RotateKeys
                | Self::SetCalendar { .. }
        )
    }
}

/// Scheduled work yields to on-demand work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Scheduled = 0,
    OnDemand = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Retrying,
    Cancelled,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A read or a command for one meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub meter: MeterId,
    pub kind: JobKind,
    pub priority: Priority,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: i64,
    /// Not to start before (backoff).
    pub not_before: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
    /// Who asked (an operator for commands, `scheduler` otherwise).
    pub requested_by: String,
    /// The bus requests (`JobRequest::request`) this job answers: a read asked for again while
    /// queued is one job answering both.
    #[serde(default)]
    pub requests: Vec<String>,
}

/// A job as it travels on `hes.jobs` (the distributed mode's collectors take them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Unique per request (the dispatcher's), for tracing and deduplication.
    pub request: String,
    pub meter: MeterId,
    pub kind: JobKind,
    pub priority: Priority,
    pub requested_by: String,
    /// Not to start before (Unix milliseconds).
    pub not_before_ms: i64,
    /// The job's row in the store (0: a job not kept in a store).
    #[serde(default)]
    pub job: JobId,
}

/// What a finished job reports (topic `hes.job-results`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub job: JobId,
    pub meter: MeterId,
    pub kind: JobKind,
    pub state: JobState,
    pub attempts: u32,
    pub started_at: Option<i64>,
    pub finished_at: i64,
    pub error: Option<String>,
    /// Readings and events the job produced.
    pub readings: u32,
    pub events: u32,
    /// Command details (e.g. clock drift in seconds, relay state read back, new firmware).
    pub detail: serde_json::Value,
    /// The bus requests the job answered (empty for jobs queued locally).
    #[serde(default)]
    pub requests: Vec<String>,
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where commands go: whatever creates a job (its row in the store, where every node reads
/// its state) and puts it where a collector takes it: the jobs topic, or a local engine. The
/// API depends on this trait, not on the collector.
pub trait CommandSink: Send + Sync {
    /// The job's id (an open read of the same meter and kind is joined, not repeated), or why
    /// it could not be queued.
    fn submit<'a>(
        &'a self,
        meter: MeterId,
        kind: JobKind,
        requested_by: &'a str,
    ) -> BoxFuture<'a, Result<JobId, String>>;
}

/// The bus topics (keyed by meter id).
pub mod topics {
    pub const READINGS_RAW: &str = "hes.readings.raw";
    pub const READINGS_VALIDATED: &str = "hes.readings.validated";
    pub const READINGS_PROCESSED: &str = "hes.readings.processed";
    pub const EVENTS: &str = "hes.events";
    pub const JOBS: &str = "hes.jobs";
    pub const JOB_RESULTS: &str = "hes.job-results";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn readings_and_jobs_round_trip_as_json() {
        let r = Reading {
            meter: "MTR1".into(),
            obis: ObisCode::new(1, 0, 1, 8, 0, 255),
            class_id: 3,
            attribute: 2,
            time: 1_795_651_200,
            value: 123,
            scaler: 0,
            unit: 30,
            status: 0,
            source: Source::Scheduled,
            received_at: 1_795_651_260,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"obis\":\"1.0.1.8.0.255\""), "{j}");
        assert_eq!(serde_json::from_str::<Reading>(&j).unwrap(), r);
        let k = JobKind::ReadLoadProfile { from: Some(5) };
        let j = serde_json::to_string(&k).unwrap();
        assert_eq!(j, r#"{"kind":"read_load_profile","from":5}"#);
        assert!(!k.is_command() && JobKind::ClockSync.is_command());
        assert!(Priority::OnDemand > Priority::Scheduled);
    }
}
