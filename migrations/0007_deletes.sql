-- Deletes a run performed (the DeleteRequests of a BatchWriteItem request file), counted
-- apart from items_written, which counts the items put.
ALTER TABLE runs ADD COLUMN items_deleted INTEGER NOT NULL DEFAULT 0;
