-- Files a command runs (issue 22): `bash deploy.sh` is judged by what deploy.sh holds, and the
-- approval is bound to those bytes.
-- `requests.scripts`: JSON list of the files as reviewers saw them (path, size, SHA-256, text,
-- risky lines, diff against the approved version). NULL on requests that run no file.
ALTER TABLE requests ADD COLUMN scripts TEXT;
-- `whitelist.scripts`: JSON list of {path, sha256} the entry was approved with. An entry with
-- scripts allows its command only while every file still has the approved hash; an entry
-- without (NULL) never allows a command that runs a file the gateway read.
ALTER TABLE whitelist ADD COLUMN scripts TEXT;
-- Approved texts by SHA-256, so that a changed script can be shown as a diff against the
-- version a whitelist entry approved.
CREATE TABLE script_texts (
    sha256 TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
