//! First-run setup, sign-in, refresh rotation with replay detection, sign-out, sessions,
//! and the audit rows and outbox events they write.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_envelope, s};

#[tokio::test]
async fn setup_creates_the_first_admin_and_organization_once() {
    let app = TestApp::spawn().await;
    let token = app
        .setup_token
        .clone()
        .expect("a setup token while no user exists");
    let pair = app.setup_admin().await;
    assert_eq!(pair["tokenType"], "Bearer");
    assert_eq!(pair["expiresIn"], 900);
    let user = &pair["user"];
    assert_eq!(user["email"], ADMIN_EMAIL);
    assert_eq!(user["isInstanceAdmin"], true);
    assert_eq!(user["organizations"][0]["name"], "Acme");
    assert_eq!(user["organizations"][0]["role"], "owner");
    assert_eq!(
        user["defaultOrganizationId"],
        user["organizations"][0]["id"]
    );

    let me: Value = app
        .get_as("/v1/auth/me", &s(&pair, "accessToken"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], user["id"]);

    // The token is dead: a second setup is refused, with any payload.
    let again = app
        .post_json(
            "/v1/setup",
            &json!({"token": token, "email": "eve@example.com", "password": "another-long-password",
                    "displayName": "Eve", "organizationName": "Evil"}),
        )
        .await;
    assert_envelope(again, 401, "UNAUTHORIZED").await;
    assert_eq!(
        app.query("SELECT count(*) FROM users", |r| r.get::<_, i64>(0)),
        vec![1]
    );
}

#[tokio::test]
async fn a_restart_replaces_the_setup_token() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    let old_token = first.setup_token.clone().unwrap();
    first.shutdown().await.unwrap();

    let second = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    assert_ne!(second.setup_token.as_deref(), Some(old_token.as_str()));
    let body = json!({"token": old_token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                      "displayName": "Ada", "organizationName": "Acme"});
    assert_envelope(
        second.post_json("/v1/setup", &body).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    second.setup_admin().await;
    second.shutdown().await.unwrap();

    let third = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    assert_eq!(
        third.setup_token, None,
        "no setup token once an admin exists"
    );
}

#[tokio::test]
async fn setup_checks_the_token_before_anything_else() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/v1/setup",
            &json!({"token": "wrong", "email": "", "password": "", "displayName": "", "organizationName": ""}),
        )
        .await;
    assert_envelope(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn setup_reports_every_invalid_field() {
    let app = TestApp::spawn().await;
    let response = app
        .post_json(
            "/v1/setup",
            &json!({"token": app.setup_token, "email": "not-an-email", "password": "password123",
                    "displayName": "  ", "organizationName": "x".repeat(101)}),
        )
        .await;
    let error = assert_envelope(response, 422, "VALIDATION").await;
    let mut paths: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["displayName", "email", "organizationName", "password"]
    );

    // The token survives a refused attempt.
    app.setup_admin().await;
}

#[tokio::test]
async fn json_bodies_are_checked_with_precise_errors() {
    let app = TestApp::spawn_with(|c| c.limits.json_body_bytes = 2048).await;
    let post = |body: Vec<u8>, content_type: Option<&'static str>| {
        let mut request = app.client.post(app.url("/v1/auth/login")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    let json_ct = Some("application/json");
    assert_envelope(
        post(b"{\"email\":".to_vec(), json_ct).await.unwrap(),
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_envelope(
        post(b"".to_vec(), json_ct).await.unwrap(),
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_envelope(
        post(b"[1,2]".to_vec(), json_ct).await.unwrap(),
        422,
        "VALIDATION",
    )
    .await;

    let error = assert_envelope(
        post(br#"{"email": 5, "password": "x"}"#.to_vec(), json_ct)
            .await
            .unwrap(),
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(error["details"][0]["path"], "email");
    let error = assert_envelope(
        post(br#"{"email": "a@b.c"}"#.to_vec(), json_ct)
            .await
            .unwrap(),
        422,
        "VALIDATION",
    )
    .await;
    assert!(
        error["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{error}"
    );
    // Unknown fields are ignored, as the schema allows: this reaches the credential check.
    let response = post(
        br#"{"email": "a@b.c", "password": "x", "remember": true}"#.to_vec(),
        json_ct,
    )
    .await
    .unwrap();
    assert_envelope(response, 401, "UNAUTHORIZED").await;

    assert_envelope(
        post(
            b"email=a".to_vec(),
            Some("application/x-www-form-urlencoded"),
        )
        .await
        .unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_envelope(
        post(b"{}".to_vec(), None).await.unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_envelope(
        post(vec![b' '; 4096], json_ct).await.unwrap(),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // application/*+json and a charset are JSON too.
    let response = post(
        br#"{"email": "nobody@example.com", "password": "whatever-long"}"#.to_vec(),
        Some("application/json; charset=utf-8"),
    )
    .await
    .unwrap();
    assert_envelope(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    let wrong = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": ADMIN_EMAIL, "password": "not-the-password"}),
        )
        .await;
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Bearer realm=\"sealbox\""
    );
    let wrong = assert_envelope(wrong, 401, "UNAUTHORIZED").await;
    let unknown = assert_envelope(
        app.post_json(
            "/v1/auth/login",
            &json!({"email": "nobody@example.com", "password": "not-the-password"}),
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(wrong["message"], unknown["message"]);

    // Emails are case-insensitive.
    app.login(&ADMIN_EMAIL.to_uppercase(), ADMIN_PASSWORD).await;

    // Failures are audited, with the account when there is one.
    let failures = app.query(
        "SELECT actor_user_id IS NOT NULL FROM audit_log WHERE action = 'auth.login' AND outcome = 'failure' ORDER BY seq",
        |r| r.get::<_, bool>(0),
    );
    assert_eq!(failures, vec![true, false]);
    let events = app.query(
        "SELECT type FROM outbox_events WHERE type = 'user.login_failed'",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn repeated_failures_are_delayed_even_for_the_right_password() {
    use sealbox::service::login_throttle::FREE_FAILURES;
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    for _ in 0..FREE_FAILURES {
        let response = app
            .post_json(
                "/v1/auth/login",
                &json!({"email": ADMIN_EMAIL, "password": "guess-guess-guess"}),
            )
            .await;
        assert_eq!(response.status(), 401);
    }
    let response = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_envelope(response, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn refresh_rotates_and_a_replay_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let login = app.setup_admin().await;
    let first_refresh = s(&login, "refreshToken");

    // The rightful client refreshes: new pair, same session.
    let rotated: Value = app
        .post_json("/v1/auth/refresh", &json!({"refreshToken": first_refresh}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["sessionId"], login["sessionId"]);
    assert_ne!(rotated["refreshToken"], login["refreshToken"]);
    let victim_access = s(&rotated, "accessToken");
    assert_eq!(
        app.get_as("/v1/auth/me", &victim_access).await.status(),
        200
    );

    // A thief replays the stolen first token (snake_case spelling accepted as an alias).
    let replay = app
        .post_json("/v1/auth/refresh", &json!({"refresh_token": first_refresh}))
        .await;
    let error = assert_envelope(replay, 401, "UNAUTHORIZED").await;
    assert!(
        error["message"].as_str().unwrap().contains("revoked"),
        "{error}"
    );

    // Both the thief's and the victim's next refresh fail, and so does the access token.
    let victim_next = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refreshToken": rotated["refreshToken"]}),
        )
        .await;
    assert_envelope(victim_next, 401, "UNAUTHORIZED").await;
    let thief_next = app
        .post_json("/v1/auth/refresh", &json!({"refreshToken": first_refresh}))
        .await;
    assert_envelope(thief_next, 401, "UNAUTHORIZED").await;
    assert_envelope(
        app.get_as("/v1/auth/me", &victim_access).await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    let audit = app.query(
        "SELECT outcome FROM audit_log WHERE action = 'auth.refresh_token_reused'",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(audit, vec!["failure".to_string()]);
    let events = app.query("SELECT type FROM outbox_events WHERE type IN ('auth.refresh_token_reused', 'session.revoked')", |r| r.get::<_, String>(0));
    assert_eq!(
        events,
        vec![
            "auth.refresh_token_reused".to_string(),
            "session.revoked".to_string()
        ]
    );
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_let_at_most_one_through() {
    let app = TestApp::spawn().await;
    let login = app.setup_admin().await;
    let body = json!({"refreshToken": login["refreshToken"]});
    let attempts = (0..8).map(|_| app.post_json("/v1/auth/refresh", &body));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(ok <= 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    // Any second use was a replay: the session is gone.
    assert_envelope(
        app.get_as("/v1/auth/me", &s(&login, "accessToken")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    let login = app.setup_admin().await;
    let access = s(&login, "accessToken");
    let response = app
        .post_json(
            "/v1/auth/logout",
            &json!({"refreshToken": login["refreshToken"]}),
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_envelope(
        app.get_as("/v1/auth/me", &access).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let refresh = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refreshToken": login["refreshToken"]}),
        )
        .await;
    assert_envelope(refresh, 401, "UNAUTHORIZED").await;
    let garbage = app
        .post_json("/v1/auth/logout", &json!({"refreshToken": "garbage"}))
        .await;
    assert_envelope(garbage, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn sessions_are_listed_and_a_revoked_one_stops_at_once() {
    let app = TestApp::spawn().await;
    let laptop = app.setup_admin().await;
    let phone = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let listed: Vec<Value> = app
        .get_as("/v1/sessions", &s(&laptop, "accessToken"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop["sessionId"]);
    assert_eq!(current[0]["ip"], "127.0.0.1");

    let revoke = app
        .delete_as(
            &format!("/v1/sessions/{}", s(&phone, "sessionId")),
            &s(&laptop, "accessToken"),
        )
        .await;
    assert_eq!(revoke.status(), 204);
    assert_envelope(
        app.get_as("/v1/auth/me", &s(&phone, "accessToken")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        app.get_as("/v1/auth/me", &s(&laptop, "accessToken"))
            .await
            .status(),
        200
    );

    for id in [
        s(&phone, "sessionId"),
        uuid::Uuid::now_v7().to_string(),
        "not-a-uuid".into(),
    ] {
        let again = app
            .delete_as(&format!("/v1/sessions/{id}"), &s(&laptop, "accessToken"))
            .await;
        assert_envelope(again, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn another_users_session_is_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.setup_admin().await;
    // A second account, created through the store as the (later) admin API will.
    let store = app.store.clone();
    store
        .call(|conn| {
            sealbox::store::users::insert(
                conn,
                &sealbox::store::users::NewUser {
                    id: sealbox::ids::UserId::new(),
                    email: "bob@example.com",
                    display_name: "Bob",
                    password_hash: Some(&sealbox::auth::password::hash("bobs-long-password")),
                    is_instance_admin: false,
                    default_org_id: None,
                    now: &sealbox::ids::now_rfc3339(),
                },
            )
        })
        .await
        .unwrap();
    let bob = app.login("bob@example.com", "bobs-long-password").await;
    assert_eq!(bob["user"]["isInstanceAdmin"], false);

    let attempt = app
        .delete_as(
            &format!("/v1/sessions/{}", s(&admin, "sessionId")),
            &s(&bob, "accessToken"),
        )
        .await;
    assert_envelope(attempt, 404, "NOT_FOUND").await;
    assert_eq!(
        app.get_as("/v1/auth/me", &s(&admin, "accessToken"))
            .await
            .status(),
        200
    );
    let bobs: Vec<Value> = app
        .get_as("/v1/sessions", &s(&bob, "accessToken"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs.len(), 1, "only bob's own session is listed");
}

#[tokio::test]
async fn a_disabled_account_is_refused_on_its_next_request() {
    let app = TestApp::spawn().await;
    let login = app.setup_admin().await;
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute("UPDATE users SET status = 'disabled'", [])
        .unwrap();
    assert_envelope(
        app.get_as("/v1/auth/me", &s(&login, "accessToken")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let refresh = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refreshToken": login["refreshToken"]}),
        )
        .await;
    assert_envelope(refresh, 401, "UNAUTHORIZED").await;
    let again = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_envelope(again, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn malformed_and_foreign_access_tokens_are_401() {
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    let other = TestApp::spawn().await;
    let foreign = other.setup_admin().await;
    for token in ["", "junk", "a.b.c", &s(&foreign, "accessToken")] {
        let response = app.get_as("/v1/auth/me", token).await;
        assert_envelope(response, 401, "UNAUTHORIZED").await;
    }
    assert_envelope(app.get("/v1/auth/me").await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn setup_writes_audit_rows_and_events_in_one_transaction() {
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    let actions = app.query(
        "SELECT action, outcome, request_id IS NOT NULL FROM audit_log ORDER BY seq",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        },
    );
    let names: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "setup.completed",
            "user.created",
            "organization.created",
            "member.added"
        ]
    );
    assert!(actions.iter().all(|a| a.1 == "success" && a.2));
    let events = app.query("SELECT type FROM outbox_events ORDER BY seq", |r| {
        r.get::<_, String>(0)
    });
    assert_eq!(
        events,
        [
            "user.created",
            "organization.created",
            "member.added",
            "session.created"
        ]
    );

    // The audit log refuses edits.
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    assert!(
        conn.execute("UPDATE audit_log SET action = 'x'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
}
