-- Newest-first listings (`airlock sessions list`, `/api/sessions`, History) read the newest
-- rows through these instead of sorting the whole table: with a million sessions a listing
-- was a full scan and sort (0.6-1.1 s, docs/performance.md); now it reads what it shows.
CREATE INDEX sessions_started_at ON sessions (started_at);
CREATE INDEX requests_created_at ON requests (created_at);
