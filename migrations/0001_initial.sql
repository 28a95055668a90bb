-- The ledger: one row per run, and the items a run could not write.
-- A run's checkpoint (items_committed, byte_offset) only ever moves in the same
-- transaction that records a batch DynamoDB acknowledged, with that batch's dead letters.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    file            TEXT NOT NULL,      -- absolute path of the dump
    file_size       INTEGER NOT NULL,
    file_hash       TEXT NOT NULL,      -- 'sha256:<hex>' of the whole file
    table_name      TEXT NOT NULL,
    endpoint        TEXT NOT NULL,      -- URL, or 'aws' for the region's public endpoint
    region          TEXT NOT NULL,
    format          TEXT NOT NULL,      -- what the user asked for: auto, json, jsonl
    shape           TEXT NOT NULL,      -- what the reader found: array, object:<key>, jsonl
    options         TEXT NOT NULL,      -- JSON: batch size, concurrency, allow_remote, keys
    state           TEXT NOT NULL,      -- running, interrupted, completed, completed_with_failures, failed
    items_committed INTEGER NOT NULL DEFAULT 0,  -- items [0, n) are written or dead-lettered
    byte_offset     INTEGER NOT NULL DEFAULT 0,  -- where reading continues after item n-1
    items_written   INTEGER NOT NULL DEFAULT 0,
    error           TEXT,               -- why the run stopped, when it did not complete
    prefix_hash     TEXT,               -- 'sha256:<hex>' of bytes [0, byte_offset) at a clean stop
    started_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
);

CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES runs(id),
    item_index    INTEGER NOT NULL,
    item          TEXT NOT NULL,        -- the item as DynamoDB JSON, as it was (or would be) sent
    error_code    TEXT NOT NULL,
    error_message TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    retryable     INTEGER NOT NULL,     -- 0: the item itself is at fault; retrying cannot help
    status        TEXT NOT NULL DEFAULT 'pending',  -- pending, written
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE INDEX dead_letters_by_run ON dead_letters (run_id, status, item_index);
