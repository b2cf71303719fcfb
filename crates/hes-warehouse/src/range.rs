//! Exporting a time range straight from the store, a page at a time.

use std::collections::HashSet;
use std::path::Path;

use hes_model::{Aggregate, Period};
use hes_store::Store;

use crate::date::{Date, MAX_TIME, MIN_TIME};
use crate::{Error, Exporter, Summary};

/// Rows asked of the store at a time.
pub const PAGE: usize = 10_000;

/// Exports the readings with `from <= time <= to` and the aggregates (every period) with
/// `from <= period_start <= to`, widened to whole UTC days so that each date partition written
/// is complete; the bounds are clamped to the years 1..=9999. Every date partition of those
/// days is replaced (or removed when the store has nothing for it), so a rerun gives the same
/// dataset, without duplicates.
pub async fn export_range(
    store: &dyn Store,
    dir: impl AsRef<Path>,
    from: i64,
    to: i64,
) -> Result<Summary, Error> {
    let (Some(first), Some(last)) = (
        Date::of_time(from.clamp(MIN_TIME, MAX_TIME)),
        Date::of_time(to.clamp(MIN_TIME, MAX_TIME)),
    ) else {
        return Err(Error::TimeOutOfRange {
            what: "range",
            time: from,
        });
    };
    let (from, to) = (first.start(), last.last_second());
    let mut out = Exporter::new(dir)?;
    if from > to {
        return out.finish();
    }
    out.claim_range(from, to)?;
    let mut after = None;
    loop {
        let page = store.scan_readings(from, to, after.clone(), PAGE).await?;
        out.write_readings(&page)?;
        match page.last() {
            Some(last) => {
                out.seal_before(last.reading.time)?;
                after = Some(last.reading.key());
            }
            None => break,
        }
        if page.len() < PAGE {
            break;
        }
    }
    out.seal_all()?;
    for period in Period::ALL {
        let mut offset = 0;
        // Offsets shift when aggregates of new keys are stored during the export. Rows of an
        // earlier period_start than the last written, or of the same one and an already
        // written key, are skipped, so a shift never duplicates a row. (Keys are compared as
        // sets, not by order: the store may sort text by a collation other than bytes.)
        let mut last_start = i64::MIN;
        let mut written: HashSet<(String, String)> = HashSet::new();
        loop {
            let page = store
                .scan_aggregates(period, from, to, offset, PAGE)
                .await?;
            let mut fresh: Vec<Aggregate> = Vec::with_capacity(page.len());
            for a in &page {
                if a.period_start < last_start {
                    continue;
                }
                if a.period_start > last_start {
                    last_start = a.period_start;
                    written.clear();
                }
                if written.insert((a.subject.clone(), a.channel.clone())) {
                    fresh.push(a.clone());
                }
            }
            out.write_aggregates(&fresh)?;
            out.seal_before(last_start)?;
            offset += page.len();
            if page.len() < PAGE {
                break;
            }
        }
        out.seal_all()?;
    }
    out.finish()
}
