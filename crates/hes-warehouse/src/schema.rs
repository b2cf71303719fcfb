//! The two Parquet schemas and how a buffer of rows becomes one row group of them.

use std::io::Write;

use hes_model::{Aggregate, Quality, ValidatedReading};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::writer::SerializedFileWriter;

use crate::Error;

/// One reading a row; `date` comes from the directory (Hive partitioning), not the file.
pub const READINGS: &str = "
message reading {
    required binary meter (STRING);
    required binary obis (STRING);
    required int32 class_id;
    required int32 attribute;
    required int64 time (TIMESTAMP(MICROS, true));
    required int64 value;
    required int32 scaler;
    required int32 unit;
    required double value_si;
    required int32 status;
    required int32 quality;
    required binary flags (STRING);
    required binary source (STRING);
    required int64 received_at (TIMESTAMP(MICROS, true));
}";

/// One aggregate a row; `period` and `date` come from the directories.
pub const AGGREGATES: &str = "
message aggregate {
    required binary subject (STRING);
    required binary channel (STRING);
    required int64 period_start (TIMESTAMP(MICROS, true));
    required int64 period_end (TIMESTAMP(MICROS, true));
    required double total;
    required int32 count;
    required boolean complete;
    required int32 quality;
    required binary flags (STRING);
}";

/// The values of one column of a row group.
enum Column {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

/// `value × 10^scaler`. A negative scaler divides by an exact power of ten, so 12345 with
/// scaler −3 is the double nearest 12.345 (multiplying by 10^−3, itself inexact, may not be).
pub fn value_si(value: i64, scaler: i8) -> f64 {
    let p = 10f64.powi(i32::from(scaler).abs());
    if scaler >= 0 {
        value as f64 * p
    } else {
        value as f64 / p
    }
}

/// The flag names, comma-separated (empty when there are none).
pub fn flags(q: Quality) -> String {
    q.names().join(",")
}

/// The quality bits as an int32 (the same bit pattern; bit 31 reads as negative).
fn quality_bits(q: Quality) -> i32 {
    i32::from_ne_bytes(q.0.to_ne_bytes())
}

fn source_name(s: hes_model::Source) -> &'static str {
    match s {
        hes_model::Source::Scheduled => "scheduled",
        hes_model::Source::OnDemand => "on_demand",
        hes_model::Source::Push => "push",
    }
}

/// Unix seconds as microseconds; the caller has checked the calendar range, this only keeps
/// the arithmetic total.
fn micros(what: &'static str, t: i64) -> Result<i64, Error> {
    if crate::date::Date::of_time(t).is_none() {
        return Err(Error::TimeOutOfRange { what, time: t });
    }
    t.checked_mul(1_000_000)
        .ok_or(Error::TimeOutOfRange { what, time: t })
}

fn text(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

fn reading_columns(rows: &[ValidatedReading]) -> Result<Vec<Column>, Error> {
    let n = rows.len();
    let mut meter = Vec::with_capacity(n);
    let mut obis = Vec::with_capacity(n);
    let mut class_id = Vec::with_capacity(n);
    let mut attribute = Vec::with_capacity(n);
    let mut time = Vec::with_capacity(n);
    let mut value = Vec::with_capacity(n);
    let mut scaler = Vec::with_capacity(n);
    let mut unit = Vec::with_capacity(n);
    let mut si = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut quality = Vec::with_capacity(n);
    let mut flag = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut received = Vec::with_capacity(n);
    for v in rows {
        let r = &v.reading;
        meter.push(text(&r.meter.0));
        obis.push(text(&r.obis.to_string()));
        class_id.push(i32::from(r.class_id));
        attribute.push(i32::from(r.attribute));
        time.push(micros("reading time", r.time)?);
        value.push(r.value);
        scaler.push(i32::from(r.scaler));
        unit.push(i32::from(r.unit));
        si.push(value_si(r.value, r.scaler));
        status.push(i32::from(r.status));
        quality.push(quality_bits(v.quality));
        flag.push(text(&flags(v.quality)));
        source.push(text(source_name(r.source)));
        received.push(micros("received_at", r.received_at)?);
    }
    Ok(vec![
        Column::Bytes(meter),
        Column::Bytes(obis),
        Column::I32(class_id),
        Column::I32(attribute),
        Column::I64(time),
        Column::I64(value),
        Column::I32(scaler),
        Column::I32(unit),
        Column::F64(si),
        Column::I32(status),
        Column::I32(quality),
        Column::Bytes(flag),
        Column::Bytes(source),
        Column::I64(received),
    ])
}

fn aggregate_columns(rows: &[Aggregate]) -> Result<Vec<Column>, Error> {
    let n = rows.len();
    let mut subject = Vec::with_capacity(n);
    let mut channel = Vec::with_capacity(n);
    let mut start = Vec::with_capacity(n);
    let mut end = Vec::with_capacity(n);
    let mut total = Vec::with_capacity(n);
    let mut count = Vec::with_capacity(n);
    let mut complete = Vec::with_capacity(n);
    let mut quality = Vec::with_capacity(n);
    let mut flag = Vec::with_capacity(n);
    for a in rows {
        subject.push(text(&a.subject));
        channel.push(text(&a.channel));
        start.push(micros("period_start", a.period_start)?);
        end.push(micros("period_end", a.period_end)?);
        total.push(a.total);
        count.push(i32::try_from(a.count).map_err(|_| Error::ValueOutOfRange {
            what: "aggregate count",
            value: i64::from(a.count),
        })?);
        complete.push(a.complete);
        quality.push(quality_bits(a.quality_worst));
        flag.push(text(&flags(a.quality_worst)));
    }
    Ok(vec![
        Column::Bytes(subject),
        Column::Bytes(channel),
        Column::I64(start),
        Column::I64(end),
        Column::F64(total),
        Column::I32(count),
        Column::Bool(complete),
        Column::I32(quality),
        Column::Bytes(flag),
    ])
}

/// Rows buffered for one file, written out a row group at a time.
#[derive(Debug)]
pub enum Rows {
    Readings(Vec<ValidatedReading>),
    Aggregates(Vec<Aggregate>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Readings(v) => v.len(),
            Rows::Aggregates(v) => v.len(),
        }
    }

    /// Checks what [`Rows::write_row_group`] would refuse, so a bad row is refused when it is
    /// handed in rather than at some later flush.
    pub fn check_reading(v: &ValidatedReading) -> Result<(), Error> {
        micros("reading time", v.reading.time)?;
        micros("received_at", v.reading.received_at)?;
        Ok(())
    }

    pub fn check_aggregate(a: &Aggregate) -> Result<(), Error> {
        micros("period_start", a.period_start)?;
        micros("period_end", a.period_end)?;
        i32::try_from(a.count).map_err(|_| Error::ValueOutOfRange {
            what: "aggregate count",
            value: i64::from(a.count),
        })?;
        Ok(())
    }

    /// Writes the buffered rows as one row group and empties the buffer.
    pub fn write_row_group<W: Write + Send>(
        &mut self,
        file: &mut SerializedFileWriter<W>,
    ) -> Result<(), Error> {
        if self.len() == 0 {
            return Ok(());
        }
        let columns = match self {
            Rows::Readings(v) => {
                let c = reading_columns(v)?;
                v.clear();
                c
            }
            Rows::Aggregates(v) => {
                let c = aggregate_columns(v)?;
                v.clear();
                c
            }
        };
        let mut group = file.next_row_group()?;
        let mut columns = columns.into_iter();
        while let Some(mut writer) = group.next_column()? {
            let column = columns
                .next()
                .ok_or(Error::Schema("more columns than values"))?;
            match (writer.untyped(), column) {
                (ColumnWriter::BoolColumnWriter(w), Column::Bool(v)) => {
                    w.write_batch(&v, None, None)?;
                }
                (ColumnWriter::Int32ColumnWriter(w), Column::I32(v)) => {
                    w.write_batch(&v, None, None)?;
                }
                (ColumnWriter::Int64ColumnWriter(w), Column::I64(v)) => {
                    w.write_batch(&v, None, None)?;
                }
                (ColumnWriter::DoubleColumnWriter(w), Column::F64(v)) => {
                    w.write_batch(&v, None, None)?;
                }
                (ColumnWriter::ByteArrayColumnWriter(w), Column::Bytes(v)) => {
                    w.write_batch(&v, None, None)?;
                }
                _ => return Err(Error::Schema("a column's type differs from the schema")),
            }
            writer.close()?;
        }
        if columns.next().is_some() {
            return Err(Error::Schema("more values than columns"));
        }
        group.close()?;
        Ok(())
    }
}
