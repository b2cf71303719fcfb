//! Suite 1 and 2 meters (`FleetConfig::pki`): the management client reads through HLS-ECDSA
//! with the head-end key of the fleet's PKI and the meter's certificate; a head-end key the
//! meter does not know is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dlms::client::Authentication;
use dlms::security::x509::Certificate;
use dlms::security::{EcPrivateKey, EccConfig, EccSuite};
use dlms::xdlms::GetDataResult;
use dlms::{AttributeDescriptor, Data, ObisCode, SystemTitle};
use dlms_net::{Connection, NetError};
use hes_sim::fleet::{Fleet, FleetConfig, Role};
use hes_sim::pki::{wide_keys, FleetPki, HEAD_END_TITLE};

async fn read(
    f: &Fleet,
    pki: &FleetPki,
    head_end_key: EcPrivateKey,
    ic: u32,
) -> Result<Data, NetError> {
    let cell = &f.meters()[0];
    let entry = cell.inventory_entry();
    let mut cfg = entry
        .client_config(Role::Management, HEAD_END_TITLE, ic, vec![7; 40])
        .unwrap();
    cfg.authentication = Authentication::HighEcdsa;
    let meter_cert =
        Certificate::from_der(cell.ecc.as_ref().unwrap().certificate.as_deref().unwrap()).unwrap();
    assert_eq!(
        meter_cert.subject_system_title(),
        Some(SystemTitle(cell.spec.system_title))
    );
    let mut ecc = EccConfig::new(head_end_key);
    ecc.peer_signing_key = Some(meter_cert.public_key().unwrap());
    if pki.suite == EccSuite::Suite2 {
        ecc.wide_keys = Some(wide_keys(&cell.spec.keys));
    }
    cfg.ecc = Some(ecc);
    let mut c = Connection::connect(
        &entry.endpoint.host,
        entry.endpoint.port,
        cfg,
        Duration::from_secs(5),
    )
    .await?;
    let r = c
        .get(
            AttributeDescriptor::new(3, ObisCode::new(1, 0, 1, 8, 0, 255), 2),
            None,
        )
        .await?;
    let _ = c.release().await;
    match r {
        GetDataResult::Data(d) => Ok(d),
        GetDataResult::Error(e) => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn suite_1_and_2_meters_answer_hls_ecdsa() {
    for (i, suite) in [EccSuite::Suite1, EccSuite::Suite2].into_iter().enumerate() {
        let pki = Arc::new(FleetPki::new(suite).unwrap());
        let mut cfg = FleetConfig::new(1);
        cfg.first_host = IpAddr::from([127, 93, i as u8, 1]);
        cfg.profile_entries = 96;
        cfg.pki = Some(pki.clone());
        let f = Fleet::start(cfg).await.unwrap();
        let v = read(&f, &pki, pki.head_end_key.clone(), 1).await.unwrap();
        assert!(matches!(v, Data::DoubleLongUnsigned(_)), "{suite:?}: {v:?}");
        match read(&f, &pki, EcPrivateKey::generate(suite), 100).await {
            Err(NetError::Dlms(e)) => assert_eq!(e.reason(), "authentication-failure", "{e}"),
            other => panic!("{suite:?}: {other:?}"),
        }
        f.shutdown();
    }
}
