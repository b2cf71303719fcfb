//! The streaming aggregator gives what recomputing everything from the store gives, whatever
//! the batch boundaries, across restarts (state lost, picked up from the store), with gaps,
//! late entries and replays.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use dlms::ObisCode;
use hes_model::{Period, Quality, Reading, Source, ValidatedReading};
use hes_pipeline::run::{recompute_meters, StageConfig};
use hes_pipeline::stream::StreamAggregator;
use hes_pipeline::Rules;
use hes_store::{SqliteStore, Store};

/// 2026-11-01 00:00 UTC.
const D0: i64 = 1_793_491_200;

fn v(meter: &str, k: i64, value: i64) -> ValidatedReading {
    ValidatedReading {
        reading: Reading {
            meter: meter.into(),
            obis: ObisCode([1, 0, 1, 8, 0, 255]),
            class_id: 3,
            attribute: 2,
            time: D0 + k * 900,
            value,
            scaler: -1,
            unit: 30,
            status: 0,
            source: Source::Scheduled,
            received_at: D0 + k * 900 + 9,
        },
        quality: Quality::OK,
    }
}

/// Three days of three meters with varying consumption; meter b misses a few entries (one
/// single, one run of three), meter c one long gap (beyond the estimation context).
fn data() -> Vec<ValidatedReading> {
    let mut out = Vec::new();
    for (m, step) in [("a", 7), ("b", 13), ("c", 3)] {
        let mut total = 1_000;
        for k in 0..=(3 * 96) {
            total += step + (k * 31 % 17);
            let missing = (m == "b" && (k == 50 || (120..123).contains(&k)))
                || (m == "c" && (100..140).contains(&k));
            if !missing {
                out.push(v(m, k, total));
            }
        }
    }
    out
}

type Key = (String, String, Period, i64);

async fn all_aggregates(s: &dyn Store) -> BTreeMap<Key, (i64, u32, bool, u32)> {
    let mut out = BTreeMap::new();
    for p in [Period::Hour, Period::Day, Period::Month] {
        for a in s
            .scan_aggregates(p, 0, i64::MAX / 2, 0, 100_000)
            .await
            .unwrap()
        {
            // Totals compared to the milli-unit: sums in another order may differ in the last bit.
            out.insert(
                (a.subject, a.channel, a.period, a.period_start),
                (
                    (a.total * 1000.0).round() as i64,
                    a.count,
                    a.complete,
                    a.quality_worst.0,
                ),
            );
        }
    }
    out
}

/// Feeds `batches` through plan → store → apply, with a fresh aggregator (a restart) before
/// the batches whose index is in `restarts`.
async fn streamed(batches: &[Vec<ValidatedReading>], restarts: &[usize]) -> SqliteStore {
    let store = SqliteStore::in_memory().await.unwrap();
    let cfg = StageConfig::new("test");
    let mut agg = StreamAggregator::new(Rules::default(), cfg.clone(), 1000);
    for (i, b) in batches.iter().enumerate() {
        if restarts.contains(&i) {
            agg = StreamAggregator::new(Rules::default(), cfg.clone(), 1000);
        }
        let plan = agg.plan(&store, b).await.unwrap();
        store.insert_validated(b).await.unwrap();
        agg.apply(&store, plan).await.unwrap();
    }
    store
}

async fn reference(all: &[ValidatedReading]) -> SqliteStore {
    let store = SqliteStore::in_memory().await.unwrap();
    store.insert_validated(all).await.unwrap();
    recompute_meters(&store, &Rules::default(), &StageConfig::new("ref"), all)
        .await
        .unwrap();
    store
}

fn chunks(all: &[ValidatedReading], sizes: &[usize]) -> Vec<Vec<ValidatedReading>> {
    // In time order across meters, as a bus delivers a fleet's reads.
    let mut sorted = all.to_vec();
    sorted.sort_by_key(|x| (x.reading.time, x.reading.meter.0.clone()));
    let mut out = Vec::new();
    let mut rest = &sorted[..];
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    out
}

#[tokio::test]
async fn any_batching_gives_the_recomputed_aggregates() {
    let all = data();
    let want = all_aggregates(&reference(&all).await).await;
    assert!(want.len() > 200);
    for sizes in [vec![all.len()], vec![1], vec![5, 17, 2], vec![97, 3, 250]] {
        let batches = chunks(&all, &sizes);
        let got = all_aggregates(&streamed(&batches, &[]).await).await;
        assert_eq!(got, want, "batches of {sizes:?}");
    }
}

#[tokio::test]
async fn restarts_pick_up_from_the_store() {
    let all = data();
    let want = all_aggregates(&reference(&all).await).await;
    let batches = chunks(&all, &[29, 11]);
    let n = batches.len();
    let got = all_aggregates(&streamed(&batches, &[1, n / 3, n / 2, n - 1]).await).await;
    assert_eq!(got, want);
}

#[tokio::test]
async fn late_and_replayed_batches_end_where_recomputing_ends() {
    let all = data();
    let want = all_aggregates(&reference(&all).await).await;
    let mut batches = chunks(&all, &[40]);
    // Some entries held back and delivered at the end (late), then a batch delivered twice.
    let late: Vec<ValidatedReading> = batches[3].drain(..10).collect();
    let again = batches[5].clone();
    batches.push(late);
    batches.push(again);
    let got = all_aggregates(&streamed(&batches, &[]).await).await;
    assert_eq!(got, want);
}

#[tokio::test]
async fn two_consumers_taking_turns_never_merge_stale_state() {
    // As after rebalances: the same channels go to one consumer, then the other, then back.
    let all = data();
    let want = all_aggregates(&reference(&all).await).await;
    let store = SqliteStore::in_memory().await.unwrap();
    let cfg = StageConfig::new("test");
    let mut a = StreamAggregator::new(Rules::default(), cfg.clone(), 1000);
    let mut b = StreamAggregator::new(Rules::default(), cfg, 1000);
    for (i, batch) in chunks(&all, &[23, 61, 7]).iter().enumerate() {
        let agg = if (i / 2) % 2 == 0 { &mut a } else { &mut b };
        let plan = agg.plan(&store, batch).await.unwrap();
        store.insert_validated(batch).await.unwrap();
        agg.apply(&store, plan).await.unwrap();
    }
    assert_eq!(all_aggregates(&store).await, want);
}
