//! From raw register values to SI values and named channels.

use dlms::ObisCode;
use hes_model::Reading;

/// DLMS unit codes the pipeline knows (Blue Book, class 3 `scaler_unit`).
pub mod unit {
    pub const W: u8 = 27;
    pub const VA: u8 = 28;
    pub const VAR: u8 = 29;
    pub const WH: u8 = 30;
    pub const VAH: u8 = 31;
    pub const VARH: u8 = 32;
    pub const A: u8 = 33;
    pub const V: u8 = 35;
}

/// `raw × 10^scaler`.
pub(crate) fn scaled(raw: i64, scaler: i8) -> f64 {
    raw as f64 * 10f64.powi(i32::from(scaler))
}

/// The value in SI-style units: `value × 10^scaler`, in the reading's own unit. Energies stay
/// in Wh / varh / VAh (no kWh conversion), powers in W / var / VA, voltages in V, currents in
/// A: every unit the meters use is already the base unit, so only the scaler applies.
pub fn to_si(r: &Reading) -> f64 {
    scaled(r.value, r.scaler)
}

/// Cumulative energy registers: class 3 attribute 2, OBIS A = 1, C = 1..4 (active/reactive,
/// import/export), D = 8 (time integral 1).
pub fn is_cumulative(r: &Reading) -> bool {
    let o = r.obis.as_bytes();
    r.class_id == 3
        && r.attribute == 2
        && o.first() == Some(&1)
        && matches!(o.get(2), Some(1..=4))
        && o.get(3) == Some(&8)
}

const ENERGY: [[&str; 5]; 4] = [
    [
        "energy.active.import",
        "energy.active.import.t1",
        "energy.active.import.t2",
        "energy.active.import.t3",
        "energy.active.import.t4",
    ],
    [
        "energy.active.export",
        "energy.active.export.t1",
        "energy.active.export.t2",
        "energy.active.export.t3",
        "energy.active.export.t4",
    ],
    [
        "energy.reactive.import",
        "energy.reactive.import.t1",
        "energy.reactive.import.t2",
        "energy.reactive.import.t3",
        "energy.reactive.import.t4",
    ],
    [
        "energy.reactive.export",
        "energy.reactive.export.t1",
        "energy.reactive.export.t2",
        "energy.reactive.export.t3",
        "energy.reactive.export.t4",
    ],
];

/// The channel name of an OBIS code (electricity, A = 1), or `None` when the pipeline does not
/// know it: `energy.{active,reactive}.{import,export}` for C = 1..4, D = 8, with `.t1`..`.t4`
/// for tariffs E = 1..4 (E = 0 is the total); `voltage.l1..l3` (C = 32/52/72, D = 7),
/// `current.l1..l3` (C = 31/51/71, D = 7), `power.active.{import,export}` (C = 1/2, D = 7).
pub fn channel(obis: &ObisCode) -> Option<&'static str> {
    let [a, _b, c, d, e, _f] = *obis.as_bytes();
    if a != 1 {
        return None;
    }
    match (c, d) {
        (1..=4, 8) => ENERGY
            .get(usize::from(c) - 1)
            .and_then(|row| row.get(usize::from(e)))
            .copied(),
        (_, 7) if e == 0 => match c {
            1 => Some("power.active.import"),
            2 => Some("power.active.export"),
            32 => Some("voltage.l1"),
            52 => Some("voltage.l2"),
            72 => Some("voltage.l3"),
            31 => Some("current.l1"),
            51 => Some("current.l2"),
            71 => Some("current.l3"),
            _ => None,
        },
        _ => None,
    }
}
