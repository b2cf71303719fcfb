//! A suite 1 and a suite 2 meter over TCP: the MeterHandle's ECC configuration reaches the
//! server state machine, and a head-end with the matching keys reads through HLS-ECDSA with
//! authenticated encryption; one with the wrong meter key is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::time::Duration;

use dlms::client::{Authentication, ClientConfig, ClientSecurity};
use dlms::link::TransportConfig;
use dlms::security::{CipherKeys, EcPrivateKey, EccConfig, EccSuite, SecurityError, WideKeys};
use dlms::server::{ClientPolicy, CounterState, Objects, RequestContext, ServerConfig};
use dlms::xdlms::{ActionResult, Conformance, DataAccessResult, GetDataResult, SelectiveAccess};
use dlms::{AttributeDescriptor, Data, MethodDescriptor, ObisCode, SecurityLevel, SystemTitle};
use dlms_net::{serve_connection, Connection, MeterHandle, NetError, SessionOptions};

const METER_TITLE: SystemTitle = SystemTitle(*b"MMM\x00\x00\xBC\x61\x4E");
const HES_TITLE: SystemTitle = SystemTitle(*b"HES\x00\x00\x00\x00\x01");
const KEYS: CipherKeys = CipherKeys {
    ek: [0x11; 16],
    ak: [0x22; 16],
};

struct Meter {
    counters: CounterState,
}

impl Objects for Meter {
    fn get(
        &mut self,
        _: &RequestContext,
        _: &AttributeDescriptor,
        _: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        Ok(Data::DoubleLongUnsigned(4242))
    }
    fn set(
        &mut self,
        _: &RequestContext,
        _: &AttributeDescriptor,
        _: Option<&SelectiveAccess>,
        _: Data,
    ) -> DataAccessResult {
        DataAccessResult::ReadWriteDenied
    }
    fn action(
        &mut self,
        _: &RequestContext,
        _: &MethodDescriptor,
        _: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        Err(ActionResult::ReadWriteDenied)
    }
    fn counters(&mut self) -> &mut CounterState {
        &mut self.counters
    }
    fn fill_random(&mut self, buf: &mut [u8]) {
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    }
}

struct EccMeter {
    meter: Mutex<Meter>,
    ecc: EccConfig,
}

impl MeterHandle for EccMeter {
    fn with_objects(&self, f: &mut dyn FnMut(&mut dyn Objects)) {
        f(&mut *self.meter.lock().unwrap());
    }
    fn ecc(&self) -> Option<EccConfig> {
        Some(self.ecc.clone())
    }
}

fn wrapper(sap: u16) -> TransportConfig {
    TransportConfig::Wrapper {
        client_wport: sap,
        server_wport: 1,
    }
}

async fn session(suite: EccSuite, trust_right_key: bool) -> Result<GetDataResult, NetError> {
    let hes_key = EcPrivateKey::generate(suite);
    let meter_key = EcPrivateKey::generate(suite);
    let wide = WideKeys {
        ek: [0x33; 32],
        ak: [0x44; 32],
    };
    let mut meter_ecc = EccConfig::new(meter_key.clone());
    meter_ecc.peer_signing_key = Some(hes_key.public_key());
    meter_ecc.wide_keys = Some(wide.clone());
    let mut hes_ecc = EccConfig::new(hes_key);
    hes_ecc.peer_signing_key = Some(if trust_right_key {
        meter_key.public_key()
    } else {
        EcPrivateKey::generate(suite).public_key()
    });
    hes_ecc.wide_keys = Some(wide);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let meter = EccMeter {
        meter: Mutex::new(Meter {
            counters: CounterState::default(),
        }),
        ecc: meter_ecc,
    };
    let server_cfg = ServerConfig {
        transport: wrapper(0),
        system_title: METER_TITLE,
        keys: KEYS,
        clients: vec![ClientPolicy {
            sap: 1,
            authentication: Authentication::HighEcdsa,
            security: SecurityLevel::AuthenticatedEncrypted,
        }],
        max_receive_pdu: 1024,
        conformance: Conformance::DEFAULT_SERVER,
        max_request_bytes: 1 << 16,
        inactivity_timeout: Duration::from_secs(30),
    };
    let served = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = serve_connection(stream, server_cfg, &meter, &SessionOptions::default()).await;
    });
    let mut cfg = ClientConfig::new(wrapper(1));
    cfg.authentication = Authentication::HighEcdsa;
    cfg.security = Some(ClientSecurity {
        level: SecurityLevel::AuthenticatedEncrypted,
        keys: KEYS,
        system_title: HES_TITLE,
        invocation_counter: 1,
        dedicated_key: None,
    });
    cfg.challenge = vec![0x5A; 40];
    cfg.ecc = Some(hes_ecc);
    let result = async {
        let mut conn = Connection::connect("127.0.0.1", port, cfg, Duration::from_secs(10)).await?;
        let r = conn
            .get(
                AttributeDescriptor::new(3, ObisCode::new(1, 0, 1, 8, 0, 255), 2),
                None,
            )
            .await?;
        conn.release().await?;
        Ok(r)
    }
    .await;
    served.abort();
    result
}

#[tokio::test]
async fn hls_ecdsa_over_tcp_at_suites_1_and_2() {
    for suite in [EccSuite::Suite1, EccSuite::Suite2] {
        let r = session(suite, true).await.unwrap();
        assert_eq!(r, GetDataResult::Data(Data::DoubleLongUnsigned(4242)));
        match session(suite, false).await {
            Err(NetError::Dlms(dlms::client::Error::Security(SecurityError::SignatureInvalid))) => {
            }
            other => panic!("{suite:?}: {other:?}"),
        }
    }
}
