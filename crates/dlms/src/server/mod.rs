//! The server (meter) side of DLMS/COSEM associations, sans-I/O. One [`Server`] serves one
//! connection; the objects it exposes are behind the [`Objects`] trait, called synchronously from
//! `handle_input`, so one meter model can serve many connections.

mod associate;
mod blocks;
mod services;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::acse::{Aare, AcseApdu, AcseServiceUser, AssociationResult, Diagnostic, Rlre};
use crate::axdr::Data;
use crate::codec::Codec;
use crate::error::Error;
use crate::link::{Framing, LinkUp, TransportConfig};
use crate::obis::ObisCode;
use crate::security::{self, CipherKeys, EccConfig, SecurityContext};
use crate::types::{
    ApplicationContext, AttributeDescriptor, Authentication, Mechanism, MethodDescriptor,
    SecurityLevel, SystemTitle,
};
use crate::xdlms::{
    self, ActionRequest, ActionResponse, ActionResult, Apdu, Conformance, DataAccessResult,
    ExceptionResponse, GetDataResult, GetRequest, GetResponse, InitiateResponse,
    InvokeIdAndPriority, SelectiveAccess, SetRequest, SetResponse,
};

use blocks::{Inbound, Outbound};

/// How one client SAP must authenticate, and what protection its APDUs need.
#[derive(Clone)]
pub struct ClientPolicy {
    pub sap: u16,
    pub authentication: Authentication,
    pub security: SecurityLevel,
}

impl std::fmt::Debug for ClientPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPolicy")
            .field("sap", &self.sap)
            .field("mechanism", &self.authentication.mechanism())
            .field("security", &self.security)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub transport: TransportConfig,
    pub system_title: SystemTitle,
    pub keys: CipherKeys,
    pub clients: Vec<ClientPolicy>,
    pub max_receive_pdu: u16,
    pub conformance: Conformance,
    /// The largest APDU (after reassembly) accepted from a client.
    pub max_request_bytes: usize,
    /// An association with no traffic for this long is closed.
    pub inactivity_timeout: Duration,
}

/// Who is asking, for access rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext {
    pub client_sap: u16,
    pub mechanism: Mechanism,
    pub security: SecurityLevel,
}

/// Invocation counters that outlive one association.
#[derive(Debug, Clone, Default)]
pub struct CounterState {
    /// The next invocation counter the server uses when it ciphers.
    pub tx: u32,
    /// The last counter received from each client SAP.
    pub rx_last: BTreeMap<u16, u32>,
}

/// The meter behind a server: its objects, counters and randomness.
pub trait Objects {
    fn get(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult>;

    fn set(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
        value: Data,
    ) -> DataAccessResult;

    fn action(
        &mut self,
        ctx: &RequestContext,
        method: &MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult>;

    fn counters(&mut self) -> &mut CounterState;

    /// A ciphered APDU from `client_sap` was refused because its invocation counter `received`
    /// was not above `last`, the last one accepted from that client: a replay (or a client
    /// that lost its counter). Told apart from other refusals so a meter can count them.
    fn counter_replayed(&mut self, _client_sap: u16, _received: u32, _last: u32) {}

    /// Random bytes for the HLS server challenge.
    fn fill_random(&mut self, buf: &mut [u8]);

    /// The meter's clock, seconds since the Unix epoch: certificates are checked against it.
    /// `None` (no clock) refuses certificates that need checking.
    fn unix_time(&mut self) -> Option<u64> {
        None
    }
}

#[derive(Debug)]
pub enum ServerEvent {
    Associated(RequestContext),
    Released,
    /// The connection should be closed; `Some` when it ended in an error.
    Closed(Option<Error>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    AwaitHlsReply,
    Associated,
    Closed,
}

/// Everything one association agreed.
#[derive(Debug)]
struct Assoc {
    ctx: RequestContext,
    policy: ClientPolicy,
    conformance: Conformance,
    client_max_pdu: usize,
    security: Option<SecurityContext>,
    ctos: Vec<u8>,
    stoc: Vec<u8>,
    /// HLS-ECDSA: the client's public signing key from the certificate in its AARQ, once
    /// that verified; otherwise the configured one is used.
    client_key: Option<security::EcPublicKey>,
}

pub const CURRENT_ASSOCIATION: ObisCode = ObisCode::new(0, 0, 40, 0, 0, 255);

/// One connection's server state machine.
#[derive(Debug)]
pub struct Server {
    cfg: ServerConfig,
    link: Framing,
    state: State,
    assoc: Option<Assoc>,
    outbound: Option<Outbound>,
    inbound: Option<Inbound>,
    events: VecDeque<ServerEvent>,
    deadline: Option<Instant>,
    /// Suites 1 and 2 (see [`Server::set_ecc`]); `None` is suite 0.
    ecc: Option<EccConfig>,
}

impl Server {
    pub fn new(cfg: ServerConfig, now: Instant) -> Self {
        let link = Framing::server(
            &cfg.transport,
            cfg.max_request_bytes,
            cfg.inactivity_timeout,
        );
        let deadline = Some(now + cfg.inactivity_timeout);
        Self {
            cfg,
            link,
            state: State::Idle,
            assoc: None,
            outbound: None,
            inbound: None,
            events: VecDeque::new(),
            deadline,
            ecc: None,
        }
    }

    /// Serves suite 1 or 2 (the curve of the signing key says which): ciphering at that
    /// suite and HLS-ECDSA for the clients whose policy asks for it.
    pub fn set_ecc(&mut self, ecc: EccConfig) {
        self.ecc = Some(ecc);
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True while a long answer is part-way through its blocks (more remain to be sent).
    pub fn is_sending_blocks(&self) -> bool {
        self.outbound.as_ref().is_some_and(Outbound::has_more)
    }

    /// The client SAP of the current association.
    pub fn client_sap(&self) -> Option<u16> {
        self.assoc.as_ref().map(|a| a.ctx.client_sap)
    }

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant, objects: &mut dyn Objects) {
        if self.state == State::Closed {
            return;
        }
        self.deadline = Some(now + self.cfg.inactivity_timeout);
        if let Err(e) = self.link.handle_input(bytes, now) {
            self.close(Some(e.into()));
            return;
        }
        while let Some(ev) = self.link.poll_event() {
            let r = match ev {
                Err(e) => Err(Error::from(e)),
                Ok(LinkUp::Connected) => Ok(()),
                Ok(LinkUp::Disconnected) => {
                    self.assoc = None;
                    self.close(None);
                    Ok(())
                }
                Ok(LinkUp::Apdu(apdu)) => self.on_apdu(apdu, objects),
            };
            if let Err(e) = r {
                self.close(Some(e));
            }
            if self.state == State::Closed {
                return;
            }
        }
    }

    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        self.link.poll_transmit(out)
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        crate::link::earliest(self.deadline, self.link.poll_timeout())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
        if self.deadline.is_some_and(|d| now >= d) {
            self.close(Some(Error::Timeout));
        }
    }

    fn close(&mut self, err: Option<Error>) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.deadline = None;
            self.events.push_back(ServerEvent::Closed(err));
        }
    }

    fn send(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        self.link.send_apdu(&bytes).map_err(Error::from)
    }

    fn on_apdu(&mut self, apdu: Vec<u8>, objects: &mut dyn Objects) -> Result<(), Error> {
        match apdu.first().copied() {
            Some(xdlms::tag::AARQ) => self.on_aarq(&apdu, objects),
            Some(xdlms::tag::RLRQ) => {
                let rlre = AcseApdu::Rlre(Rlre {
                    reason: Some(0),
                    user_information: None,
                });
                self.assoc = None;
                self.outbound = None;
                self.inbound = None;
                self.state = State::Idle;
                self.events.push_back(ServerEvent::Released);
                self.send(rlre.to_bytes())
            }
            Some(_) => self.on_xdlms(apdu, objects),
            None => Ok(()),
        }
    }

    fn policy(&self, sap: u16) -> Option<ClientPolicy> {
        self.cfg.clients.iter().find(|p| p.sap == sap).cloned()
    }

    /// Copies the association's counters back to the meter, so they survive it.
    fn sync_counters(&mut self, objects: &mut dyn Objects) {
        if let Some(a) = &self.assoc {
            if let Some(s) = &a.security {
                let c = objects.counters();
                c.tx = c.tx.max(s.next_tx_invocation_counter());
                if let Some(last) = s.last_rx_invocation_counter() {
                    let e = c.rx_last.entry(a.ctx.client_sap).or_insert(last);
                    *e = (*e).max(last);
                }
            }
        }
    }

    fn exception(&mut self, state_error: u8, service_error: u8) -> Result<(), Error> {
        let e = ExceptionResponse {
            state_error,
            service_error,
            invocation_counter: None,
        };
        self.send(Apdu::ExceptionResponse(e).to_bytes())
    }

    fn on_xdlms(&mut self, apdu: Vec<u8>, objects: &mut dyn Objects) -> Result<(), Error> {
        let tag = apdu.first().copied().unwrap_or_default();
        let Some(assoc) = self.assoc.as_mut() else {
            // service-not-allowed / service-not-supported: nothing is associated.
            return self.exception(1, 2);
        };
        if apdu.len() > usize::from(self.cfg.max_receive_pdu) {
            // pdu-too-long: the client must cut its request into blocks.
            return self.exception(1, 4);
        }
        let mut dedicated = false;
        // The answer is protected the way the request was: general-glo/-ded for general.
        let general = matches!(
            tag,
            xdlms::tag::GENERAL_GLO_CIPHERING | xdlms::tag::GENERAL_DED_CIPHERING
        );
        let plain = match &mut assoc.security {
            Some(ctx) if security::is_ciphered(tag) => match ctx.unprotect(&apdu) {
                Ok(u) => {
                    dedicated = u.dedicated;
                    u.apdu
                }
                Err(security::SecurityError::Replay { received, last }) => {
                    objects.counter_replayed(assoc.ctx.client_sap, received, last);
                    // invocation-counter-error, with the counter the client should exceed.
                    let last = ctx.last_rx_invocation_counter();
                    let e = ExceptionResponse {
                        state_error: 1,
                        service_error: 6,
                        invocation_counter: last,
                    };
                    return self.send(Apdu::ExceptionResponse(e).to_bytes());
                }
                Err(_) => return self.exception(1, 5), // deciphering-error
            },
            Some(ctx) if ctx.level != SecurityLevel::None => return self.exception(1, 5),
            _ if security::is_ciphered(tag) => return self.exception(1, 5),
            _ => apdu,
        };
        self.sync_counters(objects);
        let request = match Apdu::decode_exact(&plain) {
            Ok(r) => r,
            Err(_) => return self.exception(2, 2),
        };
        let reply = self.serve(request, objects)?;
        let Some(reply) = reply else { return Ok(()) };
        let reply = match self.assoc.as_mut().and_then(|a| a.security.as_mut()) {
            Some(ctx) if ctx.level != SecurityLevel::None => match (general, dedicated) {
                (true, false) => ctx.protect_general_glo(&reply)?,
                (true, true) => ctx.protect_general_ded(&reply)?,
                (false, _) => ctx.protect(&reply, dedicated)?,
            },
            _ => reply,
        };
        self.sync_counters(objects);
        self.send(reply)
    }
}
