//! Client and server state machines as an in-memory pair (no sockets): every service, block
//! transfer both ways, every authentication mechanism and security level, over both links.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use dlms::client::{Authentication, Client, ClientConfig, ClientSecurity, Event, Response};
use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::{CipherKeys, EcPrivateKey, EccConfig, EccSuite, SecurityError, WideKeys};
use dlms::server::{
    ClientPolicy, CounterState, Objects, RequestContext, Server, ServerConfig, ServerEvent,
};
use dlms::xdlms::{ActionResult, Conformance, DataAccessResult, GetDataResult, SelectiveAccess};
use dlms::{
    AttributeDescriptor, Data, DateTime, Mechanism, MethodDescriptor, ObisCode, SecurityLevel,
    SystemTitle,
};

const EK: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const AK: [u8; 16] = [
    0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
];
const CLIENT_TITLE: SystemTitle = SystemTitle([0x4D, 0x4D, 0x4D, 0, 0, 0, 0, 1]);
const SERVER_TITLE: SystemTitle = SystemTitle([0x4D, 0x4D, 0x4D, 0, 0, 0xBC, 0x61, 0x4E]);
const REGISTER: ObisCode = ObisCode::new(1, 0, 1, 8, 0, 255);
const PROFILE: ObisCode = ObisCode::new(1, 0, 99, 1, 0, 255);
const BLOB: ObisCode = ObisCode::new(0, 0, 96, 99, 0, 255);
const DISCONNECT: ObisCode = ObisCode::new(0, 0, 96, 3, 10, 255);

/// A small meter: a register, a profile, a writable blob and a disconnector.
struct Meter {
    blob: Vec<u8>,
    connected: bool,
    counters: CounterState,
    rng: u8,
    rows: usize,
}

impl Meter {
    fn new(rows: usize) -> Self {
        Self {
            blob: vec![7; 10],
            connected: true,
            counters: CounterState::default(),
            rng: 1,
            rows,
        }
    }

    fn profile(&self) -> Vec<Data> {
        (0..self.rows)
            .map(|i| {
                let t = DateTime::from_unix(1_795_651_200 + 900 * i as i64, 60, 0);
                Data::Structure(vec![
                    Data::OctetString(t.to_octets()),
                    Data::DoubleLongUnsigned(1000 + i as u32),
                    Data::DoubleLongUnsigned(2000 + i as u32),
                    Data::LongUnsigned(i as u16),
                ])
            })
            .collect()
    }
}

impl Objects for Meter {
    fn get(
        &mut self,
        _ctx: &RequestContext,
        a: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        match (a.class_id, a.instance, a.attribute) {
            (3, REGISTER, 2) => Ok(Data::DoubleLongUnsigned(123_456)),
            (7, PROFILE, 2) => {
                let rows = self.profile();
                match access {
                    None => Ok(Data::Array(rows)),
                    // Entry selection only: enough to see the selective access arrive.
                    Some(sa) if sa.selector == 2 => {
                        let p = sa.parameters.as_elements().unwrap();
                        let from = p[0].as_i128().unwrap() as usize;
                        let to = p[1].as_i128().unwrap() as usize;
                        Ok(Data::Array(rows[from - 1..to].to_vec()))
                    }
                    Some(_) => Err(DataAccessResult::OtherReason),
                }
            }
            (1, BLOB, 2) => Ok(Data::OctetString(self.blob.clone())),
            (70, DISCONNECT, 2) => Ok(Data::Boolean(self.connected)),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn set(
        &mut self,
        _ctx: &RequestContext,
        a: &AttributeDescriptor,
        _access: Option<&SelectiveAccess>,
        value: Data,
    ) -> DataAccessResult {
        match (a.class_id, a.instance, a.attribute, value) {
            (1, BLOB, 2, Data::OctetString(v)) => {
                self.blob = v;
                DataAccessResult::Success
            }
            (1, BLOB, 2, _) => DataAccessResult::TypeUnmatched,
            _ => DataAccessResult::ReadWriteDenied,
        }
    }

    fn action(
        &mut self,
        _ctx: &RequestContext,
        m: &MethodDescriptor,
        params: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        match (m.class_id, m.instance, m.method) {
            (70, DISCONNECT, 1) => {
                self.connected = false;
                Ok(None)
            }
            (70, DISCONNECT, 2) => {
                self.connected = true;
                Ok(None)
            }
            // Echo: returns its parameter, to exercise blocks both ways.
            (1, BLOB, 1) => Ok(params),
            _ => Err(ActionResult::ObjectUndefined),
        }
    }

    fn counters(&mut self) -> &mut CounterState {
        &mut self.counters
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.rng = self.rng.wrapping_mul(73).wrapping_add(41);
            *b = self.rng;
        }
    }

    fn unix_time(&mut self) -> Option<u64> {
        Some(METER_NOW)
    }
}

/// The meter's clock, for certificates.
const METER_NOW: u64 = 1_795_651_200;

#[derive(Clone, Copy, Debug)]
enum Link {
    Wrapper,
    Hdlc,
}

fn transport(link: Link, sap: u16, max_info: u16) -> TransportConfig {
    match link {
        Link::Wrapper => TransportConfig::Wrapper {
            client_wport: sap,
            server_wport: 1,
        },
        Link::Hdlc => TransportConfig::Hdlc {
            client_sap: sap as u8,
            server: ServerAddress {
                logical: 1,
                physical: Some(16),
                size: 2,
            },
            params: HdlcParams {
                max_info_tx: max_info,
                max_info_rx: max_info,
                window_tx: 1,
                window_rx: 1,
            },
        },
    }
}

fn policies() -> Vec<ClientPolicy> {
    let secret = b"hls-secret-12345".to_vec();
    vec![
        ClientPolicy {
            sap: 16,
            authentication: Authentication::None,
            security: SecurityLevel::None,
        },
        ClientPolicy {
            sap: 17,
            authentication: Authentication::Low {
                password: b"12345678".to_vec(),
            },
            security: SecurityLevel::None,
        },
        ClientPolicy {
            sap: 1,
            authentication: Authentication::HighGmac,
            security: SecurityLevel::AuthenticatedEncrypted,
        },
        ClientPolicy {
            sap: 2,
            authentication: Authentication::HighGmac,
            security: SecurityLevel::Authenticated,
        },
        ClientPolicy {
            sap: 3,
            authentication: Authentication::High {
                mechanism: Mechanism::HighMd5,
                secret: secret.clone(),
            },
            security: SecurityLevel::None,
        },
        ClientPolicy {
            sap: 4,
            authentication: Authentication::High {
                mechanism: Mechanism::HighSha1,
                secret: secret.clone(),
            },
            security: SecurityLevel::None,
        },
        ClientPolicy {
            sap: 6,
            authentication: Authentication::HighEcdsa,
            security: SecurityLevel::AuthenticatedEncrypted,
        },
        ClientPolicy {
            sap: 7,
            authentication: Authentication::HighEcdsa,
            security: SecurityLevel::None,
        },
        ClientPolicy {
            sap: 5,
            authentication: Authentication::High {
                mechanism: Mechanism::HighSha256,
                secret,
            },
            security: SecurityLevel::AuthenticatedEncrypted,
        },
    ]
}

fn server_config(link: Link, max_pdu: u16) -> ServerConfig {
    ServerConfig {
        transport: transport(link, 0, 128),
        system_title: SERVER_TITLE,
        keys: CipherKeys { ek: EK, ak: AK },
        clients: policies(),
        max_receive_pdu: max_pdu,
        conformance: Conformance::DEFAULT_SERVER,
        max_request_bytes: 1 << 20,
        inactivity_timeout: Duration::from_secs(120),
    }
}

fn client_config(link: Link, sap: u16, max_pdu: u16, ic: u32) -> ClientConfig {
    let mut c = ClientConfig::new(transport(link, sap, 128));
    c.max_receive_pdu = max_pdu;
    c.challenge = b"P6wRJ21F".to_vec();
    let secret = b"hls-secret-12345".to_vec();
    let sec = |level| ClientSecurity {
        level,
        keys: CipherKeys { ek: EK, ak: AK },
        system_title: CLIENT_TITLE,
        invocation_counter: ic,
        dedicated_key: None,
    };
    match sap {
        17 => {
            c.authentication = Authentication::Low {
                password: b"12345678".to_vec(),
            }
        }
        1 => {
            c.authentication = Authentication::HighGmac;
            c.security = Some(sec(SecurityLevel::AuthenticatedEncrypted));
        }
        2 => {
            c.authentication = Authentication::HighGmac;
            c.security = Some(sec(SecurityLevel::Authenticated));
        }
        3 => {
            c.authentication = Authentication::High {
                mechanism: Mechanism::HighMd5,
                secret,
            }
        }
        4 => {
            c.authentication = Authentication::High {
                mechanism: Mechanism::HighSha1,
                secret,
            }
        }
        5 => {
            c.authentication = Authentication::High {
                mechanism: Mechanism::HighSha256,
                secret,
            };
            c.security = Some(sec(SecurityLevel::AuthenticatedEncrypted));
        }
        // HLS-ECDSA: the caller sets `ecc` (suite 1 or 2).
        6 => {
            c.authentication = Authentication::HighEcdsa;
            c.security = Some(sec(SecurityLevel::AuthenticatedEncrypted));
            c.challenge = [b"P6wRJ21F".as_slice(); 5].concat();
        }
        7 => {
            c.authentication = Authentication::HighEcdsa;
            c.security = Some(sec(SecurityLevel::None));
            c.challenge = [b"P6wRJ21F".as_slice(); 4].concat();
        }
        _ => {}
    }
    c
}

/// Moves bytes both ways until neither side has anything to send.
fn pump(client: &mut Client, server: &mut Server, meter: &mut Meter, now: Instant) {
    for _ in 0..100_000 {
        let mut moved = false;
        let mut buf = Vec::new();
        while client.poll_transmit(&mut buf) {
            server.handle_input(&buf, now, meter);
            buf.clear();
            moved = true;
        }
        while server.poll_transmit(&mut buf) {
            client.handle_input(&buf, now);
            buf.clear();
            moved = true;
        }
        if !moved {
            return;
        }
    }
    panic!("the pair never went quiet");
}

fn next_event(client: &mut Client) -> Event {
    client.poll_event().expect("an event")
}

fn associate(link: Link, sap: u16, meter: &mut Meter, max_pdu: u16) -> (Client, Server, Instant) {
    let now = Instant::now();
    let mut server = Server::new(server_config(link, max_pdu), now);
    let mut client = Client::new(client_config(link, sap, max_pdu, 1));
    client.connect(now);
    pump(&mut client, &mut server, meter, now);
    match next_event(&mut client) {
        Event::Associated(info) => assert_eq!(info.server_max_receive_pdu, max_pdu),
        other => panic!("{link:?} sap {sap}: {other:?}"),
    }
    assert!(matches!(server.poll_event(), Some(ServerEvent::Associated(c)) if c.client_sap == sap));
    (client, server, now)
}

fn get(
    client: &mut Client,
    server: &mut Server,
    meter: &mut Meter,
    now: Instant,
    a: AttributeDescriptor,
    sa: Option<SelectiveAccess>,
) -> GetDataResult {
    client.get(a, sa, now).unwrap();
    pump(client, server, meter, now);
    match next_event(client) {
        Event::Response(Response::Get(mut r)) => r.remove(0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_mechanism_and_level_over_both_links() {
    for link in [Link::Wrapper, Link::Hdlc] {
        for sap in [16, 17, 1, 2, 3, 4, 5] {
            let mut meter = Meter::new(96);
            let (mut c, mut s, now) = associate(link, sap, &mut meter, 1024);
            let r = get(
                &mut c,
                &mut s,
                &mut meter,
                now,
                AttributeDescriptor::new(3, REGISTER, 2),
                None,
            );
            assert_eq!(
                r,
                GetDataResult::Data(Data::DoubleLongUnsigned(123_456)),
                "{link:?} {sap}"
            );
            // 96 rows do not fit 1024 bytes: block transfer.
            let r = get(
                &mut c,
                &mut s,
                &mut meter,
                now,
                AttributeDescriptor::new(7, PROFILE, 2),
                None,
            );
            assert_eq!(
                r,
                GetDataResult::Data(Data::Array(meter.profile())),
                "{link:?} {sap}"
            );
            let r = get(
                &mut c,
                &mut s,
                &mut meter,
                now,
                AttributeDescriptor::new(3, PROFILE, 2),
                None,
            );
            assert_eq!(r, GetDataResult::Error(DataAccessResult::ObjectUndefined));
            c.release(now);
            pump(&mut c, &mut s, &mut meter, now);
            assert!(
                matches!(next_event(&mut c), Event::Released),
                "{link:?} {sap}"
            );
            assert!(
                matches!(next_event(&mut c), Event::Closed(None)),
                "{link:?} {sap}"
            );
        }
    }
}

#[test]
fn selective_access_list_set_and_action() {
    let mut meter = Meter::new(96);
    let (mut c, mut s, now) = associate(Link::Hdlc, 1, &mut meter, 256);
    let sa = SelectiveAccess {
        selector: 2,
        parameters: Data::Structure(vec![
            Data::DoubleLongUnsigned(3),
            Data::DoubleLongUnsigned(5),
            Data::LongUnsigned(1),
            Data::LongUnsigned(0),
        ]),
    };
    let r = get(
        &mut c,
        &mut s,
        &mut meter,
        now,
        AttributeDescriptor::new(7, PROFILE, 2),
        Some(sa),
    );
    assert_eq!(
        r,
        GetDataResult::Data(Data::Array(meter.profile()[2..5].to_vec()))
    );

    c.get_list(
        vec![
            (AttributeDescriptor::new(3, REGISTER, 2), None),
            (AttributeDescriptor::new(7, PROFILE, 2), None),
            (AttributeDescriptor::new(70, DISCONNECT, 2), None),
        ],
        now,
    )
    .unwrap();
    pump(&mut c, &mut s, &mut meter, now);
    match next_event(&mut c) {
        Event::Response(Response::Get(r)) => {
            assert_eq!(r.len(), 3);
            assert_eq!(r[0], GetDataResult::Data(Data::DoubleLongUnsigned(123_456)));
            assert_eq!(r[1], GetDataResult::Data(Data::Array(meter.profile())));
            assert_eq!(r[2], GetDataResult::Data(Data::Boolean(true)));
        }
        other => panic!("{other:?}"),
    }

    // A 5000-byte SET into a 256-byte PDU: sent in blocks.
    let big: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
    c.set(
        AttributeDescriptor::new(1, BLOB, 2),
        None,
        Data::OctetString(big.clone()),
        now,
    )
    .unwrap();
    pump(&mut c, &mut s, &mut meter, now);
    assert!(
        matches!(next_event(&mut c), Event::Response(Response::Set(r)) if r == vec![DataAccessResult::Success])
    );
    assert_eq!(meter.blob, big);

    // An ACTION whose parameters and return data both need blocks.
    c.action(
        MethodDescriptor::new(1, BLOB, 1),
        Some(Data::OctetString(big.clone())),
        now,
    )
    .unwrap();
    pump(&mut c, &mut s, &mut meter, now);
    match next_event(&mut c) {
        Event::Response(Response::Action(r)) => {
            assert_eq!(
                r,
                vec![(
                    ActionResult::Success,
                    Some(GetDataResult::Data(Data::OctetString(big)))
                )]
            );
        }
        other => panic!("{other:?}"),
    }

    c.action(
        MethodDescriptor::new(70, DISCONNECT, 1),
        Some(Data::Integer(0)),
        now,
    )
    .unwrap();
    pump(&mut c, &mut s, &mut meter, now);
    assert!(
        matches!(next_event(&mut c), Event::Response(Response::Action(r)) if r[0].0 == ActionResult::Success)
    );
    assert!(!meter.connected);
}

#[test]
fn wrong_secrets_are_refused() {
    for link in [Link::Wrapper, Link::Hdlc] {
        // LLS with the wrong password.
        let now = Instant::now();
        let mut meter = Meter::new(4);
        let mut server = Server::new(server_config(link, 1024), now);
        let mut cfg = client_config(link, 17, 1024, 1);
        cfg.authentication = Authentication::Low {
            password: b"wrong".to_vec(),
        };
        let mut client = Client::new(cfg);
        client.connect(now);
        pump(&mut client, &mut server, &mut meter, now);
        match next_event(&mut client) {
            Event::Closed(Some(e)) => assert_eq!(e.reason(), "authentication-failure", "{e}"),
            other => panic!("{other:?}"),
        }

        // HLS-GMAC with the wrong authentication key.
        let mut meter = Meter::new(4);
        let mut server = Server::new(server_config(link, 1024), now);
        let mut cfg = client_config(link, 1, 1024, 1);
        if let Some(s) = cfg.security.as_mut() {
            s.keys.ak[0] ^= 1;
        }
        let mut client = Client::new(cfg);
        client.connect(now);
        pump(&mut client, &mut server, &mut meter, now);
        match next_event(&mut client) {
            Event::Closed(Some(e)) => {
                assert!(
                    matches!(e.reason(), "authentication-failure" | "ciphering-failure"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn replayed_invocation_counter_is_refused_and_the_meter_keeps_the_floor() {
    let mut meter = Meter::new(4);
    let (mut c, mut s, now) = associate(Link::Wrapper, 1, &mut meter, 1024);
    let used = c.next_invocation_counter().unwrap();
    c.release(now);
    pump(&mut c, &mut s, &mut meter, now);
    assert!(meter.counters.rx_last[&1] >= used - 1);

    // A new association starting again from counter 1 replays old counters.
    let mut server = Server::new(server_config(Link::Wrapper, 1024), now);
    let mut client = Client::new(client_config(Link::Wrapper, 1, 1024, 1));
    client.connect(now);
    pump(&mut client, &mut server, &mut meter, now);
    assert!(matches!(next_event(&mut client), Event::Closed(Some(_))));

    // Continuing from the meter's record works.
    let floor = meter.counters.rx_last[&1];
    let mut server = Server::new(server_config(Link::Wrapper, 1024), now);
    let mut client = Client::new(client_config(Link::Wrapper, 1, 1024, floor + 1));
    client.connect(now);
    pump(&mut client, &mut server, &mut meter, now);
    assert!(matches!(next_event(&mut client), Event::Associated(_)));
}

#[test]
fn silence_times_out() {
    let now = Instant::now();
    let mut client = Client::new(client_config(Link::Wrapper, 16, 1024, 1));
    client.connect(now);
    let mut buf = Vec::new();
    assert!(client.poll_transmit(&mut buf)); // the AARQ, never answered
    let deadline = client.poll_timeout().unwrap();
    assert!(deadline > now);
    client.handle_timeout(deadline);
    match next_event(&mut client) {
        Event::Closed(Some(e)) => assert_eq!(e.reason(), "timeout"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_from_the_server_ends_the_association_cleanly() {
    let mut meter = Meter::new(4);
    let (mut c, _s, now) = associate(Link::Wrapper, 16, &mut meter, 1024);
    c.get(AttributeDescriptor::new(3, REGISTER, 2), None, now)
        .unwrap();
    // A well-framed wrapper message whose APDU is nonsense.
    c.handle_input(&[0, 1, 0, 1, 0, 16, 0, 3, 0xC4, 0xFF, 0xFF], now);
    assert!(matches!(next_event(&mut c), Event::Closed(Some(_))));
    assert!(c.is_closed());
}

/// The client's and the meter's ECC configurations at `suite`, each knowing the other's
/// public signing key.
fn ecc_pair(suite: EccSuite) -> (EccConfig, EccConfig) {
    let mut client = EccConfig::new(EcPrivateKey::generate(suite));
    let mut server = EccConfig::new(EcPrivateKey::generate(suite));
    client.peer_signing_key = Some(server.signing_key.public_key());
    server.peer_signing_key = Some(client.signing_key.public_key());
    if suite == EccSuite::Suite2 {
        let wide = WideKeys {
            ek: [0x21; 32],
            ak: [0x42; 32],
        };
        client.wide_keys = Some(wide.clone());
        server.wide_keys = Some(wide);
    }
    (client, server)
}

fn ecdsa_session(
    link: Link,
    sap: u16,
    client_ecc: EccConfig,
    server_ecc: EccConfig,
    meter: &mut Meter,
) -> (Client, Server, Instant) {
    let now = Instant::now();
    let mut server = Server::new(server_config(link, 512), now);
    server.set_ecc(server_ecc);
    let mut cfg = client_config(link, sap, 512, 1);
    cfg.ecc = Some(client_ecc);
    let mut client = Client::new(cfg);
    client.connect(now);
    pump(&mut client, &mut server, meter, now);
    (client, server, now)
}

#[test]
fn hls_ecdsa_at_suites_1_and_2_over_both_links() {
    for link in [Link::Wrapper, Link::Hdlc] {
        for suite in [EccSuite::Suite1, EccSuite::Suite2] {
            for sap in [6, 7] {
                let mut meter = Meter::new(40);
                let (c_ecc, s_ecc) = ecc_pair(suite);
                let (mut c, mut s, now) = ecdsa_session(link, sap, c_ecc, s_ecc, &mut meter);
                match next_event(&mut c) {
                    Event::Associated(info) => {
                        assert_eq!(info.server_system_title, Some(SERVER_TITLE))
                    }
                    other => panic!("{link:?} {suite:?} {sap}: {other:?}"),
                }
                assert!(
                    matches!(s.poll_event(), Some(ServerEvent::Associated(ctx)) if ctx.mechanism == Mechanism::HighEcdsa)
                );
                let r = get(
                    &mut c,
                    &mut s,
                    &mut meter,
                    now,
                    AttributeDescriptor::new(3, REGISTER, 2),
                    None,
                );
                assert_eq!(
                    r,
                    GetDataResult::Data(Data::DoubleLongUnsigned(123_456)),
                    "{link:?} {suite:?} {sap}"
                );
                // Block transfer under the suite's ciphering.
                let r = get(
                    &mut c,
                    &mut s,
                    &mut meter,
                    now,
                    AttributeDescriptor::new(7, PROFILE, 2),
                    None,
                );
                assert_eq!(
                    r,
                    GetDataResult::Data(Data::Array(meter.profile())),
                    "{link:?} {suite:?} {sap}"
                );
                c.release(now);
                pump(&mut c, &mut s, &mut meter, now);
                assert!(
                    matches!(next_event(&mut c), Event::Released),
                    "{link:?} {suite:?} {sap}"
                );
            }
        }
    }
}

#[test]
fn hls_ecdsa_refuses_wrong_keys_and_curves() {
    for link in [Link::Wrapper, Link::Hdlc] {
        for suite in [EccSuite::Suite1, EccSuite::Suite2] {
            // The meter signs with a key that is not the one the client trusts: the client
            // ends the association with a typed signature error.
            let (mut c_ecc, s_ecc) = ecc_pair(suite);
            c_ecc.peer_signing_key = Some(EcPrivateKey::generate(suite).public_key());
            let mut meter = Meter::new(4);
            let (mut c, _s, _) = ecdsa_session(link, 6, c_ecc, s_ecc, &mut meter);
            match next_event(&mut c) {
                Event::Closed(Some(dlms::client::Error::Security(
                    SecurityError::SignatureInvalid,
                ))) => {}
                other => panic!("{link:?} {suite:?}: {other:?}"),
            }
            assert!(c.is_closed());

            // The client is not the one the meter trusts: the meter refuses pass 3.
            let (c_ecc, mut s_ecc) = ecc_pair(suite);
            s_ecc.peer_signing_key = Some(EcPrivateKey::generate(suite).public_key());
            let mut meter = Meter::new(4);
            let (mut c, mut s, _) = ecdsa_session(link, 7, c_ecc, s_ecc, &mut meter);
            match next_event(&mut c) {
                Event::Closed(Some(e)) => assert_eq!(e.reason(), "authentication-failure", "{e}"),
                other => panic!("{link:?} {suite:?}: {other:?}"),
            }
            assert!(!matches!(s.poll_event(), Some(ServerEvent::Associated(_))));
        }
        // Suite 1 client, suite 2 meter: the ciphered AARQ is of the wrong suite.
        let (c1, _) = ecc_pair(EccSuite::Suite1);
        let (_, s2) = ecc_pair(EccSuite::Suite2);
        let mut meter = Meter::new(4);
        let (mut c, _s, _) = ecdsa_session(link, 6, c1, s2, &mut meter);
        match next_event(&mut c) {
            Event::Closed(Some(e)) => assert_eq!(e.reason(), "authentication-failure", "{e}"),
            other => panic!("{link:?}: {other:?}"),
        }
        // A meter key of the other curve is refused by the client before any signature check.
        let (mut c1, s1) = ecc_pair(EccSuite::Suite1);
        c1.peer_signing_key = Some(EcPrivateKey::generate(EccSuite::Suite2).public_key());
        let mut meter = Meter::new(4);
        let (mut c, _s, _) = ecdsa_session(link, 7, c1, s1, &mut meter);
        match next_event(&mut c) {
            Event::Closed(Some(dlms::client::Error::Security(SecurityError::CurveMismatch))) => {}
            other => panic!("{link:?}: {other:?}"),
        }
        // No ECC configuration on the meter: HLS-ECDSA is not a mechanism it knows.
        let (c1, _) = ecc_pair(EccSuite::Suite1);
        let now = Instant::now();
        let mut server = Server::new(server_config(link, 512), now);
        let mut cfg = client_config(link, 7, 512, 1);
        cfg.ecc = Some(c1);
        let mut client = Client::new(cfg);
        client.connect(now);
        pump(&mut client, &mut server, &mut meter, now);
        assert!(matches!(
            next_event(&mut client),
            Event::Closed(Some(dlms::client::Error::Rejected { .. }))
        ));
    }
}

#[test]
fn hls_ecdsa_configuration_errors() {
    let (mut c_ecc, _) = ecc_pair(EccSuite::Suite2);
    c_ecc.wide_keys = None;
    let mut cfg = client_config(Link::Wrapper, 6, 512, 1);
    cfg.ecc = Some(c_ecc);
    let mut client = Client::new(cfg);
    client.connect(Instant::now());
    assert!(matches!(
        next_event(&mut client),
        Event::Closed(Some(dlms::client::Error::Config(_)))
    ));
    // Without ciphering suite 2 needs no 256-bit keys on either side.
    let (mut c_ecc, mut s_ecc) = ecc_pair(EccSuite::Suite2);
    c_ecc.wide_keys = None;
    s_ecc.wide_keys = None;
    let mut meter = Meter::new(4);
    let (mut c, _s, _) = ecdsa_session(Link::Wrapper, 7, c_ecc, s_ecc, &mut meter);
    assert!(matches!(next_event(&mut c), Event::Associated(_)));
    let (c_ecc, _) = ecc_pair(EccSuite::Suite1);
    let mut cfg = client_config(Link::Wrapper, 6, 512, 1);
    cfg.ecc = Some(c_ecc);
    cfg.challenge = vec![1; 16];
    let mut client = Client::new(cfg);
    client.connect(Instant::now());
    assert!(matches!(
        next_event(&mut client),
        Event::Closed(Some(dlms::client::Error::Config(_)))
    ));
}

#[test]
fn the_meter_takes_the_clients_key_from_a_certificate_that_chains_to_its_ca() {
    use dlms::security::x509::{device_name, issue, name, CertificateType, IssueProfile};
    let year = Duration::from_secs(365 * 86_400);
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let ca_key = EcPrivateKey::generate(suite);
        let ca = issue(
            IssueProfile::Root,
            1,
            name("CN=HES CA").unwrap(),
            &ca_key.public_key(),
            None,
            &ca_key,
            METER_NOW - 60,
            year,
        )
        .unwrap();
        let other_ca_key = EcPrivateKey::generate(suite);
        let other_ca = issue(
            IssueProfile::Root,
            1,
            name("CN=HES CA").unwrap(),
            &other_ca_key.public_key(),
            None,
            &other_ca_key,
            METER_NOW - 60,
            year,
        )
        .unwrap();
        let cert_for = |key: &EcPrivateKey,
                        title: SystemTitle,
                        issuer_key: &EcPrivateKey,
                        issuer: &dlms::security::x509::Certificate,
                        not_before: u64,
                        validity: Duration| {
            issue(
                IssueProfile::Device(CertificateType::DigitalSignature),
                7,
                device_name(&title, "HES").unwrap(),
                &key.public_key(),
                Some(issuer),
                issuer_key,
                not_before,
                validity,
            )
            .unwrap()
            .der()
            .to_vec()
        };
        let run = |cert: Vec<u8>, sign_with_other_key: bool| {
            let (mut c_ecc, mut s_ecc) = ecc_pair(suite);
            // The meter knows no client key, only its CA.
            s_ecc.peer_signing_key = None;
            s_ecc.trust_anchors = vec![ca.clone()];
            c_ecc.certificate = Some(cert);
            if sign_with_other_key {
                c_ecc.signing_key = EcPrivateKey::generate(suite);
            }
            let mut meter = Meter::new(4);
            let (mut c, _s, _) = ecdsa_session(Link::Wrapper, 6, c_ecc, s_ecc, &mut meter);
            next_event(&mut c)
        };
        // The client's key is the one of `ecc_pair`'s client: rebuild it to certify it.
        let good_key = |c: &EccConfig| c.signing_key.clone();
        let (c_ecc, _) = ecc_pair(suite);
        let key = good_key(&c_ecc);
        let good = cert_for(&key, CLIENT_TITLE, &ca_key, &ca, METER_NOW - 60, year);
        let outcome = {
            let (mut c_ecc2, mut s_ecc) = ecc_pair(suite);
            c_ecc2.signing_key = key.clone();
            c_ecc2.certificate = Some(good.clone());
            s_ecc.peer_signing_key = None;
            s_ecc.trust_anchors = vec![ca.clone()];
            c_ecc2.peer_signing_key = Some(s_ecc.signing_key.public_key());
            let mut meter = Meter::new(4);
            let (mut c, _s, _) = ecdsa_session(Link::Hdlc, 6, c_ecc2, s_ecc, &mut meter);
            next_event(&mut c)
        };
        assert!(
            matches!(outcome, Event::Associated(_)),
            "{suite:?}: {outcome:?}"
        );
        // Refused at the AARQ (the certificate), or at pass 3 (the signature).
        let refused = |e: Event| matches!(e, Event::Closed(Some(dlms::client::Error::Rejected { ref diagnostic, .. })) if diagnostic.is_authentication_failure());
        let pass3 = |e: Event| {
            matches!(
                e,
                Event::Closed(Some(dlms::client::Error::AuthenticationFailed))
            )
        };
        // Certified, but the client signs with another key: pass 3 fails.
        assert!(pass3(run(good.clone(), true)), "{suite:?} other key");
        // Another system title, expired, or from another CA: the AARQ is refused.
        let other_title = cert_for(&key, SERVER_TITLE, &ca_key, &ca, METER_NOW - 60, year);
        assert!(refused(run(other_title, false)), "{suite:?} title");
        let expired = cert_for(
            &key,
            CLIENT_TITLE,
            &ca_key,
            &ca,
            METER_NOW - 3 * 86_400,
            Duration::from_secs(86_400),
        );
        assert!(refused(run(expired, false)), "{suite:?} expired");
        let foreign = cert_for(
            &key,
            CLIENT_TITLE,
            &other_ca_key,
            &other_ca,
            METER_NOW - 60,
            year,
        );
        assert!(refused(run(foreign, false)), "{suite:?} foreign");
        assert!(
            refused(run(vec![0x30, 0x03, 0x02, 0x01, 0x00], false)),
            "{suite:?} garbage"
        );
    }
}
