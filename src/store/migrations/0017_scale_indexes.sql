-- Indexes that keep a request's cost independent of how much the instance holds
-- (bench/scale.py, docs/performance.md). Each serves a query that otherwise walked rows
-- in proportion to an organization's or the instance's data.

-- The audit log's filters: a page of one action, actor or target is a seek to its newest
-- entries, not a walk down the organization's whole log until 50 match.
CREATE INDEX audit_log_by_org_action ON audit_log (org_id, action, seq);
CREATE INDEX audit_log_by_org_actor ON audit_log (org_id, actor_user_id, seq);
CREATE INDEX audit_log_by_org_target ON audit_log (org_id, target_id, seq);

-- A page of the organization's transfers in one status.
CREATE INDEX transfers_by_org_status ON transfers (org_id, status, id);

-- The quota check before every upload sums the organization's uploads in progress; it
-- scanned every upload of every organization.
CREATE INDEX uploads_by_org ON uploads (org_id, declared_size);

-- Start-up frees the idempotency claims a stopped process left running; it scanned every
-- stored key to find them.
CREATE INDEX idempotency_keys_running ON idempotency_keys (state) WHERE state = 'running';
