-- The API's own tables: users, API tokens, refresh tokens, the audit log, acknowledgements of
-- events, and schedules edited through the API. Secrets are stored only as hashes (argon2 for
-- passwords, SHA-256 for random tokens). Times are Unix seconds (UTC).
CREATE TABLE api_users (
    username      text   PRIMARY KEY,
    password_hash text   NOT NULL,
    role          text   NOT NULL,
    groups        text   NOT NULL DEFAULT '[]',
    created_at    bigint NOT NULL
);

CREATE TABLE api_tokens (
    id          text   PRIMARY KEY,
    name        text   NOT NULL,
    secret_hash text   NOT NULL UNIQUE,
    owner       text   NOT NULL,
    role        text   NOT NULL,
    scopes      text   NOT NULL DEFAULT '[]',
    groups      text   NOT NULL DEFAULT '[]',
    created_at  bigint NOT NULL,
    expires_at  bigint,
    revoked_at  bigint
);

CREATE TABLE api_refresh_tokens (
    secret_hash text   PRIMARY KEY,
    username    text   NOT NULL,
    expires_at  bigint NOT NULL,
    used_at     bigint
);
CREATE INDEX api_refresh_tokens_user ON api_refresh_tokens (username);

CREATE TABLE api_audit (
    id     bigserial PRIMARY KEY,
    time   bigint NOT NULL,
    actor  text   NOT NULL,
    action text   NOT NULL,
    target text   NOT NULL,
    detail text   NOT NULL DEFAULT '{}'
);
CREATE INDEX api_audit_time ON api_audit (time);

CREATE TABLE api_event_acks (
    meter    text    NOT NULL,
    log      text    NOT NULL,
    time     bigint  NOT NULL,
    code     integer NOT NULL,
    acked_by text    NOT NULL,
    acked_at bigint  NOT NULL,
    PRIMARY KEY (meter, log, time, code)
);

CREATE TABLE api_schedules (
    name text PRIMARY KEY,
    spec text NOT NULL
);
