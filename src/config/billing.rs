//! Payment processors (`[billing.stripe]`, `[billing.paystack]`, `[billing.flutterwave]`;
//! docs/billing.md, "Payment processors"): the keys as an operator writes them, and the
//! resolved accounts ([`ProcessorAccount`]) with their secrets read from `*_file`.
//!
//! Every processor is optional. A processor with no secret key is simply not configured:
//! checkout with it answers 422 naming what is missing, and its inbound webhook refuses
//! every delivery.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{BillingConfig, ConfigError, Secret, read_secret};

/// Stripe's API, the default `base_url` of `[billing.stripe]`.
pub const STRIPE_API: &str = "https://api.stripe.com";
/// Paystack's API, the default `base_url` of `[billing.paystack]`.
pub const PAYSTACK_API: &str = "https://api.paystack.co";
/// Flutterwave's API, the default `base_url` of `[billing.flutterwave]`.
pub const FLUTTERWAVE_API: &str = "https://api.flutterwave.com";

/// One processor's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
    /// The API's base URL; the real one by default (tests point it at a local server).
    pub base_url: String,
    /// The secret API key (Stripe `sk_...`, Paystack `sk_...`, Flutterwave
    /// `FLWSECK-...`), sent as `Authorization: Bearer`. Paystack signs its webhooks with
    /// it too.
    pub secret_key: Secret,
    /// A file holding the secret key (one trailing newline removed).
    pub secret_key_file: PathBuf,
    /// What the processor signs its webhooks with: Stripe's endpoint secret (`whsec_...`),
    /// Flutterwave's secret hash. Paystack has none (it signs with the secret key).
    pub webhook_secret: Secret,
    pub webhook_secret_file: PathBuf,
    /// Flutterwave only: also require its `flutterwave-signature` header (base64
    /// HMAC-SHA256 of the raw body keyed by the secret hash).
    pub require_signature_header: bool,
    /// Which of the processor's prices or plans each sealbox plan is sold as.
    pub prices: Vec<PriceConfig>,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            secret_key: Secret::default(),
            secret_key_file: PathBuf::new(),
            webhook_secret: Secret::default(),
            webhook_secret_file: PathBuf::new(),
            require_signature_header: false,
            prices: Vec::new(),
        }
    }
}

/// One `prices` entry: a sealbox plan id and the processor's code for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PriceConfig {
    /// The sealbox plan id (`[[plans]]`).
    pub plan: String,
    /// Stripe: the price id (`price_...`); Paystack: the plan code (`PLN_...`);
    /// Flutterwave: the payment plan id.
    pub code: String,
    /// Paystack and Flutterwave: the amount their API requires with the plan, as the
    /// processor writes it (Paystack in the currency's subunit, `500000` for NGN 5,000;
    /// Flutterwave in the currency's unit, `5000`). Unused by Stripe (the price has it).
    pub amount: String,
    /// Paystack and Flutterwave: the ISO currency code (`NGN`); empty: the account's.
    pub currency: String,
}

/// Which processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Processor {
    Stripe,
    Paystack,
    Flutterwave,
}

impl Processor {
    pub const ALL: [Processor; 3] = [
        Processor::Stripe,
        Processor::Paystack,
        Processor::Flutterwave,
    ];

    /// The name in requests, paths, config sections and stored rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Processor::Stripe => "stripe",
            Processor::Paystack => "paystack",
            Processor::Flutterwave => "flutterwave",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    fn default_base_url(self) -> &'static str {
        match self {
            Processor::Stripe => STRIPE_API,
            Processor::Paystack => PAYSTACK_API,
            Processor::Flutterwave => FLUTTERWAVE_API,
        }
    }

    /// Whether its webhooks are signed with a secret of their own.
    fn has_webhook_secret(self) -> bool {
        self != Processor::Paystack
    }
}

impl std::fmt::Display for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One processor as the rest of sealbox reads it: base URL, secrets read, prices.
#[derive(Debug, Clone)]
pub struct ProcessorAccount {
    pub processor: Processor,
    /// Without a trailing slash.
    pub base_url: String,
    /// Empty when not configured.
    pub secret_key: Secret,
    /// What inbound webhooks are checked with: Stripe's endpoint secret, Flutterwave's
    /// secret hash, Paystack's secret key.
    pub webhook_secret: Secret,
    pub require_signature_header: bool,
    pub prices: Vec<PriceConfig>,
}

impl ProcessorAccount {
    /// The keys that still need a value before this processor can be used, named as an
    /// operator sets them; empty when it is configured.
    pub fn missing(&self) -> Vec<String> {
        let section = format!("billing.{}", self.processor);
        let mut missing = Vec::new();
        if self.secret_key.is_empty() {
            missing.push(format!("{section}.secret_key (or secret_key_file)"));
        }
        if self.processor.has_webhook_secret() && self.webhook_secret.is_empty() {
            missing.push(format!("{section}.webhook_secret (or webhook_secret_file)"));
        }
        missing
    }

    /// The price entry of a sealbox plan.
    pub fn price_of(&self, plan: &str) -> Option<&PriceConfig> {
        self.prices.iter().find(|p| p.plan == plan)
    }

    /// The sealbox plan sold as the processor's `code`.
    pub fn plan_of(&self, code: &str) -> Option<&str> {
        self.prices
            .iter()
            .find(|p| p.code == code)
            .map(|p| p.plan.as_str())
    }
}

/// Checks the processors of `[billing]` (`plans`: the configured plan ids, which every
/// `prices` entry must name) and reads their secrets: one account per processor, configured or not.
pub fn resolve(
    billing: &BillingConfig,
    plans: &[&str],
) -> Result<Vec<ProcessorAccount>, ConfigError> {
    Processor::ALL
        .into_iter()
        .map(|processor| {
            let entry = match processor {
                Processor::Stripe => &billing.stripe,
                Processor::Paystack => &billing.paystack,
                Processor::Flutterwave => &billing.flutterwave,
            };
            resolve_one(processor, entry, plans)
        })
        .collect()
}

fn resolve_one(
    processor: Processor,
    entry: &ProcessorConfig,
    plans: &[&str],
) -> Result<ProcessorAccount, ConfigError> {
    let section = format!("billing.{processor}");
    let base_url = match entry.base_url.trim() {
        "" => processor.default_base_url().to_owned(),
        url => url.trim_end_matches('/').to_owned(),
    };
    if url::Url::parse(&base_url)
        .map(|u| !matches!(u.scheme(), "https" | "http") || u.host().is_none())
        .unwrap_or(true)
    {
        return Err(invalid(format!(
            "{section}.base_url `{base_url}` is not an http(s) URL"
        )));
    }
    let secret_key = read_secret(
        &section,
        "secret_key",
        &entry.secret_key,
        &entry.secret_key_file,
    )?;
    let webhook_secret = if processor.has_webhook_secret() {
        read_secret(
            &section,
            "webhook_secret",
            &entry.webhook_secret,
            &entry.webhook_secret_file,
        )?
    } else {
        if !entry.webhook_secret.is_empty() || !entry.webhook_secret_file.as_os_str().is_empty() {
            return Err(invalid(format!(
                "{section}.webhook_secret: Paystack signs webhooks with the secret key; \
                 leave webhook_secret out"
            )));
        }
        secret_key.clone()
    };
    if entry.require_signature_header && processor != Processor::Flutterwave {
        return Err(invalid(format!(
            "{section}.require_signature_header applies to Flutterwave only"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (n, price) in entry.prices.iter().enumerate() {
        let at = format!("{section}.prices[{n}]");
        if price.plan.trim().is_empty() || price.code.trim().is_empty() {
            return Err(invalid(format!("{at} needs both plan and code")));
        }
        if !plans.contains(&price.plan.as_str()) {
            return Err(invalid(format!(
                "{at}.plan: `{}` is not a [[plans]] id",
                price.plan
            )));
        }
        if !seen.insert(price.plan.as_str()) {
            return Err(invalid(format!(
                "{at}: plan `{}` is listed twice",
                price.plan
            )));
        }
        if processor != Processor::Stripe {
            let amount_ok = !price.amount.is_empty()
                && price.amount.len() <= 18
                && price.amount.chars().all(|c| c.is_ascii_digit() || c == '.')
                && price.amount.parse::<f64>().is_ok_and(|a| a > 0.0);
            if !amount_ok {
                return Err(invalid(format!(
                    "{at}.amount: {processor} needs the plan's amount, a positive number such \
                     as \"5000\""
                )));
            }
        }
    }
    Ok(ProcessorAccount {
        processor,
        base_url,
        secret_key,
        webhook_secret,
        require_signature_header: entry.require_signature_header,
        prices: entry.prices.clone(),
    })
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unconfigured_processor_names_what_is_missing() {
        let accounts = resolve(&BillingConfig::default(), &[]).unwrap();
        assert_eq!(accounts.len(), 3);
        assert_eq!(accounts[0].base_url, STRIPE_API);
        assert_eq!(
            accounts[0].missing(),
            [
                "billing.stripe.secret_key (or secret_key_file)",
                "billing.stripe.webhook_secret (or webhook_secret_file)"
            ]
        );
        assert_eq!(
            accounts[1].missing(),
            ["billing.paystack.secret_key (or secret_key_file)"]
        );
    }

    #[test]
    fn secrets_come_from_files_and_never_show_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("stripe-key");
        std::fs::write(&key, "sk_test_very_secret\n").unwrap();
        let mut billing = BillingConfig::default();
        billing.stripe.secret_key_file = key.clone();
        billing.stripe.webhook_secret = Secret::new("whsec_also_secret");
        billing.stripe.base_url = "http://127.0.0.1:9/".into();
        let accounts = resolve(&billing, &[]).unwrap();
        assert_eq!(accounts[0].secret_key.expose(), "sk_test_very_secret");
        assert_eq!(accounts[0].base_url, "http://127.0.0.1:9");
        assert!(accounts[0].missing().is_empty());
        let shown = format!("{accounts:?} {billing:?}");
        assert!(!shown.contains("very_secret") && !shown.contains("also_secret"));

        billing.stripe.secret_key = Secret::new("inline");
        assert!(resolve(&billing, &[]).is_err(), "inline and file together");
    }

    #[test]
    fn prices_need_a_code_and_for_paystack_an_amount() {
        let mut billing = BillingConfig::default();
        billing.paystack.prices = vec![PriceConfig {
            plan: "team".into(),
            code: "PLN_x".into(),
            amount: String::new(),
            currency: "NGN".into(),
        }];
        assert!(resolve(&billing, &["team"]).is_err(), "no amount");
        billing.paystack.prices[0].amount = "500000".into();
        assert!(resolve(&billing, &["free"]).is_err(), "not a plan");
        let accounts = resolve(&billing, &["team"]).unwrap();
        assert_eq!(accounts[1].plan_of("PLN_x"), Some("team"));
        assert_eq!(accounts[1].price_of("team").unwrap().code, "PLN_x");
    }
}
