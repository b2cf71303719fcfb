-- Readings and events, keyed by their natural keys so that a replayed batch stores nothing new.
-- Times are Unix seconds (UTC), as in hes-model.
CREATE TABLE readings (
    meter       TEXT    NOT NULL,
    obis        TEXT    NOT NULL,
    attribute   INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    class_id    INTEGER NOT NULL,
    value       INTEGER NOT NULL,
    scaler      INTEGER NOT NULL,
    unit        INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, obis, attribute, time)
) WITHOUT ROWID;

CREATE TABLE events (
    meter       TEXT    NOT NULL,
    log         TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    code        INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (meter, log, time, code)
) WITHOUT ROWID;
