//! The event catalog (SPEC §7): every event type a webhook can subscribe to, with a
//! one-sentence description, an example `data` payload and who emits it. Served by
//! `GET /v1/webhooks/events`, and the vocabulary of webhook event filters.
//!
//! The catalog cannot drift from the code: a unit test reads `src/` and checks that every
//! type marked [`EmittedBy::Now`] is named by code that records events, and that every
//! event type the code records (`journal.event("...")`, `events::record(_, "...")`) is in
//! the catalog and marked `Now`. Types whose feature does not exist yet are listed (so
//! subscriptions to them can be made today) and marked [`EmittedBy::Later`]; whoever
//! builds the feature flips the marker, and the test insists on it.
//!
//! Examples show the fields the emitting code sends today, in camelCase; ids are UUIDv7
//! strings and timestamps RFC 3339 UTC, as everywhere in the API.

use serde_json::{Value, json};

/// One event type.
#[derive(Debug, Clone, Copy)]
pub struct EventKind {
    /// The type, `<resource>.<what happened>` (or `ping`).
    pub name: &'static str,
    /// One sentence: when the event is emitted.
    pub description: &'static str,
    /// An example `data` payload (a JSON object), built on demand.
    pub example: fn() -> Value,
    /// Whether sealbox emits it today.
    pub emitted_by: EmittedBy,
}

impl EventKind {
    /// The example `data` payload.
    pub fn example(&self) -> Value {
        (self.example)()
    }
}

/// Who emits an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmittedBy {
    /// Code in sealbox emits it today.
    Now,
    /// The feature that will emit it is not built yet (named here, for example
    /// `"transfers (issue 7)"`). Subscribing to it is allowed; nothing is delivered yet.
    Later(&'static str),
}

/// The filter that matches every event type.
pub const WILDCARD: &str = "*";

const TRANSFERS: EmittedBy = EmittedBy::Now;
const WEBHOOKS: EmittedBy = EmittedBy::Now;
const MESSAGES: EmittedBy = EmittedBy::Now;
const BILLING: EmittedBy = EmittedBy::Now;
const ACCOUNT_DISABLING: EmittedBy =
    EmittedBy::Later("disabling user accounts (no endpoint does it yet)");
const QUOTAS: EmittedBy = EmittedBy::Later(
    "quota events (a refused upload rolls back its transaction; the event needs its own)",
);
use EmittedBy::Now;

// Example ids, fixed so the catalog is stable; each is a UUIDv7 as the API hands out.
const ORG: &str = "0193a1f0-5c2e-7b3a-9d41-2f6e8c0b1a27";
const USER: &str = "0193a1f0-6d14-7e2b-8c35-41a9f7d2e603";
const OTHER_USER: &str = "0193a1f2-0b7c-7a1d-b2e4-9c58d3f61e0a";
const SESSION: &str = "0193a1f3-2e8d-7c4f-a1b6-5d07e9c3f842";
const FILE: &str = "0193a1f4-7a3b-7d92-8e1c-c64b20f5d917";
const KV: &str = "0193a1f5-1c6e-7f08-9a3d-e7b2c45a0d61";
const SHARE: &str = "0193a1f6-3f2a-7b5c-8d97-0a1e6c4b2f38";
const API_KEY: &str = "0193a1f7-8b4d-7e61-a2c9-3f5d18e7b04c";
const NEW_API_KEY: &str = "0193a2d4-0e9f-7a38-b6c1-7d42a9e05f13";
const WEBHOOK: &str = "0193a1f8-4a7c-7c2e-9b1d-6e30f8a5c297";
const INVITE: &str = "0193a1f9-9d3e-7a4b-8f62-1c7e05b9d3a8";
const TRANSFER: &str = "0193a1fa-2b8f-7d1c-a4e3-8f61c0d7b259";
const DEVICE: &str = "0193a1fb-6e1a-7f3d-9c58-2b94e7a0c6d1";
const CHAT: &str = "0193a1fc-0f4b-7b6e-8a2d-5e17c3f9b840";
const MESSAGE: &str = "0193a1fd-3c9a-7e0f-b7d4-9a28e6c1f375";
const CHECKOUT: &str = "0193a1fe-4d2b-7c8e-9f13-6a07b5e2c914";
const INVOICE: &str = "0193a1ff-5e3c-7d9f-8a24-7b18c6f3da25";
const CONVERSION: &str = "0193a200-6f4d-7ea0-9b35-8c29d7e4fb36";
const OTHER_FILE: &str = "0193a201-7a5e-7fb1-8c46-9d3ae8f50c47";
const AT: &str = "2026-11-24T18:30:00.000Z";
const LATER: &str = "2026-12-01T18:30:00.000Z";

static CATALOG: &[EventKind] = &[
    // Transfers (issue 7).
    EventKind {
        name: "transfer.created",
        description: "A transfer was created and is waiting for its files.",
        example: || {
            json!({"transferId": TRANSFER, "name": "Q3 contracts", "senderUserId": USER,
                   "recipients": ["legal@example.com"], "e2e": true, "expiresAt": LATER,
                   "maxDownloads": 5})
        },
        emitted_by: TRANSFERS,
    },
    EventKind {
        name: "transfer.ready",
        description: "Every file of a transfer is uploaded; its links now work.",
        example: || {
            json!({"transferId": TRANSFER, "senderUserId": USER, "fileCount": 3,
                   "totalSize": 48_234_112, "expiresAt": LATER})
        },
        emitted_by: TRANSFERS,
    },
    EventKind {
        name: "transfer.downloaded",
        description: "A recipient downloaded a file of a transfer (counted once per download).",
        example: || {
            json!({"transferId": TRANSFER, "fileId": FILE, "downloadCount": 1,
                   "maxDownloads": 5, "ip": "203.0.113.7"})
        },
        emitted_by: TRANSFERS,
    },
    EventKind {
        name: "transfer.expired",
        description: "A transfer reached its expiry; its bytes were deleted.",
        example: || json!({"transferId": TRANSFER, "senderUserId": USER, "expiredAt": LATER}),
        emitted_by: TRANSFERS,
    },
    EventKind {
        name: "transfer.revoked",
        description: "The sender revoked a transfer; its bytes were deleted and its links answer 410.",
        example: || json!({"transferId": TRANSFER, "senderUserId": USER, "revokedAt": AT}),
        emitted_by: TRANSFERS,
    },
    EventKind {
        name: "transfer.download_limit_reached",
        description: "A transfer was downloaded as many times as its download limit allows.",
        example: || json!({"transferId": TRANSFER, "senderUserId": USER, "maxDownloads": 5}),
        emitted_by: TRANSFERS,
    },
    // Files.
    EventKind {
        name: "file.uploaded",
        description: "An upload was finalized: the file is stored, encrypted, and can be downloaded.",
        example: || {
            json!({"fileId": FILE, "ownerUserId": USER, "size": 1_048_576,
                   "contentType": "application/pdf"})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "file.downloaded",
        description: "A file was downloaded through a download link (a request from the first byte; range requests continuing it are not counted again).",
        example: || json!({"fileId": FILE, "ownerUserId": USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "file.deleted",
        description: "A file was deleted, with its stored bytes.",
        example: || json!({"fileId": FILE, "ownerUserId": USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "file.shared",
        description: "A file's owner shared it, read-only, with a colleague.",
        example: || {
            json!({"shareId": SHARE, "fileId": FILE, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER, "expiresUtc": LATER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "file.share_revoked",
        description: "A file's owner revoked a share.",
        example: || {
            json!({"shareId": SHARE, "fileId": FILE, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "file.share_accessed",
        description: "The recipient of a file share opened the shared file.",
        example: || {
            json!({"shareId": SHARE, "fileId": FILE, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "file.share_removed",
        description: "The recipient of a file share removed it from their list.",
        example: || {
            json!({"shareId": SHARE, "fileId": FILE, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER})
        },
        emitted_by: Now,
    },
    // Conversions.
    EventKind {
        name: "conversion.created",
        description: "A conversion of a file was queued (one event per item of a bulk request).",
        example: || {
            json!({"conversionId": CONVERSION, "ownerUserId": USER, "fileId": FILE,
                   "from": "png", "to": "jpeg", "status": "queued"})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "conversion.succeeded",
        description: "A conversion finished: its result is a new file of the owner.",
        example: || {
            json!({"conversionId": CONVERSION, "ownerUserId": USER, "fileId": FILE,
                   "from": "png", "to": "jpeg", "status": "succeeded",
                   "resultFileId": OTHER_FILE})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "conversion.failed",
        description: "A conversion failed (unreadable input, a limit, a result that could not be stored, or interrupted too often); `error` says why.",
        example: || {
            json!({"conversionId": CONVERSION, "ownerUserId": USER, "fileId": FILE,
                   "from": "png", "to": "jpeg", "status": "failed",
                   "error": "the image declares 30000x30000 pixels (900000000); this server converts at most 40000000 pixels"})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "conversion.cancelled",
        description: "The owner cancelled a queued or running conversion.",
        example: || {
            json!({"conversionId": CONVERSION, "ownerUserId": USER, "fileId": FILE,
                   "from": "png", "to": "jpeg", "status": "cancelled"})
        },
        emitted_by: Now,
    },
    // KV secrets.
    EventKind {
        name: "kv.created",
        description: "A KV secret was stored under a new name (version 1).",
        example: || json!({"id": KV, "name": "prod/db-password", "version": 1, "ownerUserId": USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "kv.updated",
        description: "A KV secret got a new value (its version grew by one).",
        example: || json!({"id": KV, "name": "prod/db-password", "version": 2, "ownerUserId": USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "kv.deleted",
        description: "A KV secret was deleted, with its shares.",
        example: || json!({"id": KV, "name": "prod/db-password", "ownerUserId": USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "kv.shared",
        description: "A KV secret's owner shared it, read-only, with a colleague.",
        example: || {
            json!({"shareId": SHARE, "kvId": KV, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER, "expiresUtc": LATER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "kv.share_revoked",
        description: "A KV secret's owner revoked a share.",
        example: || {
            json!({"shareId": SHARE, "kvId": KV, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "kv.share_accessed",
        description: "The recipient of a KV share read the shared secret.",
        example: || {
            json!({"shareId": SHARE, "kvId": KV, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "kv.share_removed",
        description: "The recipient of a KV share removed it from their list.",
        example: || {
            json!({"shareId": SHARE, "kvId": KV, "ownerUserId": USER,
                   "recipientUserId": OTHER_USER})
        },
        emitted_by: Now,
    },
    // API keys.
    EventKind {
        name: "api_key.created",
        description: "An API key was created (its value is never part of an event).",
        example: || {
            json!({"apiKeyId": API_KEY, "name": "CI uploads",
                   "scopes": ["transfers:write", "files:read"], "userId": USER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "api_key.updated",
        description: "An API key's name, scopes, IP allowlist or use limit changed.",
        example: || {
            json!({"apiKeyId": API_KEY, "name": "CI uploads",
                   "scopes": ["transfers:write", "files:read", "files:write"]})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "api_key.rotated",
        description: "An API key was rotated: a new key replaces it, and the old one works until the grace period ends.",
        example: || {
            json!({"apiKeyId": API_KEY, "newApiKeyId": NEW_API_KEY,
                   "oldKeyValidUntil": "2026-11-25T18:30:00.000Z"})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "api_key.revoked",
        description: "An API key was revoked; it stopped working at once. `reason` is present \
                      when nobody revoked it directly: `member_removed` when its owner left \
                      the organization.",
        example: || {
            json!({"apiKeyId": API_KEY, "name": "CI uploads", "userId": USER,
                   "reason": "member_removed"})
        },
        emitted_by: Now,
    },
    // Webhooks (issue 8).
    EventKind {
        name: "webhook.created",
        description: "A webhook was created.",
        example: || {
            json!({"webhookId": WEBHOOK, "origin": "https://hooks.example.com",
                   "events": ["file.*", "transfer.downloaded"], "enabled": true})
        },
        emitted_by: WEBHOOKS,
    },
    EventKind {
        name: "webhook.updated",
        description: "A webhook's URL, description, event filters, retry policy or enabled flag changed.",
        example: || json!({"webhookId": WEBHOOK, "changed": ["events", "enabled"]}),
        emitted_by: WEBHOOKS,
    },
    EventKind {
        name: "webhook.deleted",
        description: "A webhook was deleted; its pending deliveries were dropped.",
        example: || json!({"webhookId": WEBHOOK}),
        emitted_by: WEBHOOKS,
    },
    EventKind {
        name: "webhook.secret_rotated",
        description: "A webhook's signing secret was rotated; both secrets sign deliveries until the grace window ends.",
        example: || json!({"webhookId": WEBHOOK, "previousSecretValidUntil": "2026-11-25T18:30:00.000Z"}),
        emitted_by: WEBHOOKS,
    },
    EventKind {
        name: "webhook.disabled",
        description: "A webhook was disabled by sealbox: its endpoint answered 410, or too many deliveries failed in a row.",
        example: || {
            json!({"webhookId": WEBHOOK, "reason": "consecutive_failures",
                   "consecutiveFailures": 50})
        },
        emitted_by: WEBHOOKS,
    },
    // Users.
    EventKind {
        name: "user.created",
        description: "An account was created (at setup, by registration or by an administrator).",
        example: || json!({"userId": USER, "email": "ada@example.com"}),
        emitted_by: Now,
    },
    EventKind {
        name: "user.updated",
        description: "A user changed their profile; `changed` lists the fields.",
        example: || json!({"userId": USER, "changed": ["displayName", "avatarUrl"]}),
        emitted_by: Now,
    },
    EventKind {
        name: "user.disabled",
        description: "An account was disabled: its sessions and API keys stopped working.",
        example: || json!({"userId": USER, "email": "ada@example.com"}),
        emitted_by: ACCOUNT_DISABLING,
    },
    EventKind {
        name: "user.password_changed",
        description: "A user's password changed; `reason` is `password_reset` when a reset link was used.",
        example: || json!({"userId": USER, "reason": "password_reset"}),
        emitted_by: Now,
    },
    EventKind {
        name: "user.login_failed",
        description: "A login with a known email address failed.",
        example: || json!({"userId": USER, "ip": "203.0.113.7"}),
        emitted_by: Now,
    },
    // Sessions and tokens.
    EventKind {
        name: "auth.refresh_token_reused",
        description: "A refresh token was presented twice, so its session was revoked (a sign the token was stolen).",
        example: || json!({"sessionId": SESSION, "userId": USER, "ip": "203.0.113.7"}),
        emitted_by: Now,
    },
    EventKind {
        name: "session.created",
        description: "A user logged in (or registered), starting a session.",
        example: || json!({"sessionId": SESSION, "userId": USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "session.revoked",
        description: "A session ended early; `reason` says why (logout, revoked, password_changed, password_reset, refresh_token_reused).",
        example: || json!({"sessionId": SESSION, "userId": USER, "reason": "logout"}),
        emitted_by: Now,
    },
    // Organizations and membership.
    EventKind {
        name: "organization.created",
        description: "An organization was created.",
        example: || json!({"organizationId": ORG, "name": "Acme", "slug": "acme"}),
        emitted_by: Now,
    },
    EventKind {
        name: "organization.updated",
        description: "An organization's name, slug or settings changed (`changed`), or it was reactivated after a suspension (`status`).",
        example: || json!({"organizationId": ORG, "changed": ["name", "settings"]}),
        emitted_by: Now,
    },
    EventKind {
        name: "organization.suspended",
        description: "An organization was suspended: every call on its behalf is refused until it is reactivated.",
        example: || json!({"organizationId": ORG, "status": "suspended"}),
        emitted_by: Now,
    },
    EventKind {
        name: "member.added",
        description: "A user joined an organization with a role.",
        example: || json!({"organizationId": ORG, "userId": OTHER_USER, "role": "member"}),
        emitted_by: Now,
    },
    EventKind {
        name: "member.role_changed",
        description: "A member's role in an organization changed.",
        example: || json!({"organizationId": ORG, "userId": OTHER_USER, "from": "member", "to": "admin"}),
        emitted_by: Now,
    },
    EventKind {
        name: "member.removed",
        description: "A member was removed from an organization.",
        example: || json!({"organizationId": ORG, "userId": OTHER_USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "invite.created",
        description: "Someone was invited to join an organization.",
        example: || {
            json!({"organizationId": ORG, "inviteId": INVITE, "email": "grace@example.com",
                   "role": "member", "expiresAt": LATER})
        },
        emitted_by: Now,
    },
    EventKind {
        name: "invite.accepted",
        description: "An invite was accepted; the invited user is now a member.",
        example: || json!({"organizationId": ORG, "inviteId": INVITE, "userId": OTHER_USER}),
        emitted_by: Now,
    },
    // Keys and recovery.
    EventKind {
        name: "keys.generated",
        description: "A user generated their vault key pair.",
        example: || json!({"userId": USER, "fingerprint": "3f9a61c2e07b4d58a1c6e29f0b7d34e8"}),
        emitted_by: Now,
    },
    EventKind {
        name: "keys.rekeyed",
        description: "A user's vault key pair was sealed under a new user secret (`fromRecovery` after a restore).",
        example: || json!({"userId": USER, "fromRecovery": false}),
        emitted_by: Now,
    },
    EventKind {
        name: "recovery.trustee_added",
        description: "A user gave a trustee a recovery share of their vault key.",
        example: || json!({"ownerUserId": USER, "trusteeUserId": OTHER_USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "recovery.trustee_removed",
        description: "A user withdrew a trustee's recovery share.",
        example: || json!({"ownerUserId": USER, "trusteeUserId": OTHER_USER}),
        emitted_by: Now,
    },
    EventKind {
        name: "recovery.restored",
        description: "A user's vault key was restored through a trustee; a rekey is required next.",
        example: || json!({"userId": USER}),
        emitted_by: Now,
    },
    // Devices and messages.
    EventKind {
        name: "device.registered",
        description: "A user registered a device and its public key bundle.",
        example: || json!({"deviceId": DEVICE, "userId": USER}),
        emitted_by: MESSAGES,
    },
    EventKind {
        name: "device.removed",
        description: "A device was removed; messages are no longer sealed to it.",
        example: || json!({"deviceId": DEVICE, "userId": USER}),
        emitted_by: MESSAGES,
    },
    EventKind {
        name: "message.created",
        description: "A message was posted in a chat (the event never carries its content).",
        example: || {
            json!({"messageId": MESSAGE, "chatId": CHAT, "senderUserId": USER,
                   "senderDeviceId": DEVICE})
        },
        emitted_by: MESSAGES,
    },
    EventKind {
        name: "message.updated",
        description: "A message was edited.",
        example: || json!({"messageId": MESSAGE, "chatId": CHAT, "senderUserId": USER}),
        emitted_by: MESSAGES,
    },
    EventKind {
        name: "message.deleted",
        description: "A message was deleted, by its sender or by its self-destruct time.",
        example: || json!({"messageId": MESSAGE, "chatId": CHAT, "reason": "expired"}),
        emitted_by: MESSAGES,
    },
    EventKind {
        name: "chat.created",
        description: "A one-to-one or group chat was created.",
        example: || json!({"chatId": CHAT, "type": "group", "memberIds": [USER, OTHER_USER]}),
        emitted_by: MESSAGES,
    },
    EventKind {
        name: "chat.member_added",
        description: "A participant was added to a group chat.",
        example: || json!({"chatId": CHAT, "userId": OTHER_USER, "addedBy": USER}),
        emitted_by: MESSAGES,
    },
    EventKind {
        name: "chat.member_removed",
        description: "A participant left a group chat or was removed by its owner.",
        example: || json!({"chatId": CHAT, "userId": OTHER_USER, "removedBy": USER, "reason": "removed"}),
        emitted_by: MESSAGES,
    },
    // Payment processors (docs/billing.md, "Payment processors"), from their verified
    // inbound webhooks.
    EventKind {
        name: "subscription.created",
        description: "A payment processor confirmed a checkout; the organization moved to the plan it bought.",
        example: || {
            json!({"organizationId": ORG, "plan": "team", "provider": "stripe",
                   "status": "active", "checkoutId": CHECKOUT})
        },
        emitted_by: BILLING,
    },
    EventKind {
        name: "subscription.updated",
        description: "A payment processor reported a change to the organization's subscription (plan or status).",
        example: || {
            json!({"organizationId": ORG, "plan": "business", "provider": "stripe",
                   "status": "active"})
        },
        emitted_by: BILLING,
    },
    EventKind {
        name: "subscription.cancelled",
        description: "A payment processor ended the organization's subscription; it is back on the default plan.",
        example: || {
            json!({"organizationId": ORG, "plan": "team", "provider": "paystack",
                   "status": "cancelled", "nowOn": "free"})
        },
        emitted_by: BILLING,
    },
    EventKind {
        name: "invoice.paid",
        description: "A payment processor reported an invoice or charge of the organization as paid.",
        example: || {
            json!({"organizationId": ORG, "invoiceId": INVOICE, "provider": "stripe",
                   "providerInvoiceId": "in_1QxYz2AbCdEfGhIj", "plan": "team",
                   "amount": 4900, "currency": "USD", "status": "paid"})
        },
        emitted_by: BILLING,
    },
    EventKind {
        name: "invoice.payment_failed",
        description: "A payment processor reported that paying an invoice or charge of the organization failed.",
        example: || {
            json!({"organizationId": ORG, "invoiceId": INVOICE, "provider": "flutterwave",
                   "providerInvoiceId": "4975363", "plan": "team", "amount": 500000,
                   "currency": "NGN", "status": "failed"})
        },
        emitted_by: BILLING,
    },
    // Quotas.
    EventKind {
        name: "quota.exceeded",
        description: "An organization reached its storage quota; uploads beyond it are refused.",
        example: || {
            json!({"organizationId": ORG, "quota": "storage", "limitBytes": 10_737_418_240u64,
                   "usedBytes": 10_701_234_176u64})
        },
        emitted_by: QUOTAS,
    },
    // Test deliveries.
    EventKind {
        name: "ping",
        description: "A test delivery sent by POST /v1/webhooks/{id}/test, to check that an endpoint receives and verifies deliveries.",
        example: || json!({"webhookId": WEBHOOK, "message": "Test delivery from sealbox"}),
        emitted_by: EmittedBy::Now,
    },
];

/// Every event type, grouped by resource, in a stable order.
pub fn catalog() -> &'static [EventKind] {
    CATALOG
}

/// The catalog entry named `name` exactly.
pub fn find(name: &str) -> Option<&'static EventKind> {
    CATALOG.iter().find(|kind| kind.name == name)
}

/// Checks one webhook event filter: `*` (every event), `<resource>.*` where some catalog
/// type starts with `<resource>.` (`file.*`), or an exact catalog type. The error says
/// what is wrong, for a 422 `details` entry.
pub fn validate_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("an event filter cannot be empty; use `*` for every event".into());
    }
    if filter == WILDCARD || find(filter).is_some() {
        return Ok(());
    }
    if let Some(prefix) = filter.strip_suffix(".*") {
        if prefix.is_empty() || prefix.contains('*') || prefix.contains('.') {
            return Err(format!(
                "`{filter}` is not a filter: use `*`, a resource such as `file.*`, or an event type"
            ));
        }
        if CATALOG.iter().any(|kind| has_prefix(kind.name, prefix)) {
            return Ok(());
        }
        return Err(format!(
            "no event type starts with `{prefix}.`; GET /v1/webhooks/events lists them"
        ));
    }
    if filter.contains('*') {
        return Err(format!(
            "`{filter}` is not a filter: `*` stands alone or after a resource, as in `file.*`"
        ));
    }
    Err(format!(
        "`{filter}` is not an event type; GET /v1/webhooks/events lists them"
    ))
}

/// Whether `event_type` is matched by `filter` (assumed valid).
pub fn filter_matches(filter: &str, event_type: &str) -> bool {
    if filter == WILDCARD {
        return true;
    }
    match filter.strip_suffix(".*") {
        Some(prefix) => has_prefix(event_type, prefix),
        None => filter == event_type,
    }
}

/// Whether any of a webhook's filters matches `event_type`.
pub fn matches_any(filters: &[String], event_type: &str) -> bool {
    filters
        .iter()
        .any(|filter| filter_matches(filter, event_type))
}

/// `name` is `<prefix>.<something>`.
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::*;

    /// The SPEC §7 list, spelled out once more so that dropping a type from the catalog
    /// fails here.
    const SPEC_TYPES: &[&str] = &[
        "transfer.created",
        "transfer.ready",
        "transfer.downloaded",
        "transfer.expired",
        "transfer.revoked",
        "transfer.download_limit_reached",
        "file.uploaded",
        "file.downloaded",
        "file.deleted",
        "file.shared",
        "file.share_revoked",
        "file.share_accessed",
        "file.share_removed",
        "kv.created",
        "kv.updated",
        "kv.deleted",
        "kv.shared",
        "kv.share_revoked",
        "kv.share_accessed",
        "kv.share_removed",
        "api_key.created",
        "api_key.updated",
        "api_key.rotated",
        "api_key.revoked",
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
        "webhook.secret_rotated",
        "webhook.disabled",
        "user.created",
        "user.updated",
        "user.disabled",
        "user.password_changed",
        "user.login_failed",
        "auth.refresh_token_reused",
        "session.created",
        "session.revoked",
        "organization.created",
        "organization.updated",
        "organization.suspended",
        "member.added",
        "member.role_changed",
        "member.removed",
        "invite.created",
        "invite.accepted",
        "keys.generated",
        "keys.rekeyed",
        "recovery.trustee_added",
        "recovery.trustee_removed",
        "recovery.restored",
        "device.registered",
        "device.removed",
        "message.created",
        "message.updated",
        "message.deleted",
        "quota.exceeded",
        "ping",
    ];

    #[test]
    fn the_catalog_holds_every_spec_type_once_with_a_description_and_an_object_example() {
        assert!(CATALOG.len() >= 43, "SPEC §7 asks for at least 43 types");
        let mut seen = BTreeSet::new();
        for kind in CATALOG {
            assert!(seen.insert(kind.name), "{} is listed twice", kind.name);
            assert!(
                kind.name == "ping"
                    || kind
                        .name
                        .split_once('.')
                        .is_some_and(|(r, w)| !r.is_empty() && !w.is_empty() && !w.contains('.')),
                "{} is not <resource>.<what happened>",
                kind.name
            );
            assert!(
                kind.description.ends_with('.') && kind.description.len() > 10,
                "{}: the description is one sentence",
                kind.name
            );
            let example = kind.example();
            let object = example
                .as_object()
                .unwrap_or_else(|| panic!("{}: the example is not a JSON object", kind.name));
            assert!(!object.is_empty(), "{}: empty example", kind.name);
            for key in object.keys() {
                assert!(
                    !key.contains('_')
                        && key.chars().next().is_some_and(|c| c.is_ascii_lowercase()),
                    "{}: `{key}` is not camelCase",
                    kind.name
                );
            }
            if let EmittedBy::Later(feature) = kind.emitted_by {
                assert!(!feature.is_empty(), "{}", kind.name);
            }
        }
        for name in SPEC_TYPES {
            assert!(find(name).is_some(), "SPEC §7 lists {name}");
        }
    }

    #[test]
    fn filters_are_a_wildcard_a_resource_or_a_type() {
        for ok in [
            "*",
            "file.*",
            "transfer.*",
            "kv.share_accessed",
            "ping",
            "api_key.*",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("", "cannot be empty"),
            ("files.*", "no event type starts with `files.`"),
            ("file.upload", "`file.upload` is not an event type"),
            ("file*", "`*` stands alone"),
            ("*.uploaded", "`*` stands alone"),
            ("**", "`*` stands alone"),
            (".*", "is not a filter"),
            ("*.*", "is not a filter"),
            ("file.share.*", "is not a filter"),
            ("File.uploaded", "is not an event type"),
            ("ping.*", "no event type starts with `ping.`"),
        ] {
            let err = validate_filter(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn filters_match_what_they_say() {
        assert!(filter_matches("*", "file.uploaded"));
        assert!(filter_matches("*", "ping"));
        assert!(filter_matches("file.*", "file.uploaded"));
        assert!(filter_matches("file.*", "file.share_revoked"));
        assert!(!filter_matches("file.*", "kv.created"));
        assert!(!filter_matches("file.*", "filex.uploaded"));
        assert!(!filter_matches("file.*", "file."));
        assert!(filter_matches("kv.created", "kv.created"));
        assert!(!filter_matches("kv.created", "kv.updated"));
        let filters = vec!["transfer.*".to_owned(), "kv.deleted".to_owned()];
        assert!(matches_any(&filters, "transfer.ready"));
        assert!(matches_any(&filters, "kv.deleted"));
        assert!(!matches_any(&filters, "kv.created"));
        assert!(!matches_any(&[], "kv.created"));
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every `.rs` file under `src/` except this one, with its text.
    fn sources() -> BTreeMap<PathBuf, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        files
            .into_iter()
            .filter(|path| !path.ends_with("service/event_catalog.rs"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).unwrap();
                (path, text)
            })
            .collect()
    }

    /// The string literal at the start of `text` (after whitespace), if there is one.
    fn leading_literal(text: &str) -> Option<&str> {
        let rest = text.trim_start().strip_prefix('"')?;
        rest.split_once('"').map(|(literal, _)| literal)
    }

    /// The string literals of the argument at the start of `text`: a literal itself, or a
    /// variable bound by the last `let <name> = ...;` before `at` (as in
    /// `let action = if created { "kv.created" } else { "kv.updated" };`).
    fn argument_literals<'a>(source: &'a str, at: usize, text: &'a str) -> Vec<&'a str> {
        if let Some(literal) = leading_literal(text) {
            return vec![literal];
        }
        let name: String = text
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            return Vec::new();
        }
        let Some(binding) = source[..at].rfind(&format!("let {name} =")) else {
            return Vec::new();
        };
        let statement = &source[binding..at];
        let statement = &statement[..statement.find(';').unwrap_or(statement.len())];
        statement.split('"').skip(1).step_by(2).collect()
    }

    /// Event types recorded by name: `.event("x", ...)` (the `Journal`) and
    /// `events::record(conn, "x", ...)` (the outbox itself), the name given as a literal or
    /// through a `let` binding of literals.
    fn recorded_literals(text: &str) -> Vec<&str> {
        let mut found = Vec::new();
        for (at, _) in text.match_indices(".event(") {
            found.extend(argument_literals(text, at, &text[at + ".event(".len()..]));
        }
        for (at, _) in text.match_indices("events::record(") {
            let args = &text[at + "events::record(".len()..];
            if let Some((_, after_conn)) = args.split_once(',') {
                found.extend(argument_literals(text, at, after_conn));
            }
        }
        found
    }

    fn records_events(text: &str) -> bool {
        text.contains(".event(") || text.contains("events::record(")
    }

    #[test]
    fn every_type_marked_emitted_is_named_by_code_that_records_events() {
        let sources = sources();
        for kind in CATALOG.iter().filter(|k| k.emitted_by == EmittedBy::Now) {
            let literal = format!("\"{}\"", kind.name);
            assert!(
                sources
                    .values()
                    .any(|text| records_events(text) && text.contains(&literal)),
                "{} is marked as emitted, but no code that records events names it; \
                 mark it EmittedBy::Later or emit it",
                kind.name
            );
        }
    }

    #[test]
    fn every_event_the_code_records_is_in_the_catalog_and_marked_emitted() {
        let mut recorded = BTreeSet::new();
        for (path, text) in sources() {
            for name in recorded_literals(&text) {
                recorded.insert(name.to_owned());
                match find(name) {
                    None => panic!(
                        "{} records `{name}`, which the event catalog does not list",
                        path.display()
                    ),
                    Some(kind) => assert_eq!(
                        kind.emitted_by,
                        EmittedBy::Now,
                        "{} records `{name}`; mark it EmittedBy::Now in the catalog",
                        path.display()
                    ),
                }
            }
        }
        // Guard the scanner itself: today's services record 38 distinct types, some through
        // a variable (`kv.created`, `organization.suspended`).
        assert!(recorded.len() >= 30, "found only {recorded:?}");
        for through_a_variable in ["kv.created", "kv.updated", "organization.suspended"] {
            assert!(
                recorded.contains(through_a_variable),
                "{through_a_variable}"
            );
        }
    }
}
