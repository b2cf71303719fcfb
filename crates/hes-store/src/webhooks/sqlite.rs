//! The webhook queue on SQLite (the embedded mode): one writer, so a claim is one statement
//! with nothing to arbitrate.

use rusqlite::{params, OptionalExtension};

use super::{
    delivery_from_parts, list_text, outcome_columns, parse_list, Delivery, DeliveryState,
    NewDelivery, Outcome, Webhook, WebhookStore, DELIVERY_COLUMNS, WEBHOOK_COLUMNS,
};
use crate::sqlite::Cached;
use crate::{BoxFuture, SqliteStore, StoreError};

fn delivery_from_row(r: &rusqlite::Row<'_>) -> Result<Delivery, StoreError> {
    let state: String = r.get(6)?;
    delivery_from_parts(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        &state,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    )
}

fn webhook_from_row(r: &rusqlite::Row<'_>) -> Result<Webhook, StoreError> {
    let id: String = r.get(0)?;
    let events: String = r.get(2)?;
    let groups: String = r.get(3)?;
    Ok(Webhook {
        url: r.get(1)?,
        events: parse_list(&id, &events)?,
        groups: parse_list(&id, &groups)?,
        secret: r.get(4)?,
        max_attempts: crate::narrow(r.get(5)?, "max_attempts")?,
        created_by: r.get(6)?,
        created_at: r.get(7)?,
        allow_private: r.get(8)?,
        id,
    })
}

impl WebhookStore for SqliteStore {
    fn create_webhook<'a>(&'a self, w: &'a Webhook) -> BoxFuture<'a, Result<(), StoreError>> {
        let w = w.clone();
        Box::pin(self.with(move |c| {
            let n = c.exec_cached(
                &format!(
                    "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                     ON CONFLICT (id) DO NOTHING"
                ),
                params![
                    w.id,
                    w.url,
                    list_text(&w.events)?,
                    list_text(&w.groups)?,
                    w.secret,
                    i64::from(w.max_attempts),
                    w.created_by,
                    w.created_at,
                    w.allow_private
                ],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("webhook {} exists", w.id)));
            }
            Ok(())
        }))
    }

    fn replace_webhook_secrets<'a>(
        &'a self,
        secrets: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let secrets = secrets.to_vec();
        Box::pin(self.with(move |c| {
            let mut n = 0u64;
            for (id, secret) in &secrets {
                n += c.exec_cached(
                    "UPDATE webhooks SET secret = ?2 WHERE id = ?1",
                    params![id, secret],
                )? as u64;
            }
            Ok(n)
        }))
    }

    fn webhooks(&self) -> BoxFuture<'_, Result<Vec<Webhook>, StoreError>> {
        Box::pin(self.with_read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
            ))?;
            let mut rows = st.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(webhook_from_row(r)?);
            }
            Ok(out)
        }))
    }

    fn delete_webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let id = id.to_string();
        Box::pin(self.with(move |c| {
            c.exec_cached("DELETE FROM webhook_deliveries WHERE webhook = ?1", [&id])?;
            Ok(c.exec_cached("DELETE FROM webhooks WHERE id = ?1", [&id])? > 0)
        }))
    }

    fn enqueue_deliveries<'a>(
        &'a self,
        deliveries: &'a [NewDelivery],
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let deliveries = deliveries.to_vec();
        Box::pin(self.with(move |c| {
            let mut added = 0u64;
            for d in &deliveries {
                added += c.exec_cached(
                    "INSERT INTO webhook_deliveries \
                     (webhook, event_id, kind, meter, body, next_at, created_at) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6 \
                     WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?1) \
                     ON CONFLICT (webhook, event_id) DO NOTHING",
                    params![d.webhook, d.event_id, d.kind, d.meter, d.body, now_ms],
                )? as u64;
            }
            Ok(added)
        }))
    }

    fn claim_deliveries<'a>(
        &'a self,
        holder: &'a str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        let holder = holder.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let until = now_ms.saturating_add(lease_ms);
        Box::pin(self.with(move |c| {
            let mut st = c.prepare_cached(&format!(
                "UPDATE webhook_deliveries SET claimed_by = ?1, claimed_until = ?3, \
                 attempts = attempts + 1 \
                 WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                   WHERE d.state = 'pending' AND d.next_at <= ?2 \
                   AND (d.claimed_until IS NULL OR d.claimed_until < ?2) \
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                     WHERE e.webhook = d.webhook AND e.meter = d.meter \
                     AND e.state = 'pending' AND e.id < d.id) \
                   ORDER BY d.id LIMIT ?4) \
                 RETURNING {DELIVERY_COLUMNS}"
            ))?;
            let mut rows = st.query(params![holder, now_ms, until, limit])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(delivery_from_row(r)?);
            }
            out.sort_by_key(|d| d.id);
            Ok(out)
        }))
    }

    fn finish_delivery<'a>(
        &'a self,
        id: i64,
        holder: &'a str,
        outcome: &'a Outcome,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let holder = holder.to_string();
        let (state, status, error, next_at, finished) = outcome_columns(outcome, now_ms);
        Box::pin(self.with(move |c| {
            Ok(c.row_cached(
                "UPDATE webhook_deliveries SET state = ?3, last_status = ?4, \
                     last_error = ?5, next_at = COALESCE(?6, next_at), finished_at = ?7, \
                     claimed_by = NULL, claimed_until = NULL \
                     WHERE id = ?1 AND claimed_by = ?2 AND state = 'pending' RETURNING 1",
                params![id, holder, state, status, error, next_at, finished],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        }))
    }

    fn deliveries<'a>(
        &'a self,
        webhook: &'a str,
        state: Option<DeliveryState>,
        before: Option<i64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        let webhook = webhook.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let state = state.map(DeliveryState::as_str);
        let before = before.unwrap_or(i64::MAX);
        Box::pin(self.with_read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                 WHERE webhook = ?1 AND (?2 IS NULL OR state = ?2) AND id < ?3 \
                 ORDER BY id DESC LIMIT ?4"
            ))?;
            let mut rows = st.query(params![webhook, state, before, limit])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(delivery_from_row(r)?);
            }
            Ok(out)
        }))
    }
}
