#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use crate::axdr::DateTime;
use crate::codec::Codec;
use crate::cosem::CosemError;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn clock() -> CaptureObject {
    CaptureObject::new(8, ObisCode::new(0, 0, 1, 0, 0, 255), 2)
}

fn columns() -> Vec<CaptureObject> {
    vec![
        clock(),
        CaptureObject::new(1, ObisCode::new(0, 0, 96, 10, 1, 255), 2),
        CaptureObject::new(3, ObisCode::new(1, 0, 1, 8, 0, 255), 2),
        CaptureObject::new(3, ObisCode::new(1, 0, 2, 8, 0, 255), 2),
    ]
}

fn at(i: i64) -> Data {
    Data::OctetString(DateTime::from_unix(T0 + i * 900, 60, 0).to_octets())
}

/// One day of quarter-hour rows: time, status, +A, -A.
fn buffer() -> Vec<Vec<Data>> {
    (0..96)
        .map(|i| {
            vec![
                at(i),
                Data::Unsigned((i % 4) as u8),
                Data::DoubleLongUnsigned(1000 + i as u32 * 10),
                Data::DoubleLongUnsigned(i as u32),
            ]
        })
        .collect()
}

fn by_range(
    from: Data,
    to: Data,
    selected: &[CaptureObject],
) -> Result<Vec<Vec<Data>>, CosemError> {
    let p = range_descriptor(&clock(), &from, &to, selected);
    select(&buffer(), &columns(), RANGE_DESCRIPTOR, &p)
}

fn by_entry(fe: u32, te: u32, fv: u16, tv: u16) -> Result<Vec<Vec<Data>>, CosemError> {
    select(
        &buffer(),
        &columns(),
        ENTRY_DESCRIPTOR,
        &entry_descriptor(fe, te, fv, tv),
    )
}

#[test]
fn range_is_inclusive_on_both_ends() {
    let rows = by_range(at(4), at(7), &[]).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], buffer()[4]);
    assert_eq!(rows[3], buffer()[7]);
}

#[test]
fn range_accepts_the_date_time_type_and_other_offsets() {
    // The same instants, sent as date-time type with another UTC offset.
    let from = Data::DateTime(DateTime::from_unix(T0 + 10 * 900, -300, 0));
    let to = Data::DateTime(DateTime::from_unix(T0 + 11 * 900, 0, 0));
    let rows = by_range(from, to, &[]).unwrap();
    assert_eq!(rows, buffer()[10..=11].to_vec());
}

#[test]
fn range_between_rows_and_reversed_is_empty() {
    let between = Data::OctetString(DateTime::from_unix(T0 + 901, 60, 0).to_octets());
    let between2 = Data::OctetString(DateTime::from_unix(T0 + 1799, 60, 0).to_octets());
    assert_eq!(
        by_range(between, between2, &[]).unwrap(),
        Vec::<Vec<Data>>::new()
    );
    assert!(by_range(at(10), at(5), &[]).unwrap().is_empty());
    assert!(by_range(at(200), at(300), &[]).unwrap().is_empty());
}

#[test]
fn range_selects_columns_in_the_order_asked() {
    let cols = columns();
    let rows = by_range(at(0), at(95), &[cols[3], cols[0]]).unwrap();
    assert_eq!(rows.len(), 96);
    assert_eq!(rows[5], vec![Data::DoubleLongUnsigned(5), at(5)]);
}

#[test]
fn range_over_a_numeric_column() {
    let cols = columns();
    let p = range_descriptor(
        &cols[2],
        &Data::LongUnsigned(1500),
        &Data::DoubleLong(1520),
        &[cols[2]],
    );
    let rows = select(&buffer(), &cols, RANGE_DESCRIPTOR, &p).unwrap();
    assert_eq!(
        rows,
        vec![
            vec![Data::DoubleLongUnsigned(1500)],
            vec![Data::DoubleLongUnsigned(1510)],
            vec![Data::DoubleLongUnsigned(1520)],
        ]
    );
}

#[test]
fn range_rejects_bad_parameters() {
    let unknown = CaptureObject::new(3, ObisCode::new(1, 0, 3, 8, 0, 255), 2);
    assert!(by_range(at(0), at(1), &[unknown]).is_err());
    let p = range_descriptor(&unknown, &at(0), &at(1), &[]);
    assert!(select(&buffer(), &columns(), RANGE_DESCRIPTOR, &p).is_err());
    // A date-time bound with a number bound, and a bound that is neither.
    assert!(by_range(at(0), Data::Unsigned(3), &[]).is_err());
    assert!(by_range(Data::Boolean(true), at(3), &[]).is_err());
    // A wildcard year is not an instant.
    let mut wild = DateTime::from_unix(T0, 0, 0);
    wild.date.year = crate::axdr::YEAR_UNSPECIFIED;
    assert!(by_range(Data::DateTime(wild), at(3), &[]).is_err());
    // Not a range_descriptor at all.
    assert!(select(&buffer(), &columns(), RANGE_DESCRIPTOR, &Data::Null).is_err());
}

#[test]
fn range_skips_rows_whose_time_is_not_an_instant() {
    let mut rows = buffer();
    rows[5][0] = Data::OctetString(vec![0xFF; 12]);
    rows[6][0] = Data::Null;
    let p = range_descriptor(&clock(), &at(4), &at(7), &[]);
    let got = select(&rows, &columns(), RANGE_DESCRIPTOR, &p).unwrap();
    assert_eq!(got, vec![rows[4].clone(), rows[7].clone()]);
}

#[test]
fn entry_selects_rows_and_columns() {
    let rows = by_entry(3, 5, 2, 3).unwrap();
    let b = buffer();
    assert_eq!(
        rows,
        (2..5).map(|i| b[i][1..3].to_vec()).collect::<Vec<_>>()
    );
}

#[test]
fn entry_zero_means_last() {
    let all = by_entry(1, 0, 0, 0).unwrap();
    assert_eq!(all, buffer());
    let tail = by_entry(95, 0, 4, 0).unwrap();
    assert_eq!(
        tail,
        vec![
            vec![Data::DoubleLongUnsigned(94)],
            vec![Data::DoubleLongUnsigned(95)]
        ]
    );
    // from_entry 0 is read as the first entry.
    assert_eq!(by_entry(0, 2, 1, 1).unwrap().len(), 2);
}

#[test]
fn entry_past_the_end_is_empty_or_clipped() {
    assert!(by_entry(97, 0, 0, 0).unwrap().is_empty());
    assert!(by_entry(200, 300, 0, 0).unwrap().is_empty());
    assert_eq!(by_entry(90, 1000, 0, 0).unwrap().len(), 7);
    assert_eq!(by_entry(96, 96, 1, 1).unwrap(), vec![vec![at(95)]]);
    assert!(select(
        &[],
        &columns(),
        ENTRY_DESCRIPTOR,
        &entry_descriptor(1, 0, 0, 0)
    )
    .unwrap()
    .is_empty());
}

#[test]
fn entry_rejects_bad_ranges() {
    assert!(by_entry(5, 3, 0, 0).is_err(), "from_entry > to_entry");
    assert!(by_entry(1, 2, 3, 2).is_err(), "from column > to column");
    assert!(by_entry(1, 2, 1, 5).is_err(), "to column past the last");
    assert!(by_entry(1, 2, 5, 0).is_err(), "from column past the last");
    assert!(by_entry(1, 2, 5, 5).is_err());
}

#[test]
fn unknown_selector_and_short_rows_are_errors() {
    let p = entry_descriptor(1, 0, 0, 0);
    assert_eq!(
        select(&buffer(), &columns(), 3, &p),
        Err(CosemError::UnknownSelector(3))
    );
    let mut rows = buffer();
    rows[1].truncate(2);
    assert!(select(&rows, &columns(), ENTRY_DESCRIPTOR, &p).is_err());
    // The same short row is fine when only its first columns are asked for.
    assert!(select(
        &rows,
        &columns(),
        ENTRY_DESCRIPTOR,
        &entry_descriptor(1, 0, 1, 2)
    )
    .is_ok());
}

#[test]
fn descriptors_round_trip_and_encode_as_the_blue_book_says() {
    let r = RangeDescriptor {
        restricting_object: clock(),
        from_value: at(0),
        to_value: at(3),
        selected_values: columns(),
    };
    assert_eq!(RangeDescriptor::from_data(&r.to_data()), Ok(r.clone()));
    let e = EntryDescriptor {
        from_entry: 1,
        to_entry: 0,
        from_selected_value: 2,
        to_selected_value: 0,
    };
    assert_eq!(EntryDescriptor::from_data(&e.to_data()), Ok(e));
    assert_eq!(
        e.to_data().to_bytes(),
        hex::decode("020406000000010600000000120002120000").unwrap()
    );
    // class 8, 0.0.1.0.0.255, attribute 2, data index 0
    assert_eq!(
        clock().to_data().to_bytes(),
        hex::decode("020412000809060000010000FF0F02120000").unwrap()
    );
}

#[test]
fn buffer_and_capture_objects_round_trip() {
    let b = buffer();
    assert_eq!(buffer_from_data(&buffer_to_data(&b)).unwrap(), b);
    assert_eq!(buffer_len(&buffer_to_data(&b)), Ok(96));
    let c = columns();
    assert_eq!(
        capture_objects_from_data(&capture_objects_to_data(&c)).unwrap(),
        c
    );
    for m in [
        SortMethod::Fifo,
        SortMethod::Lifo,
        SortMethod::Largest,
        SortMethod::Smallest,
        SortMethod::NearestToZero,
        SortMethod::FarthestFromZero,
    ] {
        assert_eq!(SortMethod::from_data(&m.to_data()), Ok(m));
    }
    assert!(SortMethod::from_data(&Data::Enum(0)).is_err());
    assert!(buffer_from_data(&Data::Array(vec![Data::Unsigned(1)])).is_err());
}

#[test]
fn capture_object_rejects_wrong_shapes() {
    let good = clock().to_data();
    let Data::Structure(f) = good else {
        unreachable!()
    };
    let mut short = f.clone();
    short.pop();
    assert_eq!(
        CaptureObject::from_data(&Data::Structure(short)),
        Err(CosemError::WrongLength)
    );
    let mut ln5 = f.clone();
    ln5[1] = Data::OctetString(vec![0; 5]);
    assert!(matches!(
        CaptureObject::from_data(&Data::Structure(ln5)),
        Err(CosemError::Invalid(_))
    ));
    let mut ty = f;
    ty[0] = Data::Unsigned(8);
    assert_eq!(
        CaptureObject::from_data(&Data::Structure(ty)),
        Err(CosemError::WrongType {
            expected: "long-unsigned"
        })
    );
}
