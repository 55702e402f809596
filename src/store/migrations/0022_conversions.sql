-- File conversions (docs/conversions.md): one row per conversion job, the durable queue
-- the conversion worker takes from. A job waits `queued`, is `running` while a worker
-- holds it, and ends `succeeded` (with the new file), `failed` (with why) or `cancelled`.

CREATE TABLE conversions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- No foreign key: deleting the source file does not delete its conversions (a queued
    -- one then fails, saying the file is gone).
    source_file_id TEXT NOT NULL,
    source_format TEXT NOT NULL,
    target_format TEXT NOT NULL,
    -- The options as JSON text, checked against the converter when the job was created.
    options TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error TEXT,
    result_file_id TEXT,
    -- The source file's DEK sealed by the master key while the job is unfinished, so the
    -- worker can open the file without the owner's secret (as `uploads.master_sealed_dek`
    -- does for uploads); set to NULL when the job ends.
    master_sealed_dek TEXT,
    -- Times a worker took the job; a job interrupted (crash, kill) that many times is
    -- failed instead of taken again.
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
);

-- A member's conversions, newest first (ids are UUIDv7).
CREATE INDEX conversions_by_owner ON conversions (org_id, owner_id, id);
-- The queue: unfinished jobs in order.
CREATE INDEX conversions_unfinished ON conversions (status, id)
    WHERE status IN ('queued', 'running');
