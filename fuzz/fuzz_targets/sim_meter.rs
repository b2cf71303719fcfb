#![no_main]
//! A simulated meter's object model fed hostile GET, SET and ACTION requests (descriptors,
//! selective-access parameters, values and method parameters from the fuzzer) by each of its
//! clients: it answers or refuses, and never panics. Requests come as xDLMS APDUs, one after
//! another, so state (image transfer, calendar, keys) carries over between them.
use dlms::codec::Reader;
use dlms::server::{Objects, RequestContext};
use dlms::xdlms::{ActionRequest, Apdu, GetRequest, SetRequest};
use dlms::{Codec, Mechanism, SecurityLevel};
use hes_sim::{Meter, MeterConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cfg = MeterConfig::new(7);
    cfg.profile_entries = 300;
    cfg.time = std::sync::Arc::new(|| 1_795_651_200);
    let mut meter = Meter::new(cfg);
    let clients = [
        RequestContext { client_sap: 16, mechanism: Mechanism::None, security: SecurityLevel::None },
        RequestContext { client_sap: 17, mechanism: Mechanism::Low, security: SecurityLevel::None },
        RequestContext {
            client_sap: 1,
            mechanism: Mechanism::HighGmac,
            security: SecurityLevel::AuthenticatedEncrypted,
        },
    ];
    let mut r = Reader::new(data);
    let mut n = 0usize;
    while n < 16 {
        let Ok(apdu) = Apdu::decode(&mut r) else { break };
        let ctx = clients[n % 3];
        n += 1;
        match apdu {
            Apdu::GetRequest(GetRequest::Normal { attribute, access, .. }) => {
                let _ = meter.get(&ctx, &attribute, access.as_ref());
            }
            Apdu::GetRequest(GetRequest::WithList { items, .. }) => {
                for (a, s) in items {
                    let _ = meter.get(&ctx, &a, s.as_ref());
                }
            }
            Apdu::SetRequest(SetRequest::Normal { attribute, access, value, .. }) => {
                let _ = meter.set(&ctx, &attribute, access.as_ref(), value);
            }
            Apdu::ActionRequest(ActionRequest::Normal { method, parameters, .. }) => {
                let _ = meter.action(&ctx, &method, parameters);
            }
            _ => {}
        }
        let _ = meter.take_outbox();
    }
});
