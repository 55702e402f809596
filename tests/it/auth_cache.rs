//! The in-process cache of credential checks never outlives a change: each test uses a
//! credential first (so its check is cached), changes what it rests on over HTTP, and
//! expects the very next request to see the change. Key revocation and a member's key
//! dying with their membership are covered in `api_keys`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api_keys::{acme, create_key, me_with_header};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_envelope, json_of, s};

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_as("/v1/me", token).await
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.send_as(Method::PATCH, path, token, Some(&body), None)
        .await
}

#[tokio::test]
async fn a_revoked_session_stops_its_access_token_on_the_next_request() {
    let (app, admin, _) = acme().await;
    let other = s(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await, "accessToken");
    assert_eq!(me(&app, &other).await.status(), 200);
    let sessions = json_of(app.get_as("/v1/sessions", &admin).await, 200).await;
    let victim = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["current"] == false)
        .unwrap();
    let revoked = app
        .delete_as(&format!("/v1/sessions/{}", s(victim, "id")), &admin)
        .await;
    assert_eq!(revoked.status(), 204);
    assert_envelope(me(&app, &other).await, 401, "UNAUTHORIZED").await;
    assert_eq!(me(&app, &admin).await.status(), 200);
}

#[tokio::test]
async fn logout_stops_the_access_token_on_the_next_request() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let token = s(&pair, "accessToken");
    assert_eq!(me(&app, &token).await.status(), 200);
    let out = app
        .post_json(
            "/v1/auth/logout",
            &json!({"refreshToken": s(&pair, "refreshToken")}),
        )
        .await;
    assert!(out.status().is_success(), "{}", out.status());
    assert_envelope(me(&app, &token).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn a_password_change_stops_the_other_sessions_on_the_next_request() {
    let (app, admin, _) = acme().await;
    let other = s(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await, "accessToken");
    assert_eq!(me(&app, &other).await.status(), 200);
    let changed = patch(
        &app,
        "/v1/users/me",
        &admin,
        json!({"password": "a-brand-new-long-password", "currentPassword": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    assert_envelope(me(&app, &other).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn membership_role_and_suspension_changes_show_on_the_next_request() {
    let (app, admin, acme) = acme().await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let (bob_token, bob_id) = (s(&bob, "accessToken"), s(&bob["user"], "id"));
    let bob_key = s(
        &create_key(
            &app,
            &bob_token,
            json!({"name": "b", "scopes": ["org:read"]}),
        )
        .await,
        "key",
    );
    let member = format!("/v1/organizations/{acme}/members/{bob_id}");

    // A role change: the session and the key see the new role at once.
    let seen = json_of(me(&app, &bob_token).await, 200).await;
    assert_eq!(seen["organization"]["role"], "member");
    let seen = json_of(me_with_header(&app, "X-Api-Key", &bob_key).await, 200).await;
    assert_eq!(seen["organization"]["role"], "member");
    let promoted = patch(&app, &member, &admin, json!({"role": "admin"})).await;
    assert_eq!(promoted.status(), 200);
    let seen = json_of(me(&app, &bob_token).await, 200).await;
    assert_eq!(seen["organization"]["role"], "admin");
    let seen = json_of(me_with_header(&app, "X-Api-Key", &bob_key).await, 200).await;
    assert_eq!(seen["organization"]["role"], "admin");

    // A suspension stops the session's calls in the organization and every key of it.
    let admin_key = s(&create_key(&app, &admin, json!({"name": "a"})).await, "key");
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &admin_key).await.status(),
        200
    );
    let suspended = app
        .send_as(
            Method::POST,
            &format!("/v1/organizations/{acme}/suspend"),
            &admin,
            None,
            None,
        )
        .await;
    assert_eq!(suspended.status(), 200);
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &admin_key).await,
        403,
        "ORG_SUSPENDED",
    )
    .await;
    assert_envelope(me(&app, &bob_token).await, 403, "ORG_SUSPENDED").await;
    let lifted = app
        .send_as(
            Method::POST,
            &format!("/v1/organizations/{acme}/unsuspend"),
            &admin,
            None,
            None,
        )
        .await;
    assert_eq!(lifted.status(), 200);
    assert_eq!(me(&app, &bob_token).await.status(), 200);

    // A disabled membership: the session no longer acts in the organization.
    let disabled = patch(&app, &member, &admin, json!({"status": "disabled"})).await;
    assert_eq!(disabled.status(), 200);
    assert_envelope(me(&app, &bob_token).await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn a_scope_change_or_a_rotation_without_grace_shows_on_the_next_request() {
    let (app, admin, _) = acme().await;
    let created = create_key(
        &app,
        &admin,
        json!({"name": "k", "scopes": ["org:read", "kv:read"]}),
    )
    .await;
    let (id, key) = (s(&created, "id"), s(&created, "key"));
    let seen = json_of(me_with_header(&app, "X-Api-Key", &key).await, 200).await;
    assert!(
        seen["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("kv:read"))
    );
    let narrowed = patch(
        &app,
        &format!("/v1/api-keys/{id}"),
        &admin,
        json!({"scopes": ["org:read"]}),
    )
    .await;
    assert_eq!(narrowed.status(), 200);
    let seen = json_of(me_with_header(&app, "X-Api-Key", &key).await, 200).await;
    assert_eq!(seen["scopes"], json!(["org:read"]));

    let rotated = app
        .send_as(
            Method::POST,
            &format!("/v1/api-keys/{id}/rotate"),
            &admin,
            Some(&json!({"gracePeriodHours": 0})),
            None,
        )
        .await;
    let rotated = json_of(rotated, 201).await;
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &key).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &s(&rotated, "key"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_custom_roles_new_permissions_show_on_the_next_request() {
    let (app, admin, acme) = acme().await;
    let role = json_of(
        app.send_as(
            Method::POST,
            "/v1/roles",
            &admin,
            Some(&json!({"name": "Log reader", "permissions": ["org:read", "audit:read"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let (bob_token, bob_id) = (s(&bob, "accessToken"), s(&bob["user"], "id"));
    let assigned = patch(
        &app,
        &format!("/v1/organizations/{acme}/members/{bob_id}"),
        &admin,
        json!({"role": s(&role, "id")}),
    )
    .await;
    assert_eq!(assigned.status(), 200);
    let seen = json_of(me(&app, &bob_token).await, 200).await;
    assert!(
        seen["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("audit:read"))
    );
    let changed = patch(
        &app,
        &format!("/v1/roles/{}", s(&role, "id")),
        &admin,
        json!({"permissions": ["org:read"]}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let seen = json_of(me(&app, &bob_token).await, 200).await;
    assert_eq!(seen["scopes"], json!(["org:read"]));
}

#[tokio::test]
async fn a_change_committed_by_another_process_shows_on_the_next_request() {
    let (app, admin, _) = acme().await;
    let key = s(&create_key(&app, &admin, json!({"name": "k"})).await, "key");
    for _ in 0..2 {
        assert_eq!(me(&app, &admin).await.status(), 200);
        assert_eq!(me_with_header(&app, "X-Api-Key", &key).await.status(), 200);
    }
    // What `sealbox admin` or an operator's sqlite3 shell would do beside the server.
    let db = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    db.execute(
        "UPDATE users SET status = 'disabled' WHERE email = ?1",
        [ADMIN_EMAIL],
    )
    .unwrap();
    assert_envelope(me(&app, &admin).await, 401, "UNAUTHORIZED").await;
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &key).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    db.execute(
        "UPDATE users SET status = 'active' WHERE email = ?1",
        [ADMIN_EMAIL],
    )
    .unwrap();
    assert_eq!(me(&app, &admin).await.status(), 200);
    assert_eq!(me_with_header(&app, "X-Api-Key", &key).await.status(), 200);
}
