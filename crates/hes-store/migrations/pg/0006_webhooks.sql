-- Webhook subscriptions and their delivery queue (hes-api's webhooks). A delivery is one event
-- for one subscription, enqueued once (unique on the event's id), claimed by one API node at a
-- time under a lease (a killed node's claims expire and are taken again), delivered in id
-- order per (webhook, meter): a delivery waits while an earlier one of its meter is pending.
CREATE TABLE webhooks (
    id           TEXT    PRIMARY KEY,
    url          TEXT    NOT NULL,
    events       TEXT    NOT NULL,
    groups       TEXT    NOT NULL,
    secret       TEXT    NOT NULL,
    max_attempts BIGINT  NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    -- may be delivered to loopback, private and link-local addresses (an admin's choice)
    allow_private BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE webhook_deliveries (
    id            BIGSERIAL PRIMARY KEY,
    webhook       TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id      TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    meter         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'pending',
    attempts      BIGINT  NOT NULL DEFAULT 0,
    next_at       BIGINT  NOT NULL,
    claimed_by    TEXT,
    claimed_until BIGINT,
    last_status   BIGINT,
    last_error    TEXT,
    created_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    UNIQUE (webhook, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook, meter, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook, id);
