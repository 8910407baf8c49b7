-- Airlock schema, portable between SQLite and PostgreSQL (sqlx Any driver).
-- Times are Unix milliseconds (BIGINT); ids are random hex text made by the application,
-- so no dialect-specific auto-increment is needed.

CREATE TABLE reviewers (
    name        TEXT PRIMARY KEY,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    agent            TEXT NOT NULL,
    target           TEXT NOT NULL,
    kind             TEXT NOT NULL,      -- exec | shell
    command          TEXT,
    peer             TEXT,
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    outcome          TEXT,               -- ran | denied | error
    exit_status      BIGINT,
    exit_signal      TEXT,
    recording        TEXT,
    recording_size   BIGINT,
    recording_sha256 TEXT
);

CREATE TABLE requests (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    agent        TEXT NOT NULL,
    target       TEXT NOT NULL,
    command      TEXT NOT NULL,
    tier         TEXT NOT NULL,
    score        BIGINT NOT NULL,
    reasons      TEXT NOT NULL,          -- JSON array of classifier reasons
    quorum       BIGINT NOT NULL,
    status       TEXT NOT NULL,          -- pending | approved | denied | expired | withdrawn
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    resolved_at  BIGINT,
    resolved_by  TEXT,
    note         TEXT
);
CREATE INDEX requests_status ON requests (status);

CREATE TABLE votes (
    request_id  TEXT NOT NULL REFERENCES requests (id),
    reviewer    TEXT NOT NULL,
    decision    TEXT NOT NULL,           -- approve | deny
    comment     TEXT,
    at          BIGINT NOT NULL,
    PRIMARY KEY (request_id, reviewer)
);

CREATE TABLE whitelist (
    id          TEXT PRIMARY KEY,
    agent       TEXT,                    -- NULL: any agent
    target      TEXT,                    -- NULL: any target
    command     TEXT NOT NULL,
    tier        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT                   -- NULL: never
);
CREATE INDEX whitelist_command ON whitelist (command);
