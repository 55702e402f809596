-- Plans (docs/billing.md). The plans themselves are configuration ([[plans]]); the
-- database keeps which one each organization was assigned, and the daily counters the
-- plans' quotas are enforced with.

-- An organization's assigned plan. No row: the configured default plan. `ends_at` passed:
-- the default plan again (the row stays until the next assignment, for the record).
CREATE TABLE org_plans (
    org_id   TEXT PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    plan_id  TEXT NOT NULL,
    ends_at  TEXT,
    -- The user who assigned it (an instance admin through the API); NULL from the console
    -- (`sealbox admin set-plan`) or a payment processor's webhook, which `set_via` names.
    set_by   TEXT REFERENCES users (id) ON DELETE SET NULL,
    set_via  TEXT NOT NULL,
    set_at   TEXT NOT NULL
) STRICT;

-- Counters of the daily quotas: one row per subject (an organization or an API key),
-- counter and UTC day (YYYY-MM-DD). A row of a day gone by is never read again.
CREATE TABLE plan_usage (
    subject  TEXT NOT NULL,
    counter  TEXT NOT NULL,
    day      TEXT NOT NULL,
    n        INTEGER NOT NULL CHECK (n >= 0),
    PRIMARY KEY (subject, counter, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX plan_usage_by_day ON plan_usage (day);

-- An assignment moves the credential version (migration 0019), so the in-process plan
-- cache (service::plans) drops what it held for every organization at once, whichever
-- process or connection made the change (`sealbox admin set-plan`, the sqlite3 shell).
CREATE TRIGGER org_plans_insert_moves_credential_version AFTER INSERT ON org_plans
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER org_plans_update_moves_credential_version AFTER UPDATE ON org_plans
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER org_plans_delete_moves_credential_version AFTER DELETE ON org_plans
BEGIN UPDATE credential_version SET n = n + 1 WHERE id = 1; END;
