//! One face over the two link layers a DLMS association runs on: the TCP wrapper (stateless
//! framing) and HDLC (a connection with its own state). The association state machines in
//! [`crate::client`] and [`crate::server`] only see APDUs going in and out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::hdlc::{self, HdlcLink, HdlcParams, LinkEvent, LinkLimits, ServerAddress};
use crate::wrapper;

/// How a client reaches a server, or how a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// IEC 62056-47: the client's wPort is its SAP, the server's its logical device address.
    Wrapper {
        client_wport: u16,
        server_wport: u16,
    },
    /// IEC 62056-46 over a byte stream.
    Hdlc {
        client_sap: u8,
        server: ServerAddress,
        params: HdlcParams,
    },
}

impl TransportConfig {
    pub fn is_hdlc(&self) -> bool {
        matches!(self, Self::Hdlc { .. })
    }
}

/// What broke below the association.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error("wrapper: {0}")]
    Wrapper(#[from] wrapper::WrapperError),
    #[error("HDLC: {0}")]
    Hdlc(#[from] hdlc::HdlcError),
    #[error("the link is not connected")]
    NotConnected,
    #[error("the server refused the HDLC connection (DM)")]
    Refused,
    #[error("the HDLC peer did not answer after every retransmission")]
    TimedOut,
}

/// Events of the link seen by an association.
#[derive(Debug)]
pub(crate) enum LinkUp {
    Connected,
    Apdu(Vec<u8>),
    Disconnected,
}

#[derive(Debug)]
pub(crate) enum Framing {
    Wrapper {
        deframer: wrapper::Deframer,
        local: u16,
        /// For a server: learnt from the first frame.
        remote: Option<u16>,
        out: VecDeque<Vec<u8>>,
        events: VecDeque<LinkUp>,
    },
    Hdlc(Box<HdlcLink>),
}

impl Framing {
    pub(crate) fn client(cfg: &TransportConfig, max_apdu: usize, timeout: Duration) -> Self {
        match cfg {
            TransportConfig::Wrapper {
                client_wport,
                server_wport,
            } => Framing::Wrapper {
                deframer: wrapper::Deframer::new(max_apdu),
                local: *client_wport,
                remote: Some(*server_wport),
                out: VecDeque::new(),
                events: VecDeque::new(),
            },
            TransportConfig::Hdlc {
                client_sap,
                server,
                params,
            } => Framing::Hdlc(Box::new(HdlcLink::client(
                *client_sap,
                *server,
                *params,
                limits(max_apdu, timeout),
            ))),
        }
    }

    pub(crate) fn server(cfg: &TransportConfig, max_apdu: usize, timeout: Duration) -> Self {
        match cfg {
            TransportConfig::Wrapper { server_wport, .. } => Framing::Wrapper {
                deframer: wrapper::Deframer::new(max_apdu),
                local: *server_wport,
                remote: None,
                out: VecDeque::new(),
                events: VecDeque::new(),
            },
            TransportConfig::Hdlc { server, params, .. } => Framing::Hdlc(Box::new(
                HdlcLink::server(*server, *params, limits(max_apdu, timeout)),
            )),
        }
    }

    /// Client: opens the link (SNRM for HDLC; the wrapper is up at once).
    pub(crate) fn connect(&mut self, now: Instant) {
        match self {
            Framing::Wrapper { events, .. } => events.push_back(LinkUp::Connected),
            Framing::Hdlc(link) => link.connect(now),
        }
    }

    pub(crate) fn disconnect(&mut self, now: Instant) {
        match self {
            Framing::Wrapper { events, .. } => events.push_back(LinkUp::Disconnected),
            Framing::Hdlc(link) => link.disconnect(now),
        }
    }

    pub(crate) fn is_hdlc(&self) -> bool {
        matches!(self, Framing::Hdlc(_))
    }

    /// The peer's address: the client SAP as a server sees it.
    pub(crate) fn peer_sap(&self) -> Option<u16> {
        match self {
            Framing::Wrapper { remote, .. } => *remote,
            Framing::Hdlc(link) => link.client_sap().map(u16::from),
        }
    }

    pub(crate) fn send_apdu(&mut self, apdu: &[u8]) -> Result<(), LinkError> {
        match self {
            Framing::Wrapper {
                local, remote, out, ..
            } => {
                let remote = remote.ok_or(LinkError::NotConnected)?;
                let mut frame = Vec::with_capacity(apdu.len() + 8);
                wrapper::encode(*local, remote, apdu, &mut frame)?;
                out.push_back(frame);
                Ok(())
            }
            Framing::Hdlc(link) => Ok(link.send_apdu(apdu)?),
        }
    }

    pub(crate) fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<(), LinkError> {
        match self {
            Framing::Wrapper {
                deframer,
                local,
                remote,
                events,
                ..
            } => {
                deframer.push(bytes);
                while let Some(frame) = deframer.next_frame()? {
                    // Frames for another wPort are not ours: a real meter ignores them too.
                    if frame.destination != *local {
                        continue;
                    }
                    match remote {
                        Some(r) if *r != frame.source => continue,
                        Some(_) => {}
                        None => *remote = Some(frame.source),
                    }
                    events.push_back(LinkUp::Apdu(frame.apdu));
                }
                Ok(())
            }
            Framing::Hdlc(link) => Ok(link.handle_input(bytes, now)?),
        }
    }

    pub(crate) fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> bool {
        match self {
            Framing::Wrapper { out, .. } => match out.pop_front() {
                Some(frame) => {
                    buf.extend_from_slice(&frame);
                    true
                }
                None => false,
            },
            Framing::Hdlc(link) => link.poll_transmit(buf),
        }
    }

    /// The next link event; `Err` when the server refused the link.
    pub(crate) fn poll_event(&mut self) -> Option<Result<LinkUp, LinkError>> {
        match self {
            Framing::Wrapper { events, .. } => events.pop_front().map(Ok),
            Framing::Hdlc(link) => link.poll_event().map(|e| match e {
                LinkEvent::Connected(_) => Ok(LinkUp::Connected),
                LinkEvent::Apdu(a) => Ok(LinkUp::Apdu(a)),
                LinkEvent::Disconnected => Ok(LinkUp::Disconnected),
                LinkEvent::Rejected => Err(LinkError::Refused),
                LinkEvent::TimedOut => Err(LinkError::TimedOut),
                // A link event added later ends the association rather than going unseen.
                #[allow(unreachable_patterns)]
                _ => Err(LinkError::TimedOut),
            }),
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Framing::Wrapper { .. } => None,
            Framing::Hdlc(link) => link.poll_timeout(),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Framing::Hdlc(link) = self {
            link.handle_timeout(now);
        }
    }
}

/// The earlier of an association's deadline and its link's.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn limits(max_apdu: usize, timeout: Duration) -> LinkLimits {
    LinkLimits {
        max_apdu,
        response_timeout: timeout,
        max_retries: 3,
    }
}
