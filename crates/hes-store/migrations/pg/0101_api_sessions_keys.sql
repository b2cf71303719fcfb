-- Revocation and signing keys. `token_gen` is carried by every access token of a user and
-- bumped when its password, role or groups change (or it is deleted): older access tokens and
-- WebSocket sessions stop being accepted at once on every node. `api_jwt_keys` holds the keys
-- that sign access tokens when no HES_JWT_SECRET is set, shared by all API nodes: the highest
-- `seq` is current, older ones still verify the tokens they signed until those expire.
ALTER TABLE api_users ADD COLUMN token_gen bigint NOT NULL DEFAULT 0;

CREATE INDEX api_tokens_owner ON api_tokens (owner);

CREATE TABLE api_jwt_keys (
    seq        bigint PRIMARY KEY,
    kid        text   NOT NULL UNIQUE,
    secret     text   NOT NULL,
    created_at bigint NOT NULL
);
