-- Entries are never edited. They are deleted only by retention pruning, which first moves
-- the chain's anchor past them; any other delete is refused. Chains only move forward.
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_deletes_only_pruned BEFORE DELETE ON audit_log
WHEN OLD.seq > COALESCE(
    (SELECT anchor_seq FROM audit_chains WHERE chain = COALESCE(OLD.org_id, '')), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log entries are removed only by retention pruning');
END;

CREATE TRIGGER audit_chains_move_forward BEFORE UPDATE ON audit_chains
WHEN NEW.head_seq < OLD.head_seq OR NEW.anchor_seq < OLD.anchor_seq
BEGIN
    SELECT RAISE(ABORT, 'audit chains only move forward');
END;
