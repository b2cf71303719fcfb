#![no_main]
//! A meter's server state machine fed hostile bytes from a "client": it answers, refuses or
//! closes, and never panics. The first byte picks the link layer (bit 0) and whether the meter
//! serves suite 1 with HLS-ECDSA and a CA for client certificates (bit 1).
use std::time::{Duration, Instant};

use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::x509::{issue, name, Certificate, IssueProfile};
use dlms::security::{CipherKeys, EcPrivateKey, EccConfig, EccSuite};
use dlms::server::{ClientPolicy, CounterState, Objects, RequestContext, Server, ServerConfig};
use dlms::xdlms::{ActionResult, Conformance, DataAccessResult, SelectiveAccess};
use dlms::{
    AttributeDescriptor, Authentication, Data, MethodDescriptor, SecurityLevel, SystemTitle,
};
use libfuzzer_sys::fuzz_target;

struct Meter(CounterState);

impl Objects for Meter {
    fn get(
        &mut self,
        _: &RequestContext,
        _: &AttributeDescriptor,
        _: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        Ok(Data::OctetString(vec![7; 3000]))
    }
    fn set(
        &mut self,
        _: &RequestContext,
        _: &AttributeDescriptor,
        _: Option<&SelectiveAccess>,
        _: Data,
    ) -> DataAccessResult {
        DataAccessResult::Success
    }
    fn action(
        &mut self,
        _: &RequestContext,
        _: &MethodDescriptor,
        p: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        Ok(p)
    }
    fn counters(&mut self) -> &mut CounterState {
        &mut self.0
    }
    fn fill_random(&mut self, buf: &mut [u8]) {
        buf.fill(0x5A);
    }
    fn unix_time(&mut self) -> Option<u64> {
        Some(1_800_000_000)
    }
}

/// Suite 1 keys and a CA, made once: signing is too slow to repeat per input.
fn ecc() -> Option<EccConfig> {
    static ECC: std::sync::OnceLock<Option<EccConfig>> = std::sync::OnceLock::new();
    ECC.get_or_init(|| {
        let key = EcPrivateKey::from_raw(EccSuite::Suite1, &[0x44; 32]).ok()?;
        let client = EcPrivateKey::from_raw(EccSuite::Suite1, &[0x55; 32]).ok()?;
        let ca_key = EcPrivateKey::from_raw(EccSuite::Suite1, &[0x66; 32]).ok()?;
        let ca: Certificate = issue(
            IssueProfile::Root,
            1,
            name("CN=Fuzz CA").ok()?,
            &ca_key.public_key(),
            None,
            &ca_key,
            1_700_000_000,
            Duration::from_secs(10 * 365 * 86_400),
        )
        .ok()?;
        let mut ecc = EccConfig::new(key);
        ecc.peer_signing_key = Some(client.public_key());
        ecc.trust_anchors = vec![ca];
        Some(ecc)
    })
    .clone()
}

fuzz_target!(|bytes: &[u8]| {
    let Some((&pick, rest)) = bytes.split_first() else {
        return;
    };
    let transport = if pick & 1 == 0 {
        TransportConfig::Wrapper {
            client_wport: 0,
            server_wport: 1,
        }
    } else {
        TransportConfig::Hdlc {
            client_sap: 0,
            server: ServerAddress {
                logical: 1,
                physical: Some(16),
                size: 2,
            },
            params: HdlcParams::default(),
        }
    };
    let cfg = ServerConfig {
        transport,
        system_title: SystemTitle([1; 8]),
        keys: CipherKeys {
            ek: [2; 16],
            ak: [3; 16],
        },
        clients: vec![
            ClientPolicy {
                sap: 16,
                authentication: Authentication::None,
                security: SecurityLevel::None,
            },
            ClientPolicy {
                sap: 1,
                authentication: Authentication::HighGmac,
                security: SecurityLevel::AuthenticatedEncrypted,
            },
            ClientPolicy {
                sap: 2,
                authentication: Authentication::HighEcdsa,
                security: SecurityLevel::AuthenticatedEncrypted,
            },
            ClientPolicy {
                sap: 3,
                authentication: Authentication::HighEcdsa,
                security: SecurityLevel::None,
            },
        ],
        max_receive_pdu: 256,
        conformance: Conformance::DEFAULT_SERVER,
        max_request_bytes: 8192,
        inactivity_timeout: Duration::from_secs(60),
    };
    let now = Instant::now();
    let mut server = Server::new(cfg, now);
    if pick & 2 != 0 {
        if let Some(ecc) = ecc() {
            server.set_ecc(ecc);
        }
    }
    let mut meter = Meter(CounterState::default());
    // In chunks, as TCP would deliver them.
    for chunk in rest.chunks(37) {
        server.handle_input(chunk, now, &mut meter);
        let mut out = Vec::new();
        while server.poll_transmit(&mut out) {}
        while server.poll_event().is_some() {}
        if server.is_closed() {
            break;
        }
    }
});
