//! COSEM values as JSON, in the two forms the head-end gives them: [`typed`], lossless, every
//! value with its A-XDR type name next to it (so an integrator can tell a long-unsigned from an
//! enum, and get back the exact bytes), as `hes read` prints them; and [`plain`], bare numbers,
//! strings and Unix seconds, as the simulator's ground truth gives them.

use dlms::axdr::{type_name, Data, Date, Time, TypeDesc};
use serde_json::{json, Map, Value};

/// Lossless typed JSON: `{"type": …, "value": …}` with extra fields where a value needs them.
pub fn typed(d: &Data) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), d.type_name().into());
    let value = match d {
        Data::Null | Data::DontCare => Value::Null,
        Data::Array(items) | Data::Structure(items) => items.iter().map(typed).collect(),
        Data::CompactArray(ca) => {
            m.insert("element".into(), type_desc(&ca.element));
            ca.elements.iter().map(typed).collect()
        }
        Data::Boolean(b) => (*b).into(),
        Data::BitString(bs) => {
            m.insert("bits".into(), bs.bits.into());
            (0..bs.bits)
                .map(|i| if bs.get(i) { '1' } else { '0' })
                .collect::<String>()
                .into()
        }
        Data::OctetString(b) => {
            if let Some(dt) = d.as_date_time() {
                m.insert(
                    "datetime".into(),
                    dt.to_iso8601().map_or(Value::Null, Value::from),
                );
            }
            hex::encode(b).into()
        }
        Data::VisibleString(b) | Data::Utf8String(b) => {
            // The text when it is text; the bytes always, so nothing is lost.
            m.insert("hex".into(), hex::encode(b).into());
            String::from_utf8_lossy(b).into_owned().into()
        }
        Data::DoubleLong(v) => (*v).into(),
        Data::DoubleLongUnsigned(v) => (*v).into(),
        Data::Bcd(v) | Data::Unsigned(v) | Data::Enum(v) => (*v).into(),
        Data::Integer(v) => (*v).into(),
        Data::Long(v) => (*v).into(),
        Data::LongUnsigned(v) => (*v).into(),
        Data::Long64(v) => (*v).into(),
        Data::Long64Unsigned(v) => (*v).into(),
        Data::Float32(v) => float(f64::from(*v)),
        Data::Float64(v) => float(*v),
        Data::DateTime(dt) => {
            m.insert(
                "datetime".into(),
                dt.to_iso8601().map_or(Value::Null, Value::from),
            );
            hex::encode(dt.to_octets()).into()
        }
        Data::Date(x) => {
            m.insert("date".into(), date_text(x).into());
            let mut b = Vec::new();
            x.encode(&mut b);
            hex::encode(b).into()
        }
        Data::Time(x) => {
            m.insert("time".into(), time_text(x).into());
            let mut b = Vec::new();
            x.encode(&mut b);
            hex::encode(b).into()
        }
    };
    m.insert("value".into(), value);
    Value::Object(m)
}

/// A COSEM value as JSON: numbers as numbers, date-times as Unix seconds, octets as hex.
pub fn plain(d: &Data) -> Value {
    match d {
        Data::Boolean(b) => json!(b),
        Data::Integer(v) => json!(v),
        Data::Long(v) => json!(v),
        Data::DoubleLong(v) => json!(v),
        Data::Long64(v) => json!(v),
        Data::Unsigned(v) | Data::Enum(v) => json!(v),
        Data::LongUnsigned(v) => json!(v),
        Data::DoubleLongUnsigned(v) => json!(v),
        Data::Long64Unsigned(v) => json!(v),
        Data::VisibleString(s) => json!(String::from_utf8_lossy(s)),
        other => match other.as_date_time().and_then(|t| t.to_unix()) {
            Some(t) => json!(t),
            None => match other {
                Data::OctetString(b) => json!(hex::encode_upper(b)),
                Data::Structure(v) | Data::Array(v) => Value::Array(v.iter().map(plain).collect()),
                _ => Value::Null,
            },
        },
    }
}

fn float(v: f64) -> Value {
    // JSON has no NaN or infinity: give those as text.
    serde_json::Number::from_f64(v).map_or_else(|| Value::from(v.to_string()), Value::Number)
}

fn field(v: u8, width: usize) -> String {
    if v == 0xFF {
        "*".repeat(width)
    } else {
        format!("{v:0width$}")
    }
}

fn date_text(d: &Date) -> String {
    let y = if d.year == 0xFFFF {
        "****".to_string()
    } else {
        format!("{:04}", d.year)
    };
    format!("{y}-{}-{}", field(d.month, 2), field(d.day, 2))
}

fn time_text(t: &Time) -> String {
    format!(
        "{}:{}:{}",
        field(t.hour, 2),
        field(t.minute, 2),
        field(t.second, 2)
    )
}

fn type_desc(t: &TypeDesc) -> Value {
    match t {
        TypeDesc::Simple(tag) => type_name(*tag).into(),
        TypeDesc::Array { count, element } => {
            json!({"array": {"count": count, "element": type_desc(element)}})
        }
        TypeDesc::Structure(fields) => {
            json!({"structure": fields.iter().map(type_desc).collect::<Vec<_>>()})
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use dlms::DateTime;

    #[test]
    fn typed_values() {
        assert_eq!(
            typed(&Data::DoubleLongUnsigned(5)),
            json!({"type":"double-long-unsigned","value":5})
        );
        let dt = DateTime::from_unix(1_795_727_700, 0, 0);
        let v = typed(&Data::OctetString(dt.to_octets()));
        assert_eq!(v["datetime"], "2026-11-26T21:15:00Z");
        assert_eq!(v["value"], hex::encode(dt.to_octets()));
        let v = typed(&Data::Structure(vec![
            Data::Enum(1),
            Data::VisibleString(b"ab".to_vec()),
        ]));
        assert_eq!(
            v["value"][1],
            json!({"type":"visible-string","value":"ab","hex":"6162"})
        );
        assert_eq!(typed(&Data::Float32(f32::NAN))["value"], "NaN");
    }
}
