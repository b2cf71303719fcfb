//! How frames move once the link exists: building and queueing frames, the turn and the
//! window, acknowledgements, reassembly, and each role's reaction to a received frame.

use super::super::params::MAX_WINDOW;
use super::super::{
    client_address, parse_client_address, Control, Frame, HdlcError, HdlcParams, ServerAddress,
    LLC_REQUEST, LLC_RESPONSE,
};
use super::{clamp, next, HdlcLink, LinkEvent, Role, Segment, State};
use crate::codec::Codec;
use std::time::Instant;

impl HdlcLink {
    pub(super) fn enter(&mut self, now: Instant) {
        self.now = Some(now);
        self.last_now = Some(now);
    }

    pub(super) fn leave(&mut self) {
        self.now = None;
    }

    /// Starts the client's response timer.
    pub(super) fn arm(&mut self) {
        if self.role == Role::Server {
            return;
        }
        let timeout = self.limits.response_timeout;
        self.deadline_fresh = self.now.is_some();
        self.deadline = self
            .now
            .or(self.last_now)
            .and_then(|now| now.checked_add(timeout));
    }

    pub(super) fn reset_sequence(&mut self) {
        self.vs = 0;
        self.vr = 0;
        self.pending.clear();
        self.unacked.clear();
        self.rx.clear();
        self.rx_discarding = false;
        self.awaiting_reply = false;
        self.out_of_sequence = false;
        self.deadline = None;
        self.turn = self.role == Role::Client;
    }

    pub(super) fn addresses(&self) -> (Vec<u8>, Vec<u8>) {
        let client = client_address(self.client.unwrap_or(0) & 0x7F).unwrap_or_default();
        let server = self.server.to_bytes();
        match self.role {
            Role::Client => (server, client),
            Role::Server => (client, server),
        }
    }

    /// Encodes a frame for transmission; sending P/F hands the turn to the peer.
    pub(super) fn queue(&mut self, control: Control, info: Vec<u8>, segmented: bool) {
        let (dest, src) = self.addresses();
        let frame = Frame {
            segmented,
            dest,
            src,
            control,
            info,
        };
        self.tx.push_back(frame.to_bytes());
        if control.poll_final() {
            self.turn = false;
            if self.role == Role::Client {
                self.arm();
            }
        }
    }

    pub(super) fn send_snrm(&mut self) {
        // Like Gurux and many meters, leave the field out when it would only state defaults.
        let info = if self.proposal == HdlcParams::default() {
            Vec::new()
        } else {
            self.proposal.to_bytes()
        };
        self.queue(Control::Snrm { poll: true }, info, false);
    }

    pub(super) fn send_rr(&mut self) {
        let nr = self.vr;
        self.queue(Control::Rr { nr, poll: true }, Vec::new(), false);
    }

    /// Sends new I frames while we hold the turn and the window has room.
    pub(super) fn pump(&mut self) {
        if !self.turn || self.state != State::Connected {
            return;
        }
        let window = usize::from(self.negotiated.window_tx.clamp(1, MAX_WINDOW));
        while self.unacked.len() < window {
            let Some(segment) = self.pending.pop_front() else {
                break;
            };
            let last = self.unacked.len() + 1 == window || self.pending.is_empty();
            let control = Control::I {
                ns: self.vs,
                nr: self.vr,
                poll: last,
            };
            self.vs = next(self.vs);
            if self.role == Role::Client && !segment.segmented {
                self.awaiting_reply = true;
            }
            self.queue(control, segment.info.clone(), segment.segmented);
            self.unacked.push_back(segment);
            if last {
                break;
            }
        }
    }

    /// Go-back-N: sends every unacknowledged frame again, P/F on the last.
    pub(super) fn retransmit(&mut self) {
        let count = self.unacked.len();
        let first = self.vs.wrapping_sub(count as u8) & 7;
        let frames: Vec<Segment> = self.unacked.iter().cloned().collect();
        for (i, segment) in frames.into_iter().enumerate() {
            let control = Control::I {
                ns: (first + i as u8) & 7,
                nr: self.vr,
                poll: i + 1 == count,
            };
            self.queue(control, segment.info, segment.segmented);
        }
    }

    /// We were just given the turn with nothing more specific to do.
    pub(super) fn on_turn(&mut self) {
        if !self.unacked.is_empty() {
            // The peer's N(R) did not cover everything we sent: it missed some.
            self.retransmit();
        } else {
            self.pump();
        }
        if self.turn {
            match self.role {
                // Ask for the next segment of a reply (or for a lost one again).
                Role::Client
                    if !self.rx.is_empty() || self.rx_discarding || self.out_of_sequence =>
                {
                    self.send_rr()
                }
                Role::Client => {}
                Role::Server => {
                    let nr = self.vr;
                    self.queue(Control::Rr { nr, poll: true }, Vec::new(), false);
                }
            }
        }
        self.out_of_sequence = false;
        if self.role == Role::Client && self.turn && self.awaiting_reply {
            // The server holds no reply yet: poll it again later.
            self.arm();
        }
    }

    /// Takes N(R) as acknowledging every frame before it; an N(R) outside the window is
    /// ignored.
    pub(super) fn acknowledge(&mut self, nr: u8) {
        let count =
            usize::from(nr.wrapping_sub(self.vs.wrapping_sub(self.unacked.len() as u8)) & 7);
        if count <= self.unacked.len() {
            self.unacked.drain(..count);
        }
    }

    /// Returns Ok(true) when the frame completed an APDU.
    pub(super) fn receive(
        &mut self,
        ns: u8,
        info: Vec<u8>,
        segmented: bool,
    ) -> Result<bool, HdlcError> {
        if ns != self.vr {
            self.out_of_sequence = true;
            return Ok(false);
        }
        self.vr = next(self.vr);
        let limit = self.limits.max_apdu.saturating_add(LLC_REQUEST.len());
        if self.rx.len().saturating_add(info.len()) > limit {
            self.rx = Vec::new();
            self.rx_discarding = true;
        }
        if !self.rx_discarding {
            self.rx.extend_from_slice(&info);
        }
        if segmented {
            return Ok(false);
        }
        let message = std::mem::take(&mut self.rx);
        if self.role == Role::Client {
            self.awaiting_reply = false;
        }
        if std::mem::take(&mut self.rx_discarding) {
            return Err(HdlcError::ApduTooLarge {
                max: self.limits.max_apdu,
            });
        }
        self.deliver(&message)?;
        Ok(true)
    }

    pub(super) fn deliver(&mut self, message: &[u8]) -> Result<(), HdlcError> {
        let llc = match self.role {
            Role::Client => LLC_RESPONSE,
            Role::Server => LLC_REQUEST,
        };
        match message.strip_prefix(&llc[..]) {
            Some(apdu) => {
                self.events.push_back(LinkEvent::Apdu(apdu.to_vec()));
                Ok(())
            }
            None => Err(HdlcError::BadLlc),
        }
    }

    pub(super) fn on_frame(&mut self, frame: Frame) -> Result<(), HdlcError> {
        match self.role {
            Role::Client => {
                let ours = client_address(self.client.unwrap_or(0)).unwrap_or_default();
                let from_server = ServerAddress::from_bytes(&frame.src)
                    .is_ok_and(|a| a.same_device(&self.server));
                if frame.dest != ours || !from_server {
                    return Ok(());
                }
                self.on_client_frame(frame)
            }
            Role::Server => {
                let to_us = ServerAddress::from_bytes(&frame.dest)
                    .is_ok_and(|a| a.same_device(&self.server));
                let Ok(sap) = parse_client_address(&frame.src) else {
                    return Ok(());
                };
                if !to_us {
                    return Ok(());
                }
                if self.state == State::Connected && self.client != Some(sap) {
                    // Another client while one is connected: not ours to answer.
                    return Ok(());
                }
                if self.state != State::Connected {
                    self.client = Some(sap);
                }
                self.on_server_frame(frame)
            }
        }
    }

    pub(super) fn link_lost(&mut self) {
        self.reset_sequence();
        self.state = State::Disconnected;
        self.events.push_back(LinkEvent::Disconnected);
    }

    pub(super) fn on_client_frame(&mut self, frame: Frame) -> Result<(), HdlcError> {
        match (self.state, frame.control) {
            (State::Connecting, Control::Ua { .. }) => {
                let peer = HdlcParams::from_info(&frame.info).map_err(HdlcError::BadParameters)?;
                self.reset_sequence();
                self.negotiated = clamp(self.proposal.negotiate(peer));
                self.state = State::Connected;
                self.retries = 0;
                self.events.push_back(LinkEvent::Connected(self.negotiated));
            }
            (State::Connecting, Control::Dm { .. }) => {
                self.reset_sequence();
                self.state = State::Disconnected;
                self.events.push_back(LinkEvent::Rejected);
            }
            (State::Disconnecting, Control::Ua { .. } | Control::Dm { .. }) => self.link_lost(),
            (State::Connected, Control::Dm { .. } | Control::Frmr { .. }) => self.link_lost(),
            (State::Connected, Control::I { ns, nr, poll }) => {
                self.retries = 0;
                self.acknowledge(nr);
                let received = self.receive(ns, frame.info, frame.segmented);
                if poll {
                    self.deadline = None;
                    self.turn = true;
                    self.on_turn();
                }
                received?;
            }
            (State::Connected, Control::Rr { nr, poll } | Control::Rnr { nr, poll }) => {
                self.retries = 0;
                self.acknowledge(nr);
                if poll {
                    self.deadline = None;
                    self.turn = true;
                    self.on_turn();
                }
            }
            (State::Connected, Control::Ui { .. }) => self.deliver(&frame.info)?,
            _ => {}
        }
        Ok(())
    }

    pub(super) fn on_server_frame(&mut self, frame: Frame) -> Result<(), HdlcError> {
        let connected = self.state == State::Connected;
        match frame.control {
            Control::Snrm { .. } => {
                let peer = HdlcParams::from_info(&frame.info).map_err(HdlcError::BadParameters)?;
                self.reset_sequence();
                self.negotiated = clamp(self.proposal.negotiate(peer));
                self.state = State::Connected;
                self.events.push_back(LinkEvent::Connected(self.negotiated));
                let info = self.negotiated.to_bytes();
                self.queue(Control::Ua { fin: true }, info, false);
            }
            Control::Disc { .. } if connected => {
                self.link_lost();
                self.queue(Control::Ua { fin: true }, Vec::new(), false);
            }
            Control::I { ns, nr, poll } if connected => {
                self.acknowledge(nr);
                let received = self.receive(ns, frame.info, frame.segmented);
                if poll {
                    self.turn = true;
                    if matches!(received, Ok(true)) {
                        // Hold the poll for the application's reply.
                        self.pump();
                    } else {
                        self.on_turn();
                    }
                }
                received?;
            }
            Control::Rr { nr, poll } | Control::Rnr { nr, poll } if connected => {
                self.acknowledge(nr);
                if poll {
                    self.turn = true;
                    self.on_turn();
                }
            }
            Control::Ui { .. } if connected => self.deliver(&frame.info)?,
            Control::Disc { poll }
            | Control::I { poll, .. }
            | Control::Rr { poll, .. }
            | Control::Rnr { poll, .. }
                if poll =>
            {
                self.queue(Control::Dm { fin: true }, Vec::new(), false);
            }
            _ => {}
        }
        Ok(())
    }
}
