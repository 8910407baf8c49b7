-- Approval authority: what a request needs (its [[approval_rule]]'s requirements or the tier
-- default, as JSON: {"rule": …, "needs": [{"group": "dba", "count": 1}], "excluded": [owner]}),
-- fixed when it is opened, and the reviewer groups each vote counted for when it was cast
-- (JSON array). NULL on rows from before: "quorum approvals from anyone", no groups.
ALTER TABLE requests ADD COLUMN needs TEXT;
ALTER TABLE votes ADD COLUMN groups TEXT;
