-- The newest interval each meter pushed (meter time, Unix seconds), kept by the push
-- listeners: the leading scheduler finds the meters whose push of an interval never arrived
-- and reads that interval by pull.
ALTER TABLE push_counters ADD COLUMN last_interval bigint;
CREATE INDEX push_counters_last_interval ON push_counters (last_interval);
