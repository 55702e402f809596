//! Plans (`[[plans]]`) and `[billing]` (docs/billing.md): the limits and features an
//! organization's plan gives it, as the operator writes them, and their start-up checks.
//!
//! No `[[plans]]` at all is the implicit unlimited plan: every feature on, no limit, as
//! before plans existed. A limit of 0 is no limit, as `limits.org_quota_bytes` is.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A feature a plan may include; a plan without it refuses its use with 403
/// `PLAN_REQUIRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// Calls made with API keys (sessions of people are not affected).
    ApiAccess,
    /// End-to-end encrypted transfers (`"e2e": true` at transfer creation).
    E2eTransfers,
    /// Sign-in through an identity provider (`[[auth.oidc]]`, Google, GitHub).
    Sso,
    /// File conversions (`POST /v1/conversions`, docs/conversions.md).
    Conversions,
}

impl Feature {
    pub const ALL: [Feature; 4] = [
        Feature::ApiAccess,
        Feature::E2eTransfers,
        Feature::Sso,
        Feature::Conversions,
    ];

    /// The name in `features = [...]` and on the wire.
    pub fn key(self) -> &'static str {
        match self {
            Feature::ApiAccess => "api_access",
            Feature::E2eTransfers => "e2e_transfers",
            Feature::Sso => "sso",
            Feature::Conversions => "conversions",
        }
    }

    /// What the feature allows, for the messages that refuse it.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::ApiAccess => "API access",
            Feature::E2eTransfers => "End-to-end encrypted transfers",
            Feature::Sso => "Sign-in with an identity provider",
            Feature::Conversions => "File conversions",
        }
    }

    pub fn parse(key: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.key() == key)
    }
}

/// One `[[plans]]` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanConfig {
    /// In the API and `sealbox admin set-plan --plan`: lowercase letters, digits, `-`, `_`.
    pub id: String,
    /// Shown to people; empty: the id.
    pub name: String,
    pub limits: PlanLimitsConfig,
    /// Features the plan includes (`api_access`, `e2e_transfers`, `sso`, `conversions`).
    pub features: Vec<String>,
}

/// A plan's limits; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanLimitsConfig {
    /// Bytes the organization may store (files and uploads in progress).
    pub storage_bytes: u64,
    /// Largest file, in bytes (below `limits.max_file_bytes`, which applies to everyone).
    pub max_file_bytes: u64,
    /// Transfers created per UTC day, in the organization.
    pub transfers_per_day: u64,
    /// Conversions created per UTC day, in the organization (a bulk request counts each
    /// of its items).
    pub conversions_per_day: u64,
    /// Requests per UTC day made with one API key.
    pub api_requests_per_day_per_key: u64,
    /// Requests per UTC day made with all the organization's API keys together.
    pub api_requests_per_day_per_org: u64,
    /// Active members.
    pub members: u64,
    /// Webhooks.
    pub webhooks: u64,
}

/// `[billing]`: which plan an organization has when none is assigned, and the optional
/// payment processors (`config/billing.rs`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// The `[[plans]]` id of organizations without an assigned plan (and of those whose
    /// assignment has ended). Required once `[[plans]]` exist; empty without them.
    pub default_plan: String,
    pub stripe: super::billing::ProcessorConfig,
    pub paystack: super::billing::ProcessorConfig,
    pub flutterwave: super::billing::ProcessorConfig,
}

const MAX_ID_CHARS: usize = 32;

/// Checks `[[plans]]` and `billing.default_plan`; each message names the key.
pub fn validate(plans: &[PlanConfig], billing: &BillingConfig) -> Result<(), ConfigError> {
    let invalid = |message: String| Err(ConfigError::Invalid(message));
    let mut ids = BTreeSet::new();
    for (n, plan) in plans.iter().enumerate() {
        let id = &plan.id;
        let id_ok = (1..=MAX_ID_CHARS).contains(&id.chars().count())
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !id_ok {
            return invalid(format!(
                "plans[{n}].id: `{id}` must be 1 to {MAX_ID_CHARS} lowercase letters, digits, - or _"
            ));
        }
        if !ids.insert(id.as_str()) {
            return invalid(format!("plans[{n}].id: the plan id `{id}` is used twice"));
        }
        if plan.name.chars().count() > 100 {
            return invalid(format!("plans[{n}].name: at most 100 characters"));
        }
        let mut seen = BTreeSet::new();
        for feature in &plan.features {
            if Feature::parse(feature).is_none() {
                let known: Vec<_> = Feature::ALL.map(Feature::key).to_vec();
                return invalid(format!(
                    "plans[{n}].features: unknown feature `{feature}` (known: {})",
                    known.join(", ")
                ));
            }
            if !seen.insert(feature.as_str()) {
                return invalid(format!("plans[{n}].features: `{feature}` is listed twice"));
            }
        }
    }
    let default = &billing.default_plan;
    if plans.is_empty() {
        if default.is_empty() {
            return Ok(());
        }
        return invalid(format!(
            "billing.default_plan: `{default}` names a plan, but no [[plans]] are configured"
        ));
    }
    if default.is_empty() {
        return invalid(
            "billing.default_plan: required once [[plans]] are configured (the id of the plan \
             new organizations have)"
                .into(),
        );
    }
    if !ids.contains(default.as_str()) {
        return invalid(format!(
            "billing.default_plan: `{default}` is not the id of any [[plans]] entry"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, features: &[&str]) -> PlanConfig {
        PlanConfig {
            id: id.into(),
            features: features.iter().map(|f| f.to_string()).collect(),
            ..PlanConfig::default()
        }
    }

    fn message(plans: &[PlanConfig], default: &str) -> String {
        validate(
            plans,
            &BillingConfig {
                default_plan: default.into(),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn no_plans_and_no_default_is_the_unlimited_instance() {
        assert!(validate(&[], &BillingConfig::default()).is_ok());
        let plans = [plan("free", &[]), plan("pro", &["api_access", "sso"])];
        let billing = BillingConfig {
            default_plan: "free".into(),
            ..Default::default()
        };
        assert!(validate(&plans, &billing).is_ok());
    }

    #[test]
    fn each_mistake_names_its_key() {
        let twice = [plan("free", &[]), plan("free", &[])];
        assert!(message(&twice, "free").contains("plans[1].id"));
        let unknown = [plan("free", &["api_access", "teleport"])];
        let text = message(&unknown, "free");
        assert!(
            text.contains("plans[0].features") && text.contains("teleport"),
            "{text}"
        );
        assert!(message(&[plan("free", &[])], "gold").contains("billing.default_plan"));
        assert!(message(&[plan("free", &[])], "").contains("billing.default_plan"));
        assert!(message(&[], "free").contains("billing.default_plan"));
        assert!(message(&[plan("Free Plan", &[])], "x").contains("plans[0].id"));
    }
}
