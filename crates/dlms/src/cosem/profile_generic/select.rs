//! Selective access to a profile buffer, as a meter applies it (server side): the meter
//! simulator and tests use this to answer `get` requests with access selectors 1 and 2.

use std::cmp::Ordering;

use super::{EntryDescriptor, RangeDescriptor, ENTRY_DESCRIPTOR, RANGE_DESCRIPTOR};
use crate::axdr::Data;
use crate::cosem::{CaptureObject, CosemError};

/// Applies access selector `selector` with its `parameters` to `rows` (each row one value per
/// entry of `capture_objects`, oldest first).
///
/// * Range (1): rows whose restricting column lies in `[from_value, to_value]` inclusive. The
///   bounds and the column compare as instants when they are date-times (octet-string or
///   date-time type; an unspecified deviation counts as UTC) and as numbers otherwise. Rows
///   whose cell is not comparable (e.g. a date-time with wildcards) are left out. `from > to`
///   is an empty range, not an error. Columns are `selected_values` in the order given (empty
///   = all).
/// * Entry (2): entries `from_entry..=to_entry` counted from 1 (`to_entry` 0 = the last;
///   `from_entry` 0 is read as 1, as several clients send it); entries past the end are simply
///   absent. Columns `from_selected_value..=to_selected_value` likewise (0 = the last); a
///   column range outside `capture_objects`, or `from > to`, is an error.
///
/// An unknown selector, malformed parameters, a restricting or selected object that is not a
/// captured column, or a row shorter than `capture_objects` give an error.
pub fn select(
    rows: &[Vec<Data>],
    capture_objects: &[CaptureObject],
    selector: u8,
    parameters: &Data,
) -> Result<Vec<Vec<Data>>, CosemError> {
    match selector {
        RANGE_DESCRIPTOR => by_range(
            rows,
            capture_objects,
            &RangeDescriptor::from_data(parameters)?,
        ),
        ENTRY_DESCRIPTOR => by_entry(
            rows,
            capture_objects.len(),
            &EntryDescriptor::from_data(parameters)?,
        ),
        other => Err(CosemError::UnknownSelector(other)),
    }
}

fn by_range(
    rows: &[Vec<Data>],
    capture_objects: &[CaptureObject],
    range: &RangeDescriptor,
) -> Result<Vec<Vec<Data>>, CosemError> {
    let column = column_of(capture_objects, &range.restricting_object)?;
    let from = Key::of(&range.from_value).ok_or(CosemError::Invalid(
        "range from_value is neither a date-time nor a number",
    ))?;
    let to = Key::of(&range.to_value).ok_or(CosemError::Invalid(
        "range to_value is neither a date-time nor a number",
    ))?;
    if from.compare(&to).is_none() {
        return Err(CosemError::Invalid(
            "range from_value and to_value are of different kinds",
        ));
    }
    let columns: Vec<usize> = if range.selected_values.is_empty() {
        (0..capture_objects.len()).collect()
    } else {
        range
            .selected_values
            .iter()
            .map(|c| column_of(capture_objects, c))
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for row in rows {
        let cell = row.get(column).ok_or(SHORT_ROW)?;
        let Some(key) = Key::of(cell) else { continue };
        let after_from = matches!(from.compare(&key), Some(Ordering::Less | Ordering::Equal));
        let before_to = matches!(key.compare(&to), Some(Ordering::Less | Ordering::Equal));
        if after_from && before_to {
            out.push(project(row, columns.iter().copied())?);
        }
    }
    Ok(out)
}

fn by_entry(
    rows: &[Vec<Data>],
    columns: usize,
    entry: &EntryDescriptor,
) -> Result<Vec<Vec<Data>>, CosemError> {
    if entry.to_entry != 0 && entry.from_entry > entry.to_entry {
        return Err(CosemError::Invalid("from_entry is after to_entry"));
    }
    let first_col = usize::from(entry.from_selected_value.max(1));
    let last_col = match entry.to_selected_value {
        0 => columns,
        n => usize::from(n),
    };
    if last_col > columns {
        return Err(CosemError::Invalid(
            "to_selected_value past the last column",
        ));
    }
    // With no columns at all and "0 = last", there is nothing to select but nothing wrong.
    if first_col > last_col && !(columns == 0 && entry.to_selected_value == 0) {
        return Err(CosemError::Invalid(
            "from_selected_value is after to_selected_value or past the last column",
        ));
    }
    let first = to_usize(entry.from_entry.max(1));
    let last = match entry.to_entry {
        0 => rows.len(),
        n => to_usize(n).min(rows.len()),
    };
    let count = (last + 1).saturating_sub(first);
    rows.iter()
        .skip(first - 1)
        .take(count)
        .map(|row| project(row, (first_col - 1)..last_col))
        .collect()
}

const SHORT_ROW: CosemError = CosemError::Invalid("buffer row shorter than capture_objects");

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn column_of(
    capture_objects: &[CaptureObject],
    wanted: &CaptureObject,
) -> Result<usize, CosemError> {
    capture_objects
        .iter()
        .position(|c| c == wanted)
        .ok_or(CosemError::Invalid("object is not a captured column"))
}

fn project(row: &[Data], columns: impl Iterator<Item = usize>) -> Result<Vec<Data>, CosemError> {
    columns
        .map(|i| row.get(i).cloned().ok_or(SHORT_ROW))
        .collect()
}

/// What a range bound or a restricting cell compares as.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// Unix seconds.
    Instant(i64),
    /// Integers compare exactly (a u64 counter does not fit an f64 exactly).
    Integer(i128),
    Float(f64),
}

impl Key {
    fn of(d: &Data) -> Option<Key> {
        if let Some(dt) = d.as_date_time() {
            return dt.to_unix().map(Key::Instant);
        }
        if let Some(i) = d.as_i128() {
            return Some(Key::Integer(i));
        }
        d.as_f64().filter(|f| !f.is_nan()).map(Key::Float)
    }

    fn compare(&self, other: &Key) -> Option<Ordering> {
        match (*self, *other) {
            (Key::Instant(a), Key::Instant(b)) => Some(a.cmp(&b)),
            (Key::Integer(a), Key::Integer(b)) => Some(a.cmp(&b)),
            (Key::Float(a), Key::Float(b)) => a.partial_cmp(&b),
            (Key::Integer(a), Key::Float(b)) => (a as f64).partial_cmp(&b),
            (Key::Float(a), Key::Integer(b)) => a.partial_cmp(&(b as f64)),
            _ => None,
        }
    }
}
