-- Reviewer single sign-on (OpenID Connect). Both tables live in the database so every gateway
-- node of a cluster accepts a login started on another node and a session opened on another.
--
-- A login in progress: the `state` sent to the identity provider (only its SHA-256 is kept),
-- with the PKCE verifier and nonce that go with it. Single use, minutes long.
CREATE TABLE reviewer_logins (
    state_sha256 TEXT PRIMARY KEY,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reviewer_logins_expires ON reviewer_logins (expires_at);

-- A signed-in reviewer's browser session: the SHA-256 of the cookie's random id (the id
-- itself is never stored), the reviewer name and the identity provider's groups claim (JSON
-- array; mapped to reviewer groups by the config in force when it is used). Logout deletes
-- the row; an expired row is refused and swept.
CREATE TABLE reviewer_sessions (
    id_sha256 TEXT PRIMARY KEY,
    reviewer TEXT NOT NULL,
    claimed_groups TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reviewer_sessions_expires ON reviewer_sessions (expires_at);
