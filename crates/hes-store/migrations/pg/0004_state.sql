-- Shared, durable state of every role: the meter registry (secrets sealed under the KEK, never
-- in clear), invocation-counter leases, jobs and their state machine, leader leases with
-- fencing tokens, and the schedule slots already fired. Times are Unix seconds unless a column
-- says `_ms`.
CREATE TABLE meters (
    id                  text    PRIMARY KEY,
    serial              text    NOT NULL,
    logical_device_name text    NOT NULL,
    endpoint            text    NOT NULL,
    system_title        text    NOT NULL UNIQUE,
    max_pdu             integer NOT NULL,
    groups              text    NOT NULL DEFAULT '{}',
    status              text    NOT NULL,
    quirks              text    NOT NULL DEFAULT '[]',
    key_version         bigint  NOT NULL,
    secrets             text    NOT NULL,
    revision            bigint  NOT NULL,
    updated_at          bigint  NOT NULL
);
CREATE INDEX meters_revision ON meters (revision);

-- Bumped by every change of the registry: readers reload what changed after their revision.
CREATE TABLE registry_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint  NOT NULL
);
INSERT INTO registry_revision VALUES (1, 0);

CREATE TABLE invocation_counters (
    meter text   PRIMARY KEY,
    next  bigint NOT NULL
);

CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    meter        text    NOT NULL,
    kind         text    NOT NULL,
    is_read      boolean NOT NULL,
    priority     text    NOT NULL,
    state        text    NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    created_at   bigint  NOT NULL,
    not_before   bigint  NOT NULL,
    started_at   bigint,
    finished_at  bigint,
    last_error   text,
    requested_by text    NOT NULL,
    requests     text    NOT NULL DEFAULT '[]',
    readings     bigint  NOT NULL DEFAULT 0,
    events       bigint  NOT NULL DEFAULT 0,
    detail       text    NOT NULL DEFAULT 'null',
    updated_at   bigint  NOT NULL
);
-- One open read per meter and kind: asking again joins it.
CREATE UNIQUE INDEX jobs_open_read ON jobs (meter, kind)
    WHERE is_read AND state IN ('queued', 'running', 'retrying');
CREATE INDEX jobs_meter ON jobs (meter, id);
CREATE INDEX jobs_open ON jobs (updated_at) WHERE state IN ('queued', 'running', 'retrying');
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE leases (
    name       text   PRIMARY KEY,
    holder     text   NOT NULL,
    token      bigint NOT NULL,
    expires_ms bigint NOT NULL
);

CREATE TABLE schedule_slots (
    schedule text   NOT NULL,
    slot     bigint NOT NULL,
    token    bigint NOT NULL,
    fired_at bigint NOT NULL,
    jobs     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (schedule, slot)
);
