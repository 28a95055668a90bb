-- The folder a run was started from (`rimport start DIR`), so `status` can group a
-- folder's runs; NULL for a run started on a single file. Runs are looked up by file and
-- table, so that starting a folder again continues its unfinished files and skips the
-- completed ones.
ALTER TABLE runs ADD COLUMN folder TEXT;
CREATE INDEX runs_by_file ON runs (file, table_name, started_at);
