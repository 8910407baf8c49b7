-- Access requests (issue 21): besides commands, an agent can ask reviewers for a time-boxed
-- grant on a target (`ssh airlock@gw request-access prod 1h "why"`). Such a request is a row
-- like any other (same quorum, votes, timeout, ledger), with `target` the target asked for,
-- `command` a readable `request-access prod 1h` for views that know only commands, `kind`
-- 'access' and `access_duration_s` how long the grant lasts from the approval. Rows from
-- before are commands.
ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'command';
ALTER TABLE requests ADD COLUMN access_duration_s BIGINT;
