-- SHA-256 of every 64 MiB block of the dump, as a JSON array: `resume` checks the blocks
-- on both cores at once instead of re-hashing the whole file on one.
ALTER TABLE runs ADD COLUMN block_hashes TEXT;
