-- A run started with `--via s3://BUCKET/PREFIX/` stages its items to S3 and hands them to
-- DynamoDB's own bulk engine (ImportTable into a new table, StartBulkPutItems into an
-- existing one, with `max_wcu` and `tier` as asked: a re-attach asks with the same).
-- `staging` holds one row per
-- such run: where it stages, into how many objects (fixed when it starts, so that a
-- resumed run puts each key in the same object again), which operation it hands off to,
-- and what that operation last said of itself. `staged_objects` holds one row per object
-- once it is uploaded, with S3's ETag: a resumed staging skips those already there.
CREATE TABLE staging (
    run_id TEXT PRIMARY KEY,
    via TEXT NOT NULL,
    objects INTEGER NOT NULL,
    operation TEXT NOT NULL,
    max_wcu INTEGER,
    tier TEXT,
    compression TEXT NOT NULL DEFAULT 'gzip',
    arn TEXT,
    status TEXT,
    processed_items INTEGER,
    processed_bytes INTEGER,
    total_bytes INTEGER,
    imported_items INTEGER,
    error_count INTEGER,
    failure_code TEXT,
    failure_message TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE staged_objects (
    run_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    key TEXT NOT NULL,
    etag TEXT NOT NULL,
    items INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (run_id, number)
);
