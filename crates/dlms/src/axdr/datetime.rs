//! COSEM date, time and date-time (Blue Book 4.1.6.1): fixed-size octet strings whose fields may
//! be "not specified" (0xFF / 0xFFFF / 0x8000).

use crate::codec::{DecodeError, Reader};

/// Year value meaning "not specified".
pub const YEAR_UNSPECIFIED: u16 = 0xFFFF;
/// Deviation value meaning "not specified".
pub const DEVIATION_UNSPECIFIED: i16 = i16::MIN; // 0x8000
/// Single-byte fields meaning "not specified".
pub const NOT_SPECIFIED: u8 = 0xFF;

/// A COSEM date (5 bytes). Month 0xFD/0xFE and day 0xFD/0xFE carry their special meanings
/// (daylight-saving end/begin, second-last/last day of month) and are kept as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub day_of_week: u8,
}

/// A COSEM time (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub hundredths: u8,
}

/// A COSEM date-time (12 bytes): date, time, deviation from UTC in minutes (local = UTC +
/// (-deviation)... see note) and clock status.
///
/// Note: the Blue Book defines deviation as "UTC minus local time" in minutes, so a meter in
/// CET (UTC+1) sends -60. [`DateTime::utc_offset_minutes`] gives the usual sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub time: Time,
    pub deviation: i16,
    pub clock_status: u8,
}

impl Date {
    pub const LEN: usize = 5;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.year.to_be_bytes());
        out.extend_from_slice(&[self.month, self.day, self.day_of_week]);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            year: r.u16("date year")?,
            month: r.u8("date month")?,
            day: r.u8("date day")?,
            day_of_week: r.u8("date day of week")?,
        })
    }

    /// Decodes from exactly 5 bytes (the payload of an octet-string).
    pub fn from_octets(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish("date")?;
        Ok(v)
    }
}

impl Time {
    pub const LEN: usize = 4;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.hour, self.minute, self.second, self.hundredths]);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [hour, minute, second, hundredths] = r.array("time")?;
        Ok(Self {
            hour,
            minute,
            second,
            hundredths,
        })
    }

    pub fn from_octets(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish("time")?;
        Ok(v)
    }
}

impl DateTime {
    /// Every field not specified: the Blue Book's all-0xFF octet-string ("no time set").
    pub const NOT_SPECIFIED: DateTime = DateTime {
        date: Date {
            year: YEAR_UNSPECIFIED,
            month: NOT_SPECIFIED,
            day: NOT_SPECIFIED,
            day_of_week: NOT_SPECIFIED,
        },
        time: Time {
            hour: NOT_SPECIFIED,
            minute: NOT_SPECIFIED,
            second: NOT_SPECIFIED,
            hundredths: NOT_SPECIFIED,
        },
        deviation: -1,
        clock_status: NOT_SPECIFIED,
    };

    pub const LEN: usize = 12;

    pub fn encode(&self, out: &mut Vec<u8>) {
        self.date.encode(out);
        self.time.encode(out);
        out.extend_from_slice(&self.deviation.to_be_bytes());
        out.push(self.clock_status);
    }

    pub fn to_octets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        self.encode(&mut out);
        out
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            date: Date::decode(r)?,
            time: Time::decode(r)?,
            deviation: r.u16("date-time deviation")? as i16,
            clock_status: r.u8("date-time clock status")?,
        })
    }

    /// Decodes from exactly 12 bytes (the payload of an octet-string).
    pub fn from_octets(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish("date-time")?;
        Ok(v)
    }

    /// Offset of local time from UTC in minutes (CET = +60), if specified.
    pub fn utc_offset_minutes(&self) -> Option<i32> {
        (self.deviation != DEVIATION_UNSPECIFIED).then(|| -i32::from(self.deviation))
    }

    /// A fully specified date-time from a Unix timestamp (seconds) and a UTC offset in
    /// minutes; the day of week is computed.
    pub fn from_unix(secs: i64, utc_offset_minutes: i16, clock_status: u8) -> Self {
        let local = secs + i64::from(utc_offset_minutes) * 60;
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        // 1970-01-01 was a Thursday; COSEM counts Monday = 1 .. Sunday = 7.
        let dow = ((days + 3).rem_euclid(7) + 1) as u8;
        Self {
            date: Date {
                year: y as u16,
                month: m,
                day: d,
                day_of_week: dow,
            },
            time: Time {
                hour: (sod / 3600) as u8,
                minute: (sod / 60 % 60) as u8,
                second: (sod % 60) as u8,
                hundredths: 0,
            },
            deviation: -utc_offset_minutes,
            clock_status,
        }
    }

    /// The instant as Unix seconds, when every field needed is specified and valid.
    /// An unspecified deviation is taken as UTC.
    pub fn to_unix(&self) -> Option<i64> {
        let d = &self.date;
        let t = &self.time;
        if d.year == YEAR_UNSPECIFIED
            || !(1..=12).contains(&d.month)
            || !(1..=31).contains(&d.day)
            || t.hour > 23
            || t.minute > 59
            || t.second > 59
        {
            return None;
        }
        let days = days_from_civil(i64::from(d.year), d.month, d.day);
        let local = days * 86_400
            + i64::from(t.hour) * 3600
            + i64::from(t.minute) * 60
            + i64::from(t.second);
        let offset = self.utc_offset_minutes().unwrap_or(0);
        Some(local - i64::from(offset) * 60)
    }

    /// ISO 8601 text, e.g. `2026-11-26T21:15:00+01:00`; `None` when a field is not specified.
    pub fn to_iso8601(&self) -> Option<String> {
        self.to_unix()?;
        let d = &self.date;
        let t = &self.time;
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.year, d.month, d.day, t.hour, t.minute, t.second
        );
        if t.hundredths != NOT_SPECIFIED && t.hundredths != 0 && t.hundredths < 100 {
            s.push_str(&format!(".{:02}", t.hundredths));
        }
        match self.utc_offset_minutes() {
            None | Some(0) => s.push('Z'),
            Some(off) => {
                let sign = if off < 0 { '-' } else { '+' };
                let a = off.abs();
                s.push_str(&format!("{sign}{:02}:{:02}", a / 60, a % 60));
            }
        }
        Some(s)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn unix_round_trip_and_iso() {
        // 2026-11-26 21:15:00 UTC, a Thursday.
        let secs = 1_795_727_700;
        let dt = DateTime::from_unix(secs, 60, 0);
        assert_eq!(dt.date.day_of_week, 4);
        assert_eq!(dt.deviation, -60);
        assert_eq!(dt.to_unix(), Some(secs));
        assert_eq!(dt.to_iso8601().unwrap(), "2026-11-26T22:15:00+01:00");
        let back = DateTime::from_octets(&dt.to_octets()).unwrap();
        assert_eq!(back, dt);
    }

    #[test]
    fn unspecified_fields() {
        let mut dt = DateTime::from_unix(0, 0, 0);
        dt.date.year = YEAR_UNSPECIFIED;
        assert_eq!(dt.to_iso8601(), None);
        assert!(DateTime::from_octets(&[0; 11]).is_err());
    }
}
