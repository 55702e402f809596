-- Payment processors (docs/billing.md, "Payment processors"): hosted checkouts started
-- here, the processor subscriptions and customers they led to, invoices as the processors
-- reported them, and every inbound webhook event applied (its id, so a redelivery or a
-- replay changes nothing twice).

-- A checkout started by POST /v1/subscriptions/{organizationId}/checkout. Its id is the
-- reference the processor echoes back (Stripe client_reference_id and metadata, Paystack
-- reference, Flutterwave tx_ref), which is how an event finds its organization.
CREATE TABLE billing_checkouts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    completed_at TEXT
);

CREATE INDEX billing_checkouts_by_org ON billing_checkouts (org_id, id);

-- What a processor calls an organization's subscription or customer (Stripe `sub_...`,
-- Paystack `SUB_...` and `CUS_...`, Flutterwave customer ids), learnt from a completed
-- checkout, so later subscription and invoice events find the organization.
CREATE TABLE billing_references (
    provider TEXT NOT NULL,
    reference TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    plan_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (provider, reference)
);

-- Invoices (and, for Paystack and Flutterwave, single charges) as the processor reported
-- them. `amount` in the currency's smallest unit.
CREATE TABLE billing_invoices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    provider_invoice_id TEXT NOT NULL,
    plan_id TEXT,
    status TEXT NOT NULL,
    amount INTEGER,
    currency TEXT,
    hosted_url TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (provider, provider_invoice_id)
);

CREATE INDEX billing_invoices_by_org ON billing_invoices (org_id, id);

-- Every inbound event applied, by the processor's event id: inserted in the transaction
-- that applies the event, so an event is applied once or not at all.
CREATE TABLE billing_webhook_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    org_id TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
);
