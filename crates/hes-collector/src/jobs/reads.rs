//! What a job does in its session: reads (continuing after the newest entry delivered) and
//! commands, their output delivered to the bus before the job counts as done.

use super::execute::Outcome;
use super::*;
use crate::commands;

impl Engine {
    fn watermark(&self, meter: &MeterId, profile: dlms::ObisCode) -> Option<i64> {
        self.state()
            .watermarks
            .get(&(meter.clone(), profile))
            .copied()
    }

    fn advance(&self, meter: &MeterId, profile: dlms::ObisCode, times: impl Iterator<Item = i64>) {
        if let Some(t) = times.max() {
            let mut st = self.state();
            let w = st.watermarks.entry((meter.clone(), profile)).or_insert(t);
            *w = (*w).max(t);
        }
    }

    /// Publishes what a read produced; the watermark moves only once the bus has it.
    async fn deliver(
        &self,
        meter: &MeterId,
        profile: Option<dlms::ObisCode>,
        readings: Vec<Reading>,
        events: Vec<Event>,
    ) -> Result<Outcome, SessionError> {
        bus::publish_readings(&*self.bus, &readings)
            .await
            .map_err(|e| SessionError::Unexpected(format!("bus: {e}")))?;
        bus::publish_events(&*self.bus, &events)
            .await
            .map_err(|e| SessionError::Unexpected(format!("bus: {e}")))?;
        if let Some(p) = profile {
            self.advance(meter, p, readings.iter().map(|r| r.time));
        }
        for e in &events {
            self.advance(meter, e.log, std::iter::once(e.time));
        }
        self.stats
            .readings
            .fetch_add(readings.len() as u64, Ordering::Relaxed);
        self.stats
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(Outcome {
            readings: u32::try_from(readings.len()).unwrap_or(u32::MAX),
            events: u32::try_from(events.len()).unwrap_or(u32::MAX),
            detail: Value::Null,
        })
    }

    pub(super) async fn attempt(&self, job: &Job) -> Result<Outcome, SessionError> {
        // From the store, not the snapshot: the keys of the latest rotation, by any node.
        let record = self.env.registry.current(&job.meter).await?;
        let source = match job.priority {
            Priority::Scheduled => Source::Scheduled,
            Priority::OnDemand => Source::OnDemand,
        };
        let mut s = MeterSession::open(&self.env, record, source).await?;
        let out = self.run_kind(&mut s, job).await;
        let closed = s.close().await;
        let out = out?;
        if let Err(e) = closed {
            tracing::debug!(meter = %job.meter, error = %e, "release failed after the job");
        }
        Ok(out)
    }

    async fn run_kind(&self, s: &mut MeterSession, job: &Job) -> Result<Outcome, SessionError> {
        let meter = &job.meter;
        // Continue after the newest stored entry, so that a gap is read again next time.
        let since = |p| self.watermark(meter, p).map(|t| t + 1);
        match &job.kind {
            JobKind::ReadInstant => {
                let r = s.read_instant().await?;
                self.deliver(meter, None, r, Vec::new()).await
            }
            JobKind::ReadLoadProfile { from } => {
                let p = obis::LOAD_PROFILE;
                let r = s.read_profile(p, from.or_else(|| since(p))).await?;
                self.deliver(meter, Some(p), r, Vec::new()).await
            }
            JobKind::ReadDaily { from } => {
                let p = obis::DAILY_PROFILE;
                let r = s.read_profile(p, from.or_else(|| since(p))).await?;
                self.deliver(meter, Some(p), r, Vec::new()).await
            }
            JobKind::ReadBilling { from } => {
                let p = obis::BILLING_PROFILE;
                let r = s.read_profile(p, from.or_else(|| since(p))).await?;
                self.deliver(meter, Some(p), r, Vec::new()).await
            }
            JobKind::ReadEvents { from } => {
                let mut all = Vec::new();
                for log in obis::EVENT_LOGS {
                    all.extend(s.read_events(log, from.or_else(|| since(log))).await?);
                }
                self.deliver(meter, None, Vec::new(), all).await
            }
            JobKind::Relay { connect } => Ok(detail(commands::relay(s, *connect).await?)),
            JobKind::ClockSync => Ok(detail(commands::clock_sync(s).await?)),
            JobKind::FirmwareUpgrade { image } => {
                let bytes = self
                    .images
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(image)
                    .cloned()
                    .ok_or_else(|| SessionError::Unexpected(format!("no image {image}")))?;
                Ok(detail(commands::firmware_upgrade(s, image, &bytes).await?))
            }
            JobKind::SetCalendar {
                name,
                day_from_min,
                day_to_min,
                activate_at,
            } => Ok(detail(
                commands::set_calendar(s, name, *day_from_min, *day_to_min, *activate_at).await?,
            )),
            JobKind::RotateKeys => {
                commands::rotate_keys(&self.env, s).await?;
                let version = self.env.registry.current(meter).await?.keys.version;
                Ok(detail(json!({ "key_version": version })))
            }
        }
    }
}

fn detail(v: Value) -> Outcome {
    Outcome {
        readings: 0,
        events: 0,
        detail: v,
    }
}
