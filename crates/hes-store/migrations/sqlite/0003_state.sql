-- Shared, durable state of every role: the meter registry (secrets sealed under the KEK, never
-- in clear), invocation-counter leases, jobs and their state machine, leader leases with
-- fencing tokens, and the schedule slots already fired. Times are Unix seconds unless a column
-- says `_ms`.
CREATE TABLE meters (
    id                  TEXT    PRIMARY KEY,
    serial              TEXT    NOT NULL,
    logical_device_name TEXT    NOT NULL,
    endpoint            TEXT    NOT NULL,
    system_title        TEXT    NOT NULL UNIQUE,
    max_pdu             INTEGER NOT NULL,
    groups              TEXT    NOT NULL DEFAULT '{}',
    status              TEXT    NOT NULL,
    quirks              TEXT    NOT NULL DEFAULT '[]',
    key_version         INTEGER  NOT NULL,
    secrets             TEXT    NOT NULL,
    revision            INTEGER  NOT NULL,
    updated_at          INTEGER  NOT NULL
);
CREATE INDEX meters_revision ON meters (revision);

-- Bumped by every change of the registry: readers reload what changed after their revision.
CREATE TABLE registry_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER  NOT NULL
);
INSERT INTO registry_revision VALUES (1, 0);

CREATE TABLE invocation_counters (
    meter TEXT   PRIMARY KEY,
    next  INTEGER NOT NULL
);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    meter        TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    is_read      INTEGER NOT NULL,
    priority     TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created_at   INTEGER  NOT NULL,
    not_before   INTEGER  NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    last_error   TEXT,
    requested_by TEXT    NOT NULL,
    requests     TEXT    NOT NULL DEFAULT '[]',
    readings     INTEGER  NOT NULL DEFAULT 0,
    events       INTEGER  NOT NULL DEFAULT 0,
    detail       TEXT    NOT NULL DEFAULT 'null',
    updated_at   INTEGER  NOT NULL
);
-- One open read per meter and kind: asking again joins it.
CREATE UNIQUE INDEX jobs_open_read ON jobs (meter, kind)
    WHERE is_read = 1 AND state IN ('queued', 'running', 'retrying');
CREATE INDEX jobs_meter ON jobs (meter, id);
CREATE INDEX jobs_open ON jobs (updated_at) WHERE state IN ('queued', 'running', 'retrying');
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    token      INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

CREATE TABLE schedule_slots (
    schedule TEXT   NOT NULL,
    slot     INTEGER NOT NULL,
    token    INTEGER NOT NULL,
    fired_at INTEGER NOT NULL,
    jobs     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (schedule, slot)
);
