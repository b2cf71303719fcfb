-- Validation's quality flags on every reading (0 = nothing wrong; bits in hes_model::Quality),
-- and the per-period aggregates the pipeline keeps up to date (recomputed, so replacing).
ALTER TABLE readings ADD COLUMN quality INTEGER NOT NULL DEFAULT 0;

CREATE TABLE aggregates (
    subject      TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    period       TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    period_end   INTEGER NOT NULL,
    total        REAL    NOT NULL,
    count        INTEGER NOT NULL,
    complete     INTEGER NOT NULL,
    quality      INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (subject, channel, period, period_start)
) WITHOUT ROWID;
CREATE INDEX aggregates_period_start ON aggregates (period, period_start);
CREATE INDEX readings_time ON readings (time);
