//! Payment processors (docs/billing.md, "Payment processors"): hosted checkouts, the
//! organization's invoices, and inbound payment webhooks, over each processor's
//! documented HTTP API (no SDK): `stripe`, `paystack`, `flutterwave`.
//!
//! Processors are optional adapters. Plans are local (`service::plans`): a verified event
//! only ever moves an organization onto a configured plan through
//! [`PlanRules::assign_in`], the same path an instance admin's assignment takes.
//!
//! An inbound event is checked in this order, and refused at the first failure with an
//! audit entry and nothing else changed:
//! 1. the processor is configured (401 otherwise);
//! 2. the signature, on the raw body, in constant time (401: missing, wrong or stale);
//! 3. only then is the body parsed (400: not JSON, not an event, an unknown type);
//! 4. the event must lead to a checkout or subscription of this instance (400).
//!
//! It is then applied in one transaction that also records its id
//! (`billing_webhook_events`): a redelivery of the same event is answered 200 and changes
//! nothing.

pub mod flutterwave;
pub mod paystack;
pub mod stripe;

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};
use sha2::Digest;

use super::page::{Cursor, Page, PageRequest};
use super::plans::{NewAssignment, PlanRules};
use super::{FieldError, Journal, RequestContext, ServiceError, access, read, write};
use crate::auth::{Permission, Principal};
use crate::config::billing::{Processor, ProcessorAccount};
use crate::ids::{OrgId, now_rfc3339};
use crate::store::{Store, StoreError, audit, billing, users};

/// How long a call to a processor's API may take.
pub const PROCESSOR_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest inbound webhook body read (the routes are unauthenticated).
pub const MAX_WEBHOOK_BODY_BYTES: u64 = 256 * 1024;
/// The longest `successUrl` accepted.
pub const MAX_SUCCESS_URL_CHARS: usize = 2048;

/// What a checkout asks a processor for.
#[derive(Debug)]
pub struct CheckoutRequest<'a> {
    /// The checkout's id, echoed back by the processor in its events.
    pub reference: &'a str,
    pub org: OrgId,
    /// The sealbox plan id.
    pub plan: &'a str,
    /// The processor's price or plan code for it.
    pub code: &'a str,
    /// Paystack and Flutterwave: the configured amount.
    pub amount: &'a str,
    pub currency: &'a str,
    /// Who pays (the caller's e-mail address).
    pub email: &'a str,
    pub success_url: &'a str,
}

/// A hosted checkout the processor created.
#[derive(Debug)]
pub struct CreatedCheckout {
    pub url: String,
    /// The processor's id for it (Stripe `cs_...`, Paystack access code), if it gave one.
    pub provider_ref: Option<String>,
}

/// Why a processor call failed; logged, never shown (it may name the processor's answer).
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("answered {0}")]
    Status(u16),
    #[error("unexpected answer: {0}")]
    Answer(&'static str),
}

/// Why an inbound webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The processor is not configured here.
    NotConfigured,
    /// No signature, or one that cannot be read.
    Unsigned(&'static str),
    /// A signature that does not match the body.
    BadSignature,
    /// Signed, but too far from now (Stripe: over 300 s).
    Stale,
    /// Signed, but not an event sealbox can read.
    Malformed(&'static str),
    /// Signed, of a type sealbox does not handle.
    Unknown(String),
    /// Signed, but about no checkout or subscription of this instance.
    Unrelated,
}

impl Refusal {
    /// The reason as written to the audit entry.
    fn reason(&self) -> String {
        match self {
            Refusal::NotConfigured => "the processor is not configured".into(),
            Refusal::Unsigned(why) => (*why).into(),
            Refusal::BadSignature => "the signature does not match the body".into(),
            Refusal::Stale => "the signature's timestamp is outside the tolerance".into(),
            Refusal::Malformed(why) => (*why).into(),
            Refusal::Unknown(kind) => format!("unknown event type `{kind}`"),
            Refusal::Unrelated => "the event names no checkout or subscription here".into(),
        }
    }
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotConfigured => {
                ServiceError::Unauthorized("this payment processor is not configured")
            }
            Refusal::Unsigned(_) => ServiceError::Unauthorized("the delivery is not signed"),
            Refusal::BadSignature => {
                ServiceError::Unauthorized("the delivery's signature does not match")
            }
            Refusal::Stale => ServiceError::Unauthorized("the delivery's signature is too old"),
            other => ServiceError::BadRequest(other.reason()),
        }
    }
}

/// A verified event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The processor's event id (or, for processors without one, the type and the id of
    /// what it is about): the deduplication key.
    pub id: String,
    pub kind: String,
    pub action: Action,
}

/// What an event means for sealbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Money arrived: a checkout completed (or, for a checkout already completed, a
    /// renewal charge).
    Payment {
        checkout: Option<String>,
        references: Vec<String>,
        invoice: Option<InvoiceFacts>,
    },
    /// An invoice was paid or its payment failed.
    Invoice {
        paid: bool,
        checkout: Option<String>,
        references: Vec<String>,
        invoice: InvoiceFacts,
    },
    /// A subscription changed; `active` subscriptions move the organization to the
    /// plan of `code`.
    SubscriptionUpdated {
        checkout: Option<String>,
        references: Vec<String>,
        code: Option<String>,
        active: bool,
        status: String,
    },
    /// A subscription ended: the organization goes back to the default plan.
    SubscriptionCancelled {
        checkout: Option<String>,
        references: Vec<String>,
    },
    /// A known type with nothing to do (a checkout not paid yet).
    Ignored(&'static str),
}

/// An invoice as an event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceFacts {
    pub id: String,
    /// In the currency's smallest unit.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub url: Option<String>,
    /// The processor's price or plan code it is for.
    pub code: Option<String>,
}

/// The headers an inbound delivery may be signed with.
#[derive(Debug, Default, Clone)]
pub struct Signatures {
    /// `Stripe-Signature`, `x-paystack-signature` or `flutterwave-signature`.
    pub signature: Option<String>,
    /// Flutterwave's `verif-hash`.
    pub hash: Option<String>,
}

/// What became of a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    Applied,
    /// This event was applied before; nothing changed.
    Duplicate,
    /// A known type with nothing to apply.
    Ignored,
}

/// A plan a checkout can buy, and through which processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub plan: String,
    pub plan_name: String,
    /// `stripe`, `paystack` or `flutterwave`.
    pub provider: String,
    /// As configured (`billing.<provider>.prices`); empty for Stripe, whose price has it.
    pub amount: String,
    pub currency: String,
}

/// A checkout to start.
#[derive(Debug, Clone)]
pub struct CheckoutInput {
    pub plan: String,
    pub provider: String,
    pub success_url: String,
}

/// Payment processors: checkouts, invoices, inbound webhooks.
#[derive(Clone)]
pub struct BillingService {
    store: Store,
    accounts: Arc<Vec<ProcessorAccount>>,
    plans: PlanRules,
    /// `billing.default_plan`: where a cancelled subscription leaves an organization;
    /// `None` on an instance without plans.
    default_plan: Option<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for BillingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The accounts' Debug redacts their secrets; only which are configured is shown.
        let configured: Vec<&str> = self
            .accounts
            .iter()
            .filter(|a| a.missing().is_empty())
            .map(|a| a.processor.as_str())
            .collect();
        f.debug_struct("BillingService")
            .field("configured", &configured)
            .finish_non_exhaustive()
    }
}

impl BillingService {
    pub fn new(
        store: Store,
        accounts: Vec<ProcessorAccount>,
        plans: PlanRules,
        default_plan: Option<String>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROCESSOR_TIMEOUT)
            .connect_timeout(PROCESSOR_TIMEOUT)
            .user_agent(concat!("sealbox/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            accounts: Arc::new(accounts),
            plans,
            default_plan,
            client,
        })
    }

    /// What a checkout can buy on this instance: every configured plan a fully
    /// configured processor has a price for, in configuration order.
    pub fn offers(&self) -> Vec<Offer> {
        let plans = self.plans.plans();
        self.accounts
            .iter()
            .filter(|a| a.missing().is_empty())
            .flat_map(|account| {
                account.prices.iter().filter_map(|price| {
                    let plan = plans.iter().find(|p| p.id == price.plan)?;
                    Some(Offer {
                        plan: plan.id.clone(),
                        plan_name: plan.name.clone(),
                        provider: account.processor.as_str().to_owned(),
                        amount: price.amount.clone(),
                        currency: price.currency.clone(),
                    })
                })
            })
            .collect()
    }

    fn account(&self, processor: Processor) -> &ProcessorAccount {
        self.accounts
            .iter()
            .find(|a| a.processor == processor)
            .expect("config::billing::resolve gives every processor an account")
    }

    /// Starts a hosted checkout of `plan` with `provider` for `org`; returns its URL.
    /// Owners and members with `billing:manage` only; another tenant's organization 404.
    pub async fn checkout(
        &self,
        principal: &Principal,
        org: OrgId,
        input: CheckoutInput,
        ctx: RequestContext,
    ) -> Result<String, ServiceError> {
        let email = {
            let principal = principal.clone();
            read(&self.store, move |conn| {
                let access = access::in_org(conn, &principal, org)?;
                access.require(Permission::BillingManage)?;
                let user =
                    users::find(conn, access.user_id)?.ok_or(ServiceError::NotFound("user"))?;
                Ok(user.email)
            })
            .await?
        };
        let mut problems = Vec::new();
        let known_plan = self.plans.plans().iter().any(|p| p.id == input.plan);
        if !known_plan {
            let known: Vec<String> = self.plans.plans().iter().map(|p| p.id.clone()).collect();
            problems.push(FieldError::new(
                "plan",
                if known.is_empty() {
                    "no plans are configured on this instance ([[plans]])".to_owned()
                } else {
                    format!(
                        "unknown plan `{}` (configured: {})",
                        input.plan,
                        known.join(", ")
                    )
                },
            ));
        }
        let account = match Processor::parse(&input.provider) {
            None => {
                problems.push(FieldError::new(
                    "provider",
                    format!(
                        "unknown provider `{}` (stripe, paystack or flutterwave)",
                        input.provider
                    ),
                ));
                None
            }
            Some(processor) => {
                let account = self.account(processor);
                for missing in account.missing() {
                    problems.push(FieldError::new(
                        "provider",
                        format!(
                            "{processor} is not configured on this instance: {missing} is not set"
                        ),
                    ));
                }
                if known_plan && account.price_of(&input.plan).is_none() {
                    problems.push(FieldError::new(
                        "plan",
                        format!(
                            "plan `{}` is not sold through {processor}: billing.{processor}.prices \
                             has no entry for it",
                            input.plan
                        ),
                    ));
                }
                Some(account)
            }
        };
        if let Some(why) = success_url_problem(&input.success_url) {
            problems.push(FieldError::new("successUrl", why));
        }
        super::invalid_if_any(problems)?;
        let account = account.expect("a known provider when no problem was found");
        let price = account
            .price_of(&input.plan)
            .expect("a price when no problem was found");
        let reference = uuid::Uuid::now_v7().to_string();
        let request = CheckoutRequest {
            reference: &reference,
            org,
            plan: &input.plan,
            code: &price.code,
            amount: &price.amount,
            currency: &price.currency,
            email: &email,
            success_url: &input.success_url,
        };
        let created = match account.processor {
            Processor::Stripe => stripe::create_checkout(&self.client, account, &request).await,
            Processor::Paystack => paystack::create_checkout(&self.client, account, &request).await,
            Processor::Flutterwave => {
                flutterwave::create_checkout(&self.client, account, &request).await
            }
        }
        .and_then(|created| match success_url_problem(&created.url) {
            None => Ok(created),
            Some(_) => Err(ProcessorError::Answer(
                "the checkout URL is not an http(s) URL",
            )),
        })
        .map_err(|error| {
            tracing::warn!(provider = %account.processor, %error, "creating a checkout failed");
            ServiceError::Unavailable(
                "the payment processor did not create the checkout; try again",
            )
        })?;
        let principal = principal.clone();
        let provider = account.processor.as_str();
        let plan = input.plan;
        write(&self.store, move |conn| {
            // Checked again: the membership may have changed while the processor answered.
            let access = access::in_org(conn, &principal, org)?;
            access.require(Permission::BillingManage)?;
            let journal = Journal::new(conn, &ctx, access.actor(), access.org());
            billing::insert_checkout(
                conn,
                &billing::Checkout {
                    id: reference.clone(),
                    org_id: org,
                    provider: provider.to_owned(),
                    plan_id: plan.clone(),
                    created_by: Some(access.user_id),
                    created_at: journal.now().to_owned(),
                    completed_at: None,
                },
            )?;
            journal.audit(
                "billing.checkout_created",
                "organization",
                org,
                json!({"checkoutId": reference, "provider": provider, "plan": plan,
                       "providerReference": created.provider_ref}),
            )?;
            Ok(created.url)
        })
        .await
    }

    /// A page of the organization's invoices, newest first. Owners and members with
    /// `billing:read` only.
    pub async fn invoices(
        &self,
        principal: &Principal,
        org: OrgId,
        page: PageRequest,
    ) -> Result<Page<billing::Invoice>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_org(conn, &principal, org)?;
            access.require(Permission::BillingRead)?;
            let cursor = match &page.cursor {
                Cursor::Start => billing::Cursor::Start,
                Cursor::Before(id) | Cursor::After(id) => {
                    if !billing::invoice_exists(conn, org, id)? {
                        return Err(page.unknown_cursor());
                    }
                    match page.cursor {
                        Cursor::After(_) => billing::Cursor::After(id.clone()),
                        _ => billing::Cursor::Before(id.clone()),
                    }
                }
            };
            let items = billing::list_invoices(conn, org, cursor, page.limit + 1)?;
            Ok(page.finish(items, |i| i.id.clone()))
        })
        .await
    }

    /// Verifies, reads, deduplicates and applies one inbound delivery.
    pub async fn receive(
        &self,
        processor: Processor,
        signatures: Signatures,
        body: Vec<u8>,
        ctx: RequestContext,
    ) -> Result<Receipt, ServiceError> {
        let account = self.account(processor).clone();
        let event = match verify_and_read(&account, &signatures, &body, unix_now()) {
            Ok(event) => event,
            Err(refusal) => {
                self.refused(processor, None, &refusal, ctx).await?;
                return Err(refusal.into());
            }
        };
        let plans = self.plans.clone();
        let default_plan = self.default_plan.clone();
        let outcome = write(&self.store, move |conn| {
            apply(
                conn,
                &plans,
                default_plan.as_deref(),
                &account,
                &event,
                &ctx,
            )
        })
        .await?;
        outcome.map_err(Into::into)
    }

    /// The audit entry of a refused delivery (instance chain: no tenant is known yet).
    async fn refused(
        &self,
        processor: Processor,
        event: Option<&Event>,
        refusal: &Refusal,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let details = refusal_details(processor, event, refusal);
        self.store
            .call_write(move |conn| {
                let now = now_rfc3339();
                let mut entry = ctx.audit(
                    None,
                    "billing.webhook",
                    "payment_processor",
                    Some(processor.as_str().to_owned()),
                    None,
                );
                entry.outcome = "failure";
                entry.details = details;
                audit::append(conn, &entry, &now)?;
                Ok(crate::store::Write::Commit(()))
            })
            .await?;
        Ok(())
    }
}

fn refusal_details(processor: Processor, event: Option<&Event>, refusal: &Refusal) -> Value {
    json!({
        "provider": processor.as_str(),
        "reason": refusal.reason(),
        "eventId": event.map(|e| e.id.clone()),
        "eventType": event.map(|e| e.kind.clone()),
    })
}

/// Steps 1 to 3: configured, signed, readable.
fn verify_and_read(
    account: &ProcessorAccount,
    signatures: &Signatures,
    body: &[u8],
    now: i64,
) -> Result<Event, Refusal> {
    if !account.missing().is_empty() {
        return Err(Refusal::NotConfigured);
    }
    let signature = signatures.signature.as_deref();
    match account.processor {
        Processor::Stripe => stripe::verify(account, signature, body, now)?,
        Processor::Paystack => paystack::verify(account, signature, body)?,
        Processor::Flutterwave => {
            flutterwave::verify(account, signatures.hash.as_deref(), signature, body)?
        }
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Refusal::Malformed("the body is not JSON"))?;
    if !value.is_object() {
        return Err(Refusal::Malformed("the body is not a JSON object"));
    }
    match account.processor {
        Processor::Stripe => stripe::parse(&value),
        Processor::Paystack => paystack::parse(&value, body),
        Processor::Flutterwave => flutterwave::parse(&value, body),
    }
}

/// Where an event leads: an organization, the plan it bought, and the checkout if the
/// event named one.
struct Target {
    org: OrgId,
    plan: String,
    checkout: Option<billing::Checkout>,
}

fn resolve(
    conn: &Connection,
    provider: &str,
    checkout: Option<&str>,
    references: &[String],
) -> Result<Option<Target>, StoreError> {
    if let Some(id) = checkout
        && let Some(found) = billing::checkout_by_reference(conn, provider, id)?
    {
        return Ok(Some(Target {
            org: found.org_id,
            plan: found.plan_id.clone(),
            checkout: Some(found),
        }));
    }
    for reference in references {
        if let Some(found) = billing::reference(conn, provider, reference)? {
            return Ok(Some(Target {
                org: found.org_id,
                plan: found.plan_id,
                checkout: None,
            }));
        }
    }
    Ok(None)
}

/// Step 4 and the change itself, in one transaction. A refusal is committed with only its
/// audit entry.
fn apply(
    conn: &Connection,
    plans: &PlanRules,
    default_plan: Option<&str>,
    account: &ProcessorAccount,
    event: &Event,
    ctx: &RequestContext,
) -> Result<Result<Receipt, Refusal>, ServiceError> {
    let processor = account.processor;
    let provider = processor.as_str();
    let instance = Journal::new(conn, ctx, None, None);
    let received =
        |details: Value| instance.audit("billing.webhook", "payment_processor", provider, details);
    if billing::event_seen(conn, provider, &event.id)? {
        received(
            json!({"provider": provider, "eventId": event.id, "eventType": event.kind,
                        "duplicate": true}),
        )?;
        return Ok(Ok(Receipt::Duplicate));
    }
    let (checkout, references) = match &event.action {
        Action::Ignored(why) => {
            billing::claim_event(conn, provider, &event.id, &event.kind, None, instance.now())?;
            received(
                json!({"provider": provider, "eventId": event.id, "eventType": event.kind,
                            "ignored": why}),
            )?;
            return Ok(Ok(Receipt::Ignored));
        }
        Action::Payment {
            checkout,
            references,
            ..
        }
        | Action::Invoice {
            checkout,
            references,
            ..
        }
        | Action::SubscriptionUpdated {
            checkout,
            references,
            ..
        }
        | Action::SubscriptionCancelled {
            checkout,
            references,
        } => (checkout.as_deref(), references.as_slice()),
    };
    let Some(target) = resolve(conn, provider, checkout, references)? else {
        let refusal = Refusal::Unrelated;
        let mut entry = ctx.audit(
            None,
            "billing.webhook",
            "payment_processor",
            Some(provider.to_owned()),
            None,
        );
        entry.outcome = "failure";
        entry.details = refusal_details(processor, Some(event), &refusal);
        audit::append(conn, &entry, instance.now())?;
        return Ok(Err(refusal));
    };
    let org = target.org;
    let journal = Journal::new(conn, ctx, None, Some(org.to_string()));
    let now = journal.now().to_owned();
    billing::claim_event(conn, provider, &event.id, &event.kind, Some(org), &now)?;
    let remember = |plan: &str| -> Result<(), StoreError> {
        for reference in references {
            billing::put_reference(conn, provider, reference, org, plan, &now)?;
        }
        Ok(())
    };
    match &event.action {
        Action::Payment { invoice, .. } => {
            let fresh = target
                .checkout
                .as_ref()
                .is_some_and(|c| c.completed_at.is_none());
            remember(&target.plan)?;
            if let Some(checkout) = target.checkout.as_ref().filter(|_| fresh) {
                billing::complete_checkout(conn, &checkout.id, &now)?;
                move_to(conn, plans, ctx, org, &target.plan, processor)?;
                journal.event(
                    "subscription.created",
                    json!({"organizationId": org, "plan": target.plan, "provider": provider,
                           "status": "active", "checkoutId": checkout.id}),
                )?;
            }
            if let Some(invoice) = invoice {
                record_invoice(conn, &journal, account, org, &target.plan, invoice, true)?;
            }
        }
        Action::Invoice { paid, invoice, .. } => {
            remember(&target.plan)?;
            record_invoice(conn, &journal, account, org, &target.plan, invoice, *paid)?;
        }
        Action::SubscriptionUpdated {
            code,
            active,
            status,
            ..
        } => {
            let plan = code
                .as_deref()
                .and_then(|c| account.plan_of(c))
                .unwrap_or(target.plan.as_str())
                .to_owned();
            remember(&plan)?;
            if *active {
                move_to(conn, plans, ctx, org, &plan, processor)?;
            }
            journal.event(
                "subscription.updated",
                json!({"organizationId": org, "plan": plan, "provider": provider,
                       "status": status}),
            )?;
        }
        Action::SubscriptionCancelled { .. } => {
            if let Some(default) = default_plan {
                move_to(conn, plans, ctx, org, default, processor)?;
            }
            journal.event(
                "subscription.cancelled",
                json!({"organizationId": org, "plan": target.plan, "provider": provider,
                       "status": "cancelled", "nowOn": default_plan}),
            )?;
        }
        Action::Ignored(_) => unreachable!("handled above"),
    }
    journal.audit(
        "billing.webhook",
        "payment_processor",
        provider,
        json!({"provider": provider, "eventId": event.id, "eventType": event.kind}),
    )?;
    Ok(Ok(Receipt::Applied))
}

/// Moves the organization onto `plan` unless it is on it already (an assignment, not the
/// default, without an end), through part A's one way of changing a plan.
fn move_to(
    conn: &Connection,
    plans: &PlanRules,
    ctx: &RequestContext,
    org: OrgId,
    plan: &str,
    processor: Processor,
) -> Result<(), ServiceError> {
    let current = plans.current_in(conn, org)?;
    if current.plan.id == plan && current.status == "active" && current.ends_at.is_none() {
        return Ok(());
    }
    plans.assign_in(
        conn,
        ctx,
        NewAssignment {
            org,
            plan: plan.to_owned(),
            ends_at: None,
            set_by: None,
            set_via: processor.as_str().to_owned(),
        },
    )?;
    Ok(())
}

fn record_invoice(
    conn: &Connection,
    journal: &Journal<'_>,
    account: &ProcessorAccount,
    org: OrgId,
    plan: &str,
    facts: &InvoiceFacts,
    paid: bool,
) -> Result<(), ServiceError> {
    let plan = facts
        .code
        .as_deref()
        .and_then(|c| account.plan_of(c))
        .unwrap_or(plan);
    let stored = billing::upsert_invoice(
        conn,
        &billing::Invoice {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org,
            provider: account.processor.as_str().to_owned(),
            provider_invoice_id: facts.id.clone(),
            plan_id: Some(plan.to_owned()),
            status: if paid { "paid" } else { "failed" }.to_owned(),
            amount: facts.amount,
            currency: facts.currency.clone(),
            hosted_url: facts.url.clone(),
            created_at: journal.now().to_owned(),
            updated_at: journal.now().to_owned(),
        },
    )
    .map_err(|e| match e {
        StoreError::Conflict => ServiceError::BadRequest(
            "the invoice id belongs to another organization's invoice".into(),
        ),
        other => other.into(),
    })?;
    let data = json!({"organizationId": org, "invoiceId": stored.id, "provider": stored.provider,
                      "providerInvoiceId": stored.provider_invoice_id, "plan": stored.plan_id,
                      "amount": stored.amount, "currency": stored.currency,
                      "status": stored.status});
    if paid {
        journal.event("invoice.paid", data)?;
    } else {
        journal.event("invoice.payment_failed", data)?;
    }
    Ok(())
}

/// Why `url` cannot be a checkout's success URL (or the URL a processor returned).
fn success_url_problem(url: &str) -> Option<String> {
    if url.is_empty() {
        return Some("required: the http(s) URL the processor sends the payer back to".into());
    }
    if url.chars().count() > MAX_SUCCESS_URL_CHARS {
        return Some(format!("at most {MAX_SUCCESS_URL_CHARS} characters"));
    }
    match url::Url::parse(url) {
        Ok(parsed)
            if matches!(parsed.scheme(), "https" | "http")
                && parsed.host().is_some()
                && parsed.username().is_empty()
                && parsed.password().is_none() =>
        {
            None
        }
        Ok(_) => Some("must be an http or https URL with a host and no credentials".into()),
        Err(e) => Some(format!("not a URL: {e}")),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The value at a path of object keys, if it is a string.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
}

/// A string in the object `field` of `object` (`metadata`, `meta`).
pub(crate) fn meta<'a>(object: &'a Value, field: &str, key: &str) -> Option<&'a str> {
    str_at(object, &[field, key]).filter(|s| !s.is_empty())
}

/// An event id for a processor event that has none: the SHA-256 of its body.
pub(crate) fn synthetic_id(body: &[u8]) -> String {
    format!(
        "sha256:{}",
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(body))
    )
}

/// The JSON object a processor answered with, if it answered 2xx.
pub(crate) async fn json_answer(response: reqwest::Response) -> Result<Value, ProcessorError> {
    let status = response.status();
    if !status.is_success() {
        return Err(ProcessorError::Status(status.as_u16()));
    }
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|_| ProcessorError::Answer("not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_urls_are_http_urls_with_a_host_and_no_credentials() {
        assert_eq!(success_url_problem("https://app.example.com/billing"), None);
        assert_eq!(success_url_problem("http://localhost:3000/done?x=1"), None);
        for bad in [
            "",
            "ftp://example.com",
            "javascript:alert(1)",
            "https://user:pw@example.com",
            "/relative",
        ] {
            assert!(success_url_problem(bad).is_some(), "{bad}");
        }
        assert!(success_url_problem(&format!("https://e.com/{}", "a".repeat(2100))).is_some());
    }
}
