//! Monthly partitions of `readings`: their names and bounds, created on demand before a batch
//! that needs them.

use super::*;

impl PgStore {
    /// Creates the monthly partitions that `times` fall in and that are not known to exist.
    pub(super) async fn ensure_partitions(
        &self,
        client: &tokio_postgres::Client,
        times: impl Iterator<Item = i64>,
    ) -> Result<(), StoreError> {
        if !self.partitioned {
            return Ok(());
        }
        let mut months = HashSet::new();
        for t in times {
            months.insert(month_start(t)?);
        }
        let missing: Vec<i64> = {
            let known = self
                .partitions
                .lock()
                .map_err(|_| StoreError::Task("partition cache poisoned".into()))?;
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        for start in missing {
            let (name, end) = partition_of(start)?;
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS \"{name}\" PARTITION OF readings
                 FOR VALUES FROM ({start}) TO ({end})"
            );
            match client.batch_execute(&sql).await {
                Ok(()) => {}
                // Another writer created it at the same moment.
                Err(e)
                    if e.code() == Some(&SqlState::DUPLICATE_TABLE)
                        || e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
                Err(e) => return Err(e.into()),
            }
            self.partitions
                .lock()
                .map_err(|_| StoreError::Task("partition cache poisoned".into()))?
                .insert(start);
        }
        Ok(())
    }
}

/// The first second (UTC) of the calendar month `t` falls in.
pub(super) fn month_start(t: i64) -> Result<i64, StoreError> {
    let at = OffsetDateTime::from_unix_timestamp(t)
        .map_err(|_| StoreError::Invalid(format!("time {t} is out of range")))?;
    first_of(at.year(), at.month())
}

pub(super) fn first_of(year: i32, month: Month) -> Result<i64, StoreError> {
    let d = Date::from_calendar_date(year, month, 1)
        .map_err(|e| StoreError::Invalid(format!("{year}-{month}: {e}")))?;
    Ok(d.midnight().assume_utc().unix_timestamp())
}

/// The month start of a partition named `readings_pYYYYMM`.
pub(super) fn partition_start(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("readings_p")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits.get(..4)?.parse().ok()?;
    let month: u8 = digits.get(4..)?.parse().ok()?;
    first_of(year, Month::try_from(month).ok()?).ok()
}

/// The partition's name and its (exclusive) end, for the month starting at `start`.
pub(super) fn partition_of(start: i64) -> Result<(String, i64), StoreError> {
    let at = OffsetDateTime::from_unix_timestamp(start)
        .map_err(|_| StoreError::Invalid(format!("time {start} is out of range")))?;
    let (year, month) = (at.year(), at.month());
    let (ny, nm) = match month {
        Month::December => (year + 1, Month::January),
        m => (year, m.next()),
    };
    let name = format!("readings_p{year:04}{:02}", u8::from(month));
    Ok((name, first_of(ny, nm)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn months_and_partition_names() {
        // 2026-11-27T00:30:00Z
        let t = 1_795_739_400;
        let start = month_start(t).unwrap();
        assert_eq!(start, 1_793_491_200); // 2026-11-01
        let (name, end) = partition_of(start).unwrap();
        assert_eq!(name, "readings_p202611");
        assert_eq!(end, 1_796_083_200); // 2026-12-01
        let (name, end) = partition_of(end).unwrap();
        assert_eq!(name, "readings_p202612");
        assert_eq!(end, 1_798_761_600); // 2027-01-01
        assert_eq!(month_start(start - 1).unwrap(), 1_790_812_800); // 2026-10-01
    }
}
