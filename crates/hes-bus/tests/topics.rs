//! `KafkaBus` creates the topics a subscription names before joining the group, with its
//! partition count and replication factor: a subscription to a topic that does not exist
//! yet works at once, and librdkafka never logs that the topic is not available. Needs the
//! broker named by `HES_KAFKA_BROKERS` (`eval "$(scripts/services up)"`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::{Bus, Record};
use hes_testkit::{service_env, unique};

/// Every warning and error logged in this test binary (librdkafka's through the `log` crate,
/// ours through `tracing`).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init()
            .unwrap();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        std::io::stderr().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bus() -> KafkaBus {
    KafkaBus::connect(&service_env(BROKERS_ENV).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_creates_missing_topics_first() {
    let logs = logs();
    let bus = bus()
        .with_partitions(3)
        .with_namespace(&format!("{}.", unique("topics")));
    let (topic, other) = ("fresh", "fresh-too");
    assert_eq!(bus.topic_partitions(topic).await.unwrap(), None);
    let mut consumer = bus
        .subscribe(&[topic, other], &unique("group"))
        .await
        .unwrap();
    // Both exist, with the bus's partition count, as soon as `subscribe` returns.
    assert_eq!(bus.topic_partitions(topic).await.unwrap(), Some(3));
    assert_eq!(bus.topic_partitions(other).await.unwrap(), Some(3));
    let record = Record {
        key: "MTR00000001".into(),
        payload: b"hello".to_vec(),
    };
    bus.publish(topic, vec![record.clone()]).await.unwrap();
    let d = consumer
        .next(Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the record within 60 s");
    assert_eq!(
        (d.topic.as_str(), d.key.as_str(), d.payload.as_slice()),
        (topic, "MTR00000001", &b"hello"[..])
    );
    consumer.commit(&d).await.unwrap();
    consumer.close(Duration::from_secs(30)).await.unwrap();
    // Subscribing again to existing topics leaves them as they are.
    let again = bus
        .with_partitions(5)
        .subscribe(&[topic], &unique("group"))
        .await
        .unwrap();
    drop(again);
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    for false_alarm in ["not available", "Unknown topic", "UNKNOWN_TOPIC"] {
        assert!(!logged.contains(false_alarm), "{logged}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_topics_keep_their_partitions() {
    let bus = bus().with_namespace(&format!("{}.", unique("topics")));
    bus.ensure_topics(&["t"], 2).await.unwrap();
    assert_eq!(bus.topic_partitions("t").await.unwrap(), Some(2));
    let bus = bus.with_partitions(6);
    let c = bus.subscribe(&["t"], &unique("group")).await.unwrap();
    assert_eq!(bus.topic_partitions("t").await.unwrap(), Some(2));
    drop(c);
}

/// The replication factor reaches the broker: 1 works on the single test broker, 3 is
/// refused by it (a topic cannot have more replicas than there are brokers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_get_the_configured_replication() {
    let ns = format!("{}.", unique("replication"));
    let one = bus().with_replication(1).with_namespace(&ns);
    one.ensure_topics(&["r1"], 1).await.unwrap();
    assert_eq!(one.topic_partitions("r1").await.unwrap(), Some(1));
    let three = bus().with_replication(3).with_namespace(&ns);
    let e = three.ensure_topics(&["r3"], 1).await.unwrap_err();
    assert!(e.to_string().contains("replication 3"), "{e}");
    assert_eq!(three.topic_partitions("r3").await.unwrap(), None);
    let e = three.subscribe(&["r3b"], &unique("group")).await.err();
    assert!(e.is_some(), "subscribe created a topic it cannot replicate");
}
