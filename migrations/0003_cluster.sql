-- Cluster mode: several gateways on one database. Each request remembers the node that holds
-- its waiting agent; each node beats a heartbeat so peers can expire what a dead node held.
ALTER TABLE requests ADD COLUMN node TEXT NOT NULL DEFAULT '';

CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
