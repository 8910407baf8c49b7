-- Time-boxed access grants (issue 21). A target with `requires_grant = true` runs nothing for an
-- agent without a live grant: one with `revoked_at IS NULL AND expires_at > now`. Grants are
-- rows in the database, so a grant made or revoked on one cluster node is in force (or gone)
-- on every node at once. Rows are never deleted: `grant list` shows expired and revoked ones.
--
-- `reason` is '' when none was given; `request_id` is the access request a reviewer approved
-- (NULL from the operator CLI); `expiry_noted` is set by whichever gateway node first wrote
-- `grant.expired` to the ledger (a conditional update, so exactly one node writes it).
CREATE TABLE grants (
    id            TEXT PRIMARY KEY,
    agent         TEXT NOT NULL,
    target        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoked_by    TEXT,
    request_id    TEXT,
    expiry_noted  BIGINT
);
CREATE INDEX grants_agent_target ON grants (agent, target, expires_at);
CREATE INDEX grants_expires ON grants (expires_at);
