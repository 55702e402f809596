//! Plans (docs/billing.md): which plan an organization has, assigning one, and the limits
//! and features every request is checked against.
//!
//! - [`PlanRules`] holds the configured plans and the [`Clock`]; services keep a clone and
//!   call its `*_in` checks inside their own transactions. With no `[[plans]]` configured
//!   it is the implicit unlimited plan, and every check returns at once without SQL.
//! - [`PlanRules::assign_in`] is the one way a plan is assigned (the admin API, `sealbox
//!   admin set-plan`, a payment processor's webhook), inside the caller's transaction,
//!   with its audit entry.
//! - [`PlanService`] adds what runs per request outside a transaction: the gate of API-key
//!   requests ([`PlanService::admit_key`]: the `api_access` feature and the daily request
//!   quotas), with the assignments cached per organization. A cached assignment is trusted
//!   only while the store's credential version is the one read before it was read:
//!   migration 0020's triggers move that version with every assignment, whichever
//!   process makes it, so a downgrade or upgrade applies to the very next request.

mod clock;
mod usage;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use self::clock::Clock;
use super::{FieldError, Journal, RequestContext, ServiceError, read, write};
use crate::auth::Principal;
pub use crate::config::{BillingConfig, Feature, PlanConfig, PlanLimitsConfig};
use crate::ids::{OrgId, UserId, format_rfc3339};
use crate::store::plans::{self as store, Assignment};
use crate::store::{Store, organizations};

/// The id of the implicit plan of an instance without `[[plans]]`.
pub const UNLIMITED_PLAN: &str = "unlimited";
/// Counter names in `plan_usage`.
pub const API_REQUESTS: &str = "api_requests";
pub const TRANSFERS: &str = "transfers";
pub const CONVERSIONS: &str = "conversions";

/// One configured plan, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// 0 is no limit.
    pub limits: PlanLimitsConfig,
    pub features: BTreeSet<Feature>,
}

impl Plan {
    fn unlimited() -> Self {
        Self {
            id: UNLIMITED_PLAN.to_owned(),
            name: "Unlimited".to_owned(),
            limits: PlanLimitsConfig::default(),
            features: Feature::ALL.into_iter().collect(),
        }
    }

    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }
}

/// The plans an instance offers and which applies without an assignment.
#[derive(Debug)]
struct Catalog {
    /// Empty: the implicit unlimited plan, `default`.
    plans: Vec<Arc<Plan>>,
    default: Arc<Plan>,
}

impl Catalog {
    fn from_config(plans: &[PlanConfig], billing: &BillingConfig) -> Self {
        let plans: Vec<Arc<Plan>> = plans
            .iter()
            .map(|p| {
                Arc::new(Plan {
                    id: p.id.clone(),
                    name: if p.name.is_empty() {
                        p.id.clone()
                    } else {
                        p.name.clone()
                    },
                    limits: p.limits,
                    features: p
                        .features
                        .iter()
                        .filter_map(|f| Feature::parse(f))
                        .collect(),
                })
            })
            .collect();
        // Config::validate has checked that the default names a plan.
        let default = plans
            .iter()
            .find(|p| p.id == billing.default_plan)
            .or(plans.first())
            .cloned()
            .unwrap_or_else(|| Arc::new(Plan::unlimited()));
        Self { plans, default }
    }

    fn find(&self, id: &str) -> Option<&Arc<Plan>> {
        self.plans.iter().find(|p| p.id == id)
    }
}

/// An organization's plan now.
#[derive(Debug, Clone)]
pub struct CurrentPlan {
    pub plan: Arc<Plan>,
    /// When the assigned plan ends and the default applies again; `None`: it does not.
    pub ends_at: Option<String>,
    /// `active` (an assigned plan), `default` (none assigned, or the assignment ended) or
    /// `unlimited` (no `[[plans]]` configured).
    pub status: &'static str,
    /// The assignment as stored, also when it has ended.
    pub assignment: Option<Assignment>,
}

/// What a plan assignment should be.
#[derive(Debug, Clone)]
pub struct NewAssignment {
    pub org: OrgId,
    /// A `[[plans]]` id.
    pub plan: String,
    /// RFC 3339, in the future; `None`: until the next assignment.
    pub ends_at: Option<String>,
    /// The user who made it (an instance admin); `None` for the console or a processor.
    pub set_by: Option<UserId>,
    /// `admin_api`, `cli`, or the processor (`stripe`, `paystack`, `flutterwave`).
    pub set_via: String,
}

/// What an assignment changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    pub org: OrgId,
    /// The plan that applied before (possibly the default).
    pub from: String,
    pub to: String,
    pub ends_at: Option<String>,
}

/// An organization's plan and usage, for `GET /v1/subscriptions/{organizationId}`.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub current: CurrentPlan,
    pub usage: Usage,
}

/// What an organization uses of its plan's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub storage_bytes: u64,
    pub members: u64,
    pub webhooks: u64,
    /// Counted only while the plan limits them (a counter of 0 otherwise).
    pub transfers_today: u64,
    /// Requests made today with the organization's API keys, counted only while the plan
    /// limits them.
    pub api_requests_today: u64,
    /// The UTC day the counts are of (`YYYY-MM-DD`).
    pub day: String,
    /// When they start again (RFC 3339, the next UTC midnight).
    pub resets_at: String,
}

/// Where a daily quota stands after a request was counted (or refused), for the
/// `X-Quota-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// The next UTC midnight, unix seconds.
    pub reset: u64,
    /// Until then.
    pub retry_after: Duration,
}

/// The configured plans and the clock, for checks inside a caller's transaction.
#[derive(Debug, Clone)]
pub struct PlanRules {
    catalog: Arc<Catalog>,
    clock: Clock,
}

impl Default for PlanRules {
    /// The implicit unlimited plan: for services built without plans.
    fn default() -> Self {
        Self::new(&[], &BillingConfig::default(), Clock::default())
    }
}

impl PlanRules {
    pub fn new(plans: &[PlanConfig], billing: &BillingConfig, clock: Clock) -> Self {
        Self {
            catalog: Arc::new(Catalog::from_config(plans, billing)),
            clock,
        }
    }

    /// Whether no `[[plans]]` are configured: nothing is limited, nothing needs checking.
    pub fn unlimited(&self) -> bool {
        self.catalog.plans.is_empty()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The configured plans, in configuration order.
    pub fn plans(&self) -> Vec<Arc<Plan>> {
        self.catalog.plans.clone()
    }

    /// The plan of an organization without an assignment (`billing.default_plan`).
    pub fn default_plan(&self) -> Arc<Plan> {
        self.catalog.default.clone()
    }

    /// The plan `assignment` gives now: the assigned one while it has not ended and is
    /// still configured, else the default.
    fn effective(&self, assignment: Option<Assignment>) -> CurrentPlan {
        if self.unlimited() {
            return CurrentPlan {
                plan: self.catalog.default.clone(),
                ends_at: None,
                status: "unlimited",
                assignment,
            };
        }
        let now = self.clock.now();
        let live = assignment.as_ref().and_then(|a| {
            let ended = a
                .ends_at
                .as_deref()
                .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
                .is_some_and(|at| at <= now);
            if ended {
                return None;
            }
            match self.catalog.find(&a.plan_id) {
                Some(plan) => Some((plan.clone(), a.ends_at.clone())),
                None => {
                    tracing::warn!(
                        org = %a.org_id,
                        plan = %a.plan_id,
                        "the assigned plan is no longer configured; the default plan applies"
                    );
                    None
                }
            }
        });
        match live {
            Some((plan, ends_at)) => CurrentPlan {
                plan,
                ends_at,
                status: "active",
                assignment,
            },
            None => CurrentPlan {
                plan: self.catalog.default.clone(),
                ends_at: None,
                status: "default",
                assignment,
            },
        }
    }

    /// The organization's plan now, read in the caller's transaction.
    pub fn current_in(&self, conn: &Connection, org: OrgId) -> Result<CurrentPlan, ServiceError> {
        if self.unlimited() {
            return Ok(self.effective(None));
        }
        Ok(self.effective(store::find(conn, org)?))
    }

    /// Assigns a plan, in the caller's transaction, with its audit entry (`plan.changed`,
    /// old and new plan): the one way a plan changes. Unknown plan or a past `ends_at`:
    /// 422; unknown organization: 404. Takes effect on the organization's next request,
    /// in this process and any other (the assignment moves the credential version).
    pub fn assign_in(
        &self,
        conn: &Connection,
        ctx: &RequestContext,
        change: NewAssignment,
    ) -> Result<PlanChange, ServiceError> {
        let mut problems = Vec::new();
        if self.catalog.find(&change.plan).is_none() {
            let known: Vec<&str> = self.catalog.plans.iter().map(|p| p.id.as_str()).collect();
            problems.push(FieldError::new(
                "plan",
                if known.is_empty() {
                    "no plans are configured on this instance ([[plans]])".to_owned()
                } else {
                    format!(
                        "unknown plan `{}` (configured: {})",
                        change.plan,
                        known.join(", ")
                    )
                },
            ));
        }
        let ends_at = match change.ends_at.as_deref() {
            None => None,
            Some(text) => match OffsetDateTime::parse(text, &Rfc3339) {
                Ok(at) if at > self.clock.now() => Some(format_rfc3339(at)),
                Ok(_) => {
                    problems.push(FieldError::new("endsAt", "must be in the future"));
                    None
                }
                Err(_) => {
                    problems.push(FieldError::new(
                        "endsAt",
                        "must be an RFC 3339 time such as 2027-01-31T00:00:00Z",
                    ));
                    None
                }
            },
        };
        super::invalid_if_any(problems)?;
        if organizations::find(conn, change.org)?.is_none() {
            return Err(ServiceError::NotFound("organization"));
        }
        let from = self.current_in(conn, change.org)?.plan.id.clone();
        let journal = Journal::new(
            conn,
            ctx,
            change.set_by.map(|u| u.to_string()),
            Some(change.org.to_string()),
        );
        store::put(
            conn,
            &Assignment {
                org_id: change.org,
                plan_id: change.plan.clone(),
                ends_at: ends_at.clone(),
                set_by: change.set_by,
                set_via: change.set_via.clone(),
                set_at: journal.now().to_owned(),
            },
        )?;
        journal.audit(
            "plan.changed",
            "organization",
            change.org,
            json!({"from": from, "to": change.plan, "endsAt": ends_at, "via": change.set_via}),
        )?;
        Ok(PlanChange {
            org: change.org,
            from,
            to: change.plan,
            ends_at,
        })
    }

    /// Refuses with 403 `PLAN_REQUIRED` unless the organization's plan includes `feature`.
    pub fn require_feature_in(
        &self,
        conn: &Connection,
        org: OrgId,
        feature: Feature,
    ) -> Result<(), ServiceError> {
        if self.unlimited() {
            return Ok(());
        }
        let current = self.current_in(conn, org)?;
        require_feature(&current.plan, feature)
    }

    /// Checks a new upload of `size` bytes against the plan's largest file (413
    /// `PAYLOAD_TOO_LARGE`) and its storage (413 `QUOTA_EXCEEDED`, as the instance-wide
    /// `limits.org_quota_bytes`), `stored` being what the organization stores now.
    pub fn check_upload_in(
        &self,
        conn: &Connection,
        org: OrgId,
        size: u64,
        stored: u64,
    ) -> Result<(), ServiceError> {
        if self.unlimited() {
            return Ok(());
        }
        let current = self.current_in(conn, org)?;
        let limits = current.plan.limits;
        if limits.max_file_bytes > 0 && size > limits.max_file_bytes {
            return Err(ServiceError::TooLarge(limits.max_file_bytes));
        }
        if limits.storage_bytes > 0 && stored.saturating_add(size) > limits.storage_bytes {
            return Err(ServiceError::QuotaExceeded(format!(
                "the plan `{}` stores {} bytes; {} are free and this file has {}",
                current.plan.id,
                limits.storage_bytes,
                limits.storage_bytes.saturating_sub(stored),
                size
            )));
        }
        Ok(())
    }

    /// Counts one transfer of today against the plan's transfers per day: 429
    /// `QUOTA_EXCEEDED` with `Retry-After` until the next UTC midnight once spent. In the
    /// caller's transaction, so a refused creation counts nothing.
    pub fn take_transfer_in(
        &self,
        conn: &Connection,
        org: OrgId,
    ) -> Result<Option<Quota>, ServiceError> {
        let limit = if self.unlimited() {
            0
        } else {
            self.current_in(conn, org)?.plan.limits.transfers_per_day
        };
        self.take_in(
            conn,
            &org.to_string(),
            TRANSFERS,
            limit,
            "the organization's transfers per day",
        )
    }

    /// Checks new conversions against the plan: the `conversions` feature (403
    /// `PLAN_REQUIRED`), then counts `count` of today against its conversions per day (429
    /// `QUOTA_EXCEEDED` until the next UTC midnight once spent). In the caller's
    /// transaction, so a refused request counts nothing, and a bulk request is counted
    /// whole or not at all.
    pub fn take_conversions_in(
        &self,
        conn: &Connection,
        org: OrgId,
        count: u64,
    ) -> Result<Option<Quota>, ServiceError> {
        if self.unlimited() {
            return Ok(None);
        }
        let current = self.current_in(conn, org)?;
        require_feature(&current.plan, Feature::Conversions)?;
        let limit = current.plan.limits.conversions_per_day;
        let mut quota = None;
        for _ in 0..count {
            quota = self.take_in(
                conn,
                &org.to_string(),
                CONVERSIONS,
                limit,
                "the organization's conversions per day",
            )?;
        }
        Ok(quota)
    }

    /// Refuses a new member with 403 `PLAN_REQUIRED` when the organization already has
    /// as many active members as its plan allows.
    pub fn check_members_in(&self, conn: &Connection, org: OrgId) -> Result<(), ServiceError> {
        if self.unlimited() {
            return Ok(());
        }
        let current = self.current_in(conn, org)?;
        let limit = current.plan.limits.members;
        if limit > 0 && store::active_members(conn, org)? >= limit {
            return Err(ServiceError::PlanRequired(format!(
                "the plan `{}` allows {limit} members and the organization has them all; a \
                 larger plan is required to add more",
                current.plan.id
            )));
        }
        Ok(())
    }

    /// Refuses a new webhook with 403 `PLAN_REQUIRED` when the organization has as many as
    /// its plan allows.
    pub fn check_webhooks_in(&self, conn: &Connection, org: OrgId) -> Result<(), ServiceError> {
        if self.unlimited() {
            return Ok(());
        }
        let current = self.current_in(conn, org)?;
        let limit = current.plan.limits.webhooks;
        if limit > 0 && crate::store::webhooks::count_for_org(conn, org)?.max(0) as u64 >= limit {
            return Err(ServiceError::PlanRequired(format!(
                "the plan `{}` allows {limit} webhooks; a larger plan is required to add more",
                current.plan.id
            )));
        }
        Ok(())
    }

    /// Today's count of `counter` for `subject`.
    pub fn used_today_in(
        &self,
        conn: &Connection,
        subject: &str,
        counter: &str,
    ) -> Result<u64, ServiceError> {
        Ok(store::used(conn, subject, counter, &self.clock.today())?)
    }

    /// Counts one unit of today against `limit` (0: not counted, `None`).
    fn take_in(
        &self,
        conn: &Connection,
        subject: &str,
        counter: &str,
        limit: u64,
        what: &str,
    ) -> Result<Option<Quota>, ServiceError> {
        if limit == 0 {
            return Ok(None);
        }
        let reset = self.clock.next_midnight().unix_timestamp().max(0) as u64;
        let retry_after = self.clock.until_midnight();
        match store::take(conn, subject, counter, &self.clock.today(), limit)? {
            Some(n) => Ok(Some(Quota {
                limit,
                remaining: limit.saturating_sub(n),
                reset,
                retry_after,
            })),
            None => Err(ServiceError::DailyQuotaSpent {
                message: format!(
                    "{what} ({limit}) is spent; it starts again at the next UTC midnight"
                ),
                quota: Quota {
                    limit,
                    remaining: 0,
                    reset,
                    retry_after,
                },
            }),
        }
    }
}

fn require_feature(plan: &Plan, feature: Feature) -> Result<(), ServiceError> {
    if plan.has(feature) {
        Ok(())
    } else {
        Err(ServiceError::PlanRequired(format!(
            "{} requires a plan with the `{}` feature; the organization's plan `{}` does not \
             include it",
            feature.describe(),
            feature.key(),
            plan.id
        )))
    }
}

/// Plans per request: the API-key gate, assignments through the admin API and the
/// console, the subscription view.
#[derive(Debug, Clone)]
pub struct PlanService {
    store: Store,
    rules: PlanRules,
    cache: Arc<Cache>,
    api_requests: Arc<usage::DailyCounts>,
}

impl PlanService {
    pub fn new(store: Store, rules: PlanRules) -> Self {
        Self {
            store,
            rules,
            cache: Arc::new(Cache::default()),
            api_requests: Arc::new(usage::DailyCounts::default()),
        }
    }

    pub fn rules(&self) -> &PlanRules {
        &self.rules
    }

    /// The gate of a request made with an API key: the organization's plan must include
    /// `api_access` (403 `PLAN_REQUIRED`), and the request is counted against the plan's
    /// daily requests per key and per organization (429 `QUOTA_EXCEEDED` once spent,
    /// counting nothing). Returns the tighter quota's standing, if the plan has one.
    /// Sessions pass untouched.
    pub async fn admit_key(&self, principal: &Principal) -> Result<Option<Quota>, ServiceError> {
        if self.rules.unlimited() {
            return Ok(None);
        }
        let Some(key) = principal.key() else {
            return Ok(None);
        };
        let (org, key_id) = (key.org_id, key.key_id);
        let current = self.cached_plan(org).await?;
        require_feature(&current.plan, Feature::ApiAccess)?;
        let limits = current.plan.limits;
        let (per_key, per_org) = (
            limits.api_requests_per_day_per_key,
            limits.api_requests_per_day_per_org,
        );
        if per_key == 0 && per_org == 0 {
            return Ok(None);
        }
        let takes: Vec<usage::Take> = [
            (
                key_id.to_string(),
                per_key,
                "the API key's daily request quota",
            ),
            (
                org.to_string(),
                per_org,
                "the organization's daily quota of API requests",
            ),
        ]
        .into_iter()
        .filter(|(_, limit, _)| *limit > 0)
        .map(|(subject, limit, what)| usage::Take {
            subject,
            limit,
            what,
        })
        .collect();
        let reset = self.rules.clock.next_midnight().unix_timestamp().max(0) as u64;
        let retry_after = self.rules.clock.until_midnight();
        let day = self.rules.clock.today();
        match self.api_requests.take(&self.store, &day, &takes).await? {
            Ok(remaining) => Ok(usage::tightest(&takes, &remaining, reset, retry_after)),
            Err(spent) => Err(ServiceError::DailyQuotaSpent {
                message: format!(
                    "{} ({}) is spent; it starts again at the next UTC midnight",
                    spent.what, spent.limit
                ),
                quota: Quota {
                    limit: spent.limit,
                    remaining: 0,
                    reset,
                    retry_after,
                },
            }),
        }
    }

    /// Writes the API requests counted since the last flush (every second while serving,
    /// and at shutdown): see `usage`.
    pub async fn flush_usage(&self) -> Result<usize, ServiceError> {
        self.api_requests
            .flush(&self.store, &self.rules.clock.today())
            .await
    }

    /// The organization's plan, from the cache while no assignment has changed.
    async fn cached_plan(&self, org: OrgId) -> Result<CurrentPlan, ServiceError> {
        let version = self.version();
        if let Some(version) = version
            && let Some(assignment) = self.cache.get(org, version)
        {
            return Ok(self.rules.effective(assignment));
        }
        let assignment = read(&self.store, move |conn| Ok(store::find(conn, org)?)).await?;
        if let Some(stamp) = version
            && self.version() == Some(stamp)
        {
            self.cache.put(org, stamp, assignment.clone());
        }
        Ok(self.rules.effective(assignment))
    }

    fn version(&self) -> Option<i64> {
        match self.store.credential_version() {
            Ok(version) => Some(version),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the credential version; reading the plan");
                None
            }
        }
    }

    /// Assigns a plan through the admin API: instance admins only.
    pub async fn assign(
        &self,
        principal: &Principal,
        org: OrgId,
        plan: String,
        ends_at: Option<String>,
        ctx: RequestContext,
    ) -> Result<PlanChange, ServiceError> {
        super::admin::require_instance_admin(principal)?;
        let rules = self.rules.clone();
        let change = NewAssignment {
            org,
            plan,
            ends_at,
            set_by: Some(principal.user_id),
            set_via: "admin_api".to_owned(),
        };
        write(&self.store, move |tx| rules.assign_in(tx, &ctx, change)).await
    }

    /// The configured plans, for the admin console: instance admins only.
    pub fn catalog(&self, principal: &Principal) -> Result<Vec<Arc<Plan>>, ServiceError> {
        super::admin::require_instance_admin(principal)?;
        Ok(self.rules.plans())
    }

    /// An organization's plan now, for the admin console: instance admins only; an
    /// unknown organization is 404.
    pub async fn of_org(
        &self,
        principal: &Principal,
        org: OrgId,
    ) -> Result<CurrentPlan, ServiceError> {
        super::admin::require_instance_admin(principal)?;
        let rules = self.rules.clone();
        read(&self.store, move |conn| {
            if organizations::find(conn, org)?.is_none() {
                return Err(ServiceError::NotFound("organization"));
            }
            rules.current_in(conn, org)
        })
        .await
    }

    /// Assigns a plan from the console (`sealbox admin set-plan`).
    pub async fn assign_from_console(
        &self,
        org: OrgId,
        plan: String,
        ends_at: Option<String>,
        ctx: RequestContext,
    ) -> Result<PlanChange, ServiceError> {
        let rules = self.rules.clone();
        let change = NewAssignment {
            org,
            plan,
            ends_at,
            set_by: None,
            set_via: "cli".to_owned(),
        };
        write(&self.store, move |tx| rules.assign_in(tx, &ctx, change)).await
    }

    /// The organization's subscription: its plan now and what it has used. Owners and
    /// members whose role holds `billing:read` (and keys with that scope); another
    /// tenant's organization is 404.
    pub async fn subscription(
        &self,
        principal: &Principal,
        org: OrgId,
    ) -> Result<Subscription, ServiceError> {
        let principal = principal.clone();
        let rules = self.rules.clone();
        let counted = self
            .api_requests
            .used(&org.to_string(), &rules.clock.today());
        read(&self.store, move |conn| {
            let access = super::access::in_org(conn, &principal, org)?;
            access.require(crate::auth::Permission::BillingRead)?;
            let current = rules.current_in(conn, org)?;
            let subject = org.to_string();
            let usage = Usage {
                storage_bytes: crate::store::files::org_usage(conn, org)?.max(0) as u64,
                members: store::active_members(conn, org)?,
                webhooks: crate::store::webhooks::count_for_org(conn, org)?.max(0) as u64,
                transfers_today: rules.used_today_in(conn, &subject, TRANSFERS)?,
                // What this process counted is ahead of the store by up to a second.
                api_requests_today: match counted {
                    Some(n) => n,
                    None => rules.used_today_in(conn, &subject, API_REQUESTS)?,
                },
                day: rules.clock.today(),
                resets_at: format_rfc3339(rules.clock.next_midnight()),
            };
            Ok(Subscription { current, usage })
        })
        .await
    }

    /// Forgets the daily counters of days gone by.
    pub async fn forget_old_usage(&self) -> Result<usize, ServiceError> {
        if self.rules.unlimited() {
            return Ok(0);
        }
        let today = self.rules.clock.today();
        write(&self.store, move |tx| Ok(store::forget_before(tx, &today)?)).await
    }
}

/// How long a cached assignment is trusted at most, whatever the version says.
const TTL: Duration = Duration::from_secs(30);
/// Organizations cached; beyond it the map starts again.
const MAX_ENTRIES: usize = 10_000;

/// An organization's assignment, the credential version it was read at, and when.
type Entries = HashMap<OrgId, (i64, Instant, Option<Assignment>)>;

/// Assignments by organization, each stamped with the credential version it was read at.
#[derive(Debug, Default)]
struct Cache {
    entries: Mutex<Entries>,
}

impl Cache {
    fn get(&self, org: OrgId, version: i64) -> Option<Option<Assignment>> {
        let entries = self.lock();
        let (stamp, at, assignment) = entries.get(&org)?;
        (*stamp == version && at.elapsed() < TTL).then(|| assignment.clone())
    }

    fn put(&self, org: OrgId, version: i64, assignment: Option<Assignment>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (stamp, at, _)| *stamp == version && at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(org, (version, Instant::now(), assignment));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .expect("the plan cache is never poisoned")
    }
}
