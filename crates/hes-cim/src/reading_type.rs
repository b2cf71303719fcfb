//! ReadingType codes (IEC 61968-9 Annex C): eighteen enumerated fields, dotted. Our channels
//! (hes_rules::channel names) and the forms we send them in map to one code each; the table in
//! docs/cim.md explains every field.

use std::fmt;

/// The eighteen fields of a ReadingType code, in the standard's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadingType {
    /// 0 none, 11 daily, 13 monthly.
    pub macro_period: u16,
    /// 0 none (no aggregation over several values).
    pub aggregate: u16,
    /// 0 none, 2 fifteenMinute, 7 sixtyMinute.
    pub measuring_period: u16,
    /// 1 bulkQuantity (a register's reading), 4 deltaData (consumption over the period),
    /// 12 instantaneous.
    pub accumulation: u16,
    /// 0 none, 1 forward (import), 19 reverse (export).
    pub flow_direction: u16,
    /// 1 electricitySecondaryMetered (measured at the customer's meter).
    pub commodity: u16,
    /// 4 current, 12 energy, 37 power, 54 voltage.
    pub measurement_kind: u16,
    pub interharmonic_numerator: u16,
    pub interharmonic_denominator: u16,
    pub argument_numerator: u16,
    pub argument_denominator: u16,
    /// 0 total, 1..4 the tariff (TOU bucket) A..D.
    pub tou: u16,
    pub cpp: u16,
    pub consumption_tier: u16,
    /// 0 none; 128/64/32 phase A/B/C; 129/65/33 phase A/B/C to neutral.
    pub phases: u16,
    /// Power of ten of the value: 0 (×1) or 3 (kilo).
    pub multiplier: i16,
    /// 5 A, 29 V, 38 W, 72 Wh, 73 VArh.
    pub unit: u16,
    pub currency: u16,
}

impl fmt::Display for ReadingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}",
            self.macro_period,
            self.aggregate,
            self.measuring_period,
            self.accumulation,
            self.flow_direction,
            self.commodity,
            self.measurement_kind,
            self.interharmonic_numerator,
            self.interharmonic_denominator,
            self.argument_numerator,
            self.argument_denominator,
            self.tou,
            self.cpp,
            self.consumption_tier,
            self.phases,
            self.multiplier,
            self.unit,
            self.currency
        )
    }
}

/// The form a value is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Form {
    /// A cumulative register as read (its total since installation).
    Register,
    /// Consumption over one 15-minute interval (the difference of two profile entries).
    Interval15,
    /// Consumption over one day.
    Daily,
    /// An instantaneous value (voltage, current, power).
    Instant,
}

pub const MACRO_DAILY: u16 = 11;
pub const PERIOD_15_MIN: u16 = 2;
pub const ACC_BULK: u16 = 1;
pub const ACC_DELTA: u16 = 4;
pub const ACC_INSTANTANEOUS: u16 = 12;
pub const FLOW_FORWARD: u16 = 1;
pub const FLOW_REVERSE: u16 = 19;
pub const COMMODITY_ELECTRICITY_SECONDARY: u16 = 1;
pub const KIND_CURRENT: u16 = 4;
pub const KIND_ENERGY: u16 = 12;
pub const KIND_POWER: u16 = 37;
pub const KIND_VOLTAGE: u16 = 54;
pub const UNIT_A: u16 = 5;
pub const UNIT_V: u16 = 29;
pub const UNIT_W: u16 = 38;
pub const UNIT_WH: u16 = 72;
pub const UNIT_VARH: u16 = 73;
pub const KILO: i16 = 3;

/// The code of `channel` sent in `form`, and the factor from our SI value (Wh, varh, W, V, A)
/// to the value the code means (kWh, kvarh and kW carry the kilo multiplier, as MDMs expect).
/// `None`: a channel we do not send, or a form that does not fit it (an instantaneous value
/// has no interval).
pub fn reading_type(channel: &str, form: Form) -> Option<(ReadingType, f64)> {
    let base = ReadingType {
        commodity: COMMODITY_ELECTRICITY_SECONDARY,
        ..ReadingType::default()
    };
    let mut parts = channel.split('.');
    let rt = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("energy"), Some(kind), Some(dir), tariff) => {
            let tou = match tariff {
                None => 0,
                Some(t) => t
                    .strip_prefix('t')?
                    .parse::<u16>()
                    .ok()
                    .filter(|t| (1..=4).contains(t))?,
            };
            let (accumulation, measuring_period, macro_period) = match form {
                Form::Register => (ACC_BULK, 0, 0),
                Form::Interval15 => (ACC_DELTA, PERIOD_15_MIN, 0),
                Form::Daily => (ACC_DELTA, 0, MACRO_DAILY),
                Form::Instant => return None,
            };
            ReadingType {
                macro_period,
                measuring_period,
                accumulation,
                flow_direction: flow(dir)?,
                measurement_kind: KIND_ENERGY,
                tou,
                multiplier: KILO,
                unit: match kind {
                    "active" => UNIT_WH,
                    "reactive" => UNIT_VARH,
                    _ => return None,
                },
                ..base
            }
        }
        (Some("power"), Some("active"), Some(dir), None) if form == Form::Instant => ReadingType {
            accumulation: ACC_INSTANTANEOUS,
            flow_direction: flow(dir)?,
            measurement_kind: KIND_POWER,
            multiplier: KILO,
            unit: UNIT_W,
            ..base
        },
        (Some(q @ ("voltage" | "current")), Some(phase), None, None) if form == Form::Instant => {
            let (a, b, c, kind, unit, neutral) = match q {
                "voltage" => (128, 64, 32, KIND_VOLTAGE, UNIT_V, 1),
                _ => (128, 64, 32, KIND_CURRENT, UNIT_A, 0),
            };
            let phases = match phase {
                "l1" => a,
                "l2" => b,
                "l3" => c,
                _ => return None,
            } + neutral;
            ReadingType {
                accumulation: ACC_INSTANTANEOUS,
                measurement_kind: kind,
                phases,
                unit,
                ..base
            }
        }
        _ => return None,
    };
    let factor = if rt.multiplier == KILO { 1e-3 } else { 1.0 };
    Some((rt, factor))
}

fn flow(dir: &str) -> Option<u16> {
    match dir {
        "import" => Some(FLOW_FORWARD),
        "export" => Some(FLOW_REVERSE),
        _ => None,
    }
}

/// Every channel we send, for the documentation's table and the tests.
pub const CHANNELS: &[&str] = &[
    "energy.active.import",
    "energy.active.export",
    "energy.reactive.import",
    "energy.reactive.export",
    "energy.active.import.t1",
    "energy.active.import.t2",
    "energy.active.import.t3",
    "energy.active.import.t4",
    "energy.active.export.t1",
    "energy.active.export.t2",
    "energy.active.export.t3",
    "energy.active.export.t4",
    "energy.reactive.import.t1",
    "energy.reactive.import.t2",
    "energy.reactive.import.t3",
    "energy.reactive.import.t4",
    "energy.reactive.export.t1",
    "energy.reactive.export.t2",
    "energy.reactive.export.t3",
    "energy.reactive.export.t4",
    "power.active.import",
    "power.active.export",
    "voltage.l1",
    "voltage.l2",
    "voltage.l3",
    "current.l1",
    "current.l2",
    "current.l3",
];

/// The channel and form a code names (for a request that filters by ReadingType).
pub fn from_code(code: &str) -> Option<(&'static str, Form)> {
    CHANNELS.iter().find_map(|c| {
        [Form::Register, Form::Interval15, Form::Daily, Form::Instant]
            .into_iter()
            .find(|f| reading_type(c, *f).is_some_and(|(rt, _)| rt.to_string() == code))
            .map(|f| (*c, f))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_of_the_common_channels() {
        let code = |c, f| reading_type(c, f).unwrap().0.to_string();
        // The canonical 15-minute kWh forward delta.
        assert_eq!(
            code("energy.active.import", Form::Interval15),
            "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
        );
        assert_eq!(
            code("energy.active.export", Form::Register),
            "0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.3.72.0"
        );
        assert_eq!(
            code("energy.active.import", Form::Daily),
            "11.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
        );
        assert_eq!(
            code("energy.reactive.import.t2", Form::Register),
            "0.0.0.1.1.1.12.0.0.0.0.2.0.0.0.3.73.0"
        );
        assert_eq!(
            code("voltage.l2", Form::Instant),
            "0.0.0.12.0.1.54.0.0.0.0.0.0.0.65.0.29.0"
        );
        assert_eq!(
            code("current.l3", Form::Instant),
            "0.0.0.12.0.1.4.0.0.0.0.0.0.0.32.0.5.0"
        );
        assert!(reading_type("voltage.l1", Form::Interval15).is_none());
        assert!(reading_type("energy.active.import.t5", Form::Register).is_none());
        assert!(reading_type("gas.volume", Form::Register).is_none());
    }

    #[test]
    fn every_code_is_unique_and_reads_back() {
        let mut seen = std::collections::HashSet::new();
        for c in CHANNELS {
            for f in [Form::Register, Form::Interval15, Form::Daily, Form::Instant] {
                if let Some((rt, _)) = reading_type(c, f) {
                    assert!(seen.insert(rt.to_string()), "{c} {f:?}");
                    assert_eq!(from_code(&rt.to_string()), Some((*c, f)));
                }
            }
        }
        assert_eq!(seen.len(), 20 * 3 + 8);
    }
}
