//! The webhook API and the delivery queue under it: managing webhooks (secrets shown once
//! and stored sealed, validation, tenancy, scopes, rotation), test and replayed
//! deliveries, the delivery log, fan-out of real events to matching webhooks, recording
//! attempts (retries, 410 and repeated failures disabling a webhook, its admins told),
//! and in-app notifications.
//!
//! Sending is the delivery worker's; these tests drive the queue through the same
//! functions the worker calls. Deliveries they complete themselves are due far in the
//! future, so a worker running in the app never races them.

use reqwest::Method;
use serde_json::{Value, json};

use sealbox::ids::{DeliveryId, WebhookId};
use sealbox::service::webhook_queue::{
    AttemptOutcome, AttemptReport, FanOut, complete_attempt_in, fan_out_in,
};
use sealbox::service::webhooks::now_ms;
use sealbox::store::webhooks::{self, DeliveryStatus, NewDelivery};

use crate::support::{TestApp, assert_envelope, json_of, s};

const HOOK_URL: &str = "https://hooks.example.com/sealbox";

async fn acme() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    (app, s(&pair, "accessToken"), org)
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    json_of(
        app.send_as(Method::POST, "/v1/webhooks", token, Some(&body), None)
            .await,
        201,
    )
    .await
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    app.send_as(method, path, token, body.as_ref(), None).await
}

/// The `details[].path` values of a 422 envelope.
async fn invalid_paths(response: reqwest::Response) -> Vec<String> {
    let error = assert_envelope(response, 422, "VALIDATION").await;
    error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(d, "path"))
        .collect()
}

/// Every file under the data directory, as bytes.
fn data_dir_bytes(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(&app.data_dir, &mut out);
    out
}

fn assert_not_stored(app: &TestApp, secret: &str) {
    let key = secret.strip_prefix("whsec_").unwrap();
    for (path, bytes) in data_dir_bytes(app) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(key), "the secret is readable in {path}");
    }
}

/// Runs fan-out over every pending outbox event, as the worker does.
async fn fan_out(app: &TestApp) -> FanOut {
    app.store
        .call_write(|tx| {
            let done = fan_out_in(tx, now_ms(), 10_000)?;
            Ok(sealbox::store::Write::Commit(done))
        })
        .await
        .unwrap()
}

/// Deliveries of a webhook, newest first (one page of up to 200).
async fn deliveries(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    let listed = json_of(
        app.get_as(
            &format!("/v1/webhooks/{webhook}/deliveries?limit=200"),
            token,
        )
        .await,
        200,
    )
    .await;
    listed.as_array().unwrap().clone()
}

fn of_type<'a>(deliveries: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    deliveries
        .iter()
        .filter(|d| d["eventType"] == event_type)
        .collect()
}

/// A delivery of `webhook` due ten days from now (no running worker takes it), claimed
/// at that time as the worker would; returns its id and lease.
async fn claimed_delivery(app: &TestApp, org: &str, webhook: &str) -> (DeliveryId, i64) {
    let (org, webhook) = (org.to_owned(), webhook.parse::<WebhookId>().unwrap());
    app.store
        .call_write(move |tx| {
            let later = now_ms() + 10 * 24 * 3_600_000;
            let id = DeliveryId::new();
            webhooks::insert_delivery(
                tx,
                &NewDelivery {
                    id,
                    webhook_id: webhook,
                    org_id: &org,
                    message_id: &uuid::Uuid::now_v7().to_string(),
                    event_type: "ping",
                    body: r#"{"type":"ping","timestamp":"2026-11-24T18:30:00.000Z","data":{}}"#,
                    is_test: true,
                    original_delivery_id: None,
                    due_at: later,
                    now: "2026-11-24T18:30:00.000Z",
                },
            )?;
            let claimed = webhooks::claim_due(tx, later, 60_000, 1000)?;
            let mine = claimed
                .into_iter()
                .find(|d| d.delivery_id == id)
                .expect("the delivery is due then");
            Ok(sealbox::store::Write::Commit((id, mine.lease_until)))
        })
        .await
        .unwrap()
}

/// Records one attempt of a claimed delivery, as the worker does.
async fn complete(
    app: &TestApp,
    (delivery_id, lease_until): (DeliveryId, i64),
    status_code: Option<u16>,
) -> AttemptOutcome {
    let report = AttemptReport {
        delivery_id,
        lease_until,
        started_at_ms: now_ms(),
        duration: std::time::Duration::from_millis(12),
        status_code,
        response_body: "receiver says hi".to_owned(),
        error: status_code
            .is_none()
            .then(|| "connection refused".to_owned()),
        retry_at_ms: now_ms() + 11 * 24 * 3_600_000,
    };
    app.store
        .call_write(move |tx| {
            let outcome = complete_attempt_in(tx, &report)?;
            Ok(sealbox::store::Write::Commit(outcome))
        })
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp, token: &str, target: &str) -> Vec<String> {
    let entries = json_of(
        app.get_as(&format!("/v1/audit?target={target}&limit=200"), token)
            .await,
        200,
    )
    .await;
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(e, "action"))
        .collect()
}

#[tokio::test]
async fn a_webhook_is_created_read_changed_and_deleted_with_its_secret_shown_once() {
    let (app, admin, acme) = acme().await;
    let created = create(
        &app,
        &admin,
        json!({
            "url": HOOK_URL,
            "description": "  CI notifications ",
            "events": ["file.*", "api_key.created", "file.*"],
            "retry_policy": {"max_attempts": 3, "disable_after_consecutive_failures": 7},
        }),
    )
    .await;
    let id = s(&created, "id");
    let secret = s(&created, "secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let key = base64_decode(&secret["whsec_".len()..]);
    assert_eq!(key.len(), 32);
    assert_eq!(created["organizationId"], acme.as_str());
    assert_eq!(created["url"], HOOK_URL);
    assert_eq!(created["description"], "CI notifications");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["events"], json!(["file.*", "api_key.created"]));
    assert_eq!(
        created["retryPolicy"],
        json!({"maxAttempts": 3, "disableAfterConsecutiveFailures": 7})
    );
    assert!(created.get("disabledReason").is_none());

    // Never shown again, and stored only sealed.
    let got = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &admin).await, 200).await;
    assert!(got.get("secret").is_none(), "{got}");
    assert_eq!(got["events"], created["events"]);
    let listed = json_of(app.get_as("/v1/webhooks", &admin).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none());
    let sealed: Vec<String> = app.query("SELECT secret_sealed FROM webhooks", |r| r.get(0));
    assert!(sealed[0].starts_with("v1:"), "{}", sealed[0]);
    assert_not_stored(&app, &secret);

    // Defaults: every event, 10 attempts, disabled after 50 failures.
    let plain = create(
        &app,
        &admin,
        json!({"url": "http://hooks.example.com:8080/in"}),
    )
    .await;
    assert_eq!(plain["events"], json!(["*"]));
    assert_eq!(
        plain["retryPolicy"],
        json!({"maxAttempts": 10, "disableAfterConsecutiveFailures": 50})
    );

    // PATCH by path and by body; an unchanged PATCH changes nothing.
    let patched = json_of(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &admin,
            Some(json!({"events": ["kv.*"], "retryPolicy": {"maxAttempts": 5}})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["events"], json!(["kv.*"]));
    assert_eq!(patched["retryPolicy"]["maxAttempts"], 5);
    assert_eq!(patched["retryPolicy"]["disableAfterConsecutiveFailures"], 7);
    assert_eq!(patched["url"], HOOK_URL);
    let by_body = json_of(
        send(
            &app,
            Method::PATCH,
            "/v1/webhooks",
            &admin,
            Some(json!({"id": id, "description": "renamed", "enabled": false})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(by_body["description"], "renamed");
    assert_eq!(by_body["enabled"], false);
    assert!(by_body["disabledAt"].is_string());
    assert!(
        by_body.get("disabledReason").is_none(),
        "a person disabled it"
    );
    let enabled = json_of(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &admin,
            Some(json!({"enabled": true})),
        )
        .await,
        200,
    )
    .await;
    assert!(enabled.get("disabledAt").is_none());

    // Every change is audited and evented.
    let actions = audit_actions(&app, &admin, &id).await;
    assert_eq!(
        actions,
        [
            "webhook.updated",
            "webhook.updated",
            "webhook.updated",
            "webhook.created"
        ]
    );
    let events: Vec<(String, String)> = app.query(
        "SELECT type, data FROM outbox_events WHERE type LIKE 'webhook.%' ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert_eq!(events[0].0, "webhook.created");
    let data: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(data["webhookId"], id.as_str());
    assert_eq!(events[2].0, "webhook.updated");
    let data: Value = serde_json::from_str(&events[2].1).unwrap();
    assert_eq!(data["changed"], json!(["events", "retryPolicy"]));
    assert!(
        events.iter().all(|(_, data)| !data.contains(&secret[6..])),
        "no event carries the secret"
    );

    // DELETE by body and by path.
    let gone = send(
        &app,
        Method::DELETE,
        "/v1/webhooks",
        &admin,
        Some(json!({"id": id})),
    )
    .await;
    assert_eq!(gone.status(), 204);
    assert_envelope(
        app.get_as(&format!("/v1/webhooks/{id}"), &admin).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let plain_id = s(&plain, "id");
    assert_eq!(
        app.delete_as(&format!("/v1/webhooks/{plain_id}"), &admin)
            .await
            .status(),
        204
    );
    assert_envelope(
        app.delete_as(&format!("/v1/webhooks/{plain_id}"), &admin)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let actions = audit_actions(&app, &admin, &id).await;
    assert_eq!(actions[0], "webhook.deleted");
    let deleted: Vec<String> = app.query(
        "SELECT data FROM outbox_events WHERE type = 'webhook.deleted' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(deleted.len(), 2);
    assert!(
        json_of(app.get_as("/v1/webhooks", &admin).await, 200)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn invalid_settings_are_422_with_every_problem_named() {
    let (app, admin, _) = acme().await;
    let refused = send(
        &app,
        Method::POST,
        "/v1/webhooks",
        &admin,
        Some(json!({
            "url": "http://169.254.169.254/latest/meta-data",
            "description": "d".repeat(501),
            "events": ["file.*", "nope.*", "kv.created", "file"],
            "retryPolicy": {"maxAttempts": 31, "disableAfterConsecutiveFailures": 0},
        })),
    )
    .await;
    let paths = invalid_paths(refused).await;
    assert_eq!(
        paths,
        [
            "url",
            "description",
            "events[1]",
            "events[3]",
            "retryPolicy.maxAttempts",
            "retryPolicy.disableAfterConsecutiveFailures"
        ]
    );
    for (body, path) in [
        (json!({"url": "http://127.0.0.1:9/hook"}), "url"),
        (json!({"url": "http://[::1]/hook"}), "url"),
        (json!({"url": "http://10.1.2.3/hook"}), "url"),
        (json!({"url": "ftp://hooks.example.com/x"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": format!("https://h.example.com/{}", "a".repeat(2048))}),
            "url",
        ),
        (json!({"url": HOOK_URL, "events": []}), "events"),
        (
            json!({"url": HOOK_URL, "events": ["*.created"]}),
            "events[0]",
        ),
        (
            json!({"url": HOOK_URL, "retryPolicy": {"maxAttempts": 0}}),
            "retryPolicy.maxAttempts",
        ),
        (
            json!({"url": HOOK_URL, "retryPolicy": {"disableAfterConsecutiveFailures": 10_001}}),
            "retryPolicy.disableAfterConsecutiveFailures",
        ),
        (json!({"url": HOOK_URL, "enabled": "yes"}), "enabled"),
        (json!({"events": ["*"]}), ""),
    ] {
        let response = send(
            &app,
            Method::POST,
            "/v1/webhooks",
            &admin,
            Some(body.clone()),
        )
        .await;
        let paths = invalid_paths(response).await;
        assert!(
            paths
                .iter()
                .any(|p| p == path || (path.is_empty() && p.is_empty())),
            "{body}: {paths:?}"
        );
    }
    // The ranges' ends are accepted.
    let edge = create(
        &app,
        &admin,
        json!({"url": HOOK_URL, "retryPolicy": {"maxAttempts": 30, "disableAfterConsecutiveFailures": 10_000}}),
    )
    .await;
    assert_eq!(edge["retryPolicy"]["maxAttempts"], 30);
    let id = s(&edge, "id");
    // A PATCH is checked the same way and changes nothing when refused.
    let refused = send(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        &admin,
        Some(json!({"url": "http://127.0.0.1/x", "events": ["x.y"]})),
    )
    .await;
    assert_eq!(invalid_paths(refused).await, ["url", "events[0]"]);
    let unchanged = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &admin).await, 200).await;
    assert_eq!(unchanged["url"], HOOK_URL);
    // Ids in bodies and paths.
    let refused = send(
        &app,
        Method::PATCH,
        "/v1/webhooks",
        &admin,
        Some(json!({"id": "not-an-id", "enabled": false})),
    )
    .await;
    assert_eq!(invalid_paths(refused).await, ["id"]);
    let unknown = WebhookId::new();
    for response in [
        send(
            &app,
            Method::DELETE,
            "/v1/webhooks",
            &admin,
            Some(json!({"id": unknown.to_string()})),
        )
        .await,
        app.get_as("/v1/webhooks/not-an-id", &admin).await,
        app.get_as(&format!("/v1/webhooks/{unknown}"), &admin).await,
    ] {
        assert_envelope(response, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn another_organizations_webhooks_are_not_found_and_scopes_are_enforced() {
    let (app, owner, acme) = acme().await;
    // An outsider founds Globex with a webhook.
    let outsider = app
        .invite_and_register(&owner, &acme, "out@example.com", "member")
        .await;
    let outsider = s(&outsider, "accessToken");
    let globex = json_of(
        send(
            &app,
            Method::POST,
            "/v1/organizations",
            &outsider,
            Some(json!({"name": "Globex"})),
        )
        .await,
        201,
    )
    .await;
    let globex = s(&globex, "id");
    let theirs = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &outsider,
            Some(&json!({"url": HOOK_URL})),
            Some(&globex),
        )
        .await,
        201,
    )
    .await;
    let theirs = s(&theirs, "id");
    // Acme's owner, acting in Acme, finds nothing of it.
    for (method, path, body) in [
        (Method::GET, format!("/v1/webhooks/{theirs}"), None),
        (
            Method::PATCH,
            format!("/v1/webhooks/{theirs}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::PATCH,
            "/v1/webhooks".into(),
            Some(json!({"id": theirs, "enabled": false})),
        ),
        (Method::DELETE, format!("/v1/webhooks/{theirs}"), None),
        (
            Method::DELETE,
            "/v1/webhooks".into(),
            Some(json!({"id": theirs})),
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{theirs}/rotate-secret"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{theirs}/test"),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/webhooks/{theirs}/deliveries"),
            None,
        ),
    ] {
        let response = send(&app, method.clone(), &path, &owner, body).await;
        assert_envelope(response, 404, "NOT_FOUND").await;
    }
    assert!(
        json_of(app.get_as("/v1/webhooks", &owner).await, 200)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    // ...nor may Acme's owner act in Globex.
    let elsewhere = app
        .send_as(Method::GET, "/v1/webhooks", &owner, None, Some(&globex))
        .await;
    assert_envelope(elsewhere, 404, "NOT_FOUND").await;
    let still = json_of(
        app.send_as(
            Method::GET,
            &format!("/v1/webhooks/{theirs}"),
            &outsider,
            None,
            Some(&globex),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(still["enabled"], true);

    // Members have no webhook rights; auditors read; keys need the scopes.
    let member_lists = app
        .send_as(Method::GET, "/v1/webhooks", &outsider, None, Some(&acme))
        .await;
    assert_envelope(member_lists, 403, "FORBIDDEN").await;
    let auditor = app
        .invite_and_register(&owner, &acme, "aud@example.com", "auditor")
        .await;
    let auditor = s(&auditor, "accessToken");
    let mine = create(&app, &owner, json!({"url": HOOK_URL})).await;
    let mine = s(&mine, "id");
    json_of(app.get_as("/v1/webhooks", &auditor).await, 200).await;
    json_of(
        app.get_as(&format!("/v1/webhooks/{mine}/deliveries"), &auditor)
            .await,
        200,
    )
    .await;
    let refused = send(
        &app,
        Method::POST,
        "/v1/webhooks",
        &auditor,
        Some(json!({"url": HOOK_URL})),
    )
    .await;
    assert_envelope(refused, 403, "FORBIDDEN").await;
    let refused = send(
        &app,
        Method::POST,
        &format!("/v1/webhooks/{mine}/test"),
        &auditor,
        Some(json!({})),
    )
    .await;
    assert_envelope(refused, 403, "FORBIDDEN").await;

    let reader = json_of(
        send(
            &app,
            Method::POST,
            "/v1/api-keys",
            &owner,
            Some(json!({"name": "reader", "scopes": ["webhooks:read"]})),
        )
        .await,
        201,
    )
    .await;
    let reader = s(&reader, "key");
    let with_key = |method: Method, path: &str, body: Option<Value>| {
        let mut request = app
            .client
            .request(method, app.url(path))
            .header("X-Api-Key", &reader);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    assert_eq!(
        with_key(Method::GET, "/v1/webhooks", None)
            .await
            .unwrap()
            .status(),
        200
    );
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/webhooks".to_owned(),
            Some(json!({"url": HOOK_URL})),
        ),
        (
            Method::PATCH,
            format!("/v1/webhooks/{mine}"),
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, format!("/v1/webhooks/{mine}"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{mine}/rotate-secret"),
            Some(json!({})),
        ),
    ] {
        let response = with_key(method, &path, body).await.unwrap();
        let error = assert_envelope(response, 403, "FORBIDDEN").await;
        assert!(s(&error, "message").contains("webhooks:write"), "{error}");
    }
    let none = json_of(
        send(
            &app,
            Method::POST,
            "/v1/api-keys",
            &owner,
            Some(json!({"name": "none", "scopes": ["files:read"]})),
        )
        .await,
        201,
    )
    .await;
    let refused = app
        .client
        .get(app.url("/v1/webhooks"))
        .header("X-Api-Key", s(&none, "key"))
        .send()
        .await
        .unwrap();
    assert_envelope(refused, 403, "FORBIDDEN").await;
    assert_envelope(app.get("/v1/webhooks").await, 401, "UNAUTHORIZED").await;
    assert_envelope(app.get("/v1/webhooks/events").await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn rotation_returns_a_new_secret_once_and_keeps_the_old_one_for_the_grace_window() {
    let (app, admin, _) = acme().await;
    let created = create(&app, &admin, json!({"url": HOOK_URL})).await;
    let (id, first) = (s(&created, "id"), s(&created, "secret"));
    let path = format!("/v1/webhooks/{id}/rotate-secret");

    let before = now_ms();
    let rotated = json_of(
        send(&app, Method::POST, &path, &admin, Some(json!({}))).await,
        200,
    )
    .await;
    let second = s(&rotated, "secret");
    assert!(second.starts_with("whsec_") && second != first);
    let until = time::OffsetDateTime::parse(
        &s(&rotated, "previousSecretExpiresAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until_ms = (until.unix_timestamp_nanos() / 1_000_000) as i64;
    let day = 24 * 3_600_000;
    assert!(
        (before + day..=now_ms() + day).contains(&until_ms),
        "{rotated}"
    );
    let got = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &admin).await, 200).await;
    assert!(got.get("secret").is_none());
    assert_eq!(
        got["previousSecretExpiresAt"],
        rotated["previousSecretExpiresAt"]
    );
    let stored: Vec<(String, Option<String>)> = app.query(
        "SELECT secret_sealed, previous_secret_sealed FROM webhooks",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert!(stored[0].1.is_some(), "the previous secret is kept, sealed");
    assert_not_stored(&app, &first);
    assert_not_stored(&app, &second);

    // Bounds: 0 to 168 hours; 0 drops the previous secret at once.
    for hours in [169, -1] {
        let refused = send(
            &app,
            Method::POST,
            &path,
            &admin,
            Some(json!({"graceHours": hours})),
        )
        .await;
        assert_eq!(invalid_paths(refused).await, ["graceHours"]);
    }
    let max = json_of(
        send(
            &app,
            Method::POST,
            &path,
            &admin,
            Some(json!({"grace_hours": 168})),
        )
        .await,
        200,
    )
    .await;
    assert!(max["previousSecretExpiresAt"].is_string());
    let none = json_of(
        send(
            &app,
            Method::POST,
            &path,
            &admin,
            Some(json!({"graceHours": 0})),
        )
        .await,
        200,
    )
    .await;
    assert!(none.get("previousSecretExpiresAt").is_none(), "{none}");
    let stored: Vec<Option<String>> =
        app.query("SELECT previous_secret_sealed FROM webhooks", |r| r.get(0));
    assert!(stored[0].is_none());

    let actions = audit_actions(&app, &admin, &id).await;
    assert_eq!(
        actions,
        [
            "webhook.secret_rotated",
            "webhook.secret_rotated",
            "webhook.secret_rotated",
            "webhook.created"
        ]
    );
    let events: Vec<String> = app.query(
        "SELECT data FROM outbox_events WHERE type = 'webhook.secret_rotated' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(events.len(), 3);
    let first_event: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first_event["webhookId"], id.as_str());
    assert_eq!(
        first_event["previousSecretValidUntil"],
        rotated["previousSecretExpiresAt"]
    );
}

#[tokio::test]
async fn test_deliveries_are_queued_and_past_deliveries_replay_under_their_webhook_id() {
    let (app, admin, _) = acme().await;
    let hook = create(&app, &admin, json!({"url": HOOK_URL, "events": ["kv.*"]})).await;
    let id = s(&hook, "id");
    let test = format!("/v1/webhooks/{id}/test");

    let ping = json_of(
        send(&app, Method::POST, &test, &admin, Some(json!({}))).await,
        202,
    )
    .await;
    assert_eq!(ping["eventType"], "ping");
    assert_eq!(ping["isTest"], true);
    assert_eq!(ping["status"], "pending");
    assert_eq!(ping["attempts"], 0);
    assert_eq!(ping["webhookId"], id.as_str());
    assert_eq!(ping["payload"]["type"], "ping");
    assert_eq!(ping["payload"]["data"]["webhookId"], id.as_str());
    assert!(ping["payload"]["timestamp"].is_string());
    assert!(
        ping["messageId"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );

    // Any catalog type, with custom data; the reference's snake_case and its `id`.
    let custom = json_of(
        send(
            &app,
            Method::POST,
            &test,
            &admin,
            Some(
                json!({"id": id, "event_type": "file.uploaded", "data": {"fileId": "f-1", "n": 2}}),
            ),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(custom["eventType"], "file.uploaded");
    assert_eq!(custom["payload"]["data"], json!({"fileId": "f-1", "n": 2}));
    assert_ne!(custom["messageId"], ping["messageId"]);
    // The catalog's example by default.
    let example = json_of(
        send(
            &app,
            Method::POST,
            &test,
            &admin,
            Some(json!({"eventType": "kv.created"})),
        )
        .await,
        202,
    )
    .await;
    assert!(
        example["payload"]["data"]
            .as_object()
            .is_some_and(|d| !d.is_empty())
    );
    let stored: Vec<(i64, String)> = app.query(
        "SELECT is_test, body FROM webhook_deliveries ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|(test, _)| *test == 1));
    assert!(
        stored[0].1.starts_with(r#"{"type":"ping","timestamp":""#),
        "{}",
        stored[0].1
    );
    for (_, body) in &stored {
        let parsed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            parsed.as_object().unwrap().len(),
            3,
            "type, timestamp, data: {body}"
        );
    }

    for (body, path) in [
        (json!({"eventType": "nope"}), "eventType"),
        (json!({"eventType": "file.*"}), "eventType"),
        (json!({"data": [1, 2]}), "data"),
        (json!({"id": WebhookId::new().to_string()}), "id"),
        (json!({"action": "replay"}), "deliveryId"),
        (json!({"action": "replay", "deliveryId": "x"}), "deliveryId"),
        (json!({"action": "explode"}), "action"),
    ] {
        let refused = send(&app, Method::POST, &test, &admin, Some(body.clone())).await;
        assert_eq!(invalid_paths(refused).await, [path], "{body}");
    }
    // Replaying needs a finished delivery.
    let pending = send(
        &app,
        Method::POST,
        &test,
        &admin,
        Some(json!({"action": "replay", "deliveryId": ping["id"]})),
    )
    .await;
    assert_envelope(pending, 409, "CONFLICT").await;

    // Disabling the webhook cancels what is pending and refuses tests.
    send(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        &admin,
        Some(json!({"enabled": false})),
    )
    .await;
    let all = deliveries(&app, &admin, &id).await;
    assert!(all.iter().all(|d| d["status"] == "cancelled"), "{all:?}");
    assert!(
        all.iter()
            .all(|d| d["completedAt"].is_string() && d.get("nextAttemptAt").is_none())
    );
    let refused = send(&app, Method::POST, &test, &admin, Some(json!({}))).await;
    assert_envelope(refused, 409, "CONFLICT").await;
    send(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{id}"),
        &admin,
        Some(json!({"enabled": true})),
    )
    .await;

    let replay = json_of(
        send(
            &app,
            Method::POST,
            &test,
            &admin,
            Some(json!({"action": "replay", "delivery_id": custom["id"]})),
        )
        .await,
        202,
    )
    .await;
    assert_ne!(replay["id"], custom["id"]);
    assert_eq!(replay["messageId"], custom["messageId"]);
    assert_eq!(replay["originalDeliveryId"], custom["id"]);
    assert_eq!(replay["payload"], custom["payload"]);
    assert_eq!(replay["eventType"], "file.uploaded");
    assert_eq!(replay["isTest"], true, "a replay of a test stays a test");
    assert_eq!(replay["status"], "pending");
    let bodies: Vec<(String, String)> = app
        .query("SELECT id, body FROM webhook_deliveries ORDER BY id", |r| {
            Ok((r.get(0)?, r.get(1)?))
        });
    let body_of = |wanted: &Value| {
        bodies
            .iter()
            .find(|(id, _)| id == wanted.as_str().unwrap())
            .map(|(_, body)| body.clone())
            .unwrap()
    };
    assert_eq!(
        body_of(&replay["id"]),
        body_of(&custom["id"]),
        "the same bytes"
    );

    let detail = json_of(
        app.get_as(
            &format!("/v1/webhooks/{id}/deliveries/{}", s(&replay, "id")),
            &admin,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(detail["originalDeliveryId"], custom["id"]);
    assert_eq!(detail["attemptLog"], json!([]));
    for missing in [
        format!("/v1/webhooks/{id}/deliveries/{}", DeliveryId::new()),
        format!("/v1/webhooks/{id}/deliveries/not-an-id"),
    ] {
        assert_envelope(app.get_as(&missing, &admin).await, 404, "NOT_FOUND").await;
    }
    let unknown = send(
        &app,
        Method::POST,
        &test,
        &admin,
        Some(json!({"action": "replay", "deliveryId": DeliveryId::new().to_string()})),
    )
    .await;
    assert_envelope(unknown, 404, "NOT_FOUND").await;

    let actions = audit_actions(&app, &admin, &id).await;
    assert_eq!(actions.iter().filter(|a| *a == "webhook.tested").count(), 3);
    assert_eq!(actions[0], "webhook.replayed");
}

#[tokio::test]
async fn deliveries_page_newest_first_with_link_headers() {
    let (app, admin, _) = acme().await;
    let hook = create(&app, &admin, json!({"url": HOOK_URL, "events": ["ping"]})).await;
    let id = s(&hook, "id");
    let mut queued = Vec::new();
    for _ in 0..5 {
        let d = json_of(
            send(
                &app,
                Method::POST,
                &format!("/v1/webhooks/{id}/test"),
                &admin,
                Some(json!({})),
            )
            .await,
            202,
        )
        .await;
        queued.push(s(&d, "id"));
    }
    queued.reverse();
    let mut seen = Vec::new();
    let mut next = Some(format!("/v1/webhooks/{id}/deliveries?limit=2"));
    while let Some(path) = next {
        let response = app.get_as(&path, &admin).await;
        next = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned())
            .map(|link| {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                link[1..link.find('>').unwrap()].to_owned()
            });
        let page = json_of(response, 200).await;
        seen.extend(page.as_array().unwrap().iter().map(|d| s(d, "id")));
    }
    assert_eq!(seen, queued);
    // Newer than a cursor, and by status.
    let newer = json_of(
        app.get_as(
            &format!("/v1/webhooks/{id}/deliveries?after={}", queued[2]),
            &admin,
        )
        .await,
        200,
    )
    .await;
    let newer: Vec<String> = newer
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(d, "id"))
        .collect();
    assert_eq!(newer, queued[..2]);
    let none = json_of(
        app.get_as(
            &format!("/v1/webhooks/{id}/deliveries?status=succeeded"),
            &admin,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(none, json!([]));
    assert_envelope(
        app.get_as(
            &format!("/v1/webhooks/{id}/deliveries?status=bogus"),
            &admin,
        )
        .await,
        400,
        "BAD_REQUEST",
    )
    .await;
    for bad in [
        format!("before={}", DeliveryId::new()),
        "before=nope".to_owned(),
        "limit=0".to_owned(),
        format!("before={}&after={}", queued[0], queued[1]),
    ] {
        let response = app
            .get_as(&format!("/v1/webhooks/{id}/deliveries?{bad}"), &admin)
            .await;
        assert_envelope(response, 422, "VALIDATION").await;
    }
}

#[tokio::test]
async fn real_events_fan_out_to_matching_webhooks_of_their_organization_only() {
    let (app, owner, acme) = acme().await;
    let outsider = app
        .invite_and_register(&owner, &acme, "out@example.com", "member")
        .await;
    let outsider = s(&outsider, "accessToken");
    let globex = json_of(
        send(
            &app,
            Method::POST,
            "/v1/organizations",
            &outsider,
            Some(json!({"name": "Globex"})),
        )
        .await,
        201,
    )
    .await;
    let globex = s(&globex, "id");
    let hook = |events: Value| {
        let owner = owner.clone();
        let app = &app;
        async move {
            s(
                &create(app, &owner, json!({"url": HOOK_URL, "events": events})).await,
                "id",
            )
        }
    };
    let all = hook(json!(["*"])).await;
    let keys = hook(json!(["api_key.*"])).await;
    let exact = hook(json!(["api_key.created"])).await;
    let other = hook(json!(["kv.*", "api_key.revoked"])).await;
    let off = hook(json!(["*"])).await;
    send(
        &app,
        Method::PATCH,
        &format!("/v1/webhooks/{off}"),
        &owner,
        Some(json!({"enabled": false})),
    )
    .await;
    let foreign = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &outsider,
            Some(&json!({"url": HOOK_URL, "events": ["*"]})),
            Some(&globex),
        )
        .await,
        201,
    )
    .await;
    let foreign = s(&foreign, "id");
    // Everything so far is behind the cursor.
    fan_out(&app).await;
    let baseline: i64 = app.query("SELECT count(*) FROM webhook_deliveries", |r| r.get(0))[0];

    let key = json_of(
        send(
            &app,
            Method::POST,
            "/v1/api-keys",
            &owner,
            Some(json!({"name": "CI"})),
        )
        .await,
        201,
    )
    .await;
    fan_out(&app).await;
    let total: i64 = app.query("SELECT count(*) FROM webhook_deliveries", |r| r.get(0))[0];
    assert_eq!(total - baseline, 3, "one delivery per matching webhook");
    let (event_id, created_at): (String, String) = app.query(
        "SELECT id, created_at FROM outbox_events WHERE type = 'api_key.created' ORDER BY seq DESC LIMIT 1",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )[0]
    .clone();
    for matching in [&all, &keys, &exact] {
        let listed = deliveries(&app, &owner, matching).await;
        let created = of_type(&listed, "api_key.created");
        assert_eq!(created.len(), 1, "{matching}: {listed:?}");
        let delivery = created[0];
        assert_eq!(delivery["messageId"], event_id.as_str());
        assert_eq!(delivery["isTest"], false);
        assert_eq!(delivery["payload"]["type"], "api_key.created");
        assert_eq!(delivery["payload"]["timestamp"], created_at.as_str());
        assert_eq!(delivery["payload"]["data"]["apiKeyId"], key["id"]);
    }
    for silent in [&other, &off] {
        let listed = deliveries(&app, &owner, silent).await;
        assert!(
            of_type(&listed, "api_key.created").is_empty(),
            "{silent}: {listed:?}"
        );
    }
    let theirs = json_of(
        app.send_as(
            Method::GET,
            &format!("/v1/webhooks/{foreign}/deliveries"),
            &outsider,
            None,
            Some(&globex),
        )
        .await,
        200,
    )
    .await;
    assert!(
        of_type(theirs.as_array().unwrap(), "api_key.created").is_empty(),
        "{theirs}"
    );
    // Fan-out happens once per event.
    assert_eq!(fan_out(&app).await, FanOut::default());

    // A change that rolls back leaves no event, so nothing to deliver.
    let acme_org = acme.clone();
    app.store
        .call_write(move |tx| {
            sealbox::store::events::record(
                tx,
                "api_key.created",
                Some(acme_org),
                &json!({"apiKeyId": "rolled-back"}),
                "2026-11-24T18:30:00.000Z",
            )?;
            Ok(sealbox::store::Write::Rollback(()))
        })
        .await
        .unwrap();
    assert_eq!(fan_out(&app).await, FanOut::default());
    let after: i64 = app.query("SELECT count(*) FROM webhook_deliveries", |r| r.get(0))[0];
    assert_eq!(after, total);
    // The `*` webhook also got the webhook events of Acme: its own creation and the four
    // after it, not Globex's.
    let listed = deliveries(&app, &owner, &all).await;
    assert_eq!(of_type(&listed, "webhook.created").len(), 5, "{listed:?}");
}

#[tokio::test]
async fn attempts_retry_then_fail_and_repeated_failures_or_a_410_disable_the_webhook() {
    let (app, owner, acme) = acme().await;
    let admin = app
        .invite_and_register(&owner, &acme, "admin@example.com", "admin")
        .await;
    let admin = s(&admin, "accessToken");
    let member = app
        .invite_and_register(&owner, &acme, "member@example.com", "member")
        .await;
    let member = s(&member, "accessToken");
    let hook = create(
        &app,
        &owner,
        // Subscribed to nothing a request emits: only this test's deliveries reach it.
        json!({"url": HOOK_URL, "events": ["ping"],
               "retryPolicy": {"maxAttempts": 2, "disableAfterConsecutiveFailures": 3}}),
    )
    .await;
    let id = s(&hook, "id");

    // A failure is retried while attempts remain; the last one fails the delivery.
    let first = claimed_delivery(&app, &acme, &id).await;
    let retried = complete(&app, first, Some(500)).await;
    assert_eq!(
        retried,
        AttemptOutcome::Recorded {
            status: DeliveryStatus::Pending,
            webhook_disabled: false
        }
    );
    // The lease is spent: recording under it again does nothing.
    assert_eq!(
        complete(&app, first, Some(200)).await,
        AttemptOutcome::Stale
    );
    let detail = json_of(
        app.get_as(&format!("/v1/webhooks/{id}/deliveries/{}", first.0), &owner)
            .await,
        200,
    )
    .await;
    assert_eq!(detail["status"], "pending");
    assert_eq!(detail["attempts"], 1);
    assert_eq!(detail["responseStatusCode"], 500);
    assert_eq!(detail["responseBody"], "receiver says hi");
    assert_eq!(detail["durationMs"], 12);
    assert!(detail["nextAttemptAt"].is_string());
    assert_eq!(detail["attemptLog"].as_array().unwrap().len(), 1);
    let again = app
        .store
        .call_write(move |tx| {
            let claimed = webhooks::claim_due(tx, now_ms() + 12 * 24 * 3_600_000, 60_000, 1000)?;
            Ok(sealbox::store::Write::Commit(
                claimed
                    .into_iter()
                    .find(|d| d.delivery_id == first.0)
                    .map(|d| (d.delivery_id, d.lease_until)),
            ))
        })
        .await
        .unwrap()
        .expect("due again at its retry time");
    let failed = complete(&app, again, None).await;
    assert_eq!(
        failed,
        AttemptOutcome::Recorded {
            status: DeliveryStatus::Failed,
            webhook_disabled: false
        }
    );
    let detail = json_of(
        app.get_as(&format!("/v1/webhooks/{id}/deliveries/{}", first.0), &owner)
            .await,
        200,
    )
    .await;
    assert_eq!(detail["status"], "failed");
    assert_eq!(detail["error"], "connection refused");
    assert!(detail.get("responseStatusCode").is_none());
    let log = detail["attemptLog"].as_array().unwrap();
    assert_eq!(
        (log[0]["attempt"].clone(), log[1]["attempt"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(log[0]["responseStatusCode"], 500);
    assert_eq!(log[1]["error"], "connection refused");

    // A success ends the run of failures (two so far).
    let ok = claimed_delivery(&app, &acme, &id).await;
    assert_eq!(
        complete(&app, ok, Some(204)).await,
        AttemptOutcome::Recorded {
            status: DeliveryStatus::Succeeded,
            webhook_disabled: false
        }
    );
    let got = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &owner).await, 200).await;
    assert_eq!(got["consecutiveFailures"], 0);

    // Three failures in a row disable it; its pending deliveries are cancelled.
    let waiting = claimed_delivery(&app, &acme, &id).await;
    for n in 1..=3 {
        let attempt = claimed_delivery(&app, &acme, &id).await;
        let outcome = complete(&app, attempt, Some(503)).await;
        assert_eq!(
            outcome,
            AttemptOutcome::Recorded {
                status: if n < 3 {
                    DeliveryStatus::Pending
                } else {
                    DeliveryStatus::Failed
                },
                webhook_disabled: n == 3
            },
            "failure {n}"
        );
    }
    let got = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &owner).await, 200).await;
    assert_eq!(got["enabled"], false);
    assert_eq!(got["disabledReason"], "consecutive_failures");
    assert_eq!(got["consecutiveFailures"], 3);
    assert_eq!(
        complete(&app, waiting, Some(200)).await,
        AttemptOutcome::Stale
    );
    let statuses: Vec<String> = app.query(
        &format!(
            "SELECT status FROM webhook_deliveries WHERE id = '{}'",
            waiting.0
        ),
        |r| r.get(0),
    );
    assert_eq!(statuses, ["cancelled"]);
    let disabled: Vec<String> = app.query(
        "SELECT data FROM outbox_events WHERE type = 'webhook.disabled'",
        |r| r.get(0),
    );
    let data: Value = serde_json::from_str(&disabled[0]).unwrap();
    assert_eq!(
        data,
        json!({"webhookId": id, "reason": "consecutive_failures", "consecutiveFailures": 3})
    );
    assert_eq!(
        audit_actions(&app, &owner, &id).await[0],
        "webhook.disabled"
    );

    // Owners and admins are told; members are not.
    for token in [&owner, &admin] {
        let inbox = json_of(app.get_as("/v1/notifications", token).await, 200).await;
        assert_eq!(inbox.as_array().unwrap().len(), 1, "{inbox}");
        assert_eq!(inbox[0]["kind"], "webhook.disabled");
        assert_eq!(inbox[0]["data"]["webhookId"], id.as_str());
        assert_eq!(inbox[0]["read"], false);
        let body = s(&inbox[0], "body");
        assert!(body.contains("https://hooks.example.com"), "{body}");
        assert!(!body.contains("/sealbox"), "only the origin: {body}");
    }
    let inbox = json_of(app.get_as("/v1/notifications", &member).await, 200).await;
    assert_eq!(inbox, json!([]));

    // Enabled again, a 410 disables it at once.
    let enabled = json_of(
        send(
            &app,
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &owner,
            Some(json!({"enabled": true})),
        )
        .await,
        200,
    )
    .await;
    assert!(enabled.get("disabledReason").is_none());
    assert_eq!(enabled["consecutiveFailures"], 0);
    let gone = claimed_delivery(&app, &acme, &id).await;
    assert_eq!(
        complete(&app, gone, Some(410)).await,
        AttemptOutcome::Recorded {
            status: DeliveryStatus::Failed,
            webhook_disabled: true
        }
    );
    let got = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &owner).await, 200).await;
    assert_eq!(got["disabledReason"], "endpoint_gone");
    let inbox = json_of(app.get_as("/v1/notifications", &owner).await, 200).await;
    assert_eq!(inbox.as_array().unwrap().len(), 2);
    assert!(s(&inbox[0], "body").contains("410"));
}

#[tokio::test]
async fn notifications_list_newest_first_and_are_marked_read_by_id_or_all() {
    let (app, owner, acme) = acme().await;
    let org = acme.parse::<sealbox::ids::OrgId>().unwrap();
    for n in 0..5 {
        app.store
            .call_write(move |tx| {
                let told = sealbox::service::notifications::notify_org_admins(
                    tx,
                    org,
                    "webhook.disabled",
                    &format!("Notice {n}"),
                    "body",
                    &json!({"n": n}),
                )?;
                Ok(sealbox::store::Write::Commit(told))
            })
            .await
            .unwrap();
    }
    let inbox = json_of(app.get_as("/v1/notifications?limit=2", &owner).await, 200).await;
    assert_eq!(inbox[0]["title"], "Notice 4");
    assert_eq!(inbox[1]["title"], "Notice 3");
    assert_eq!(inbox[0]["organizationId"], acme.as_str());
    assert_eq!(inbox[0]["data"], json!({"n": 4}));
    assert!(inbox[0].get("readAt").is_none());
    let page = app.get_as("/v1/notifications?limit=2", &owner).await;
    assert!(page.headers().get("link").is_some());

    let marked = json_of(
        send(
            &app,
            Method::POST,
            "/v1/notifications/read",
            &owner,
            Some(
                json!({"ids": [inbox[0]["id"], inbox[1]["id"], uuid::Uuid::now_v7().to_string()]}),
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(marked, json!({"updated": 2}));
    let unread = json_of(
        app.get_as("/v1/notifications?unread=true", &owner).await,
        200,
    )
    .await;
    assert_eq!(unread.as_array().unwrap().len(), 3);
    let all = json_of(app.get_as("/v1/notifications", &owner).await, 200).await;
    assert_eq!(all[0]["read"], true);
    assert!(all[0]["readAt"].is_string());

    for (body, path) in [
        (json!({}), "ids"),
        (json!({"ids": []}), "ids"),
        (json!({"ids": ["x"]}), "ids[0]"),
        (json!({"ids": [all[0]["id"]], "all": true}), "all"),
    ] {
        let refused = send(
            &app,
            Method::POST,
            "/v1/notifications/read",
            &owner,
            Some(body.clone()),
        )
        .await;
        assert_eq!(invalid_paths(refused).await, [path], "{body}");
    }
    let marked = json_of(
        send(
            &app,
            Method::POST,
            "/v1/notifications/read",
            &owner,
            Some(json!({"all": true})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(marked, json!({"updated": 3}));
    let unread = json_of(
        app.get_as("/v1/notifications?unread=true", &owner).await,
        200,
    )
    .await;
    assert_eq!(unread, json!([]));
    assert_envelope(
        app.get_as(
            &format!("/v1/notifications?before={}", uuid::Uuid::now_v7()),
            &owner,
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_envelope(app.get("/v1/notifications").await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn the_event_catalog_lists_every_type_with_a_description_and_an_example_payload() {
    let (app, admin, _) = acme().await;
    let catalog = json_of(app.get_as("/v1/webhooks/events", &admin).await, 200).await;
    let types = catalog.as_array().unwrap();
    assert!(types.len() >= 43, "{}", types.len());
    for kind in types {
        let name = s(kind, "type");
        assert!(!s(kind, "description").is_empty(), "{name}");
        assert_eq!(kind["example"]["type"], name.as_str());
        assert!(kind["example"]["timestamp"].is_string());
        assert!(kind["example"]["data"].is_object(), "{name}");
        assert!(kind["emitted"].is_boolean());
    }
    let names: Vec<&str> = types.iter().map(|k| k["type"].as_str().unwrap()).collect();
    for wanted in [
        "ping",
        "api_key.created",
        "webhook.disabled",
        "transfer.downloaded",
    ] {
        assert!(names.contains(&wanted), "{wanted}");
    }
    let created = types
        .iter()
        .find(|k| k["type"] == "api_key.created")
        .unwrap();
    assert_eq!(created["emitted"], true);
}
