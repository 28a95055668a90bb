-- A dead letter that a later element of the same run with the same key made moot: once
-- that element is written (a put, or a request file's delete), writing the earlier one
-- again would undo it, and the later of two elements with one key wins. Such a dead
-- letter gets the status 'superseded' (besides 'pending' and 'written'), with
-- `superseded_by` the item index of the later element. `retry-failed` and `dead-letters`
-- leave it out, `status` counts it apart, and it is no failure of the run.
-- `item_key` is the item's primary key as `keys.canonical` writes it (NULL for an item
-- refused before sending, and for a dead letter recorded before this column, whose key
-- is worked out from its item when a run or `retry-failed` needs it).
ALTER TABLE dead_letters ADD COLUMN item_key BLOB;
ALTER TABLE dead_letters ADD COLUMN superseded_by INTEGER;
CREATE INDEX dead_letters_by_key ON dead_letters (run_id, item_key) WHERE item_key IS NOT NULL;
