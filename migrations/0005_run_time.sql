-- How long a run has actually run, for the elapsed time and rate `status` shows: a run
-- stopped on Friday and resumed on Monday ran for its two stints, not the weekend.
-- `running_since` is when the current stint began (NULL while stopped); a stint's time
-- is added to `active_seconds` when it ends, or, for a process that died, when the run
-- is resumed (up to its last checkpoint). Runs recorded before have 0 and NULL: their
-- elapsed time is the wall time from start to end.
ALTER TABLE runs ADD COLUMN active_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN running_since TEXT;
