//! Typed values of the structured attributes of the remaining interface classes: script table,
//! special days, activity calendar, register monitor, single action schedule, IEC HDLC setup,
//! push setup, limiter, extended and demand registers. Each has `from_data` and `to_data`.

use crate::axdr::{Data, Date, DateTime, Time};
use crate::obis::ObisCode;

use super::{elements, int, obis, CaptureObject, CosemError, ScalerUnit};

fn array<'a>(d: &'a Data, what: &'static str) -> Result<&'a [Data], CosemError> {
    match d {
        Data::Array(v) => Ok(v),
        _ => Err(CosemError::WrongType { expected: what }),
    }
}

fn octets<'a>(d: &'a Data, what: &'static str) -> Result<&'a [u8], CosemError> {
    d.as_octets()
        .ok_or(CosemError::WrongType { expected: what })
}

fn ln(o: &ObisCode) -> Data {
    Data::OctetString(o.as_bytes().to_vec())
}

fn date_time(d: &Data) -> Result<DateTime, CosemError> {
    d.as_date_time().ok_or(CosemError::WrongType {
        expected: "a 12-byte date-time",
    })
}

fn time(d: &Data) -> Result<Time, CosemError> {
    match d {
        Data::Time(t) => Ok(*t),
        other => Time::from_octets(octets(other, "a 4-byte time")?)
            .map_err(|_| CosemError::WrongLength { what: "time" }),
    }
}

fn date(d: &Data) -> Result<Date, CosemError> {
    match d {
        Data::Date(t) => Ok(*t),
        other => Date::from_octets(octets(other, "a 5-byte date")?)
            .map_err(|_| CosemError::WrongLength { what: "date" }),
    }
}

fn time_data(t: &Time) -> Data {
    let mut b = Vec::with_capacity(4);
    t.encode(&mut b);
    Data::OctetString(b)
}

fn date_data(d: &Date) -> Data {
    let mut b = Vec::with_capacity(5);
    d.encode(&mut b);
    Data::OctetString(b)
}

/// `script` of the script table: an id and its actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub id: u16,
    pub actions: Vec<ScriptAction>,
}

/// One action of a script: write an attribute (service 1) or execute a method (service 2).
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptAction {
    pub service_id: u8,
    pub class_id: u16,
    pub logical_name: ObisCode,
    pub index: i8,
    pub parameter: Data,
}

impl Script {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, actions] = elements(d, "script", 2)? else {
            return Err(CosemError::WrongLength { what: "script" });
        };
        let actions = array(actions, "array of actions")?
            .iter()
            .map(|a| {
                let [s, c, l, i, p] = elements(a, "script action", 5)? else {
                    return Err(CosemError::WrongLength {
                        what: "script action",
                    });
                };
                Ok(ScriptAction {
                    service_id: int(s, "enum service id")?,
                    class_id: int(c, "long-unsigned class id")?,
                    logical_name: obis(l)?,
                    index: int(i, "integer index")?,
                    parameter: p.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: int(id, "long-unsigned script id")?,
            actions,
        })
    }

    pub fn to_data(&self) -> Data {
        let actions = self
            .actions
            .iter()
            .map(|a| {
                Data::Structure(vec![
                    Data::Enum(a.service_id),
                    Data::LongUnsigned(a.class_id),
                    ln(&a.logical_name),
                    Data::Integer(a.index),
                    a.parameter.clone(),
                ])
            })
            .collect();
        Data::Structure(vec![Data::LongUnsigned(self.id), Data::Array(actions)])
    }
}

/// An entry of the special days table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialDay {
    pub index: u16,
    pub date: Date,
    pub day_id: u8,
}

impl SpecialDay {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [i, dt, id] = elements(d, "special day entry", 3)? else {
            return Err(CosemError::WrongLength {
                what: "special day entry",
            });
        };
        Ok(Self {
            index: int(i, "long-unsigned index")?,
            date: date(dt)?,
            day_id: int(id, "unsigned day id")?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.index),
            date_data(&self.date),
            Data::Unsigned(self.day_id),
        ])
    }
}

/// Activity calendar: a season, a week and a day profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Season {
    pub name: Vec<u8>,
    pub start: DateTime,
    pub week_name: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekProfile {
    pub name: Vec<u8>,
    /// Day ids from Monday to Sunday.
    pub days: [u8; 7],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayProfile {
    pub day_id: u8,
    pub schedule: Vec<DayAction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayAction {
    pub start_time: Time,
    pub script_logical_name: ObisCode,
    pub script_selector: u16,
}

impl Season {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [n, s, w] = elements(d, "season profile", 3)? else {
            return Err(CosemError::WrongLength { what: "season" });
        };
        Ok(Self {
            name: octets(n, "season name")?.to_vec(),
            start: date_time(s)?,
            week_name: octets(w, "week name")?.to_vec(),
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::OctetString(self.name.clone()),
            Data::OctetString(self.start.to_octets()),
            Data::OctetString(self.week_name.clone()),
        ])
    }
}

impl WeekProfile {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let e = elements(d, "week profile", 8)?;
        let (name, days) = e.split_first().ok_or(CosemError::WrongLength {
            what: "week profile",
        })?;
        let mut out = [0u8; 7];
        for (o, d) in out.iter_mut().zip(days) {
            *o = int(d, "unsigned day id")?;
        }
        Ok(Self {
            name: octets(name, "week name")?.to_vec(),
            days: out,
        })
    }

    pub fn to_data(&self) -> Data {
        let mut v = vec![Data::OctetString(self.name.clone())];
        v.extend(self.days.iter().map(|d| Data::Unsigned(*d)));
        Data::Structure(v)
    }
}

impl DayProfile {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [id, sched] = elements(d, "day profile", 2)? else {
            return Err(CosemError::WrongLength {
                what: "day profile",
            });
        };
        let schedule = array(sched, "day schedule")?
            .iter()
            .map(|a| {
                let [t, l, s] = elements(a, "day profile action", 3)? else {
                    return Err(CosemError::WrongLength {
                        what: "day profile action",
                    });
                };
                Ok(DayAction {
                    start_time: time(t)?,
                    script_logical_name: obis(l)?,
                    script_selector: int(s, "long-unsigned selector")?,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            day_id: int(id, "unsigned day id")?,
            schedule,
        })
    }

    pub fn to_data(&self) -> Data {
        let sched = self
            .schedule
            .iter()
            .map(|a| {
                Data::Structure(vec![
                    time_data(&a.start_time),
                    ln(&a.script_logical_name),
                    Data::LongUnsigned(a.script_selector),
                ])
            })
            .collect();
        Data::Structure(vec![Data::Unsigned(self.day_id), Data::Array(sched)])
    }
}

/// `value_definition` of register monitor and limiter: which attribute is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueDefinition {
    pub class_id: u16,
    pub logical_name: ObisCode,
    pub attribute_index: i8,
}

/// `action_item`: a script to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionItem {
    pub script_logical_name: ObisCode,
    pub script_selector: u16,
}

impl ValueDefinition {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [c, l, a] = elements(d, "value definition", 3)? else {
            return Err(CosemError::WrongLength {
                what: "value definition",
            });
        };
        Ok(Self {
            class_id: int(c, "long-unsigned class id")?,
            logical_name: obis(l)?,
            attribute_index: int(a, "integer attribute")?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            ln(&self.logical_name),
            Data::Integer(self.attribute_index),
        ])
    }
}

impl ActionItem {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [l, s] = elements(d, "action item", 2)? else {
            return Err(CosemError::WrongLength {
                what: "action item",
            });
        };
        Ok(Self {
            script_logical_name: obis(l)?,
            script_selector: int(s, "long-unsigned selector")?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            ln(&self.script_logical_name),
            Data::LongUnsigned(self.script_selector),
        ])
    }
}

/// Register monitor `action_set`: what runs when a threshold is crossed upwards and downwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSet {
    pub up: ActionItem,
    pub down: ActionItem,
}

impl ActionSet {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [u, dn] = elements(d, "action set", 2)? else {
            return Err(CosemError::WrongLength { what: "action set" });
        };
        Ok(Self {
            up: ActionItem::from_data(u)?,
            down: ActionItem::from_data(dn)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![self.up.to_data(), self.down.to_data()])
    }
}

/// Single action schedule `execution_time` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionTime {
    pub time: Time,
    pub date: Date,
}

impl ExecutionTime {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [t, dt] = elements(d, "execution time", 2)? else {
            return Err(CosemError::WrongLength {
                what: "execution time",
            });
        };
        Ok(Self {
            time: time(t)?,
            date: date(dt)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![time_data(&self.time), date_data(&self.date)])
    }
}

/// IEC HDLC setup (class 23): the link parameters a meter offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HdlcSetup {
    pub comm_speed: u8,
    pub window_size_transmit: u8,
    pub window_size_receive: u8,
    pub max_info_field_length_transmit: u16,
    pub max_info_field_length_receive: u16,
    pub inter_octet_time_out: u16,
    pub inactivity_time_out: u16,
    pub device_address: u16,
}

impl HdlcSetup {
    /// From attributes 2..=9 in order.
    pub fn from_attributes(v: &[Data]) -> Result<Self, CosemError> {
        let [a, b, c, d, e, f, g, h] = v else {
            return Err(CosemError::WrongLength {
                what: "IEC HDLC setup attributes",
            });
        };
        Ok(Self {
            comm_speed: int(a, "enum comm_speed")?,
            window_size_transmit: int(b, "unsigned window size")?,
            window_size_receive: int(c, "unsigned window size")?,
            max_info_field_length_transmit: int(d, "long-unsigned max info length")?,
            max_info_field_length_receive: int(e, "long-unsigned max info length")?,
            inter_octet_time_out: int(f, "long-unsigned time-out")?,
            inactivity_time_out: int(g, "long-unsigned time-out")?,
            device_address: int(h, "long-unsigned device address")?,
        })
    }

    pub fn to_attributes(&self) -> Vec<Data> {
        vec![
            Data::Enum(self.comm_speed),
            Data::Unsigned(self.window_size_transmit),
            Data::Unsigned(self.window_size_receive),
            Data::LongUnsigned(self.max_info_field_length_transmit),
            Data::LongUnsigned(self.max_info_field_length_receive),
            Data::LongUnsigned(self.inter_octet_time_out),
            Data::LongUnsigned(self.inactivity_time_out),
            Data::LongUnsigned(self.device_address),
        ]
    }
}

/// Push setup (class 40) `send_destination_and_method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendDestination {
    /// 0 TCP, 1 UDP, ...
    pub transport_service: u8,
    /// e.g. "127.0.0.1:4059" as bytes.
    pub destination: Vec<u8>,
    /// 0 A-XDR encoded xDLMS APDU.
    pub message: u8,
}

impl SendDestination {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [t, dst, m] = elements(d, "send destination and method", 3)? else {
            return Err(CosemError::WrongLength {
                what: "send destination and method",
            });
        };
        Ok(Self {
            transport_service: int(t, "enum transport")?,
            destination: octets(dst, "destination")?.to_vec(),
            message: int(m, "enum message")?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Enum(self.transport_service),
            Data::OctetString(self.destination.clone()),
            Data::Enum(self.message),
        ])
    }
}

/// Push setup's `push_object_list`: the capture objects of each push.
pub fn push_object_list_from_data(d: &Data) -> Result<Vec<CaptureObject>, CosemError> {
    CaptureObject::list_from_data(d)
}

/// Push setup `communication_window` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime,
    pub end: DateTime,
}

impl Window {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [s, e] = elements(d, "window", 2)? else {
            return Err(CosemError::WrongLength { what: "window" });
        };
        Ok(Self {
            start: date_time(s)?,
            end: date_time(e)?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::OctetString(self.start.to_octets()),
            Data::OctetString(self.end.to_octets()),
        ])
    }
}

/// Limiter (class 71) `emergency_profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyProfile {
    pub id: u16,
    pub activation_time: DateTime,
    pub duration: u32,
}

impl EmergencyProfile {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let [i, t, du] = elements(d, "emergency profile", 3)? else {
            return Err(CosemError::WrongLength {
                what: "emergency profile",
            });
        };
        Ok(Self {
            id: int(i, "long-unsigned id")?,
            activation_time: date_time(t)?,
            duration: int(du, "double-long-unsigned duration")?,
        })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.id),
            Data::OctetString(self.activation_time.to_octets()),
            Data::DoubleLongUnsigned(self.duration),
        ])
    }
}

/// Limiter `actions`: scripts run over and under the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterActions {
    pub over_threshold: ActionItem,
    pub under_threshold: ActionItem,
}

impl LimiterActions {
    pub fn from_data(d: &Data) -> Result<Self, CosemError> {
        let s = ActionSet::from_data(d)?;
        Ok(Self {
            over_threshold: s.up,
            under_threshold: s.down,
        })
    }

    pub fn to_data(&self) -> Data {
        ActionSet {
            up: self.over_threshold,
            down: self.under_threshold,
        }
        .to_data()
    }
}

/// Extended register (class 4): value with its scaler/unit, status and capture time.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedRegister {
    pub value: Data,
    pub scaler_unit: ScalerUnit,
    pub status: Data,
    pub capture_time: DateTime,
}

impl ExtendedRegister {
    /// From attributes 2..=5 in order.
    pub fn from_attributes(v: &[Data]) -> Result<Self, CosemError> {
        let [value, su, status, t] = v else {
            return Err(CosemError::WrongLength {
                what: "extended register attributes",
            });
        };
        Ok(Self {
            value: value.clone(),
            scaler_unit: ScalerUnit::from_data(su)?,
            status: status.clone(),
            capture_time: date_time(t)?,
        })
    }
}

/// Demand register (class 5): the averages and their period.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandRegister {
    pub current_average_value: Data,
    pub last_average_value: Data,
    pub scaler_unit: ScalerUnit,
    pub status: Data,
    pub capture_time: DateTime,
    pub start_time_current: DateTime,
    pub period: u32,
    pub number_of_periods: u16,
}

impl DemandRegister {
    /// From attributes 2..=9 in order.
    pub fn from_attributes(v: &[Data]) -> Result<Self, CosemError> {
        let [cur, last, su, st, ct, stc, p, n] = v else {
            return Err(CosemError::WrongLength {
                what: "demand register attributes",
            });
        };
        Ok(Self {
            current_average_value: cur.clone(),
            last_average_value: last.clone(),
            scaler_unit: ScalerUnit::from_data(su)?,
            status: st.clone(),
            capture_time: date_time(ct)?,
            start_time_current: date_time(stc)?,
            period: int(p, "double-long-unsigned period")?,
            number_of_periods: int(n, "long-unsigned number of periods")?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn structured_values_round_trip_and_wrong_shapes_fail() {
        let dt = DateTime::from_unix(1_795_651_200, 60, 0);
        let tariff = ObisCode::new(0, 0, 10, 0, 100, 255);
        let script = Script {
            id: 1,
            actions: vec![ScriptAction {
                service_id: 2,
                class_id: 70,
                logical_name: tariff,
                index: 1,
                parameter: Data::Integer(0),
            }],
        };
        assert_eq!(Script::from_data(&script.to_data()).unwrap(), script);
        let sd = SpecialDay {
            index: 3,
            date: dt.date,
            day_id: 2,
        };
        assert_eq!(SpecialDay::from_data(&sd.to_data()).unwrap(), sd);
        let season = Season {
            name: b"winter".to_vec(),
            start: dt,
            week_name: b"w1".to_vec(),
        };
        assert_eq!(Season::from_data(&season.to_data()).unwrap(), season);
        let week = WeekProfile {
            name: b"w1".to_vec(),
            days: [1, 1, 1, 1, 1, 2, 2],
        };
        assert_eq!(WeekProfile::from_data(&week.to_data()).unwrap(), week);
        let day = DayProfile {
            day_id: 1,
            schedule: vec![DayAction {
                start_time: dt.time,
                script_logical_name: tariff,
                script_selector: 2,
            }],
        };
        assert_eq!(DayProfile::from_data(&day.to_data()).unwrap(), day);
        let vd = ValueDefinition {
            class_id: 3,
            logical_name: ObisCode::new(1, 0, 1, 7, 0, 255),
            attribute_index: 2,
        };
        assert_eq!(ValueDefinition::from_data(&vd.to_data()).unwrap(), vd);
        let ai = ActionItem {
            script_logical_name: tariff,
            script_selector: 1,
        };
        let set = ActionSet {
            up: ai,
            down: ActionItem {
                script_selector: 2,
                ..ai
            },
        };
        assert_eq!(ActionSet::from_data(&set.to_data()).unwrap(), set);
        let la = LimiterActions {
            over_threshold: ai,
            under_threshold: ai,
        };
        assert_eq!(LimiterActions::from_data(&la.to_data()).unwrap(), la);
        let et = ExecutionTime {
            time: dt.time,
            date: dt.date,
        };
        assert_eq!(ExecutionTime::from_data(&et.to_data()).unwrap(), et);
        let hs = HdlcSetup {
            comm_speed: 5,
            window_size_transmit: 1,
            window_size_receive: 1,
            max_info_field_length_transmit: 128,
            max_info_field_length_receive: 128,
            inter_octet_time_out: 25,
            inactivity_time_out: 120,
            device_address: 16,
        };
        assert_eq!(HdlcSetup::from_attributes(&hs.to_attributes()).unwrap(), hs);
        let dest = SendDestination {
            transport_service: 0,
            destination: b"127.0.0.1:4059".to_vec(),
            message: 0,
        };
        assert_eq!(SendDestination::from_data(&dest.to_data()).unwrap(), dest);
        let w = Window { start: dt, end: dt };
        assert_eq!(Window::from_data(&w.to_data()).unwrap(), w);
        let ep = EmergencyProfile {
            id: 1,
            activation_time: dt,
            duration: 3600,
        };
        assert_eq!(EmergencyProfile::from_data(&ep.to_data()).unwrap(), ep);
        let su = ScalerUnit {
            scaler: -1,
            unit: super::super::Unit::WATT,
        };
        let xr = ExtendedRegister::from_attributes(&[
            Data::Long(5),
            su.to_data(),
            Data::Unsigned(0),
            Data::OctetString(dt.to_octets()),
        ])
        .unwrap();
        assert_eq!(xr.capture_time, dt);
        let dr = DemandRegister::from_attributes(&[
            Data::DoubleLong(1),
            Data::DoubleLong(2),
            su.to_data(),
            Data::Unsigned(0),
            Data::OctetString(dt.to_octets()),
            Data::OctetString(dt.to_octets()),
            Data::DoubleLongUnsigned(900),
            Data::LongUnsigned(1),
        ])
        .unwrap();
        assert_eq!((dr.period, dr.number_of_periods), (900, 1));
        // Wrong shapes give typed errors.
        for bad in [
            Data::Null,
            Data::Structure(vec![]),
            Data::Structure(vec![Data::Null; 3]),
            Data::Array(vec![Data::Null]),
        ] {
            assert!(Script::from_data(&bad).is_err());
            assert!(SpecialDay::from_data(&bad).is_err());
            assert!(Season::from_data(&bad).is_err());
            assert!(WeekProfile::from_data(&bad).is_err());
            assert!(DayProfile::from_data(&bad).is_err());
            assert!(ValueDefinition::from_data(&bad).is_err());
            assert!(ActionSet::from_data(&bad).is_err());
            assert!(ExecutionTime::from_data(&bad).is_err());
            assert!(SendDestination::from_data(&bad).is_err());
            assert!(Window::from_data(&bad).is_err());
            assert!(EmergencyProfile::from_data(&bad).is_err());
        }
        assert!(HdlcSetup::from_attributes(&[]).is_err());
    }
}
