//! Instance administration: the `/admin/...` routes, `sealbox admin create-user`, and
//! invites mailed through a real SMTP sink.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::password_reset::{SmtpSink, body, spawn_with_mail};
use crate::support::{ADMIN_EMAIL, MEMBER_PASSWORD, TestApp, assert_envelope, json_of, s};

#[tokio::test]
async fn instance_admins_create_organizations_and_their_accounts() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");

    let org = json_of(
        app.send_as(
            Method::POST,
            "/admin/orgs",
            &admin,
            Some(&json!({"name": "Globex", "slug": "globex"})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(org["slug"], "globex");
    assert_eq!(org["role"], Value::Null, "the admin is not made a member");
    let globex = s(&org, "id");

    // With a password: the account can sign in at once, with the given role.
    let owner = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{globex}/users"),
            &admin,
            Some(&json!({"email": "hank@globex.example", "displayName": "Hank", "password": MEMBER_PASSWORD, "role": "owner"})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(owner["user"]["role"], "owner");
    assert_eq!(owner["organizationId"], globex.as_str());
    assert_eq!(owner["setPasswordUrl"], Value::Null);
    let hank = app.login("hank@globex.example", MEMBER_PASSWORD).await;
    assert_eq!(hank["user"]["defaultOrganizationId"], globex.as_str());

    // Without one: a single-use link to choose it, which works through reset-password.
    let member = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{globex}/users"),
            &admin,
            Some(&json!({"email": "marge@globex.example", "displayName": "Marge"})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(member["user"]["role"], "member");
    let link = s(&member, "setPasswordUrl");
    let token = link
        .split_once("/reset-password?token=")
        .expect("a set-password link")
        .1;
    let set = app
        .post_json(
            "/v1/auth/reset-password",
            &json!({"token": token, "password": "bright-harbor-sixty"}),
        )
        .await;
    assert_eq!(set.status(), 204);
    app.login("marge@globex.example", "bright-harbor-sixty")
        .await;

    let users = json_of(
        app.get_as(&format!("/admin/orgs/{globex}/users"), &admin)
            .await,
        200,
    )
    .await;
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["hank@globex.example", "marge@globex.example"]);
    let orgs = json_of(app.get_as("/admin/orgs", &admin).await, 200).await;
    let counts: Vec<(String, i64)> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (s(o, "id"), o["memberCount"].as_i64().unwrap()))
        .collect();
    assert_eq!(counts, [(acme.clone(), 1), (globex.clone(), 2)]);

    // Bad input and conflicts.
    let duplicate = app
        .send_as(
            Method::POST,
            &format!("/admin/orgs/{globex}/users"),
            &admin,
            Some(&json!({"email": "HANK@globex.example", "displayName": "H"})),
            None,
        )
        .await;
    assert_envelope(duplicate, 409, "CONFLICT").await;
    let bad_role = app
        .send_as(
            Method::POST,
            &format!("/admin/orgs/{globex}/users"),
            &admin,
            Some(&json!({"email": "x@globex.example", "displayName": "X", "role": "emperor"})),
            None,
        )
        .await;
    assert_envelope(bad_role, 422, "VALIDATION").await;
    let weak = app
        .send_as(Method::POST, &format!("/admin/orgs/{globex}/users"), &admin, Some(&json!({"email": "y@globex.example", "displayName": "Y", "password": "password123"})), None)
        .await;
    assert_envelope(weak, 422, "VALIDATION").await;
    let nowhere = app
        .send_as(
            Method::POST,
            &format!("/admin/orgs/{}/users", uuid::Uuid::now_v7()),
            &admin,
            Some(&json!({"email": "z@globex.example", "displayName": "Z"})),
            None,
        )
        .await;
    assert_envelope(nowhere, 404, "NOT_FOUND").await;

    // Organization owners are not instance admins.
    let hank_token = s(&hank, "accessToken");
    for (method, path) in [
        (Method::GET, "/admin/orgs".to_owned()),
        (Method::POST, "/admin/orgs".to_owned()),
        (Method::GET, format!("/admin/orgs/{globex}/users")),
        (Method::POST, format!("/admin/orgs/{globex}/users")),
    ] {
        let body = json!({"name": "Mine", "email": "q@globex.example", "displayName": "Q"});
        let response = app
            .send_as(method.clone(), &path, &hank_token, Some(&body), None)
            .await;
        assert_envelope(response, 403, "FORBIDDEN").await;
    }
    assert_envelope(app.get("/admin/orgs").await, 401, "UNAUTHORIZED").await;

    let audit = app.query(
        "SELECT action, actor_user_id FROM audit_log WHERE action = 'user.created' ORDER BY seq",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
    );
    let admin_id = s(&pair["user"], "id");
    assert_eq!(audit.len(), 3);
    assert!(
        audit[1..]
            .iter()
            .all(|(_, actor)| actor.as_deref() == Some(admin_id.as_str()))
    );
}

/// Runs `sealbox admin create-user` with `password` on standard input.
fn create_user(home: &Path, data_dir: &str, args: &[&str], password: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealbox"))
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["admin", "create-user", "--data-dir", data_dir])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn create_user_at_the_console_makes_the_first_admin_and_ends_setup() {
    let dir = crate::support::initialized_data_dir().await;
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let home = TempDir::new().unwrap();

    let made = tokio::task::spawn_blocking({
        let (home, data_dir) = (home.path().to_owned(), data_dir.clone());
        move || {
            create_user(
                &home,
                &data_dir,
                &[
                    "--email",
                    ADMIN_EMAIL,
                    "--name",
                    "Ada",
                    "--admin",
                    "--organization",
                    "Acme",
                ],
                "violet-anchor-thirty",
            )
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&made.stderr).into_owned();
    assert!(made.status.success(), "{stderr}");
    assert!(
        stderr.contains("instance admin") && stderr.contains("owner"),
        "{stderr}"
    );
    let user_id = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(uuid::Uuid::parse_str(&user_id).is_ok(), "{user_id}");

    // The server now has its admin: no setup token, and the password signs in.
    let app = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    assert!(app.setup_token.is_none());
    let pair = app.login(ADMIN_EMAIL, "violet-anchor-thirty").await;
    assert_eq!(pair["user"]["id"], user_id.as_str());
    assert_eq!(pair["user"]["isInstanceAdmin"], true);
    assert_eq!(pair["user"]["organizations"][0]["name"], "Acme");
    assert_eq!(pair["user"]["organizations"][0]["role"], "owner");
    let acme = s(&pair["user"]["organizations"][0], "id");

    // Joining an existing organization; then refusals, each with a clear message.
    let joined = {
        let (home, data_dir, acme) = (home.path().to_owned(), data_dir.clone(), acme.clone());
        tokio::task::spawn_blocking(move || {
            let ok = create_user(
                &home,
                &data_dir,
                &[
                    "--email",
                    "bob@example.com",
                    "--join",
                    &acme,
                    "--role",
                    "auditor",
                ],
                MEMBER_PASSWORD,
            );
            let duplicate = create_user(
                &home,
                &data_dir,
                &["--email", "BOB@example.com"],
                MEMBER_PASSWORD,
            );
            let weak = create_user(
                &home,
                &data_dir,
                &["--email", "carol@example.com"],
                "password123",
            );
            (ok, duplicate, weak)
        })
        .await
        .unwrap()
    };
    assert!(
        joined.0.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.0.stderr)
    );
    let bob = app.login("bob@example.com", MEMBER_PASSWORD).await;
    assert_eq!(bob["user"]["organizations"][0]["id"], acme.as_str());
    assert_eq!(bob["user"]["organizations"][0]["role"], "auditor");
    assert_eq!(bob["user"]["isInstanceAdmin"], false);
    assert_eq!(joined.1.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&joined.1.stderr).contains("exists"));
    assert_eq!(joined.2.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&joined.2.stderr).contains("password"));
    // The password never shows in what the command prints.
    for output in [&joined.0, &joined.1, &joined.2] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !all.contains(MEMBER_PASSWORD) && !all.contains("password123"),
            "{all}"
        );
    }
}

#[tokio::test]
async fn invites_are_mailed_when_smtp_is_configured() {
    let sink = SmtpSink::start().await;
    let app = spawn_with_mail(&sink).await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");

    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "bob@example.com"})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(invite["mailed"], true);
    assert_eq!(
        invite["token"],
        Value::Null,
        "only the invitee gets the token"
    );
    assert_eq!(invite["inviteUrl"], Value::Null);

    let messages = sink.wait_for_messages(1).await;
    assert!(messages[0].contains("bob@example.com"));
    let text = body(&messages[0]);
    assert!(text.contains("Acme"), "{text}");
    let token = text
        .lines()
        .find_map(|line| {
            line.trim()
                .split_once("/invite?token=")
                .map(|(_, t)| t.to_owned())
        })
        .unwrap_or_else(|| panic!("no invite link in {text}"));
    let registered = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "bob@example.com", "password": MEMBER_PASSWORD, "displayName": "Bob", "inviteToken": token}),
        )
        .await;
    let registered = json_of(registered, 201).await;
    assert_eq!(registered["user"]["organizations"][0]["id"], acme.as_str());
}

/// The token of a `/reset-password?token=...` link.
fn reset_token(link: &str) -> &str {
    link.split_once("/reset-password?token=")
        .unwrap_or_else(|| panic!("not a reset link: {link}"))
        .1
}

#[tokio::test]
async fn an_instance_admin_issues_a_reset_link_that_replaces_the_password() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let admin_id = s(&pair["user"], "id");
    let acme = s(&pair["user"]["organizations"][0], "id");
    let globex = s(
        &json_of(
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
        .await,
        "id",
    );
    let hank = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{globex}/users"),
            &admin,
            Some(&json!({"email": "hank@globex.example", "displayName": "Hank", "password": MEMBER_PASSWORD, "role": "owner"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let hank_id = s(&hank["user"], "userId");
    let hank_session = s(
        &app.login("hank@globex.example", MEMBER_PASSWORD).await,
        "accessToken",
    );

    let path = format!("/admin/orgs/{globex}/users/{hank_id}/password-reset");
    let issued = json_of(
        app.send_as(Method::POST, &path, &admin, None, None).await,
        201,
    )
    .await;
    assert_eq!(issued["mailed"], false, "mail is off");
    let link = s(&issued, "resetUrl");
    assert!(
        link.starts_with(&app.url("/reset-password?token=")),
        "{link}"
    );
    let expires = time::OffsetDateTime::parse(
        &s(&issued, "expiresAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(58) && left <= time::Duration::minutes(60),
        "the self-service reset's hour: {left}"
    );

    // Audited in Globex, by the admin, without the link.
    let audit = app.query(
        "SELECT actor_user_id, org_id, target_id, details FROM audit_log
         WHERE action = 'auth.password_reset_link_issued'",
        |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    );
    assert_eq!(audit.len(), 1);
    let (actor, org, target, details) = &audit[0];
    assert_eq!(actor.as_deref(), Some(admin_id.as_str()));
    assert_eq!(org.as_deref(), Some(globex.as_str()));
    assert_eq!(target.as_deref(), Some(hank_id.as_str()));
    let details: Value = serde_json::from_str(details).unwrap();
    assert_eq!(details["byAdmin"], true);
    assert_eq!(details["delivery"], "none_mail_off");
    assert!(!audit[0].3.contains(reset_token(&link)));

    // The link sets a new password once; the old password and the old session stop.
    let reset = app
        .post_json(
            "/v1/auth/reset-password",
            &json!({"token": reset_token(&link), "password": "bright-harbor-sixty"}),
        )
        .await;
    assert_eq!(reset.status(), 204);
    let old = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "hank@globex.example", "password": MEMBER_PASSWORD}),
        )
        .await;
    assert_envelope(old, 401, "UNAUTHORIZED").await;
    assert_envelope(
        app.get_as("/v1/me", &hank_session).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    app.login("hank@globex.example", "bright-harbor-sixty")
        .await;
    let again = app
        .post_json(
            "/v1/auth/reset-password",
            &json!({"token": reset_token(&link), "password": "another-fine-password"}),
        )
        .await;
    assert_envelope(again, 401, "UNAUTHORIZED").await;

    // Another organization's account, or none, is not found through this one.
    for path in [
        format!("/admin/orgs/{globex}/users/{admin_id}/password-reset"),
        format!("/admin/orgs/{acme}/users/{hank_id}/password-reset"),
        format!(
            "/admin/orgs/{globex}/users/{}/password-reset",
            uuid::Uuid::now_v7()
        ),
        format!(
            "/admin/orgs/{}/users/{hank_id}/password-reset",
            uuid::Uuid::now_v7()
        ),
        format!("/admin/orgs/{globex}/users/not-an-id/password-reset"),
    ] {
        let response = app.send_as(Method::POST, &path, &admin, None, None).await;
        assert_envelope(response, 404, "NOT_FOUND").await;
    }

    // Not for an organization's owner (no instance admin), nor an admin's key without
    // the `admin` scope, nor anyone signed out.
    let hank_now = s(
        &app.login("hank@globex.example", "bright-harbor-sixty")
            .await,
        "accessToken",
    );
    let response = app
        .send_as(Method::POST, &path, &hank_now, None, None)
        .await;
    assert_envelope(response, 403, "FORBIDDEN").await;
    let key = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &admin,
            Some(&json!({"name": "no admin scope"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let response = app
        .send_as(Method::POST, &path, &s(&key, "key"), None, None)
        .await;
    assert_envelope(response, 403, "FORBIDDEN").await;
    let response = app.client.post(app.url(&path)).send().await.unwrap();
    assert_envelope(response, 401, "UNAUTHORIZED").await;
    let issued = app.query(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.password_reset_link_issued'",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(issued, [1], "a refusal issues nothing");
}

#[tokio::test]
async fn an_admin_issued_reset_link_is_also_mailed_when_smtp_is_configured() {
    let sink = SmtpSink::start().await;
    let app = spawn_with_mail(&sink).await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");
    let bob = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{acme}/users"),
            &admin,
            Some(&json!({"email": "bob@example.com", "displayName": "Bob", "password": MEMBER_PASSWORD})),
            None,
        )
        .await,
        201,
    )
    .await;
    let bob_id = s(&bob["user"], "userId");

    let issued = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{acme}/users/{bob_id}/password-reset"),
            &admin,
            None,
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(issued["mailed"], true);
    let link = s(&issued, "resetUrl");
    let messages = sink.wait_for_messages(1).await;
    assert!(messages[0].contains("bob@example.com"));
    let text = body(&messages[0]);
    assert!(text.contains("An administrator"), "{text}");
    assert!(
        text.lines().any(|line| line.trim() == link),
        "the mail carries the link the admin got: {text}"
    );
    let delivery = app.query(
        "SELECT json_extract(details, '$.delivery') FROM audit_log
         WHERE action = 'auth.password_reset_link_issued'",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(delivery, ["mail"]);
    let reset = app
        .post_json(
            "/v1/auth/reset-password",
            &json!({"token": reset_token(&link), "password": "bright-harbor-sixty"}),
        )
        .await;
    assert_eq!(reset.status(), 204);
    app.login("bob@example.com", "bright-harbor-sixty").await;
}
