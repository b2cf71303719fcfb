//! Result codes and error APDUs: what a meter answers when it refuses.

use crate::codec::{Codec, DecodeError, Reader};

use super::{expect_tag, tag};

macro_rules! result_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A code the standard does not define, kept as sent.
            Unknown(u8),
        }

        impl $name {
            pub fn code(self) -> u8 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Unknown(c) => c,
                }
            }

            pub fn from_code(c: u8) -> Self {
                match c {
                    $($code => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            /// The standard's name, e.g. `object-undefined`.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Unknown(_) => "unknown",
                }
            }
        }
    };
}

result_enum! {
    /// `Data-Access-Result`.
    DataAccessResult {
        Success = 0, "success";
        HardwareFault = 1, "hardware-fault";
        TemporaryFailure = 2, "temporary-failure";
        ReadWriteDenied = 3, "read-write-denied";
        ObjectUndefined = 4, "object-undefined";
        ObjectClassInconsistent = 9, "object-class-inconsistent";
        ObjectUnavailable = 11, "object-unavailable";
        TypeUnmatched = 12, "type-unmatched";
        ScopeOfAccessViolated = 13, "scope-of-access-violated";
        DataBlockUnavailable = 14, "data-block-unavailable";
        LongGetAborted = 15, "long-get-aborted";
        NoLongGetInProgress = 16, "no-long-get-in-progress";
        LongSetAborted = 17, "long-set-aborted";
        NoLongSetInProgress = 18, "no-long-set-in-progress";
        DataBlockNumberInvalid = 19, "data-block-number-invalid";
        OtherReason = 250, "other-reason";
    }
}

result_enum! {
    /// `Action-Result`.
    ActionResult {
        Success = 0, "success";
        HardwareFault = 1, "hardware-fault";
        TemporaryFailure = 2, "temporary-failure";
        ReadWriteDenied = 3, "read-write-denied";
        ObjectUndefined = 4, "object-undefined";
        ObjectClassInconsistent = 9, "object-class-inconsistent";
        ObjectUnavailable = 11, "object-unavailable";
        TypeUnmatched = 12, "type-unmatched";
        ScopeOfAccessViolated = 13, "scope-of-access-violated";
        DataBlockUnavailable = 14, "data-block-unavailable";
        LongActionAborted = 15, "long-action-aborted";
        NoLongActionInProgress = 16, "no-long-action-in-progress";
        OtherReason = 250, "other-reason";
    }
}

/// `ExceptionResponse`: the server could not process the APDU at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionResponse {
    /// 1 service-not-allowed, 2 service-unknown.
    pub state_error: u8,
    /// 1 operation-not-possible, 2 service-not-supported, 3 other-reason, 4 pdu-too-long,
    /// 5 deciphering-error, 6 invocation-counter-error.
    pub service_error: u8,
    /// With invocation-counter-error: the counter the server expects to be exceeded.
    pub invocation_counter: Option<u32>,
}

impl ExceptionResponse {
    pub const INVOCATION_COUNTER_ERROR: u8 = 6;

    pub fn state_error_name(&self) -> &'static str {
        match self.state_error {
            1 => "service-not-allowed",
            2 => "service-unknown",
            _ => "unknown",
        }
    }

    pub fn service_error_name(&self) -> &'static str {
        match self.service_error {
            1 => "operation-not-possible",
            2 => "service-not-supported",
            3 => "other-reason",
            4 => "pdu-too-long",
            5 => "deciphering-error",
            6 => "invocation-counter-error",
            _ => "unknown",
        }
    }
}

impl Codec for ExceptionResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            tag::EXCEPTION_RESPONSE,
            self.state_error,
            self.service_error,
        ]);
        if self.service_error == Self::INVOCATION_COUNTER_ERROR {
            out.extend_from_slice(&self.invocation_counter.unwrap_or(0).to_be_bytes());
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::EXCEPTION_RESPONSE, "exception-response")?;
        let state_error = r.u8("state-error")?;
        let service_error = r.u8("service-error")?;
        let invocation_counter = if service_error == Self::INVOCATION_COUNTER_ERROR {
            Some(r.u32("invocation-counter")?)
        } else {
            None
        };
        Ok(Self {
            state_error,
            service_error,
            invocation_counter,
        })
    }
}

/// `ConfirmedServiceError`: which service failed (1 initiateError, 5 read, 6 write, ...) and
/// the `ServiceError` CHOICE (0 application-reference ... 6 initiate ... 10 other) with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmedServiceError {
    pub service: u8,
    pub error_kind: u8,
    pub error_value: u8,
}

impl ConfirmedServiceError {
    pub fn kind_name(&self) -> &'static str {
        match self.error_kind {
            0 => "application-reference",
            1 => "hardware-resource",
            2 => "vde-state-error",
            3 => "service",
            4 => "definition",
            5 => "access",
            6 => "initiate",
            7 => "load-data-set",
            8 => "change-scope",
            9 => "task",
            10 => "other",
            _ => "unknown",
        }
    }

    /// The value's name where it is commonly met (initiate errors).
    pub fn value_name(&self) -> &'static str {
        match (self.error_kind, self.error_value) {
            (6, 0) => "other",
            (6, 1) => "dlms-version-too-low",
            (6, 2) => "incompatible-conformance",
            (6, 3) => "pdu-size-too-short",
            (6, 4) => "refused-by-the-VDE-Handler",
            (5, 2) => "scope-of-access-violated",
            (5, 3) => "object-access-violated",
            (5, 4) => "hardware-fault",
            (5, 5) => "object-unavailable",
            _ => "unknown",
        }
    }
}

impl Codec for ConfirmedServiceError {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            tag::CONFIRMED_SERVICE_ERROR,
            self.service,
            self.error_kind,
            self.error_value,
        ]);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_tag(r, tag::CONFIRMED_SERVICE_ERROR, "confirmed-service-error")?;
        Ok(Self {
            service: r.u8("confirmed-service-error choice")?,
            error_kind: r.u8("service-error choice")?,
            error_value: r.u8("service-error value")?,
        })
    }
}
