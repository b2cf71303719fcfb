-- The API's own tables: users, API tokens, refresh tokens, the audit log, acknowledgements of
-- events, and schedules edited through the API. Secrets are stored only as hashes (argon2 for
-- passwords, SHA-256 for random tokens). Times are Unix seconds (UTC).
CREATE TABLE api_users (
    username      TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    groups        TEXT    NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL UNIQUE,
    owner       TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    scopes      TEXT    NOT NULL DEFAULT '[]',
    groups      TEXT    NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);

CREATE TABLE api_refresh_tokens (
    secret_hash TEXT    PRIMARY KEY,
    username    TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX api_refresh_tokens_user ON api_refresh_tokens (username);

CREATE TABLE api_audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    detail TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX api_audit_time ON api_audit (time);

CREATE TABLE api_event_acks (
    meter    TEXT    NOT NULL,
    log      TEXT    NOT NULL,
    time     INTEGER NOT NULL,
    code     INTEGER NOT NULL,
    acked_by TEXT    NOT NULL,
    acked_at INTEGER NOT NULL,
    PRIMARY KEY (meter, log, time, code)
) WITHOUT ROWID;

CREATE TABLE api_schedules (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS api_events_time ON events (time);
