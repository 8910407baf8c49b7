-- Whitelist proposals ("staging first", issue 21). An entry promoted from another target or
-- copied from another agent is stored beside the live ones, but as `proposed`: the gate's
-- lookup reads only `live` rows, so a proposal allows nothing until reviewers accept it (one
-- at low, two distinct people at medium), and a `rejected` one never will. Rows from before
-- are live. `proposed_by` and `source` say who proposed it and from where ("promoted from
-- target staging", "copied from agent A"); NULL on entries that were never proposed.
ALTER TABLE whitelist ADD COLUMN status TEXT NOT NULL DEFAULT 'live';
ALTER TABLE whitelist ADD COLUMN proposed_by TEXT;
ALTER TABLE whitelist ADD COLUMN source TEXT;
CREATE INDEX whitelist_status ON whitelist (status);

-- One row per person who accepted a proposal; the key makes a second acceptance by the same
-- person a no-op, so "two distinct reviewers" is a count of rows.
CREATE TABLE whitelist_accepts (
    entry_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (entry_id, reviewer)
);
