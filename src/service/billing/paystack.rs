//! Paystack: transaction initialize (`POST /transaction/initialize`, JSON, Bearer secret
//! key; with `plan` the customer is subscribed once the charge succeeds) and its webhook
//! signature (`x-paystack-signature`: the hex HMAC-SHA512 of the raw body keyed by the
//! secret key), as <https://paystack.com/docs/payments/webhooks/> documents it.
//!
//! Paystack events carry no event id of their own: an event is identified by its type and
//! the id of what it is about (`charge.success:<transaction id>`), or failing that by the
//! SHA-256 of its body.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2_0_11::Sha512;

use super::{
    Action, CheckoutRequest, CreatedCheckout, Event, InvoiceFacts, ProcessorError, Refusal, meta,
    str_at, synthetic_id,
};
use crate::config::billing::ProcessorAccount;

/// The header Paystack signs deliveries in.
pub const SIGNATURE_HEADER: &str = "x-paystack-signature";

/// Initializes a transaction for the plan (its amount as configured), paid by `email`.
pub async fn create_checkout(
    client: &reqwest::Client,
    account: &ProcessorAccount,
    request: &CheckoutRequest<'_>,
) -> Result<CreatedCheckout, ProcessorError> {
    let mut body = json!({
        "email": request.email,
        "amount": request.amount,
        "plan": request.code,
        "reference": request.reference,
        "callback_url": request.success_url,
        "metadata": {
            "sealbox_checkout": request.reference,
            "sealbox_organization": request.org.to_string(),
            "sealbox_plan": request.plan,
        },
    });
    if !request.currency.is_empty() {
        body["currency"] = json!(request.currency);
    }
    let response = client
        .post(format!("{}/transaction/initialize", account.base_url))
        .bearer_auth(account.secret_key.expose())
        .json(&body)
        .send()
        .await?;
    let answer = super::json_answer(response).await?;
    if answer.get("status") != Some(&Value::Bool(true)) {
        return Err(ProcessorError::Answer("`status` is not true"));
    }
    let url = str_at(&answer, &["data", "authorization_url"])
        .ok_or(ProcessorError::Answer("no `data.authorization_url`"))?;
    Ok(CreatedCheckout {
        url: url.to_owned(),
        provider_ref: str_at(&answer, &["data", "access_code"]).map(str::to_owned),
    })
}

/// Checks `x-paystack-signature` against the raw body, in constant time.
pub fn verify(
    account: &ProcessorAccount,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Unsigned("no x-paystack-signature header"))?;
    let signature = data_encoding::HEXLOWER_PERMISSIVE
        .decode(header.trim().as_bytes())
        .map_err(|_| Refusal::BadSignature)?;
    let mut mac = Hmac::<Sha512>::new_from_slice(account.webhook_secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| Refusal::BadSignature)
}

/// Reads a verified event.
pub fn parse(event: &Value, body: &[u8]) -> Result<Event, Refusal> {
    let kind = str_at(event, &["event"]).ok_or(Refusal::Malformed("the event has no `event`"))?;
    let data = event
        .get("data")
        .filter(|d| d.is_object())
        .ok_or(Refusal::Malformed("the event has no data object"))?;
    let customer = str_at(data, &["customer", "customer_code"]).map(str::to_owned);
    let subscription = str_at(data, &["subscription_code"])
        .or_else(|| str_at(data, &["subscription", "subscription_code"]))
        .map(str::to_owned);
    let references: Vec<String> = subscription.iter().chain(&customer).cloned().collect();
    let plan_code = str_at(data, &["plan", "plan_code"]).map(str::to_owned);
    let action = match kind {
        "charge.success" => {
            let reference = str_at(data, &["reference"])
                .ok_or(Refusal::Malformed("the charge has no reference"))?;
            Action::Payment {
                checkout: Some(
                    meta(data, "metadata", "sealbox_checkout")
                        .unwrap_or(reference)
                        .to_owned(),
                ),
                references,
                invoice: Some(InvoiceFacts {
                    id: reference.to_owned(),
                    amount: data.get("amount").and_then(Value::as_i64),
                    currency: str_at(data, &["currency"]).map(str::to_owned),
                    url: None,
                    code: plan_code,
                }),
            }
        }
        "subscription.create" | "subscription.enable" => Action::SubscriptionUpdated {
            checkout: None,
            references,
            code: plan_code,
            active: str_at(data, &["status"]).is_none_or(|s| s == "active"),
            status: str_at(data, &["status"]).unwrap_or("active").to_owned(),
        },
        "subscription.not_renew" | "subscription.expiring_cards" => Action::SubscriptionUpdated {
            checkout: None,
            references,
            code: plan_code,
            active: false,
            status: str_at(data, &["status"])
                .unwrap_or("non-renewing")
                .to_owned(),
        },
        "subscription.disable" => Action::SubscriptionCancelled {
            checkout: None,
            references,
        },
        "invoice.create" | "invoice.update" | "invoice.payment_failed" => {
            let id = str_at(data, &["invoice_code"])
                .or_else(|| str_at(data, &["transaction", "reference"]))
                .ok_or(Refusal::Malformed("the invoice has no invoice_code"))?;
            let paid = kind != "invoice.payment_failed"
                && (data.get("paid") == Some(&Value::Bool(true))
                    || str_at(data, &["status"]) == Some("success"));
            if kind != "invoice.payment_failed" && !paid {
                // Created ahead of its charge: nothing is paid or failed yet.
                Action::Ignored("the invoice is not paid yet")
            } else {
                Action::Invoice {
                    paid,
                    checkout: None,
                    references,
                    invoice: InvoiceFacts {
                        id: id.to_owned(),
                        amount: data.get("amount").and_then(Value::as_i64),
                        currency: str_at(data, &["transaction", "currency"])
                            .or_else(|| str_at(data, &["currency"]))
                            .map(str::to_owned),
                        url: None,
                        code: plan_code,
                    },
                }
            }
        }
        other => return Err(Refusal::Unknown(other.to_owned())),
    };
    let subject = data
        .get("id")
        .and_then(|id| match id {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
        .or_else(|| str_at(data, &["invoice_code"]).map(str::to_owned))
        .or(subscription);
    Ok(Event {
        id: match subject {
            Some(subject) => format!("{kind}:{subject}"),
            None => synthetic_id(body),
        },
        kind: kind.to_owned(),
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::config::billing::Processor;

    #[test]
    fn the_signature_is_the_hex_hmac_sha512_of_the_body() {
        let account = ProcessorAccount {
            processor: Processor::Paystack,
            base_url: "http://127.0.0.1:9".into(),
            secret_key: Secret::new("sk_test_paystack"),
            webhook_secret: Secret::new("sk_test_paystack"),
            require_signature_header: false,
            prices: Vec::new(),
        };
        let body = br#"{"event":"charge.success","data":{"id":1}}"#;
        let mut mac = Hmac::<Sha512>::new_from_slice(b"sk_test_paystack").unwrap();
        mac.update(body);
        let good = data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes());
        assert_eq!(verify(&account, Some(&good), body), Ok(()));
        assert_eq!(
            verify(&account, Some(&good), b"{}"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(&account, Some("zz"), body),
            Err(Refusal::BadSignature)
        );
        assert!(matches!(
            verify(&account, None, body),
            Err(Refusal::Unsigned(_))
        ));
    }
}
