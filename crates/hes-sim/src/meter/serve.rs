//! Serving the object table: GET, SET and ACTION dispatched from [`OBJECTS`] to the
//! registers, instantaneous values, clock, association and disconnector.

use super::*;

impl Meter {
    pub(super) fn energy_get(
        &self,
        q: Quantity,
        tariff: u8,
        attribute: i8,
    ) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(Data::DoubleLongUnsigned(
                self.energy(q, tariff, self.now()) as u32
            )),
            // Scaler 0; unit Wh (30) or varh (32).
            3 => Ok(Data::Structure(vec![
                Data::Integer(0),
                Data::Enum(match q {
                    AP | AM => 30,
                    RP | RM => 32,
                }),
            ])),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    pub(super) fn instant_get(&self, i: Inst, attribute: i8) -> Result<Data, DataAccessResult> {
        // (scaler, unit) per the Blue Book unit table: V 35, A 33, W 27, var 29, Hz 44.
        let (scaler, unit) = match i {
            Inst::Voltage(_) => (-1, 35),
            Inst::Current(_) => (-3, 33),
            Inst::Power(_) | Inst::PowerImport | Inst::PowerExport => (0, 27),
            Inst::Reactive => (0, 29),
            Inst::Frequency => (-3, 44),
            Inst::PowerFactor => (-3, 255),
        };
        match attribute {
            2 => {
                let v = self.instantaneous();
                let pick = |a: &[u32; 3], k: usize| a.get(k).copied().unwrap_or(0);
                Ok(match i {
                    Inst::Voltage(k) => {
                        Data::LongUnsigned(v.voltage_dv.get(k).copied().unwrap_or(0))
                    }
                    Inst::Current(k) => Data::DoubleLongUnsigned(pick(&v.current_ma, k)),
                    Inst::Power(k) => {
                        Data::DoubleLong(v.active_power_w.get(k).copied().unwrap_or(0))
                    }
                    Inst::PowerImport => Data::DoubleLongUnsigned(
                        v.active_power_w.iter().map(|&w| w.max(0) as u32).sum(),
                    ),
                    Inst::PowerExport => Data::DoubleLongUnsigned(
                        v.active_power_w.iter().map(|&w| (-w).max(0) as u32).sum(),
                    ),
                    Inst::Reactive => Data::DoubleLong(v.reactive_power_var.iter().sum()),
                    Inst::Frequency => Data::LongUnsigned(v.frequency_mhz.min(65_535) as u16),
                    Inst::PowerFactor => Data::LongUnsigned(v.power_factor_milli),
                })
            }
            3 => Ok(Data::Structure(vec![
                Data::Integer(scaler),
                Data::Enum(unit),
            ])),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    pub(super) fn clock_get(&self, attribute: i8) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(date_time(self.now(), self.cfg.utc_offset_minutes)),
            3 => Ok(Data::Long(self.cfg.utc_offset_minutes)),
            4 => Ok(Data::Unsigned(0)),
            5 | 6 => Ok(Data::OctetString(vec![0xFF; 12])),
            7 => Ok(Data::Integer(60)),
            8 => Ok(Data::Boolean(false)),
            9 => Ok(Data::Enum(1)),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    pub(super) fn is_management(&self, ctx: &RequestContext) -> bool {
        ctx.client_sap == self.cfg.saps.management && ctx.mechanism.is_hls()
    }

    /// Every object with its class version and what `client` may do with it.
    pub(super) fn object_list(&self, ctx: &RequestContext) -> Vec<ObjectListElement> {
        let manage = self.is_management(ctx);
        OBJECTS
            .iter()
            .map(|d| {
                let attributes = (1..=d.attributes)
                    .map(|attribute| AttributeAccess {
                        attribute,
                        mode: if manage && d.writable.contains(&attribute) {
                            AttributeAccessMode::ReadWrite
                        } else if d.kind == Kind::Association && attribute == 7 {
                            AttributeAccessMode::NoAccess
                        } else {
                            AttributeAccessMode::Read
                        },
                        selectors: (d.class_id == 7 && attribute == 2).then(|| vec![1, 2]),
                    })
                    .collect();
                let methods = (1..=d.methods)
                    .map(|method| MethodAccess {
                        method,
                        mode: if manage {
                            MethodAccessMode::Access
                        } else {
                            MethodAccessMode::NoAccess
                        },
                    })
                    .collect();
                ObjectListElement {
                    class_id: d.class_id,
                    version: d.version,
                    logical_name: d.obis,
                    access_rights: AccessRights {
                        attributes,
                        methods,
                    },
                }
            })
            .collect()
    }

    pub(super) fn association_get(
        &self,
        ctx: &RequestContext,
        attribute: i8,
    ) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(object_list_to_data(&self.object_list(ctx))),
            3 => Ok(Data::Structure(vec![
                Data::Integer(ctx.client_sap as i8),
                Data::LongUnsigned(1),
            ])),
            4 => Ok(Data::Structure(vec![
                Data::Unsigned(2),
                Data::Unsigned(16),
                Data::LongUnsigned(756),
                Data::Unsigned(5),
                Data::Unsigned(8),
                Data::Unsigned(1),
                Data::Unsigned(if ctx.security == SecurityLevel::None {
                    1
                } else {
                    3
                }),
            ])),
            // The mechanism name as the Blue Book's structure of the OID 2.16.756.5.8.2.x.
            6 => Ok(Data::Structure(vec![
                Data::Unsigned(2),
                Data::Unsigned(16),
                Data::LongUnsigned(756),
                Data::Unsigned(5),
                Data::Unsigned(8),
                Data::Unsigned(2),
                Data::Unsigned(ctx.mechanism as u8),
            ])),
            7 => Err(DataAccessResult::ReadWriteDenied), // the secret is never readable
            8 => Ok(Data::Enum(2)),                      // associated
            9 => Ok(Data::OctetString(SECURITY_SETUP.as_bytes().to_vec())),
            // xDLMS_context_info: conformance, max receive and send PDU sizes, DLMS version,
            // quality of service, cyphering info.
            5 => Ok(Data::Structure(vec![
                Data::BitString(dlms::axdr::BitString {
                    bits: 24,
                    bytes: vec![0x00, 0x7E, 0x1F],
                }),
                Data::LongUnsigned(self.cfg.quirks.max_pdu()),
                Data::LongUnsigned(self.cfg.quirks.max_pdu()),
                Data::Unsigned(6),
                Data::Integer(0),
                Data::OctetString(Vec::new()),
            ])),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    pub(super) fn disconnect_action(&mut self, method: i8) -> Result<Option<Data>, ActionResult> {
        let connect = match method {
            1 => false,
            2 => true,
            _ => return Err(ActionResult::ObjectUndefined),
        };
        if connect != self.relay_connected {
            self.set_supply(self.powered, connect);
            self.relay_connected = connect;
            let code = if connect {
                code::RELAY_RECONNECTED
            } else {
                code::RELAY_DISCONNECTED
            };
            self.record_event(EventLog::Standard, code, alarm::RELAY);
        }
        Ok(None)
    }
}

impl Objects for Meter {
    fn get(
        &mut self,
        ctx: &RequestContext,
        a: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let Some(d) = object(a.class_id, a.instance) else {
            return Err(DataAccessResult::ObjectUndefined);
        };
        if a.attribute == 1 {
            return Ok(Data::OctetString(a.instance.as_bytes().to_vec()));
        }
        if a.attribute > d.attributes || a.attribute < 1 {
            return Err(DataAccessResult::ObjectUndefined);
        }
        let now = self.now();
        match d.kind {
            Kind::Clock => self.clock_get(a.attribute),
            Kind::Ldn => Ok(Data::OctetString(self.logical_device_name())),
            Kind::Serial => Ok(Data::VisibleString(
                format!("{:08}", self.cfg.serial).into_bytes(),
            )),
            Kind::Firmware => Ok(Data::VisibleString(self.firmware_version().into_bytes())),
            Kind::Energy(q, t) => self.energy_get(q, t, a.attribute),
            Kind::Instant(i) => self.instant_get(i, a.attribute),
            Kind::Profile(p) => self.profile_get(p, a.attribute, access),
            Kind::EventCode(log) => Ok(Data::LongUnsigned(self.last_event_code(log))),
            Kind::AlarmRegister => Ok(Data::DoubleLongUnsigned(self.alarms)),
            Kind::Disconnect => match a.attribute {
                2 => Ok(Data::Boolean(self.relay_connected)),
                3 => Ok(Data::Enum(u8::from(self.relay_connected))),
                _ => Ok(Data::Enum(4)),
            },
            Kind::Limiter => match self.extras.as_ref().and_then(|x| x.limiter.as_ref()) {
                Some(l) => l.get(a.attribute, now),
                None => Limiter::new().get(a.attribute, now),
            },
            Kind::Calendar => {
                let x = self.extras();
                match x.calendar.as_mut() {
                    Some(c) => {
                        c.tick(now);
                        c.get(a.attribute, now)
                    }
                    None => ActivityCalendar::new().get(a.attribute, now),
                }
            }
            Kind::Image => match self.extras.as_ref().and_then(|x| x.image.as_ref()) {
                Some(i) => i.get(a.attribute, now),
                None => {
                    ImageTransfer::new(FIRMWARE_VERSION, IMAGE_BLOCK_SIZE).get(a.attribute, now)
                }
            },
            Kind::Push(alarm_push) => self.push_get(alarm_push, a.attribute),
            Kind::Security => {
                if a.attribute == 2 {
                    // What this association actually runs.
                    return Ok(Data::Enum(match ctx.security {
                        SecurityLevel::None => 0,
                        _ => crate::objects::keys::SECURITY_POLICY_AUTH_ENC,
                    }));
                }
                self.security.get(a.attribute, now)
            }
            Kind::InvocationCounter => Ok(Data::DoubleLongUnsigned(
                self.last_invocation_counter(self.cfg.saps.management),
            )),
            Kind::Association => self.association_get(ctx, a.attribute),
        }
    }

    fn set(
        &mut self,
        ctx: &RequestContext,
        a: &AttributeDescriptor,
        _access: Option<&SelectiveAccess>,
        value: Data,
    ) -> DataAccessResult {
        let Some(d) = object(a.class_id, a.instance) else {
            return DataAccessResult::ObjectUndefined;
        };
        if a.attribute < 1 || a.attribute > d.attributes {
            return DataAccessResult::ObjectUndefined;
        }
        if !self.is_management(ctx) || !d.writable.contains(&a.attribute) {
            return DataAccessResult::ReadWriteDenied;
        }
        let now = self.now();
        match d.kind {
            Kind::Clock => match value.as_date_time().and_then(|dt| dt.to_unix()) {
                Some(t) => {
                    self.record_event(EventLog::Standard, code::CLOCK_ADJUSTED_OLD, 0);
                    self.clock_offset += t - now;
                    self.record_event(EventLog::Standard, code::CLOCK_ADJUSTED_NEW, alarm::CLOCK);
                    DataAccessResult::Success
                }
                None => DataAccessResult::TypeUnmatched,
            },
            Kind::AlarmRegister => match value {
                Data::DoubleLongUnsigned(v) => {
                    self.alarms = v;
                    DataAccessResult::Success
                }
                _ => DataAccessResult::TypeUnmatched,
            },
            Kind::Disconnect => match value {
                Data::Enum(_) => DataAccessResult::Success,
                _ => DataAccessResult::TypeUnmatched,
            },
            Kind::Limiter => {
                self.extras()
                    .limiter
                    .get_or_insert_with(Limiter::new)
                    .set(a.attribute, value, now)
            }
            Kind::Calendar => {
                let c = self
                    .extras()
                    .calendar
                    .get_or_insert_with(ActivityCalendar::new);
                c.tick(now);
                c.set(a.attribute, value, now)
            }
            Kind::Image => self.image().set(a.attribute, value, now),
            Kind::Push(alarm_push) => self.push_set(alarm_push, a.attribute, value),
            _ => DataAccessResult::ReadWriteDenied,
        }
    }

    fn action(
        &mut self,
        ctx: &RequestContext,
        m: &MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        let Some(d) = object(m.class_id, m.instance) else {
            return Err(ActionResult::ObjectUndefined);
        };
        if m.method < 1 || m.method > d.methods {
            return Err(ActionResult::ObjectUndefined);
        }
        if !self.is_management(ctx) || ctx.mechanism == Mechanism::None {
            return Err(ActionResult::ReadWriteDenied);
        }
        let now = self.now();
        match d.kind {
            Kind::Disconnect => self.disconnect_action(m.method),
            Kind::Calendar => {
                let before = self.calendar_name();
                let r = self
                    .extras()
                    .calendar
                    .get_or_insert_with(ActivityCalendar::new)
                    .action(m.method, parameters, now);
                if r.is_ok() && self.calendar_name() != before {
                    self.record_event(EventLog::Standard, code::TOU_ACTIVATED, 0);
                }
                r
            }
            Kind::Image => {
                let before = self.firmware_version();
                let r = self.image().action(m.method, parameters, now);
                if r.is_ok() && self.firmware_version() != before {
                    self.record_event(
                        EventLog::Standard,
                        code::FIRMWARE_ACTIVATED,
                        alarm::FIRMWARE,
                    );
                }
                r
            }
            Kind::Security => {
                let version = self.security.key_version();
                let r = self.security.action(m.method, parameters, now);
                if self.security.key_version() != version {
                    self.record_event(EventLog::Standard, code::KEYS_CHANGED, 0);
                }
                r
            }
            Kind::Push(alarm_push) => {
                if self.outbox.len() < MAX_OUTBOX {
                    let kind = if alarm_push {
                        PushKind::Alarm { code: 0, time: now }
                    } else {
                        PushKind::Interval(now.div_euclid(INTERVAL) * INTERVAL)
                    };
                    self.outbox.push(kind);
                }
                Ok(None)
            }
            Kind::Clock | Kind::Profile(_) | Kind::Energy(..) | Kind::Instant(_) => {
                // Reset, capture, adjust-to-quarter and the like: accepted, no effect on a
                // meter whose data is a function of time.
                Ok(None)
            }
            _ => Err(ActionResult::ObjectUndefined),
        }
    }

    fn counters(&mut self) -> &mut CounterState {
        &mut self.counters
    }

    fn counter_replayed(&mut self, client_sap: u16, received: u32, last: u32) {
        self.replays += 1;
        tracing::debug!(
            serial = self.cfg.serial,
            client_sap,
            received,
            last,
            "replayed invocation counter refused"
        );
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        rand::thread_rng().fill_bytes(buf);
    }
}
