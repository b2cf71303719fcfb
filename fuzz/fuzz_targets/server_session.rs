#![no_main]
//! A meter's server state machine fed hostile bytes from a "client": it answers, refuses or
//! closes, and never panics. The first byte picks the link layer.
use std::time::{Duration, Instant};

use dlms::hdlc::{HdlcParams, ServerAddress};
use dlms::link::TransportConfig;
use dlms::security::CipherKeys;
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
        ],
        max_receive_pdu: 256,
        conformance: Conformance::DEFAULT_SERVER,
        max_request_bytes: 8192,
        inactivity_timeout: Duration::from_secs(60),
    };
    let now = Instant::now();
    let mut server = Server::new(cfg, now);
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
