-- Anxin store, part 6: the HTTP API — login sessions, API tokens, login attempts.
-- Portable SQL: runs unchanged on SQLite (>= 3.35) and PostgreSQL (>= 12).
-- Times are BIGINT milliseconds since the Unix epoch (UTC, wall-clock time even in the
-- accelerated demo). Secrets are never stored: only the SHA-256 of a session cookie or
-- of a token's secret (hex). Passwords are argon2id hashes in users.password_hash.

-- Browser sessions (cookie `anxin_session`). csrf: the token every state-changing
-- request of this session must carry in `X-CSRF-Token`. A session ends at expires_ms,
-- after idle_s without a request, at logout, or when the user is deactivated.
CREATE TABLE api_sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    csrf          TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL,
    user_agent    TEXT NOT NULL DEFAULT '',
    ended_ms      BIGINT
);
CREATE INDEX api_sessions_user ON api_sessions (user_id);

-- API tokens for integrations: `Authorization: Bearer anx_<id>_<secret>`. A token acts
-- as its user with that user's role and scope.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    expires_ms    BIGINT,
    last_used_ms  BIGINT,
    revoked_ms    BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Login attempts, for rate limiting (per user id and per client address) and for the
-- record. login: the id as typed (lower-cased, at most 64 characters).
CREATE TABLE api_login_attempts (
    id          TEXT PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    login       TEXT NOT NULL,
    client      TEXT NOT NULL,
    ok          INTEGER NOT NULL
);
CREATE INDEX api_login_attempts_login ON api_login_attempts (login, at_ms);
CREATE INDEX api_login_attempts_client ON api_login_attempts (client, at_ms);
