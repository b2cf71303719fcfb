//! The server (meter) side of DLMS/COSEM associations, sans-I/O. One [`Server`] serves one
//! connection; the objects it exposes are behind the [`Objects`] trait, called synchronously from
//! `handle_input`, so one meter model can serve many connections.

mod blocks;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::acse::{Aare, AcseApdu, AcseServiceUser, AssociationResult, Diagnostic, Rlre};
use crate::axdr::Data;
use crate::codec::Codec;
use crate::error::Error;
use crate::link::{Framing, LinkUp, TransportConfig};
use crate::obis::ObisCode;
use crate::security::{self, CipherKeys, SecurityContext};
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

    /// Random bytes for the HLS server challenge.
    fn fill_random(&mut self, buf: &mut [u8]);
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
        }
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

    fn reject(&mut self, ctx: ApplicationContext, why: AcseServiceUser) -> Result<(), Error> {
        let aare = Aare {
            application_context: ctx,
            result: AssociationResult::RejectedPermanent,
            diagnostic: Diagnostic::ServiceUser(why),
            responding_ap_title: None,
            responder_acse_requirements: false,
            mechanism: None,
            responding_authentication_value: None,
            user_information: None,
        };
        self.state = State::Idle;
        self.assoc = None;
        self.send(AcseApdu::Aare(aare).to_bytes())
    }

    fn on_aarq(&mut self, bytes: &[u8], objects: &mut dyn Objects) -> Result<(), Error> {
        let AcseApdu::Aarq(aarq) = AcseApdu::decode_exact(bytes)? else {
            return Err(Error::UnexpectedApdu(xdlms::tag::AARQ));
        };
        let app_ctx = aarq.application_context;
        let sap = self.link.peer_sap().unwrap_or_default();
        let Some(policy) = self.policy(sap) else {
            return self.reject(app_ctx, AcseServiceUser::CallingApTitleNotRecognized);
        };
        let ciphered = policy.security != SecurityLevel::None;
        if app_ctx != ApplicationContext::LogicalName
            && !(ciphered && app_ctx == ApplicationContext::LogicalNameCiphered)
        {
            return self.reject(app_ctx, AcseServiceUser::ApplicationContextNameNotSupported);
        }
        if ciphered && app_ctx != ApplicationContext::LogicalNameCiphered {
            return self.reject(app_ctx, AcseServiceUser::ApplicationContextNameNotSupported);
        }
        let mechanism = policy.authentication.mechanism();
        if aarq.mechanism.unwrap_or(Mechanism::None) != mechanism {
            let why = if aarq.mechanism.is_none() {
                AcseServiceUser::AuthenticationMechanismNameRequired
            } else {
                AcseServiceUser::AuthenticationMechanismNameNotRecognised
            };
            return self.reject(app_ctx, why);
        }
        if let Authentication::Low { password } = &policy.authentication {
            if aarq.calling_authentication_value.as_deref() != Some(password.as_slice()) {
                return self.reject(app_ctx, AcseServiceUser::AuthenticationFailure);
            }
        }
        let client_title = aarq
            .calling_ap_title
            .as_deref()
            .and_then(SystemTitle::from_slice);
        let mut sec = None;
        if ciphered || mechanism == Mechanism::HighGmac {
            let Some(title) = client_title else {
                return self.reject(app_ctx, AcseServiceUser::CallingApTitleNotRecognized);
            };
            let counters = objects.counters();
            let mut ctx = SecurityContext::new(
                policy.security,
                self.cfg.system_title,
                self.cfg.keys.clone(),
                // Start at 1: some clients (dlms-cosem) take 0 as already seen.
                counters.tx.max(1),
            );
            ctx.peer_system_title = Some(title);
            if let Some(last) = counters.rx_last.get(&sap) {
                ctx.set_rx_floor(*last);
            }
            sec = Some(ctx);
        }
        let Some(ui) = aarq.user_information.clone() else {
            return self.reject(app_ctx, AcseServiceUser::NoReasonGiven);
        };
        let ui_plain = match &mut sec {
            Some(ctx) if ciphered => match ctx.unprotect(&ui) {
                Ok(u) => u.apdu,
                // The initiate request does not decipher with this client's keys: to the client
                // that is a failed authentication, whatever the cause.
                Err(_) => return self.reject(app_ctx, AcseServiceUser::AuthenticationFailure),
            },
            _ if security::is_ciphered(ui.first().copied().unwrap_or_default()) => {
                return self.reject(app_ctx, AcseServiceUser::ApplicationContextNameNotSupported)
            }
            _ => ui,
        };
        let Apdu::InitiateRequest(init) = Apdu::decode_exact(&ui_plain)? else {
            return self.reject(app_ctx, AcseServiceUser::NoReasonGiven);
        };
        if let Some(ctx) = &mut sec {
            if let Some(k) = init.dedicated_key.as_deref() {
                ctx.dedicated_key = k.try_into().ok();
            }
        }
        let conformance = self.cfg.conformance.intersection(init.proposed_conformance);
        let resp = Apdu::InitiateResponse(InitiateResponse {
            negotiated_quality_of_service: None,
            negotiated_dlms_version: 6,
            negotiated_conformance: conformance,
            server_max_receive_pdu_size: self.cfg.max_receive_pdu,
            vaa_name: 0x0007,
        })
        .to_bytes();
        let user_information = match &mut sec {
            Some(ctx) if ciphered => ctx.protect(&resp, false)?,
            _ => resp,
        };
        let hls = mechanism.is_hls();
        let mut stoc = Vec::new();
        if hls {
            stoc = vec![0u8; 16];
            objects.fill_random(&mut stoc);
        }
        let aare = Aare {
            application_context: app_ctx,
            result: AssociationResult::Accepted,
            diagnostic: Diagnostic::ServiceUser(if hls {
                AcseServiceUser::AuthenticationRequired
            } else {
                AcseServiceUser::Null
            }),
            responding_ap_title: sec.as_ref().map(|_| self.cfg.system_title.0.to_vec()),
            responder_acse_requirements: mechanism != Mechanism::None,
            mechanism: (mechanism != Mechanism::None).then_some(mechanism),
            responding_authentication_value: hls.then(|| stoc.clone()),
            user_information: Some(user_information),
        };
        let client_max_pdu = match init.client_max_receive_pdu_size {
            0 => usize::from(u16::MAX),
            n => usize::from(n),
        };
        let ctx = RequestContext {
            client_sap: sap,
            mechanism,
            security: policy.security,
        };
        self.assoc = Some(Assoc {
            ctx,
            policy,
            conformance,
            client_max_pdu,
            security: sec,
            ctos: aarq.calling_authentication_value.unwrap_or_default(),
            stoc,
        });
        self.sync_counters(objects);
        self.state = if hls {
            State::AwaitHlsReply
        } else {
            State::Associated
        };
        if !hls {
            self.events.push_back(ServerEvent::Associated(ctx));
        }
        self.send(AcseApdu::Aare(aare).to_bytes())
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
                Err(security::SecurityError::Replay { .. }) => {
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

    /// Answers one plain request; `None` when nothing is to be sent.
    fn serve(&mut self, req: Apdu, objects: &mut dyn Objects) -> Result<Option<Vec<u8>>, Error> {
        let Some(assoc) = self.assoc.as_ref() else {
            return Ok(None);
        };
        let ctx = assoc.ctx;
        let budget = reply_budget(assoc, self.cfg.max_receive_pdu);
        if self.state == State::AwaitHlsReply {
            return Ok(Some(self.serve_hls(req, objects)?));
        }
        // Services outside the negotiated conformance are refused, as the client agreed.
        let needed = match &req {
            Apdu::GetRequest(GetRequest::WithList { .. }) => {
                Conformance::GET | Conformance::MULTIPLE_REFERENCES
            }
            Apdu::GetRequest(_) => Conformance::GET,
            Apdu::SetRequest(
                SetRequest::WithFirstDataBlock { .. } | SetRequest::WithDataBlock { .. },
            ) => Conformance::SET | Conformance::BLOCK_TRANSFER_WITH_SET_OR_WRITE,
            Apdu::SetRequest(_) => Conformance::SET,
            Apdu::ActionRequest(_) => Conformance::ACTION,
            _ => Conformance(0),
        };
        if !assoc.conformance.contains(needed) {
            return Ok(Some(exception_bytes(1, 2)));
        }
        let reply = match req {
            Apdu::GetRequest(GetRequest::Normal {
                invoke,
                attribute,
                access,
            }) => {
                self.outbound = None;
                let result = match objects.get(&ctx, &attribute, access.as_ref()) {
                    Ok(d) => GetDataResult::Data(d),
                    Err(e) => GetDataResult::Error(e),
                };
                let whole = Apdu::GetResponse(GetResponse::Normal { invoke, result });
                self.fit_get(invoke, whole, budget)
            }
            Apdu::GetRequest(GetRequest::WithList { invoke, items }) => {
                self.outbound = None;
                let results: Vec<GetDataResult> = items
                    .iter()
                    .map(|(a, s)| match objects.get(&ctx, a, s.as_ref()) {
                        Ok(d) => GetDataResult::Data(d),
                        Err(e) => GetDataResult::Error(e),
                    })
                    .collect();
                let whole = Apdu::GetResponse(GetResponse::WithList { invoke, results });
                self.fit_get(invoke, whole, budget)
            }
            Apdu::GetRequest(GetRequest::Next {
                invoke,
                block_number,
            }) => match self.outbound.as_mut() {
                Some(out) => out.next_get(invoke, block_number),
                None => no_long_get(invoke),
            },
            Apdu::SetRequest(r) => self.serve_set(r, &ctx, objects),
            Apdu::ActionRequest(r) => self.serve_action(r, &ctx, budget, objects),
            Apdu::GeneralBlockTransfer(_) => {
                return Ok(Some(exception_bytes(1, 2)));
            }
            _ => return Ok(Some(exception_bytes(2, 2))),
        };
        Ok(Some(reply))
    }

    /// A GET answer as one APDU, or its first block when it is larger than the client takes.
    fn fit_get(&mut self, invoke: InvokeIdAndPriority, whole: Apdu, budget: usize) -> Vec<u8> {
        let bytes = whole.to_bytes();
        if bytes.len() <= budget {
            return bytes;
        }
        let raw = match whole {
            Apdu::GetResponse(GetResponse::Normal {
                result: GetDataResult::Data(d),
                ..
            }) => d.to_bytes(),
            Apdu::GetResponse(GetResponse::WithList { results, .. }) => {
                let mut raw = Vec::new();
                crate::codec::put_length(&mut raw, results.len());
                for r in &results {
                    r.encode(&mut raw);
                }
                raw
            }
            _ => return bytes,
        };
        let mut out = Outbound::new(raw, budget);
        let first = out.first_get(invoke);
        self.outbound = Some(out);
        first
    }

    fn serve_set(
        &mut self,
        req: SetRequest,
        ctx: &RequestContext,
        objects: &mut dyn Objects,
    ) -> Vec<u8> {
        let reply = match req {
            SetRequest::Normal {
                invoke,
                attribute,
                access,
                value,
            } => {
                let result = objects.set(ctx, &attribute, access.as_ref(), value);
                SetResponse::Normal { invoke, result }
            }
            SetRequest::WithList {
                invoke,
                items,
                values,
            } => {
                let results = items
                    .iter()
                    .zip(values)
                    .map(|((a, s), v)| objects.set(ctx, a, s.as_ref(), v))
                    .collect();
                SetResponse::WithList { invoke, results }
            }
            SetRequest::WithFirstDataBlock {
                invoke,
                attribute,
                access,
                block,
            } => {
                let inb = Inbound::set(attribute, access);
                self.set_block(inb, invoke, block, 1, ctx, objects)
            }
            SetRequest::WithDataBlock { invoke, block } => match self.inbound.take() {
                None => SetResponse::LastDataBlock {
                    invoke,
                    result: DataAccessResult::NoLongSetInProgress,
                    block_number: block.block_number,
                },
                Some(inb) => {
                    let n = block.block_number;
                    self.set_block(inb, invoke, block, n, ctx, objects)
                }
            },
            SetRequest::WithListAndFirstDataBlock { invoke, items, .. } => SetResponse::WithList {
                invoke,
                results: vec![DataAccessResult::OtherReason; items.len()],
            },
            #[allow(unreachable_patterns)]
            _ => return exception_bytes(2, 2),
        };
        Apdu::SetResponse(reply).to_bytes()
    }

    fn serve_action(
        &mut self,
        req: ActionRequest,
        ctx: &RequestContext,
        budget: usize,
        objects: &mut dyn Objects,
    ) -> Vec<u8> {
        match req {
            ActionRequest::Normal {
                invoke,
                method,
                parameters,
            } => {
                let r = objects.action(ctx, &method, parameters);
                self.action_reply(invoke, r, budget)
            }
            ActionRequest::WithList { invoke, items } => {
                let results = items
                    .into_iter()
                    .map(|(m, p)| match objects.action(ctx, &m, p) {
                        Ok(d) => (ActionResult::Success, d.map(GetDataResult::Data)),
                        Err(e) => (e, None),
                    })
                    .collect();
                Apdu::ActionResponse(ActionResponse::WithList { invoke, results }).to_bytes()
            }
            ActionRequest::WithFirstPBlock {
                invoke,
                method,
                block,
            } => self.action_block(Inbound::action(method), invoke, block, ctx, budget, objects),
            ActionRequest::WithPBlock { invoke, block } => match self.inbound.take() {
                None => action_error(invoke, ActionResult::NoLongActionInProgress),
                Some(inb) => self.action_block(inb, invoke, block, ctx, budget, objects),
            },
            ActionRequest::NextPBlock {
                invoke,
                block_number,
            } => match self.outbound.as_mut() {
                Some(out) => out.next_action(invoke, block_number),
                None => action_error(invoke, ActionResult::NoLongActionInProgress),
            },
            ActionRequest::WithListAndFirstPBlock { invoke, .. } => {
                action_error(invoke, ActionResult::OtherReason)
            }
            #[allow(unreachable_patterns)]
            _ => exception_bytes(2, 2),
        }
    }

    /// Takes one block of a long SET value; the last one performs the SET. A refused block is
    /// answered with `err_block_number`.
    fn set_block(
        &mut self,
        mut inb: Inbound,
        invoke: InvokeIdAndPriority,
        block: xdlms::DataBlockSA,
        err_block_number: u32,
        ctx: &RequestContext,
        objects: &mut dyn Objects,
    ) -> SetResponse {
        match inb.push(&block, self.cfg.max_request_bytes) {
            Err(result) => SetResponse::LastDataBlock {
                invoke,
                result,
                block_number: err_block_number,
            },
            Ok(()) if block.last_block => finish_set(invoke, inb, block.block_number, ctx, objects),
            Ok(()) => {
                self.inbound = Some(inb);
                SetResponse::DataBlock {
                    invoke,
                    block_number: block.block_number,
                }
            }
        }
    }

    /// Takes one block of long ACTION parameters; the last one invokes the method.
    fn action_block(
        &mut self,
        mut inb: Inbound,
        invoke: InvokeIdAndPriority,
        block: xdlms::DataBlockSA,
        ctx: &RequestContext,
        budget: usize,
        objects: &mut dyn Objects,
    ) -> Vec<u8> {
        match inb.push(&block, self.cfg.max_request_bytes) {
            Err(_) => action_error(invoke, ActionResult::OtherReason),
            Ok(()) if block.last_block => {
                let r = inb.finish_action(ctx, objects);
                self.action_reply(invoke, r, budget)
            }
            Ok(()) => {
                self.inbound = Some(inb);
                let next = ActionResponse::NextPBlock {
                    invoke,
                    block_number: block.block_number,
                };
                Apdu::ActionResponse(next).to_bytes()
            }
        }
    }

    fn action_reply(
        &mut self,
        invoke: InvokeIdAndPriority,
        r: Result<Option<Data>, ActionResult>,
        budget: usize,
    ) -> Vec<u8> {
        self.outbound = None;
        let (result, data) = match r {
            Ok(d) => (ActionResult::Success, d),
            Err(e) => (e, None),
        };
        let whole = ActionResponse::Normal {
            invoke,
            result,
            return_parameters: data.clone().map(GetDataResult::Data),
        };
        let bytes = Apdu::ActionResponse(whole).to_bytes();
        match data {
            Some(d) if bytes.len() > budget => {
                let mut out = Outbound::new(d.to_bytes(), budget);
                let first = out.first_action(invoke);
                self.outbound = Some(out);
                first
            }
            _ => bytes,
        }
    }

    /// Before HLS pass 4 only the reply_to_HLS_authentication method is served.
    fn serve_hls(&mut self, req: Apdu, objects: &mut dyn Objects) -> Result<Vec<u8>, Error> {
        let (invoke, proof) = match req {
            Apdu::ActionRequest(ActionRequest::Normal {
                invoke,
                method,
                parameters,
            }) if method.class_id == 15
                && method.instance == CURRENT_ASSOCIATION
                && method.method == 1 =>
            {
                (
                    invoke,
                    parameters.and_then(|p| p.as_octets().map(<[u8]>::to_vec)),
                )
            }
            Apdu::ActionRequest(r) => {
                return Ok(action_error(r.invoke(), ActionResult::ReadWriteDenied))
            }
            Apdu::GetRequest(r) => {
                let invoke = r.invoke();
                let result = GetDataResult::Error(DataAccessResult::ReadWriteDenied);
                return Ok(Apdu::GetResponse(GetResponse::Normal { invoke, result }).to_bytes());
            }
            _ => return Ok(exception_bytes(1, 1)),
        };
        let Some(assoc) = self.assoc.as_mut() else {
            return Ok(exception_bytes(1, 1));
        };
        let answer = proof.and_then(|p| hls_check(assoc, &p).ok().flatten());
        match answer {
            Some(reply) => {
                self.state = State::Associated;
                let ctx = assoc.ctx;
                self.events.push_back(ServerEvent::Associated(ctx));
                self.sync_counters(objects);
                let resp = ActionResponse::Normal {
                    invoke,
                    result: ActionResult::Success,
                    return_parameters: Some(GetDataResult::Data(Data::OctetString(reply))),
                };
                Ok(Apdu::ActionResponse(resp).to_bytes())
            }
            None => Ok(action_error(invoke, ActionResult::ReadWriteDenied)),
        }
    }
}

/// Verifies the client's f(StoC); gives our f(CtoS).
fn hls_check(a: &mut Assoc, proof: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    Ok(match &a.policy.authentication {
        Authentication::High {
            mechanism: Mechanism::HighMd5,
            secret,
        } => (security::hls_md5(&a.stoc, secret).as_slice() == proof)
            .then(|| security::hls_md5(&a.ctos, secret).to_vec()),
        Authentication::High {
            mechanism: Mechanism::HighSha1,
            secret,
        } => (security::hls_sha1(&a.stoc, secret).as_slice() == proof)
            .then(|| security::hls_sha1(&a.ctos, secret).to_vec()),
        Authentication::High {
            mechanism: Mechanism::HighSha256,
            secret,
        } => {
            let Some(s) = a.security.as_ref() else {
                return Ok(None);
            };
            let Some(client) = s.peer_system_title else {
                return Ok(None);
            };
            let own = s.own_system_title;
            let expect = security::hls_sha256(secret, &client, &own, &a.stoc, &a.ctos);
            (expect.as_slice() == proof)
                .then(|| security::hls_sha256(secret, &own, &client, &a.ctos, &a.stoc).to_vec())
        }
        Authentication::HighGmac => {
            let Some(s) = a.security.as_mut() else {
                return Ok(None);
            };
            let Some(client) = s.peer_system_title else {
                return Ok(None);
            };
            if security::verify_hls_gmac(&client, &s.global, &a.stoc, proof).is_err() {
                return Ok(None);
            }
            let ic = s.take_tx_invocation_counter()?;
            Some(security::hls_gmac(
                &s.own_system_title,
                ic,
                &s.global,
                &a.ctos,
            ))
        }
        _ => None,
    })
}

/// The largest plain answer that fits one APDU: the smaller of the two sides' PDU sizes (a meter
/// with a small buffer sends small blocks too), less the ciphering overhead.
fn reply_budget(a: &Assoc, own_max_pdu: u16) -> usize {
    let overhead = if a.security.is_some() { 24 } else { 0 };
    a.client_max_pdu
        .min(usize::from(own_max_pdu))
        .saturating_sub(overhead)
        .max(64)
}

fn finish_set(
    invoke: InvokeIdAndPriority,
    inb: Inbound,
    block_number: u32,
    ctx: &RequestContext,
    objects: &mut dyn Objects,
) -> SetResponse {
    let result = inb.finish_set(ctx, objects);
    SetResponse::LastDataBlock {
        invoke,
        result,
        block_number,
    }
}

fn no_long_get(invoke: InvokeIdAndPriority) -> Vec<u8> {
    let result = GetDataResult::Error(DataAccessResult::NoLongGetInProgress);
    Apdu::GetResponse(GetResponse::Normal { invoke, result }).to_bytes()
}

fn action_error(invoke: InvokeIdAndPriority, result: ActionResult) -> Vec<u8> {
    Apdu::ActionResponse(ActionResponse::Normal {
        invoke,
        result,
        return_parameters: None,
    })
    .to_bytes()
}

fn exception_bytes(state_error: u8, service_error: u8) -> Vec<u8> {
    Apdu::ExceptionResponse(ExceptionResponse {
        state_error,
        service_error,
        invocation_counter: None,
    })
    .to_bytes()
}
