-- Replay protection of pushed data notifications, shared by every push listener and kept
-- across restarts: per meter, the highest invocation counter accepted and which of the 64
-- below it were accepted too (bit i for highest - i), so that pushes that overtake each other
-- still pass and a copy never does.
CREATE TABLE push_counters (
    meter   TEXT   PRIMARY KEY,
    highest BIGINT NOT NULL,
    seen    BIGINT NOT NULL
);
