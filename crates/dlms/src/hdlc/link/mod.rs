//! The HDLC link state machine (IEC 62056-46 clause 6.4.4), sans-I/O, for either end.
//!
//! The client is the primary station of normal response mode: it owns the right to send
//! until it sends a frame with the P bit set, and gets it back with the server's F bit. The
//! server sends only while it holds the poll. Each side may have up to `window_tx` I frames
//! unacknowledged; the last frame of every burst carries P/F so that the turn always passes.
//! Only the client keeps a timer: it retransmits (go-back-N) or polls with RR when the answer
//! does not come, and gives up after `max_retries`.

mod transfer;

use super::params::MAX_WINDOW;
use super::{
    Control, Deframer, HdlcError, HdlcParams, ServerAddress, LLC_REQUEST, LLC_RESPONSE,
    MAX_INFO_LEN,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Resource and timing limits of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Largest APDU reassembled from received segments (and accepted by `send_apdu`).
    pub max_apdu: usize,
    /// How long the client waits for the answer to a frame with the P bit.
    pub response_timeout: Duration,
    /// Retransmissions of an unanswered frame before the link is declared dead.
    pub max_retries: u8,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self {
            max_apdu: 0xFFFF,
            response_timeout: Duration::from_secs(3),
            max_retries: 3,
        }
    }
}

/// What the link reports to the layer above.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// The link is up; the parameters are this station's own view (its tx is what it sends).
    Connected(HdlcParams),
    /// A complete APDU, LLC header stripped, segments reassembled.
    Apdu(Vec<u8>),
    /// The link was released (DISC/UA, DM or FRMR).
    Disconnected,
    /// The server answered SNRM with DM.
    Rejected,
    /// The peer stopped answering after all retransmissions; the link is down.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Disconnected,
    Connecting,
    Connected,
    Disconnecting,
}

/// An I frame's information field waiting to be sent or acknowledged.
#[derive(Debug, Clone)]
struct Segment {
    info: Vec<u8>,
    segmented: bool,
}

/// One end of an HDLC link.
#[derive(Debug)]
pub struct HdlcLink {
    role: Role,
    state: State,
    server: ServerAddress,
    /// Client side: our SAP. Server side: the connected (or last seen) client's SAP.
    client: Option<u8>,
    proposal: HdlcParams,
    negotiated: HdlcParams,
    limits: LinkLimits,
    deframer: Deframer,
    vs: u8,
    vr: u8,
    pending: VecDeque<Segment>,
    /// Sent, not yet acknowledged; the front has N(S) = `vs - len`.
    unacked: VecDeque<Segment>,
    tx: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    rx: Vec<u8>,
    rx_discarding: bool,
    /// Whether this station may send now (see the module documentation).
    turn: bool,
    /// Client: a complete APDU went out and its answer has not come yet.
    awaiting_reply: bool,
    /// An I frame out of sequence arrived since we last had the turn.
    out_of_sequence: bool,
    deadline: Option<Instant>,
    /// A deadline armed without a current time (from `send_apdu`) is only a reminder.
    deadline_fresh: bool,
    retries: u8,
    now: Option<Instant>,
    last_now: Option<Instant>,
}

fn next(seq: u8) -> u8 {
    (seq + 1) & 7
}

impl HdlcLink {
    /// A client (primary station). SAPs above 127 are masked to 7 bits.
    pub fn client(
        client_sap: u8,
        server: ServerAddress,
        params: HdlcParams,
        limits: LinkLimits,
    ) -> Self {
        Self::new(
            Role::Client,
            Some(client_sap & 0x7F),
            server,
            params,
            limits,
        )
    }

    /// A server (secondary station) answering at `server`.
    pub fn server(server: ServerAddress, params: HdlcParams, limits: LinkLimits) -> Self {
        Self::new(Role::Server, None, server, params, limits)
    }

    fn new(
        role: Role,
        client: Option<u8>,
        server: ServerAddress,
        params: HdlcParams,
        limits: LinkLimits,
    ) -> Self {
        Self {
            role,
            state: State::Disconnected,
            server,
            client,
            proposal: clamp(params),
            negotiated: HdlcParams::default(),
            limits,
            deframer: Deframer::new(),
            vs: 0,
            vr: 0,
            pending: VecDeque::new(),
            unacked: VecDeque::new(),
            tx: VecDeque::new(),
            events: VecDeque::new(),
            rx: Vec::new(),
            rx_discarding: false,
            turn: false,
            awaiting_reply: false,
            out_of_sequence: false,
            deadline: None,
            deadline_fresh: false,
            retries: 0,
            now: None,
            last_now: None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The parameters in force, from this station's view (defaults before connecting).
    pub fn negotiated(&self) -> HdlcParams {
        self.negotiated
    }

    /// Client side: our own SAP. Server side: the SAP of the peer that connected.
    pub fn client_sap(&self) -> Option<u8> {
        self.client
    }

    /// Client: (re)starts the link with SNRM. A server ignores this.
    pub fn connect(&mut self, now: Instant) {
        if self.role == Role::Server {
            return;
        }
        self.enter(now);
        self.reset_sequence();
        self.state = State::Connecting;
        self.retries = 0;
        self.send_snrm();
        self.leave();
    }

    /// Client: releases the link with DISC. Server: drops the link at once (a secondary
    /// cannot speak unpolled; the client's next frame is answered with DM).
    pub fn disconnect(&mut self, now: Instant) {
        self.enter(now);
        match (self.role, self.state) {
            (_, State::Disconnected) => {}
            (Role::Client, _) => {
                self.reset_sequence();
                self.state = State::Disconnecting;
                self.retries = 0;
                self.queue(Control::Disc { poll: true }, Vec::new(), false);
            }
            (Role::Server, _) => {
                self.reset_sequence();
                self.state = State::Disconnected;
                self.events.push_back(LinkEvent::Disconnected);
            }
        }
        self.leave();
    }

    /// Queues an APDU: adds the LLC header, cuts it into segments of the negotiated
    /// `max_info_tx` and sends them as the window and the turn allow.
    ///
    /// Having no `now`, this arms the client's timer from the last time it was given; such a
    /// deadline, when it expires, is only re-armed from the true time, so a stale clock can
    /// delay a retransmission by one timeout but never cause an early one.
    pub fn send_apdu(&mut self, apdu: &[u8]) -> Result<(), HdlcError> {
        if self.state != State::Connected {
            return Err(HdlcError::NotConnected);
        }
        if apdu.len() > self.limits.max_apdu {
            return Err(HdlcError::SendTooLarge {
                len: apdu.len(),
                max: self.limits.max_apdu,
            });
        }
        let llc = match self.role {
            Role::Client => LLC_REQUEST,
            Role::Server => LLC_RESPONSE,
        };
        let mut message = Vec::with_capacity(llc.len() + apdu.len());
        message.extend_from_slice(&llc);
        message.extend_from_slice(apdu);
        let size = usize::from(self.negotiated.max_info_tx).clamp(1, MAX_INFO_LEN);
        let mut chunks = message.chunks(size).peekable();
        while let Some(chunk) = chunks.next() {
            self.pending.push_back(Segment {
                info: chunk.to_vec(),
                segmented: chunks.peek().is_some(),
            });
        }
        self.pump();
        Ok(())
    }

    /// Feeds received bytes. Every complete frame is processed even when one fails; the
    /// first error is returned for logging, and the link carries on.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<(), HdlcError> {
        self.enter(now);
        self.deframer.push(bytes);
        let mut first_error = None;
        loop {
            let result = match self.deframer.next_frame() {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        self.leave();
        first_error.map_or(Ok(()), Err)
    }

    /// Appends the next frame to send; false when there is none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        match self.tx.pop_front() {
            Some(frame) => {
                out.extend_from_slice(&frame);
                true
            }
            None => false,
        }
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Client: retransmits or polls when the answer is overdue; gives up after
    /// `max_retries` with [`LinkEvent::TimedOut`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.enter(now);
        self.on_timeout(now);
        self.leave();
    }

    fn on_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        if !self.deadline_fresh {
            self.arm();
            return;
        }
        self.deadline = None;
        if self.role == Role::Server || self.state == State::Disconnected {
            return;
        }
        if self.retries >= self.limits.max_retries {
            self.reset_sequence();
            self.state = State::Disconnected;
            self.events.push_back(LinkEvent::TimedOut);
            return;
        }
        self.retries += 1;
        // The poll we sent, or the answer to it, was lost: the client takes the turn back.
        self.turn = true;
        match self.state {
            State::Connecting => self.send_snrm(),
            State::Disconnecting => self.queue(Control::Disc { poll: true }, Vec::new(), false),
            State::Connected if !self.unacked.is_empty() => self.retransmit(),
            State::Connected => self.send_rr(),
            State::Disconnected => {}
        }
    }
}

/// Keeps parameters within what frames and modulo-8 sequence numbers can carry.
fn clamp(p: HdlcParams) -> HdlcParams {
    let info = |v: u16| v.clamp(1, MAX_INFO_LEN as u16);
    HdlcParams {
        max_info_tx: info(p.max_info_tx),
        max_info_rx: info(p.max_info_rx),
        window_tx: p.window_tx.clamp(1, MAX_WINDOW),
        window_rx: p.window_rx.clamp(1, MAX_WINDOW),
    }
}
