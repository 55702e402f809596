//! Payment processors (docs/billing.md, "Payment processors"): checkouts against a local
//! stand-in for each processor's create-checkout API (`tests/billing/fake_processor.py`,
//! which records what it got), and inbound webhooks signed the way the processors sign:
//! Stripe's with its official library (`tests/billing/stripe_sign.py`), Paystack's and
//! Flutterwave's as their documentation says (Python's `hmac`, independently of sealbox).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use reqwest::Method;
use sealbox::config::Secret;
use sealbox::config::billing::PriceConfig;
use serde_json::{Value, json};

use crate::support::{MEMBER_PASSWORD, TestApp, assert_envelope, json_of, s, venv_python};

const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/billing/fake_processor.py"
);
const STRIPE_SIGN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/billing/stripe_sign.py");

const STRIPE_KEY: &str = "sk_test_51Sealbox0000000000";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";
const PAYSTACK_KEY: &str = "sk_test_paystack_0123456789";
const FLUTTERWAVE_KEY: &str = "FLWSECK_TEST-0123456789abcdef-X";
const FLUTTERWAVE_HASH: &str = "flw-secret-hash-0123";

/// The local stand-in for the processors' APIs.
struct FakeProcessor {
    child: Child,
    base: String,
}

impl FakeProcessor {
    fn start() -> Self {
        let mut child = Command::new(venv_python())
            .arg(FAKE)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the venv's python runs");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("fake processor said {first:?}"))
            .to_owned();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Every create call it received, oldest first.
    async fn seen(&self) -> Vec<Value> {
        let seen: Value = reqwest::get(format!("{}/_seen", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.as_array().unwrap().clone()
    }

    async fn fail_next(&self) {
        reqwest::Client::new()
            .post(format!("{}/_fail", self.base))
            .send()
            .await
            .unwrap();
    }
}

impl Drop for FakeProcessor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn price(plan: &str, code: &str, amount: &str, currency: &str) -> PriceConfig {
    PriceConfig {
        plan: plan.into(),
        code: code.into(),
        amount: amount.into(),
        currency: currency.into(),
    }
}

fn plan(id: &str) -> sealbox::config::PlanConfig {
    sealbox::config::PlanConfig {
        id: id.into(),
        name: id.into(),
        ..Default::default()
    }
}

/// An instance with plans `free` (the default) and `team`, and all three processors
/// pointed at `fake`; Stripe's secret key comes from a file.
async fn billed_app(fake: &FakeProcessor) -> (TestApp, tempfile::TempDir) {
    billed_app_with(fake, |_| {}).await
}

/// [`billed_app`], then `adjust`.
async fn billed_app_with(
    fake: &FakeProcessor,
    adjust: impl FnOnce(&mut sealbox::config::Config) + Send + 'static,
) -> (TestApp, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("stripe-secret-key");
    std::fs::write(&key_file, format!("{STRIPE_KEY}\n")).unwrap();
    let base = fake.base.clone();
    let app = TestApp::spawn_with(move |config| {
        config.plans = vec![plan("free"), plan("team")];
        config.billing.default_plan = "free".into();
        let stripe = &mut config.billing.stripe;
        stripe.base_url = base.clone();
        stripe.secret_key_file = key_file;
        stripe.webhook_secret = Secret::new(STRIPE_WEBHOOK_SECRET);
        stripe.prices = vec![price("team", "price_team_monthly", "", "")];
        let paystack = &mut config.billing.paystack;
        paystack.base_url = base.clone();
        paystack.secret_key = Secret::new(PAYSTACK_KEY);
        paystack.prices = vec![price("team", "PLN_team_monthly", "500000", "NGN")];
        let flutterwave = &mut config.billing.flutterwave;
        flutterwave.base_url = base;
        flutterwave.secret_key = Secret::new(FLUTTERWAVE_KEY);
        flutterwave.webhook_secret = Secret::new(FLUTTERWAVE_HASH);
        flutterwave.prices = vec![price("team", "4975", "5000", "NGN")];
        adjust(config);
    })
    .await;
    (app, secrets)
}

/// Sets up the admin (owner of Acme); returns (token, Acme's id).
async fn owner(app: &TestApp) -> (String, String) {
    let pair = app.setup_admin().await;
    (
        s(&pair, "accessToken"),
        s(&pair["user"]["organizations"][0], "id"),
    )
}

async fn checkout(
    app: &TestApp,
    token: &str,
    org: &str,
    body: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/subscriptions/{org}/checkout")))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

/// The organization's current plan id, as `GET /v1/subscriptions/{id}` says.
async fn plan_of(app: &TestApp, token: &str, org: &str) -> String {
    let sub = json_of(
        app.get_as(&format!("/v1/subscriptions/{org}"), token).await,
        200,
    )
    .await;
    s(&sub, "plan")
}

/// A `Stripe-Signature` header for `payload` at `timestamp`, made by stripe-python.
fn stripe_signature(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut child = Command::new(venv_python())
        .args([STRIPE_SIGN, secret, &timestamp.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "stripe_sign.py failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The lower-case hex HMAC of `body` under `key` (`sha512` or `sha256`), or its base64
/// with `b64`, computed by Python's standard library as the processors' docs show.
fn python_hmac(digest: &str, key: &str, body: &[u8], b64: bool) -> String {
    let script = format!(
        "import base64, hashlib, hmac, sys; m = hmac.new(sys.argv[1].encode(), \
         sys.stdin.buffer.read(), hashlib.{digest}); \
         print(base64.b64encode(m.digest()).decode() if {b64} else m.hexdigest())",
        b64 = if b64 { "True" } else { "False" }
    );
    let mut child = Command::new(venv_python())
        .args(["-c", &script, key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn deliver(
    app: &TestApp,
    provider: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/webhooks/{provider}")))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn stripe_deliver(app: &TestApp, body: &[u8], timestamp: i64) -> reqwest::Response {
    let header = stripe_signature(STRIPE_WEBHOOK_SECRET, timestamp, body);
    deliver(app, "stripe", &[("Stripe-Signature", &header)], body).await
}

/// Refused deliveries in the instance's audit chain: (reason) for each, oldest first.
fn refusals(app: &TestApp) -> Vec<String> {
    app.query(
        "SELECT details FROM audit_log WHERE action = 'billing.webhook' AND outcome = 'failure'
         ORDER BY seq",
        |row| row.get::<_, String>(0),
    )
    .into_iter()
    .map(|details| {
        let details: Value = serde_json::from_str(&details).unwrap();
        s(&details, "reason")
    })
    .collect()
}

fn outbox(app: &TestApp, prefix: &str) -> Vec<(String, Value)> {
    app.query("SELECT type, data FROM outbox_events ORDER BY seq", |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })
    .into_iter()
    .filter(|(kind, _)| kind.starts_with(prefix))
    .map(|(kind, data)| (kind, serde_json::from_str(&data).unwrap()))
    .collect()
}

fn count(app: &TestApp, sql: &str) -> i64 {
    app.query(sql, |row| row.get::<_, i64>(0))[0]
}

#[tokio::test]
async fn checkout_sends_each_processor_its_documented_request_and_answers_its_url() {
    let fake = FakeProcessor::start();
    let (app, _secrets) = billed_app(&fake).await;
    let (token, org) = owner(&app).await;
    let success = "https://app.example.com/billing?done=1";

    let stripe = json_of(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "team", "provider": "stripe", "successUrl": success}),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        stripe["checkoutUrl"],
        "https://checkout.stripe.test/c/pay/cs_test_a1b2c3"
    );
    let paystack = json_of(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "team", "provider": "paystack", "successUrl": success}),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        paystack["checkoutUrl"],
        "https://checkout.paystack.test/0peioxfhpn"
    );
    let flutterwave = json_of(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "team", "provider": "flutterwave", "successUrl": success}),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        flutterwave["checkoutUrl"],
        "https://checkout.flutterwave.test/v3/hosted/pay/f524c1196ffda5556341"
    );

    let seen = fake.seen().await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    let checkouts: Vec<String> = app.query("SELECT id FROM billing_checkouts ORDER BY id", |row| {
        row.get(0)
    });
    assert_eq!(checkouts.len(), 3);

    // Stripe: form-encoded Checkout Session, Bearer secret key (read from its file).
    let s0 = &seen[0];
    assert_eq!(s0["path"], "/v1/checkout/sessions");
    assert_eq!(s0["authorization"], format!("Bearer {STRIPE_KEY}"));
    assert_eq!(s0["contentType"], "application/x-www-form-urlencoded");
    let form = &s0["body"];
    assert_eq!(form["mode"], "subscription");
    assert_eq!(form["line_items[0][price]"], "price_team_monthly");
    assert_eq!(form["line_items[0][quantity]"], "1");
    assert_eq!(form["success_url"], success);
    assert_eq!(form["customer_email"], crate::support::ADMIN_EMAIL);
    assert_eq!(form["metadata[sealbox_organization]"], org.as_str());
    assert_eq!(
        form["subscription_data[metadata][sealbox_organization]"],
        org.as_str()
    );
    let reference = s(form, "client_reference_id");
    assert_eq!(form["metadata[sealbox_checkout]"], reference.as_str());
    assert_eq!(s0["idempotencyKey"], reference.as_str());
    assert_eq!(checkouts[0], reference);

    // Paystack: JSON transaction initialize with the plan code and its amount.
    let s1 = &seen[1];
    assert_eq!(s1["path"], "/transaction/initialize");
    assert_eq!(s1["authorization"], format!("Bearer {PAYSTACK_KEY}"));
    assert!(s(s1, "contentType").starts_with("application/json"));
    let body = &s1["body"];
    assert_eq!(body["email"], crate::support::ADMIN_EMAIL);
    assert_eq!(body["amount"], "500000");
    assert_eq!(body["currency"], "NGN");
    assert_eq!(body["plan"], "PLN_team_monthly");
    assert_eq!(body["callback_url"], success);
    assert_eq!(body["reference"], checkouts[1].as_str());
    assert_eq!(body["metadata"]["sealbox_organization"], org.as_str());

    // Flutterwave: JSON payment with the payment plan.
    let s2 = &seen[2];
    assert_eq!(s2["path"], "/v3/payments");
    assert_eq!(s2["authorization"], format!("Bearer {FLUTTERWAVE_KEY}"));
    let body = &s2["body"];
    assert_eq!(body["tx_ref"], checkouts[2].as_str());
    assert_eq!(body["amount"], "5000");
    assert_eq!(body["currency"], "NGN");
    assert_eq!(body["payment_plan"], "4975");
    assert_eq!(body["redirect_url"], success);
    assert_eq!(body["customer"]["email"], crate::support::ADMIN_EMAIL);

    // Idempotency-Key works as for other creating POSTs: one checkout, the same answer.
    let body = json!({"plan": "team", "provider": "stripe", "successUrl": success});
    let first = checkout(&app, &token, &org, body.clone(), Some("chk-1")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = checkout(&app, &token, &org, body, Some("chk-1")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(
        fake.seen().await.len(),
        4,
        "the replay did not call Stripe again"
    );

    // The processor failing is a 503, with nothing recorded.
    fake.fail_next().await;
    assert_envelope(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "team", "provider": "paystack", "successUrl": success}),
            None,
        )
        .await,
        503,
        "UNAVAILABLE",
    )
    .await;
    assert_eq!(count(&app, "SELECT count(*) FROM billing_checkouts"), 4);
    // The secrets never reach the database's audit details.
    let audit: Vec<String> = app.query("SELECT coalesce(details, '') FROM audit_log", |r| r.get(0));
    assert!(
        audit
            .iter()
            .all(|d| !d.contains(STRIPE_KEY) && !d.contains(PAYSTACK_KEY))
    );
}

#[tokio::test]
async fn checkout_names_every_problem_and_is_for_owners_and_billing_roles_only() {
    let fake = FakeProcessor::start();
    let (app, _secrets) = billed_app(&fake).await;
    let (token, org) = owner(&app).await;

    let error = assert_envelope(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "gold", "provider": "paypal", "successUrl": "javascript:alert(1)"}),
            None,
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    let paths: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["plan", "provider", "successUrl"], "{error}");
    // A plan that exists but is not sold through the processor.
    let error = assert_envelope(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "free", "provider": "stripe", "successUrl": "https://e.com/"}),
            None,
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert!(
        s(&error["details"][0], "message").contains("billing.stripe.prices"),
        "{error}"
    );
    assert_envelope(
        checkout(&app, &token, &org, json!({"plan": "team"}), None).await,
        422,
        "VALIDATION",
    )
    .await;

    // An admin (not the owner, no billing permission) may not; a custom role with
    // billing:manage may; a member of another organization sees 404.
    let admin = app
        .invite_and_register(&token, &org, "bea@example.com", "admin")
        .await;
    let admin = s(&admin, "accessToken");
    let body = json!({"plan": "team", "provider": "stripe", "successUrl": "https://e.com/"});
    assert_envelope(
        checkout(&app, &admin, &org, body.clone(), None).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_envelope(
        app.get_as(&format!("/v1/billing/{org}/invoices"), &admin)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    let role = json_of(
        app.send_as(
            Method::POST,
            "/v1/roles",
            &token,
            Some(&json!({"name": "Billing", "permissions": ["org:read", "billing:read", "billing:manage"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let clerk = app
        .invite_and_register(&token, &org, "cal@example.com", &s(&role, "id"))
        .await;
    let clerk = s(&clerk, "accessToken");
    json_of(checkout(&app, &clerk, &org, body.clone(), None).await, 201).await;
    json_of(
        app.get_as(&format!("/v1/billing/{org}/invoices"), &clerk)
            .await,
        200,
    )
    .await;

    let other = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Elsewhere"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let other = s(&other, "id");
    assert_envelope(
        checkout(&app, &token, &other, body.clone(), None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(
        app.get_as(&format!("/v1/billing/{other}/invoices"), &token)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(
        checkout(&app, &token, "not-an-id", body.clone(), None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let anonymous = app
        .client
        .post(app.url(&format!("/v1/subscriptions/{org}/checkout")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_envelope(anonymous, 401, "UNAUTHORIZED").await;
    // Nothing of the refused calls reached a processor: only the clerk's checkout did.
    assert_eq!(fake.seen().await.len(), 1);
    let _ = MEMBER_PASSWORD;
}

#[tokio::test]
async fn an_instance_without_processors_names_what_is_missing() {
    let app = TestApp::spawn_with(|config| {
        config.plans = vec![plan("free"), plan("team")];
        config.billing.default_plan = "free".into();
    })
    .await;
    let (token, org) = owner(&app).await;
    let error = assert_envelope(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "team", "provider": "stripe", "successUrl": "https://e.com/"}),
            None,
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    let messages: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("billing.stripe.secret_key"))
            && messages
                .iter()
                .any(|m| m.contains("billing.stripe.webhook_secret")),
        "{error}"
    );
    // Its inbound webhooks refuse everything, audited.
    let body = br#"{"id":"evt_1","type":"checkout.session.completed","data":{"object":{}}}"#;
    let refused = stripe_deliver(&app, body, now()).await;
    assert_envelope(refused, 401, "UNAUTHORIZED").await;
    assert_eq!(refusals(&app), ["the processor is not configured"]);
}

fn stripe_event(id: &str, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": now(),
        "livemode": false,
        "type": kind,
        "data": {"object": object},
    }))
    .unwrap()
}

#[tokio::test]
async fn stripe_events_are_verified_with_stripes_signature_and_applied_once() {
    let fake = FakeProcessor::start();
    let (app, _secrets) = billed_app(&fake).await;
    let (token, org) = owner(&app).await;
    json_of(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "team", "provider": "stripe", "successUrl": "https://e.com/"}),
            None,
        )
        .await,
        201,
    )
    .await;
    let reference = s(&fake.seen().await[0]["body"], "client_reference_id");
    assert_eq!(plan_of(&app, &token, &org).await, "free");

    let completed = stripe_event(
        "evt_1QcompletedAAAA",
        "checkout.session.completed",
        json!({"id": "cs_test_a1b2c3", "object": "checkout.session",
               "client_reference_id": reference, "customer": "cus_Rk1",
               "subscription": "sub_Rk1", "payment_status": "paid", "status": "complete",
               "metadata": {"sealbox_checkout": reference, "sealbox_organization": org}}),
    );

    // Unsigned, tampered, signed with another secret, stale: 401, nothing changes.
    assert_envelope(
        deliver(&app, "stripe", &[], &completed).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let header = stripe_signature(STRIPE_WEBHOOK_SECRET, now(), &completed);
    let tampered = String::from_utf8(completed.clone())
        .unwrap()
        .replace("\"paid\"", "\"PAID\"");
    assert_envelope(
        deliver(
            &app,
            "stripe",
            &[("Stripe-Signature", &header)],
            tampered.as_bytes(),
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let foreign = stripe_signature("whsec_someone_else", now(), &completed);
    assert_envelope(
        deliver(
            &app,
            "stripe",
            &[("Stripe-Signature", &foreign)],
            &completed,
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        stripe_deliver(&app, &completed, now() - 301).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        refusals(&app),
        [
            "no Stripe-Signature header",
            "the signature does not match the body",
            "the signature does not match the body",
            "the signature's timestamp is outside the tolerance",
        ]
    );
    assert_eq!(plan_of(&app, &token, &org).await, "free");
    assert_eq!(
        count(&app, "SELECT count(*) FROM billing_webhook_events"),
        0
    );

    // Signed by Stripe's library, within the tolerance: applied; the next request sees it.
    let applied = json_of(stripe_deliver(&app, &completed, now() - 200).await, 200).await;
    assert_eq!(applied, json!({"received": true, "duplicate": false}));
    assert_eq!(plan_of(&app, &token, &org).await, "team");
    // Stripe redelivers the same event (a new signature, the same id): 200, applied once.
    let again = json_of(stripe_deliver(&app, &completed, now()).await, 200).await;
    assert_eq!(again, json!({"received": true, "duplicate": true}));
    assert_eq!(
        count(&app, "SELECT count(*) FROM billing_webhook_events"),
        1
    );
    assert_eq!(outbox(&app, "subscription.").len(), 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'plan.changed'"
        ),
        1
    );

    // Invoices paid, then one failed, found through the subscription.
    for (n, (kind, amount)) in [("invoice.paid", 4900), ("invoice.payment_failed", 4900)]
        .into_iter()
        .enumerate()
    {
        let event = stripe_event(
            &format!("evt_invoice_{n}"),
            kind,
            json!({"id": format!("in_{n}"), "object": "invoice", "customer": "cus_Rk1",
                   "subscription": "sub_Rk1", "amount_paid": amount, "amount_due": amount,
                   "currency": "usd", "hosted_invoice_url": format!("https://invoice.stripe.test/{n}"),
                   "lines": {"data": [{"price": {"id": "price_team_monthly"}}]}}),
        );
        json_of(stripe_deliver(&app, &event, now()).await, 200).await;
    }
    let invoices = app
        .get_as(&format!("/v1/billing/{org}/invoices?limit=1"), &token)
        .await;
    let link = invoices.headers()["link"].to_str().unwrap().to_owned();
    let first = json_of(invoices, 200).await;
    assert_eq!(first.as_array().unwrap().len(), 1);
    assert_eq!(first[0]["providerInvoiceId"], "in_1");
    assert_eq!(first[0]["status"], "failed");
    assert!(link.contains("before="), "{link}");
    let all = json_of(
        app.get_as(&format!("/v1/billing/{org}/invoices"), &token)
            .await,
        200,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[1]["providerInvoiceId"], "in_0");
    assert_eq!(all[1]["status"], "paid");
    assert_eq!(all[1]["amount"], 4900);
    assert_eq!(all[1]["currency"], "USD");
    assert_eq!(all[1]["plan"], "team");
    assert_eq!(all[1]["url"], "https://invoice.stripe.test/0");
    assert_eq!(all[1]["organizationId"], org.as_str());

    // Unknown types and events about nothing of this instance: 400, audited, unapplied.
    let unknown = stripe_event("evt_unknown", "customer.created", json!({"id": "cus_x"}));
    assert_envelope(
        stripe_deliver(&app, &unknown, now()).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    let unrelated = stripe_event(
        "evt_unrelated",
        "customer.subscription.deleted",
        json!({"id": "sub_someone_else", "customer": "cus_someone_else", "status": "canceled"}),
    );
    assert_envelope(
        stripe_deliver(&app, &unrelated, now()).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    let not_json = b"not json at all";
    assert_envelope(
        stripe_deliver(&app, not_json, now()).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    let reasons = refusals(&app);
    assert_eq!(
        &reasons[4..],
        [
            "unknown event type `customer.created`",
            "the event names no checkout or subscription here",
            "the body is not JSON",
        ]
    );
    assert_eq!(plan_of(&app, &token, &org).await, "team");

    // The subscription ends: back to the default plan.
    let deleted = stripe_event(
        "evt_deleted",
        "customer.subscription.deleted",
        json!({"id": "sub_Rk1", "customer": "cus_Rk1", "status": "canceled"}),
    );
    json_of(stripe_deliver(&app, &deleted, now()).await, 200).await;
    assert_eq!(plan_of(&app, &token, &org).await, "free");
    let events: Vec<String> = outbox(&app, "")
        .into_iter()
        .map(|(kind, _)| kind)
        .filter(|k| k.starts_with("subscription.") || k.starts_with("invoice."))
        .collect();
    assert_eq!(
        events,
        [
            "subscription.created",
            "invoice.paid",
            "invoice.payment_failed",
            "subscription.cancelled"
        ]
    );
    let (_, created) = &outbox(&app, "subscription.created")[0];
    assert_eq!(created["organizationId"], org.as_str());
    assert_eq!(created["plan"], "team");
    assert_eq!(created["checkoutId"], reference.as_str());
}

#[tokio::test]
async fn paystack_and_flutterwave_events_are_verified_as_their_docs_say() {
    let fake = FakeProcessor::start();
    let (app, _secrets) = billed_app(&fake).await;
    let (token, org) = owner(&app).await;
    for provider in ["paystack", "flutterwave"] {
        json_of(
            checkout(
                &app,
                &token,
                &org,
                json!({"plan": "team", "provider": provider, "successUrl": "https://e.com/"}),
                None,
            )
            .await,
            201,
        )
        .await;
    }
    let seen = fake.seen().await;
    let paystack_ref = s(&seen[0]["body"], "reference");
    let flutterwave_ref = s(&seen[1]["body"], "tx_ref");

    // Paystack: x-paystack-signature, HMAC-SHA512 of the raw body with the secret key.
    let charge = serde_json::to_vec(&json!({
        "event": "charge.success",
        "data": {"id": 302961, "domain": "test", "status": "success", "reference": paystack_ref,
                 "amount": 500000, "currency": "NGN", "paid_at": "2026-12-04T02:00:00.000Z",
                 "metadata": {"sealbox_checkout": paystack_ref},
                 "customer": {"id": 68324, "email": crate::support::ADMIN_EMAIL,
                              "customer_code": "CUS_qo38as2hpsgk2r0"},
                 "plan": {"plan_code": "PLN_team_monthly"}}
    }))
    .unwrap();
    let good = python_hmac("sha512", PAYSTACK_KEY, &charge, false);
    let wrong = python_hmac("sha512", "sk_test_other", &charge, false);
    assert_envelope(
        deliver(&app, "paystack", &[], &charge).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        deliver(
            &app,
            "paystack",
            &[("x-paystack-signature", &wrong)],
            &charge,
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let mut tampered = charge.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    assert_envelope(
        deliver(
            &app,
            "paystack",
            &[("x-paystack-signature", &good)],
            &tampered,
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(plan_of(&app, &token, &org).await, "free");
    let applied = json_of(
        deliver(
            &app,
            "paystack",
            &[("x-paystack-signature", &good)],
            &charge,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(applied["duplicate"], false);
    assert_eq!(plan_of(&app, &token, &org).await, "team");
    let replayed = json_of(
        deliver(
            &app,
            "paystack",
            &[("x-paystack-signature", &good)],
            &charge,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replayed["duplicate"], true);
    // The subscription Paystack then creates is found through the customer, and its
    // disabling returns the organization to the default plan.
    let disable = serde_json::to_vec(&json!({
        "event": "subscription.disable",
        "data": {"id": 9921, "status": "complete", "subscription_code": "SUB_vsyqdmlzble3uii",
                 "customer": {"customer_code": "CUS_qo38as2hpsgk2r0"},
                 "plan": {"plan_code": "PLN_team_monthly"}}
    }))
    .unwrap();
    let sig = python_hmac("sha512", PAYSTACK_KEY, &disable, false);
    json_of(
        deliver(
            &app,
            "paystack",
            &[("x-paystack-signature", &sig)],
            &disable,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(plan_of(&app, &token, &org).await, "free");

    // Flutterwave: verif-hash must be the secret hash.
    let completed = serde_json::to_vec(&json!({
        "event": "charge.completed",
        "data": {"id": 4975363, "tx_ref": flutterwave_ref, "flw_ref": "FLW-MOCK-1",
                 "amount": 5000, "currency": "NGN", "status": "successful",
                 "customer": {"id": 2384615, "email": crate::support::ADMIN_EMAIL}},
        "event.type": "CARD_TRANSACTION"
    }))
    .unwrap();
    assert_envelope(
        deliver(&app, "flutterwave", &[], &completed).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        deliver(&app, "flutterwave", &[("verif-hash", "guess")], &completed).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    json_of(
        deliver(
            &app,
            "flutterwave",
            &[("verif-hash", FLUTTERWAVE_HASH)],
            &completed,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(plan_of(&app, &token, &org).await, "team");
    let replayed = json_of(
        deliver(
            &app,
            "flutterwave",
            &[("verif-hash", FLUTTERWAVE_HASH)],
            &completed,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replayed["duplicate"], true);

    let invoices = json_of(
        app.get_as(&format!("/v1/billing/{org}/invoices"), &token)
            .await,
        200,
    )
    .await;
    let found: Vec<(String, String, i64)> = invoices
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                s(i, "provider"),
                s(i, "status"),
                i["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("flutterwave".into(), "paid".into(), 500_000),
            ("paystack".into(), "paid".into(), 500_000)
        ]
    );
    assert_eq!(refusals(&app).len(), 5);
    assert_eq!(
        count(&app, "SELECT count(*) FROM billing_webhook_events"),
        3
    );
}

#[tokio::test]
async fn a_flutterwave_signature_header_is_required_where_configured() {
    let fake = FakeProcessor::start();
    let base = fake.base.clone();
    let app = TestApp::spawn_with(move |config| {
        config.plans = vec![plan("free"), plan("team")];
        config.billing.default_plan = "free".into();
        let flutterwave = &mut config.billing.flutterwave;
        flutterwave.base_url = base;
        flutterwave.secret_key = Secret::new(FLUTTERWAVE_KEY);
        flutterwave.webhook_secret = Secret::new(FLUTTERWAVE_HASH);
        flutterwave.require_signature_header = true;
        flutterwave.prices = vec![price("team", "4975", "5000", "NGN")];
    })
    .await;
    let (token, org) = owner(&app).await;
    json_of(
        checkout(
            &app,
            &token,
            &org,
            json!({"plan": "team", "provider": "flutterwave", "successUrl": "https://e.com/"}),
            None,
        )
        .await,
        201,
    )
    .await;
    let tx_ref = s(&fake.seen().await[0]["body"], "tx_ref");
    let body = serde_json::to_vec(&json!({
        "event": "charge.completed",
        "data": {"id": 1, "tx_ref": tx_ref, "amount": 5000, "currency": "NGN",
                 "status": "successful", "customer": {"id": 7}}
    }))
    .unwrap();
    assert_envelope(
        deliver(
            &app,
            "flutterwave",
            &[("verif-hash", FLUTTERWAVE_HASH)],
            &body,
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let signature = python_hmac("sha256", FLUTTERWAVE_HASH, &body, true);
    json_of(
        deliver(
            &app,
            "flutterwave",
            &[
                ("verif-hash", FLUTTERWAVE_HASH),
                ("flutterwave-signature", &signature),
            ],
            &body,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(plan_of(&app, &token, &org).await, "team");
}

#[tokio::test]
async fn inbound_webhook_paths_win_over_webhook_ids_and_bound_their_bodies() {
    let fake = FakeProcessor::start();
    let (app, _secrets) = billed_app(&fake).await;
    let (token, _org) = owner(&app).await;
    // A signed event larger than the 8 KiB an anonymous request may send elsewhere.
    let big = stripe_event(
        "evt_big",
        "checkout.session.completed",
        json!({"id": "cs_big", "client_reference_id": "none", "payment_status": "unpaid",
               "metadata": {"padding": "x".repeat(20_000)}}),
    );
    let ignored = json_of(stripe_deliver(&app, &big, now()).await, 200).await;
    assert_eq!(ignored["duplicate"], false);
    // Over the bound: 413 before anything is read.
    let huge = vec![b' '; 300 * 1024];
    assert_envelope(
        deliver(&app, "stripe", &[("Stripe-Signature", "t=1,v1=00")], &huge).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    // The webhook management routes are untouched.
    assert_envelope(
        app.get_as("/v1/webhooks/0193a1f8-4a7c-7c2e-9b1d-6e30f8a5c297", &token)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let get = app.get("/v1/webhooks/stripe").await;
    assert_ne!(get.status(), 200);
}

#[tokio::test]
async fn the_billing_page_shows_the_plan_buys_one_through_the_hosted_checkout_and_lists_the_invoice()
 {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    use crate::web_ui::browse;
    use crate::web_workspace::{rendered, sign_in};

    let fake = FakeProcessor::start();
    reqwest::Client::new()
        .post(format!("{}/_hosted", fake.base))
        .send()
        .await
        .unwrap();
    // Team as a small company would sell it: limits to show beside their use.
    let (app, _secrets) = billed_app_with(&fake, |config| {
        let team = &mut config.plans[1];
        team.name = "Team".into();
        team.features = vec!["api_access".into(), "e2e_transfers".into()];
        team.limits.storage_bytes = 10 << 30;
        team.limits.max_file_bytes = 2 << 30;
        team.limits.members = 25;
        team.limits.webhooks = 10;
        team.limits.transfers_per_day = 100;
        team.limits.api_requests_per_day_per_org = 50_000;
    })
    .await;
    let (token, org) = owner(&app).await;
    let shots = tempfile::tempdir().unwrap();

    // The default plan, what it allows, the three offers of `team`, no invoices. Buying
    // opens the processor's page; paying there comes back to the page.
    let mut steps = sign_in(&app, "/app/billing", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["js", "document.querySelector('#plan-name')?.textContent.includes('free')"]),
        json!(["js", "document.querySelector('#plan-status')?.textContent === 'The default plan'"]),
        json!(["js", "document.querySelector('#plan-usage tr[data-id=\"Active members\"]')?.textContent.includes('No limit')"]),
        json!(["js", "document.querySelector('#plan-features [data-feature=sso]')?.textContent.includes('not included')"]),
        json!(["js", "document.querySelectorAll('#plan-offers tbody tr').length === 3"]),
        json!(["js", "document.querySelector('#plan-offers tr[data-id=\"team:paystack\"]')?.textContent.includes('5,000')"]),
        json!(["text", "No invoices yet."]),
        json!(["click", "#plan-offers tr[data-id=\"team:stripe\"] button"]),
        json!(["js", "location.pathname === '/hosted'"]),
        json!(["click", "#pay"]),
        json!(["js", "location.pathname === '/app/billing'"]),
        rendered("/app/billing"),
        json!(["text", "Back from the checkout"]),
    ]);
    browse(Value::Array(steps)).await;

    let seen = fake.seen().await;
    assert_eq!(seen.len(), 1, "one checkout: {seen:?}");
    assert_eq!(seen[0]["path"], "/v1/checkout/sessions");
    assert_eq!(
        s(&seen[0]["body"], "success_url"),
        app.url("/app/billing?checkout=done")
    );
    let reference = s(&seen[0]["body"], "client_reference_id");
    assert_eq!(
        plan_of(&app, &token, &org).await,
        "free",
        "not before Stripe says so"
    );

    // Stripe confirms the checkout and the first invoice.
    let completed = stripe_event(
        "evt_page_completed",
        "checkout.session.completed",
        json!({"id": "cs_test_a1b2c3", "object": "checkout.session",
               "client_reference_id": reference, "customer": "cus_P1",
               "subscription": "sub_P1", "payment_status": "paid", "status": "complete",
               "metadata": {"sealbox_checkout": reference, "sealbox_organization": org}}),
    );
    json_of(stripe_deliver(&app, &completed, now()).await, 200).await;
    let invoice = stripe_event(
        "evt_page_invoice",
        "invoice.paid",
        json!({"id": "in_page_1", "object": "invoice", "customer": "cus_P1",
               "subscription": "sub_P1", "amount_paid": 4900, "amount_due": 4900,
               "currency": "usd", "hosted_invoice_url": "https://invoice.stripe.test/page-1",
               "lines": {"data": [{"price": {"id": "price_team_monthly"}}]}}),
    );
    json_of(stripe_deliver(&app, &invoice, now()).await, 200).await;

    let mut steps = sign_in(&app, "/app/billing", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["js", "document.querySelector('#plan-name')?.textContent.includes('Team')"]),
        json!(["js", "document.querySelector('#plan-usage tr[data-id=\"Active members\"]')?.textContent.includes('25') && document.querySelector('#plan-usage tr[data-id=\"Active members\"] meter') !== null"]),
        json!(["js", "document.querySelector('#plan-status')?.textContent === 'Assigned'"]),
        json!(["js", "document.querySelector('#plan-offers tr[data-id=\"team:stripe\"]')?.textContent.includes('(current)')"]),
        json!(["js", "(() => { const row = document.querySelector('#invoice-list tbody tr'); return row && row.textContent.includes('paid') && row.textContent.includes('49') && row.querySelector('a')?.href === 'https://invoice.stripe.test/page-1'; })()"]),
        crate::web_ui::readme_screenshot(shots.path(), "app-billing.png", None),
    ]);
    browse(Value::Array(steps)).await;
}

#[tokio::test]
async fn the_billing_page_is_for_the_billing_role_and_says_when_nothing_is_sold_here() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    use crate::web_ui::browse;
    use crate::web_workspace::sign_in;

    // Plans, but no payment processor: an air-gapped instance.
    let app = TestApp::spawn_with(|config| {
        config.plans = vec![plan("free"), plan("team")];
        config.billing.default_plan = "free".into();
    })
    .await;
    let (token, org) = owner(&app).await;
    json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{org}/users"),
            &token,
            Some(&json!({"email": "bob@example.com", "displayName": "Bob",
                         "password": MEMBER_PASSWORD, "role": "member"})),
            None,
        )
        .await,
        201,
    )
    .await;

    let mut steps = sign_in(&app, "/app/billing", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["text", "No payment processor sells plans on this instance"]),
        json!(["text", "No invoices yet."]),
        json!(["js", "[...document.querySelectorAll('nav a')].some((a) => a.getAttribute('href') === '/app/billing')"]),
    ]);
    browse(Value::Array(steps)).await;

    // A member holds no billing permission: no link, and the page is refused; so is the API.
    let mut steps = sign_in(&app, "/app", "bob@example.com", MEMBER_PASSWORD);
    steps.extend([
        json!(["js", "![...document.querySelectorAll('nav a')].some((a) => a.getAttribute('href') === '/app/billing')"]),
        json!(["open", app.url("/app/billing")]),
        json!(["text", "does not include this page"]),
    ]);
    browse(Value::Array(steps)).await;
    let bob = app.login("bob@example.com", MEMBER_PASSWORD).await;
    assert_envelope(
        app.get_as(&format!("/v1/subscriptions/{org}"), &s(&bob, "accessToken"))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
}
