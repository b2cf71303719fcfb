use super::super::*;
use crate::codec::Codec;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn i_frame(info: &[u8]) -> Frame {
    Frame {
        segmented: false,
        dest: vec![0x03],
        src: vec![0x21],
        control: Control::I {
            ns: 0,
            nr: 0,
            poll: true,
        },
        info: info.to_vec(),
    }
}

#[test]
fn snrm_without_info_byte_exact() {
    // Client 0x10 -> server logical 1: the frame Gurux and most meters use.
    let f = Frame {
        segmented: false,
        dest: ServerAddress::one_byte(1).unwrap().to_bytes(),
        src: client_address(0x10).unwrap(),
        control: Control::Snrm { poll: true },
        info: Vec::new(),
    };
    let bytes = hex("7EA0070321930F017E");
    assert_eq!(f.to_bytes(), bytes);
    assert_eq!(Frame::decode(&bytes).unwrap(), f);
}

#[test]
fn i_frame_byte_exact_with_hcs() {
    // A get-request for 1.0.1.8.0.255 attribute 2 (Gurux vector get_request).
    let bytes = hex("7EA0190321107FDAE6E600C001C100030100010800FF020032687E");
    let f = Frame::decode(&bytes).unwrap();
    assert_eq!(
        f.control,
        Control::I {
            ns: 0,
            nr: 0,
            poll: true
        }
    );
    assert_eq!(f.info, hex("E6E600C001C100030100010800FF0200"));
    assert_eq!(f.to_bytes(), bytes);
}

#[test]
fn round_trips_every_control_and_address_size() {
    let controls = [
        Control::I {
            ns: 5,
            nr: 7,
            poll: false,
        },
        Control::Rr { nr: 3, poll: true },
        Control::Rnr { nr: 6, poll: false },
        Control::Snrm { poll: true },
        Control::Disc { poll: false },
        Control::Ua { fin: true },
        Control::Dm { fin: true },
        Control::Frmr { fin: false },
        Control::Ui { poll: true },
    ];
    let servers = [
        ServerAddress::one_byte(0x7F).unwrap(),
        ServerAddress::two_byte(1, 0x11).unwrap(),
        ServerAddress::four_byte(0x3FFF, 0x1234).unwrap(),
    ];
    for control in controls {
        assert_eq!(Control::from_byte(control.to_byte()).unwrap(), control);
        for server in servers {
            for info in [&[][..], &[0x7E, 0x7E, 0x7D][..], &[0xAA; 300][..]] {
                for segmented in [false, true] {
                    let f = Frame {
                        segmented,
                        dest: server.to_bytes(),
                        src: client_address(0x7F).unwrap(),
                        control,
                        info: info.to_vec(),
                    };
                    assert!(f.fits());
                    let bytes = f.to_bytes();
                    assert_eq!(Frame::decode(&bytes).unwrap(), f);
                    assert_eq!(ServerAddress::from_bytes(&f.dest).unwrap(), server);
                }
            }
        }
    }
}

#[test]
fn control_bytes_of_the_standard() {
    assert_eq!(Control::Snrm { poll: true }.to_byte(), 0x93);
    assert_eq!(Control::Disc { poll: true }.to_byte(), 0x53);
    assert_eq!(Control::Ua { fin: true }.to_byte(), 0x73);
    assert_eq!(Control::Dm { fin: true }.to_byte(), 0x1F);
    assert_eq!(Control::Frmr { fin: true }.to_byte(), 0x97);
    assert_eq!(Control::Ui { poll: true }.to_byte(), 0x13);
    assert_eq!(Control::Rr { nr: 1, poll: true }.to_byte(), 0x31);
    assert_eq!(Control::Rnr { nr: 1, poll: true }.to_byte(), 0x35);
    assert_eq!(
        Control::I {
            ns: 1,
            nr: 2,
            poll: true
        }
        .to_byte(),
        0x52
    );
    // REJ (0x09) and SREJ (0x0D) are not used by DLMS.
    assert_eq!(
        Control::from_byte(0x09),
        Err(HdlcError::UnknownControl(0x09))
    );
    assert_eq!(
        Control::from_byte(0x0D),
        Err(HdlcError::UnknownControl(0x0D))
    );
}

#[test]
fn server_address_forms() {
    assert_eq!(ServerAddress::one_byte(1).unwrap().to_bytes(), [0x03]);
    assert_eq!(
        ServerAddress::two_byte(1, 17).unwrap().to_bytes(),
        [0x02, 0x23]
    );
    assert_eq!(
        ServerAddress::four_byte(1, 0x1234).unwrap().to_bytes(),
        [0x00, 0x02, 0x48, 0x69]
    );
    assert!(ServerAddress::one_byte(0x80).is_err());
    assert!(ServerAddress::two_byte(1, 0x80).is_err());
    assert!(ServerAddress::four_byte(0x4000, 1).is_err());
    for bad in [
        &[][..],
        &[0x02][..],
        &[0x02, 0x02, 0x03][..],
        &[0x03, 0x03][..],
    ] {
        assert!(ServerAddress::from_bytes(bad).is_err(), "{bad:?}");
    }
    assert_eq!(client_address(0x10).unwrap(), [0x21]);
    assert!(client_address(0x80).is_err());
    assert_eq!(parse_client_address(&[0x21]), Ok(0x10));
    assert!(parse_client_address(&[0x20]).is_err());
    assert!(parse_client_address(&[0x20, 0x21]).is_err());
}

#[test]
fn truncation_loop() {
    for f in [i_frame(&[]), i_frame(&[1, 2, 3])] {
        let bytes = f.to_bytes();
        for cut in 0..bytes.len() {
            assert!(Frame::decode(&bytes[..cut]).is_err(), "{cut}");
            let mut d = Deframer::new();
            d.push(&bytes[..cut]);
            assert_eq!(d.next_frame(), Ok(None), "{cut}");
        }
    }
}

#[test]
fn corrupted_bytes_are_detected() {
    let bytes = i_frame(&[1, 2, 3]).to_bytes();
    // Flipping any bit between the flags is caught by the length, HCS or FCS check.
    for i in 1..bytes.len() - 1 {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            assert!(Frame::decode(&bad).is_err(), "byte {i} bit {bit}");
        }
    }
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 2] ^= 1;
    assert_eq!(Frame::decode(&bad), Err(HdlcError::BadFcs));
}

#[test]
fn hostile_frames() {
    // Length field lies (says 0x7FF).
    let mut lie = i_frame(&[1]).to_bytes();
    lie[1] = 0xA7;
    lie[2] = 0xFF;
    assert!(matches!(
        Frame::decode(&lie),
        Err(HdlcError::BadLength {
            declared: 0x7FF,
            ..
        })
    ));
    // Not format type 3.
    let mut fmt = i_frame(&[1]).to_bytes();
    fmt[1] = 0x80 | (fmt[1] & 0x0F);
    assert_eq!(Frame::decode(&fmt), Err(HdlcError::BadFormat(fmt[1])));
    // No closing flag.
    let open = &i_frame(&[1]).to_bytes()[..10];
    assert_eq!(Frame::decode(open), Err(HdlcError::MissingFlag));
    assert_eq!(Frame::decode(&[]), Err(HdlcError::MissingFlag));
    assert_eq!(Frame::decode(&[0x7E]), Err(HdlcError::MissingFlag));
    // An address field that never ends (no LSB set) within 4 bytes, with a valid FCS.
    let body = [0xA0, 0x0B, 0x02, 0x02, 0x02, 0x02, 0x02, 0x21, 0x93];
    let mut raw = vec![FLAG];
    raw.extend_from_slice(&body);
    raw.extend_from_slice(&fcs16(&body).to_le_bytes());
    raw.push(FLAG);
    assert!(matches!(
        Frame::decode(&raw),
        Err(HdlcError::BadAddress { .. })
    ));
    // Three bytes left for HCS + info + FCS: room for no info field.
    let body = [0xA0, 0x08, 0x03, 0x21, 0x10, 0x00];
    let mut raw = vec![FLAG];
    raw.extend_from_slice(&body);
    raw.extend_from_slice(&fcs16(&body).to_le_bytes());
    raw.push(FLAG);
    assert!(matches!(
        Frame::decode(&raw),
        Err(HdlcError::BadLength { .. })
    ));
    // A frame too long for the 11-bit length does not fit.
    assert!(!i_frame(&[0; MAX_INFO_LEN + 10]).fits());
    assert!(i_frame(&[0; MAX_INFO_LEN]).fits());
}

#[test]
fn deframer_skips_garbage_and_recovers_after_bad_fcs() {
    // The garbage holds a fake frame header (7E A0 11) whose announced end falls on a flag
    // after the first good frame: the good frame must still come out.
    let a = i_frame(&[0x7E, 1, 0x7E]).to_bytes();
    let b = i_frame(&[2]).to_bytes();
    let mut corrupt = i_frame(&[3, 3, 3]).to_bytes();
    let n = corrupt.len();
    corrupt[n - 4] ^= 0xFF;
    let mut stream = vec![0x00, 0x7E, 0x7E, 0xA0, 0x11];
    stream.extend(&a);
    stream.extend([0x55, 0x7E, 0x7E]);
    stream.extend(&corrupt);
    stream.extend(&b);
    stream.extend([0xFF, 0x7E]);
    // Byte-by-byte and all at once give the same result.
    for chunk in [1, stream.len()] {
        let mut d = Deframer::new();
        let mut frames = Vec::new();
        let mut errors = Vec::new();
        for part in stream.chunks(chunk) {
            d.push(part);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => errors.push(e),
                }
            }
        }
        assert_eq!(frames.len(), 2, "chunk {chunk}");
        assert_eq!(frames[0].info, [0x7E, 1, 0x7E]);
        assert_eq!(frames[1].info, [2]);
        // The corrupted frame is reported; the fake header in the garbage may be too.
        assert!(errors.contains(&HdlcError::BadFcs), "chunk {chunk}");
        assert!(errors.len() <= 2, "chunk {chunk}: {errors:?}");
    }
}

#[test]
fn deframer_shared_flag_between_frames() {
    let a = i_frame(&[1]).to_bytes();
    let b = i_frame(&[2]).to_bytes();
    let mut stream = a.clone();
    stream.extend(&b[1..]);
    let mut d = Deframer::new();
    d.push(&stream);
    assert_eq!(d.next_frame().unwrap().unwrap().info, [1]);
    assert_eq!(d.next_frame().unwrap().unwrap().info, [2]);
    assert_eq!(d.next_frame(), Ok(None));
}

#[test]
fn deframer_lying_length_then_resync() {
    let good = i_frame(&[9]).to_bytes();
    // A header announcing 0x7FF bytes, then good frames: once enough bytes are there to
    // show no closing flag, the deframer reports it and finds the good frames behind it.
    let mut stream = vec![0x7E, 0xA7, 0xFF, 0x03, 0x21, 0x10];
    for _ in 0..200 {
        stream.extend(&good);
    }
    let mut d = Deframer::new();
    d.push(&stream);
    assert_eq!(d.next_frame(), Err(HdlcError::MissingFlag));
    let mut count = 0;
    while let Some(f) = d.next_frame().unwrap() {
        assert_eq!(f.info, [9]);
        count += 1;
    }
    assert_eq!(count, 200);
}

#[test]
fn deframer_buffer_is_bounded() {
    // Endless garbage without flags holds nothing.
    let mut d = Deframer::new();
    for _ in 0..1000 {
        d.push(&[0x55; 1000]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.buffered(), 0);
    }
    // An open frame that never completes holds at most one frame.
    let mut d = Deframer::new();
    d.push(&[0x7E, 0xA7, 0xFF]);
    for _ in 0..100 {
        d.push(&[0x00; 100]);
        while d.next_frame() != Ok(None) {}
        assert!(d.buffered() <= MAX_FRAME_LEN);
    }
    // Pushing without draining drops the oldest bytes and says so.
    let mut d = Deframer::with_limit(MAX_FRAME_LEN);
    d.push(&vec![0x7E; 3 * MAX_FRAME_LEN]);
    assert!(d.buffered() <= MAX_FRAME_LEN);
    assert_eq!(d.next_frame(), Err(HdlcError::Overflow(2 * MAX_FRAME_LEN)));
    assert_eq!(d.next_frame(), Ok(None));
}

#[test]
fn params_byte_exact_and_round_trip() {
    let p = HdlcParams {
        max_info_tx: 200,
        max_info_rx: 1024,
        window_tx: 7,
        window_rx: 3,
    };
    // The same bytes as Gurux's SNRM (vector snrm_custom).
    assert_eq!(
        p.to_bytes(),
        hex("8180130501C806020400070400000007080400000003")
    );
    assert_eq!(HdlcParams::decode_exact(&p.to_bytes()), Ok(p));
    assert_eq!(HdlcParams::from_info(&[]), Ok(HdlcParams::default()));
    // The Green Book's example UA: 2-byte sizes, 4-byte windows.
    let ua = hex("8180140502008006020080070400000001080400000001");
    assert_eq!(HdlcParams::decode_exact(&ua), Ok(HdlcParams::default()));
    for cut in 0..p.to_bytes().len() {
        assert!(
            HdlcParams::decode_exact(&p.to_bytes()[..cut]).is_err(),
            "{cut}"
        );
    }
}

#[test]
fn params_hostile() {
    // Group length larger than the field.
    assert!(HdlcParams::decode_exact(&hex("818010050180")).is_err());
    // Value lengths 0 and 5.
    assert!(HdlcParams::decode_exact(&hex("8180020500")).is_err());
    assert!(HdlcParams::decode_exact(&hex("81800705050000000080")).is_err());
    // Zero sizes and windows are refused; windows above 7 are capped.
    assert!(HdlcParams::decode_exact(&hex("818003050100")).is_err());
    assert!(HdlcParams::decode_exact(&hex("818003070100")).is_err());
    assert_eq!(
        HdlcParams::decode_exact(&hex("818003070140"))
            .unwrap()
            .window_tx,
        7
    );
    // Wrong identifiers.
    assert!(HdlcParams::decode_exact(&hex("828000")).is_err());
    assert!(HdlcParams::decode_exact(&hex("818100")).is_err());
    // Unknown parameters are skipped.
    assert_eq!(
        HdlcParams::decode_exact(&hex("8180030901FF")),
        Ok(HdlcParams::default())
    );
}

#[test]
fn negotiation_takes_the_smaller_limit_each_way() {
    let server = HdlcParams {
        max_info_tx: 512,
        max_info_rx: 256,
        window_tx: 7,
        window_rx: 1,
    };
    let client = HdlcParams {
        max_info_tx: 1024,
        max_info_rx: 128,
        window_tx: 3,
        window_rx: 7,
    };
    let s = server.negotiate(client);
    assert_eq!(
        s,
        HdlcParams {
            max_info_tx: 128,
            max_info_rx: 256,
            window_tx: 7,
            window_rx: 1
        }
    );
    // The client, reading the server's answer, ends with the mirror image.
    assert_eq!(client.negotiate(s), s.mirrored());
}
