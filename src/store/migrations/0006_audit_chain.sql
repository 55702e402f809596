-- The BLAKE3 hash chain over the audit log (SPEC §8): one chain per organization and one
-- for entries of no organization. Rows written before this migration are chained, in
-- order, by the code that runs right after this script; 0007 then restores the guards.
DROP TRIGGER audit_log_is_append_only_update;
DROP TRIGGER audit_log_is_append_only_delete;

-- Lowercase hex of the previous entry's hash and of this entry's.
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN hash TEXT NOT NULL DEFAULT '';

-- Where each chain stands. `chain` is the organization id, or '' for the instance chain.
-- The head catches removal of the newest entries; the anchor is the hash of the last
-- entry retention pruned (all zeros before any pruning), where verification starts.
CREATE TABLE audit_chains (
    chain        TEXT PRIMARY KEY,
    head_seq     INTEGER NOT NULL,
    head_hash    TEXT NOT NULL,
    anchor_seq   INTEGER NOT NULL DEFAULT 0,
    anchor_hash  TEXT NOT NULL
) STRICT;

CREATE INDEX audit_log_by_org_time ON audit_log (org_id, at);
