//! Exporting a time range straight from the store, a page at a time.

use std::path::Path;

use hes_model::Period;
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
                out.seal_readings_before(last.reading.time)?;
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
        loop {
            let page = store
                .scan_aggregates(period, from, to, offset, PAGE)
                .await?;
            out.write_aggregates(&page)?;
            offset += page.len();
            if page.len() < PAGE {
                break;
            }
        }
        out.seal_all()?;
    }
    out.finish()
}
