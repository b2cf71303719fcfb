//! The client (head-end) side of a DLMS/COSEM association, sans-I/O in quinn-proto's style:
//! bytes and the current time go in; bytes, a deadline and events come out.
//!
//! One confirmed request is outstanding at a time, as meters expect. Long answers (GET with
//! data blocks, ACTION with parameter blocks, general-block-transfer) are reassembled here under
//! the limits of [`Limits`]; long SET values and ACTION parameters are sent in blocks when they do
//! not fit the server's PDU.

mod request;

pub use crate::error::Error;
pub use crate::types::Authentication;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::acse::{Aarq, AcseApdu, AssociationResult, Rlrq};
use crate::axdr::Data;
use crate::codec::Codec;
use crate::link::{Framing, LinkUp, TransportConfig};
use crate::obis::ObisCode;
use crate::security::{self, CipherKeys, EcPublicKey, EccConfig, SecurityContext};
use crate::types::{ApplicationContext, AttributeDescriptor, Mechanism, MethodDescriptor};
use crate::types::{SecurityLevel, SystemTitle};
use crate::xdlms::{
    self, ActionResult, Apdu, Conformance, DataAccessResult, GetDataResult, InitiateRequest,
    InitiateResponse, InvokeIdAndPriority, SelectiveAccess,
};

use request::Pending;

/// The logical name of the current association object, whose method 1 carries HLS pass 3/4.
pub const CURRENT_ASSOCIATION: ObisCode = ObisCode::new(0, 0, 40, 0, 0, 255);

/// Ciphering of the association (security suite 0).
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    pub level: SecurityLevel,
    pub keys: CipherKeys,
    pub system_title: SystemTitle,
    /// The first invocation counter to use; continue from the meter's record to avoid replays.
    pub invocation_counter: u32,
    /// Proposed in the initiate request; then used for `ded-` ciphering.
    pub dedicated_key: Option<[u8; 16]>,
}

/// Bounds on what a server may make us hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_blocks: u32,
    pub max_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_blocks: 10_000,
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub transport: TransportConfig,
    pub authentication: Authentication,
    pub security: Option<ClientSecurity>,
    /// Our client-max-receive-pdu-size.
    pub max_receive_pdu: u16,
    pub conformance: Conformance,
    pub limits: Limits,
    pub response_timeout: Duration,
    /// The client-to-server challenge (CtoS) for HLS: random bytes the caller draws (8 to 64;
    /// 32 to 64 for HLS-ECDSA).
    pub challenge: Vec<u8>,
    /// Suites 1 and 2: our signing key and certificate, the meter's public key, suite 2's
    /// keys. `None` is suite 0.
    pub ecc: Option<EccConfig>,
}

impl ClientConfig {
    /// A public (no security) client over the wrapper, with common defaults.
    pub fn new(transport: TransportConfig) -> Self {
        Self {
            transport,
            authentication: Authentication::None,
            security: None,
            max_receive_pdu: 0xFFFF,
            conformance: Conformance::DEFAULT_CLIENT,
            limits: Limits::default(),
            response_timeout: Duration::from_secs(10),
            challenge: Vec::new(),
            ecc: None,
        }
    }
}

/// What the association agreed.
#[derive(Debug, Clone)]
pub struct AssociationInfo {
    pub conformance: Conformance,
    pub server_max_receive_pdu: u16,
    pub server_system_title: Option<SystemTitle>,
    pub dlms_version: u8,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Get(Vec<GetDataResult>),
    Set(Vec<DataAccessResult>),
    Action(Vec<(ActionResult, Option<GetDataResult>)>),
}

#[derive(Debug)]
pub enum Event {
    Associated(AssociationInfo),
    Response(Response),
    /// An unsolicited data-notification or event-notification (plain APDU bytes, unprotected).
    Notification(Apdu),
    Released,
    /// The association is over; `Some` when it ended in an error.
    Closed(Option<Error>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    LinkConnecting,
    AwaitAare,
    AwaitHlsReply,
    Associated,
    Releasing,
    Disconnecting,
    Closed,
}

/// A DLMS client association.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    link: Framing,
    state: State,
    security: Option<SecurityContext>,
    info: Option<AssociationInfo>,
    /// The server's challenge (StoC), kept between AARE and the HLS reply.
    stoc: Vec<u8>,
    pending: Option<Pending>,
    deadline: Option<Instant>,
    invoke_id: u8,
    events: VecDeque<Event>,
    gbt: request::GbtAssembly,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Self {
        let max_apdu = cfg.limits.max_response_bytes.min(usize::from(u16::MAX) * 2);
        let link = Framing::client(&cfg.transport, max_apdu.max(0x1_0000), cfg.response_timeout);
        // A suite 2 configuration without its 256-bit keys gets no context here and is
        // refused when the AARQ is built.
        let security = cfg.security.as_ref().and_then(|s| {
            let mut ctx = match &cfg.ecc {
                None => SecurityContext::new(
                    s.level,
                    s.system_title,
                    s.keys.clone(),
                    s.invocation_counter,
                ),
                Some(ecc) => ecc
                    .context(
                        s.level,
                        s.system_title,
                        s.keys.clone(),
                        s.invocation_counter,
                    )
                    .ok()?,
            };
            ctx.dedicated_key = s.dedicated_key;
            Some(ctx)
        });
        Self {
            cfg,
            link,
            state: State::Idle,
            security,
            info: None,
            stoc: Vec::new(),
            pending: None,
            deadline: None,
            invoke_id: 0,
            events: VecDeque::new(),
            gbt: request::GbtAssembly::default(),
        }
    }

    /// Starts the association: the link, then the AARQ.
    pub fn connect(&mut self, now: Instant) {
        if self.state != State::Idle {
            return;
        }
        self.state = State::LinkConnecting;
        self.deadline = Some(now + self.cfg.response_timeout);
        self.link.connect(now);
        self.drive(now);
    }

    pub fn is_associated(&self) -> bool {
        self.state == State::Associated
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn association(&self) -> Option<&AssociationInfo> {
        self.info.as_ref()
    }

    /// The next invocation counter this client will use (to persist between sessions).
    pub fn next_invocation_counter(&self) -> Option<u32> {
        self.security
            .as_ref()
            .map(SecurityContext::next_tx_invocation_counter)
    }

    /// Whether a request is outstanding.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// GET one attribute, optionally with selective access.
    pub fn get(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        now: Instant,
    ) -> Result<(), Error> {
        let invoke = self.begin()?;
        let req = xdlms::GetRequest::Normal {
            invoke,
            attribute,
            access,
        };
        self.send_request(Apdu::GetRequest(req), Pending::get(1), now)
    }

    /// GET several attributes in one request (needs the multiple-references conformance bit).
    pub fn get_list(
        &mut self,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
        now: Instant,
    ) -> Result<(), Error> {
        let invoke = self.begin()?;
        let n = items.len();
        let req = xdlms::GetRequest::WithList { invoke, items };
        self.send_request(Apdu::GetRequest(req), Pending::get_list(n), now)
    }

    /// SET one attribute; sent in blocks when it does not fit the server's PDU.
    pub fn set(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        value: Data,
        now: Instant,
    ) -> Result<(), Error> {
        let invoke = self.begin()?;
        let req = xdlms::SetRequest::Normal {
            invoke,
            attribute,
            access: access.clone(),
            value: value.clone(),
        };
        let apdu = Apdu::SetRequest(req).to_bytes();
        if apdu.len() <= self.block_budget() {
            return self.send_encoded(apdu, Pending::set(), now);
        }
        let raw = value.to_bytes();
        let mut pending = Pending::set_blocks(raw, self.block_budget());
        let block = pending
            .next_out_block(1)
            .ok_or(Error::Internal("no first block"))?;
        let first = xdlms::SetRequest::WithFirstDataBlock {
            invoke,
            attribute,
            access,
            block,
        };
        self.send_encoded(Apdu::SetRequest(first).to_bytes(), pending, now)
    }

    /// ACTION on a method; parameters go in blocks when they do not fit.
    pub fn action(
        &mut self,
        method: MethodDescriptor,
        parameters: Option<Data>,
        now: Instant,
    ) -> Result<(), Error> {
        let invoke = self.begin()?;
        let req = xdlms::ActionRequest::Normal {
            invoke,
            method,
            parameters: parameters.clone(),
        };
        let apdu = Apdu::ActionRequest(req).to_bytes();
        if apdu.len() <= self.block_budget() {
            return self.send_encoded(apdu, Pending::action(), now);
        }
        let raw = parameters.map(|p| p.to_bytes()).unwrap_or_default();
        let mut pending = Pending::action_blocks(raw, self.block_budget());
        let block = pending
            .next_out_block(1)
            .ok_or(Error::Internal("no first block"))?;
        let first = xdlms::ActionRequest::WithFirstPBlock {
            invoke,
            method,
            block,
        };
        self.send_encoded(Apdu::ActionRequest(first).to_bytes(), pending, now)
    }

    /// Releases the association (RLRQ, then the link's disconnect).
    pub fn release(&mut self, now: Instant) {
        match self.state {
            State::Associated => {
                let rlrq = AcseApdu::Rlrq(Rlrq {
                    reason: Some(0),
                    user_information: None,
                });
                if self.send_raw(rlrq.to_bytes()).is_ok() {
                    self.state = State::Releasing;
                    self.deadline = Some(now + self.cfg.response_timeout);
                } else {
                    self.close(None);
                }
            }
            State::Closed | State::Releasing | State::Disconnecting => {}
            _ => self.abort(now),
        }
        self.drive(now);
    }

    /// Ends at once: HDLC gets a DISC, the wrapper simply stops.
    pub fn abort(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.link.is_hdlc() && self.state != State::Disconnecting {
            self.link.disconnect(now);
        }
        self.close(Some(Error::Aborted));
    }

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if let Err(e) = self.link.handle_input(bytes, now) {
            self.fail(now, e.into());
            return;
        }
        self.drive(now);
    }

    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        self.link.poll_transmit(out)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        crate::link::earliest(self.deadline, self.link.poll_timeout())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            if self.state == State::Disconnecting || self.state == State::Releasing {
                // The server did not answer the release: we are done anyway.
                self.close(None);
            } else {
                self.fail(now, Error::Timeout);
            }
        }
        self.drive(now);
    }

    fn begin(&mut self) -> Result<InvokeIdAndPriority, Error> {
        if self.state != State::Associated {
            return Err(Error::NotAssociated);
        }
        if self.pending.is_some() {
            return Err(Error::Busy);
        }
        self.invoke_id = (self.invoke_id + 1) & 0x0F;
        Ok(InvokeIdAndPriority::new(self.invoke_id, true, true))
    }

    /// The largest plain APDU we send unsegmented at the xDLMS level: the server's PDU size
    /// less room for the ciphering header and tag.
    fn block_budget(&self) -> usize {
        let pdu = self
            .info
            .as_ref()
            .map_or(0xFFFF, |i| i.server_max_receive_pdu);
        let pdu = if pdu == 0 { 0xFFFF } else { usize::from(pdu) };
        let overhead = if self.security.is_some() { 24 } else { 0 };
        pdu.saturating_sub(overhead).max(32)
    }

    fn send_request(&mut self, apdu: Apdu, pending: Pending, now: Instant) -> Result<(), Error> {
        self.send_encoded(apdu.to_bytes(), pending, now)
    }

    fn send_encoded(&mut self, apdu: Vec<u8>, pending: Pending, now: Instant) -> Result<(), Error> {
        self.send_xdlms(apdu)?;
        self.pending = Some(pending);
        self.deadline = Some(now + self.cfg.response_timeout);
        Ok(())
    }

    /// Sends an xDLMS APDU, ciphered when the association is.
    fn send_xdlms(&mut self, apdu: Vec<u8>) -> Result<(), Error> {
        let bytes = match &mut self.security {
            Some(ctx) if ctx.level != SecurityLevel::None => {
                let dedicated = ctx.dedicated_key.is_some();
                ctx.protect(&apdu, dedicated)?
            }
            _ => apdu,
        };
        self.send_raw(bytes)
    }

    fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        self.link.send_apdu(&bytes).map_err(Error::from)
    }

    fn close(&mut self, err: Option<Error>) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.deadline = None;
        self.pending = None;
        self.events.push_back(Event::Closed(err));
    }

    fn fail(&mut self, now: Instant, err: Error) {
        if self.link.is_hdlc() && !matches!(self.state, State::Closed | State::Disconnecting) {
            self.link.disconnect(now);
        }
        self.close(Some(err));
    }

    /// Processes what the link has delivered.
    fn drive(&mut self, now: Instant) {
        while let Some(ev) = self.link.poll_event() {
            if self.state == State::Closed {
                return;
            }
            let result = match ev {
                Err(e) => Err(Error::from(e)),
                Ok(LinkUp::Connected) => self.on_link_connected(now),
                Ok(LinkUp::Apdu(apdu)) => self.on_apdu(apdu, now),
                Ok(LinkUp::Disconnected) => {
                    let err = match self.state {
                        State::Disconnecting | State::Releasing => None,
                        _ => Some(Error::Disconnected),
                    };
                    if self.state == State::Releasing {
                        self.events.push_back(Event::Released);
                    }
                    self.close(err);
                    Ok(())
                }
            };
            if let Err(e) = result {
                self.fail(now, e);
            }
        }
    }

    fn on_link_connected(&mut self, now: Instant) -> Result<(), Error> {
        if self.state != State::LinkConnecting {
            return Ok(());
        }
        let aarq = self.build_aarq()?;
        self.send_raw(AcseApdu::Aarq(aarq).to_bytes())?;
        self.state = State::AwaitAare;
        self.deadline = Some(now + self.cfg.response_timeout);
        Ok(())
    }

    fn build_aarq(&mut self) -> Result<Aarq, Error> {
        let initiate = InitiateRequest {
            dedicated_key: self
                .security
                .as_ref()
                .and_then(|s| s.dedicated_key.map(|k| k.to_vec())),
            response_allowed: true,
            proposed_quality_of_service: None,
            proposed_dlms_version: 6,
            proposed_conformance: self.cfg.conformance,
            client_max_receive_pdu_size: self.cfg.max_receive_pdu,
        };
        let initiate = Apdu::InitiateRequest(initiate).to_bytes();
        let ciphered = self
            .security
            .as_ref()
            .is_some_and(|s| s.level != SecurityLevel::None);
        let user_information = match &mut self.security {
            Some(ctx) if ciphered => ctx.protect(&initiate, false)?,
            _ => initiate,
        };
        let mechanism = self.cfg.authentication.mechanism();
        let calling_authentication_value = match &self.cfg.authentication {
            Authentication::None => None,
            Authentication::Low { password } => Some(password.clone()),
            Authentication::High { .. } | Authentication::HighGmac => {
                if self.cfg.challenge.len() < 8 || self.cfg.challenge.len() > 64 {
                    return Err(Error::Config("the HLS challenge must be 8 to 64 bytes"));
                }
                Some(self.cfg.challenge.clone())
            }
            Authentication::HighEcdsa => {
                if self.cfg.ecc.is_none() {
                    return Err(Error::Config("HLS-ECDSA needs a signing key"));
                }
                // Green Book: an HLS-ECDSA challenge is 32 to 64 bytes.
                if self.cfg.challenge.len() < 32 || self.cfg.challenge.len() > 64 {
                    return Err(Error::Config(
                        "the HLS-ECDSA challenge must be 32 to 64 bytes",
                    ));
                }
                Some(self.cfg.challenge.clone())
            }
        };
        if self.cfg.security.is_some() && self.security.is_none() {
            return Err(Error::Config("suite 2 ciphering needs 256-bit keys"));
        }
        let needs_title = ciphered
            || matches!(
                mechanism,
                Mechanism::HighGmac | Mechanism::HighSha256 | Mechanism::HighEcdsa
            );
        Ok(Aarq {
            application_context: if ciphered {
                ApplicationContext::LogicalNameCiphered
            } else {
                ApplicationContext::LogicalName
            },
            calling_ap_title: if needs_title {
                Some(self.own_system_title()?.0.to_vec())
            } else {
                None
            },
            calling_ae_qualifier: match (&self.cfg.authentication, &self.cfg.ecc) {
                (Authentication::HighEcdsa, Some(ecc)) => ecc.certificate.clone(),
                _ => None,
            },
            sender_acse_requirements: mechanism != Mechanism::None,
            mechanism: (mechanism != Mechanism::None).then_some(mechanism),
            calling_authentication_value,
            user_information: Some(user_information),
        })
    }

    fn own_system_title(&self) -> Result<SystemTitle, Error> {
        self.cfg
            .security
            .as_ref()
            .map(|s| s.system_title)
            .ok_or(Error::Config(
                "this mechanism needs a client system title and keys",
            ))
    }

    fn on_apdu(&mut self, apdu: Vec<u8>, now: Instant) -> Result<(), Error> {
        let Some(&first) = apdu.first() else {
            return Err(Error::Decode(crate::codec::DecodeError::Truncated {
                what: "APDU",
                needed: 1,
            }));
        };
        match first {
            xdlms::tag::AARE => self.on_aare(&apdu, now),
            xdlms::tag::RLRE => {
                if self.state == State::Releasing {
                    self.events.push_back(Event::Released);
                    if self.link.is_hdlc() {
                        self.state = State::Disconnecting;
                        self.deadline = Some(now + self.cfg.response_timeout);
                        self.link.disconnect(now);
                    } else {
                        self.close(None);
                    }
                }
                Ok(())
            }
            _ => {
                let plain = self.unprotect(apdu)?;
                self.on_xdlms(plain, now)
            }
        }
    }

    /// Removes ciphering, and refuses plain answers where the association is ciphered.
    fn unprotect(&mut self, apdu: Vec<u8>) -> Result<Vec<u8>, Error> {
        let tag = apdu.first().copied().unwrap_or_default();
        match &mut self.security {
            Some(ctx) if security::is_ciphered(tag) => Ok(ctx.unprotect(&apdu)?.apdu),
            Some(ctx)
                if ctx.level != SecurityLevel::None
                    && !matches!(tag, xdlms::tag::EXCEPTION_RESPONSE) =>
            {
                Err(Error::UnprotectedResponse(tag))
            }
            _ if security::is_ciphered(tag) => Err(Error::UnprotectedResponse(tag)),
            _ => Ok(apdu),
        }
    }

    fn on_aare(&mut self, bytes: &[u8], now: Instant) -> Result<(), Error> {
        if self.state != State::AwaitAare {
            return Err(Error::UnexpectedApdu(xdlms::tag::AARE));
        }
        let AcseApdu::Aare(aare) = AcseApdu::decode_exact(bytes)? else {
            return Err(Error::UnexpectedApdu(xdlms::tag::AARE));
        };
        if aare.result != AssociationResult::Accepted {
            // The user-information may hold an initiate error; the diagnostic says the rest.
            return Err(Error::Rejected {
                result: aare.result,
                diagnostic: aare.diagnostic,
            });
        }
        let server_title = aare
            .responding_ap_title
            .as_deref()
            .and_then(SystemTitle::from_slice);
        if let Some(ctx) = &mut self.security {
            ctx.peer_system_title = server_title;
        }
        let ui = aare
            .user_information
            .ok_or(Error::Protocol("AARE without user-information"))?;
        let ui = self.unprotect(ui)?;
        let resp = match Apdu::decode_exact(&ui)? {
            Apdu::InitiateResponse(r) => r,
            Apdu::ConfirmedServiceError(e) => return Err(Error::ConfirmedServiceError(e)),
            _ => {
                return Err(Error::Protocol(
                    "AARE user-information is not an initiate response",
                ))
            }
        };
        self.info = Some(info_of(&resp, server_title));
        if self.cfg.authentication.mechanism().is_hls() {
            self.stoc = aare
                .responding_authentication_value
                .ok_or(Error::Protocol("HLS AARE without a server challenge"))?;
            let reply = self.hls_reply()?;
            self.state = State::Associated; // begin() needs it; restored below if it fails
            let invoke = self.begin()?;
            let method = MethodDescriptor::new(15, CURRENT_ASSOCIATION, 1);
            let req = xdlms::ActionRequest::Normal {
                invoke,
                method,
                parameters: Some(Data::OctetString(reply)),
            };
            self.send_request(Apdu::ActionRequest(req), Pending::hls(), now)?;
            self.state = State::AwaitHlsReply;
        } else {
            self.state = State::Associated;
            self.deadline = None;
            if let Some(info) = self.info.clone() {
                self.events.push_back(Event::Associated(info));
            }
        }
        Ok(())
    }

    /// f(StoC), our answer to the server's challenge.
    fn hls_reply(&mut self) -> Result<Vec<u8>, Error> {
        match &self.cfg.authentication {
            Authentication::High {
                mechanism: Mechanism::HighMd5,
                secret,
            } => Ok(security::hls_md5(&self.stoc, secret).to_vec()),
            Authentication::High {
                mechanism: Mechanism::HighSha1,
                secret,
            } => Ok(security::hls_sha1(&self.stoc, secret).to_vec()),
            Authentication::High {
                mechanism: Mechanism::HighSha256,
                secret,
            } => {
                let own = self.own_system_title()?;
                let peer = self.peer_title()?;
                Ok(
                    security::hls_sha256(secret, &own, &peer, &self.stoc, &self.cfg.challenge)
                        .to_vec(),
                )
            }
            Authentication::HighGmac => {
                let ctx = self
                    .security
                    .as_mut()
                    .ok_or(Error::Config("HLS-GMAC needs keys"))?;
                let ic = ctx.take_tx_invocation_counter()?;
                Ok(security::hls_gmac(
                    &ctx.own_system_title,
                    ic,
                    &ctx.global,
                    &self.stoc,
                ))
            }
            Authentication::HighEcdsa => {
                let own = self.own_system_title()?;
                let peer = self.peer_title()?;
                let ecc = self
                    .cfg
                    .ecc
                    .as_ref()
                    .ok_or(Error::Config("HLS-ECDSA needs a signing key"))?;
                Ok(security::hls_ecdsa(
                    &ecc.signing_key,
                    &own,
                    &peer,
                    &self.stoc,
                    &self.cfg.challenge,
                ))
            }
            _ => Err(Error::Config("unsupported HLS mechanism")),
        }
    }

    /// The meter's public signing key: configured, from its certificate.
    fn peer_signing_key(&self) -> Result<&EcPublicKey, Error> {
        let ecc = self
            .cfg
            .ecc
            .as_ref()
            .ok_or(Error::Config("HLS-ECDSA needs a signing key"))?;
        let key = ecc.peer_signing_key.as_ref().ok_or(Error::Config(
            "HLS-ECDSA needs the meter's public signing key",
        ))?;
        if key.suite() != ecc.suite() {
            return Err(security::SecurityError::CurveMismatch.into());
        }
        Ok(key)
    }

    fn peer_title(&self) -> Result<SystemTitle, Error> {
        self.info
            .as_ref()
            .and_then(|i| i.server_system_title)
            .ok_or(Error::Protocol("the server sent no system title"))
    }

    /// Checks f(CtoS), the server's proof.
    fn verify_hls(&mut self, proof: &[u8]) -> Result<(), Error> {
        let ok = match &self.cfg.authentication {
            Authentication::High {
                mechanism: Mechanism::HighMd5,
                secret,
            } => security::hls_md5(&self.cfg.challenge, secret).as_slice() == proof,
            Authentication::High {
                mechanism: Mechanism::HighSha1,
                secret,
            } => security::hls_sha1(&self.cfg.challenge, secret).as_slice() == proof,
            Authentication::High {
                mechanism: Mechanism::HighSha256,
                secret,
            } => {
                let own = self.own_system_title()?;
                let peer = self.peer_title()?;
                security::hls_sha256(secret, &peer, &own, &self.cfg.challenge, &self.stoc)
                    .as_slice()
                    == proof
            }
            Authentication::HighGmac => {
                let peer = self.peer_title()?;
                let ctx = self
                    .security
                    .as_ref()
                    .ok_or(Error::Config("HLS-GMAC needs keys"))?;
                security::verify_hls_gmac(&peer, &ctx.global, &self.cfg.challenge, proof).is_ok()
            }
            Authentication::HighEcdsa => {
                let own = self.own_system_title()?;
                let peer = self.peer_title()?;
                // A signature that does not verify is told apart from a wrong digest: it
                // ends the association as a security failure.
                security::verify_hls_ecdsa(
                    self.peer_signing_key()?,
                    &peer,
                    &own,
                    &self.cfg.challenge,
                    &self.stoc,
                    proof,
                )?;
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::AuthenticationFailed)
        }
    }

    fn on_xdlms(&mut self, plain: Vec<u8>, now: Instant) -> Result<(), Error> {
        let apdu = Apdu::decode_exact(&plain)?;
        match apdu {
            Apdu::DataNotification(_) | Apdu::EventNotificationRequest(_) => {
                self.events.push_back(Event::Notification(apdu));
                Ok(())
            }
            Apdu::GeneralBlockTransfer(gbt) => {
                let ack = self.gbt.push(gbt, &self.cfg.limits)?;
                match ack {
                    request::GbtStep::Ack(block) => {
                        let bytes = Apdu::GeneralBlockTransfer(block).to_bytes();
                        self.send_raw(bytes)?;
                        self.deadline = Some(now + self.cfg.response_timeout);
                        Ok(())
                    }
                    request::GbtStep::Complete(inner) => {
                        let inner = self.unprotect(inner)?;
                        self.on_xdlms(inner, now)
                    }
                }
            }
            Apdu::ExceptionResponse(e) => {
                self.pending = None;
                Err(Error::Exception(e))
            }
            Apdu::ConfirmedServiceError(e) => {
                self.pending = None;
                Err(Error::ConfirmedServiceError(e))
            }
            other => self.on_response(other, now),
        }
    }

    fn on_response(&mut self, apdu: Apdu, now: Instant) -> Result<(), Error> {
        let mut pending = self
            .pending
            .take()
            .ok_or(Error::UnexpectedApdu(apdu_tag(&apdu)))?;
        match pending.on_response(apdu, &self.cfg.limits)? {
            request::Step::Send(next) => {
                self.send_xdlms(next)?;
                self.pending = Some(pending);
                self.deadline = Some(now + self.cfg.response_timeout);
            }
            request::Step::Done(response) => {
                self.deadline = None;
                if pending.is_hls() {
                    let proof = match &response {
                        Response::Action(r) => match r.first() {
                            Some((ActionResult::Success, Some(GetDataResult::Data(d)))) => {
                                d.as_octets().map(<[u8]>::to_vec)
                            }
                            _ => None,
                        },
                        _ => None,
                    };
                    let proof = proof.ok_or(Error::AuthenticationFailed)?;
                    self.verify_hls(&proof)?;
                    self.state = State::Associated;
                    if let Some(info) = self.info.clone() {
                        self.events.push_back(Event::Associated(info));
                    }
                } else {
                    self.events.push_back(Event::Response(response));
                }
            }
        }
        Ok(())
    }
}

fn info_of(resp: &InitiateResponse, server_system_title: Option<SystemTitle>) -> AssociationInfo {
    AssociationInfo {
        conformance: resp.negotiated_conformance,
        server_max_receive_pdu: resp.server_max_receive_pdu_size,
        server_system_title,
        dlms_version: resp.negotiated_dlms_version,
    }
}

fn apdu_tag(apdu: &Apdu) -> u8 {
    apdu.to_bytes().first().copied().unwrap_or_default()
}
