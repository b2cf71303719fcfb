//! The slow way to aggregates, and the groups' totals: recomputed from what is stored, so
//! that late or overlapping data gives what a full recomputation gives.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hes_model::{Aggregate, MeterId, Period, ValidatedReading};
use hes_rules::{
    aggregate_with, estimate_gaps_with, group_total, intervals_with, is_cumulative, rollup,
    IntervalConsumption, Rules,
};
use hes_store::Store;

use crate::stage::StageConfig;

/// Which groups a meter is in, and who is in a group (`key=value`).
pub trait Groups: Send + Sync {
    fn of(&self, meter: &MeterId) -> Vec<String>;
    fn members(&self, group: &str) -> Vec<MeterId>;
}

/// No groups: per-meter aggregates only.
#[derive(Debug, Default)]
pub struct NoGroups;

impl Groups for NoGroups {
    fn of(&self, _: &MeterId) -> Vec<String> {
        Vec::new()
    }
    fn members(&self, _: &str) -> Vec<MeterId> {
        Vec::new()
    }
}

/// The slow way, for late or overlapping data: recomputes and upserts the aggregates of the
/// meters the batch touches from what is stored: hours from the stored readings (with gaps
/// estimated), days from hours, months from days. Returns the rows written.
pub async fn recompute_meters(
    store: &dyn Store,
    rules: &Rules,
    cfg: &StageConfig,
    batch: &[ValidatedReading],
) -> Result<Vec<Aggregate>, hes_store::StoreError> {
    Ok(recompute_meters_processed(store, rules, cfg, batch)
        .await?
        .0)
}

/// [`recompute_meters`], also returning the intervals (gaps estimated) of the hours it
/// recomputed: those starting in them, what the hours were summed from.
pub async fn recompute_meters_processed(
    store: &dyn Store,
    rules: &Rules,
    cfg: &StageConfig,
    batch: &[ValidatedReading],
) -> Result<(Vec<Aggregate>, Vec<IntervalConsumption>), hes_store::StoreError> {
    let interval = rules.interval.max(1);
    // Each meter's span of cumulative readings in the batch, bucketed by day so that one late
    // meter does not widen everyone's read-back.
    let mut spans: HashMap<&MeterId, (i64, i64)> = HashMap::new();
    for v in batch {
        if !is_cumulative(&v.reading) {
            continue;
        }
        let t = v.reading.time;
        let s = spans.entry(&v.reading.meter).or_insert((t, t));
        s.0 = s.0.min(t);
        s.1 = s.1.max(t);
    }
    if spans.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut buckets: BTreeMap<(i64, i64), Vec<MeterId>> = BTreeMap::new();
    for (m, (lo, hi)) in &spans {
        // The hours whose intervals a reading at t can change: the one holding t - interval
        // (the interval ending at t) up to the one holding t (the interval starting at t).
        let a = Period::Hour.start(lo - interval);
        let b = Period::Hour.end(Period::Hour.start(*hi));
        buckets.entry((a, b)).or_default().push((*m).clone());
    }
    let mut touched_days: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut hour_rows: Vec<Aggregate> = Vec::new();
    let mut out_ivs: Vec<IntervalConsumption> = Vec::new();
    for ((a, b), meters) in &buckets {
        let ctx = cfg.context_s.max(interval);
        let stored = store.readings_of_meters(meters, a - ctx, b + ctx).await?;
        let ivs = intervals_with(&stored, rules);
        let filled = estimate_gaps_with(&ivs, interval);
        let hours: Vec<Aggregate> = aggregate_with(&filled, Period::Hour, interval)
            .into_iter()
            .filter(|h| h.period_start >= *a && h.period_start < *b)
            .collect();
        for h in &hours {
            touched_days.insert((h.subject.clone(), Period::Day.start(h.period_start)));
        }
        hour_rows.extend(hours);
        out_ivs.extend(
            filled
                .into_iter()
                .filter(|iv| iv.start >= *a && iv.start < *b),
        );
    }
    store.upsert_aggregates(&hour_rows).await?;
    // Days from hours, months from days.
    let mut touched: BTreeSet<(String, i64)> = touched_days;
    let mut period = Period::Day;
    let mut all_rows: Vec<Aggregate> = hour_rows;
    while let Some(finer) = finer(period) {
        // One read of the finer aggregates over the whole span touched, then only the touched
        // (subject, period) pairs are rolled up.
        let mut rows = Vec::new();
        if let (Some(lo), Some(hi)) = (
            touched.iter().map(|t| t.1).min(),
            touched.iter().map(|t| t.1).max(),
        ) {
            let subjects: Vec<String> = touched
                .iter()
                .map(|t| t.0.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let fine = store
                .aggregates(&subjects, None, finer, lo, period.end(hi) - 1)
                .await?;
            rows = rollup(&fine, period)
                .into_iter()
                .filter(|r| touched.contains(&(r.subject.clone(), r.period_start)))
                .collect();
        }
        store.upsert_aggregates(&rows).await?;
        let Some(next) = period.coarser() else {
            all_rows.extend(rows);
            break;
        };
        touched = rows
            .iter()
            .map(|r| (r.subject.clone(), next.start(r.period_start)))
            .collect();
        all_rows.extend(rows);
        period = next;
    }
    Ok((all_rows, out_ivs))
}

/// Recomputes the day and month totals of the groups the meters of `rows` are in, from their
/// members' stored aggregates. (A group's hours are summed from its members' when asked for.)
/// Returns how many were written.
pub async fn group_totals(
    store: &dyn Store,
    groups: &dyn Groups,
    rows: &[Aggregate],
) -> Result<usize, hes_store::StoreError> {
    Ok(group_rows(store, groups, rows).await?.len())
}

/// [`group_totals`], returning the groups' rows it wrote.
pub async fn group_rows(
    store: &dyn Store,
    groups: &dyn Groups,
    rows: &[Aggregate],
) -> Result<Vec<Aggregate>, hes_store::StoreError> {
    let mut group_keys: BTreeSet<(String, Period, i64)> = BTreeSet::new();
    let mut of_meter: HashMap<&str, Vec<String>> = HashMap::new();
    for r in rows.iter().filter(|r| r.period != Period::Hour) {
        let gs = of_meter
            .entry(&r.subject)
            .or_insert_with(|| groups.of(&MeterId(r.subject.clone())));
        for g in gs.iter() {
            group_keys.insert((g.clone(), r.period, r.period_start));
        }
    }
    // One read per (group, period kind) over the span touched.
    let mut by_group: BTreeMap<(String, Period), BTreeSet<i64>> = BTreeMap::new();
    for (g, period, start) in group_keys {
        by_group.entry((g, period)).or_default().insert(start);
    }
    let mut group_rows = Vec::new();
    for ((g, period), starts) in &by_group {
        let (Some(lo), Some(hi)) = (starts.first(), starts.last()) else {
            continue;
        };
        let members: Vec<String> = groups.members(g).into_iter().map(|m| m.0).collect();
        let of = store.aggregates(&members, None, *period, *lo, *hi).await?;
        let mut buckets: BTreeMap<(&str, i64), Vec<Aggregate>> = BTreeMap::new();
        for a in &of {
            if starts.contains(&a.period_start) {
                buckets
                    .entry((&a.channel, a.period_start))
                    .or_default()
                    .push(a.clone());
            }
        }
        for list in buckets.values() {
            if let Some(t) = group_total(g, members.len(), list) {
                group_rows.push(t);
            }
        }
    }
    store.upsert_aggregates(&group_rows).await?;
    Ok(group_rows)
}

fn finer(p: Period) -> Option<Period> {
    match p {
        Period::Hour => None,
        Period::Day => Some(Period::Hour),
        Period::Month => Some(Period::Day),
    }
}
