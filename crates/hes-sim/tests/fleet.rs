//! The fleet end to end, over TCP on loopback, with our own client (`dlms-net`): reads equal the
//! ground truth, each fault does what it claims, pushes arrive ciphered and decipherable, and
//! the commands a head-end sends (key transfer, firmware upgrade, clock, relay) take effect.
//! Each test uses its own 127.x range so they can run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlms::client::ClientConfig;
use dlms::cosem::image_transfer::{
    image_activate_params, image_block_transfer_params, image_transfer_initiate_params,
    image_verify_params,
};
use dlms::cosem::profile_generic::entry_descriptor;
use dlms::security::{wrap_key, CipherKeys, SecurityContext};
use dlms::xdlms::{ActionResult, Apdu, DataAccessResult, GetDataResult, SelectiveAccess};
use dlms::{
    AttributeDescriptor, Codec, Data, DateTime, MethodDescriptor, ObisCode, SecurityLevel,
    SystemTitle,
};
use dlms_net::{Connection, NetError};
use hes_sim::data::Quantity;
use hes_sim::fleet::{Faults, Fleet, FleetConfig, InventoryEntry, PushConfig, QuirkName, Role};
use hes_sim::objects::image::build_image;
use hes_sim::{obis, Profile};
use tokio::io::AsyncReadExt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Public,
    Lls,
    Hls,
}

fn hex16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn config(m: &InventoryEntry, level: Level, ic: u32) -> ClientConfig {
    let role = match level {
        Level::Public => Role::Public,
        Level::Lls => Role::Reader,
        Level::Hls => Role::Management,
    };
    let mut cfg = m
        .client_config(role, SystemTitle(*b"TST\0\0\0\0\x01"), ic, vec![7; 16])
        .unwrap();
    cfg.response_timeout = Duration::from_secs(5);
    cfg
}

async fn open(m: &InventoryEntry, level: Level, ic: u32) -> Result<Connection, NetError> {
    Connection::connect(
        &m.endpoint.host,
        m.endpoint.port,
        config(m, level, ic),
        Duration::from_secs(3),
    )
    .await
}

fn attr(class_id: u16, obis: ObisCode, attribute: i8) -> AttributeDescriptor {
    AttributeDescriptor {
        class_id,
        instance: obis,
        attribute,
    }
}

async fn get(c: &mut Connection, class_id: u16, o: ObisCode, a: i8) -> Data {
    match c.get(attr(class_id, o, a), None).await.unwrap() {
        GetDataResult::Data(d) => d,
        GetDataResult::Error(e) => panic!("{o} attribute {a}: {e:?}"),
    }
}

async fn fleet(first: [u8; 4], n: u32, f: impl FnOnce(&mut FleetConfig)) -> Arc<Fleet> {
    let mut cfg = FleetConfig::new(n);
    cfg.first_host = IpAddr::from(first);
    cfg.profile_entries = 96;
    f(&mut cfg);
    Fleet::start(cfg).await.unwrap()
}

/// Replaces one meter's faults.
async fn set(f: &Fleet, id: &str, faults: Faults) {
    f.set_faults(id, faults).await.unwrap();
}

fn entry(fleet: &Fleet, i: usize) -> InventoryEntry {
    fleet.meters()[i].inventory_entry()
}

#[tokio::test]
async fn every_meter_reads_as_its_truth_at_every_level() {
    let f = fleet([127, 51, 0, 1], 10, |c| {
        c.quirks = vec![
            (QuirkName::HdlcOnly, 0.5),
            (QuirkName::AlternativeSaps, 0.3),
            (QuirkName::SmallPdu, 0.3),
        ];
    })
    .await;
    let inv = f.inventory();
    assert!(inv
        .iter()
        .any(|m| m.endpoint.transport == hes_sim::fleet::Transport::Hdlc));
    assert!(inv.iter().any(|m| m.endpoint.client_sap_management == 48));
    for (i, m) in inv.iter().enumerate() {
        for level in [Level::Public, Level::Lls, Level::Hls] {
            let mut c = open(m, level, 1).await.unwrap();
            let ldn = get(&mut c, 1, obis::LDN, 2).await;
            assert_eq!(
                ldn,
                Data::OctetString(m.logical_device_name.clone().into_bytes())
            );
            let sel = SelectiveAccess {
                selector: 2,
                parameters: entry_descriptor(1, 0, 1, 0),
            };
            let GetDataResult::Data(Data::Array(rows)) = c
                .get(attr(7, obis::LOAD_PROFILE, 2), Some(sel))
                .await
                .unwrap()
            else {
                panic!("profile")
            };
            let before = {
                let meter = f.meters()[i].lock();
                meter.energy(Quantity::ImportActive, 1, meter.now())
            };
            let t1 = get(&mut c, 3, ObisCode::new(1, 0, 1, 8, 1, 255), 2).await;
            c.release().await.unwrap();
            let cell = &f.meters()[i];
            let meter = cell.lock();
            let truth: Vec<Data> = meter
                .profile_rows(Profile::Load, i64::MIN, i64::MAX)
                .into_iter()
                .map(|(_, r)| Data::Structure(r))
                .collect();
            // The profile may have gained an entry between the read and now.
            assert!(
                truth == rows || truth[..truth.len() - 1] == rows[1..],
                "meter {} {level:?}: profile differs from the truth",
                m.id
            );
            let now = meter.now();
            let after = meter.energy(Quantity::ImportActive, 1, now);
            let Data::DoubleLongUnsigned(t1) = t1 else {
                panic!()
            };
            assert!(
                before <= u64::from(t1) && u64::from(t1) <= after,
                "T1 register {t1} vs truth [{before}, {after}]"
            );
        }
    }
    // Each meter has its own keys: meter 0's keys do not open meter 1.
    let mut wrong = inv[1].clone();
    wrong.ek = inv[0].ek.clone();
    wrong.ak = inv[0].ak.clone();
    let e = open(&wrong, Level::Hls, 1).await.unwrap_err();
    assert_eq!(e.reason(), "authentication-failure", "{e}");
    f.shutdown();
}

#[tokio::test]
async fn refused_and_power_cut_meters_do_not_answer() {
    let f = fleet([127, 52, 0, 1], 2, |_| {}).await;
    let m = entry(&f, 0);
    let faults = Faults {
        refused: true,
        ..Faults::default()
    };
    f.set_faults(&m.id, faults).await.unwrap();
    assert_eq!(
        open(&m, Level::Public, 1).await.unwrap_err().reason(),
        "refused"
    );
    // The other meter is unaffected.
    open(&entry(&f, 1), Level::Public, 1)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    f.clear_faults().await.unwrap();
    open(&m, Level::Public, 1)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    f.set_power(&m.id, false).await.unwrap();
    assert_eq!(
        open(&m, Level::Public, 1).await.unwrap_err().reason(),
        "refused"
    );
    f.set_power(&m.id, true).await.unwrap();
    let mut c = open(&m, Level::Public, 1).await.unwrap();
    // The power cut is in the standard event log: down (1) then up (2), most recent last.
    let Data::Array(rows) = get(&mut c, 7, obis::STANDARD_LOG, 2).await else {
        panic!()
    };
    let codes: Vec<_> = rows
        .iter()
        .map(|r| match r {
            Data::Structure(v) => v[1].clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        codes[codes.len() - 2..],
        [Data::LongUnsigned(1), Data::LongUnsigned(2)]
    );
    c.release().await.unwrap();
    f.shutdown();
}

#[tokio::test]
async fn association_refusal_and_invocation_counter_jump() {
    let f = fleet([127, 53, 0, 1], 1, |_| {}).await;
    let m = entry(&f, 0);
    set(
        &f,
        &m.id,
        Faults {
            refuse_association: true,
            ..Faults::default()
        },
    )
    .await;
    let e = open(&m, Level::Public, 1).await.unwrap_err();
    assert_eq!(e.reason(), "association-rejected", "{e}");
    f.clear_faults().await.unwrap();
    // A session moves the counter on, then the meter's expectation jumps far ahead.
    let c = open(&m, Level::Hls, 100).await.unwrap();
    c.release().await.unwrap();
    set(
        &f,
        &m.id,
        Faults {
            ic_jump: 1_000_000,
            ..Faults::default()
        },
    )
    .await;
    let e = open(&m, Level::Hls, 200).await.unwrap_err();
    assert_eq!(e.reason(), "authentication-failure", "{e}");
    // Resynchronise from the public client's view of 0.0.43.1.0.255, then it works.
    let mut p = open(&m, Level::Public, 1).await.unwrap();
    let Data::DoubleLongUnsigned(last) = get(&mut p, 1, obis::INVOCATION_COUNTER, 2).await else {
        panic!()
    };
    p.release().await.unwrap();
    assert!(last >= 1_000_100, "{last}");
    open(&m, Level::Hls, last + 1)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    f.shutdown();
}

#[tokio::test]
async fn corrupt_frames_slow_answers_and_drops_mid_block() {
    let f = fleet([127, 54, 0, 1], 8, |c| {
        c.quirks = vec![(QuirkName::HdlcOnly, 0.5)];
    })
    .await;
    let inv = f.inventory();
    let wrapper = inv
        .iter()
        .find(|m| m.endpoint.transport == hes_sim::fleet::Transport::Wrapper);
    let hdlc = inv
        .iter()
        .find(|m| m.endpoint.transport == hes_sim::fleet::Transport::Hdlc);
    for m in [wrapper.unwrap(), hdlc.unwrap()] {
        set(
            &f,
            &m.id,
            Faults {
                corrupt_frame: true,
                ..Faults::default()
            },
        )
        .await;
        let mut c = open(m, Level::Hls, 1).await.unwrap();
        let e = c.get(attr(8, obis::CLOCK, 2), None).await.unwrap_err();
        // HDLC: the bad frame is dropped (FCS) and the answer never comes; wrapper: an APDU
        // with an unknown tag where a ciphered one must be.
        let expected = match m.endpoint.transport {
            hes_sim::fleet::Transport::Hdlc => ["timeout", "link"],
            hes_sim::fleet::Transport::Wrapper => ["ciphering-failure", "protocol"],
        };
        assert!(
            expected.contains(&e.reason()),
            "{:?}: {e}",
            m.endpoint.transport
        );
        set(
            &f,
            &m.id,
            Faults {
                slow_ms: 200,
                ..Faults::default()
            },
        )
        .await;
        let t = Instant::now();
        let mut c = open(m, Level::Public, 1).await.unwrap();
        get(&mut c, 8, obis::CLOCK, 2).await;
        c.release().await.unwrap();
        // AARE and the GET answer (and the RLRE) each come 200 ms late.
        assert!(
            t.elapsed() >= Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
        set(
            &f,
            &m.id,
            Faults {
                drop_mid_block: true,
                ..Faults::default()
            },
        )
        .await;
        let mut c = open(m, Level::Public, 1).await.unwrap();
        // A clock read fits one APDU: unaffected. The 96-entry profile needs blocks.
        get(&mut c, 8, obis::CLOCK, 2).await;
        let e = c
            .get(attr(7, obis::LOAD_PROFILE, 2), None)
            .await
            .unwrap_err();
        assert!(matches!(e.reason(), "link" | "timeout"), "{e}");
        f.clear_faults().await.unwrap();
    }
    f.shutdown();
}

#[tokio::test]
async fn clock_drift_and_profile_anomalies_are_what_the_truth_says() {
    let f = fleet([127, 55, 0, 1], 1, |_| {}).await;
    let m = entry(&f, 0);
    set(
        &f,
        &m.id,
        Faults {
            clock_drift_s: -300,
            profile_anomalies_per_mille: 200,
            ..Faults::default()
        },
    )
    .await;
    let mut c = open(&m, Level::Lls, 1).await.unwrap();
    let clock = get(&mut c, 8, obis::CLOCK, 2).await;
    let t = clock.as_date_time().and_then(|d| d.to_unix()).unwrap();
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((t - (real - 300)).abs() <= 2, "clock {t} vs real {real}");
    let Data::Array(rows) = get(&mut c, 7, obis::LOAD_PROFILE, 2).await else {
        panic!()
    };
    c.release().await.unwrap();
    // Gaps: fewer than 96 entries; spikes: an entry 1,000,000 Wh above the next one.
    assert!(rows.len() < 96 && rows.len() > 50, "{}", rows.len());
    let imports: Vec<u32> = rows
        .iter()
        .map(|r| match r {
            Data::Structure(v) => match v[1] {
                Data::DoubleLongUnsigned(x) => x,
                _ => panic!(),
            },
            _ => panic!(),
        })
        .collect();
    assert!(
        imports.windows(2).any(|w| w[0] > w[1] + 900_000),
        "no spike"
    );
    let truth = f.meters()[0]
        .lock()
        .profile_rows(Profile::Load, i64::MIN, i64::MAX);
    assert!(truth.len() == rows.len() || truth.len() == rows.len() + 1);
    f.shutdown();
}

/// Reads one push: a wrapper frame with general-glo-ciphering inside.
async fn read_push(stream: &mut tokio::net::TcpStream) -> (u16, u16, Vec<u8>) {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    let frame = dlms::wrapper::WrapperFrame::decode_exact(&all).unwrap();
    (frame.source, frame.destination, frame.apdu)
}

#[tokio::test]
async fn pushes_arrive_ciphered_with_the_meters_keys() {
    let listener = tokio::net::TcpListener::bind("127.56.255.1:0")
        .await
        .unwrap();
    let dest = listener.local_addr().unwrap();
    let f = fleet([127, 56, 0, 1], 3, |c| {
        let mut p = PushConfig::new(dest);
        // 900 s of meter time is a quarter of a real second.
        p.interval_s = Some(900);
        c.push = Some(p);
        c.clock = hes_sim::fleet::Clock::new(None, 3600.0);
    })
    .await;
    let inv = f.inventory();
    let mut seen = std::collections::BTreeMap::new();
    let mut alarm_seen = false;
    f.tamper(&inv[2].id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (seen.len() < 3 || !alarm_seen) && Instant::now() < deadline {
        let (mut s, peer) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        let (src, dst, apdu) = read_push(&mut s).await;
        assert_eq!((src, dst), (1, 102));
        // The sender's system title is in the general-glo header: find its keys by it.
        assert_eq!(apdu[0], 0xDB);
        let title = &apdu[2..10];
        let m = inv
            .iter()
            .find(|m| hex::decode(&m.system_title).unwrap() == title)
            .unwrap();
        assert_eq!(
            peer.ip().to_string(),
            m.endpoint.host,
            "pushed from the meter's own address"
        );
        let mut ctx = SecurityContext::new(
            SecurityLevel::AuthenticatedEncrypted,
            SystemTitle(*b"HES-RECV"),
            CipherKeys {
                ek: hex16(&m.ek),
                ak: hex16(&m.ak),
            },
            1,
        );
        let plain = ctx.unprotect(&apdu).unwrap().apdu;
        let Apdu::DataNotification(n) = Apdu::decode_exact(&plain).unwrap() else {
            panic!()
        };
        let Data::Structure(body) = n.body else {
            panic!()
        };
        assert_eq!(
            body[0],
            Data::OctetString(m.logical_device_name.clone().into_bytes())
        );
        let at = DateTime::from_octets(n.date_time.as_deref().unwrap())
            .unwrap()
            .to_unix()
            .unwrap();
        let cell = f.meter(&m.id).unwrap();
        if body.len() == 4 {
            // Alarm: the alarm register has the tamper bit, the code is "cover removed".
            assert_eq!(body[2], Data::DoubleLongUnsigned(hes_sim::alarm::TAMPER));
            assert!(matches!(body[3], Data::LongUnsigned(40 | 41)));
            alarm_seen = true;
        } else {
            let truth = cell.lock().energy(Quantity::ImportActive, 0, at);
            assert_eq!(body[2], Data::DoubleLongUnsigned(truth as u32));
            seen.insert(m.id.clone(), at);
        }
    }
    assert_eq!(seen.len(), 3, "interval pushes from every meter");
    assert!(alarm_seen, "the tamper alarm was pushed");
    assert!(
        f.stats()
            .pushes_sent
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 4
    );
    f.shutdown();
}

#[tokio::test]
async fn key_transfer_rotates_the_keys_for_new_associations() {
    let f = fleet([127, 57, 0, 1], 1, |_| {}).await;
    let m = entry(&f, 0);
    let kek = hex16(&m.kek);
    let new_ek = [0x11; 16];
    let new_ak = [0x22; 16];
    let params = Data::Array(vec![
        Data::Structure(vec![
            Data::Enum(0),
            Data::OctetString(wrap_key(&kek, &new_ek).to_vec()),
        ]),
        Data::Structure(vec![
            Data::Enum(2),
            Data::OctetString(wrap_key(&kek, &new_ak).to_vec()),
        ]),
    ]);
    let mut c = open(&m, Level::Hls, 1).await.unwrap();
    let method = MethodDescriptor {
        class_id: 64,
        instance: obis::SECURITY_SETUP,
        method: 2,
    };
    let (r, _) = c.action(method, Some(params)).await.unwrap();
    assert_eq!(r, ActionResult::Success);
    let ic = c.next_invocation_counter().unwrap();
    c.release().await.unwrap();
    let e = open(&m, Level::Hls, ic).await.unwrap_err();
    assert_eq!(
        e.reason(),
        "authentication-failure",
        "old keys must fail: {e}"
    );
    let mut rotated = m.clone();
    rotated.ek = hex::encode_upper(new_ek);
    rotated.ak = hex::encode_upper(new_ak);
    open(&rotated, Level::Hls, ic + 10)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    // The inventory the fleet reports now has the new keys.
    assert_eq!(entry(&f, 0).ek, rotated.ek);
    f.shutdown();
}

#[tokio::test]
async fn firmware_upgrade_resumes_after_a_drop_then_activates() {
    let f = fleet([127, 58, 0, 1], 1, |_| {}).await;
    let m = entry(&f, 0);
    let image = build_image("HES-SIM 9.9.9", &vec![0x5A; 3000]);
    let block = hes_sim::IMAGE_BLOCK_SIZE as usize;
    let blocks: Vec<&[u8]> = image.chunks(block).collect();
    let it = |method| MethodDescriptor {
        class_id: 18,
        instance: obis::IMAGE_TRANSFER,
        method,
    };
    let mut ic = 1;
    let mut c = open(&m, Level::Hls, ic).await.unwrap();
    let init = image_transfer_initiate_params(b"fw-999", image.len() as u32);
    assert_eq!(
        c.action(it(1), Some(init.clone())).await.unwrap().0,
        ActionResult::Success
    );
    for (n, b) in blocks.iter().enumerate().take(blocks.len() / 2) {
        let p = image_block_transfer_params(n as u32, b);
        assert_eq!(
            c.action(it(2), Some(p)).await.unwrap().0,
            ActionResult::Success
        );
    }
    ic = c.next_invocation_counter().unwrap();
    drop(c); // the connection drops mid-transfer
    let mut c = open(&m, Level::Hls, ic).await.unwrap();
    assert_eq!(
        c.action(it(1), Some(init)).await.unwrap().0,
        ActionResult::Success
    );
    let Data::DoubleLongUnsigned(first_missing) = get(&mut c, 18, obis::IMAGE_TRANSFER, 4).await
    else {
        panic!()
    };
    assert_eq!(
        first_missing as usize,
        blocks.len() / 2,
        "resumes where it stopped"
    );
    for (n, b) in blocks.iter().enumerate().skip(first_missing as usize) {
        let p = image_block_transfer_params(n as u32, b);
        assert_eq!(
            c.action(it(2), Some(p)).await.unwrap().0,
            ActionResult::Success
        );
    }
    let verify = c
        .action(it(3), Some(image_verify_params()))
        .await
        .unwrap()
        .0;
    assert_eq!(verify, ActionResult::Success);
    let activate = c
        .action(it(4), Some(image_activate_params()))
        .await
        .unwrap()
        .0;
    assert_eq!(activate, ActionResult::Success);
    let v = get(&mut c, 1, obis::FIRMWARE, 2).await;
    assert_eq!(v, Data::VisibleString(b"HES-SIM 9.9.9".to_vec()));
    c.release().await.unwrap();
    f.shutdown();
}

#[tokio::test]
async fn quirks_refuse_what_real_meters_refuse() {
    let f = fleet([127, 59, 0, 1], 1, |c| {
        c.quirks = vec![
            (QuirkName::NoSetBlocks, 1.0),
            (QuirkName::NoDeviationInRange, 1.0),
            (QuirkName::SmallPdu, 1.0),
        ];
    })
    .await;
    let m = entry(&f, 0);
    let mut c = open(&m, Level::Hls, 1).await.unwrap();
    let now = f.meters()[0].lock().now();
    let range = |deviation: i16| {
        let mut from = DateTime::from_unix(now - 3600, 0, 0);
        let mut to = DateTime::from_unix(now, 0, 0);
        from.deviation = deviation;
        to.deviation = deviation;
        SelectiveAccess {
            selector: 1,
            parameters: dlms::cosem::profile_generic::range_descriptor(
                &hes_sim::Meter::profile_columns(Profile::Load)[0],
                &Data::OctetString(from.to_octets()),
                &Data::OctetString(to.to_octets()),
                &[],
            ),
        }
    };
    let r = c
        .get(attr(7, obis::LOAD_PROFILE, 2), Some(range(0)))
        .await
        .unwrap();
    assert_eq!(r, GetDataResult::Error(DataAccessResult::OtherReason));
    let r = c
        .get(attr(7, obis::LOAD_PROFILE, 2), Some(range(i16::MIN)))
        .await
        .unwrap();
    let GetDataResult::Data(Data::Array(rows)) = r else {
        panic!("{r:?}")
    };
    assert!((4..=5).contains(&rows.len()), "{}", rows.len());
    // A passive calendar name of 100 bytes does not fit a 128-byte PDU: the client would cut
    // it into blocks, which this meter refuses.
    let e = c
        .set(
            attr(20, obis::ACTIVITY_CALENDAR, 6),
            None,
            Data::OctetString(vec![b'x'; 100]),
        )
        .await;
    assert!(
        e.is_err() || e.as_ref().is_ok_and(|r| *r != DataAccessResult::Success),
        "{e:?}"
    );
    f.shutdown();
}

#[tokio::test]
async fn one_shared_socket_serves_every_meter_at_its_own_address() {
    let f = fleet([127, 60, 0, 250], 10, |c| {
        c.listen = hes_sim::fleet::ListenMode::Shared;
        c.port = 0;
    })
    .await;
    let inv = f.inventory();
    assert!(inv
        .iter()
        .all(|m| m.endpoint.port == inv[0].endpoint.port && m.endpoint.port != 0));
    // Addresses run over a /24 boundary: 127.60.0.250 .. 127.60.1.5.
    assert_eq!(inv[9].endpoint.host, "127.60.1.5");
    for m in [&inv[0], &inv[5], &inv[9]] {
        let mut c = open(m, Level::Hls, 1).await.unwrap();
        let ldn = get(&mut c, 1, obis::LDN, 2).await;
        assert_eq!(
            ldn,
            Data::OctetString(m.logical_device_name.clone().into_bytes())
        );
        c.release().await.unwrap();
    }
    // An address of the range that is no meter of the fleet: closed at once.
    let mut stray = inv[0].clone();
    stray.endpoint.host = "127.60.1.6".into();
    assert!(open(&stray, Level::Public, 1).await.is_err());
    // A refused meter resets the connection; the others still answer.
    set(
        &f,
        &inv[5].id,
        Faults {
            refused: true,
            ..Faults::default()
        },
    )
    .await;
    let e = open(&inv[5], Level::Public, 1).await.unwrap_err();
    assert!(matches!(e.reason(), "link" | "refused"), "{e}");
    open(&inv[6], Level::Public, 1)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    f.shutdown();
}
