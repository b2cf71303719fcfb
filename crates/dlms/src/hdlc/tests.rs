#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

const SERVER: ServerAddress = ServerAddress {
    logical: 1,
    physical: Some(16),
    size: 2,
};

fn pair(params: HdlcParams) -> (HdlcLink, HdlcLink, Instant) {
    let now = Instant::now();
    let limits = LinkLimits::default();
    let mut c = HdlcLink::client(16, SERVER, params, limits);
    let s = HdlcLink::server(SERVER, params, limits);
    c.connect(now);
    (c, s, now)
}

/// Moves frames both ways, optionally dropping the n-th frame sent by the client.
fn pump(c: &mut HdlcLink, s: &mut HdlcLink, now: Instant, mut drop_client_frame: Option<usize>) {
    let mut sent = 0;
    for _ in 0..10_000 {
        let mut moved = false;
        let mut b = Vec::new();
        while c.poll_transmit(&mut b) {
            if drop_client_frame == Some(sent) {
                drop_client_frame = None;
            } else {
                s.handle_input(&b, now).unwrap();
            }
            sent += 1;
            b.clear();
            moved = true;
        }
        while s.poll_transmit(&mut b) {
            c.handle_input(&b, now).unwrap();
            b.clear();
            moved = true;
        }
        if !moved {
            return;
        }
    }
    panic!("never quiet");
}

#[test]
fn frame_vectors() {
    // SNRM from client 16 to server 1/16 (2-byte address), no parameters: Green Book style.
    let f = Frame {
        segmented: false,
        dest: SERVER.encode(),
        src: client_address(16),
        control: Control::Snrm { poll: true },
        info: vec![],
    };
    let mut out = Vec::new();
    f.encode(&mut out);
    assert_eq!(out[..7], h("7E A0 08 02 21 21 93")[..]);
    assert_eq!(*out.last().unwrap(), 0x7E);
    let mut d = Deframer::default();
    d.push(&out);
    assert_eq!(d.next_frame().unwrap().unwrap(), f);
    // CRC-16/X-25 check value.
    assert_eq!(fcs16(b"123456789"), 0x906E);
    // Address forms.
    for a in [
        ServerAddress {
            logical: 1,
            physical: None,
            size: 1,
        },
        SERVER,
        ServerAddress {
            logical: 0x3FFF,
            physical: Some(0x1234),
            size: 4,
        },
    ] {
        assert_eq!(ServerAddress::decode(&a.encode()), Some(a));
    }
    let p = HdlcParams {
        max_info_tx: 512,
        max_info_rx: 128,
        window_tx: 7,
        window_rx: 1,
    };
    assert_eq!(HdlcParams::decode(&p.encode()).unwrap(), p);
    assert_eq!(
        HdlcParams::decode(&h(
            "81 80 14 05 02 00 80 06 02 00 80 07 04 00 00 00 01 08 04 00 00 00 01"
        ))
        .unwrap(),
        HdlcParams::default()
    );
}

#[test]
fn connect_segment_both_ways_and_disconnect() {
    for window in [1u8, 7] {
        let params = HdlcParams {
            max_info_tx: 128,
            max_info_rx: 128,
            window_tx: window,
            window_rx: window,
        };
        let (mut c, mut s, now) = pair(params);
        pump(&mut c, &mut s, now, None);
        assert!(matches!(c.poll_event(), Some(LinkEvent::Connected(_))));
        assert!(matches!(s.poll_event(), Some(LinkEvent::Connected(_))));
        assert_eq!(s.client_sap(), Some(16));
        let big: Vec<u8> = (0..5000).map(|i| i as u8).collect();
        c.send_apdu(&big).unwrap();
        pump(&mut c, &mut s, now, None);
        assert_eq!(s.poll_event(), Some(LinkEvent::Apdu(big.clone())));
        s.send_apdu(&big).unwrap();
        pump(&mut c, &mut s, now, None);
        assert_eq!(c.poll_event(), Some(LinkEvent::Apdu(big)));
        c.disconnect(now);
        pump(&mut c, &mut s, now, None);
        assert_eq!(c.poll_event(), Some(LinkEvent::Disconnected));
        assert_eq!(s.poll_event(), Some(LinkEvent::Disconnected));
    }
}

#[test]
fn a_dropped_frame_is_retransmitted_after_the_timeout() {
    let (mut c, mut s, now) = pair(HdlcParams::default());
    pump(&mut c, &mut s, now, None);
    c.poll_event();
    s.poll_event();
    c.send_apdu(&[0xC0, 1, 2, 3]).unwrap();
    pump(&mut c, &mut s, now, Some(0));
    assert_eq!(s.poll_event(), None);
    let t = c.poll_timeout().unwrap();
    c.handle_timeout(t);
    pump(&mut c, &mut s, t, None);
    assert_eq!(s.poll_event(), Some(LinkEvent::Apdu(vec![0xC0, 1, 2, 3])));
}

#[test]
fn silence_ends_the_link_after_retries() {
    let (mut c, _s, _) = pair(HdlcParams::default());
    let mut b = Vec::new();
    for _ in 0..10 {
        while c.poll_transmit(&mut b) {}
        match c.poll_timeout() {
            Some(t) => c.handle_timeout(t),
            None => break,
        }
    }
    assert_eq!(c.poll_event(), Some(LinkEvent::Disconnected));
}

#[test]
fn bad_fcs_other_addresses_and_garbage_are_ignored() {
    let (mut c, mut s, now) = pair(HdlcParams::default());
    let mut snrm = Vec::new();
    c.poll_transmit(&mut snrm);
    let mut bad = snrm.clone();
    bad[5] ^= 0x40;
    s.handle_input(&bad, now).unwrap();
    s.handle_input(&[0x00, 0x13, 0x7E, 0x7E, 0xFF], now)
        .unwrap();
    let mut b = Vec::new();
    assert!(!s.poll_transmit(&mut b));
    // To another server.
    let other = Frame {
        segmented: false,
        dest: ServerAddress {
            logical: 2,
            physical: Some(16),
            size: 2,
        }
        .encode(),
        src: client_address(16),
        control: Control::Snrm { poll: true },
        info: vec![],
    };
    let mut o = Vec::new();
    other.encode(&mut o);
    s.handle_input(&o, now).unwrap();
    assert!(!s.poll_transmit(&mut b));
    // The real one, one byte at a time.
    for byte in &snrm {
        s.handle_input(&[*byte], now).unwrap();
    }
    assert!(s.poll_transmit(&mut b));
    assert!(s.is_connected());
}

#[test]
fn every_prefix_and_hostile_frames_fail_cleanly() {
    let f = Frame {
        segmented: true,
        dest: SERVER.encode(),
        src: client_address(1),
        control: Control::I {
            ns: 3,
            nr: 5,
            poll: true,
        },
        info: vec![0xE6, 0xE6, 0, 0xC0, 1],
    };
    let mut out = Vec::new();
    f.encode(&mut out);
    let body = &out[1..out.len() - 1];
    assert_eq!(Frame::decode(body).unwrap(), f);
    for cut in 0..body.len() {
        assert!(Frame::decode(&body[..cut]).is_err());
    }
    // A deframer fed endless garbage keeps nothing.
    let mut d = Deframer::default();
    for _ in 0..1000 {
        d.push(&[0x55; 100]);
        assert!(d.next_frame().unwrap().is_none());
    }
    // A length field that lies.
    let mut d = Deframer::default();
    d.push(&h("7E A0 50 02 21 21 93 00 00 7E 7E"));
    let _ = d.next_frame();
}
