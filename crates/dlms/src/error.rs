//! What can end an association, on either side. A meter's refusal of one object (a
//! data-access-result or action-result) is not here: it is a normal answer of the request.

use thiserror::Error;

use crate::acse::{AssociationResult, Diagnostic};
use crate::codec::DecodeError;
use crate::link::LinkError;
use crate::security::SecurityError;
use crate::xdlms::{ConfirmedServiceError, ExceptionResponse};

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("link: {0}")]
    Link(#[from] LinkError),
    #[error("malformed APDU: {0}")]
    Decode(#[from] DecodeError),
    #[error("ciphering: {0}")]
    Security(#[from] SecurityError),
    #[error("association refused: {result:?}, {diagnostic:?}")]
    Rejected {
        result: AssociationResult,
        diagnostic: Diagnostic,
    },
    #[error("authentication failed: the server's HLS proof is wrong or missing")]
    AuthenticationFailed,
    #[error("no answer in time")]
    Timeout,
    #[error("not associated")]
    NotAssociated,
    #[error("a request is already outstanding")]
    Busy,
    #[error("unexpected APDU 0x{0:02X}")]
    UnexpectedApdu(u8),
    #[error("APDU 0x{0:02X} is not protected as the association requires")]
    UnprotectedResponse(u8),
    #[error("exception response: {0:?}")]
    Exception(ExceptionResponse),
    #[error("confirmed service error: {0:?}")]
    ConfirmedServiceError(ConfirmedServiceError),
    #[error("limit exceeded: {0}")]
    LimitExceeded(&'static str),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("configuration: {0}")]
    Config(&'static str),
    #[error("the link was disconnected")]
    Disconnected,
    #[error("aborted")]
    Aborted,
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl Error {
    /// A short machine-readable reason, as printed by `hes read` in its JSON.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Link(LinkError::Refused) => "refused",
            Error::Link(LinkError::TimedOut) => "timeout",
            Error::Link(_) | Error::Disconnected => "link",
            Error::Decode(_) | Error::Protocol(_) | Error::UnexpectedApdu(_) => "protocol",
            Error::Security(_) | Error::UnprotectedResponse(_) => "ciphering-failure",
            Error::Rejected { diagnostic, .. } if diagnostic.is_authentication_failure() => {
                "authentication-failure"
            }
            Error::Rejected { .. } => "association-rejected",
            Error::AuthenticationFailed => "authentication-failure",
            Error::Timeout => "timeout",
            Error::Exception(_) | Error::ConfirmedServiceError(_) => "service-error",
            Error::LimitExceeded(_) => "limit-exceeded",
            Error::NotAssociated | Error::Busy | Error::Config(_) | Error::Internal(_) => "usage",
            Error::Aborted => "aborted",
        }
    }
}
