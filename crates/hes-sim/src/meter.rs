//! One simulated meter's COSEM object model, served through `dlms::server::Objects`.

use std::sync::Arc;

use dlms::axdr::Data;
use dlms::cosem::association_ln::{
    object_list_to_data, AccessRights, AttributeAccess, AttributeAccessMode, MethodAccess,
    MethodAccessMode, ObjectListElement,
};
use dlms::cosem::profile_generic;
use dlms::cosem::CaptureObject;
use dlms::server::{CounterState, Objects, RequestContext};
use dlms::xdlms::{ActionResult, DataAccessResult, SelectiveAccess};
use dlms::{AttributeDescriptor, DateTime, Mechanism, MethodDescriptor, ObisCode, SystemTitle};
use rand::RngCore;

use crate::consumption::{Consumption, INTERVAL};

/// The public client: reads, no commands.
pub const CLIENT_PUBLIC: u16 = 16;
/// The LLS client (meter reader).
pub const CLIENT_LLS: u16 = 17;
/// The HLS-GMAC client (management): reads and commands.
pub const CLIENT_HLS: u16 = 1;

pub const CLOCK: ObisCode = ObisCode::new(0, 0, 1, 0, 0, 255);
pub const LDN: ObisCode = ObisCode::new(0, 0, 42, 0, 0, 255);
pub const SERIAL: ObisCode = ObisCode::new(0, 0, 96, 1, 0, 255);
pub const FIRMWARE: ObisCode = ObisCode::new(1, 0, 0, 2, 0, 255);
pub const IMPORT: ObisCode = ObisCode::new(1, 0, 1, 8, 0, 255);
pub const EXPORT: ObisCode = ObisCode::new(1, 0, 2, 8, 0, 255);
pub const REACTIVE: ObisCode = ObisCode::new(1, 0, 3, 8, 0, 255);
pub const LOAD_PROFILE: ObisCode = ObisCode::new(1, 0, 99, 1, 0, 255);
pub const DISCONNECT: ObisCode = ObisCode::new(0, 0, 96, 3, 10, 255);
pub const INVOCATION_COUNTER: ObisCode = ObisCode::new(0, 0, 43, 1, 0, 255);
pub const CURRENT_ASSOCIATION: ObisCode = ObisCode::new(0, 0, 40, 0, 0, 255);
pub const SECURITY_SETUP: ObisCode = ObisCode::new(0, 0, 43, 0, 0, 255);

/// Unix seconds "now" for a meter (real time, accelerated, or fixed in tests).
pub type TimeSource = Arc<dyn Fn() -> i64 + Send + Sync>;

#[derive(Clone)]
pub struct MeterConfig {
    pub serial: u32,
    pub seed: u64,
    pub system_title: SystemTitle,
    /// Entries the load profile holds (96 = one day of 15-minute intervals).
    pub profile_entries: u32,
    /// Local time offset from UTC, minutes.
    pub utc_offset_minutes: i16,
    pub time: TimeSource,
}

impl std::fmt::Debug for MeterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterConfig")
            .field("serial", &self.serial)
            .field("seed", &self.seed)
            .field("system_title", &self.system_title)
            .field("profile_entries", &self.profile_entries)
            .finish()
    }
}

impl MeterConfig {
    pub fn new(serial: u32) -> Self {
        let t = serial.to_be_bytes();
        Self {
            serial,
            seed: u64::from(serial).wrapping_mul(0x2545_F491_4F6C_DD1D),
            // "HES" manufacturer flag, then the serial.
            system_title: SystemTitle([b'H', b'E', b'S', 0, t[0], t[1], t[2], t[3]]),
            profile_entries: 96,
            utc_offset_minutes: 0,
            time: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            }),
        }
    }
}

/// A simulated meter.
#[derive(Debug)]
pub struct Meter {
    cfg: MeterConfig,
    consumption: Consumption,
    /// Seconds added to the time source by clock SETs (a meter's clock after adjustment).
    clock_offset: i64,
    relay_connected: bool,
    counters: CounterState,
}

impl Meter {
    pub fn new(cfg: MeterConfig) -> Self {
        Self {
            consumption: Consumption::new(cfg.seed),
            cfg,
            clock_offset: 0,
            relay_connected: true,
            counters: CounterState::default(),
        }
    }

    pub fn config(&self) -> &MeterConfig {
        &self.cfg
    }

    pub fn now(&self) -> i64 {
        (self.cfg.time)() + self.clock_offset
    }

    pub fn logical_device_name(&self) -> Vec<u8> {
        format!("HES{:013}", self.cfg.serial).into_bytes()
    }

    pub fn relay_connected(&self) -> bool {
        self.relay_connected
    }

    /// The capture objects of the load profile: clock, +A, -A, +R.
    pub fn profile_columns() -> Vec<CaptureObject> {
        let col = |class_id, logical_name, attribute_index| CaptureObject {
            class_id,
            logical_name,
            attribute_index,
            data_index: 0,
        };
        vec![
            col(8, CLOCK, 2),
            col(3, IMPORT, 2),
            col(3, EXPORT, 2),
            col(3, REACTIVE, 2),
        ]
    }

    /// The load profile as the meter holds it now, oldest entry first.
    pub fn profile_rows(&self) -> Vec<Vec<Data>> {
        let now = self.now();
        let last = now.div_euclid(INTERVAL) * INTERVAL;
        let n = i64::from(self.cfg.profile_entries);
        (0..n)
            .map(|i| {
                let end = last - (n - 1 - i) * INTERVAL;
                self.profile_row(end)
            })
            .collect()
    }

    /// The entry captured at the end of the interval ending at `end`.
    pub fn profile_row(&self, end: i64) -> Vec<Data> {
        let c = &self.consumption;
        let t = DateTime::from_unix(end, self.cfg.utc_offset_minutes, 0);
        vec![
            Data::OctetString(t.to_octets()),
            Data::DoubleLongUnsigned(c.import_wh(end) as u32),
            Data::DoubleLongUnsigned(c.export_wh(end) as u32),
            Data::DoubleLongUnsigned(c.reactive_varh(end) as u32),
        ]
    }

    fn clock_time(&self) -> Data {
        Data::OctetString(
            DateTime::from_unix(self.now(), self.cfg.utc_offset_minutes, 0).to_octets(),
        )
    }

    fn register(&self, which: ObisCode, attribute: i8) -> Result<Data, DataAccessResult> {
        let now = self.now();
        let c = &self.consumption;
        match attribute {
            2 => Ok(Data::DoubleLongUnsigned(match which {
                IMPORT => c.import_wh(now),
                EXPORT => c.export_wh(now),
                _ => c.reactive_varh(now),
            } as u32)),
            // scaler 0; unit Wh (30) or varh (32).
            3 => Ok(Data::Structure(vec![
                Data::Integer(0),
                Data::Enum(if which == REACTIVE { 32 } else { 30 }),
            ])),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn profile(
        &self,
        attribute: i8,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let columns = Self::profile_columns();
        match attribute {
            2 => {
                let rows = self.profile_rows();
                let rows = match access {
                    None => rows,
                    Some(sa) => {
                        profile_generic::select(&rows, &columns, sa.selector, &sa.parameters)
                            .map_err(|_| DataAccessResult::OtherReason)?
                    }
                };
                Ok(Data::Array(rows.into_iter().map(Data::Structure).collect()))
            }
            3 => Ok(Data::Array(
                columns.iter().map(CaptureObject::to_data).collect(),
            )),
            4 => Ok(Data::DoubleLongUnsigned(INTERVAL as u32)),
            5 => Ok(Data::Enum(1)), // sort method: fifo
            6 => Ok(Data::Structure(vec![
                Data::LongUnsigned(0),
                Data::OctetString(vec![0; 6]),
                Data::Integer(0),
                Data::LongUnsigned(0),
            ])),
            7 | 8 => Ok(Data::DoubleLongUnsigned(self.cfg.profile_entries)),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    /// Every object with its class version and what `client` may do with it.
    fn object_list(&self, client: u16) -> Vec<ObjectListElement> {
        let commands = client != CLIENT_PUBLIC;
        let read = |n: i8| -> Vec<AttributeAccess> {
            (1..=n)
                .map(|attribute| AttributeAccess {
                    attribute,
                    mode: AttributeAccessMode::Read,
                    selectors: None,
                })
                .collect()
        };
        let methods = |n: i8| -> Vec<MethodAccess> {
            (1..=n)
                .map(|method| MethodAccess {
                    method,
                    mode: if commands {
                        MethodAccessMode::Access
                    } else {
                        MethodAccessMode::NoAccess
                    },
                })
                .collect()
        };
        let obj = |class_id, version, logical_name, attributes, methods| ObjectListElement {
            class_id,
            version,
            logical_name,
            access_rights: AccessRights {
                attributes,
                methods,
            },
        };
        let mut clock_attrs = read(9);
        if client == CLIENT_HLS {
            if let Some(a) = clock_attrs.get_mut(1) {
                a.mode = AttributeAccessMode::ReadWrite;
            }
        }
        let mut profile_attrs = read(8);
        if let Some(a) = profile_attrs.get_mut(1) {
            a.selectors = Some(vec![1, 2]);
        }
        vec![
            obj(8, 0, CLOCK, clock_attrs, methods(6)),
            obj(1, 0, LDN, read(2), vec![]),
            obj(1, 0, SERIAL, read(2), vec![]),
            obj(1, 0, FIRMWARE, read(2), vec![]),
            obj(3, 0, IMPORT, read(3), vec![]),
            obj(3, 0, EXPORT, read(3), vec![]),
            obj(3, 0, REACTIVE, read(3), vec![]),
            obj(7, 1, LOAD_PROFILE, profile_attrs, methods(2)),
            obj(70, 0, DISCONNECT, read(4), methods(2)),
            obj(1, 0, INVOCATION_COUNTER, read(2), vec![]),
            obj(15, 1, CURRENT_ASSOCIATION, read(9), methods(2)),
            obj(64, 0, SECURITY_SETUP, read(5), vec![]),
        ]
    }

    fn association(&self, ctx: &RequestContext, attribute: i8) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(object_list_to_data(&self.object_list(ctx.client_sap))),
            3 => Ok(Data::Structure(vec![
                Data::Integer(ctx.client_sap as i8),
                Data::LongUnsigned(1),
            ])),
            6 => {
                let id = ctx.mechanism as u8;
                // The mechanism name as the Blue Book's structure of the OID 2.16.756.5.8.2.x.
                Ok(Data::Structure(vec![
                    Data::Unsigned(2),
                    Data::Unsigned(16),
                    Data::LongUnsigned(756),
                    Data::Unsigned(5),
                    Data::Unsigned(8),
                    Data::Unsigned(2),
                    Data::Unsigned(id),
                ]))
            }
            8 => Ok(Data::Enum(2)), // associated
            9 => Ok(Data::OctetString(SECURITY_SETUP.as_bytes().to_vec())),
            7 => Err(DataAccessResult::ReadWriteDenied), // the secret is never readable
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }
}

impl Objects for Meter {
    fn get(
        &mut self,
        ctx: &RequestContext,
        a: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        if a.attribute == 1 {
            return Ok(Data::OctetString(a.instance.as_bytes().to_vec()));
        }
        match (a.class_id, a.instance) {
            (8, CLOCK) => match a.attribute {
                2 => Ok(self.clock_time()),
                3 => Ok(Data::Long(self.cfg.utc_offset_minutes)),
                4 => Ok(Data::Unsigned(0)),
                5 | 6 => Ok(Data::OctetString(vec![0xFF; 12])),
                7 => Ok(Data::Integer(60)),
                8 => Ok(Data::Boolean(false)),
                9 => Ok(Data::Enum(1)),
                _ => Err(DataAccessResult::ObjectUndefined),
            },
            (1, LDN) if a.attribute == 2 => Ok(Data::OctetString(self.logical_device_name())),
            (1, SERIAL) if a.attribute == 2 => Ok(Data::VisibleString(
                format!("{:08}", self.cfg.serial).into_bytes(),
            )),
            (1, FIRMWARE) if a.attribute == 2 => Ok(Data::VisibleString(b"HES-SIM 0.1.0".to_vec())),
            (3, IMPORT | EXPORT | REACTIVE) => self.register(a.instance, a.attribute),
            (7, LOAD_PROFILE) => self.profile(a.attribute, access),
            (70, DISCONNECT) => match a.attribute {
                2 => Ok(Data::Boolean(self.relay_connected)),
                3 => Ok(Data::Enum(u8::from(self.relay_connected))),
                4 => Ok(Data::Enum(4)),
                _ => Err(DataAccessResult::ObjectUndefined),
            },
            (1, INVOCATION_COUNTER) if a.attribute == 2 => Ok(Data::DoubleLongUnsigned(
                self.counters.rx_last.get(&CLIENT_HLS).copied().unwrap_or(0),
            )),
            (15, CURRENT_ASSOCIATION) => self.association(ctx, a.attribute),
            (64, SECURITY_SETUP) => match a.attribute {
                2 => Ok(Data::Enum(ctx.security as u8)),
                3 => Ok(Data::Enum(0)),
                4 => Ok(Data::OctetString(Vec::new())),
                5 => Ok(Data::OctetString(self.cfg.system_title.0.to_vec())),
                _ => Err(DataAccessResult::ObjectUndefined),
            },
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn set(
        &mut self,
        ctx: &RequestContext,
        a: &AttributeDescriptor,
        _access: Option<&SelectiveAccess>,
        value: Data,
    ) -> DataAccessResult {
        match (a.class_id, a.instance, a.attribute) {
            (8, CLOCK, 2) if ctx.client_sap == CLIENT_HLS => {
                match value.as_date_time().and_then(|d| d.to_unix()) {
                    Some(t) => {
                        self.clock_offset += t - self.now();
                        DataAccessResult::Success
                    }
                    None => DataAccessResult::TypeUnmatched,
                }
            }
            (_, _, _) if self.known(a) => DataAccessResult::ReadWriteDenied,
            _ => DataAccessResult::ObjectUndefined,
        }
    }

    fn action(
        &mut self,
        ctx: &RequestContext,
        m: &MethodDescriptor,
        _parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        if ctx.client_sap == CLIENT_PUBLIC || ctx.mechanism == Mechanism::None {
            return Err(ActionResult::ReadWriteDenied);
        }
        match (m.class_id, m.instance, m.method) {
            (70, DISCONNECT, 1) => {
                self.relay_connected = false;
                Ok(None)
            }
            (70, DISCONNECT, 2) => {
                self.relay_connected = true;
                Ok(None)
            }
            _ => Err(ActionResult::ObjectUndefined),
        }
    }

    fn counters(&mut self) -> &mut CounterState {
        &mut self.counters
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        rand::thread_rng().fill_bytes(buf);
    }
}

impl Meter {
    fn known(&self, a: &AttributeDescriptor) -> bool {
        self.object_list(CLIENT_HLS)
            .iter()
            .any(|o| o.class_id == a.class_id && o.logical_name == a.instance)
    }
}
