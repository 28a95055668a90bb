-- What `verify` adds to a verification since `--sample` and `--repair`: the share of the
-- keys checked (NULL: all of them), the items a repair wrote again (NULL: no repair asked
-- for) and how many of those still differed when checked again.
ALTER TABLE verifications ADD COLUMN sample REAL;
ALTER TABLE verifications ADD COLUMN repaired INTEGER;
ALTER TABLE verifications ADD COLUMN unrepaired INTEGER;
