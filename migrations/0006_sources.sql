-- Where a run's dump is read from, besides a local file: 'stream' (standard input, a FIFO,
-- a process substitution: read once) or 's3' (an object, recorded by its s3:// URL, whose
-- file_hash is 's3:etag=...;version=...'). NULL for a local file.
ALTER TABLE runs ADD COLUMN source TEXT;
-- For a stream: 'sha256:<hex>' of its (decompressed) text before byte_offset, written with
-- each checkpoint. `resume --from` reads that much of the stream again and compares, since
-- a stream's whole hash is known only at its end.
ALTER TABLE runs ADD COLUMN checkpoint_hash TEXT;
