//! Rows in and out: the binary COPY of readings and events, and rows decoded into the domain
//! types.

use super::*;

/// COPYs `(reading, quality)` rows into `table`.
pub(super) async fn copy_readings<'r>(
    client: &tokio_postgres::Transaction<'_>,
    table: &str,
    readings: impl Iterator<Item = (&'r Reading, i32)>,
) -> Result<u64, StoreError> {
    let sink = client
        .copy_in(&format!(
            "COPY {table} ({VALIDATED_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, READING_TYPES));
    for (r, quality) in readings {
        let obis = r.obis.to_string();
        let row: [&(dyn ToSql + Sync); 12] = [
            &r.meter.0,
            &obis,
            &i16::from(r.attribute),
            &r.time,
            &i32::from(r.class_id),
            &r.value,
            &i16::from(r.scaler),
            &i16::from(r.unit),
            &i16::from(r.status),
            &source_text(r.source),
            &r.received_at,
            &quality,
        ];
        writer.as_mut().write(&row).await?;
    }
    Ok(writer.finish().await?)
}

pub(super) fn quality_i32(q: Quality) -> Result<i32, StoreError> {
    i32::try_from(q.0).map_err(|_| StoreError::Invalid(format!("quality {:#x} out of range", q.0)))
}

pub(super) fn validated_from_row(r: &Row) -> Result<ValidatedReading, StoreError> {
    validated_from_row_at(r, 0)
}

/// A validated reading from the row's columns starting at `at`.
pub(super) fn validated_from_row_at(r: &Row, at: usize) -> Result<ValidatedReading, StoreError> {
    Ok(ValidatedReading {
        reading: reading_from_row_at(r, at)?,
        quality: quality_of(i64::from(r.try_get::<_, i32>(at + 11)?))?,
    })
}

pub(super) fn aggregate_from_row(r: &Row) -> Result<Aggregate, StoreError> {
    let period: String = r.try_get(2)?;
    Ok(Aggregate {
        subject: r.try_get(0)?,
        channel: r.try_get(1)?,
        period: parse_period(&period)?,
        period_start: r.try_get(3)?,
        period_end: r.try_get(4)?,
        total: r.try_get(5)?,
        count: narrow(i64::from(r.try_get::<_, i32>(6)?), "count")?,
        complete: r.try_get(7)?,
        quality_worst: quality_of(i64::from(r.try_get::<_, i32>(8)?))?,
    })
}

pub(super) async fn copy_events(
    client: &tokio_postgres::Transaction<'_>,
    events: &[Event],
) -> Result<u64, StoreError> {
    let sink = client
        .copy_in(&format!(
            "COPY events_stage ({EVENT_COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, EVENT_TYPES));
    for e in events {
        let log = e.log.to_string();
        let row: [&(dyn ToSql + Sync); 6] = [
            &e.meter.0,
            &log,
            &e.time,
            &i32::from(e.code),
            &source_text(e.source),
            &e.received_at,
        ];
        writer.as_mut().write(&row).await?;
    }
    Ok(writer.finish().await?)
}

pub(super) fn reading_from_row(r: &Row) -> Result<Reading, StoreError> {
    reading_from_row_at(r, 0)
}

pub(super) fn reading_from_row_at(r: &Row, at: usize) -> Result<Reading, StoreError> {
    let obis: String = r.try_get(at + 1)?;
    let source: String = r.try_get(at + 9)?;
    Ok(Reading {
        meter: MeterId(r.try_get(at)?),
        obis: parse_obis(&obis)?,
        attribute: narrow(i64::from(r.try_get::<_, i16>(at + 2)?), "attribute")?,
        time: r.try_get(at + 3)?,
        class_id: narrow(i64::from(r.try_get::<_, i32>(at + 4)?), "class_id")?,
        value: r.try_get(at + 5)?,
        scaler: narrow(i64::from(r.try_get::<_, i16>(at + 6)?), "scaler")?,
        unit: narrow(i64::from(r.try_get::<_, i16>(at + 7)?), "unit")?,
        status: narrow(i64::from(r.try_get::<_, i16>(at + 8)?), "status")?,
        source: parse_source(&source)?,
        received_at: r.try_get(at + 10)?,
    })
}
