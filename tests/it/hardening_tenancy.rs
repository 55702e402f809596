//! Issue 15, "Scopes and tenancy": each test performs the attack over HTTP against the
//! real server, sees it refused (status and code) and checks that nothing changed.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, SEALBOX_BIN, TestApp, assert_envelope, json_of, s,
};

/// Sends `method path` with `X-Api-Key: key` and an optional JSON body.
async fn with_key(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("X-Api-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Creates an API key for the session `token` in `org` with `scopes`; returns (id, key).
async fn create_key(app: &TestApp, token: &str, org: &str, scopes: &[&str]) -> (String, String) {
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            token,
            Some(&json!({"name": "test key", "scopes": scopes})),
            Some(org),
        )
        .await,
        201,
    )
    .await;
    (s(&created, "id"), s(&created, "key"))
}

fn count(app: &TestApp, sql: &str) -> i64 {
    app.query(sql, |row| row.get(0))[0]
}

fn org_status(app: &TestApp, org: &str) -> String {
    app.query(
        &format!("SELECT status FROM organizations WHERE id = '{org}'"),
        |row| row.get(0),
    )
    .remove(0)
}

/// Acme (the instance admin Ada owns it) and Globex, made by Ada at `/admin/orgs`, owned
/// by Hank, who is no instance admin.
struct Instance {
    app: TestApp,
    admin: String,
    acme: String,
    globex: String,
    hank: String,
    hank_id: String,
}

async fn instance() -> Instance {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");
    let globex = json_of(
        app.send_as(
            Method::POST,
            "/admin/orgs",
            &admin,
            Some(&json!({"name": "Globex"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let globex = s(&globex, "id");
    let hank = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{globex}/users"),
            &admin,
            Some(
                &json!({"email": "hank@globex.example", "displayName": "Hank",
                         "password": MEMBER_PASSWORD, "role": "owner"}),
            ),
            None,
        )
        .await,
        201,
    )
    .await;
    let hank_id = s(&hank["user"], "userId");
    let hank = s(
        &app.login("hank@globex.example", MEMBER_PASSWORD).await,
        "accessToken",
    );
    Instance {
        app,
        admin,
        acme,
        globex,
        hank,
        hank_id,
    }
}

#[tokio::test]
async fn an_instance_admins_key_without_the_admin_scope_has_no_instance_admin_power() {
    let Instance {
        app,
        admin,
        acme,
        globex,
        hank_id,
        ..
    } = instance().await;
    let (_, key) = create_key(&app, &admin, &acme, &["files:read"]).await;
    let users_before = count(&app, "SELECT count(*) FROM users");
    let keys_before = count(&app, "SELECT count(*) FROM api_keys");

    let listed = with_key(&app, Method::GET, "/admin/orgs", &key, None).await;
    let error = assert_envelope(listed, 403, "FORBIDDEN").await;
    assert!(
        error["message"].as_str().unwrap().contains("`admin` scope"),
        "{error}"
    );
    let members = with_key(
        &app,
        Method::GET,
        &format!("/admin/orgs/{globex}/users"),
        &key,
        None,
    )
    .await;
    assert_envelope(members, 403, "FORBIDDEN").await;
    let owner = with_key(
        &app,
        Method::POST,
        &format!("/admin/orgs/{globex}/users"),
        &key,
        Some(
            json!({"email": "mallory@globex.example", "displayName": "Mallory",
                    "password": MEMBER_PASSWORD, "role": "owner"}),
        ),
    )
    .await;
    assert_envelope(owner, 403, "FORBIDDEN").await;
    let minted = with_key(
        &app,
        Method::POST,
        &format!("/admin/orgs/{globex}/users/{hank_id}/apikey/rotate"),
        &key,
        None,
    )
    .await;
    assert_envelope(minted, 403, "FORBIDDEN").await;
    let made = with_key(
        &app,
        Method::POST,
        "/admin/orgs",
        &key,
        Some(json!({"name": "Initech"})),
    )
    .await;
    assert_envelope(made, 403, "FORBIDDEN").await;
    // Suspending another organization: the key acts only in Acme, so Globex is not there.
    let suspended = with_key(
        &app,
        Method::POST,
        &format!("/v1/organizations/{globex}/suspend"),
        &key,
        None,
    )
    .await;
    assert_envelope(suspended, 404, "NOT_FOUND").await;
    // Nor its own: `files:read` is not `org:suspend`.
    let own = with_key(
        &app,
        Method::POST,
        &format!("/v1/organizations/{acme}/suspend"),
        &key,
        None,
    )
    .await;
    assert_envelope(own, 403, "FORBIDDEN").await;

    assert_eq!(count(&app, "SELECT count(*) FROM users"), users_before);
    assert_eq!(count(&app, "SELECT count(*) FROM api_keys"), keys_before);
    assert_eq!(count(&app, "SELECT count(*) FROM organizations"), 2);
    assert_eq!(org_status(&app, &globex), "active");
    assert_eq!(org_status(&app, &acme), "active");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE email = 'mallory@globex.example'"
        ),
        0
    );
}

#[tokio::test]
async fn the_admin_scope_is_explicit_and_only_an_instance_admin_grants_it() {
    let Instance {
        app,
        admin,
        acme,
        globex,
        hank,
        ..
    } = instance().await;

    // Hank owns Globex but is no instance admin: he cannot grant `admin`, on create or
    // on change.
    let keys_before = count(&app, "SELECT count(*) FROM api_keys");
    let refused = app
        .send_as(
            Method::POST,
            "/v1/api-keys",
            &hank,
            Some(&json!({"name": "sneaky", "scopes": ["admin", "files:read"]})),
            Some(&globex),
        )
        .await;
    let error = assert_envelope(refused, 403, "FORBIDDEN").await;
    assert!(
        error["message"].as_str().unwrap().contains("admin"),
        "{error}"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM api_keys"), keys_before);
    let (hank_key_id, hank_key) = create_key(&app, &hank, &globex, &["files:read"]).await;
    let widened = app
        .send_as(
            Method::PATCH,
            &format!("/v1/api-keys/{hank_key_id}"),
            &hank,
            Some(&json!({"scopes": ["admin", "files:read"]})),
            Some(&globex),
        )
        .await;
    assert_envelope(widened, 403, "FORBIDDEN").await;
    let scopes: String = app
        .query(
            &format!("SELECT scopes FROM api_keys WHERE id = '{hank_key_id}'"),
            |row| row.get(0),
        )
        .remove(0);
    assert_eq!(scopes, r#"["files:read"]"#);
    assert_envelope(
        with_key(&app, Method::GET, "/admin/orgs", &hank_key, None).await,
        403,
        "FORBIDDEN",
    )
    .await;

    // The default scopes never include it.
    let default = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &admin,
            Some(&json!({"name": "defaults"})),
            Some(&acme),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(default["scopes"], json!(["transfers:write", "files:read"]));
    assert_envelope(
        with_key(&app, Method::GET, "/admin/orgs", &s(&default, "key"), None).await,
        403,
        "FORBIDDEN",
    )
    .await;

    // An instance admin grants it explicitly, and that key has the power (the proxy
    // reference's `/admin/...` with `X-Api-Key`).
    let (_, admin_key) = create_key(&app, &admin, &acme, &["admin"]).await;
    let orgs = json_of(
        with_key(&app, Method::GET, "/admin/orgs", &admin_key, None).await,
        200,
    )
    .await;
    assert_eq!(orgs.as_array().unwrap().len(), 2);
    // ... and nothing else: `admin` is not an organization permission.
    assert_envelope(
        with_key(&app, Method::GET, "/v1/api-keys", &admin_key, None).await,
        403,
        "FORBIDDEN",
    )
    .await;

    // The scope gives power only while its owner is an instance admin.
    let admin_id: String = app
        .query(
            &format!("SELECT id FROM users WHERE email = '{ADMIN_EMAIL}'"),
            |row| row.get(0),
        )
        .remove(0);
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE users SET is_instance_admin = 0 WHERE id = ?1",
        [&admin_id],
    )
    .unwrap();
    assert_envelope(
        with_key(&app, Method::GET, "/admin/orgs", &admin_key, None).await,
        403,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn the_key_sealbox_login_saves_has_no_instance_admin_power() {
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    let home = TempDir::new().unwrap();
    let config = home.path().join("config");
    let base = app.base.clone();
    let login = tokio::task::spawn_blocking({
        let config = config.clone();
        let home = home.path().to_owned();
        move || {
            Command::new(SEALBOX_BIN)
                .env_clear()
                .env("HOME", &home)
                .env("XDG_CONFIG_HOME", &config)
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("SEALBOX_PASSWORD", ADMIN_PASSWORD)
                .args(["login", "--server", &base, "--email", ADMIN_EMAIL])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(login.status.success(), "{login:?}");
    let saved = std::fs::read_to_string(config.join("sealbox/credentials.toml")).unwrap();
    let key = saved
        .split('"')
        .find(|part| part.starts_with("sbx_live_"))
        .expect("a saved key")
        .to_owned();
    let scopes: Vec<String> = app.query("SELECT scopes FROM api_keys", |row| row.get(0));
    assert_eq!(scopes, vec![r#"["transfers:read","transfers:write"]"#]);
    assert_envelope(
        with_key(&app, Method::GET, "/admin/orgs", &key, None).await,
        403,
        "FORBIDDEN",
    )
    .await;
    // It does what it was made for.
    json_of(
        with_key(&app, Method::GET, "/v1/transfers", &key, None).await,
        200,
    )
    .await;
}

#[tokio::test]
async fn owners_cannot_lift_an_instance_admins_suspension() {
    let Instance {
        app,
        admin,
        globex,
        hank,
        ..
    } = instance().await;
    let (_, hank_key) = create_key(&app, &hank, &globex, &["org:read"]).await;

    let suspended = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{globex}/suspend"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(suspended["suspendedBy"], "instanceAdmin");
    // Its keys stop.
    assert_envelope(
        with_key(&app, Method::GET, "/v1/me", &hank_key, None).await,
        403,
        "ORG_SUSPENDED",
    )
    .await;
    // Its owner cannot undo it.
    let lifted = app
        .send_as(
            Method::POST,
            &format!("/v1/organizations/{globex}/unsuspend"),
            &hank,
            None,
            None,
        )
        .await;
    let error = assert_envelope(lifted, 403, "FORBIDDEN").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("instance admin"),
        "{error}"
    );
    assert_eq!(org_status(&app, &globex), "suspended");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'organization.unsuspended'"
        ),
        0
    );
    // The instance admin can.
    let active = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{globex}/unsuspend"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(active["status"], "active");
    assert!(active.get("suspendedBy").is_none(), "{active}");

    // A suspension by the owners themselves, they lift (signed in).
    let own = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{globex}/suspend"),
            &hank,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(own["suspendedBy"], "owner");
    let lifted = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{globex}/unsuspend"),
            &hank,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(lifted["status"], "active");

    // Hank cannot suspend (nor see) Acme, which he is not in.
    let acme = s(
        &json_of(app.get_as("/v1/organizations", &admin).await, 200).await[0],
        "id",
    );
    assert_envelope(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{acme}/suspend"),
            &hank,
            None,
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(org_status(&app, &acme), "active");
}

#[tokio::test]
async fn recovery_material_needs_the_vault_scopes() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    let owner = s(&pair, "accessToken");
    let owner_id = s(&pair["user"], "id");
    let trustee_pair = app
        .invite_and_register(&owner, &org, "tina@example.com", "member")
        .await;
    let trustee = s(&trustee_pair, "accessToken");
    let trustee_id = s(&trustee_pair["user"], "id");
    for token in [&owner, &trustee] {
        app.generate_keys(token, "a-user-secret-phrase").await;
    }
    let material = json!({
        "encryptedPrivateKeyEccShareB64": B64.encode(b"ecc share bytes"),
        "encryptedPrivateKeyKyberShareB64": B64.encode(b"kyber share bytes"),
        "xorApplied": false,
    });
    let put = app
        .send_as(
            Method::PUT,
            &format!("/v1/recovery/trustees/{trustee_id}"),
            &owner,
            Some(&material),
            None,
        )
        .await;
    assert_eq!(put.status(), 201);

    // Keys with no vault scope read nothing.
    let (_, owner_key) = create_key(&app, &owner, &org, &["transfers:write"]).await;
    let (_, trustee_key) = create_key(&app, &trustee, &org, &["transfers:write"]).await;
    for (key, path) in [
        (&owner_key, "/v1/recovery/trustees".to_owned()),
        (&trustee_key, "/v1/recovery/shares".to_owned()),
        (&trustee_key, format!("/v1/recovery/shares/{owner_id}")),
    ] {
        let response = with_key(&app, Method::GET, &path, key, None).await;
        let error = assert_envelope(response, 403, "FORBIDDEN").await;
        assert!(
            error["message"].as_str().unwrap().contains("kv:read"),
            "{path}: {error}"
        );
    }
    // Nor write it: `keys:write` is a scope too.
    let replaced = with_key(
        &app,
        Method::PUT,
        &format!("/v1/recovery/trustees/{trustee_id}"),
        &owner_key,
        Some(json!({
            "encryptedPrivateKeyEccShareB64": B64.encode(b"other"),
            "encryptedPrivateKeyKyberShareB64": B64.encode(b"other"),
            "xorApplied": false,
        })),
    )
    .await;
    assert_envelope(replaced, 403, "FORBIDDEN").await;
    let stored: Vec<u8> = app
        .query("SELECT ecc_share FROM recovery_trustees", |row| row.get(0))
        .remove(0);
    assert_eq!(stored, b"ecc share bytes");

    // With the vault scope, the trustee reads what they hold.
    let (_, reader) = create_key(&app, &trustee, &org, &["kv:read"]).await;
    let held = json_of(
        with_key(
            &app,
            Method::GET,
            &format!("/v1/recovery/shares/{owner_id}"),
            &reader,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        held["encryptedPrivateKeyEccShareB64"],
        B64.encode(b"ecc share bytes")
    );
}

/// Rotation issues a new raw value of a key, so a narrow key that may rotate keys could
/// mint itself a broader one (an instance admin's `admin` key included): refused.
#[tokio::test]
async fn a_narrow_key_cannot_rotate_a_broader_key_into_its_hands() {
    let Instance {
        app, admin, acme, ..
    } = instance().await;
    let (broad, _) = create_key(&app, &admin, &acme, &["files:write", "admin"]).await;
    let (wide, _) = create_key(&app, &admin, &acme, &["files:write", "kv:read"]).await;
    let (_, narrow) = create_key(&app, &admin, &acme, &["api_keys:write"]).await;
    for target in [&broad, &wide] {
        let attempt = with_key(
            &app,
            Method::POST,
            &format!("/v1/api-keys/{target}/rotate"),
            &narrow,
            Some(json!({})),
        )
        .await;
        assert_envelope(attempt, 403, "FORBIDDEN").await;
        let rotated = count(
            &app,
            &format!(
                "SELECT COUNT(*) FROM api_keys WHERE id = '{target}' AND rotated_to IS NOT NULL"
            ),
        );
        assert_eq!(rotated, 0, "the key was not rotated");
    }
    assert_eq!(count(&app, "SELECT COUNT(*) FROM api_keys"), 3);
    // The owner, signed in, still rotates them.
    let rotated = app
        .send_as(
            Method::POST,
            &format!("/v1/api-keys/{broad}/rotate"),
            &admin,
            Some(&json!({})),
            Some(&acme),
        )
        .await;
    assert!(rotated.status().is_success(), "{}", rotated.status());
}

#[tokio::test]
async fn a_rotated_keys_expiry_only_moves_earlier() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let token = s(&pair, "accessToken");
    let org = s(&pair["user"]["organizations"][0], "id");
    let (old_id, old_key) = create_key(&app, &token, &org, &["files:read"]).await;
    let rotated = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/api-keys/{old_id}/rotate"),
            &token,
            Some(&json!({"gracePeriodHours": 1})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_ne!(s(&rotated, "key"), old_key);
    let expiry = || -> String {
        app.query(
            &format!("SELECT expires_at FROM api_keys WHERE id = '{old_id}'"),
            |row| row.get(0),
        )
        .remove(0)
    };
    let until = expiry();

    // Removing the expiry would revive the replaced value for good.
    let revived = app
        .send_as(
            Method::PATCH,
            &format!("/v1/api-keys/{old_id}"),
            &token,
            Some(&json!({"expiresAt": null})),
            None,
        )
        .await;
    let error = assert_envelope(revived, 422, "VALIDATION").await;
    assert_eq!(error["details"][0]["path"], "expiresAt", "{error}");
    assert_eq!(expiry(), until);
    // So would pushing it back.
    let later = app
        .send_as(
            Method::PATCH,
            &format!("/v1/api-keys/{old_id}"),
            &token,
            Some(&json!({"expiresAt": "2099-01-01T00:00:00Z"})),
            None,
        )
        .await;
    assert_envelope(later, 422, "VALIDATION").await;
    assert_eq!(expiry(), until);
    // Bringing it forward is fine.
    let soon = sealbox::ids::format_rfc3339(
        time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(600),
    );
    let earlier = json_of(
        app.send_as(
            Method::PATCH,
            &format!("/v1/api-keys/{old_id}"),
            &token,
            Some(&json!({"expiresAt": soon})),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(earlier["expiresAt"], soon.as_str());
    // A key that was not rotated may still drop its expiry.
    let (fresh_id, _) = create_key(&app, &token, &org, &["files:read"]).await;
    let cleared = json_of(
        app.send_as(
            Method::PATCH,
            &format!("/v1/api-keys/{fresh_id}"),
            &token,
            Some(&json!({"expiresAt": null})),
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(cleared.get("expiresAt").is_none(), "{cleared}");
}

#[tokio::test]
async fn removing_a_member_revokes_their_keys_for_good() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let owner = s(&pair, "accessToken");
    let org = s(&pair["user"]["organizations"][0], "id");
    let mia_pair = app
        .invite_and_register(&owner, &org, "mia@example.com", "member")
        .await;
    let mia = s(&mia_pair, "accessToken");
    let mia_id = s(&mia_pair["user"], "id");
    let (mia_key_id, mia_key) = create_key(&app, &mia, &org, &["files:read"]).await;
    json_of(
        with_key(&app, Method::GET, "/v1/me", &mia_key, None).await,
        200,
    )
    .await;

    let removed = app
        .send_as(
            Method::DELETE,
            &format!("/v1/organizations/{org}/members/{mia_id}"),
            &owner,
            None,
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    assert_envelope(
        with_key(&app, Method::GET, "/v1/me", &mia_key, None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM api_keys WHERE id = '{mia_key_id}' AND revoked_at IS NOT NULL"
            )
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM audit_log WHERE action = 'api_key.revoked'
                 AND target_id = '{mia_key_id}' AND org_id = '{org}'
                 AND json_extract(details, '$.reason') = 'member_removed'"
            )
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM outbox_events WHERE type = 'api_key.revoked'
                 AND json_extract(data, '$.apiKeyId') = '{mia_key_id}' AND org_id = '{org}'"
            )
        ),
        1
    );

    // She rejoins; the old key stays dead.
    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{org}"),
            &owner,
            Some(&json!({"email": "mia@example.com", "role": "member"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let mia = s(
        &app.login("mia@example.com", MEMBER_PASSWORD).await,
        "accessToken",
    );
    let accepted = app
        .send_as(
            Method::POST,
            "/v1/invites/accept",
            &mia,
            Some(&json!({"token": invite["token"]})),
            None,
        )
        .await;
    assert!(accepted.status().is_success(), "{}", accepted.status());
    assert_envelope(
        with_key(&app, Method::GET, "/v1/me", &mia_key, None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn owners_and_admins_list_and_revoke_members_keys_and_members_cannot() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let owner = s(&pair, "accessToken");
    let owner_id = s(&pair["user"], "id");
    let org = s(&pair["user"]["organizations"][0], "id");
    let mia_pair = app
        .invite_and_register(&owner, &org, "mia@example.com", "member")
        .await;
    let mia = s(&mia_pair, "accessToken");
    let mia_id = s(&mia_pair["user"], "id");
    let adam_pair = app
        .invite_and_register(&owner, &org, "adam@example.com", "admin")
        .await;
    let adam = s(&adam_pair, "accessToken");
    let (mia_key_id, mia_key) = create_key(&app, &mia, &org, &["files:read"]).await;
    let (owner_key_id, owner_key) = create_key(&app, &owner, &org, &["files:read"]).await;

    // A member neither lists nor revokes anyone else's keys.
    assert_envelope(
        app.get_as(&format!("/v1/api-keys?userId={owner_id}"), &mia)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_envelope(
        app.delete_as(&format!("/v1/api-keys/{owner_key_id}"), &mia)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    json_of(
        with_key(&app, Method::GET, "/v1/me", &owner_key, None).await,
        200,
    )
    .await;
    // An admin cannot act on the owner's keys (the owner's role grants more).
    assert_envelope(
        app.delete_as(&format!("/v1/api-keys/{owner_key_id}"), &adam)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    json_of(
        with_key(&app, Method::GET, "/v1/me", &owner_key, None).await,
        200,
    )
    .await;

    // An admin lists a member's keys and revokes one.
    let listed = json_of(
        app.get_as(&format!("/v1/api-keys?userId={mia_id}"), &adam)
            .await,
        200,
    )
    .await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mia_key_id.as_str()]);
    let revoked = app
        .delete_as(&format!("/v1/api-keys/{mia_key_id}"), &adam)
        .await;
    assert_eq!(revoked.status(), 204);
    assert_envelope(
        with_key(&app, Method::GET, "/v1/me", &mia_key, None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM outbox_events WHERE type = 'api_key.revoked'
                 AND json_extract(data, '$.apiKeyId') = '{mia_key_id}'
                 AND json_extract(data, '$.userId') = '{mia_id}'"
            )
        ),
        1
    );
    // An owner's API key needs `api_keys:write` and `members:write` to do the same.
    let (_, weak) = create_key(&app, &owner, &org, &["api_keys:read"]).await;
    assert_envelope(
        with_key(
            &app,
            Method::GET,
            &format!("/v1/api-keys?userId={mia_id}"),
            &weak,
            None,
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn a_key_sees_only_its_own_organization() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");
    let globex = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Globex"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let globex = s(&globex, "id");
    app.invite_and_register(&admin, &globex, "gina@globex.example", "member")
        .await;
    // Through the session, both organizations and Gina are visible.
    let mine = json_of(app.get_as("/v1/organizations", &admin).await, 200).await;
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let found = json_of(app.get_as("/v1/users/search?q=gina", &admin).await, 200).await;
    assert_eq!(found.as_array().unwrap().len(), 1);

    let (_, key) = create_key(&app, &admin, &acme, &["org:read"]).await;
    let orgs = json_of(
        with_key(&app, Method::GET, "/v1/organizations", &key, None).await,
        200,
    )
    .await;
    let ids: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![acme.as_str()]);
    for path in ["/v1/users/me", "/v1/auth/me"] {
        let me = json_of(with_key(&app, Method::GET, path, &key, None).await, 200).await;
        let member_of: Vec<&str> = me["organizations"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {me}"))
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(member_of, vec![acme.as_str()], "{path}: {me}");
        assert_eq!(me["defaultOrganizationId"], acme.as_str(), "{path}");
        assert!(!me.to_string().contains(&globex), "{path}: {me}");
    }
    let found = json_of(
        with_key(&app, Method::GET, "/v1/users/search?q=gina", &key, None).await,
        200,
    )
    .await;
    assert_eq!(found, json!([]));
    // Without `org:read`, no organization listing at all.
    let (_, files_key) = create_key(&app, &admin, &acme, &["files:read"]).await;
    assert_envelope(
        with_key(&app, Method::GET, "/v1/organizations", &files_key, None).await,
        403,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn an_ex_members_sign_in_activity_stays_out_of_the_old_organization() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let owner = s(&pair, "accessToken");
    let org = s(&pair["user"]["organizations"][0], "id");
    let mia_pair = app
        .invite_and_register(&owner, &org, "mia@example.com", "member")
        .await;
    let mia_id = s(&mia_pair["user"], "id");
    let mia_refresh = s(&mia_pair, "refreshToken");
    assert_eq!(mia_pair["user"]["defaultOrganizationId"], org.as_str());

    let removed = app
        .send_as(
            Method::DELETE,
            &format!("/v1/organizations/{org}/members/{mia_id}"),
            &owner,
            None,
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    let filed_in_org = || {
        (
            count(
                &app,
                &format!(
                    "SELECT count(*) FROM audit_log WHERE org_id = '{org}'
                     AND actor_user_id = '{mia_id}'"
                ),
            ),
            count(
                &app,
                &format!(
                    "SELECT count(*) FROM outbox_events WHERE org_id = '{org}'
                     AND json_extract(data, '$.userId') = '{mia_id}'
                     AND type NOT IN ('member.removed', 'api_key.revoked')"
                ),
            ),
        )
    };
    let before = filed_in_org();
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) FROM users WHERE id = '{mia_id}' AND default_org_id IS NULL")
        ),
        1
    );

    // A failed sign-in, a sign-in, a refresh, a replayed refresh token and a sign-out.
    let failed = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "mia@example.com", "password": "not-her-password"}),
        )
        .await;
    assert_envelope(failed, 401, "UNAUTHORIZED").await;
    let signed_in = app.login("mia@example.com", MEMBER_PASSWORD).await;
    let refreshed = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refreshToken": s(&signed_in, "refreshToken")}),
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    app.post_json("/v1/auth/refresh", &json!({"refreshToken": mia_refresh}))
        .await;
    let replayed = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refreshToken": s(&signed_in, "refreshToken")}),
        )
        .await;
    assert_eq!(replayed.status(), 401);

    assert_eq!(
        filed_in_org(),
        before,
        "nothing more lands in the old tenant"
    );
    // It is filed on the instance's own chain instead.
    assert!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM audit_log WHERE org_id IS NULL AND actor_user_id = '{mia_id}'
                 AND action IN ('auth.login', 'auth.refresh', 'auth.refresh_token_reused')"
            )
        ) >= 4
    );
    assert!(
        count(
            &app,
            &format!(
                "SELECT count(*) FROM outbox_events WHERE org_id IS NULL
                 AND type IN ('user.login_failed', 'session.created')
                 AND json_extract(data, '$.userId') = '{mia_id}'"
            )
        ) >= 2
    );
}
