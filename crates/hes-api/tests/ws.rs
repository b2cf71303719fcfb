//! The WebSocket end to end: a real listener on 127.0.0.1:0, a tokio-tungstenite client, a
//! reading published on the cache's `live.readings` channel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hes_cache::Cache;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("the stream ended")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn connect(addr: std::net::SocketAddr, token: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/ws?access_token={token}")),
    )
    .await
    .unwrap()
    .unwrap();
    ws
}

async fn subscribe(ws: &mut Ws, what: Value) {
    ws.send(Message::Text(json!({"subscribe": what}).to_string().into()))
        .await
        .unwrap();
    let ack = next_json(ws).await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
}

#[tokio::test]
async fn a_published_reading_reaches_a_subscribed_client_within_its_scope() {
    let fx = common::fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hes_api::serve::serve(listener, fx.app.clone(), async {
        let _ = stopped.await;
    }));
    let op = fx.login("op").await;
    let scoped = fx.login("cell1").await;

    // No credential: refused before the upgrade.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/ws"))
            .await
            .is_err()
    );

    let mut a = connect(addr, &op).await;
    subscribe(&mut a, json!({"meters": ["MTR00000004"]})).await;
    let mut b = connect(addr, &scoped).await;
    subscribe(&mut b, json!({"fleet": true, "groups": ["cell=cell-1"]})).await;

    let msg = |meter: &str, v: i64| {
        json!({"type": "reading", "meter": meter, "data": {"meter": meter, "obis": "1.0.1.8.0.255", "value": v}})
            .to_string()
    };
    // Meter 4 is in cell-2: the scoped client must not get it, the operator must.
    fx.cache
        .publish("live.readings", msg("MTR00000004", 1).as_bytes())
        .await
        .unwrap();
    fx.cache
        .publish("live.readings", msg("MTR00000001", 2).as_bytes())
        .await
        .unwrap();
    let got = next_json(&mut a).await;
    assert_eq!(got["type"], "reading");
    assert_eq!(got["meter"], "MTR00000004");
    assert_eq!(got["data"]["value"], 1);
    // The scoped client: its own meter's reading (stats messages may come in between).
    loop {
        let got = next_json(&mut b).await;
        if got["type"] == "stats" {
            assert_eq!(got["data"]["meters_total"], 3);
            continue;
        }
        assert_eq!(got["type"], "reading", "{got}");
        assert_eq!(
            got["meter"], "MTR00000001",
            "the other cell's reading leaked: {got}"
        );
        break;
    }
    // An event on another channel, and a bad subscription.
    fx.cache
        .publish(
            "live.events",
            json!({"type": "event", "meter": "MTR00000004", "data": {}})
                .to_string()
                .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(next_json(&mut a).await["type"], "event");
    a.send(Message::Text(
        "{\"subscribe\":{\"groups\":[\"nogroup\"]}}".into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut a).await["type"], "error");
    a.close(None).await.unwrap();
    b.close(None).await.unwrap();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_slow_client_is_told_what_it_lost() {
    let fx = common::fixture_with(hes_api::ApiConfig {
        hash_cost: common::COST,
        ws_queue: 16,
        ..hes_api::ApiConfig::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(hes_api::serve::serve(
        listener,
        fx.app.clone(),
        std::future::pending(),
    ));
    let op = fx.login("op").await;
    let mut a = connect(addr, &op).await;
    subscribe(&mut a, json!({"meters": ["MTR00000001"]})).await;
    // Far more than the queue holds, faster than the connection task can forward them.
    let big = "x".repeat(60_000);
    for i in 0..2000 {
        let m = json!({"type": "reading", "meter": "MTR00000001", "data": {"i": i, "pad": big}})
            .to_string();
        fx.cache
            .publish("live.readings", m.as_bytes())
            .await
            .unwrap();
    }
    let mut dropped = 0u64;
    let mut received = 0u64;
    // Read until the server goes quiet: some arrive, the client is told of the others.
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(2), a.next()).await {
        let Message::Text(t) = m else { continue };
        let m: Value = serde_json::from_str(t.as_str()).unwrap();
        match m["type"].as_str() {
            Some("dropped") => dropped += m["data"]["count"].as_u64().unwrap(),
            Some("reading") => received += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(received > 0 && received < 2000, "received {received}");
    assert!(
        dropped > 0,
        "nothing was reported dropped (received {received})"
    );
    server.abort();
}

/// Two API nodes on one Redis: a message published once (by the pipeline, on any node) reaches
/// the WebSocket clients of both, each within its own subscription.
#[tokio::test]
async fn live_messages_fan_out_across_api_nodes_through_redis() {
    let url = std::env::var("HES_REDIS_URL").unwrap_or_else(|_| {
        panic!("HES_REDIS_URL is not set: run `eval \"$(scripts/services up)\"` first")
    });
    let prefix = format!("{}:", common::unique("hes_api_fanout"));
    let key = hes_api::auth::JwtKey::random();
    let config = || hes_api::ApiConfig {
        hash_cost: common::COST,
        ..hes_api::ApiConfig::default()
    };
    let redis = || async {
        std::sync::Arc::new(hes_cache::RedisCache::connect(&url, &prefix).await.unwrap())
            as std::sync::Arc<dyn Cache>
    };
    let nodes = [
        common::fixture_on(config(), redis().await, key.clone()).await,
        common::fixture_on(config(), redis().await, key.clone()).await,
    ];
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (i, fx) in nodes.iter().enumerate() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        servers.push((
            stop,
            tokio::spawn(hes_api::serve::serve(listener, fx.app.clone(), async {
                let _ = stopped.await;
            })),
        ));
        let token = fx.login("op").await;
        let mut ws = connect(addr, &token).await;
        let meter = if i == 0 { "MTR00000002" } else { "MTR00000005" };
        subscribe(&mut ws, json!({ "meters": [meter] })).await;
        clients.push(ws);
    }
    // A third Redis client (the pipeline's) publishes both meters' readings once.
    let publisher = redis().await;
    for (meter, v) in [("MTR00000005", 5), ("MTR00000002", 2)] {
        let msg = json!({"type": "reading", "meter": meter, "data": {"meter": meter, "value": v}});
        publisher
            .publish("live.readings", msg.to_string().as_bytes())
            .await
            .unwrap();
    }
    let first = next_json(&mut clients[0]).await;
    assert_eq!(
        (first["meter"].as_str(), first["data"]["value"].as_i64()),
        (Some("MTR00000002"), Some(2))
    );
    let second = next_json(&mut clients[1]).await;
    assert_eq!(
        (second["meter"].as_str(), second["data"]["value"].as_i64()),
        (Some("MTR00000005"), Some(5))
    );
    for mut ws in clients {
        ws.close(None).await.unwrap();
    }
    for (stop, server) in servers {
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// The close frame that ends `ws` (messages before it are skipped), within 20 s.
async fn closed_with(ws: &mut Ws) -> (u16, String) {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("the session was not closed within 20 s")
            .expect("the stream ended without a close frame")
            .unwrap();
        if let Message::Close(frame) = m {
            let f = frame.expect("a close frame without a code");
            return (u16::from(f.code), f.reason.to_string());
        }
    }
}

#[tokio::test]
async fn sessions_end_with_their_credential_and_api_tokens_stay_out_of_urls() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let fx = common::fixture_with(hes_api::ApiConfig {
        hash_cost: common::COST,
        ws_recheck_every: Duration::from_millis(200),
        ..hes_api::ApiConfig::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(hes_api::serve::serve(
        listener,
        fx.app.clone(),
        std::future::pending(),
    ));
    let admin = fx.login("admin").await;
    let created = fx
        .call(
            axum::http::Method::POST,
            "/api/v1/tokens",
            Some(&admin),
            Some(json!({"name": "live", "role": "viewer"})),
        )
        .await
        .json();
    let secret = created["token"].as_str().unwrap().to_string();
    // A long-lived API token in the URL: refused before the upgrade.
    let r =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/ws?access_token={secret}"))
            .await;
    assert!(r.is_err(), "an API token was taken from the URL");
    // In the Authorization header: accepted, and the session ends when it is revoked.
    let mut req = format!("ws://{addr}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    let (mut by_token, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    subscribe(&mut by_token, json!({"fleet": true})).await;
    // A user's session ends when its password changes.
    let op = fx.login("op").await;
    let mut by_user = connect(addr, &op).await;
    subscribe(&mut by_user, json!({"fleet": true})).await;

    let id = created["id"].as_str().unwrap();
    let r = fx
        .call(
            axum::http::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 204);
    let (code, why) = closed_with(&mut by_token).await;
    assert_eq!(code, 1008);
    assert!(why.contains("revoked"), "{why}");

    let r = fx
        .call(
            axum::http::Method::PATCH,
            "/api/v1/users/op",
            Some(&admin),
            Some(json!({"password": "another-password"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let (code, why) = closed_with(&mut by_user).await;
    assert_eq!(code, 1008);
    assert!(why.contains("revoked"), "{why}");
    server.abort();
}

#[tokio::test]
async fn a_session_ends_when_its_access_token_expires() {
    let fx = common::fixture_with(hes_api::ApiConfig {
        hash_cost: common::COST,
        access_ttl_s: 2,
        ws_recheck_every: Duration::from_millis(200),
        ..hes_api::ApiConfig::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(hes_api::serve::serve(
        listener,
        fx.app.clone(),
        std::future::pending(),
    ));
    let token = fx.login("viewer").await;
    let mut ws = connect(addr, &token).await;
    subscribe(&mut ws, json!({"fleet": true})).await;
    let (code, why) = closed_with(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(why.contains("expired"), "{why}");
    server.abort();
}
