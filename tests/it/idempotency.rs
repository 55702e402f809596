//! `Idempotency-Key` on POST and PATCH: replays, payload mismatch, in-flight conflicts,
//! scoping to the principal, concurrency, expiry and restarts.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s};

const KEY: &str = "Idempotency-Key";
const REPLAYED: &str = "idempotent-replayed";

async fn acme() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    (app, s(&pair, "accessToken"), org)
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header(KEY, key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn key_count(app: &TestApp, token: &str) -> usize {
    json_of(app.get_as("/v1/api-keys", token).await, 200)
        .await
        .as_array()
        .unwrap()
        .len()
}

fn replayed(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(REPLAYED)
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn a_retry_replays_the_first_response_without_acting_again() {
    let (app, admin, _) = acme().await;
    let body = json!({"name": "deploy"});
    let first = send(&app, Method::POST, "/v1/api-keys", &admin, "k-1", &body).await;
    assert_eq!(first.status(), 201);
    assert!(!replayed(&first));
    let first_type = first.headers()["content-type"].clone();
    let first_id = first.headers()["x-request-id"].clone();
    let first: Value = first.json().await.unwrap();

    let retry = send(&app, Method::POST, "/v1/api-keys", &admin, "k-1", &body).await;
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry));
    assert_eq!(retry.headers()["content-type"], first_type);
    assert_eq!(
        retry.headers()["x-request-id"],
        first_id,
        "a replay names the request that produced it"
    );
    assert_eq!(retry.json::<Value>().await.unwrap(), first, "byte for byte");
    assert_eq!(key_count(&app, &admin).await, 1);
    let created: Vec<i64> = app.query(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'api_key.created'",
        |r| r.get(0),
    );
    assert_eq!(created, [1]);

    // The stored response holds a key shown once: it is sealed, not kept in the clear.
    let db = std::fs::read(app.data_dir.join("sealbox.db")).unwrap();
    let secret = s(&first, "key");
    assert!(!String::from_utf8_lossy(&db).contains(&secret[12..]));

    // PATCH too; errors (here 422) are replayed like successes.
    let path = format!("/v1/api-keys/{}", s(&first, "id"));
    let rename = json!({"name": "deploy-2"});
    let patched = send(&app, Method::PATCH, &path, &admin, "k-2", &rename).await;
    assert_eq!(patched.status(), 200);
    let again = send(&app, Method::PATCH, &path, &admin, "k-2", &rename).await;
    assert!(replayed(&again));
    assert_eq!(json_of(again, 200).await["name"], "deploy-2");
    let bad = json!({"scopes": ["no:such"]});
    let refused = send(&app, Method::PATCH, &path, &admin, "k-3", &bad).await;
    assert_envelope(refused, 422, "VALIDATION").await;
    let refused_again = send(&app, Method::PATCH, &path, &admin, "k-3", &bad).await;
    assert!(replayed(&refused_again));
    assert_envelope(refused_again, 422, "VALIDATION").await;

    // Without the header, or on GET, nothing is stored or replayed.
    let plain = app
        .send_as(Method::POST, "/v1/api-keys", &admin, Some(&body), None)
        .await;
    assert_eq!(plain.status(), 201);
    let listed = app
        .client
        .get(app.url("/v1/api-keys"))
        .bearer_auth(&admin)
        .header(KEY, "k-1")
        .send()
        .await
        .unwrap();
    assert!(!replayed(&listed));
    assert_eq!(key_count(&app, &admin).await, 2);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused() {
    let (app, admin, acme) = acme().await;
    let body = json!({"name": "deploy"});
    let first = send(&app, Method::POST, "/v1/api-keys", &admin, "k", &body).await;
    assert_eq!(first.status(), 201);
    let other_body = send(
        &app,
        Method::POST,
        "/v1/api-keys",
        &admin,
        "k",
        &json!({"name": "other"}),
    )
    .await;
    let error = assert_envelope(other_body, 422, "VALIDATION").await;
    assert_eq!(error["details"][0]["path"], KEY);
    let other_path = send(&app, Method::POST, "/v1/organizations", &admin, "k", &body).await;
    assert_envelope(other_path, 422, "VALIDATION").await;
    let other_org = app
        .client
        .post(app.url("/v1/api-keys"))
        .bearer_auth(&admin)
        .header(KEY, "k")
        .header("X-Organization-Id", &acme)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_envelope(other_org, 422, "VALIDATION").await;
    assert_eq!(key_count(&app, &admin).await, 1);

    for bad in ["", &"x".repeat(256), "two words"] {
        let refused = send(&app, Method::POST, "/v1/api-keys", &admin, bad, &body).await;
        let error = assert_envelope(refused, 400, "BAD_REQUEST").await;
        assert_eq!(error["details"][0]["path"], KEY, "{bad:?}");
    }
    // Unauthenticated: the key is ignored and the usual 401 answers.
    let anonymous = app
        .client
        .post(app.url("/v1/api-keys"))
        .header(KEY, "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_envelope(anonymous, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn keys_belong_to_the_principal_that_sent_them() {
    let (app, admin, acme) = acme().await;
    let other = app
        .invite_and_register(&admin, &acme, "mia@example.com", "member")
        .await;
    let other = s(&other, "accessToken");
    let body = json!({"name": "same"});
    let mine = json_of(
        send(&app, Method::POST, "/v1/api-keys", &admin, "shared", &body).await,
        201,
    )
    .await;
    let theirs = send(&app, Method::POST, "/v1/api-keys", &other, "shared", &body).await;
    assert!(!replayed(&theirs), "another user's key is another key");
    let theirs = json_of(theirs, 201).await;
    assert_ne!(mine["id"], theirs["id"]);

    // An API key is its own principal, apart from its owner's sessions.
    let api_key = s(
        &json_of(
            app.send_as(
                Method::POST,
                "/v1/api-keys",
                &admin,
                Some(&json!({
                    "name": "ops",
                    "scopes": ["api_keys:write", "transfers:write", "files:read"]
                })),
                None,
            )
            .await,
            201,
        )
        .await,
        "key",
    );
    let by_key = send(
        &app,
        Method::POST,
        "/v1/api-keys",
        &api_key,
        "shared",
        &body,
    )
    .await;
    assert!(!replayed(&by_key));
    assert_eq!(by_key.status(), 201);
}

#[tokio::test]
async fn parallel_retries_act_exactly_once() {
    let (app, admin, _) = acme().await;
    let body = json!({"name": "once"});
    let attempts = (0..20).map(|_| send(&app, Method::POST, "/v1/api-keys", &admin, "race", &body));
    let responses = futures_util::future::join_all(attempts).await;
    let mut originals = 0;
    let mut bodies = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            201 => {
                if !replayed(&response) {
                    originals += 1;
                }
                bodies.push(response.json::<Value>().await.unwrap());
            }
            409 => {
                assert_envelope(response, 409, "CONFLICT").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(originals, 1, "exactly one request ran");
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "replays match");
    assert_eq!(key_count(&app, &admin).await, 1);
    let after = send(&app, Method::POST, "/v1/api-keys", &admin, "race", &body).await;
    assert!(replayed(&after));
    assert_eq!(after.json::<Value>().await.unwrap(), bodies[0]);
}

#[tokio::test]
async fn in_flight_keys_conflict_and_expired_keys_are_swept() {
    let data = tempfile::TempDir::new().unwrap();
    let app = TestApp::spawn_in(data.path(), |_| {}).await.unwrap();
    let admin = s(&app.setup_admin().await, "accessToken");
    let body = json!({"name": "deploy"});
    assert_eq!(
        send(&app, Method::POST, "/v1/api-keys", &admin, "busy", &body)
            .await
            .status(),
        201
    );
    assert_eq!(
        send(&app, Method::POST, "/v1/api-keys", &admin, "old", &body)
            .await
            .status(),
        201
    );
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    // As if the first request with "busy" were still running.
    conn.execute(
        "UPDATE idempotency_keys SET state = 'running' WHERE key = 'busy'",
        [],
    )
    .unwrap();
    let busy = send(&app, Method::POST, "/v1/api-keys", &admin, "busy", &body).await;
    let error = assert_envelope(busy, 409, "CONFLICT").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("still being processed")
    );

    // Past its 24 hours, a key is forgotten: the same request acts again.
    conn.execute(
        "UPDATE idempotency_keys SET expires_at = '2000-01-01T00:00:00.000Z' WHERE key = 'old'",
        [],
    )
    .unwrap();
    let fresh = send(&app, Method::POST, "/v1/api-keys", &admin, "old", &body).await;
    assert_eq!(fresh.status(), 201);
    assert!(!replayed(&fresh));
    assert_eq!(key_count(&app, &admin).await, 3);
    conn.execute(
        "UPDATE idempotency_keys SET expires_at = '2000-01-01T00:00:00.000Z' WHERE key = 'old'",
        [],
    )
    .unwrap();
    drop(conn);

    // A restart sweeps expired keys and frees claims the stopped process left running.
    app.shutdown().await.unwrap();
    let restarted = TestApp::spawn_in(data.path(), |_| {}).await.unwrap();
    let left: Vec<String> = restarted.query("SELECT key FROM idempotency_keys", |r| r.get(0));
    assert!(left.is_empty(), "{left:?}");
    let retried = send(
        &restarted,
        Method::POST,
        "/v1/api-keys",
        &admin,
        "busy",
        &body,
    )
    .await;
    assert_eq!(retried.status(), 201, "the key is free again");
}
