//! Ground truth of replayed invocation counters: a meter counts every ciphered APDU it refused
//! because the client presented a counter it had already seen (in the AARQ or inside an
//! association), apart from other refusals; the fleet and the control API report the counts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use dlms::client::{Client, ClientConfig, Event};
use dlms::{AttributeDescriptor, SystemTitle};
use dlms_net::{Connection, NetError};
use hes_sim::fleet::{Faults, Fleet, FleetConfig, InventoryEntry, Role};
use hes_sim::obis;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

fn config(m: &InventoryEntry, ic: u32) -> ClientConfig {
    let mut cfg = m
        .client_config(
            Role::Management,
            SystemTitle(*b"TST\0\0\0\0\x02"),
            ic,
            vec![7; 16],
        )
        .unwrap();
    cfg.response_timeout = Duration::from_secs(5);
    cfg
}

async fn open(m: &InventoryEntry, ic: u32) -> Result<Connection, NetError> {
    Connection::connect(
        &m.endpoint.host,
        m.endpoint.port,
        config(m, ic),
        Duration::from_secs(3),
    )
    .await
}

async fn fleet(first: [u8; 4], n: u32) -> Arc<Fleet> {
    let mut cfg = FleetConfig::new(n);
    cfg.first_host = IpAddr::from(first);
    cfg.profile_entries = 96;
    Fleet::start(cfg).await.unwrap()
}

fn clock() -> AttributeDescriptor {
    AttributeDescriptor {
        class_id: 8,
        instance: obis::CLOCK,
        attribute: 2,
    }
}

async fn control_json(fleet: &Arc<Fleet>, path: &str) -> serde_json::Value {
    let r = hes_sim::control::router(fleet.clone())
        .oneshot(
            Request::get(path)
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn normal_sessions_count_no_replay_and_a_reused_counter_does() {
    let f = fleet([127, 91, 0, 1], 2).await;
    let m = f.meters()[0].inventory_entry();
    let other = f.meters()[1].inventory_entry();
    // Sessions that go on from where the last one stopped, as a head-end's should.
    let mut ic = 1;
    for _ in 0..3 {
        let mut c = open(&m, ic).await.unwrap();
        c.get(clock(), None).await.unwrap();
        ic = c.next_invocation_counter().unwrap();
        c.release().await.unwrap();
    }
    assert_eq!(f.replays(&m.id), Some(0));
    // Wrong keys: refused, but not a replay.
    let mut wrong = m.clone();
    wrong.ek = "00".repeat(16);
    let e = open(&wrong, ic + 100).await.unwrap_err();
    assert_eq!(e.reason(), "authentication-failure", "{e}");
    assert_eq!(f.replays(&m.id), Some(0), "wrong keys are not a replay");
    // A client that starts again from a counter the meter has seen: once equal to the last
    // one accepted, once below it.
    let last = f.meters()[0].lock().last_invocation_counter(1);
    assert!(last >= ic - 1, "{last} {ic}");
    for reused in [last, 1] {
        let e = open(&m, reused).await.unwrap_err();
        assert_eq!(e.reason(), "authentication-failure", "{e}");
    }
    assert_eq!(f.replays(&m.id), Some(2));
    // Going on from the meter's record works again and adds nothing.
    open(&m, last + 1).await.unwrap().release().await.unwrap();
    assert_eq!(f.replays(&m.id), Some(2));
    assert_eq!(f.replays(&other.id), Some(0));
    assert_eq!(f.replays("MTR-none"), None);
    assert_eq!(f.total_replays(), 2);

    // The same truth through the control API.
    let truth = control_json(&f, &format!("/meters/{}", m.id)).await;
    assert_eq!(truth["replays"], 2, "{truth}");
    let truth = control_json(&f, &format!("/meters/{}", other.id)).await;
    assert_eq!(truth["replays"], 0, "{truth}");
    let stats = control_json(&f, "/stats").await;
    assert_eq!(stats["replays"], 2, "{stats}");
    f.shutdown();
}

/// The counter jump fault makes the meter expect more than the head-end has: the head-end's
/// next association is a replay to the meter, and counted as one.
#[tokio::test]
async fn a_counter_jump_fault_turns_the_next_association_into_a_replay() {
    let f = fleet([127, 91, 1, 1], 1).await;
    let m = f.meters()[0].inventory_entry();
    open(&m, 10).await.unwrap().release().await.unwrap();
    let jump = Faults {
        ic_jump: 1000,
        ..Faults::default()
    };
    f.set_faults(&m.id, jump).await.unwrap();
    let e = open(&m, 50).await.unwrap_err();
    assert_eq!(e.reason(), "authentication-failure", "{e}");
    assert_eq!(f.replays(&m.id), Some(1));
    f.shutdown();
}

/// A wrapper frame read whole from `s`: the 8-byte header, then the length it gives.
async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).await.unwrap();
    let len = usize::from(u16::from_be_bytes([head[6], head[7]]));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    [head.to_vec(), body].concat()
}

/// Drives `client` until it gives an event other than `Released`, answering over `s`.
async fn next_event(client: &mut Client, s: &mut TcpStream) -> Event {
    loop {
        let mut out = Vec::new();
        while client.poll_transmit(&mut out) {}
        if !out.is_empty() {
            s.write_all(&out).await.unwrap();
        }
        if let Some(ev) = client.poll_event() {
            return ev;
        }
        let frame = tokio::time::timeout(Duration::from_secs(5), read_frame(s))
            .await
            .expect("the meter answers");
        client.handle_input(&frame, Instant::now());
    }
}

/// Inside an association, the very same ciphered request sent twice (a captured frame played
/// back): the meter refuses the second with invocation-counter-error and counts it.
#[tokio::test]
async fn a_request_played_back_inside_an_association_is_a_replay() {
    let f = fleet([127, 91, 2, 1], 1).await;
    let m = f.meters()[0].inventory_entry();
    let mut s = TcpStream::connect((m.endpoint.host.as_str(), m.endpoint.port))
        .await
        .unwrap();
    let mut client = Client::new(config(&m, 1));
    client.connect(Instant::now());
    assert!(matches!(
        next_event(&mut client, &mut s).await,
        Event::Associated(_)
    ));
    client.get(clock(), None, Instant::now()).unwrap();
    let mut request = Vec::new();
    while client.poll_transmit(&mut request) {}
    s.write_all(&request).await.unwrap();
    let first = read_frame(&mut s).await;
    client.handle_input(&first, Instant::now());
    assert!(matches!(
        next_event(&mut client, &mut s).await,
        Event::Response(_)
    ));
    assert_eq!(f.replays(&m.id), Some(0));
    s.write_all(&request).await.unwrap();
    let refusal = read_frame(&mut s).await;
    // exception-response (0xD8), state-error service-not-allowed, invocation-counter-error.
    assert_eq!(&refusal[8..11], &[0xD8, 1, 6], "{refusal:02X?}");
    assert_eq!(f.replays(&m.id), Some(1));
    assert_eq!(f.total_replays(), 1);
    f.shutdown();
}
