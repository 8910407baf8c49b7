-- What reviewers see beside the command: the agent's stated reason (the AIRLOCK_REASON
-- variable it sent, if any) and the target's labels (JSON object, e.g. {"env":"prod"}).
ALTER TABLE requests ADD COLUMN reason TEXT;
ALTER TABLE requests ADD COLUMN labels TEXT;
