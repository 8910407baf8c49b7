-- The hash-chained audit ledger (docs/ledger.md). Portable: SQLite and Postgres.
-- `seq` is the primary key, so two writers can never both append entry N: the loser retries
-- on top of the winner, and the chain cannot fork.
CREATE TABLE ledger (
    seq BIGINT PRIMARY KEY,
    ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- Signed heads: Ed25519 over "airlock-ledger-checkpoint-v1\n{seq}\n{hash}".
CREATE TABLE ledger_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    ts BIGINT NOT NULL,
    pubkey TEXT NOT NULL,
    sig TEXT NOT NULL
);
