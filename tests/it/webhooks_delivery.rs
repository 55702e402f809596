//! Webhook deliveries end to end: the real server sends to a real HTTP receiver
//! (`tests/webhooks/receiver.py`) that verifies every delivery with the official Standard
//! Webhooks library. Retries run on a shrunken schedule (`webhooks.time_scale`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use std::os::unix::process::ExitStatusExt;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, TestApp, json_of, s, venv_python};

const RECEIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/receiver.py");

/// The Python receiver, on `port` or a free one; killed when dropped. Also used by the
/// browser tests of the Webhooks page (`web_vault.rs`).
pub(crate) struct Receiver {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Receiver {
    pub(crate) fn start(port: Option<u16>) -> Self {
        let mut command = Command::new(venv_python());
        command.arg(RECEIVER);
        if let Some(port) = port {
            command.arg(port.to_string());
        }
        let mut child = command
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
            .unwrap_or_else(|| panic!("receiver said {first:?}"));
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The secrets deliveries to `endpoint` are verified against, by label.
    pub(crate) async fn verify_with(&self, endpoint: &str, secrets: &[(&str, &str)]) {
        let secrets: serde_json::Map<String, Value> = secrets
            .iter()
            .map(|(label, secret)| ((*label).to_owned(), json!(secret)))
            .collect();
        let response = self
            .client
            .post(self.url("/_secrets"))
            .json(&json!({"endpoint": endpoint, "secrets": secrets}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    pub(crate) async fn received(&self, endpoint: &str) -> Vec<Value> {
        let all: Vec<Value> = self
            .client
            .get(self.url("/_received"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.into_iter()
            .filter(|d| d["endpoint"] == endpoint)
            .collect()
    }

    /// Waits until `endpoint` has received at least `count` requests.
    pub(crate) async fn wait_for(&self, endpoint: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received(endpoint).await;
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{endpoint}: {} of {count} deliveries arrived: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The app with loopback allowed for webhooks and a retry schedule 1,000 times shorter.
async fn app() -> (TestApp, String) {
    let app = TestApp::spawn_with(|config| {
        config.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
        config.webhooks.time_scale = 0.001;
    })
    .await;
    let token = s(&app.setup_admin().await, "accessToken");
    (app, token)
}

async fn create_webhook(app: &TestApp, token: &str, body: Value) -> Value {
    json_of(
        app.send_as(Method::POST, "/v1/webhooks", token, Some(&body), None)
            .await,
        201,
    )
    .await
}

/// Something that emits `api_key.created`: a new API key.
async fn make_event(app: &TestApp, token: &str, name: &str) {
    let created = app
        .send_as(
            Method::POST,
            "/v1/api-keys",
            token,
            Some(&json!({"name": name})),
            None,
        )
        .await;
    assert_eq!(created.status(), 201);
}

async fn deliveries(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    let page = json_of(
        app.get_as(&format!("/v1/webhooks/{webhook}/deliveries"), token)
            .await,
        200,
    )
    .await;
    page.as_array().cloned().unwrap_or_default()
}

/// Waits until the webhook's deliveries satisfy `done`.
async fn wait_deliveries(
    app: &TestApp,
    token: &str,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(app, token, webhook).await;
        if done(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries never settled: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn body_of(delivery: &Value) -> Value {
    serde_json::from_str(delivery["body"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_signed_as_standard_webhooks_and_only_where_they_match() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    let all = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/ok/all"), "events": ["*"]}),
    )
    .await;
    let keys_only = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/ok/keys"), "events": ["api_key.*"]}),
    )
    .await;
    let exact = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/ok/exact"), "events": ["kv.created"]}),
    )
    .await;
    receiver
        .verify_with("all", &[("current", &s(&all, "secret"))])
        .await;
    receiver
        .verify_with("keys", &[("current", &s(&keys_only, "secret"))])
        .await;
    let _ = exact;

    make_event(&app, &token, "ci").await;
    let got = receiver.wait_for("keys", 1).await;
    let delivery = &got[0];
    assert_eq!(delivery["verified"]["current"], true, "{delivery:#}");
    assert_eq!(delivery["legacyVerified"]["current"], true, "{delivery:#}");
    let headers = &delivery["headers"];
    assert_eq!(headers["x-sealbox-event-type"], "api_key.created");
    assert_eq!(headers["webhook-id"], headers["x-sealbox-event-id"]);
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("x-sealbox-test-delivery").is_none());
    let body = body_of(delivery);
    assert_eq!(body["type"], "api_key.created");
    assert!(
        body["timestamp"].is_string() && body["data"].is_object(),
        "{body}"
    );

    // `*` saw it too (after the webhook.created events of the later webhooks).
    let everything = receiver.wait_for("all", 1).await;
    assert!(
        everything.iter().all(|d| d["verified"]["current"] == true),
        "{everything:#?}"
    );
    assert!(
        everything
            .iter()
            .any(|d| d["headers"]["x-sealbox-event-type"] == "api_key.created")
    );
    // The exact filter for another type saw nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received("exact").await.is_empty());
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_the_same_webhook_id_until_they_succeed() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    let hook = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/fail/3/flaky"), "events": ["api_key.created"]}),
    )
    .await;
    receiver
        .verify_with("flaky", &[("current", &s(&hook, "secret"))])
        .await;
    make_event(&app, &token, "retried").await;
    let got = receiver.wait_for("flaky", 4).await;
    assert_eq!(got.len(), 4, "three failures, then success: {got:#?}");
    let ids: Vec<_> = got
        .iter()
        .map(|d| d["headers"]["webhook-id"].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(got.iter().all(|d| d["verified"]["current"] == true));
    let answered: Vec<_> = got
        .iter()
        .map(|d| d["answered"].as_u64().unwrap())
        .collect();
    assert_eq!(answered, [500, 500, 500, 200]);
    // The schedule (60 s, 300 s, 1800 s at 1/1000): later attempts wait longer.
    let at: Vec<f64> = got
        .iter()
        .map(|d| d["receivedAt"].as_f64().unwrap())
        .collect();
    assert!(at[3] - at[2] > at[1] - at[0], "{at:?}");
    let list = wait_deliveries(&app, &token, &s(&hook, "id"), |list| {
        list.first().is_some_and(|d| d["status"] == "succeeded")
    })
    .await;
    assert_eq!(list[0]["attempts"], 4);
    assert_eq!(list[0]["responseStatusCode"], 200);
    assert_eq!(list[0]["messageId"], ids[0]);
    let webhook = json_of(
        app.get_as(&format!("/v1/webhooks/{}", s(&hook, "id")), &token)
            .await,
        200,
    )
    .await;
    assert_eq!(webhook["consecutiveFailures"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_at_once_and_repeated_failures_disable_after_the_limit() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    let gone = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/gone/gone"), "events": ["api_key.created"]}),
    )
    .await;
    let failing = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/fail/1000/failing"), "events": ["api_key.created"],
               "retryPolicy": {"maxAttempts": 1, "disableAfterConsecutiveFailures": 2}}),
    )
    .await;
    let settled = |id: String| {
        let (app, token) = (&app, &token);
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let hook =
                    json_of(app.get_as(&format!("/v1/webhooks/{id}"), token).await, 200).await;
                if hook["enabled"] == false {
                    return hook;
                }
                assert!(Instant::now() < deadline, "never disabled: {hook:#}");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    };
    // One event: 410 disables the first webhook at once; the second has failed once.
    make_event(&app, &token, "one").await;
    let gone_now = settled(s(&gone, "id")).await;
    assert_eq!(gone_now["disabledReason"], "endpoint_gone", "{gone_now:#}");
    receiver.wait_for("failing", 1).await;
    // A second failure in a row reaches its limit of two.
    make_event(&app, &token, "two").await;
    let failing_now = settled(s(&failing, "id")).await;
    assert_eq!(
        failing_now["disabledReason"], "consecutive_failures",
        "{failing_now:#}"
    );
    make_event(&app, &token, "three").await;
    // A disabled webhook is sent nothing more: 410 came once; the failing one got two.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received("gone").await.len(), 1);
    assert_eq!(receiver.received("failing").await.len(), 2);

    // The admins hear of it, and so does the outbox (`webhook.disabled`).
    let notes = json_of(app.get_as("/v1/notifications", &token).await, 200).await;
    let notes = notes.as_array().unwrap();
    assert_eq!(
        notes
            .iter()
            .filter(|n| n["kind"] == "webhook.disabled")
            .count(),
        2,
        "{notes:#?}"
    );
    let events: Vec<String> = app.query(
        "SELECT type FROM outbox_events WHERE type = 'webhook.disabled'",
        |r| r.get(0),
    );
    assert_eq!(events.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_secrets_verify_and_afterwards_only_the_new_one() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    let hook = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/ok/rotating"), "events": ["api_key.created"]}),
    )
    .await;
    let id = s(&hook, "id");
    let old = s(&hook, "secret");
    let rotated = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &token,
            Some(&json!({"graceHours": 1})),
            None,
        )
        .await,
        200,
    )
    .await;
    let new = s(&rotated, "secret");
    assert_ne!(old, new);
    receiver
        .verify_with("rotating", &[("old", &old), ("new", &new)])
        .await;
    make_event(&app, &token, "during").await;
    let during = receiver.wait_for("rotating", 1).await;
    assert_eq!(during[0]["verified"], json!({"old": true, "new": true}));
    assert_eq!(
        during[0]["legacyVerified"],
        json!({"old": true, "new": true})
    );
    let signatures = during[0]["headers"]["webhook-signature"].as_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");

    // The grace window closes (moved into the past here rather than waited for).
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE webhooks SET previous_secret_expires_at = 1 WHERE id = ?1",
        [&id],
    )
    .unwrap();
    make_event(&app, &token, "after").await;
    let after = receiver.wait_for("rotating", 2).await;
    assert_eq!(after[1]["verified"], json!({"old": false, "new": true}));
    assert_eq!(
        after[1]["legacyVerified"],
        json!({"old": false, "new": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_deliveries_and_replays() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    let hook = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/ok/tested"), "events": ["kv.*"]}),
    )
    .await;
    let id = s(&hook, "id");
    receiver
        .verify_with("tested", &[("current", &s(&hook, "secret"))])
        .await;
    let test = |body: Value| {
        let (app, token, id) = (&app, &token, &id);
        async move {
            app.send_as(
                Method::POST,
                &format!("/v1/webhooks/{id}/test"),
                token,
                Some(&body),
                None,
            )
            .await
        }
    };
    assert!(test(json!({})).await.status().is_success());
    let ping = receiver.wait_for("tested", 1).await;
    assert_eq!(ping[0]["headers"]["x-sealbox-test-delivery"], "true");
    assert_eq!(ping[0]["verified"]["current"], true);
    assert_eq!(body_of(&ping[0])["type"], "ping");

    let custom = json!({"key": "db-password", "version": 7});
    assert!(
        test(json!({"event_type": "kv.updated", "data": custom}))
            .await
            .status()
            .is_success()
    );
    let got = receiver.wait_for("tested", 2).await;
    let body = body_of(&got[1]);
    assert_eq!(body["type"], "kv.updated");
    assert_eq!(body["data"], custom);
    let unknown = test(json!({"event_type": "no.such"})).await;
    assert_eq!(unknown.status(), 422);

    // A replay re-sends a past delivery: the same webhook-id and body, a new delivery
    // that points at the original.
    let list = wait_deliveries(&app, &token, &id, |list| {
        list.len() == 2 && list.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let original = list
        .iter()
        .find(|d| d["eventType"] == "kv.updated")
        .unwrap()
        .clone();
    let replayed = test(json!({"action": "replay", "deliveryId": s(&original, "id")})).await;
    assert!(
        replayed.status().is_success(),
        "{}",
        replayed.text().await.unwrap()
    );
    let got = receiver.wait_for("tested", 3).await;
    assert_eq!(
        got[2]["headers"]["webhook-id"],
        got[1]["headers"]["webhook-id"]
    );
    assert_eq!(got[2]["body"], got[1]["body"]);
    assert_eq!(got[2]["verified"]["current"], true);
    let list = wait_deliveries(&app, &token, &id, |list| list.len() == 3).await;
    let replay = list
        .iter()
        .find(|d| d["originalDeliveryId"] == original["id"])
        .unwrap_or_else(|| panic!("no replay in {list:#?}"));
    assert_eq!(replay["messageId"], original["messageId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_targets_are_refused_at_creation_and_at_delivery() {
    let receiver = Receiver::start(None);
    // No allowed networks: loopback is refused.
    let app = TestApp::spawn_with(|config| config.webhooks.time_scale = 0.001).await;
    let token = s(&app.setup_admin().await, "accessToken");
    for url in [
        receiver.url("/ok/ssrf"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]:8080/x".to_owned(),
        "http://10.0.0.8/x".to_owned(),
    ] {
        let refused = app
            .send_as(
                Method::POST,
                "/v1/webhooks",
                &token,
                Some(&json!({"url": url, "events": ["*"]})),
                None,
            )
            .await;
        assert_eq!(refused.status(), 422, "{url}");
    }
    // A name is resolved at delivery: `localhost` is 127.0.0.1, refused then, never sent.
    let port = receiver.base.rsplit(':').next().unwrap();
    let named = create_webhook(
        &app,
        &token,
        json!({"url": format!("http://localhost:{port}/ok/ssrf"), "events": ["api_key.created"]}),
    )
    .await;
    make_event(&app, &token, "ssrf").await;
    let list = wait_deliveries(&app, &token, &s(&named, "id"), |list| {
        list.first()
            .is_some_and(|d| d["attempts"].as_u64() >= Some(1))
    })
    .await;
    assert!(list[0]["responseStatusCode"].is_null(), "{:#}", list[0]);
    assert!(
        list[0]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{:#}",
        list[0]
    );
    assert!(receiver.received("ssrf").await.is_empty());

    // Even where loopback and link-local are allowed, the metadata address is not.
    let allowing = TestApp::spawn_with(|config| {
        config.webhooks.allowed_networks = vec!["127.0.0.0/8".into(), "169.254.0.0/16".into()];
    })
    .await;
    let token = s(&allowing.setup_admin().await, "accessToken");
    let metadata = allowing
        .send_as(
            Method::POST,
            "/v1/webhooks",
            &token,
            Some(&json!({"url": "http://169.254.169.254/", "events": ["*"]})),
            None,
        )
        .await;
    assert_eq!(metadata.status(), 422);
    create_webhook(
        &allowing,
        &token,
        json!({"url": receiver.url("/ok/allowed"), "events": ["*"]}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    let hook = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/redirect/moved"), "events": ["api_key.created"],
               "retryPolicy": {"maxAttempts": 1}}),
    )
    .await;
    make_event(&app, &token, "moved").await;
    let list = wait_deliveries(&app, &token, &s(&hook, "id"), |list| {
        list.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(list[0]["responseStatusCode"], 302);
    let got = receiver.received("moved").await;
    assert_eq!(got.len(), 1, "the redirect target was not asked: {got:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_finishes_the_sends_in_flight() {
    let receiver = Receiver::start(None);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), |config| {
        config.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
    })
    .await
    .unwrap();
    let token = s(&app.setup_admin().await, "accessToken");
    let hook = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/slow/1500/slow"), "events": ["api_key.created"]}),
    )
    .await;
    make_event(&app, &token, "slow").await;
    // Wait until the send is under way (leased), then stop the server.
    let id = s(&hook, "id");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leased: Vec<i64> = app.query(
            &format!("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = '{id}' AND lease_until IS NOT NULL"),
            |r| r.get(0),
        );
        if leased[0] > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the delivery was never leased");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let data_dir = app.data_dir.clone();
    app.shutdown().await.unwrap();
    let got = receiver.received("slow").await;
    assert_eq!(got.len(), 1, "the send in flight finished");
    let conn = rusqlite::Connection::open(data_dir.join("sealbox.db")).unwrap();
    let status: String = conn
        .query_row(
            "SELECT status FROM webhook_deliveries WHERE webhook_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        status, "succeeded",
        "and its attempt was recorded before the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_at_a_sigkill_are_all_sent_after_the_restart() {
    let home = tempfile::tempdir().unwrap();
    // A port with nothing listening yet: every attempt fails until the receiver starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = toml::Value::from(home.path().join("data").to_str().unwrap());
    std::fs::write(
        home.path().join("sealbox.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = {data}\n\
             [tls]\nmode = \"off\"\n\
             [webhooks]\nallowed_networks = [\"127.0.0.0/8\"]\ntimeout_secs = 1\n\
             time_scale = 0.0001\n\
             [log]\nlevel = \"warn\"\n"
        ),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let mut server = Server::start(home.path(), true);
    let pair = json_of(
        client
            .post(format!("{}/v1/setup", server.base))
            .json(&json!({
                "token": server.setup_token.as_deref().unwrap(),
                "email": ADMIN_EMAIL,
                "password": ADMIN_PASSWORD,
                "displayName": "Ada Lovelace",
                "organizationName": "Acme",
            }))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let token = s(&pair, "accessToken");
    let hook = json_of(
        client
            .post(format!("{}/v1/webhooks", server.base))
            .bearer_auth(&token)
            .json(&json!({"url": format!("http://127.0.0.1:{port}/ok/killed"),
                          "events": ["api_key.created"]}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let id = s(&hook, "id");
    for n in 0..10 {
        let created = client
            .post(format!("{}/v1/api-keys", server.base))
            .bearer_auth(&token)
            .json(&json!({"name": format!("killed-{n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    // Every delivery has failed at least once (connection refused) and waits to retry.
    let list_of = |base: String| {
        let (client, token, id) = (&client, &token, &id);
        async move {
            json_of(
                client
                    .get(format!("{base}/v1/webhooks/{id}/deliveries?limit=100"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap(),
                200,
            )
            .await
            .as_array()
            .cloned()
            .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let pending = loop {
        let list = list_of(server.base.clone()).await;
        if list.len() == 10
            && list
                .iter()
                .all(|d| d["attempts"].as_u64() >= Some(1) && d["status"] == "pending")
        {
            break list;
        }
        assert!(Instant::now() < deadline, "{list:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut expected: Vec<String> = pending.iter().map(|d| s(d, "messageId")).collect();
    expected.sort();

    assert_eq!(server.kill().signal(), Some(9));
    let receiver = Receiver::start(Some(port));
    receiver
        .verify_with("killed", &[("current", &s(&hook, "secret"))])
        .await;
    let server = Server::start(home.path(), false);
    let got = receiver.wait_for("killed", 10).await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|d| d["headers"]["webhook-id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, expected, "every event, with its original webhook-id");
    assert!(got.iter().all(|d| d["verified"]["current"] == true));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = list_of(server.base.clone()).await;
        if list.iter().all(|d| d["status"] == "succeeded") {
            break;
        }
        assert!(Instant::now() < deadline, "{list:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_postpones_the_next_attempt() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    // 503 with Retry-After: 300 s (300 ms at 1/1000), where the schedule alone would wait
    // 60 s ± 20% (48-72 ms).
    let hook = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/retry-after/300/later"), "events": ["api_key.created"],
               "retryPolicy": {"maxAttempts": 2}}),
    )
    .await;
    make_event(&app, &token, "later").await;
    let got = receiver.wait_for("later", 2).await;
    let at: Vec<f64> = got
        .iter()
        .map(|d| d["receivedAt"].as_f64().unwrap())
        .collect();
    assert!(
        at[1] - at[0] >= 0.3,
        "the second attempt came {} s later",
        at[1] - at[0]
    );
    let list = wait_deliveries(&app, &token, &s(&hook, "id"), |list| {
        list.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(list[0]["attempts"], 2);
    assert_eq!(list[0]["responseStatusCode"], 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_deliveries_and_fanned_out_events_past_retention_are_pruned() {
    let receiver = Receiver::start(None);
    let (app, token) = app().await;
    let hook = create_webhook(
        &app,
        &token,
        json!({"url": receiver.url("/ok/kept"), "events": ["api_key.created"]}),
    )
    .await;
    let id = s(&hook, "id");
    make_event(&app, &token, "old").await;
    make_event(&app, &token, "new").await;
    let list = wait_deliveries(&app, &token, &id, |list| {
        list.len() == 2 && list.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let old = s(&list[1], "id");
    // One delivery and the events before it finished long ago.
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE webhook_deliveries SET completed_at = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
        [&old],
    )
    .unwrap();
    conn.execute(
        "UPDATE outbox_events SET created_at = '2000-01-01T00:00:00.000Z'
          WHERE seq < (SELECT max(seq) FROM outbox_events)",
        [],
    )
    .unwrap();
    let events_before: i64 = conn
        .query_row("SELECT count(*) FROM outbox_events", [], |r| r.get(0))
        .unwrap();
    let cutoff = "2001-01-01T00:00:00.000Z";
    let (pruned, events) = app
        .store
        .call(move |conn| {
            let fanned_out = sealbox::store::webhooks::dispatch_cursor(conn)?;
            Ok((
                sealbox::store::webhooks::prune_finished(conn, cutoff, 100)?,
                sealbox::store::events::prune_fanned_out(conn, fanned_out, cutoff, 100)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(events as i64, events_before - 1, "all but the newest event");
    let left = deliveries(&app, &token, &id).await;
    assert_eq!(left.len(), 1);
    assert_ne!(s(&left[0], "id"), old);
    let attempts: i64 = conn
        .query_row(
            "SELECT count(*) FROM webhook_attempts WHERE delivery_id = ?1",
            [&old],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attempts, 0, "its attempts went with it");
}
