//! Profile generic (class 7): selective access by range and by entry, on both sides.

use crate::axdr::Data;

use super::{int, CaptureObject, CosemError};

pub const CLASS_ID: u16 = 7;
pub const BUFFER: i8 = 2;
pub const CAPTURE_OBJECTS: i8 = 3;
pub const CAPTURE_PERIOD: i8 = 4;
pub const ENTRIES_IN_USE: i8 = 7;
pub const PROFILE_ENTRIES: i8 = 8;
pub const RESET: i8 = 1;
pub const CAPTURE: i8 = 2;

/// Access selector 1: rows whose restricting value lies in a range.
pub const RANGE_DESCRIPTOR: u8 = 1;
/// Access selector 2: rows by entry number.
pub const ENTRY_DESCRIPTOR: u8 = 2;

/// The parameters of a range read: restricting object, from and to values, selected columns
/// (empty = all).
pub fn range_descriptor(
    restricting: &CaptureObject,
    from: &Data,
    to: &Data,
    selected: &[CaptureObject],
) -> Data {
    Data::Structure(vec![
        restricting.to_data(),
        from.clone(),
        to.clone(),
        Data::Array(selected.iter().map(CaptureObject::to_data).collect()),
    ])
}

/// The parameters of an entry read: entries from..=to (1-based, to 0 = the last) and columns
/// from_value..=to_value (1-based, to 0 = the last).
pub fn entry_descriptor(from_entry: u32, to_entry: u32, from_value: u16, to_value: u16) -> Data {
    Data::Structure(vec![
        Data::DoubleLongUnsigned(from_entry),
        Data::DoubleLongUnsigned(to_entry),
        Data::LongUnsigned(from_value),
        Data::LongUnsigned(to_value),
    ])
}

/// A comparable key of a restricting value: date-times by their instant, numbers as numbers.
fn key(d: &Data) -> Option<i128> {
    if let Some(dt) = d.as_date_time() {
        return dt.to_unix().map(i128::from);
    }
    d.as_i128()
}

/// Applies a selective access to a buffer, as a meter does.
pub fn select(
    rows: &[Vec<Data>],
    capture_objects: &[CaptureObject],
    selector: u8,
    parameters: &Data,
) -> Result<Vec<Vec<Data>>, CosemError> {
    match selector {
        RANGE_DESCRIPTOR => {
            let [restricting, from, to, selected] =
                parameters.as_elements().ok_or(CosemError::WrongType {
                    expected: "range_descriptor structure",
                })?
            else {
                return Err(CosemError::WrongLength {
                    what: "range_descriptor",
                });
            };
            let restricting = CaptureObject::from_data(restricting)?;
            let col = capture_objects
                .iter()
                .position(|c| {
                    c.class_id == restricting.class_id
                        && c.logical_name == restricting.logical_name
                        && c.attribute_index == restricting.attribute_index
                })
                .ok_or(CosemError::Invalid(
                    "the restricting object is not captured",
                ))?;
            let (from, to) = (
                key(from).ok_or(CosemError::Invalid("range start is not comparable"))?,
                key(to).ok_or(CosemError::Invalid("range end is not comparable"))?,
            );
            let selected = CaptureObject::list_from_data(selected)?;
            let columns: Vec<usize> = if selected.is_empty() {
                (0..capture_objects.len()).collect()
            } else {
                selected
                    .iter()
                    .map(|s| {
                        capture_objects
                            .iter()
                            .position(|c| {
                                c.class_id == s.class_id
                                    && c.logical_name == s.logical_name
                                    && c.attribute_index == s.attribute_index
                            })
                            .ok_or(CosemError::Invalid("a selected column is not captured"))
                    })
                    .collect::<Result<_, _>>()?
            };
            Ok(rows
                .iter()
                .filter(|r| {
                    r.get(col)
                        .and_then(key)
                        .is_some_and(|k| from <= k && k <= to)
                })
                .map(|r| columns.iter().filter_map(|c| r.get(*c).cloned()).collect())
                .collect())
        }
        ENTRY_DESCRIPTOR => {
            let [fe, te, fv, tv] = parameters.as_elements().ok_or(CosemError::WrongType {
                expected: "entry_descriptor structure",
            })?
            else {
                return Err(CosemError::WrongLength {
                    what: "entry_descriptor",
                });
            };
            let from_entry: usize = int(fe, "double-long-unsigned from_entry")?;
            let to_entry: usize = int(te, "double-long-unsigned to_entry")?;
            let from_value: usize = int(fv, "long-unsigned from_selected_value")?;
            let to_value: usize = int(tv, "long-unsigned to_selected_value")?;
            let n = rows.len();
            let to_entry = if to_entry == 0 { n } else { to_entry.min(n) };
            let ncols = capture_objects.len();
            let to_value = if to_value == 0 { ncols } else { to_value };
            if from_entry == 0 || from_value == 0 || to_value > ncols || from_value > to_value {
                return Err(CosemError::Invalid("entry or column numbers out of range"));
            }
            if from_entry > to_entry {
                return Ok(Vec::new());
            }
            Ok(rows
                .get(from_entry - 1..to_entry)
                .unwrap_or_default()
                .iter()
                .map(|r| r.get(from_value - 1..to_value).unwrap_or_default().to_vec())
                .collect())
        }
        _ => Err(CosemError::Invalid("unknown access selector")),
    }
}
