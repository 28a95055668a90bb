-- What tells the table a run writes to from another created later under the same name
-- (DynamoDB's TableId, or the table's ARN and creation time): `resume` and `retry-failed`
-- refuse a table that was deleted and created again, whose items before the checkpoint
-- are gone. NULL for runs recorded before this column existed.
ALTER TABLE runs ADD COLUMN table_identity TEXT;
