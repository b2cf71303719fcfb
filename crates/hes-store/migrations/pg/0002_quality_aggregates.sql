-- Validation's quality flags on every reading (0 = nothing wrong; bits in hes_model::Quality),
-- and the per-period aggregates the pipeline keeps up to date (recomputed, so replacing).
ALTER TABLE readings ADD COLUMN quality integer NOT NULL DEFAULT 0;

CREATE TABLE aggregates (
    subject      text             NOT NULL, -- a meter id, or a group as key=value
    channel      text             NOT NULL,
    period       text             NOT NULL, -- hour | day | month
    period_start bigint           NOT NULL,
    period_end   bigint           NOT NULL,
    total        double precision NOT NULL,
    count        integer          NOT NULL,
    complete     boolean          NOT NULL,
    quality      integer          NOT NULL,
    updated_at   bigint           NOT NULL,
    PRIMARY KEY (subject, channel, period, period_start)
);
CREATE INDEX aggregates_period_start ON aggregates (period, period_start);
