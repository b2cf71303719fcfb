-- The CIM (IEC 61968-9) outbound queue: what the MDM is to receive (a meter's day of readings,
-- an event), claimed by any API node for a lease, retried with backoff, and kept as a dead
-- letter after the last attempt. Cursors remember how far the producers got. Times are Unix
-- seconds.
CREATE TABLE cim_outbox (
    key           text    PRIMARY KEY,
    kind          text    NOT NULL,
    meter         text    NOT NULL,
    time          bigint  NOT NULL,
    log           text    NOT NULL DEFAULT '',
    code          integer NOT NULL DEFAULT 0,
    state         text    NOT NULL DEFAULT 'pending',
    attempts      integer NOT NULL DEFAULT 0,
    next_at       bigint  NOT NULL,
    claimed_by    text    NOT NULL DEFAULT '',
    claimed_until bigint  NOT NULL DEFAULT 0,
    last_error    text,
    created_at    bigint  NOT NULL,
    done_at       bigint
);
CREATE INDEX cim_outbox_due ON cim_outbox (state, next_at);

CREATE TABLE cim_cursors (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);

-- New events are found by when they arrived.
CREATE INDEX IF NOT EXISTS events_received_at ON events (received_at);
