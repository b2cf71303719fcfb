//! A client and a server link wired together in memory, with a hook that can drop or damage
//! frames on the way.

use super::super::*;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(2);

fn limits() -> LinkLimits {
    LinkLimits {
        max_apdu: 8192,
        response_timeout: TIMEOUT,
        max_retries: 3,
    }
}

fn server_address() -> ServerAddress {
    ServerAddress::two_byte(1, 17).unwrap()
}

fn window(w: u8) -> HdlcParams {
    HdlcParams {
        window_tx: w,
        window_rx: w,
        ..HdlcParams::default()
    }
}

/// What the wire does to a frame: deliver it as is, drop it, or deliver other bytes.
enum Wire {
    Pass,
    Drop,
    Replace(Vec<u8>),
}

struct Pair {
    c: HdlcLink,
    s: HdlcLink,
    now: Instant,
    /// Every frame that left either side, with `true` when it came from the client.
    log: Vec<(bool, Frame)>,
    errors: Vec<HdlcError>,
    client_events: Vec<LinkEvent>,
    server_events: Vec<LinkEvent>,
}

impl Pair {
    fn new(client: HdlcParams, server: HdlcParams) -> Self {
        Self {
            c: HdlcLink::client(0x10, server_address(), client, limits()),
            s: HdlcLink::server(server_address(), server, limits()),
            now: Instant::now(),
            log: Vec::new(),
            errors: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    /// Moves frames until both sides are quiet and either `stop` holds or the client has no
    /// timer left, firing the client's timer when nothing else moves. `wire` sees each
    /// frame (from client?, index in the log).
    fn run_until(
        &mut self,
        stop: &dyn Fn(&Pair) -> bool,
        wire: &mut dyn FnMut(bool, usize, &Frame) -> Wire,
    ) {
        for _ in 0..10_000 {
            let mut moved = false;
            for from_client in [true, false] {
                loop {
                    let mut out = Vec::new();
                    let sent = if from_client {
                        self.c.poll_transmit(&mut out)
                    } else {
                        self.s.poll_transmit(&mut out)
                    };
                    if !sent {
                        break;
                    }
                    moved = true;
                    let frame = Frame::decode(&out).unwrap();
                    let index = self.log.len();
                    let action = wire(from_client, index, &frame);
                    self.log.push((from_client, frame));
                    let bytes = match action {
                        Wire::Pass => out,
                        Wire::Drop => continue,
                        Wire::Replace(b) => b,
                    };
                    let to = if from_client {
                        &mut self.s
                    } else {
                        &mut self.c
                    };
                    if let Err(e) = to.handle_input(&bytes, self.now) {
                        self.errors.push(e);
                    }
                }
            }
            while let Some(e) = self.c.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.s.poll_event() {
                self.server_events.push(e);
            }
            assert_eq!(self.s.poll_timeout(), None, "the server keeps no timer");
            if !moved {
                if stop(self) {
                    return;
                }
                match self.c.poll_timeout() {
                    Some(deadline) => {
                        self.now = self.now.max(deadline);
                        self.c.handle_timeout(self.now);
                    }
                    None => return,
                }
            }
        }
        panic!("link never went quiet");
    }

    fn run(&mut self, wire: &mut dyn FnMut(bool, usize, &Frame) -> Wire) {
        self.run_until(&|_| false, wire);
    }

    fn run_clean(&mut self) {
        self.run(&mut |_, _, _| Wire::Pass);
    }

    /// Runs until the server application has a request (the client then keeps polling for
    /// the reply, so the link never goes quiet on its own).
    fn deliver_request(&mut self, wire: &mut dyn FnMut(bool, usize, &Frame) -> Wire) {
        self.run_until(&|p| has_apdu(&p.server_events), wire);
    }

    fn connect(&mut self) {
        self.c.connect(self.now);
        self.run_clean();
        assert!(self.c.is_connected() && self.s.is_connected());
    }

    fn client_frames(&self) -> impl Iterator<Item = &Frame> {
        self.log.iter().filter(|(c, _)| *c).map(|(_, f)| f)
    }

    fn server_frames(&self) -> impl Iterator<Item = &Frame> {
        self.log.iter().filter(|(c, _)| !*c).map(|(_, f)| f)
    }
}

fn apdu(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn has_apdu(events: &[LinkEvent]) -> bool {
    events.iter().any(|e| matches!(e, LinkEvent::Apdu(_)))
}

fn is_rr(f: &Frame) -> bool {
    matches!(f.control, Control::Rr { .. })
}

fn is_i(f: &Frame) -> bool {
    matches!(f.control, Control::I { .. })
}

#[test]
fn connect_negotiates_the_smaller_limits() {
    let client = HdlcParams {
        max_info_tx: 256,
        max_info_rx: 512,
        window_tx: 7,
        window_rx: 3,
    };
    let server = HdlcParams {
        max_info_tx: 128,
        max_info_rx: 1024,
        window_tx: 2,
        window_rx: 7,
    };
    let mut p = Pair::new(client, server);
    p.connect();
    let server_view = HdlcParams {
        max_info_tx: 128,
        max_info_rx: 256,
        window_tx: 2,
        window_rx: 7,
    };
    assert_eq!(p.server_events, [LinkEvent::Connected(server_view)]);
    assert_eq!(
        p.client_events,
        [LinkEvent::Connected(server_view.mirrored())]
    );
    assert_eq!(p.s.negotiated(), server_view);
    assert_eq!(p.c.negotiated(), server_view.mirrored());
    assert_eq!(p.s.client_sap(), Some(0x10));
    // SNRM carried the client's proposal, UA the server's result.
    let snrm = p.client_frames().next().unwrap();
    assert_eq!(HdlcParams::from_info(&snrm.info), Ok(client));
    let ua = p.server_frames().next().unwrap();
    assert_eq!(ua.control, Control::Ua { fin: true });
    assert_eq!(HdlcParams::from_info(&ua.info), Ok(server_view));
}

fn exchange_5000(w: u8) -> Pair {
    let mut p = Pair::new(window(w), window(w));
    p.connect();
    let request = apdu(5000, 1);
    let reply = apdu(5000, 2);
    let start = p.log.len();
    p.c.send_apdu(&request).unwrap();
    p.deliver_request(&mut |_, _, _| Wire::Pass);
    assert_eq!(p.server_events.last(), Some(&LinkEvent::Apdu(request)));
    p.s.send_apdu(&reply).unwrap();
    p.run_clean();
    assert_eq!(p.client_events.last(), Some(&LinkEvent::Apdu(reply)));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    // 5003 bytes with the LLC header in 128-byte segments: 40 I frames each way.
    let log = &p.log[start..];
    let client_i = log.iter().filter(|(c, f)| *c && is_i(f)).count();
    let server_i = log.iter().filter(|(c, f)| !*c && is_i(f)).count();
    assert_eq!((client_i, server_i), (40, 40));
    assert!(log.iter().all(|(_, f)| f.info.len() <= 128));
    p.log.drain(..start);
    p
}

#[test]
fn five_thousand_bytes_each_way_window_1() {
    let p = exchange_5000(1);
    // Window 1: every non-final segment is acknowledged on its own.
    assert_eq!(p.server_frames().filter(|f| is_rr(f)).count(), 39);
    assert_eq!(p.client_frames().filter(|f| is_rr(f)).count(), 39);
    // And each client I frame carries P.
    assert!(p
        .client_frames()
        .filter(|f| is_i(f))
        .all(|f| f.control.poll_final()));
}

#[test]
fn five_thousand_bytes_each_way_window_7() {
    let p = exchange_5000(7);
    // Window 7: one acknowledgement per burst of 7 (40 segments = 5 full bursts + 5).
    assert_eq!(p.server_frames().filter(|f| is_rr(f)).count(), 5);
    assert_eq!(p.client_frames().filter(|f| is_rr(f)).count(), 5);
    let polls = p
        .client_frames()
        .filter(|f| is_i(f) && f.control.poll_final())
        .count();
    assert_eq!(polls, 6);
}

#[test]
fn disconnect_releases_both_ends() {
    let mut p = Pair::new(HdlcParams::default(), HdlcParams::default());
    p.connect();
    p.c.disconnect(p.now);
    p.run_clean();
    assert!(!p.c.is_connected() && !p.s.is_connected());
    assert_eq!(p.client_events.last(), Some(&LinkEvent::Disconnected));
    assert_eq!(p.server_events.last(), Some(&LinkEvent::Disconnected));
    assert_eq!(p.c.send_apdu(&[1]), Err(HdlcError::NotConnected));
    // A frame to a disconnected server is answered with DM.
    let mut s = HdlcLink::server(server_address(), HdlcParams::default(), limits());
    let rr = Frame {
        segmented: false,
        dest: server_address().to_bytes(),
        src: client_address(0x10).unwrap(),
        control: Control::Rr { nr: 0, poll: true },
        info: Vec::new(),
    };
    s.handle_input(&rr.to_bytes(), p.now).unwrap();
    let mut out = Vec::new();
    assert!(s.poll_transmit(&mut out));
    assert_eq!(
        Frame::decode(&out).unwrap().control,
        Control::Dm { fin: true }
    );
}

#[test]
fn dropped_frames_are_recovered_by_retransmission() {
    for w in [1, 7] {
        let mut p = Pair::new(window(w), window(w));
        p.connect();
        let request = apdu(2000, 3);
        let reply = apdu(3000, 4);
        let start = p.log.len();
        p.c.send_apdu(&request).unwrap();
        // Lose the third client I frame and the second server RR.
        let (mut client_i, mut server_rr) = (0, 0);
        p.deliver_request(&mut |from_client, _, f| {
            if from_client && is_i(f) {
                client_i += 1;
                if client_i == 3 {
                    return Wire::Drop;
                }
            }
            if !from_client && is_rr(f) {
                server_rr += 1;
                if server_rr == 2 {
                    return Wire::Drop;
                }
            }
            Wire::Pass
        });
        assert_eq!(
            p.server_events.last(),
            Some(&LinkEvent::Apdu(request)),
            "w{w}"
        );
        // Lose the fifth server I frame.
        let mut server_i = 0;
        p.s.send_apdu(&reply).unwrap();
        p.run(&mut |from_client, _, f| {
            if !from_client && is_i(f) {
                server_i += 1;
                if server_i == 5 {
                    return Wire::Drop;
                }
            }
            Wire::Pass
        });
        assert_eq!(
            p.client_events.last(),
            Some(&LinkEvent::Apdu(reply)),
            "w{w}"
        );
        assert!(p.c.is_connected() && p.s.is_connected());
        // Exactly one APDU each way, no duplicates.
        let apdus = |ev: &[LinkEvent]| {
            ev.iter()
                .filter(|e| matches!(e, LinkEvent::Apdu(_)))
                .count()
        };
        assert_eq!((apdus(&p.client_events), apdus(&p.server_events)), (1, 1));
        // Recovery cost retransmissions: more I frames than the 16 + 24 segments.
        let sent_i = p.log[start..].iter().filter(|(_, f)| is_i(f)).count();
        assert!(sent_i > 40, "w{w}: {sent_i}");
    }
}

#[test]
fn frame_with_bad_fcs_is_ignored_and_recovered() {
    let mut p = Pair::new(HdlcParams::default(), HdlcParams::default());
    p.connect();
    let request = apdu(600, 5);
    p.c.send_apdu(&request).unwrap();
    let mut damaged = false;
    p.deliver_request(&mut |from_client, _, f| {
        if from_client && is_i(f) && !damaged {
            damaged = true;
            let mut b = f.to_bytes();
            let n = b.len();
            b[n - 5] ^= 0x40;
            return Wire::Replace(b);
        }
        Wire::Pass
    });
    assert_eq!(p.errors, [HdlcError::BadFcs]);
    assert_eq!(p.server_events.last(), Some(&LinkEvent::Apdu(request)));
    let apdus = p
        .server_events
        .iter()
        .filter(|e| matches!(e, LinkEvent::Apdu(_)))
        .count();
    assert_eq!(apdus, 1);
}

#[test]
fn frames_for_other_addresses_are_ignored() {
    let now = Instant::now();
    let mut s = HdlcLink::server(server_address(), HdlcParams::default(), limits());
    let snrm = |dest: Vec<u8>, sap: u8| Frame {
        segmented: false,
        dest,
        src: client_address(sap).unwrap(),
        control: Control::Snrm { poll: true },
        info: Vec::new(),
    };
    // Another physical device, another logical device.
    for dest in [
        ServerAddress::two_byte(1, 18).unwrap().to_bytes(),
        ServerAddress::two_byte(2, 17).unwrap().to_bytes(),
    ] {
        s.handle_input(&snrm(dest, 0x10).to_bytes(), now).unwrap();
        assert!(!s.poll_transmit(&mut Vec::new()));
        assert_eq!(s.poll_event(), None);
    }
    // The right device in its 4-byte form is accepted, from any client SAP.
    let four = ServerAddress::four_byte(1, 17).unwrap().to_bytes();
    s.handle_input(&snrm(four, 0x01).to_bytes(), now).unwrap();
    assert!(s.is_connected());
    assert_eq!(s.client_sap(), Some(0x01));
    assert!(s.poll_transmit(&mut Vec::new()));
    // While connected, another client is not answered.
    s.handle_input(&snrm(server_address().to_bytes(), 0x10).to_bytes(), now)
        .unwrap();
    assert!(!s.poll_transmit(&mut Vec::new()));
    assert_eq!(s.client_sap(), Some(0x01));

    // The client ignores frames from another server or to another client.
    let mut p = Pair::new(HdlcParams::default(), HdlcParams::default());
    p.c.connect(now);
    assert!(p.c.poll_transmit(&mut Vec::new()));
    for (dest, src) in [
        (client_address(0x11).unwrap(), server_address().to_bytes()),
        (
            client_address(0x10).unwrap(),
            ServerAddress::two_byte(1, 16).unwrap().to_bytes(),
        ),
    ] {
        let ua = Frame {
            segmented: false,
            dest,
            src,
            control: Control::Ua { fin: true },
            info: Vec::new(),
        };
        p.c.handle_input(&ua.to_bytes(), now).unwrap();
        assert!(!p.c.is_connected());
        assert_eq!(p.c.poll_event(), None);
    }
}

#[test]
fn snrm_answered_with_dm_is_rejected() {
    let now = Instant::now();
    let mut c = HdlcLink::client(0x10, server_address(), HdlcParams::default(), limits());
    c.connect(now);
    assert!(c.poll_transmit(&mut Vec::new()));
    let dm = Frame {
        segmented: false,
        dest: client_address(0x10).unwrap(),
        src: server_address().to_bytes(),
        control: Control::Dm { fin: true },
        info: Vec::new(),
    };
    c.handle_input(&dm.to_bytes(), now).unwrap();
    assert_eq!(c.poll_event(), Some(LinkEvent::Rejected));
    assert!(!c.is_connected());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn silent_server_times_out_after_the_retries() {
    let mut now = Instant::now();
    let mut c = HdlcLink::client(0x10, server_address(), HdlcParams::default(), limits());
    c.connect(now);
    let mut snrms = 0;
    while let Some(deadline) = c.poll_timeout() {
        while c.poll_transmit(&mut Vec::new()) {
            snrms += 1;
        }
        assert_eq!(deadline, now + TIMEOUT);
        // Early calls do nothing.
        c.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(c.poll_timeout(), Some(deadline));
        now = deadline;
        c.handle_timeout(now);
    }
    assert_eq!(snrms, 1 + 3);
    assert_eq!(c.poll_event(), Some(LinkEvent::TimedOut));
    assert!(!c.is_connected());
}

#[test]
fn client_polls_a_slow_server_for_its_reply() {
    let mut p = Pair::new(HdlcParams::default(), HdlcParams::default());
    p.connect();
    p.c.send_apdu(&[0xC0, 1]).unwrap();
    // Run once without the timer: the server holds the poll for its application.
    let mut out = Vec::new();
    assert!(p.c.poll_transmit(&mut out));
    p.s.handle_input(&out, p.now).unwrap();
    assert_eq!(p.s.poll_event(), Some(LinkEvent::Apdu(vec![0xC0, 1])));
    assert!(!p.s.poll_transmit(&mut Vec::new()));
    // The client, hearing nothing, retransmits; the server, seeing a duplicate, answers RR;
    // the client then keeps polling with RR until the reply comes.
    // The deadline armed by `send_apdu` had no current time: its first expiry only re-arms.
    let deadline = p.c.poll_timeout().unwrap();
    p.now = deadline;
    p.c.handle_timeout(p.now);
    assert!(!p.c.poll_transmit(&mut Vec::new()));
    assert_eq!(p.c.poll_timeout(), Some(deadline + TIMEOUT));
    for _ in 0..3 {
        let deadline = p.c.poll_timeout().expect("client still polls");
        p.now = deadline;
        p.c.handle_timeout(p.now);
        p.run_until(&|_| true, &mut |_, _, _| Wire::Pass);
    }
    let polls = p.client_frames().filter(|f| is_rr(f)).count();
    let answers = p.server_frames().filter(|f| is_rr(f)).count();
    assert_eq!((polls, answers), (2, 3));
    assert!(p.c.is_connected());
    p.s.send_apdu(&[0xC4, 1]).unwrap();
    assert!(!p.s.poll_transmit(&mut Vec::new()), "not the server's turn");
    let deadline = p.c.poll_timeout().expect("client still polls");
    p.now = deadline;
    p.c.handle_timeout(p.now);
    p.run_clean();
    assert_eq!(
        p.client_events.last(),
        Some(&LinkEvent::Apdu(vec![0xC4, 1]))
    );
    // Only one copy of the request reached the server application.
    assert_eq!(
        p.server_events,
        [LinkEvent::Connected(HdlcParams::default())]
    );
}

#[test]
fn oversized_apdus_are_refused() {
    let mut p = Pair::new(HdlcParams::default(), HdlcParams::default());
    p.connect();
    assert_eq!(
        p.c.send_apdu(&[0; 8193]),
        Err(HdlcError::SendTooLarge {
            len: 8193,
            max: 8192
        })
    );
    // A server with a smaller reassembly limit discards a longer request and says so.
    let mut small = limits();
    small.max_apdu = 300;
    p.s = HdlcLink::server(server_address(), HdlcParams::default(), small);
    p.c.connect(p.now);
    p.run_clean();
    p.c.send_apdu(&[7; 1000]).unwrap();
    p.run_until(&|p| !p.errors.is_empty(), &mut |_, _, _| Wire::Pass);
    assert!(p.errors.contains(&HdlcError::ApduTooLarge { max: 300 }));
    assert!(!p
        .server_events
        .iter()
        .any(|e| matches!(e, LinkEvent::Apdu(_))));
}

#[test]
fn wrong_llc_header_is_reported() {
    let now = Instant::now();
    let mut s = HdlcLink::server(server_address(), HdlcParams::default(), limits());
    let frame = |control, info: Vec<u8>| Frame {
        segmented: false,
        dest: server_address().to_bytes(),
        src: client_address(0x10).unwrap(),
        control,
        info,
    };
    s.handle_input(
        &frame(Control::Snrm { poll: true }, Vec::new()).to_bytes(),
        now,
    )
    .unwrap();
    let i = Control::I {
        ns: 0,
        nr: 0,
        poll: true,
    };
    // The response header in a request.
    let bad = frame(i, vec![0xE6, 0xE7, 0x00, 0xC0]);
    assert_eq!(s.handle_input(&bad.to_bytes(), now), Err(HdlcError::BadLlc));
    assert_eq!(
        s.poll_event(),
        Some(LinkEvent::Connected(HdlcParams::default()))
    );
    assert_eq!(s.poll_event(), None);
}

#[test]
fn hostile_bytes_never_break_the_link() {
    // A deterministic stream of junk and partial frames: the link must neither panic nor
    // grow without bound, and must still connect afterwards.
    let now = Instant::now();
    let mut s = HdlcLink::server(server_address(), HdlcParams::default(), limits());
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let b = (x >> 16) as u8;
        let chunk = [b, 0x7E, b & 0xA7, b];
        let _ = s.handle_input(&chunk[..usize::from(b % 5).min(4)], now);
    }
    while s.poll_transmit(&mut Vec::new()) {}
    while s.poll_event().is_some() {}
    // Flush whatever half frame is pending with a flag-free run, then connect.
    let _ = s.handle_input(&[0x00; MAX_FRAME_LEN], now);
    let snrm = Frame {
        segmented: false,
        dest: server_address().to_bytes(),
        src: client_address(0x10).unwrap(),
        control: Control::Snrm { poll: true },
        info: Vec::new(),
    };
    s.handle_input(&snrm.to_bytes(), now).unwrap();
    assert!(s.is_connected());
}
