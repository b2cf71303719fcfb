//! The profiles (load, daily, billing, event logs): their columns, their entries between two
//! times, and selective access by range or entry.

use super::*;

/// One entry of a profile before its values are computed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) time: i64,
    /// The event code (event logs).
    pub(super) code: u16,
}

/// Unix time of 00:00 UTC on the first day of the month `months` after January 1970.
pub(super) fn month_start(months: i64) -> i64 {
    let month = months.rem_euclid(12) as u8 + 1;
    dlms::axdr::days_from_civil(months.div_euclid(12) + 1970, month, 1) * DAY
}

/// Months since January 1970 of the month holding `t` (clamped to years 1..9999).
pub(super) fn month_of(t: i64) -> i64 {
    const LO: i64 = (1 - 1970) * 12;
    const HI: i64 = (9999 - 1970) * 12;
    // 4800 months are 146,097 days: the estimate is within a month; step to the answer.
    let mut guess = (t.div_euclid(DAY).saturating_mul(4800) / 146_097).clamp(LO, HI);
    while guess > LO && month_start(guess) > t {
        guess -= 1;
    }
    while guess < HI && month_start(guess + 1) <= t {
        guess += 1;
    }
    guess
}

impl Meter {
    /// The columns of a profile.
    pub fn profile_columns(p: Profile) -> Vec<CaptureObject> {
        let reg = |obis| capture(3, obis, 2);
        match p {
            Profile::Load => vec![
                capture(8, CLOCK, 2),
                reg(IMPORT),
                reg(EXPORT),
                reg(REACTIVE),
                reg(REACTIVE_EXPORT),
            ],
            Profile::Daily => vec![
                capture(8, CLOCK, 2),
                reg(o(1, 0, 1, 8, 1)),
                reg(o(1, 0, 1, 8, 2)),
                reg(o(1, 0, 2, 8, 1)),
                reg(o(1, 0, 2, 8, 2)),
            ],
            Profile::Billing => vec![
                capture(8, CLOCK, 2),
                reg(IMPORT),
                reg(o(1, 0, 1, 8, 1)),
                reg(o(1, 0, 1, 8, 2)),
                reg(EXPORT),
                reg(REACTIVE),
                reg(REACTIVE_EXPORT),
            ],
            Profile::Events(log) => vec![
                capture(8, CLOCK, 2),
                capture(1, ObisCode(event_code_obis(log)), 2),
            ],
        }
    }

    /// How often a profile captures, seconds (0: on events).
    pub(super) fn capture_period(p: Profile) -> u32 {
        match p {
            Profile::Load => INTERVAL as u32,
            Profile::Daily => DAY as u32,
            Profile::Billing | Profile::Events(_) => 0,
        }
    }

    pub(super) fn max_entries(&self, p: Profile) -> u32 {
        match p {
            Profile::Load => self.cfg.profile_entries,
            Profile::Daily => DAILY_ENTRIES as u32,
            Profile::Billing => BILLING_ENTRIES as u32,
            Profile::Events(_) => EVENT_LOG_ENTRIES as u32,
        }
    }

    /// The entries of a profile captured in `[from, to]` (meter time), oldest first, as the
    /// meter holds them: what a GET of the buffer returns, and the simulator's ground truth.
    pub fn profile_rows(&self, p: Profile, from: i64, to: i64) -> Vec<(i64, Vec<Data>)> {
        self.entries(p, from, to)
            .into_iter()
            .map(|e| (e.time, self.row(p, e)))
            .collect()
    }

    /// Which entries a profile holds in `[from, to]`: their capture times (and event codes),
    /// cheap to list; [`Meter::row`] computes the values of one.
    pub(super) fn entries(&self, p: Profile, from: i64, to: i64) -> Vec<Entry> {
        let now = self.now();
        let to = to.min(now);
        let at = |time| Entry { time, code: 0 };
        let mut out = Vec::new();
        match p {
            Profile::Load => {
                let last = now.div_euclid(INTERVAL) * INTERVAL;
                let first = last - (i64::from(self.cfg.profile_entries) - 1) * INTERVAL;
                let start = from.max(first);
                let mut end = start.div_euclid(INTERVAL) * INTERVAL;
                if end < start {
                    end += INTERVAL;
                }
                let per_mille = self.faults.profile_anomalies_per_mille;
                while end <= to {
                    if per_mille == 0
                        || data::anomaly(self.cfg.seed, per_mille, end) != Anomaly::Gap
                    {
                        out.push(at(end));
                    }
                    end += INTERVAL;
                }
            }
            Profile::Daily => {
                let last = now.div_euclid(DAY) * DAY;
                let start = from.max(last - (DAILY_ENTRIES - 1) * DAY);
                let mut day = start.div_euclid(DAY) * DAY;
                if day < start {
                    day += DAY;
                }
                while day <= to {
                    out.push(at(day));
                    day += DAY;
                }
            }
            Profile::Billing => {
                let last = month_of(now);
                let mut m = (last - BILLING_ENTRIES + 1).max(month_of(from));
                if month_start(m) < from {
                    m += 1;
                }
                while m <= last && month_start(m) <= to {
                    out.push(at(month_start(m)));
                    m += 1;
                }
            }
            Profile::Events(log) => {
                let mut events: Vec<Event> =
                    data::events(self.cfg.seed, now - EVENT_LOG_DAYS * DAY, now + 1)
                        .into_iter()
                        .filter(|e| e.log == log)
                        .collect();
                if let Some(x) = &self.extras {
                    events.extend(x.live_events.iter().filter(|e| e.log == log));
                    events.sort_by_key(|e| e.time);
                }
                let skip = events.len().saturating_sub(EVENT_LOG_ENTRIES);
                out.extend(
                    events
                        .into_iter()
                        .skip(skip)
                        .filter(|e| e.time >= from && e.time <= to)
                        .map(|e| Entry {
                            time: e.time,
                            code: e.code,
                        }),
                );
            }
        }
        out
    }

    /// The values of one entry, in the profile's column order.
    pub(super) fn row(&self, p: Profile, e: Entry) -> Vec<Data> {
        let t = e.time;
        let stamp = date_time(t, self.cfg.utc_offset_minutes);
        let e32 = |q, tariff| Data::DoubleLongUnsigned(self.energy(q, tariff, t) as u32);
        match p {
            Profile::Load => {
                let per_mille = self.faults.profile_anomalies_per_mille;
                let spike = if per_mille > 0
                    && data::anomaly(self.cfg.seed, per_mille, t) == Anomaly::Spike
                {
                    data::SPIKE_WH
                } else {
                    0
                };
                vec![
                    stamp,
                    Data::DoubleLongUnsigned((self.energy(AP, 0, t) + spike) as u32),
                    e32(AM, 0),
                    e32(RP, 0),
                    e32(RM, 0),
                ]
            }
            Profile::Daily => vec![stamp, e32(AP, 1), e32(AP, 2), e32(AM, 1), e32(AM, 2)],
            Profile::Billing => vec![
                stamp,
                e32(AP, 0),
                e32(AP, 1),
                e32(AP, 2),
                e32(AM, 0),
                e32(RP, 0),
                e32(RM, 0),
            ],
            Profile::Events(_) => vec![stamp, Data::LongUnsigned(e.code)],
        }
    }

    pub(super) fn last_event_code(&self, log: EventLog) -> u16 {
        let now = self.now();
        self.entries(Profile::Events(log), now - EVENT_LOG_DAYS * DAY, now)
            .last()
            .map_or(0, |e| e.code)
    }

    pub(super) fn profile_get(
        &self,
        p: Profile,
        attribute: i8,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let columns = Self::profile_columns(p);
        match attribute {
            2 => {
                let rows = match access {
                    Some(sa) if sa.selector == RANGE_DESCRIPTOR => {
                        let range = RangeDescriptor::from_data(&sa.parameters)
                            .map_err(|_| DataAccessResult::OtherReason)?;
                        let bound = |d: &Data| {
                            d.as_date_time()
                                .map(|dt| (dt.deviation, dt.to_unix()))
                                .ok_or(DataAccessResult::TypeUnmatched)
                        };
                        let (dev_from, from) = bound(&range.from_value)?;
                        let (dev_to, to) = bound(&range.to_value)?;
                        if self.cfg.quirks.no_deviation_in_range
                            && (dev_from != i16::MIN || dev_to != i16::MIN)
                        {
                            return Err(DataAccessResult::OtherReason);
                        }
                        let (Some(from), Some(to)) = (from, to) else {
                            return Err(DataAccessResult::OtherReason);
                        };
                        // Generate the range only; `select` then picks exactly and the columns.
                        let rows: Vec<Vec<Data>> = self
                            .profile_rows(p, from.saturating_sub(DAY), to.saturating_add(DAY))
                            .into_iter()
                            .map(|(_, r)| r)
                            .collect();
                        profile_generic::select(&rows, &columns, sa.selector, &sa.parameters)
                            .map_err(|_| DataAccessResult::OtherReason)?
                    }
                    Some(sa) if sa.selector == ENTRY_DESCRIPTOR => {
                        let d = EntryDescriptor::from_data(&sa.parameters)
                            .map_err(|_| DataAccessResult::OtherReason)?;
                        // Compute only the entries asked for, then let `select` pick columns.
                        let all = self.entries(p, i64::MIN, i64::MAX);
                        let first = d.from_entry.max(1) as usize - 1;
                        let last = match d.to_entry {
                            0 => all.len(),
                            n => (n as usize).min(all.len()),
                        };
                        let rows: Vec<Vec<Data>> = all
                            .get(first..last.max(first))
                            .unwrap_or_default()
                            .iter()
                            .map(|&e| self.row(p, e))
                            .collect();
                        let columns_only = EntryDescriptor {
                            from_entry: 1,
                            to_entry: 0,
                            ..d
                        };
                        profile_generic::select(
                            &rows,
                            &columns,
                            ENTRY_DESCRIPTOR,
                            &columns_only.to_data(),
                        )
                        .map_err(|_| DataAccessResult::OtherReason)?
                    }
                    Some(_) => return Err(DataAccessResult::OtherReason),
                    None => self
                        .profile_rows(p, i64::MIN, i64::MAX)
                        .into_iter()
                        .map(|(_, r)| r)
                        .collect(),
                };
                Ok(Data::Array(rows.into_iter().map(Data::Structure).collect()))
            }
            3 => Ok(Data::Array(
                columns.iter().map(CaptureObject::to_data).collect(),
            )),
            4 => Ok(Data::DoubleLongUnsigned(Self::capture_period(p))),
            5 => Ok(Data::Enum(1)), // fifo
            6 => Ok(Data::Structure(vec![
                Data::LongUnsigned(0),
                Data::OctetString(vec![0; 6]),
                Data::Integer(0),
                Data::LongUnsigned(0),
            ])),
            7 => Ok(Data::DoubleLongUnsigned(
                self.entries(p, i64::MIN, i64::MAX).len() as u32,
            )),
            8 => Ok(Data::DoubleLongUnsigned(self.max_entries(p))),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }
}

pub(super) fn event_code_obis(log: EventLog) -> [u8; 6] {
    match log {
        EventLog::Standard => [0, 0, 96, 11, 0, 255],
        EventLog::Fraud => [0, 0, 96, 11, 1, 255],
        EventLog::PowerQuality => [0, 0, 96, 11, 4, 255],
    }
}
