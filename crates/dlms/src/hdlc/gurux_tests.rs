//! Frames recorded from Gurux DLMS for Python (`interop/vectors/link.py`): our deframer, CRCs and
//! address coding agree with an independent encoder byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use serde_json::Value;

use super::*;
use crate::wrapper;

fn vectors() -> Vec<Value> {
    let v: Value =
        serde_json::from_str(include_str!("../../../../testdata/gurux/link.json")).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

#[test]
fn gurux_frames_decode_and_reencode_byte_exactly() {
    let mut hdlc = 0;
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        for hexframe in v["frames"].as_array().unwrap() {
            let bytes = hex::decode(hexframe.as_str().unwrap()).unwrap();
            if name.starts_with("wrapper") {
                let mut d = wrapper::Deframer::new(1 << 16);
                d.push(&bytes);
                let f = d.next_frame().unwrap().unwrap();
                assert_eq!(u64::from(f.source), v["source"].as_u64().unwrap());
                assert_eq!(u64::from(f.destination), v["destination"].as_u64().unwrap());
                let mut out = Vec::new();
                wrapper::encode(f.source, f.destination, &f.apdu, &mut out).unwrap();
                assert_eq!(out, bytes, "{name}");
                continue;
            }
            hdlc += 1;
            let mut d = Deframer::default();
            d.push(&bytes);
            let f = d
                .next_frame()
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: no frame"));
            let mut out = Vec::new();
            f.encode(&mut out);
            assert_eq!(out, bytes, "{name}");
            let server = ServerAddress::decode(&f.dest).unwrap();
            assert_eq!(
                u64::from(server.logical),
                v["logical"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(
                u64::from(server.size),
                v["size"].as_u64().unwrap(),
                "{name}"
            );
            if server.size > 1 {
                assert_eq!(
                    server.physical.map(u64::from),
                    v["physical"].as_u64(),
                    "{name}"
                );
            }
            assert_eq!(server.encode(), f.dest, "{name}");
            let sap = v["client_sap"].as_u64().unwrap() as u8;
            assert_eq!(f.src, client_address(sap), "{name}");
            match (v["control"].as_str().unwrap(), f.control) {
                ("SNRM", Control::Snrm { poll: true }) | ("DISC", Control::Disc { poll: true }) => {
                }
                (
                    "I",
                    Control::I {
                        ns: 0,
                        nr: 0,
                        poll: true,
                    },
                ) => {
                    assert_eq!(&f.info[..3], &[0xE6, 0xE6, 0x00], "{name}: LLC header");
                    assert_eq!(f.info[3], 0x60, "{name}: an AARQ");
                }
                (want, got) => panic!("{name}: {want} vs {got:?}"),
            }
            if let Some(p) = v.get("params") {
                let got = HdlcParams::decode(&f.info).unwrap();
                assert_eq!(
                    u64::from(got.max_info_tx),
                    p["max_info_tx"].as_u64().unwrap()
                );
                assert_eq!(
                    u64::from(got.max_info_rx),
                    p["max_info_rx"].as_u64().unwrap()
                );
                assert_eq!(u64::from(got.window_tx), p["window_tx"].as_u64().unwrap());
                assert_eq!(u64::from(got.window_rx), p["window_rx"].as_u64().unwrap());
                assert_eq!(
                    got.encode(),
                    f.info,
                    "{name}: our parameter coding is Gurux's"
                );
            }
        }
    }
    assert_eq!(hdlc, 8);
}
