-- What `verify` found each time it read a run's table back: when, how (by key: 'get', or a
-- parallel scan: 'scan'), and the counts. `status` shows the last one. `extra` is NULL
-- unless the table's items the dump does not hold were counted; `read_units_estimated`
-- is 1 when DynamoDB did not say what it consumed. Removed with the run by `forget`.
CREATE TABLE verifications (
    id                   INTEGER PRIMARY KEY,
    run_id               TEXT NOT NULL REFERENCES runs(id),
    at                   TEXT NOT NULL,
    method               TEXT NOT NULL,
    items                INTEGER NOT NULL,
    identical            INTEGER NOT NULL,
    missing              INTEGER NOT NULL,
    different            INTEGER NOT NULL,
    extra                INTEGER,
    expected_missing     INTEGER NOT NULL,
    read_units           REAL NOT NULL,
    read_units_estimated INTEGER NOT NULL,
    seconds              REAL NOT NULL
);
CREATE INDEX verifications_by_run ON verifications (run_id, id);
