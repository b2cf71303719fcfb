-- Readings and events, keyed by their natural keys so that a replayed batch stores nothing new.
-- Times are Unix seconds (UTC), as in hes-model.
--
-- With TimescaleDB available, `readings` is a hypertable (30-day chunks on `time`); otherwise it
-- is partitioned by RANGE on `time` and the store creates one partition per calendar month
-- (UTC) on demand, named readings_pYYYYMM.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        CREATE TABLE readings (
            meter       text     NOT NULL,
            obis        text     NOT NULL,
            attribute   smallint NOT NULL,
            time        bigint   NOT NULL,
            class_id    integer  NOT NULL,
            value       bigint   NOT NULL,
            scaler      smallint NOT NULL,
            unit        smallint NOT NULL,
            status      smallint NOT NULL,
            source      text     NOT NULL,
            received_at bigint   NOT NULL,
            PRIMARY KEY (meter, obis, attribute, time)
        );
        PERFORM create_hypertable('readings', 'time', chunk_time_interval => 2592000);
    ELSE
        CREATE TABLE readings (
            meter       text     NOT NULL,
            obis        text     NOT NULL,
            attribute   smallint NOT NULL,
            time        bigint   NOT NULL,
            class_id    integer  NOT NULL,
            value       bigint   NOT NULL,
            scaler      smallint NOT NULL,
            unit        smallint NOT NULL,
            status      smallint NOT NULL,
            source      text     NOT NULL,
            received_at bigint   NOT NULL,
            PRIMARY KEY (meter, obis, attribute, time)
        ) PARTITION BY RANGE (time);
    END IF;
END
$$;

CREATE TABLE events (
    meter       text    NOT NULL,
    log         text    NOT NULL,
    time        bigint  NOT NULL,
    code        integer NOT NULL,
    source      text    NOT NULL,
    received_at bigint  NOT NULL,
    PRIMARY KEY (meter, log, time, code)
);
