//! `Consumer::lag` on Kafka: per partition of the member, the records published and not yet
//! consumed by it (high watermark − position), the namespace left out of the topic. Needs the
//! broker named by `HES_KAFKA_BROKERS` (`eval "$(scripts/services up)"`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use hes_bus::kafka::{KafkaBus, BROKERS_ENV};
use hes_bus::{Bus, MemoryBus, Record};
use hes_testkit::{service_env, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_what_the_member_has_not_consumed() {
    let bus = KafkaBus::connect(&service_env(BROKERS_ENV).unwrap())
        .unwrap()
        .with_partitions(1)
        .with_namespace(&format!("{}.", unique("lag")));
    let mut consumer = bus.subscribe(&["t"], &unique("group")).await.unwrap();
    let records = (0..5)
        .map(|i| Record {
            key: "MTR00000001".into(),
            payload: vec![i],
        })
        .collect();
    bus.publish("t", records).await.unwrap();
    for _ in 0..2 {
        consumer
            .next(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a record within 60 s");
    }
    assert_eq!(consumer.lag().await, vec![("t".to_string(), 0, 3)]);
    drop(consumer);
}

#[tokio::test]
async fn an_adapter_that_cannot_tell_gives_nothing() {
    let bus = MemoryBus::new();
    let consumer = bus.subscribe(&["t"], "g").await.unwrap();
    assert!(consumer.lag().await.is_empty());
}
