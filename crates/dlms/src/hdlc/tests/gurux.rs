//! Byte-exact checks against testdata/gurux/link.json (made by interop/vectors/link.py with
//! gurux-dlms 1.0.203). Each HDLC vector comes with the same APDU framed by a wrapper client,
//! so the information fields are checked against a second, independent Gurux path.
//!
//! Gurux quirks seen here (ours follows the standard and stays compatible):
//! - a default SNRM carries no information field at all (we do the same);
//! - window sizes are sent on 4 bytes, information field sizes on 1 or 2 (so do we);
//! - when segmenting, the first I frame's information field is `max_info_tx - 3` bytes (125
//!   of 128: the LLC header is reserved twice); we fill every segment to `max_info_tx`;
//! - all segments are built at once with P set on each, without waiting for RR.

use super::super::*;
use crate::codec::Codec;
use crate::wrapper;
use serde_json::Value;
use std::time::Instant;

fn vectors() -> Vec<Value> {
    let json: Value = serde_json::from_str(include_str!("../../../../../testdata/gurux/link.json"))
        .expect("link.json parses");
    json["vectors"].as_array().expect("vectors").clone()
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn frames(v: &Value) -> Vec<Vec<u8>> {
    v["frames"].as_array().unwrap().iter().map(hex).collect()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key}"))
}

fn server_of(v: &Value) -> ServerAddress {
    ServerAddress::from_bytes(&hex(&v["dest"])).unwrap()
}

fn deframe(bytes: &[Vec<u8>]) -> Vec<Frame> {
    let mut d = Deframer::new();
    for b in bytes {
        d.push(b);
    }
    let mut out = Vec::new();
    while let Some(f) = d.next_frame().unwrap() {
        out.push(f);
    }
    out
}

/// A client link connected to `server` through a UA with default parameters.
fn connected_client(server: ServerAddress, params: HdlcParams) -> HdlcLink {
    let now = Instant::now();
    let mut c = HdlcLink::client(0x10, server, params, LinkLimits::default());
    c.connect(now);
    let mut snrm = Vec::new();
    assert!(c.poll_transmit(&mut snrm));
    let ua = Frame {
        segmented: false,
        dest: client_address(0x10).unwrap(),
        src: server.to_bytes(),
        control: Control::Ua { fin: true },
        info: HdlcParams::default().to_bytes(),
    };
    c.handle_input(&ua.to_bytes(), now).unwrap();
    assert!(c.is_connected());
    c
}

#[test]
fn snrm_frames() {
    let mut seen = 0;
    for v in vectors().iter().filter(|v| v["kind"] == "snrm") {
        let bytes = frames(v).remove(0);
        let params = HdlcParams {
            max_info_tx: num(v, "max_info_tx") as u16,
            max_info_rx: num(v, "max_info_rx") as u16,
            window_tx: num(v, "window_tx") as u8,
            window_rx: num(v, "window_rx") as u8,
        };
        let f = Frame::decode(&bytes).unwrap();
        assert_eq!(f.control, Control::Snrm { poll: true });
        assert_eq!(f.dest, hex(&v["dest"]));
        assert_eq!(f.src, hex(&v["src"]));
        assert_eq!(HdlcParams::from_info(&f.info), Ok(params), "{}", v["name"]);
        // Our client link sends the very same bytes.
        let mut c = HdlcLink::client(0x10, server_of(v), params, LinkLimits::default());
        c.connect(Instant::now());
        let mut out = Vec::new();
        assert!(c.poll_transmit(&mut out));
        assert_eq!(
            hex::encode_upper(&out),
            hex::encode_upper(&bytes),
            "{}",
            v["name"]
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn ua_fields_read_as_gurux_reads_them() {
    let mut seen = 0;
    for v in vectors().iter().filter(|v| v["kind"] == "ua") {
        let server_view = HdlcParams::from_info(&hex(&v["info"])).unwrap();
        let client_view = server_view.mirrored();
        assert_eq!(
            u64::from(client_view.max_info_tx),
            num(v, "client_max_info_tx")
        );
        assert_eq!(
            u64::from(client_view.max_info_rx),
            num(v, "client_max_info_rx")
        );
        assert_eq!(u64::from(client_view.window_tx), num(v, "client_window_tx"));
        assert_eq!(u64::from(client_view.window_rx), num(v, "client_window_rx"));
        // A client link that proposed the largest values ends up with the server's.
        let big = HdlcParams {
            max_info_tx: MAX_INFO_LEN as u16,
            max_info_rx: MAX_INFO_LEN as u16,
            window_tx: 7,
            window_rx: 7,
        };
        let server = ServerAddress::one_byte(1).unwrap();
        let mut c = HdlcLink::client(0x10, server, big, LinkLimits::default());
        let now = Instant::now();
        c.connect(now);
        let ua = Frame {
            segmented: false,
            dest: client_address(0x10).unwrap(),
            src: server.to_bytes(),
            control: Control::Ua { fin: true },
            info: hex(&v["info"]),
        };
        c.handle_input(&ua.to_bytes(), now).unwrap();
        let want = HdlcParams {
            max_info_tx: client_view.max_info_tx.min(MAX_INFO_LEN as u16),
            max_info_rx: client_view.max_info_rx.min(MAX_INFO_LEN as u16),
            ..client_view
        };
        assert_eq!(c.poll_event(), Some(LinkEvent::Connected(want)));
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[test]
fn i_frames_decode_reencode_and_reassemble() {
    let mut seen = 0;
    for v in vectors().iter().filter(|v| v["kind"] == "i") {
        let name = v["name"].as_str().unwrap();
        let bytes = frames(v);
        let apdu = hex(&v["apdu"]);
        let decoded = deframe(&bytes);
        assert_eq!(decoded.len(), bytes.len(), "{name}");
        let mut info = Vec::new();
        for (i, (f, raw)) in decoded.iter().zip(&bytes).enumerate() {
            assert_eq!(f.to_bytes(), *raw, "{name} frame {i}");
            assert_eq!(f.dest, hex(&v["dest"]), "{name}");
            assert_eq!(f.src, hex(&v["src"]), "{name}");
            assert_eq!(f.segmented, i + 1 < bytes.len(), "{name} frame {i}");
            assert_eq!(
                f.control,
                Control::I {
                    ns: i as u8,
                    nr: 0,
                    poll: true
                },
                "{name}"
            );
            info.extend_from_slice(&f.info);
        }
        assert_eq!(info[..3], LLC_REQUEST, "{name}");
        assert_eq!(info[3..], apdu[..], "{name}");
        if let Some(size) = v["size"].as_u64() {
            let want = ServerAddress {
                logical: num(v, "logical") as u16,
                physical: v["physical"].as_u64().map(|p| p as u16),
                size: size as u8,
            };
            assert_eq!(server_of(v), want, "{name}");
            assert_eq!(want.to_bytes(), hex(&v["dest"]), "{name}");
        }

        // Our server link reassembles Gurux's frames into the APDU.
        let now = Instant::now();
        let mut s = HdlcLink::server(server_of(v), HdlcParams::default(), LinkLimits::default());
        let snrm = Frame {
            segmented: false,
            dest: hex(&v["dest"]),
            src: hex(&v["src"]),
            control: Control::Snrm { poll: true },
            info: Vec::new(),
        };
        s.handle_input(&snrm.to_bytes(), now).unwrap();
        assert!(matches!(s.poll_event(), Some(LinkEvent::Connected(_))));
        assert_eq!(s.client_sap(), Some(0x10));
        let mut ua = Vec::new();
        assert!(s.poll_transmit(&mut ua));
        for (i, raw) in bytes.iter().enumerate() {
            s.handle_input(raw, now).unwrap();
            let mut out = Vec::new();
            if i + 1 < bytes.len() {
                // Every non-final segment is acknowledged with RR, F set, N(R) = next.
                assert!(s.poll_transmit(&mut out), "{name}");
                assert_eq!(
                    Frame::decode(&out).unwrap().control,
                    Control::Rr {
                        nr: (i as u8 + 1) & 7,
                        poll: true
                    }
                );
            } else {
                // The final one waits for the application's answer.
                assert!(!s.poll_transmit(&mut out), "{name}");
            }
        }
        assert_eq!(
            s.poll_event(),
            Some(LinkEvent::Apdu(apdu.clone())),
            "{name}"
        );

        // Our client link frames an unsegmented APDU exactly as Gurux does.
        if bytes.len() == 1 {
            let mut c = connected_client(server_of(v), HdlcParams::default());
            c.send_apdu(&apdu).unwrap();
            let mut out = Vec::new();
            assert!(c.poll_transmit(&mut out));
            assert_eq!(
                hex::encode_upper(&out),
                hex::encode_upper(&bytes[0]),
                "{name}"
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn supervisory_frames() {
    let all = vectors();
    let get = |name: &str| all.iter().find(|v| v["name"] == name).unwrap().clone();
    let rr = frames(&get("rr")).remove(0);
    let f = Frame::decode(&rr).unwrap();
    assert_eq!(f.control, Control::Rr { nr: 1, poll: true });
    assert!(f.info.is_empty());
    assert_eq!(f.to_bytes(), rr);
    let disc = frames(&get("disc")).remove(0);
    let f = Frame::decode(&disc).unwrap();
    assert_eq!(f.control, Control::Disc { poll: true });
    assert_eq!(f.to_bytes(), disc);
    // Our client's DISC is the same frame.
    let mut c = connected_client(ServerAddress::one_byte(1).unwrap(), HdlcParams::default());
    c.disconnect(Instant::now());
    let mut out = Vec::new();
    assert!(c.poll_transmit(&mut out));
    assert_eq!(out, disc);
}

#[test]
fn wrapper_frames() {
    let mut seen = 0;
    let mut d = wrapper::Deframer::new(4096);
    let mut want = Vec::new();
    for v in vectors().iter().filter(|v| v["kind"] == "wrapper") {
        let bytes = frames(v).remove(0);
        let frame = wrapper::WrapperFrame {
            source: num(v, "source") as u16,
            destination: num(v, "destination") as u16,
            apdu: hex(&v["apdu"]),
        };
        assert_eq!(
            wrapper::WrapperFrame::decode_exact(&bytes),
            Ok(frame.clone())
        );
        let mut out = Vec::new();
        frame.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
        d.push(&bytes);
        want.push(frame);
        seen += 1;
    }
    let mut got = Vec::new();
    while let Some(f) = d.next_frame().unwrap() {
        got.push(f);
    }
    assert_eq!(got, want);
    assert_eq!(seen, 2);
}
