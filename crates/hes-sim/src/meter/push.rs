//! What the meter pushes: the push setup objects and the ciphered data notification a push
//! carries.

use super::*;

/// What a push carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    /// The registers at the end of the interval ending at this meter time.
    Interval(i64),
    /// An event that just happened: its code and the meter time it happened at.
    Alarm { code: u16, time: i64 },
}

impl Meter {
    pub(super) fn push_get(
        &self,
        alarm_push: bool,
        attribute: i8,
    ) -> Result<Data, DataAccessResult> {
        match attribute {
            2 => Ok(Data::Array(
                Self::push_objects(alarm_push)
                    .iter()
                    .map(CaptureObject::to_data)
                    .collect(),
            )),
            3 => Ok(Data::Structure(vec![
                Data::Enum(0), // TCP
                Data::OctetString(
                    self.cfg
                        .push_destination
                        .clone()
                        .unwrap_or_default()
                        .into_bytes(),
                ),
                Data::Enum(0), // A-XDR APDU
            ])),
            4 => Ok(Data::Array(Vec::new())),
            5 => Ok(Data::LongUnsigned(0)),
            6 => Ok(Data::Unsigned(self.push_retry(alarm_push).0)),
            7 => Ok(Data::LongUnsigned(self.push_retry(alarm_push).1)),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    /// The push setup's number_of_retries and repetition_delay (seconds): how often a push
    /// that did not get through is tried again, and how long the meter waits before each.
    pub fn push_retry(&self, alarm_push: bool) -> (u8, u16) {
        self.extras
            .as_ref()
            .and_then(|x| x.push_retry.get(usize::from(alarm_push)).copied().flatten())
            .unwrap_or((self.cfg.push_retries, self.cfg.push_repetition_delay_s))
    }

    pub(super) fn push_set(
        &mut self,
        alarm_push: bool,
        attribute: i8,
        value: Data,
    ) -> DataAccessResult {
        let mut now = self.push_retry(alarm_push);
        match (attribute, value) {
            (3, Data::Structure(_)) => return DataAccessResult::Success,
            (6, Data::Unsigned(n)) => now.0 = n,
            (7, Data::LongUnsigned(d)) => now.1 = d,
            _ => return DataAccessResult::TypeUnmatched,
        }
        if let Some(slot) = self.extras().push_retry.get_mut(usize::from(alarm_push)) {
            *slot = Some(now);
        }
        DataAccessResult::Success
    }

    /// What each push carries, in order (the body of the data notification is a structure of
    /// these values).
    pub fn push_objects(alarm_push: bool) -> Vec<CaptureObject> {
        if alarm_push {
            vec![
                capture(1, LDN, 2),
                capture(8, CLOCK, 2),
                capture(1, ALARM_REGISTER, 2),
                capture(1, o(0, 0, 96, 11, 0), 2),
            ]
        } else {
            vec![
                capture(1, LDN, 2),
                capture(8, CLOCK, 2),
                capture(3, IMPORT, 2),
                capture(3, EXPORT, 2),
                capture(3, REACTIVE, 2),
                capture(3, REACTIVE_EXPORT, 2),
            ]
        }
    }

    /// The plain data notification of a push.
    pub fn push_notification(&self, kind: PushKind, invoke_id: u32) -> DataNotification {
        let off = self.cfg.utc_offset_minutes;
        let ldn = Data::OctetString(self.logical_device_name());
        let (at, body) = match kind {
            PushKind::Interval(t) => {
                let e = |q| Data::DoubleLongUnsigned(self.energy(q, 0, t) as u32);
                (t, vec![ldn, date_time(t, off), e(AP), e(AM), e(RP), e(RM)])
            }
            PushKind::Alarm { code, time } => (
                time,
                vec![
                    ldn,
                    date_time(time, off),
                    Data::DoubleLongUnsigned(self.alarms),
                    Data::LongUnsigned(code),
                ],
            ),
        };
        DataNotification {
            long_invoke_id_and_priority: invoke_id & 0x00FF_FFFF,
            date_time: Some(DateTime::from_unix(at, off, 0).to_octets()),
            body: Data::Structure(body),
        }
    }

    /// A push ready for the wire: the notification, ciphered (general-glo, authenticated and
    /// encrypted, with the meter's next invocation counter), in a wrapper frame to `wport`.
    pub fn push_frame(&mut self, kind: PushKind, wport: u16) -> Option<Vec<u8>> {
        let keys = self.keys();
        let ic = self.counters.tx.max(1);
        let plain = Apdu::DataNotification(self.push_notification(kind, ic)).to_bytes();
        let mut ctx = SecurityContext::new(
            SecurityLevel::AuthenticatedEncrypted,
            self.cfg.system_title,
            CipherKeys {
                ek: keys.ek,
                ak: keys.ak,
            },
            ic,
        );
        let ciphered = ctx.protect_general_glo(&plain).ok()?;
        self.counters.tx = ctx.next_tx_invocation_counter();
        let mut out = Vec::with_capacity(ciphered.len() + 8);
        dlms::wrapper::encode(1, wport, &ciphered, &mut out).ok()?;
        Some(out)
    }
}
