//! Payment processors' rows (migration 0021): checkouts started here, the processor
//! references (subscriptions, customers) that lead back to an organization, invoices, and
//! the inbound webhook events already applied. Every organization-owned row is read by
//! its organization; the lookups by a processor's reference are what an inbound event,
//! verified but not yet tied to any tenant, is resolved with.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use crate::ids::{OrgId, UserId};

/// A checkout started by `POST /v1/subscriptions/{organizationId}/checkout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The reference the processor echoes back (a UUIDv7).
    pub id: String,
    pub org_id: OrgId,
    pub provider: String,
    pub plan_id: String,
    pub created_by: Option<UserId>,
    pub created_at: String,
    pub completed_at: Option<String>,
}

pub fn insert_checkout(conn: &Connection, c: &Checkout) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO billing_checkouts (id, org_id, provider, plan_id, created_by, created_at,
                                        completed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        c.id,
        c.org_id,
        c.provider,
        c.plan_id,
        c.created_by,
        c.created_at,
        c.completed_at
    ])?;
    Ok(())
}

/// The checkout with this reference, started with `provider`.
pub fn checkout_by_reference(
    conn: &Connection,
    provider: &str,
    id: &str,
) -> Result<Option<Checkout>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, org_id, provider, plan_id, created_by, created_at, completed_at
             FROM billing_checkouts WHERE id = ?1 AND provider = ?2",
        )?
        .query_row(params![id, provider], |row| {
            Ok(Checkout {
                id: row.get(0)?,
                org_id: row.get(1)?,
                provider: row.get(2)?,
                plan_id: row.get(3)?,
                created_by: row.get(4)?,
                created_at: row.get(5)?,
                completed_at: row.get(6)?,
            })
        })
        .optional()?)
}

/// Marks a checkout completed (the first time only).
pub fn complete_checkout(conn: &Connection, id: &str, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE billing_checkouts SET completed_at = ?2 WHERE id = ?1 AND completed_at IS NULL",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// What a processor's reference (subscription, customer) leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub org_id: OrgId,
    pub plan_id: String,
}

/// Records (or moves) a processor reference to an organization and plan.
pub fn put_reference(
    conn: &Connection,
    provider: &str,
    reference: &str,
    org: OrgId,
    plan: &str,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO billing_references (provider, reference, org_id, plan_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (provider, reference) DO UPDATE SET org_id = ?3, plan_id = ?4",
    )?
    .execute(params![provider, reference, org, plan, now])?;
    Ok(())
}

pub fn reference(
    conn: &Connection,
    provider: &str,
    reference: &str,
) -> Result<Option<Reference>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT org_id, plan_id FROM billing_references
             WHERE provider = ?1 AND reference = ?2",
        )?
        .query_row(params![provider, reference], |row| {
            Ok(Reference {
                org_id: row.get(0)?,
                plan_id: row.get(1)?,
            })
        })
        .optional()?)
}

/// An invoice (or a single charge) as the processor reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub org_id: OrgId,
    pub provider: String,
    pub provider_invoice_id: String,
    pub plan_id: Option<String>,
    /// `paid` or `failed`.
    pub status: String,
    /// In the currency's smallest unit.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub hosted_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const INVOICE_COLUMNS: &str = "id, org_id, provider, provider_invoice_id, plan_id, status, amount, \
                               currency, hosted_url, created_at, updated_at";

fn invoice_from_row(row: &Row<'_>) -> rusqlite::Result<Invoice> {
    Ok(Invoice {
        id: row.get(0)?,
        org_id: row.get(1)?,
        provider: row.get(2)?,
        provider_invoice_id: row.get(3)?,
        plan_id: row.get(4)?,
        status: row.get(5)?,
        amount: row.get(6)?,
        currency: row.get(7)?,
        hosted_url: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

/// Inserts the invoice, or updates the one the processor already reported under the same
/// id (a failed payment later paid); returns the stored row.
pub fn upsert_invoice(conn: &Connection, i: &Invoice) -> Result<Invoice, StoreError> {
    conn.prepare_cached(
        "INSERT INTO billing_invoices (id, org_id, provider, provider_invoice_id, plan_id,
                                       status, amount, currency, hosted_url, created_at,
                                       updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
         ON CONFLICT (provider, provider_invoice_id) DO UPDATE SET
             status = ?6,
             amount = coalesce(?7, amount),
             currency = coalesce(?8, currency),
             hosted_url = coalesce(?9, hosted_url),
             plan_id = coalesce(?5, plan_id),
             updated_at = ?10
         WHERE org_id = ?2",
    )?
    .execute(params![
        i.id,
        i.org_id,
        i.provider,
        i.provider_invoice_id,
        i.plan_id,
        i.status,
        i.amount,
        i.currency,
        i.hosted_url,
        i.created_at,
    ])?;
    let stored = conn
        .prepare_cached(&format!(
            "SELECT {INVOICE_COLUMNS} FROM billing_invoices
             WHERE provider = ?1 AND provider_invoice_id = ?2 AND org_id = ?3"
        ))?
        .query_row(
            params![i.provider, i.provider_invoice_id, i.org_id],
            invoice_from_row,
        )
        .optional()?;
    // Another organization's invoice under the same processor id: never touched above.
    stored.ok_or(StoreError::Conflict)
}

/// Which page of an organization's invoices, newest first, to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Start,
    Before(String),
    After(String),
}

/// Up to `limit` of the organization's invoices, newest first (ids are UUIDv7).
pub fn list_invoices(
    conn: &Connection,
    org: OrgId,
    cursor: Cursor,
    limit: u32,
) -> Result<Vec<Invoice>, StoreError> {
    let (condition, cursor_id, order) = match &cursor {
        Cursor::Start => ("", None, "DESC"),
        Cursor::Before(id) => ("AND id < ?2", Some(id), "DESC"),
        Cursor::After(id) => ("AND id > ?2", Some(id), "ASC"),
    };
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM billing_invoices
         WHERE org_id = ?1 {condition} ORDER BY id {order} LIMIT {limit}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut items: Vec<Invoice> = match cursor_id {
        None => stmt
            .query_map(params![org], invoice_from_row)?
            .collect::<Result<_, _>>()?,
        Some(id) => stmt
            .query_map(params![org, id], invoice_from_row)?
            .collect::<Result<_, _>>()?,
    };
    if matches!(cursor, Cursor::After(_)) {
        items.reverse();
    }
    Ok(items)
}

/// Whether the organization has this invoice (for checking a cursor).
pub fn invoice_exists(conn: &Connection, org: OrgId, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM billing_invoices WHERE org_id = ?1 AND id = ?2")?
        .query_row(params![org, id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records an inbound event as applied; false when it already was (nothing inserted).
pub fn claim_event(
    conn: &Connection,
    provider: &str,
    event_id: &str,
    event_type: &str,
    org: Option<OrgId>,
    now: &str,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO billing_webhook_events (provider, event_id, event_type, org_id,
                                                 received_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (provider, event_id) DO NOTHING",
        )?
        .execute(params![provider, event_id, event_type, org, now])?;
    Ok(inserted == 1)
}

/// Whether this event was applied already.
pub fn event_seen(conn: &Connection, provider: &str, event_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM billing_webhook_events WHERE provider = ?1 AND event_id = ?2",
        )?
        .query_row(params![provider, event_id], |_| Ok(()))
        .optional()?
        .is_some())
}
