//! API keys: minting, both header forms and their precedence, checksum, scopes, use
//! limits under concurrency, allowlists, expiry, rotation grace and immediate revocation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s};

pub(crate) async fn acme() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    (app, s(&pair, "accessToken"), org)
}

pub(crate) async fn create_key(app: &TestApp, token: &str, body: Value) -> Value {
    json_of(
        app.send_as(Method::POST, "/v1/api-keys", token, Some(&body), None)
            .await,
        201,
    )
    .await
}

pub(crate) async fn me_with_header(app: &TestApp, name: &str, value: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/me"))
        .header(name, value)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_is_shown_once_and_works_in_either_header_with_bearer_winning() {
    let (app, admin, acme) = acme().await;
    let created = create_key(&app, &admin, json!({"name": "CI"})).await;
    let key = s(&created, "key");
    assert!(key.starts_with("sbx_live_") && key.len() == 41, "{key}");
    assert_eq!(created["keyPrefix"], &key[..12]);
    assert_eq!(created["scopes"], json!(["transfers:write", "files:read"]));
    let listed = json_of(app.get_as("/v1/api-keys", &admin).await, 200).await;
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(
        listed[0].get("key").is_none(),
        "the key is never shown again"
    );
    let stored: Vec<Vec<u8>> = app.query("SELECT key_hash FROM api_keys", |r| r.get(0));
    assert_eq!(stored[0].len(), 32);
    assert!(
        !String::from_utf8_lossy(&std::fs::read(app.data_dir.join("sealbox.db")).unwrap())
            .contains(&key[12..])
    );

    for (header, value) in [
        ("Authorization", format!("Bearer {key}")),
        ("X-Api-Key", key.clone()),
    ] {
        let me = json_of(me_with_header(&app, header, &value).await, 200).await;
        assert_eq!(me["authType"], "api_key", "{header}");
        assert_eq!(me["organization"]["id"], acme.as_str());
        assert_eq!(me["organization"]["role"], "owner");
        assert_eq!(me["scopes"], json!(["transfers:write", "files:read"]));
    }
    let session = json_of(app.get_as("/v1/me", &admin).await, 200).await;
    assert_eq!(session["authType"], "session");
    assert!(session["scopes"].as_array().unwrap().len() > 20);

    // Bearer wins: a bad Bearer is refused even with a good X-Api-Key.
    let both = app
        .client
        .get(app.url("/v1/me"))
        .header(
            "Authorization",
            "Bearer sbx_live_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )
        .header("X-Api-Key", &key)
        .send()
        .await
        .unwrap();
    assert_envelope(both, 401, "UNAUTHORIZED").await;
    // A mistyped key fails its checksum; a reserved test key is never valid.
    let mut typo = key.clone();
    typo.replace_range(20..21, if &key[20..21] == "a" { "b" } else { "a" });
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &typo).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let test_key = key.replace("sbx_live_", "sbx_test_");
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &test_key).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(app.get("/v1/me").await, 401, "UNAUTHORIZED").await;

    // The last use shows up without waiting for the periodic write.
    let listed = json_of(app.get_as("/v1/api-keys", &admin).await, 200).await;
    assert_eq!(listed[0]["lastUsedIp"], "127.0.0.1");
    assert!(listed[0]["lastUsedAt"].is_string());
}

#[tokio::test]
async fn scopes_limit_a_key_and_cannot_exceed_the_owner() {
    let (app, admin, acme) = acme().await;
    let narrow = s(
        &create_key(
            &app,
            &admin,
            json!({"name": "narrow", "scopes": ["transfers:write"]}),
        )
        .await,
        "key",
    );
    let refused = me_with_header(&app, "X-Api-Key", &narrow).await;
    assert_eq!(refused.status(), 200, "/v1/me needs no scope");
    let roles = app
        .client
        .get(app.url("/v1/roles"))
        .header("X-Api-Key", &narrow)
        .send()
        .await
        .unwrap();
    let error = assert_envelope(roles, 403, "FORBIDDEN").await;
    assert!(
        error["message"].as_str().unwrap().contains("org:read"),
        "{error}"
    );
    let reader = s(
        &create_key(
            &app,
            &admin,
            json!({"name": "reader", "scopes": ["org:read"]}),
        )
        .await,
        "key",
    );
    let roles = app
        .client
        .get(app.url("/v1/roles"))
        .header("X-Api-Key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(roles.status(), 200);
    // A key acts only in its own organization.
    let other = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Other"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let elsewhere = app
        .client
        .get(app.url(&format!("/v1/organizations/{}", s(&other, "id"))))
        .header("X-Api-Key", &reader)
        .send()
        .await
        .unwrap();
    assert_envelope(elsewhere, 404, "NOT_FOUND").await;
    // Whatever its scopes, a key cannot manage the account it belongs to.
    for (method, path, body) in [
        (Method::GET, "/v1/sessions", None),
        (
            Method::PATCH,
            "/v1/users/me",
            Some(json!({"displayName": "Mallory"})),
        ),
        (
            Method::POST,
            "/v1/organizations",
            Some(json!({"name": "Shadow"})),
        ),
        (
            Method::POST,
            "/v1/invites/accept",
            Some(json!({"token": "t"})),
        ),
    ] {
        let mut request = app
            .client
            .request(method, app.url(path))
            .header("X-Api-Key", &reader);
        if let Some(body) = &body {
            request = request.json(body);
        }
        assert_envelope(request.send().await.unwrap(), 403, "FORBIDDEN").await;
    }

    let unknown = app
        .send_as(
            Method::POST,
            "/v1/api-keys",
            &admin,
            Some(&json!({"name": "x", "scopes": ["org:suspend"]})),
            None,
        )
        .await;
    let error = assert_envelope(unknown, 422, "VALIDATION").await;
    assert_eq!(error["details"][0]["path"], "scopes[0]");
    // A member cannot mint a key that reads the audit log.
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let above = app
        .send_as(
            Method::POST,
            "/v1/api-keys",
            &s(&bob, "accessToken"),
            Some(&json!({"name": "x", "scopes": ["audit:read"]})),
            None,
        )
        .await;
    assert_envelope(above, 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn max_uses_is_exact_under_concurrency() {
    let (app, admin, _) = acme().await;
    let key = s(
        &create_key(&app, &admin, json!({"name": "ten", "max_uses": 10})).await,
        "key",
    );
    let calls = (0..50).map(|_| {
        let (client, url, key) = (app.client.clone(), app.url("/v1/me"), key.clone());
        tokio::spawn(async move {
            client
                .get(url)
                .header("X-Api-Key", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        40,
        "{statuses:?}"
    );
    assert_eq!(
        app.query("SELECT use_count FROM api_keys", |r| r.get::<_, i64>(0)),
        [10]
    );
}

#[tokio::test]
async fn a_public_route_with_a_body_spends_no_use_of_a_key_sent_along() {
    let (app, admin, _) = acme().await;
    let key = s(
        &create_key(&app, &admin, json!({"name": "two", "max_uses": 2})).await,
        "key",
    );
    // A sign-in (public, with a JSON body) from a client that sends its key everywhere.
    for _ in 0..3 {
        let login = app
            .client
            .post(app.url("/v1/auth/login"))
            .header("X-Api-Key", &key)
            .json(&json!({"email": crate::support::ADMIN_EMAIL, "password": crate::support::ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
    }
    assert_eq!(
        app.query("SELECT use_count FROM api_keys", |r| r.get::<_, i64>(0)),
        [0]
    );
    // Its two uses are still there for the API.
    for _ in 0..2 {
        assert_eq!(me_with_header(&app, "X-Api-Key", &key).await.status(), 200);
    }
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &key).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn revocation_expiry_allowlists_and_the_owner_stop_a_key_at_once() {
    let (app, admin, acme) = acme().await;
    let created = create_key(&app, &admin, json!({"name": "k"})).await;
    let key = s(&created, "key");
    assert_eq!(me_with_header(&app, "X-Api-Key", &key).await.status(), 200);
    assert_eq!(
        app.delete_as(&format!("/v1/api-keys/{}", s(&created, "id")), &admin)
            .await
            .status(),
        204
    );
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &key).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        app.delete_as(&format!("/v1/api-keys/{}", s(&created, "id")), &admin)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;

    let expiring = create_key(
        &app,
        &admin,
        json!({"name": "e", "expiresAt": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &s(&expiring, "key"))
            .await
            .status(),
        200
    );
    let past = app
        .send_as(
            Method::POST,
            "/v1/api-keys",
            &admin,
            Some(&json!({"name": "p", "expiresAt": "2001-01-01T00:00:00Z"})),
            None,
        )
        .await;
    assert_envelope(past, 422, "VALIDATION").await;
    rusqlite::Connection::open(app.data_dir.join("sealbox.db"))
        .unwrap()
        .execute(
            "UPDATE api_keys SET expires_at = '2001-01-01T00:00:00.000Z' WHERE id = ?1",
            [s(&expiring, "id")],
        )
        .unwrap();
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &s(&expiring, "key")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    let fenced = create_key(
        &app,
        &admin,
        json!({"name": "f", "ipAllowlist": ["10.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    let error = assert_envelope(
        me_with_header(&app, "X-Api-Key", &s(&fenced, "key")).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("127.0.0.1"),
        "{error}"
    );
    let patched = json_of(
        app.send_as(
            Method::PATCH,
            &format!("/v1/api-keys/{}", s(&fenced, "id")),
            &admin,
            Some(&json!({"ipAllowlist": ["127.0.0.0/8"]})),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["ipAllowlist"], json!(["127.0.0.0/8"]));
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &s(&fenced, "key"))
            .await
            .status(),
        200
    );
    let bad = app
        .send_as(
            Method::PATCH,
            &format!("/v1/api-keys/{}", s(&fenced, "id")),
            &admin,
            Some(&json!({"ipAllowlist": ["10.0.0.300/8"]})),
            None,
        )
        .await;
    assert_envelope(bad, 422, "VALIDATION").await;

    // A member's key dies with their membership; a suspended organization stops its keys.
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let bob_key = s(
        &create_key(&app, &s(&bob, "accessToken"), json!({"name": "b"})).await,
        "key",
    );
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &bob_key).await.status(),
        200
    );
    let disable = app
        .send_as(
            Method::PATCH,
            &format!("/v1/organizations/{acme}/members/{}", s(&bob["user"], "id")),
            &admin,
            Some(&json!({"status": "disabled"})),
            None,
        )
        .await;
    assert_eq!(disable.status(), 200);
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &bob_key).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let admin_key = s(&create_key(&app, &admin, json!({"name": "a"})).await, "key");
    assert_eq!(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{acme}/suspend"),
            &admin,
            None,
            None
        )
        .await
        .status(),
        200
    );
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &admin_key).await,
        403,
        "ORG_SUSPENDED",
    )
    .await;

    let events = app.query(
        "SELECT type FROM outbox_events WHERE type LIKE 'api_key.%' ORDER BY seq",
        |r| r.get::<_, String>(0),
    );
    assert!(
        events.contains(&"api_key.revoked".to_owned())
            && events.contains(&"api_key.updated".to_owned())
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_its_grace_period_only() {
    let (app, admin, _) = acme().await;
    let first = create_key(
        &app,
        &admin,
        json!({"name": "deploy", "scopes": ["org:read"]}),
    )
    .await;
    let rotate = |id: String, body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.send_as(
                Method::POST,
                &format!("/v1/api-keys/{id}/rotate"),
                &admin,
                Some(&body),
                None,
            )
            .await
        }
    };
    let second = json_of(rotate(s(&first, "id"), json!({})).await, 201).await;
    assert_eq!(second["name"], "deploy");
    assert_eq!(second["scopes"], json!(["org:read"]));
    assert_ne!(second["key"], first["key"]);
    // Both work during the grace period (24 h by default).
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &s(&first, "key"))
            .await
            .status(),
        200
    );
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &s(&second, "key"))
            .await
            .status(),
        200
    );
    // A rotated key is not rotated again.
    assert_envelope(rotate(s(&first, "id"), json!({})).await, 404, "NOT_FOUND").await;
    assert_envelope(
        rotate(s(&second, "id"), json!({"gracePeriodHours": 169})).await,
        422,
        "VALIDATION",
    )
    .await;
    // With no grace, the old value stops at once; after the grace, too.
    let third = json_of(
        rotate(s(&second, "id"), json!({"gracePeriodHours": 0})).await,
        201,
    )
    .await;
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &s(&second, "key")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &s(&third, "key"))
            .await
            .status(),
        200
    );
    rusqlite::Connection::open(app.data_dir.join("sealbox.db"))
        .unwrap()
        .execute(
            "UPDATE api_keys SET expires_at = '2001-01-01T00:00:00.000Z' WHERE id = ?1",
            [s(&first, "id")],
        )
        .unwrap();
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &s(&first, "key")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let audit = app.query(
        "SELECT count(*) FROM audit_log WHERE action = 'api_key.rotated'",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(audit, [2]);
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    for (trusted, expected) in [(true, 200), (false, 403)] {
        let app = TestApp::spawn_with(|c| {
            if trusted {
                c.server.trusted_proxies = vec!["127.0.0.1".into()];
            }
        })
        .await;
        let admin = s(&app.setup_admin().await, "accessToken");
        let key = s(
            &create_key(
                &app,
                &admin,
                json!({"name": "office", "ipAllowlist": ["203.0.113.0/24"]}),
            )
            .await,
            "key",
        );
        let response = app
            .client
            .get(app.url("/v1/me"))
            .header("X-Api-Key", &key)
            // A client-supplied hop, then the one the trusted proxy appended.
            .header("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "trusted: {trusted}");
        let ips = app.query(
            "SELECT ip FROM audit_log WHERE action = 'api_key.created'",
            |r| r.get::<_, String>(0),
        );
        assert_eq!(ips, ["127.0.0.1"], "the admin called directly");
    }
}

#[tokio::test]
async fn instance_admins_rotate_or_issue_a_users_key() {
    let (app, admin, acme) = acme().await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let (bob_token, bob_id) = (s(&bob, "accessToken"), s(&bob["user"], "id"));
    let path = format!("/admin/orgs/{acme}/users/{bob_id}/apikey/rotate");

    // No key yet: one is issued, with the default scopes, and it is Bob's.
    let issued = json_of(
        app.send_as(Method::POST, &path, &admin, None, None).await,
        201,
    )
    .await;
    assert_eq!(issued["userId"], bob_id.as_str());
    assert_eq!(issued["scopes"], json!(["transfers:write", "files:read"]));
    let me = json_of(
        me_with_header(&app, "X-Api-Key", &s(&issued, "key")).await,
        200,
    )
    .await;
    assert_eq!(me["user"]["email"], "bob@example.com");

    // With a key: rotated, the old value kept for the grace period asked for.
    let rotated = json_of(
        app.send_as(
            Method::POST,
            &format!("{path}?gracePeriodHours=0"),
            &admin,
            None,
            None,
        )
        .await,
        201,
    )
    .await;
    assert_envelope(
        me_with_header(&app, "X-Api-Key", &s(&issued, "key")).await,
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
    let listed = json_of(app.get_as("/v1/api-keys", &bob_token).await, 200).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "the rotated-out key is listed until revoked"
    );

    // Only instance admins; only members of the organization.
    assert_envelope(
        app.send_as(Method::POST, &path, &bob_token, None, None)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    let stranger = format!(
        "/admin/orgs/{acme}/users/{}/apikey/rotate",
        uuid::Uuid::now_v7()
    );
    assert_envelope(
        app.send_as(Method::POST, &stranger, &admin, None, None)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let too_long = app
        .send_as(
            Method::POST,
            &format!("{path}?gracePeriodHours=500"),
            &admin,
            None,
            None,
        )
        .await;
    assert_eq!(too_long.status().as_u16() / 100, 4);
}

#[tokio::test]
async fn a_key_may_revoke_itself_but_no_other_key_without_the_scope() {
    let (app, admin, _) = acme().await;
    let narrow = create_key(
        &app,
        &admin,
        json!({"name": "cli", "scopes": ["transfers:read", "transfers:write"]}),
    )
    .await;
    let other = create_key(&app, &admin, json!({"name": "other"})).await;
    let key = s(&narrow, "key");
    let delete = |id: String| {
        let (app, key) = (&app, key.clone());
        async move {
            app.client
                .delete(app.url(&format!("/v1/api-keys/{id}")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    assert_envelope(delete(s(&other, "id")).await, 403, "FORBIDDEN").await;
    assert_eq!(delete(s(&narrow, "id")).await.status(), 204);
    assert_eq!(
        me_with_header(&app, "X-Api-Key", &key).await.status(),
        401,
        "revoked"
    );
    let other_still = me_with_header(&app, "X-Api-Key", &s(&other, "key")).await;
    assert_eq!(other_still.status(), 200);
}
