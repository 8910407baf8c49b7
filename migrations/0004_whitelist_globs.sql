-- Whitelist globs. `kind` tells an exact command line ('exact') from a glob over the
-- command's argv ('glob'); a glob keeps its parsed words (JSON array) and its program, which is
-- indexed so a lookup reads only the globs for the program being run.
ALTER TABLE whitelist ADD COLUMN kind TEXT NOT NULL DEFAULT 'exact';
ALTER TABLE whitelist ADD COLUMN program TEXT;
ALTER TABLE whitelist ADD COLUMN words TEXT;
CREATE INDEX whitelist_program ON whitelist (program);
