//! Sign-in with identity providers against a real OpenID provider on loopback (the
//! `oidc-provider` package, tests/oidc/provider.mjs, prepared by scripts/test with `npm
//! ci`), walked in headless Chromium through sealbox's sign-in page; and the HTTP-level
//! refusals.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, json_of, s};
use crate::web_ui::browse_with_timeout;

/// Drives Chromium with a longer wait per step than the other browser tests: one step here
/// spans a whole round trip through the provider (its pages, the callback's token exchange
/// and key fetch, the page collecting the outcome, the app's first calls), which the full
/// suite on two loaded cores stretched past 10 s in CI.
async fn browse(steps: Value) {
    browse_with_timeout(steps, 40).await;
}

const PROVIDER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
const CLIENT_ID: &str = "sealbox-test";
const CLIENT_SECRET: &str = "a-client-secret-only-these-tests-know";

/// The OpenID provider, killed when dropped.
struct OidcProvider {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    issuer: String,
}

impl OidcProvider {
    fn start() -> Self {
        let modules = PathBuf::from(PROVIDER_DIR).join("node_modules/oidc-provider");
        assert!(
            modules.is_dir(),
            "{} is missing: run the tests through scripts/test, which runs `npm ci` in tests/oidc",
            modules.display()
        );
        let node = std::env::var_os("SBX_NODE").unwrap_or_else(|| "node".into());
        let mut child = Command::new(node)
            .arg("provider.mjs")
            .current_dir(PROVIDER_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts the OpenID provider");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        Self {
            child,
            stdin,
            lines,
            issuer: s(&first, "issuer"),
        }
    }

    /// Registers sealbox's client (its redirect URI, now that sealbox has a port) and the
    /// accounts people may sign in as.
    fn configure(&mut self, redirect_uri: &str, accounts: Value) {
        let setup = json!({
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            }],
            "accounts": accounts,
        });
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{setup}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(self.lines.next().unwrap().unwrap(), "ready");
    }

    /// The next token response carries an ID token with `claims` changed (or, with
    /// `{"replayCode": true}` as `change`, the next authorization response a used code).
    async fn tamper(&self, change: Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/__test/tamper", self.issuer))
            .body(change.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sealbox with the provider as `[[auth.oidc]]` `idp`, provisioning into Acme (the
/// setup's organization), `admins` mapped to the admin role; the client secret in a file.
async fn app_with(
    provider: &mut OidcProvider,
    adjust: impl FnOnce(&mut sealbox::config::Config),
) -> (TestApp, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    // The configured issuer has a trailing slash the provider's own issuer lacks.
    let issuer = format!("{}/", provider.issuer);
    let app = TestApp::spawn_with(|config| {
        config.auth.registration = sealbox::config::Registration::Invite;
        config.auth.oidc.push(sealbox::config::OidcProviderConfig {
            id: "idp".into(),
            display_name: "Test IdP".into(),
            issuer,
            client_id: CLIENT_ID.into(),
            client_secret_file: secret_file,
            organization: "acme".into(),
            group_claim: "groups".into(),
            group_roles: [("admins".to_owned(), "admin".to_owned())].into(),
            scopes: ["openid", "email", "profile", "groups"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        });
        adjust(config);
    })
    .await;
    provider.configure(
        &app.url("/v1/auth/oauth/idp/callback"),
        json!({
            "grace": {"email": "grace@example.com", "email_verified": true,
                      "name": "Grace Hopper", "groups": ["admins", "staff"]},
            "ada-unverified": {"email": ADMIN_EMAIL, "email_verified": false, "name": "Not Ada"},
            "ada": {"email": ADMIN_EMAIL, "email_verified": true, "name": "Ada"},
        }),
    );
    (app, secrets)
}

/// Sign-in page, the provider's button, its login and consent pages, back to sealbox.
fn sign_in_steps(app: &TestApp, login: &str) -> Vec<Value> {
    vec![
        json!(["open", app.url("/login")]),
        json!(["click", "a[data-provider=idp]"]),
        json!(["fill", "input[name=login]", login]),
        json!(["fill", "input[name=password]", "anything"]),
        json!(["click", "button[type=submit]"]),
        json!(["text", "Continue"]),
        json!(["click", "button[type=submit]"]),
    ]
}

/// Signs in as `login` and expects the refusal `message` on sealbox's sign-in page.
async fn refused(app: &TestApp, login: &str, message: &str) {
    let mut steps = sign_in_steps(app, login);
    steps.push(json!(["text", "The sign-in was refused"]));
    steps.push(json!(["text", message]));
    steps.push(json!([
        "js",
        "location.pathname === '/login' && !location.search.includes('sso')"
    ]));
    browse(Value::Array(steps)).await;
}

fn refusals(app: &TestApp) -> Vec<String> {
    app.query(
        "SELECT json_extract(details, '$.reason') FROM audit_log
         WHERE action = 'auth.login' AND outcome = 'failure'
           AND json_extract(details, '$.method') = 'sso' ORDER BY seq",
        |row| row.get(0),
    )
}

fn user_count(app: &TestApp) -> i64 {
    app.query("SELECT count(*) FROM users", |row| row.get(0))[0]
}

#[tokio::test]
async fn oidc_sign_in_provisions_reuses_and_refuses_every_bad_case() {
    let mut provider = OidcProvider::start();
    let (app, _secrets) = app_with(&mut provider, |_| {}).await;
    let admin = app.setup_admin().await;
    let admin_token = s(&admin, "accessToken");
    let org = s(&admin["user"]["organizations"][0], "id");

    // First sign-in: a new account in Acme, admin through the `admins` group.
    let mut steps = sign_in_steps(&app, "grace");
    steps.push(json!(["js", "location.pathname.startsWith('/app')"]));
    steps.push(json!(["text", "Grace Hopper"]));
    browse(Value::Array(steps)).await;
    let members = json_of(
        app.get_as(&format!("/v1/organizations/{org}/members"), &admin_token)
            .await,
        200,
    )
    .await;
    let grace = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "grace@example.com")
        .expect("grace was provisioned into Acme")
        .clone();
    assert_eq!(grace["role"], "admin", "{grace}");
    let users_after_first = user_count(&app);
    let grace_id: String = app.query(
        "SELECT id FROM users WHERE email = 'grace@example.com'",
        |row| row.get::<_, String>(0),
    )[0]
    .clone();
    // The same records as a password sign-in: the session, its event, the audit entry.
    let logins: Vec<(String, String)> = app.query(
        "SELECT actor_user_id, json_extract(details, '$.provider') FROM audit_log
         WHERE action = 'auth.login' AND outcome = 'success' AND target_type = 'session'",
        |row| {
            Ok((
                row.get(0)?,
                row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        },
    );
    assert!(
        logins.contains(&(grace_id.clone(), "idp".into())),
        "{logins:?}"
    );
    let sessions: i64 = app.query(
        &format!("SELECT count(*) FROM sessions WHERE user_id = '{grace_id}'"),
        |row| row.get(0),
    )[0];
    assert_eq!(sessions, 1);
    let created: i64 = app.query(
        "SELECT count(*) FROM outbox_events WHERE type = 'session.created'",
        |row| row.get(0),
    )[0];
    assert!(created >= 2, "setup's and grace's sessions");

    // Second sign-in, in a fresh browser: the same account, no new one.
    let mut steps = sign_in_steps(&app, "grace");
    steps.push(json!(["text", "Grace Hopper"]));
    browse(Value::Array(steps)).await;
    assert_eq!(user_count(&app), users_after_first);
    let links: i64 = app.query("SELECT count(*) FROM user_identities", |row| row.get(0))[0];
    assert_eq!(links, 1);

    // ID tokens a correct provider would not issue, each re-signed with its real key.
    for (change, message, code) in [
        (
            json!({"aud": "another-client"}),
            "issued for another application",
            "SSO_ID_TOKEN_AUDIENCE",
        ),
        (
            json!({"iss": "http://127.0.0.1:9/"}),
            "did not come from",
            "SSO_ID_TOKEN_ISSUER",
        ),
        (
            json!({"exp": 1_000_000_000}),
            "has expired",
            "SSO_ID_TOKEN_EXPIRED",
        ),
        (
            json!({"nonce": "not-this-sign-in"}),
            "does not belong to this sign-in",
            "SSO_ID_TOKEN_NONCE",
        ),
    ] {
        provider.tamper(json!({"idToken": change})).await;
        refused(&app, "grace", message).await;
        assert_eq!(refusals(&app).last().map(String::as_str), Some(code));
    }
    // A code that was already redeemed, in an otherwise correct sign-in.
    provider.tamper(json!({"replayCode": true})).await;
    refused(&app, "grace", "refused the sign-in code").await;
    assert_eq!(
        refusals(&app).last().map(String::as_str),
        Some("SSO_CODE_REFUSED")
    );

    // An unverified address that matches Ada's account neither links nor creates one;
    // a verified one does not link either, since link_by_email is off.
    refused(
        &app,
        "ada-unverified",
        "did not confirm a verified e-mail address",
    )
    .await;
    assert_eq!(
        refusals(&app).last().map(String::as_str),
        Some("SSO_EMAIL_UNVERIFIED")
    );
    refused(&app, "ada", "link Test IdP from your account page").await;
    assert_eq!(
        refusals(&app).last().map(String::as_str),
        Some("SSO_ACCOUNT_EXISTS")
    );
    assert_eq!(user_count(&app), users_after_first);
    let links: i64 = app.query("SELECT count(*) FROM user_identities", |row| row.get(0))[0];
    assert_eq!(links, 1, "nothing was linked");

    // A callback this browser did not start, and one whose state is not its own.
    browse(json!([
        [
            "open",
            app.url("/v1/auth/oauth/idp/callback?code=forged&state=forged")
        ],
        ["text", "was not started in this browser"],
    ]))
    .await;
    assert_eq!(
        refusals(&app).last().map(String::as_str),
        Some("SSO_STATE_MISSING")
    );
    browse(json!([
        ["open", app.url("/v1/auth/oauth/idp")],
        ["text", "Sign-in"],
        [
            "open",
            app.url("/v1/auth/oauth/idp/callback?code=forged&state=not-the-state")
        ],
        ["text", "does not match the one this browser started"],
    ]))
    .await;
    assert_eq!(
        refusals(&app).last().map(String::as_str),
        Some("SSO_STATE_MISMATCH")
    );

    // Disabled locally, or unlinked: the provider no longer signs the user in.
    let link_id: String = app.query("SELECT id FROM user_identities", |row| {
        row.get::<_, String>(0)
    })[0]
        .clone();
    app.query(
        &format!("UPDATE users SET status = 'disabled' WHERE id = '{grace_id}' RETURNING id"),
        |row| row.get::<_, String>(0),
    );
    refused(&app, "grace", "account is disabled").await;
    app.query(
        &format!("UPDATE users SET status = 'active' WHERE id = '{grace_id}' RETURNING id"),
        |row| row.get::<_, String>(0),
    );
    let grace_pair = {
        // Grace unlinks the provider with a session of her own: the one an SSO sign-in
        // gives, collected through the API as the page does.
        let mut steps = sign_in_steps(&app, "grace");
        steps.push(json!(["text", "Grace Hopper"]));
        steps.push(json!([
            "save",
            "sessionStorage.getItem('sealbox.refresh')",
            app.data_dir.join("refresh").to_str().unwrap()
        ]));
        browse(Value::Array(steps)).await;
        let refresh = std::fs::read_to_string(app.data_dir.join("refresh")).unwrap();
        json_of(
            app.post_json("/v1/auth/refresh", &json!({"refreshToken": refresh}))
                .await,
            200,
        )
        .await
    };
    let grace_token = s(&grace_pair, "accessToken");
    let listed = json_of(app.get_as("/v1/me/identities", &grace_token).await, 200).await;
    assert_eq!(listed["identities"][0]["id"], link_id.as_str(), "{listed}");
    assert_eq!(listed["identities"][0]["providerName"], "Test IdP");
    let unlinked = app
        .delete_as(&format!("/v1/me/identities/{link_id}"), &grace_token)
        .await;
    assert_eq!(unlinked.status(), 204);
    refused(&app, "grace", "was unlinked from its sealbox account").await;
    assert_eq!(
        refusals(&app).last().map(String::as_str),
        Some("SSO_IDENTITY_UNLINKED")
    );
    let listed = json_of(app.get_as("/v1/me/identities", &grace_token).await, 200).await;
    assert_eq!(listed["identities"], json!([]));
}

#[tokio::test]
async fn the_http_surface_refuses_unknown_providers_and_binds_the_flow_to_a_cookie() {
    let mut provider = OidcProvider::start();
    let (app, _secrets) = app_with(&mut provider, |config| {
        config.auth.sso_only = true;
    })
    .await;
    let admin = app.setup_admin().await;
    let admin_token = s(&admin, "accessToken");
    let org = s(&admin["user"]["organizations"][0], "id");

    let list = json_of(app.get("/v1/auth/providers").await, 200).await;
    assert_eq!(
        list,
        json!({"providers": [{"id": "idp", "displayName": "Test IdP", "kind": "oidc",
                              "signInUrl": "/v1/auth/oauth/idp"}], "ssoOnly": true})
    );
    for path in [
        "/v1/auth/oauth/nope",
        "/v1/auth/oauth/nope/callback?code=a&state=b",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(json_of(response, 404).await["error"]["code"], "NOT_FOUND");
    }

    // The start: to the provider with PKCE S256, a state and a nonce, and the cookie.
    let started = app.get("/v1/auth/oauth/idp").await;
    assert_eq!(started.status(), 302);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/", provider.issuer)),
        "{location}"
    );
    let url = reqwest::Url::parse(&location).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(
        query["redirect_uri"],
        app.url("/v1/auth/oauth/idp/callback")
    );
    assert!(query["state"].len() >= 16 && query["nonce"].len() >= 16);
    let cookie = started.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in [
        "sbx_sso=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/v1/auth",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let flow_cookie = cookie.split(';').next().unwrap().to_owned();

    // A forged callback with this browser's cookie but another state: refused, and the
    // flow is spent, so the right state no longer works either.
    for state in ["forged", query["state"].as_str()] {
        let back = app
            .client
            .get(app.url(&format!("/v1/auth/oauth/idp/callback?code=x&state={state}")))
            .header("cookie", &flow_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), 303);
        assert_eq!(back.headers()["location"], "/login?sso=1");
        assert_eq!(back.headers()["referrer-policy"], "no-referrer");
        let outcome_cookie = back.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let done = app
            .client
            .post(app.url("/v1/auth/sso/complete"))
            .header("cookie", &outcome_cookie)
            .send()
            .await
            .unwrap();
        let body = json_of(done, 401).await;
        let expected = if state == "forged" {
            "SSO_STATE_MISMATCH"
        } else {
            "SSO_STATE_MISSING"
        };
        assert_eq!(body["error"]["code"], expected, "{body}");
        // An outcome is collected once.
        let again = app
            .client
            .post(app.url("/v1/auth/sso/complete"))
            .header("cookie", &outcome_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            json_of(again, 401).await["error"]["code"],
            "SSO_NOTHING_PENDING"
        );
    }
    assert_eq!(refusals(&app), ["SSO_STATE_MISMATCH", "SSO_STATE_MISSING"]);

    // sso_only: passwords sign in the instance admin (break-glass) and nobody else.
    let created = app
        .send_as(
            reqwest::Method::POST,
            &format!("/admin/orgs/{org}/users"),
            &admin_token,
            Some(&json!({"email": "bob@example.com", "displayName": "Bob",
                         "password": MEMBER_PASSWORD})),
            None,
        )
        .await;
    assert_eq!(created.status(), 201);
    let registered = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "eve@example.com", "password": MEMBER_PASSWORD,
                    "displayName": "Eve", "inviteToken": "x"}),
        )
        .await;
    assert_eq!(
        registered.status(),
        403,
        "no password accounts under sso_only"
    );
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let refused = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "bob@example.com", "password": MEMBER_PASSWORD}),
        )
        .await;
    let body = json_of(refused, 403).await;
    assert!(
        s(&body["error"], "message").contains("auth.sso_only"),
        "{body}"
    );
    let wrong = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "bob@example.com", "password": "not-the-password"}),
        )
        .await;
    assert_eq!(wrong.status(), 401, "a wrong password still says only that");
}

const FAKE_GITHUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/github/fake_github.py");

/// tests/github/fake_github.py, killed when dropped.
struct FakeGithub {
    child: Child,
    url: String,
}

impl FakeGithub {
    fn start(emails: Value) -> Self {
        let config = json!({
            "client_id": "gh-client",
            "client_secret": "gh-secret",
            "user": {"id": 4242, "login": "octocat", "name": "The Octocat"},
            "emails": emails,
        });
        let mut child = Command::new("python3")
            .arg(FAKE_GITHUB)
            .arg(config.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts the fake GitHub");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{}", port.trim()),
        }
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole GitHub round trip as a browser makes it, cookie included: sealbox, GitHub's
/// authorize (which approves at once), the callback, the page's pick-up. Returns the
/// pick-up's answer.
async fn github_round_trip(app: &TestApp) -> reqwest::Response {
    let started = app.get("/v1/auth/oauth/github").await;
    assert_eq!(started.status(), 302);
    let cookie = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    let approved = app.client.get(&authorize).send().await.unwrap();
    assert_eq!(approved.status(), 302, "{authorize}");
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&app.url("/v1/auth/oauth/github/callback?")),
        "{callback}"
    );
    let back = app
        .client
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let outcome = back.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    app.client
        .post(app.url("/v1/auth/sso/complete"))
        .header("cookie", outcome)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn github_signs_in_with_the_verified_primary_address_only() {
    let github = FakeGithub::start(json!([
        {"email": "octo@example.com", "primary": false, "verified": true, "visibility": null},
        {"email": "octo-primary@example.com", "primary": true, "verified": false, "visibility": "private"},
    ]));
    let app = TestApp::spawn_with(|config| {
        config.auth.github.client_id = "gh-client".into();
        config.auth.github.client_secret = sealbox::config::Secret::new("gh-secret");
        config.auth.github.web_url = github.url.clone();
        config.auth.github.api_url = github.url.clone();
        config.auth.github.organization = "acme".into();
    })
    .await;
    app.setup_admin().await;
    let started = app.get("/v1/auth/oauth/github").await;
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&format!("{}/login/oauth/authorize?", github.url)));
    assert!(
        authorize.contains("code_challenge_method=S256")
            && authorize.contains("scope=read%3Auser+user%3Aemail"),
        "{authorize}"
    );

    // The primary address is unverified: a verified secondary one does not stand in.
    let refused = json_of(github_round_trip(&app).await, 401).await;
    assert_eq!(
        refused["error"]["code"], "SSO_EMAIL_UNVERIFIED",
        "{refused}"
    );
    assert_eq!(user_count(&app), 1);

    let set = reqwest::Client::new()
        .post(format!("{}/__test/emails", github.url))
        .body(
            json!([{"email": "octo-primary@example.com", "primary": true, "verified": true}])
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    let done = json_of(github_round_trip(&app).await, 200).await;
    assert_eq!(done["outcome"], "signedIn");
    assert_eq!(done["tokens"]["user"]["email"], "octo-primary@example.com");
    assert_eq!(done["tokens"]["user"]["displayName"], "The Octocat");
    assert_eq!(done["tokens"]["user"]["organizations"][0]["role"], "member");
    let me = json_of(
        app.get_as("/v1/auth/me", &s(&done["tokens"], "accessToken"))
            .await,
        200,
    )
    .await;
    assert_eq!(me["email"], "octo-primary@example.com");
    let subjects: Vec<(String, String)> = app
        .query("SELECT provider, subject FROM user_identities", |row| {
            Ok((row.get(0)?, row.get(1)?))
        });
    assert_eq!(subjects, [("github".to_owned(), "4242".to_owned())]);
    // Again: the same account through the link.
    let again = json_of(github_round_trip(&app).await, 200).await;
    assert_eq!(again["tokens"]["user"]["id"], done["tokens"]["user"]["id"]);
    assert_eq!(user_count(&app), 2);
}

#[tokio::test]
async fn the_account_page_links_and_unlinks_a_provider() {
    let mut provider = OidcProvider::start();
    let (app, _secrets) = app_with(&mut provider, |_| {}).await;
    app.setup_admin().await;
    // Ada signs in with her password, links the provider on the account page (signing in
    // there as the provider's verified "ada"), sees it listed, then unlinks it.
    browse(json!([
        ["open", app.url("/login")],
        ["fill", "#login-email", ADMIN_EMAIL],
        ["fill", "#login-password", ADMIN_PASSWORD],
        ["click", "#login-form button[type=submit]"],
        ["js", "location.pathname.startsWith('/app')"],
        ["open", app.url("/app/account")],
        ["text", "No identity provider is linked to your account."],
        ["click", "button[data-link-provider=idp]"],
        ["fill", "input[name=login]", "ada"],
        ["fill", "input[name=password]", "anything"],
        ["click", "button[type=submit]"],
        ["text", "Continue"],
        ["click", "button[type=submit]"],
        ["text", "Test IdP is linked"],
        [
            "js",
            "location.pathname === '/app/account' && !location.search.includes('sso')"
        ],
        [
            "js",
            "document.querySelector('#identities-list')?.innerText.includes('ada@example.com')"
        ],
    ]))
    .await;
    let linked: Vec<(String, String)> = app.query(
        "SELECT u.email, i.subject FROM user_identities i JOIN users u ON u.id = i.user_id
         WHERE i.unlinked_at IS NULL",
        |row| Ok((row.get(0)?, row.get(1)?)),
    );
    assert_eq!(linked, [(ADMIN_EMAIL.to_owned(), "ada".to_owned())]);

    // Now the provider signs her in, to her own account.
    let mut steps = sign_in_steps(&app, "ada");
    steps.push(json!(["text", "Ada Lovelace"]));
    // And she unlinks it on the account page.
    steps.extend([
        json!(["open", app.url("/app/account")]),
        json!(["click", "#identities-list button"]),
        json!(["js", "document.getElementById('confirm-dialog').open"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Test IdP unlinked."]),
        json!(["text", "No identity provider is linked to your account."]),
    ]);
    browse(Value::Array(steps)).await;
    refused(&app, "ada", "was unlinked from its sealbox account").await;
    let audit: Vec<String> = app.query(
        "SELECT action FROM audit_log WHERE action LIKE 'identity.%' ORDER BY seq",
        |row| row.get(0),
    );
    assert_eq!(audit, ["identity.linked", "identity.unlinked"]);
}

#[tokio::test]
async fn a_plan_without_sso_refuses_provider_sign_in_until_the_organization_gets_one() {
    let mut provider = OidcProvider::start();
    let plan = |id: &str, features: &[&str]| sealbox::config::PlanConfig {
        id: id.into(),
        name: id.into(),
        features: features.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    };
    let (app, _secrets) = app_with(&mut provider, |config| {
        let mut seated = plan("seated", &["sso"]);
        seated.limits.members = 1;
        config.plans = vec![plan("free", &[]), seated, plan("team", &["sso"])];
        config.billing.default_plan = "free".into();
    })
    .await;
    let admin = app.setup_admin().await;
    let (token, org) = (
        s(&admin, "accessToken"),
        s(&admin["user"]["organizations"][0], "id"),
    );
    let users = user_count(&app);

    // Acme is on `free`: Grace's first sign-in would provision her into it. Refused, and
    // rolled back: no account, no link.
    refused(&app, "grace", "requires a plan with the `sso` feature").await;
    assert_eq!(refusals(&app), ["PLAN_REQUIRED"]);
    assert_eq!(user_count(&app), users, "no account was kept");
    let links: i64 = app.query("SELECT count(*) FROM user_identities", |row| row.get(0))[0];
    assert_eq!(links, 0);

    let assign = |plan: &'static str| {
        let (app, token, org) = (&app, &token, &org);
        async move {
            let assigned = app
                .send_as(
                    reqwest::Method::PUT,
                    &format!("/admin/orgs/{org}/plan"),
                    token,
                    Some(&json!({"plan": plan})),
                    None,
                )
                .await;
            assert_eq!(assigned.status(), 200);
        }
    };

    // `seated` has the feature but one seat, the admin's: provisioning Grace would take a
    // second. Refused the same way.
    assign("seated").await;
    refused(&app, "grace", "allows 1 members").await;
    assert_eq!(refusals(&app), ["PLAN_REQUIRED", "PLAN_REQUIRED"]);
    assert_eq!(user_count(&app), users, "no account was kept");

    // On `team`, the same sign-in goes through on the next try.
    assign("team").await;
    let mut steps = sign_in_steps(&app, "grace");
    steps.push(json!(["text", "Grace Hopper"]));
    browse(Value::Array(steps)).await;
    assert_eq!(user_count(&app), users + 1);
}
