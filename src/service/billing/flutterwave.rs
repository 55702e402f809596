//! Flutterwave: Standard payments (`POST /v3/payments`, JSON, Bearer secret key; with
//! `payment_plan` the customer is subscribed) and its webhook check: the `verif-hash`
//! header equals the secret hash set on the dashboard, and where
//! `require_signature_header` is on, `flutterwave-signature` is the base64 HMAC-SHA256 of
//! the raw body keyed by that secret hash
//! (<https://developer.flutterwave.com/docs/webhooks>).

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2_0_11::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    Action, CheckoutRequest, CreatedCheckout, Event, InvoiceFacts, ProcessorError, Refusal, meta,
    str_at, synthetic_id,
};
use crate::config::billing::ProcessorAccount;

/// The header carrying the secret hash.
pub const HASH_HEADER: &str = "verif-hash";
/// The header carrying the body's HMAC, where required.
pub const SIGNATURE_HEADER: &str = "flutterwave-signature";

/// Creates a hosted payment link for the plan's payment plan.
pub async fn create_checkout(
    client: &reqwest::Client,
    account: &ProcessorAccount,
    request: &CheckoutRequest<'_>,
) -> Result<CreatedCheckout, ProcessorError> {
    let mut body = json!({
        "tx_ref": request.reference,
        "amount": request.amount,
        "redirect_url": request.success_url,
        "payment_plan": request.code,
        "customer": {"email": request.email},
        "meta": {
            "sealbox_checkout": request.reference,
            "sealbox_organization": request.org.to_string(),
            "sealbox_plan": request.plan,
        },
        "customizations": {"title": "sealbox"},
    });
    if !request.currency.is_empty() {
        body["currency"] = json!(request.currency);
    }
    let response = client
        .post(format!("{}/v3/payments", account.base_url))
        .bearer_auth(account.secret_key.expose())
        .json(&body)
        .send()
        .await?;
    let answer = super::json_answer(response).await?;
    if str_at(&answer, &["status"]) != Some("success") {
        return Err(ProcessorError::Answer("`status` is not \"success\""));
    }
    let url = str_at(&answer, &["data", "link"]).ok_or(ProcessorError::Answer("no `data.link`"))?;
    Ok(CreatedCheckout {
        url: url.to_owned(),
        provider_ref: None,
    })
}

/// Checks `verif-hash` (and `flutterwave-signature` where required), in constant time.
pub fn verify(
    account: &ProcessorAccount,
    hash: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), Refusal> {
    let hash = hash.ok_or(Refusal::Unsigned("no verif-hash header"))?;
    let secret = account.webhook_secret.expose().as_bytes();
    // Digests of equal length, so the comparison says nothing about the secret's length.
    let (given, expected) = (Sha256::digest(hash.as_bytes()), Sha256::digest(secret));
    let same = given.as_slice().ct_eq(expected.as_slice());
    if !bool::from(same) {
        return Err(Refusal::BadSignature);
    }
    if account.require_signature_header {
        let signature = signature.ok_or(Refusal::Unsigned("no flutterwave-signature header"))?;
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature.trim())
                .map_err(|_| Refusal::BadSignature)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(body);
        mac.verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;
    }
    Ok(())
}

/// Reads a verified event (`event` at the top, or the older `event.type`).
pub fn parse(event: &Value, body: &[u8]) -> Result<Event, Refusal> {
    let kind = str_at(event, &["event"])
        .or_else(|| str_at(event, &["event.type"]))
        .or_else(|| str_at(event, &["type"]))
        .ok_or(Refusal::Malformed("the event has no `event`"))?;
    let data = event
        .get("data")
        .filter(|d| d.is_object())
        .ok_or(Refusal::Malformed("the event has no data object"))?;
    let customer = data
        .pointer("/customer/id")
        .and_then(scalar)
        .map(|id| format!("customer:{id}"));
    let references: Vec<String> = customer.into_iter().collect();
    let action = match kind {
        "charge.completed" | "CARD_TRANSACTION" => {
            let reference =
                str_at(data, &["tx_ref"]).ok_or(Refusal::Malformed("the charge has no tx_ref"))?;
            let checkout = meta(data, "meta", "sealbox_checkout")
                .unwrap_or(reference)
                .to_owned();
            let invoice = InvoiceFacts {
                id: data
                    .get("id")
                    .and_then(scalar)
                    .unwrap_or_else(|| reference.to_owned()),
                amount: data.get("amount").and_then(minor_units),
                currency: str_at(data, &["currency"]).map(str::to_owned),
                url: None,
                code: data.get("payment_plan").and_then(scalar),
            };
            if str_at(data, &["status"]) == Some("successful") {
                Action::Payment {
                    checkout: Some(checkout),
                    references,
                    invoice: Some(invoice),
                }
            } else {
                Action::Invoice {
                    paid: false,
                    checkout: Some(checkout),
                    references,
                    invoice,
                }
            }
        }
        "subscription.cancelled" => Action::SubscriptionCancelled {
            checkout: None,
            references,
        },
        other => return Err(Refusal::Unknown(other.to_owned())),
    };
    let id = match (
        event.get("id").and_then(scalar),
        data.get("id").and_then(scalar),
    ) {
        (Some(id), _) => id,
        (None, Some(subject)) => format!("{kind}:{subject}"),
        (None, None) => synthetic_id(body),
    };
    Ok(Event {
        id,
        kind: kind.to_owned(),
        action,
    })
}

/// A number or a non-empty string, as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Flutterwave amounts are in the currency's unit (`5000.5`): stored in hundredths.
fn minor_units(value: &Value) -> Option<i64> {
    let units = value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))?;
    let minor = (units * 100.0).round();
    (minor.is_finite() && minor.abs() < 9.0e15).then_some(minor as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::config::billing::Processor;

    fn account(signed: bool) -> ProcessorAccount {
        ProcessorAccount {
            processor: Processor::Flutterwave,
            base_url: "http://127.0.0.1:9".into(),
            secret_key: Secret::new("FLWSECK_TEST-x"),
            webhook_secret: Secret::new("my-secret-hash"),
            require_signature_header: signed,
            prices: Vec::new(),
        }
    }

    #[test]
    fn the_hash_must_match_and_the_signature_where_required() {
        let body = br#"{"event":"charge.completed"}"#;
        assert_eq!(
            verify(&account(false), Some("my-secret-hash"), None, body),
            Ok(())
        );
        assert_eq!(
            verify(&account(false), Some("my-secret-has"), None, body),
            Err(Refusal::BadSignature)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"my-secret-hash").unwrap();
        mac.update(body);
        let good = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            mac.finalize().into_bytes(),
        );
        assert_eq!(
            verify(&account(true), Some("my-secret-hash"), Some(&good), body),
            Ok(())
        );
        assert_eq!(
            verify(&account(true), Some("my-secret-hash"), Some(&good), b"{}"),
            Err(Refusal::BadSignature)
        );
        assert!(matches!(
            verify(&account(true), Some("my-secret-hash"), None, body),
            Err(Refusal::Unsigned(_))
        ));
    }

    #[test]
    fn amounts_are_kept_in_hundredths() {
        assert_eq!(minor_units(&json!(5000)), Some(500_000));
        assert_eq!(minor_units(&json!("12.34")), Some(1234));
    }
}
