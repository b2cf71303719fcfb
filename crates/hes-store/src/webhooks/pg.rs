//! The webhook queue on PostgreSQL: claims with `FOR UPDATE SKIP LOCKED`, so that API nodes
//! claiming at once never wait on each other nor take the same delivery.

use super::{
    delivery_from_parts, list_text, outcome_columns, parse_list, Delivery, DeliveryState,
    NewDelivery, Outcome, Webhook, WebhookStore, DELIVERY_COLUMNS, WEBHOOK_COLUMNS,
};
use crate::{BoxFuture, PgStore, StoreError};

fn delivery_from_row(r: &tokio_postgres::Row) -> Result<Delivery, StoreError> {
    let state: String = r.try_get(6)?;
    delivery_from_parts(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        &state,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        r.try_get(10)?,
        r.try_get(11)?,
        r.try_get(12)?,
    )
}

fn webhook_from_row(r: &tokio_postgres::Row) -> Result<Webhook, StoreError> {
    let id: String = r.try_get(0)?;
    let events: String = r.try_get(2)?;
    let groups: String = r.try_get(3)?;
    Ok(Webhook {
        url: r.try_get(1)?,
        events: parse_list(&id, &events)?,
        groups: parse_list(&id, &groups)?,
        secret: r.try_get(4)?,
        max_attempts: crate::narrow(r.try_get(5)?, "max_attempts")?,
        created_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
        allow_private: r.try_get(8)?,
        id,
    })
}

impl WebhookStore for PgStore {
    fn create_webhook<'a>(&'a self, w: &'a Webhook) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let n = client
                .execute(
                    &format!(
                        "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING"
                    ),
                    &[
                        &w.id,
                        &w.url,
                        &list_text(&w.events)?,
                        &list_text(&w.groups)?,
                        &w.secret,
                        &i64::from(w.max_attempts),
                        &w.created_by,
                        &w.created_at,
                        &w.allow_private,
                    ],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("webhook {} exists", w.id)));
            }
            Ok(())
        })
    }

    fn replace_webhook_secrets<'a>(
        &'a self,
        secrets: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let mut n = 0;
            for (id, secret) in secrets {
                n += tx
                    .execute(
                        "UPDATE webhooks SET secret = $2 WHERE id = $1",
                        &[id, secret],
                    )
                    .await?;
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    fn webhooks(&self) -> BoxFuture<'_, Result<Vec<Webhook>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            client
                .query(
                    &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"),
                    &[],
                )
                .await?
                .iter()
                .map(webhook_from_row)
                .collect()
        })
    }

    fn delete_webhook<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            tx.execute("DELETE FROM webhook_deliveries WHERE webhook = $1", &[&id])
                .await?;
            let n = tx
                .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
                .await?;
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    fn enqueue_deliveries<'a>(
        &'a self,
        deliveries: &'a [NewDelivery],
        now_ms: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            if deliveries.is_empty() {
                return Ok(0);
            }
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let st = tx
                .prepare(
                    "INSERT INTO webhook_deliveries \
                     (webhook, event_id, kind, meter, body, next_at, created_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $6 \
                     WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1) \
                     ON CONFLICT (webhook, event_id) DO NOTHING",
                )
                .await?;
            let mut added = 0;
            // One by one, in order: the ids give each meter's order.
            for d in deliveries {
                added += tx
                    .execute(
                        &st,
                        &[&d.webhook, &d.event_id, &d.kind, &d.meter, &d.body, &now_ms],
                    )
                    .await?;
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    fn claim_deliveries<'a>(
        &'a self,
        holder: &'a str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let until = now_ms.saturating_add(lease_ms);
            let rows = client
                .query(
                    &format!(
                        "UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $3, \
                         attempts = attempts + 1 \
                         WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                           WHERE d.state = 'pending' AND d.next_at <= $2 \
                           AND (d.claimed_until IS NULL OR d.claimed_until < $2) \
                           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                             WHERE e.webhook = d.webhook AND e.meter = d.meter \
                             AND e.state = 'pending' AND e.id < d.id) \
                           ORDER BY d.id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                         RETURNING {DELIVERY_COLUMNS}"
                    ),
                    &[&holder, &now_ms, &until, &limit],
                )
                .await?;
            let mut out: Vec<Delivery> = rows
                .iter()
                .map(delivery_from_row)
                .collect::<Result<_, _>>()?;
            out.sort_by_key(|d| d.id);
            Ok(out)
        })
    }

    fn finish_delivery<'a>(
        &'a self,
        id: i64,
        holder: &'a str,
        outcome: &'a Outcome,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let (state, status, error, next_at, finished) = outcome_columns(outcome, now_ms);
            let n = client
                .execute(
                    "UPDATE webhook_deliveries SET state = $3, last_status = $4, \
                     last_error = $5, next_at = COALESCE($6, next_at), finished_at = $7, \
                     claimed_by = NULL, claimed_until = NULL \
                     WHERE id = $1 AND claimed_by = $2 AND state = 'pending'",
                    &[&id, &holder, &state, &status, &error, &next_at, &finished],
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn deliveries<'a>(
        &'a self,
        webhook: &'a str,
        state: Option<DeliveryState>,
        before: Option<i64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let state = state.map(DeliveryState::as_str);
            let before = before.unwrap_or(i64::MAX);
            client
                .query(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                         WHERE webhook = $1 AND ($2::text IS NULL OR state = $2) AND id < $3 \
                         ORDER BY id DESC LIMIT $4"
                    ),
                    &[&webhook, &state, &before, &limit],
                )
                .await?
                .iter()
                .map(delivery_from_row)
                .collect()
        })
    }
}
