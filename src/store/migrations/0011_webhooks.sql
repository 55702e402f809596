-- Webhooks (SPEC §7): the endpoints an organization subscribes to events, the durable
-- delivery queue with one row per attempt, the fan-out cursor over the event outbox, and
-- in-app notifications (how an organization's admins learn that an endpoint was
-- disabled). Times the delivery worker computes with (`next_attempt_at`, `lease_until`,
-- the end of a secret's grace window) are integer unix milliseconds; times shown to
-- people are RFC 3339 text like everywhere else.

CREATE TABLE webhooks (
    id                          TEXT PRIMARY KEY,
    org_id                      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL DEFAULT '',
    enabled                     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    -- Why sealbox disabled the endpoint (410, too many failures); NULL when a person did.
    disabled_reason             TEXT,
    disabled_at                 TEXT,
    -- JSON array of event filters: exact types, `prefix.*`, or `*`.
    events                      TEXT NOT NULL,
    max_attempts                INTEGER NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 30),
    disable_after_failures      INTEGER NOT NULL DEFAULT 50
                                CHECK (disable_after_failures BETWEEN 1 AND 10000),
    consecutive_failures        INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    -- The signing secret (`whsec_...`) sealed by the master key, bound to the webhook id.
    secret_sealed               TEXT NOT NULL,
    -- After a rotation: the secret it replaced, still signing until the grace window ends.
    previous_secret_sealed      TEXT,
    previous_secret_expires_at  INTEGER,
    created_by                  TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    CHECK ((previous_secret_sealed IS NULL) = (previous_secret_expires_at IS NULL)),
    CHECK (enabled = 0 OR (disabled_reason IS NULL AND disabled_at IS NULL))
) STRICT;
CREATE INDEX webhooks_by_org ON webhooks (org_id, id);

-- One message to one webhook. `message_id` is the `webhook-id` header: the outbox event
-- id for events (a fresh id for tests), kept by every retry and replay. `body` holds the
-- exact bytes sent (`{"type","timestamp","data"}`), built once, so every attempt signs and
-- sends the same payload. A pending delivery is due at `next_attempt_at`; a worker that
-- takes it sets `lease_until`, and a lease that ran out (the process died mid-send)
-- makes it due again.
CREATE TABLE webhook_deliveries (
    id                    TEXT PRIMARY KEY,
    webhook_id            TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    org_id                TEXT NOT NULL,
    message_id            TEXT NOT NULL,
    event_type            TEXT NOT NULL,
    body                  TEXT NOT NULL,
    is_test               INTEGER NOT NULL DEFAULT 0 CHECK (is_test IN (0, 1)),
    original_delivery_id  TEXT REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    status                TEXT NOT NULL
                          CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts              INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at       INTEGER,
    lease_until           INTEGER,
    last_attempt_at       TEXT,
    last_status_code      INTEGER,
    last_error            TEXT,
    last_duration_ms      INTEGER,
    -- The first 4 KiB of the last response body.
    last_response_body    TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    completed_at          TEXT,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
    CHECK ((status = 'pending') = (completed_at IS NULL)),
    CHECK (status = 'pending' OR lease_until IS NULL)
) STRICT;
-- What the worker asks most: the pending deliveries due first. Finished deliveries, the
-- bulk of the table over time, are not in this index.
CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
-- What retention pruning asks: finished deliveries, oldest first.
CREATE INDEX webhook_deliveries_finished
    ON webhook_deliveries (completed_at) WHERE status != 'pending';
-- Backs the self-reference of replays (deleting a webhook deletes its deliveries).
CREATE INDEX webhook_deliveries_by_original ON webhook_deliveries (original_delivery_id);

-- Every attempt of a delivery, for `GET /v1/webhooks/{id}/deliveries/{deliveryId}`: the
-- delivery row keeps only the last one.
CREATE TABLE webhook_attempts (
    delivery_id    TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL CHECK (attempt >= 1),
    started_at     TEXT NOT NULL,
    status_code    INTEGER,
    duration_ms    INTEGER NOT NULL CHECK (duration_ms >= 0),
    response_body  TEXT,
    error          TEXT,
    PRIMARY KEY (delivery_id, attempt)
) STRICT;

-- How far fan-out has read the outbox: events up to `last_seq` have their delivery rows.
-- Starts at the newest event: events from before webhooks existed have no subscriber.
CREATE TABLE webhook_dispatch (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_seq   INTEGER NOT NULL CHECK (last_seq >= 0)
) STRICT;
INSERT INTO webhook_dispatch (singleton, last_seq)
VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM outbox_events));

-- In-app notifications of one user in one organization, newest first.
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- What it is about, such as `webhook.disabled`.
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    -- A JSON object with the ids a client needs to link to the subject.
    data        TEXT NOT NULL DEFAULT '{}',
    read_at     TEXT,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX notifications_by_user ON notifications (org_id, user_id, id);
CREATE INDEX notifications_unread
    ON notifications (org_id, user_id, id) WHERE read_at IS NULL;
