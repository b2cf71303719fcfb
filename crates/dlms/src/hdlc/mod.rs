//! HDLC link layer (IEC 62056-46): frame format type 3, addressing, and the link state machine
//! (SNRM/UA with parameter negotiation, I/RR, DISC/DM, segmentation, retransmission).

mod frame;
#[cfg(test)]
mod gurux_tests;
#[cfg(test)]
mod tests;

pub use frame::{
    client_address, fcs16, Control, Deframer, Frame, HdlcParams, ServerAddress, FLAG, MAX_FRAME_LEN,
};

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HdlcError {
    #[error("bad frame check sequence")]
    BadFcs,
    #[error("bad header check sequence")]
    BadHcs,
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    #[error("reassembled APDU larger than {0} bytes")]
    TooLong(usize),
    #[error("the link is not connected")]
    NotConnected,
    #[error("no answer after {0} retransmissions")]
    RetriesExhausted(u8),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
}

/// The LLC header of an APDU going to a server, and coming from one.
const LLC_COMMAND: [u8; 3] = [0xE6, 0xE6, 0x00];
const LLC_RESPONSE: [u8; 3] = [0xE6, 0xE7, 0x00];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// The largest APDU reassembled from segments.
    pub max_apdu: usize,
    pub response_timeout: Duration,
    pub max_retries: u8,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self {
            max_apdu: 0x1_0000,
            response_timeout: Duration::from_secs(3),
            max_retries: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    Connected(HdlcParams),
    /// A whole APDU, LLC header removed, segments joined.
    Apdu(Vec<u8>),
    Disconnected,
    /// The server answered SNRM with DM.
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Client { sap: u8 },
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Disconnected,
    Connecting,
    Connected,
    Disconnecting,
}

/// One end of an HDLC link, sans-I/O.
#[derive(Debug)]
pub struct HdlcLink {
    role: Role,
    server: ServerAddress,
    /// Our own address bytes and the peer's, as they go on the wire.
    own: Vec<u8>,
    peer: Vec<u8>,
    proposed: HdlcParams,
    negotiated: HdlcParams,
    limits: LinkLimits,
    state: State,
    deframer: Deframer,
    vs: u8,
    vr: u8,
    /// Segments of APDUs waiting to go, and whether each is the last of its APDU.
    segments: VecDeque<(Vec<u8>, bool)>,
    /// The last frame sent that awaits an answer, for retransmission.
    unacked: Option<Vec<u8>>,
    retries: u8,
    deadline: Option<Instant>,
    /// The V(S) our last I frame is acknowledged by (the peer's N(R) reaching it).
    pending_ns: Option<u8>,
    last_now: Option<Instant>,
    out: VecDeque<Vec<u8>>,
    rx_apdu: Vec<u8>,
    events: VecDeque<LinkEvent>,
}

impl HdlcLink {
    pub fn client(
        client_sap: u8,
        server: ServerAddress,
        params: HdlcParams,
        limits: LinkLimits,
    ) -> Self {
        Self::new(
            Role::Client { sap: client_sap },
            server,
            client_address(client_sap),
            server.encode(),
            params,
            limits,
        )
    }

    pub fn server(server: ServerAddress, params: HdlcParams, limits: LinkLimits) -> Self {
        Self::new(
            Role::Server,
            server,
            server.encode(),
            Vec::new(),
            params,
            limits,
        )
    }

    fn new(
        role: Role,
        server: ServerAddress,
        own: Vec<u8>,
        peer: Vec<u8>,
        params: HdlcParams,
        limits: LinkLimits,
    ) -> Self {
        Self {
            role,
            server,
            own,
            peer,
            proposed: params,
            negotiated: params,
            limits,
            state: State::Disconnected,
            deframer: Deframer::default(),
            vs: 0,
            vr: 0,
            segments: VecDeque::new(),
            unacked: None,
            retries: 0,
            deadline: None,
            pending_ns: None,
            last_now: None,
            out: VecDeque::new(),
            rx_apdu: Vec::new(),
            events: VecDeque::new(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    pub fn negotiated(&self) -> HdlcParams {
        self.negotiated
    }

    /// The peer's client SAP (on a server, once a client has connected).
    pub fn client_sap(&self) -> Option<u8> {
        match self.role {
            Role::Client { sap } => Some(sap),
            Role::Server => self.peer.first().map(|b| b >> 1),
        }
    }

    pub fn connect(&mut self, now: Instant) {
        self.last_now = Some(now);
        if let Role::Client { .. } = self.role {
            self.state = State::Connecting;
            let info = if self.proposed == HdlcParams::default() {
                Vec::new()
            } else {
                self.proposed.encode()
            };
            self.send_awaiting(Control::Snrm { poll: true }, info, false, now);
        }
    }

    pub fn disconnect(&mut self, now: Instant) {
        if let Role::Client { .. } = self.role {
            if self.state == State::Disconnected {
                self.events.push_back(LinkEvent::Disconnected);
                return;
            }
            self.state = State::Disconnecting;
            self.segments.clear();
            self.send_awaiting(Control::Disc { poll: true }, Vec::new(), false, now);
        } else {
            self.state = State::Disconnected;
        }
    }

    /// Queues an APDU, cut into segments of the negotiated size.
    pub fn send_apdu(&mut self, apdu: &[u8]) -> Result<(), HdlcError> {
        if self.state != State::Connected {
            return Err(HdlcError::NotConnected);
        }
        let llc = match self.role {
            Role::Client { .. } => LLC_COMMAND,
            Role::Server => LLC_RESPONSE,
        };
        let mut info = Vec::with_capacity(apdu.len() + 3);
        info.extend_from_slice(&llc);
        info.extend_from_slice(apdu);
        let size = usize::from(self.negotiated.max_info_tx).max(16);
        let n = info.len().div_ceil(size);
        for (i, chunk) in info.chunks(size).enumerate() {
            self.segments.push_back((chunk.to_vec(), i + 1 == n));
        }
        self.pump();
        Ok(())
    }

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<(), HdlcError> {
        self.last_now = Some(now);
        self.deframer.push(bytes);
        loop {
            match self.deframer.next_frame() {
                Ok(Some(f)) => self.on_frame(f, now)?,
                Ok(None) => break,
                // A damaged frame is dropped; the peer's timer brings it again.
                Err(_) => continue,
            }
        }
        Ok(())
    }

    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        match self.out.pop_front() {
            Some(f) => {
                out.extend_from_slice(&f);
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

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            return;
        }
        match self.unacked.clone() {
            Some(frame) if self.retries < self.limits.max_retries => {
                self.retries += 1;
                self.out.push_back(frame);
                self.deadline = Some(now + self.limits.response_timeout);
            }
            _ => {
                self.deadline = None;
                self.unacked = None;
                self.state = State::Disconnected;
                self.events.push_back(LinkEvent::Disconnected);
            }
        }
    }

    fn frame(&self, control: Control, info: Vec<u8>, segmented: bool) -> Vec<u8> {
        let f = Frame {
            segmented,
            dest: self.peer.clone(),
            src: self.own.clone(),
            control,
            info,
        };
        let mut out = Vec::new();
        f.encode(&mut out);
        out
    }

    /// Sends a frame that needs an answer (client side: it is retransmitted on timeout).
    fn send_awaiting(&mut self, control: Control, info: Vec<u8>, segmented: bool, now: Instant) {
        let bytes = self.frame(control, info, segmented);
        self.out.push_back(bytes.clone());
        if let Role::Client { .. } = self.role {
            self.unacked = Some(bytes);
            self.retries = 0;
            self.deadline = Some(now + self.limits.response_timeout);
        }
    }

    /// Sends the next segment when nothing is waiting for an acknowledgement.
    fn pump(&mut self) {
        if self.pending_ns.is_some() || self.state != State::Connected {
            return;
        }
        let Some((info, last)) = self.segments.pop_front() else {
            return;
        };
        let control = Control::I {
            ns: self.vs,
            nr: self.vr,
            poll: true,
        };
        self.vs = (self.vs + 1) & 7;
        self.pending_ns = Some(self.vs);
        let bytes = self.frame(control, info, !last);
        self.out.push_back(bytes.clone());
        // Both ends keep the frame to repeat it; only the client runs a timer for it.
        self.unacked = Some(bytes);
        self.retries = 0;
        if let Role::Client { .. } = self.role {
            self.deadline = self.last_now.map(|n| n + self.limits.response_timeout);
        }
    }

    /// The peer's N(R) acknowledges our frames up to it.
    fn ack(&mut self, nr: u8) {
        if self.pending_ns == Some(nr) {
            self.pending_ns = None;
            self.unacked = None;
            self.deadline = None;
        }
    }

    fn addressed_to_us(&self, f: &Frame) -> bool {
        match self.role {
            Role::Client { .. } => {
                f.dest == self.own
                    && ServerAddress::decode(&f.src).is_some_and(|a| self.server.matches(&a))
            }
            Role::Server => {
                ServerAddress::decode(&f.dest).is_some_and(|a| self.server.matches(&a))
                    && (self.state == State::Disconnected
                        || self.peer.is_empty()
                        || f.src == self.peer
                        || matches!(f.control, Control::Snrm { .. }))
            }
        }
    }

    fn on_frame(&mut self, f: Frame, now: Instant) -> Result<(), HdlcError> {
        self.last_now = Some(now);
        if !self.addressed_to_us(&f) {
            return Ok(());
        }
        match self.role {
            Role::Client { .. } => self.client_frame(f, now),
            Role::Server => self.server_frame(f),
        }
    }

    fn client_frame(&mut self, f: Frame, now: Instant) -> Result<(), HdlcError> {
        match f.control {
            Control::Ua { .. } => match self.state {
                State::Connecting => {
                    let server = HdlcParams::decode(&f.info)?;
                    self.negotiated = HdlcParams {
                        max_info_tx: self.proposed.max_info_tx.min(server.max_info_rx),
                        max_info_rx: self.proposed.max_info_rx.min(server.max_info_tx),
                        window_tx: self.proposed.window_tx.min(server.window_rx),
                        window_rx: self.proposed.window_rx.min(server.window_tx),
                    };
                    self.reset_sequence();
                    self.state = State::Connected;
                    self.events.push_back(LinkEvent::Connected(self.negotiated));
                    self.pump();
                }
                State::Disconnecting => self.gone(),
                _ => {}
            },
            Control::Dm { .. } => {
                if self.state == State::Connecting {
                    self.reset_sequence();
                    self.state = State::Disconnected;
                    self.events.push_back(LinkEvent::Rejected);
                } else {
                    self.gone();
                }
            }
            Control::Frmr { .. } => self.gone(),
            Control::Rr { nr, .. } => {
                self.ack(nr);
                self.pump();
            }
            Control::Rnr { nr, .. } => self.ack(nr),
            Control::I { ns, nr, .. } if self.state == State::Connected => {
                self.ack(nr);
                // Whatever we were waiting for, the server is talking: stop retransmitting.
                if self.pending_ns.is_none() {
                    self.unacked = None;
                    self.deadline = None;
                }
                self.receive_i(ns, f.segmented, f.info, Some(now))?;
                self.pump();
            }
            _ => {}
        }
        Ok(())
    }

    fn server_frame(&mut self, f: Frame) -> Result<(), HdlcError> {
        match f.control {
            Control::Snrm { .. } => {
                let client = HdlcParams::decode(&f.info)?;
                self.negotiated = HdlcParams {
                    max_info_tx: self.proposed.max_info_tx.min(client.max_info_rx),
                    max_info_rx: self.proposed.max_info_rx.min(client.max_info_tx),
                    window_tx: self.proposed.window_tx.min(client.window_rx),
                    window_rx: self.proposed.window_rx.min(client.window_tx),
                };
                // Answer in the address form the client used.
                self.peer = f.src;
                self.own = f.dest;
                self.reset_sequence();
                self.segments.clear();
                self.state = State::Connected;
                let ua = self.frame(Control::Ua { fin: true }, self.negotiated.encode(), false);
                self.out.push_back(ua);
                self.events.push_back(LinkEvent::Connected(self.negotiated));
            }
            Control::Disc { .. } => {
                if self.state == State::Connected {
                    let ua = self.frame(Control::Ua { fin: true }, Vec::new(), false);
                    self.out.push_back(ua);
                    self.state = State::Disconnected;
                    self.events.push_back(LinkEvent::Disconnected);
                } else {
                    self.peer = f.src;
                    self.own = f.dest;
                    let dm = self.frame(Control::Dm { fin: true }, Vec::new(), false);
                    self.out.push_back(dm);
                }
            }
            Control::I { ns, nr, .. } => {
                if self.state != State::Connected {
                    let dm = self.frame(Control::Dm { fin: true }, Vec::new(), false);
                    self.out.push_back(dm);
                    return Ok(());
                }
                self.ack(nr);
                self.receive_i(ns, f.segmented, f.info, None)?;
                self.pump();
            }
            Control::Rr { nr, .. } if self.state == State::Connected => {
                self.ack(nr);
                if self.pending_ns.is_some() {
                    // The client has not seen our last frame: send it again.
                    if let Some(last) = self.unacked.clone() {
                        self.out.push_back(last);
                    }
                }
                self.pump();
            }
            Control::Rnr { nr, .. } => self.ack(nr),
            _ => {}
        }
        Ok(())
    }

    fn receive_i(
        &mut self,
        ns: u8,
        segmented: bool,
        info: Vec<u8>,
        now: Option<Instant>,
    ) -> Result<(), HdlcError> {
        if ns != self.vr {
            // Out of sequence (a repeat, or a frame lost before it): ask for what we expect.
            let rr = self.frame(
                Control::Rr {
                    nr: self.vr,
                    poll: true,
                },
                Vec::new(),
                false,
            );
            self.out.push_back(rr);
            return Ok(());
        }
        self.vr = (self.vr + 1) & 7;
        if self.rx_apdu.len() + info.len() > self.limits.max_apdu + 3 {
            self.rx_apdu.clear();
            return Err(HdlcError::TooLong(self.limits.max_apdu));
        }
        self.rx_apdu.extend_from_slice(&info);
        if segmented {
            let rr = Control::Rr {
                nr: self.vr,
                poll: true,
            };
            match (self.role, now) {
                (Role::Client { .. }, Some(n)) => self.send_awaiting(rr, Vec::new(), false, n),
                _ => {
                    let f = self.frame(rr, Vec::new(), false);
                    self.out.push_back(f);
                }
            }
            return Ok(());
        }
        let whole = std::mem::take(&mut self.rx_apdu);
        let apdu = match whole.get(..3) {
            Some([0xE6, 0xE6 | 0xE7, 0x00]) => whole.get(3..).unwrap_or_default().to_vec(),
            _ => whole,
        };
        self.events.push_back(LinkEvent::Apdu(apdu));
        Ok(())
    }

    fn reset_sequence(&mut self) {
        self.vs = 0;
        self.vr = 0;
        self.pending_ns = None;
        self.unacked = None;
        self.deadline = None;
        self.rx_apdu.clear();
    }

    fn gone(&mut self) {
        self.reset_sequence();
        self.segments.clear();
        self.state = State::Disconnected;
        self.events.push_back(LinkEvent::Disconnected);
    }
}
