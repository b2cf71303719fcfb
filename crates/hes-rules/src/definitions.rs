//! The rules as data, for engines that are not this crate (the Flink job, `flink/`): one source
//! for the parameters, channel names, units and flags, so that the two engines cannot drift
//! apart. `rules.json` next to this crate's manifest is [`definitions`] of the default rules; a
//! test checks that they are equal (`HES_BLESS=1 cargo test -p hes-rules --test definitions`
//! rewrites it).

use dlms::ObisCode;
use hes_model::Quality;
use serde_json::{json, Value};

use crate::interval::SKIP_FLAGS;
use crate::rules::Rules;
use crate::transform::{channel, unit};

/// The unit's name in processed output (`Interval.unit`), for the DLMS unit codes the pipeline
/// knows.
pub fn unit_name(code: u8) -> Option<&'static str> {
    Some(match code {
        unit::W => "W",
        unit::VA => "VA",
        unit::VAR => "var",
        unit::WH => "Wh",
        unit::VAH => "VAh",
        unit::VARH => "varh",
        unit::A => "A",
        unit::V => "V",
        _ => return None,
    })
}

/// The definitions as JSON: the parameters of `rules`, every named channel (by OBIS C.D.E with
/// A = 1; B and F are ignored), which registers are cumulative, the flags, and the unit names.
pub fn definitions(rules: &Rules) -> Value {
    let mut channels = serde_json::Map::new();
    for c in 0..=255u8 {
        for d in [7u8, 8] {
            for e in 0..=255u8 {
                if let Some(name) = channel(&ObisCode([1, 0, c, d, e, 255])) {
                    channels.insert(format!("{c}.{d}.{e}"), json!(name));
                }
            }
        }
    }
    let mut overrides: Vec<(&String, &f64)> = rules
        .meter_max_power_w
        .iter()
        .map(|(m, w)| (&m.0, w))
        .collect();
    overrides.sort_by(|a, b| a.0.cmp(b.0));
    let units: serde_json::Map<String, Value> = (0..=255u8)
        .filter_map(|c| unit_name(c).map(|n| (c.to_string(), json!(n))))
        .collect();
    let flags: serde_json::Map<String, Value> = Quality::NAMES
        .iter()
        .map(|(bit, name)| (name.to_string(), json!(bit)))
        .collect();
    json!({
        "schema_version": 1,
        "interval": rules.interval,
        "future_tolerance": rules.future_tolerance,
        "horizon": rules.horizon,
        "boundary_tolerance": rules.boundary_tolerance,
        "max_receive_lag": rules.max_receive_lag,
        "spike_factor": rules.spike_factor,
        "spike_floor_wh": rules.spike_floor_wh,
        "spike_min_history": rules.spike_min_history,
        "peak_half_life": rules.peak_half_life,
        "register_modulus": rules.register_modulus,
        "max_power_w": rules.max_power_w,
        "meter_max_power_w": overrides.into_iter().map(|(m, w)| (m.clone(), json!(w))).collect::<serde_json::Map<_, _>>(),
        "cumulative": { "class_id": 3, "attribute": 2, "a": 1, "c": [1, 2, 3, 4], "d": 8 },
        "skip_flags": SKIP_FLAGS,
        "flags": flags,
        "channels": channels,
        "units": units,
        "estimation": "linear",
    })
}

/// [`definitions`] as the text of `rules.json` (pretty, one trailing newline).
pub fn definitions_text(rules: &Rules) -> String {
    let mut s = serde_json::to_string_pretty(&definitions(rules)).unwrap_or_default();
    s.push('\n');
    s
}
