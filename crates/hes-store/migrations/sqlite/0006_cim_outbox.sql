-- The CIM (IEC 61968-9) outbound queue: what the MDM is to receive (a meter's day of readings,
-- an event), claimed by any API node for a lease, retried with backoff, and kept as a dead
-- letter after the last attempt. Cursors remember how far the producers got. Times are Unix
-- seconds.
CREATE TABLE cim_outbox (
    key           TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    meter         TEXT    NOT NULL,
    time          INTEGER  NOT NULL,
    log           TEXT    NOT NULL DEFAULT '',
    code          INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER  NOT NULL,
    claimed_by    TEXT    NOT NULL DEFAULT '',
    claimed_until INTEGER  NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    INTEGER  NOT NULL,
    done_at       INTEGER
);
CREATE INDEX cim_outbox_due ON cim_outbox (state, next_at);

CREATE TABLE cim_cursors (
    name  TEXT   PRIMARY KEY,
    value INTEGER NOT NULL
);

-- New events are found by when they arrived.
CREATE INDEX IF NOT EXISTS events_received_at ON events (received_at);
