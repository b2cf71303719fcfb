//! The bus contract with integrators as protobuf: the messages of `proto/hes/v1/hes.proto`,
//! generated, with conversions from and to the domain types of `hes-model`. Every message
//! carries `schema_version` ([`SCHEMA_VERSION`]).

#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/hes.v1.rs"));
}

use hes_model::{
    Aggregate, JobKind, JobResult, JobState, MeterId, Period, Quality, Reading, Source,
    ValidatedReading,
};
use prost::Message;

/// The version of the messages this crate writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("field {field}: {why}")]
    Field { field: &'static str, why: String },
    #[error("schema version {0} is newer than this reader knows ({SCHEMA_VERSION})")]
    Version(u32),
}

fn field(field: &'static str, why: impl ToString) -> ProtoError {
    ProtoError::Field {
        field,
        why: why.to_string(),
    }
}

fn source_to(s: Source) -> v1::Source {
    match s {
        Source::Scheduled => v1::Source::Scheduled,
        Source::OnDemand => v1::Source::OnDemand,
        Source::Push => v1::Source::Push,
    }
}

fn source_from(s: i32) -> Result<Source, ProtoError> {
    match v1::Source::try_from(s) {
        Ok(v1::Source::Scheduled) => Ok(Source::Scheduled),
        Ok(v1::Source::OnDemand) => Ok(Source::OnDemand),
        Ok(v1::Source::Push) => Ok(Source::Push),
        _ => Err(field("source", format!("unknown value {s}"))),
    }
}

impl From<&Reading> for v1::Reading {
    fn from(r: &Reading) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            meter: r.meter.0.clone(),
            obis: r.obis.to_string(),
            class_id: u32::from(r.class_id),
            attribute: i32::from(r.attribute),
            time: r.time,
            value: r.value,
            scaler: i32::from(r.scaler),
            unit: u32::from(r.unit),
            status: u32::from(r.status),
            source: source_to(r.source) as i32,
            received_at: r.received_at,
        }
    }
}

impl TryFrom<v1::Reading> for Reading {
    type Error = ProtoError;

    fn try_from(r: v1::Reading) -> Result<Self, ProtoError> {
        if r.schema_version > SCHEMA_VERSION {
            return Err(ProtoError::Version(r.schema_version));
        }
        Ok(Self {
            meter: MeterId(r.meter),
            obis: r.obis.parse().map_err(|e| field("obis", e))?,
            class_id: u16::try_from(r.class_id).map_err(|e| field("class_id", e))?,
            attribute: i8::try_from(r.attribute).map_err(|e| field("attribute", e))?,
            time: r.time,
            value: r.value,
            scaler: i8::try_from(r.scaler).map_err(|e| field("scaler", e))?,
            unit: u8::try_from(r.unit).map_err(|e| field("unit", e))?,
            status: u8::try_from(r.status).map_err(|e| field("status", e))?,
            source: source_from(r.source)?,
            received_at: r.received_at,
        })
    }
}

impl From<&hes_model::Event> for v1::Event {
    fn from(e: &hes_model::Event) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            meter: e.meter.0.clone(),
            log: e.log.to_string(),
            time: e.time,
            code: u32::from(e.code),
            source: source_to(e.source) as i32,
            received_at: e.received_at,
        }
    }
}

impl TryFrom<v1::Event> for hes_model::Event {
    type Error = ProtoError;

    fn try_from(e: v1::Event) -> Result<Self, ProtoError> {
        if e.schema_version > SCHEMA_VERSION {
            return Err(ProtoError::Version(e.schema_version));
        }
        Ok(Self {
            meter: MeterId(e.meter),
            log: e.log.parse().map_err(|x| field("log", x))?,
            time: e.time,
            code: u16::try_from(e.code).map_err(|x| field("code", x))?,
            source: source_from(e.source)?,
            received_at: e.received_at,
        })
    }
}

fn state_to(s: JobState) -> v1::JobState {
    match s {
        JobState::Queued => v1::JobState::Queued,
        JobState::Running => v1::JobState::Running,
        JobState::Succeeded => v1::JobState::Succeeded,
        JobState::Failed => v1::JobState::Failed,
        JobState::Retrying => v1::JobState::Retrying,
        JobState::Cancelled => v1::JobState::Cancelled,
    }
}

impl From<&JobResult> for v1::JobResult {
    fn from(r: &JobResult) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            job: r.job,
            meter: r.meter.0.clone(),
            kind_json: serde_json::to_string(&r.kind).unwrap_or_default(),
            state: state_to(r.state) as i32,
            attempts: r.attempts,
            started_at: r.started_at.unwrap_or(0),
            finished_at: r.finished_at,
            error: r.error.clone().unwrap_or_default(),
            readings: r.readings,
            events: r.events,
            detail_json: r.detail.to_string(),
            requests: r.requests.clone(),
        }
    }
}

impl TryFrom<v1::JobResult> for JobResult {
    type Error = ProtoError;

    fn try_from(r: v1::JobResult) -> Result<Self, ProtoError> {
        if r.schema_version > SCHEMA_VERSION {
            return Err(ProtoError::Version(r.schema_version));
        }
        let state = match v1::JobState::try_from(r.state) {
            Ok(v1::JobState::Queued) => JobState::Queued,
            Ok(v1::JobState::Running) => JobState::Running,
            Ok(v1::JobState::Succeeded) => JobState::Succeeded,
            Ok(v1::JobState::Failed) => JobState::Failed,
            Ok(v1::JobState::Retrying) => JobState::Retrying,
            Ok(v1::JobState::Cancelled) => JobState::Cancelled,
            _ => return Err(field("state", format!("unknown value {}", r.state))),
        };
        let kind: JobKind =
            serde_json::from_str(&r.kind_json).map_err(|e| field("kind_json", e))?;
        Ok(Self {
            job: r.job,
            meter: MeterId(r.meter),
            kind,
            state,
            attempts: r.attempts,
            started_at: (r.started_at != 0).then_some(r.started_at),
            finished_at: r.finished_at,
            error: (!r.error.is_empty()).then_some(r.error),
            readings: r.readings,
            events: r.events,
            detail: if r.detail_json.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&r.detail_json).map_err(|e| field("detail_json", e))?
            },
            requests: r.requests,
        })
    }
}

fn check_version(v: u32) -> Result<(), ProtoError> {
    if v > SCHEMA_VERSION {
        Err(ProtoError::Version(v))
    } else {
        Ok(())
    }
}

/// The most entries a batch may hold when decoded: a bound on what one record can make us
/// allocate beyond its own bytes.
pub const MAX_BATCH: usize = 100_000;

fn check_len(n: usize) -> Result<(), ProtoError> {
    if n > MAX_BATCH {
        Err(field(
            "batch",
            format!("{n} entries, more than {MAX_BATCH}"),
        ))
    } else {
        Ok(())
    }
}

/// One meter's readings as a `ReadingBatch`.
pub fn encode_readings(readings: &[Reading]) -> Vec<u8> {
    v1::ReadingBatch {
        schema_version: SCHEMA_VERSION,
        readings: readings.iter().map(v1::Reading::from).collect(),
    }
    .encode_to_vec()
}

/// Readings from untrusted `ReadingBatch` bytes.
pub fn decode_readings(bytes: &[u8]) -> Result<Vec<Reading>, ProtoError> {
    let b = v1::ReadingBatch::decode(bytes)?;
    check_version(b.schema_version)?;
    check_len(b.readings.len())?;
    b.readings.into_iter().map(Reading::try_from).collect()
}

/// Validated readings as a `ValidatedBatch`.
pub fn encode_validated(readings: &[ValidatedReading]) -> Vec<u8> {
    v1::ValidatedBatch {
        schema_version: SCHEMA_VERSION,
        readings: readings
            .iter()
            .map(|v| v1::ValidatedReading {
                schema_version: SCHEMA_VERSION,
                reading: Some(v1::Reading::from(&v.reading)),
                quality: v.quality.0,
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Validated readings from untrusted `ValidatedBatch` bytes.
pub fn decode_validated(bytes: &[u8]) -> Result<Vec<ValidatedReading>, ProtoError> {
    let b = v1::ValidatedBatch::decode(bytes)?;
    check_version(b.schema_version)?;
    check_len(b.readings.len())?;
    b.readings
        .into_iter()
        .map(|v| {
            check_version(v.schema_version)?;
            let r = v.reading.ok_or_else(|| field("reading", "missing"))?;
            Ok(ValidatedReading {
                reading: Reading::try_from(r)?,
                quality: Quality(v.quality),
            })
        })
        .collect()
}

/// Events as an `EventBatch`.
pub fn encode_events(events: &[hes_model::Event]) -> Vec<u8> {
    v1::EventBatch {
        schema_version: SCHEMA_VERSION,
        events: events.iter().map(v1::Event::from).collect(),
    }
    .encode_to_vec()
}

/// Events from untrusted `EventBatch` bytes.
pub fn decode_events(bytes: &[u8]) -> Result<Vec<hes_model::Event>, ProtoError> {
    let b = v1::EventBatch::decode(bytes)?;
    check_version(b.schema_version)?;
    check_len(b.events.len())?;
    b.events
        .into_iter()
        .map(hes_model::Event::try_from)
        .collect()
}

/// A job result as a `JobResult` message.
pub fn encode_job_result(r: &JobResult) -> Vec<u8> {
    v1::JobResult::from(r).encode_to_vec()
}

/// A job result from untrusted bytes.
pub fn decode_job_result(bytes: &[u8]) -> Result<JobResult, ProtoError> {
    JobResult::try_from(v1::JobResult::decode(bytes)?)
}

/// A job request as a `JobRequest` message.
pub fn encode_job_request(j: &hes_model::JobRequest) -> Vec<u8> {
    v1::JobRequest {
        schema_version: SCHEMA_VERSION,
        request: j.request.clone(),
        meter: j.meter.0.clone(),
        kind_json: serde_json::to_string(&j.kind).unwrap_or_default(),
        priority: j.priority as u32,
        requested_by: j.requested_by.clone(),
        not_before_ms: j.not_before_ms,
        job: j.job,
    }
    .encode_to_vec()
}

/// A job request from untrusted bytes.
pub fn decode_job_request(bytes: &[u8]) -> Result<hes_model::JobRequest, ProtoError> {
    let j = v1::JobRequest::decode(bytes)?;
    check_version(j.schema_version)?;
    let kind: JobKind = serde_json::from_str(&j.kind_json).map_err(|e| field("kind_json", e))?;
    let priority = match j.priority {
        0 => hes_model::Priority::Scheduled,
        1 => hes_model::Priority::OnDemand,
        p => return Err(field("priority", format!("unknown value {p}"))),
    };
    if j.meter.is_empty() {
        return Err(field("meter", "empty"));
    }
    Ok(hes_model::JobRequest {
        request: j.request,
        meter: MeterId(j.meter),
        kind,
        priority,
        requested_by: j.requested_by,
        not_before_ms: j.not_before_ms,
        job: j.job,
    })
}

/// One interval's consumption as `hes.readings.processed` carries it: in SI units (`value` in
/// `unit`, Wh or varh for energy), ending at `interval_end`, `interval_seconds` long (longer
/// than the profile's interval only for a gap that could not be estimated, flagged
/// `MISSING_BEFORE`); estimates are flagged `ESTIMATED`. Natural key: (meter, channel,
/// interval_end).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedInterval {
    pub meter: MeterId,
    pub channel: String,
    pub interval_end: i64,
    pub interval_seconds: i64,
    pub value: f64,
    pub unit: String,
    pub quality: Quality,
}

/// One record of `hes.readings.processed`: a meter's intervals and its aggregates (keyed by
/// the meter), or a group's aggregates (keyed by the group, no intervals).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Processed {
    pub intervals: Vec<ProcessedInterval>,
    pub aggregates: Vec<Aggregate>,
}

fn period_to(p: Period) -> v1::Period {
    match p {
        Period::Hour => v1::Period::Hour,
        Period::Day => v1::Period::Day,
        Period::Month => v1::Period::Month,
    }
}

impl From<&ProcessedInterval> for v1::Interval {
    fn from(i: &ProcessedInterval) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            meter: i.meter.0.clone(),
            channel: i.channel.clone(),
            interval_end: i.interval_end,
            interval_seconds: i.interval_seconds,
            value: i.value,
            unit: i.unit.clone(),
            quality: i.quality.0,
        }
    }
}

impl TryFrom<v1::Interval> for ProcessedInterval {
    type Error = ProtoError;

    fn try_from(i: v1::Interval) -> Result<Self, ProtoError> {
        check_version(i.schema_version)?;
        if i.meter.is_empty() {
            return Err(field("interval.meter", "empty"));
        }
        if i.channel.is_empty() {
            return Err(field("interval.channel", "empty"));
        }
        if i.interval_seconds <= 0 {
            return Err(field(
                "interval.interval_seconds",
                format!("{} is not positive", i.interval_seconds),
            ));
        }
        if !i.value.is_finite() {
            return Err(field("interval.value", "not finite"));
        }
        Ok(Self {
            meter: MeterId(i.meter),
            channel: i.channel,
            interval_end: i.interval_end,
            interval_seconds: i.interval_seconds,
            value: i.value,
            unit: i.unit,
            quality: Quality(i.quality),
        })
    }
}

impl From<&Aggregate> for v1::Aggregate {
    fn from(a: &Aggregate) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            subject: a.subject.clone(),
            channel: a.channel.clone(),
            period: period_to(a.period) as i32,
            period_start: a.period_start,
            total: a.total,
            intervals: a.count,
            complete: a.complete,
            quality: a.quality_worst.0,
        }
    }
}

impl TryFrom<v1::Aggregate> for Aggregate {
    type Error = ProtoError;

    fn try_from(a: v1::Aggregate) -> Result<Self, ProtoError> {
        check_version(a.schema_version)?;
        let period = match v1::Period::try_from(a.period) {
            Ok(v1::Period::Hour) => Period::Hour,
            Ok(v1::Period::Day) => Period::Day,
            Ok(v1::Period::Month) => Period::Month,
            _ => {
                return Err(field(
                    "aggregate.period",
                    format!("unknown value {}", a.period),
                ))
            }
        };
        if a.subject.is_empty() {
            return Err(field("aggregate.subject", "empty"));
        }
        if !a.total.is_finite() {
            return Err(field("aggregate.total", "not finite"));
        }
        // The period's end follows from its start; a start that is not a period boundary (or
        // is outside years 1..=9999, where the calendar arithmetic could overflow) is refused
        // rather than silently moved.
        if !(MIN_TIME..=MAX_TIME).contains(&a.period_start)
            || period.start(a.period_start) != a.period_start
        {
            return Err(field(
                "aggregate.period_start",
                format!("{} does not start a {period:?}", a.period_start),
            ));
        }
        Ok(Self {
            subject: a.subject,
            period,
            channel: a.channel,
            period_start: a.period_start,
            period_end: period.end(a.period_start),
            total: a.total,
            count: a.intervals,
            complete: a.complete,
            quality_worst: Quality(a.quality),
        })
    }
}

/// 0001-01-01 and 9999-12-31 23:59:59 UTC: the times an aggregate's period may start at.
const MIN_TIME: i64 = -62_135_596_800;
const MAX_TIME: i64 = 253_402_300_799;

/// A processed record as a `ProcessedBatch`.
pub fn encode_processed(p: &Processed) -> Vec<u8> {
    v1::ProcessedBatch {
        schema_version: SCHEMA_VERSION,
        intervals: p.intervals.iter().map(v1::Interval::from).collect(),
        aggregates: p.aggregates.iter().map(v1::Aggregate::from).collect(),
    }
    .encode_to_vec()
}

/// A processed record from untrusted `ProcessedBatch` bytes.
pub fn decode_processed(bytes: &[u8]) -> Result<Processed, ProtoError> {
    let b = v1::ProcessedBatch::decode(bytes)?;
    check_version(b.schema_version)?;
    check_len(b.intervals.len().saturating_add(b.aggregates.len()))?;
    Ok(Processed {
        intervals: b
            .intervals
            .into_iter()
            .map(ProcessedInterval::try_from)
            .collect::<Result<_, _>>()?,
        aggregates: b
            .aggregates
            .into_iter()
            .map(Aggregate::try_from)
            .collect::<Result<_, _>>()?,
    })
}

/// A reading as the bytes of its protobuf message.
pub fn encode_reading(r: &Reading) -> Vec<u8> {
    v1::Reading::from(r).encode_to_vec()
}

/// A reading from untrusted bytes.
pub fn decode_reading(bytes: &[u8]) -> Result<Reading, ProtoError> {
    Reading::try_from(v1::Reading::decode(bytes)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dlms::ObisCode;

    fn reading() -> Reading {
        Reading {
            meter: "MTR00000001".into(),
            obis: ObisCode::new(1, 0, 1, 8, 0, 255),
            class_id: 3,
            attribute: 2,
            time: 1_795_651_200,
            value: -42,
            scaler: -3,
            unit: 30,
            status: 8,
            source: Source::Push,
            received_at: 1_795_651_230,
        }
    }

    #[test]
    fn readings_events_and_results_round_trip() {
        let r = reading();
        let bytes = encode_reading(&r);
        assert_eq!(decode_reading(&bytes).unwrap(), r);
        let e = hes_model::Event {
            meter: "MTR1".into(),
            log: ObisCode::new(0, 0, 99, 98, 0, 255),
            time: 5,
            code: 40,
            source: Source::Scheduled,
            received_at: 6,
        };
        let back = hes_model::Event::try_from(
            v1::Event::decode(v1::Event::from(&e).encode_to_vec().as_slice()).unwrap(),
        )
        .unwrap();
        assert_eq!(back, e);
        let j = JobResult {
            job: 7,
            meter: "MTR1".into(),
            kind: JobKind::Relay { connect: false },
            state: JobState::Succeeded,
            attempts: 2,
            started_at: Some(10),
            finished_at: 12,
            error: None,
            readings: 0,
            events: 0,
            detail: serde_json::json!({"relay_connected": false}),
            requests: vec!["api-1-7".into(), "sched@0/MTR1".into()],
        };
        let back = JobResult::try_from(
            v1::JobResult::decode(v1::JobResult::from(&j).encode_to_vec().as_slice()).unwrap(),
        )
        .unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(decode_reading(&[0xFF, 0xFF, 0xFF]).is_err());
        let mut m = v1::Reading::from(&reading());
        m.obis = "not an obis".into();
        assert!(matches!(
            decode_reading(&m.encode_to_vec()),
            Err(ProtoError::Field { field: "obis", .. })
        ));
        let mut m = v1::Reading::from(&reading());
        m.scaler = 1000;
        assert!(decode_reading(&m.encode_to_vec()).is_err());
        let mut m = v1::Reading::from(&reading());
        m.schema_version = 2;
        assert!(matches!(
            decode_reading(&m.encode_to_vec()),
            Err(ProtoError::Version(2))
        ));
        // A message from an older writer without the version field still reads.
        let mut m = v1::Reading::from(&reading());
        m.schema_version = 0;
        assert_eq!(decode_reading(&m.encode_to_vec()).unwrap(), reading());
    }

    #[test]
    #[allow(clippy::indexing_slicing)]
    fn batches_round_trip_and_refuse_bad_bytes() {
        let r = reading();
        let mut r2 = reading();
        r2.meter = "MTR2".into();
        let batch = vec![r.clone(), r2];
        assert_eq!(decode_readings(&encode_readings(&batch)).unwrap(), batch);
        assert!(decode_readings(&encode_readings(&[])).unwrap().is_empty());
        let v = vec![ValidatedReading {
            reading: r.clone(),
            quality: Quality(Quality::SPIKE | Quality::ROLLOVER),
        }];
        assert_eq!(decode_validated(&encode_validated(&v)).unwrap(), v);
        let e = vec![hes_model::Event {
            meter: "MTR1".into(),
            log: ObisCode::new(0, 0, 99, 98, 0, 255),
            time: 5,
            code: 7,
            source: Source::Push,
            received_at: 6,
        }];
        assert_eq!(decode_events(&encode_events(&e)).unwrap(), e);
        // Truncated bytes, a newer schema and a validated entry without its reading are
        // typed errors.
        let bytes = encode_readings(&batch);
        assert!(decode_readings(&bytes[..bytes.len() - 3]).is_err());
        let newer = v1::ReadingBatch {
            schema_version: SCHEMA_VERSION + 1,
            readings: vec![],
        }
        .encode_to_vec();
        assert!(matches!(
            decode_readings(&newer),
            Err(ProtoError::Version(_))
        ));
        let hollow = v1::ValidatedBatch {
            schema_version: 1,
            readings: vec![v1::ValidatedReading {
                schema_version: 1,
                reading: None,
                quality: 0,
            }],
        }
        .encode_to_vec();
        assert!(decode_validated(&hollow).is_err());
        let job = hes_model::JobRequest {
            request: "r-1".into(),
            meter: "MTR1".into(),
            kind: JobKind::Relay { connect: false },
            priority: hes_model::Priority::OnDemand,
            requested_by: "operator".into(),
            not_before_ms: 1_795_651_200_000,
            job: 42,
        };
        assert_eq!(decode_job_request(&encode_job_request(&job)).unwrap(), job);
        let bad = v1::JobRequest {
            schema_version: 1,
            meter: "MTR1".into(),
            kind_json: "{\"kind\":\"explode\"}".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(decode_job_request(&bad).is_err());
    }

    #[test]
    #[allow(clippy::indexing_slicing)]
    fn processed_round_trips_and_refuses_bad_fields() {
        let p = Processed {
            intervals: vec![ProcessedInterval {
                meter: "MTR1".into(),
                channel: "energy.active.import".into(),
                interval_end: 1_795_651_200,
                interval_seconds: 900,
                value: 250.0,
                unit: "Wh".into(),
                quality: Quality(Quality::ESTIMATED),
            }],
            aggregates: vec![Aggregate {
                subject: "MTR1".into(),
                period: Period::Day,
                channel: "energy.active.import".into(),
                period_start: 1_795_651_200,
                period_end: 1_795_651_200 + 86_400,
                total: 24_000.0,
                count: 96,
                complete: true,
                quality_worst: Quality(Quality::ESTIMATED),
            }],
        };
        assert_eq!(decode_processed(&encode_processed(&p)).unwrap(), p);
        assert_eq!(
            decode_processed(&encode_processed(&Processed::default())).unwrap(),
            Processed::default()
        );
        let good = v1::ProcessedBatch::decode(encode_processed(&p).as_slice()).unwrap();
        let bad = |f: &dyn Fn(&mut v1::ProcessedBatch)| {
            let mut b = good.clone();
            f(&mut b);
            decode_processed(&b.encode_to_vec())
        };
        assert!(matches!(
            bad(&|b| b.aggregates[0].period = 9),
            Err(ProtoError::Field {
                field: "aggregate.period",
                ..
            })
        ));
        assert!(matches!(
            bad(&|b| b.aggregates[0].period_start += 1),
            Err(ProtoError::Field {
                field: "aggregate.period_start",
                ..
            })
        ));
        assert!(matches!(
            bad(&|b| b.intervals[0].interval_seconds = 0),
            Err(ProtoError::Field {
                field: "interval.interval_seconds",
                ..
            })
        ));
        assert!(matches!(
            bad(&|b| b.intervals[0].value = f64::NAN),
            Err(ProtoError::Field {
                field: "interval.value",
                ..
            })
        ));
        assert!(matches!(
            bad(&|b| b.intervals[0].schema_version = 2),
            Err(ProtoError::Version(2))
        ));
        assert!(matches!(
            bad(&|b| b.schema_version = 2),
            Err(ProtoError::Version(2))
        ));
        let bytes = encode_processed(&p);
        assert!(decode_processed(&bytes[..bytes.len() - 2]).is_err());
    }
}
