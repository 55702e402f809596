//! Stripe: Checkout Sessions (`POST /v1/checkout/sessions`, form-encoded, Bearer secret
//! key) and its webhook signature (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, the hex
//! HMAC-SHA256 of `"{t}.{raw body}"` keyed by the endpoint secret, 300 s tolerance), as
//! <https://docs.stripe.com/webhooks#verify-manually> documents it.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2_0_11::Sha256;
use subtle::ConstantTimeEq;

use super::{
    Action, CheckoutRequest, CreatedCheckout, Event, InvoiceFacts, ProcessorError, Refusal, meta,
    str_at,
};
use crate::config::billing::ProcessorAccount;

/// The header Stripe signs deliveries in.
pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// How far a signature's timestamp may be from now, in seconds (Stripe's libraries' default).
pub const TOLERANCE_SECS: i64 = 300;

/// Creates a Checkout Session in subscription mode for the plan's price.
pub async fn create_checkout(
    client: &reqwest::Client,
    account: &ProcessorAccount,
    request: &CheckoutRequest<'_>,
) -> Result<CreatedCheckout, ProcessorError> {
    let org = request.org.to_string();
    let form: Vec<(&str, &str)> = vec![
        ("mode", "subscription"),
        ("line_items[0][price]", request.code),
        ("line_items[0][quantity]", "1"),
        ("success_url", request.success_url),
        ("client_reference_id", request.reference),
        ("customer_email", request.email),
        ("metadata[sealbox_checkout]", request.reference),
        ("metadata[sealbox_organization]", org.as_str()),
        ("metadata[sealbox_plan]", request.plan),
        (
            "subscription_data[metadata][sealbox_checkout]",
            request.reference,
        ),
        (
            "subscription_data[metadata][sealbox_organization]",
            org.as_str(),
        ),
        ("subscription_data[metadata][sealbox_plan]", request.plan),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = client
        .post(format!("{}/v1/checkout/sessions", account.base_url))
        .bearer_auth(account.secret_key.expose())
        // Stripe replays the first answer to a retry with the same key.
        .header("Idempotency-Key", request.reference)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await?;
    let answer = super::json_answer(response).await?;
    let url = str_at(&answer, &["url"]).ok_or(ProcessorError::Answer("no `url`"))?;
    Ok(CreatedCheckout {
        url: url.to_owned(),
        provider_ref: str_at(&answer, &["id"]).map(str::to_owned),
    })
}

/// Checks `Stripe-Signature` against the raw body, in constant time.
pub fn verify(
    account: &ProcessorAccount,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Unsigned("no Stripe-Signature header"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => {
                if let Ok(bytes) = data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Refusal::Unsigned("Stripe-Signature has no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(Refusal::Unsigned("Stripe-Signature has no v1= signature"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(account.webhook_secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // One HMAC over the body, however many candidates the header names (each a pass over
    // up to 256 KiB, before anything is authenticated); every candidate is compared, in
    // constant time, with no early exit.
    let expected = mac.finalize().into_bytes();
    let matched = signatures.iter().fold(false, |ok, sig| {
        bool::from(expected.as_slice().ct_eq(sig.as_slice())) | ok
    });
    if !matched {
        return Err(Refusal::BadSignature);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(Refusal::Stale);
    }
    Ok(())
}

/// Reads a verified event: its id, type and what it means for sealbox.
pub fn parse(event: &Value) -> Result<Event, Refusal> {
    let id = str_at(event, &["id"]).ok_or(Refusal::Malformed("the event has no id"))?;
    let kind = str_at(event, &["type"]).ok_or(Refusal::Malformed("the event has no type"))?;
    let object = event
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or(Refusal::Malformed("the event has no data.object"))?;
    let action = match kind {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let paid = matches!(
                str_at(object, &["payment_status"]),
                Some("paid" | "no_payment_required")
            );
            if paid {
                Action::Payment {
                    checkout: str_at(object, &["client_reference_id"])
                        .or_else(|| meta(object, "metadata", "sealbox_checkout"))
                        .map(str::to_owned),
                    references: references(object, &["subscription", "customer"]),
                    invoice: None,
                }
            } else {
                Action::Ignored("the checkout is not paid yet")
            }
        }
        "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed" => {
            let details = object
                .pointer("/parent/subscription_details")
                .or_else(|| object.get("subscription_details"));
            let mut refs = references(object, &["subscription", "customer"]);
            if let Some(sub) = details.and_then(|d| str_at(d, &["subscription"])) {
                refs.push(sub.to_owned());
            }
            Action::Invoice {
                paid: kind != "invoice.payment_failed",
                checkout: details
                    .and_then(|d| meta(d, "metadata", "sealbox_checkout"))
                    .map(str::to_owned),
                references: refs,
                invoice: InvoiceFacts {
                    id: str_at(object, &["id"])
                        .ok_or(Refusal::Malformed("the invoice has no id"))?
                        .to_owned(),
                    amount: object
                        .get(if kind == "invoice.payment_failed" {
                            "amount_due"
                        } else {
                            "amount_paid"
                        })
                        .and_then(Value::as_i64),
                    currency: str_at(object, &["currency"]).map(str::to_ascii_uppercase),
                    url: str_at(object, &["hosted_invoice_url"]).map(str::to_owned),
                    code: object
                        .pointer("/lines/data/0/price/id")
                        .or_else(|| object.pointer("/lines/data/0/pricing/price_details/price"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
            }
        }
        "customer.subscription.created" | "customer.subscription.updated" => {
            let status = str_at(object, &["status"]).unwrap_or("");
            let checkout = meta(object, "metadata", "sealbox_checkout").map(str::to_owned);
            let refs = references(object, &["id", "customer"]);
            match status {
                "canceled" | "unpaid" | "incomplete_expired" => Action::SubscriptionCancelled {
                    checkout,
                    references: refs,
                },
                _ => Action::SubscriptionUpdated {
                    checkout,
                    references: refs,
                    code: object
                        .pointer("/items/data/0/price/id")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    active: matches!(status, "active" | "trialing"),
                    status: status.to_owned(),
                },
            }
        }
        "customer.subscription.deleted" => Action::SubscriptionCancelled {
            checkout: meta(object, "metadata", "sealbox_checkout").map(str::to_owned),
            references: references(object, &["id", "customer"]),
        },
        other => return Err(Refusal::Unknown(other.to_owned())),
    };
    Ok(Event {
        id: id.to_owned(),
        kind: kind.to_owned(),
        action,
    })
}

/// The string fields (ids) of `object` named by `keys`; expanded objects give their `id`.
fn references(object: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .filter_map(|key| match object.get(*key) {
            Some(Value::String(id)) => Some(id.clone()),
            Some(expanded @ Value::Object(_)) => str_at(expanded, &["id"]).map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::config::billing::Processor;

    fn account() -> ProcessorAccount {
        ProcessorAccount {
            processor: Processor::Stripe,
            base_url: "http://127.0.0.1:9".into(),
            secret_key: Secret::new("sk_test"),
            webhook_secret: Secret::new("whsec_test_secret"),
            require_signature_header: false,
            prices: Vec::new(),
        }
    }

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    }

    #[test]
    fn a_signature_is_checked_against_every_v1_and_the_clock() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_700_000_000;
        let good = sign("whsec_test_secret", now, body);
        let bad = sign("whsec_other", now, body);
        let a = account();
        assert_eq!(
            verify(&a, Some(&format!("t={now},v1={good}")), body, now),
            Ok(())
        );
        assert_eq!(
            verify(
                &a,
                Some(&format!("t={now},v1={bad},v1={good},v0=00")),
                body,
                now
            ),
            Ok(())
        );
        assert_eq!(
            verify(&a, Some(&format!("t={now},v1={bad}")), body, now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(&a, Some(&format!("t={now},v1={good}")), b"{}", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(&a, Some(&format!("t={now},v1={good}")), body, now + 301),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify(&a, Some(&format!("t={now},v1={good}")), body, now + 300),
            Ok(())
        );
        assert!(matches!(
            verify(&a, None, body, now),
            Err(Refusal::Unsigned(_))
        ));
        assert!(matches!(
            verify(&a, Some(&format!("v1={good}")), body, now),
            Err(Refusal::Unsigned(_))
        ));
    }
}
