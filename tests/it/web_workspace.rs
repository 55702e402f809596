//! The workspace at `/app` (web UI part 2, the shell and the people and governance pages)
//! in a real headless Chromium against the real server: signing in, deep links, reload
//! and the back button, the organization, account, audit and instance-admin pages, what
//! an auditor and a member of another organization are (not) offered, the organization
//! switcher and a phone-sized screen. `GET /admin/status` is checked over HTTP.

use std::path::Path;

use reqwest::Method;
use sealbox::http::ui::UI_CSP;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, assert_envelope, json_of, s,
};
use crate::web_ui::{browse, readme_screenshot};

/// Steps that open `path` signed out, sign in on the page the shell sends the browser
/// to, and wait until the shell has drawn `path` again.
pub(crate) fn sign_in(app: &TestApp, path: &str, email: &str, password: &str) -> Vec<Value> {
    let pathname = path.split(['?', '#']).next().unwrap();
    vec![
        json!(["open", app.url(path)]),
        json!(["js", "location.pathname === '/login'"]),
        json!(["fill", "#login-email", email]),
        json!(["fill", "#login-password", password]),
        json!(["click", "#login-form button[type=submit]"]),
        rendered(pathname),
    ]
}

/// Waits until the shell has finished drawing the page at `pathname`.
pub(crate) fn rendered(pathname: &str) -> Value {
    json!([
        "js",
        format!("document.getElementById('page').dataset.rendered === {pathname:?}")
    ])
}

/// A step that sets a `<select>` (or another form control, a `datetime-local` input) found
/// by `expression` to `value` as a person would (the change event fires).
pub(crate) fn choose(expression: &str, value: &str) -> Value {
    json!([
        "js",
        format!(
            "(() => {{ const s = {expression}; if (!s) return false; s.value = {value:?}; \
             s.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()"
        )
    ])
}

/// A step that saves, to `path`, what a `fetch` from the page with the page's own
/// session answers (`"status code"`): refreshes the tab's refresh token like api.js
/// does, keeps the new one, and sends `method path` with `body` in organization `org`.
pub(crate) fn forced_fetch(
    method: &str,
    api_path: &str,
    org: &str,
    body: &Value,
    out: &Path,
) -> Value {
    json!([
        "save",
        format!(
            "(async () => {{\
               const pair = await (await fetch('/v1/auth/refresh', {{method: 'POST', \
                 headers: {{'Content-Type': 'application/json'}}, \
                 body: JSON.stringify({{refreshToken: sessionStorage.getItem('sealbox.refresh')}})}})).json();\
               sessionStorage.setItem('sealbox.refresh', pair.refreshToken);\
               const r = await fetch({api_path:?}, {{method: {method:?}, headers: {{\
                 'Authorization': 'Bearer ' + pair.accessToken, 'Content-Type': 'application/json', \
                 'X-Organization-Id': {org:?}}}, body: {body}}});\
               const e = await r.json();\
               return r.status + ' ' + e.error.code;\
             }})()",
            // No body at all for a GET: fetch refuses one, even an empty one.
            body = if body.is_null() {
                "undefined".to_owned()
            } else {
                format!("{:?}", body.to_string())
            },
        ),
        out.to_str().unwrap()
    ])
}

pub(crate) async fn admin_and_org(app: &TestApp) -> (String, String) {
    let pair = app.setup_admin().await;
    (
        s(&pair, "accessToken"),
        s(&pair["user"]["organizations"][0], "id"),
    )
}

pub(crate) async fn get_json(app: &TestApp, path: &str, token: &str, org: Option<&str>) -> Value {
    json_of(app.send_as(Method::GET, path, token, None, org).await, 200).await
}

#[tokio::test]
async fn workspace_paths_serve_the_shell_under_the_ui_policy() {
    let app = TestApp::spawn().await;
    for path in [
        "/app",
        "/app/",
        "/app/audit",
        "/app/files/0190a0b0-0000-7000-8000-000000000000",
        "/app/no-such-page",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["content-security-policy"], UI_CSP);
        assert_eq!(headers["cache-control"], "no-cache");
        let html = response.text().await.unwrap();
        assert!(html.contains("/assets/app/shell.js"), "{path}");
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{path}"
        );
    }
    for asset in [
        "/assets/app/shell.js",
        "/assets/app/pages.js",
        "/assets/app/dom.js",
        "/assets/app/pages.css",
        "/assets/app/pages/home.js",
        "/assets/app/pages/account.js",
        "/assets/app/pages/organization.js",
        "/assets/app/pages/audit.js",
        "/assets/app/pages/admin.js",
    ] {
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.text().await.unwrap();
        // Trusted Types are required: no page writes HTML from a string.
        assert!(!body.contains("innerHTML"), "{asset}");
    }
    let post = app.client.post(app.url("/app/audit")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    assert_eq!(app.get("/app.html").await.status(), 404);
    assert_eq!(app.get("/apps").await.status(), 404);
}

#[tokio::test]
async fn admin_status_reports_the_instance_to_instance_admins_only() {
    let mut app = TestApp::spawn_with(|c| c.tls.mode = sealbox::config::TlsMode::SelfSigned).await;
    // The test's client trusts the server's own certificate, and only it.
    let cert_pem = std::fs::read(app.data_dir.join("tls/cert.pem")).unwrap();
    app.client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&cert_pem).unwrap())
        .build()
        .unwrap();
    let (admin, acme) = admin_and_org(&app).await;
    let status = get_json(&app, "/admin/status", &admin, None).await;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["apiVersion"], sealbox::http::middleware::API_VERSION);
    let schema: Vec<i64> = app.query("PRAGMA user_version", |r| r.get(0));
    assert_eq!(status["schemaVersion"], schema[0]);
    assert_eq!(status["latestSchemaVersion"], schema[0]);
    let disk = &status["disk"];
    let (free, total) = (
        disk["availableBytes"].as_u64().unwrap(),
        disk["totalBytes"].as_u64().unwrap(),
    );
    assert!(free > 0 && free <= total, "{disk}");
    // The certificate the listener serves.
    assert_eq!(status["tls"], "self-signed");
    let cert = &status["certificate"];
    assert_eq!(
        cert["fingerprint"].as_str(),
        app.certificate_fingerprint.as_deref(),
        "{cert}"
    );
    assert!(cert["daysLeft"].as_i64().unwrap() > 300, "{cert}");
    assert!(
        time::OffsetDateTime::parse(
            cert["notAfter"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    assert_eq!(status["organizations"], 1);
    assert_eq!(status["users"], 1);
    assert_eq!(status["webhookQueue"]["pending"], 0);
    // The console shows the certificate's expiry and days left, not a warning.
    let days = cert["daysLeft"].as_i64().unwrap();
    let mut steps = sign_in(&app, "/app/admin", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["js", format!("(() => {{ const dd = document.getElementById('status-cert'); return dd && dd.textContent.includes('{days} days left') && dd.textContent.endsWith('self-signed') && dd.dataset.warn === 'false'; }})()")]),
        json!(["js", "document.getElementById('status-queue')?.textContent.startsWith('0 pending')"]),
    ]);
    browse(Value::Array(steps)).await;

    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "admin")
        .await;
    let bob = s(&bob, "accessToken");
    let status = get_json(&app, "/admin/status", &admin, None).await;
    assert_eq!(status["users"], 2);

    // An organization admin is not an instance admin; no credential is nobody.
    assert_envelope(
        app.send_as(Method::GET, "/admin/status", &bob, None, Some(&acme))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_envelope(app.get("/admin/status").await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn admin_status_says_when_tls_is_off_and_counts_the_webhook_queue() {
    // Loopback allowed for webhooks, so a delivery to a closed local port is queued,
    // fails to connect and waits for its retry.
    let app =
        TestApp::spawn_with(|c| c.webhooks.allowed_networks = vec!["127.0.0.0/8".into()]).await;
    let (admin, _) = admin_and_org(&app).await;
    let status = get_json(&app, "/admin/status", &admin, None).await;
    assert_eq!(status["tls"], "off");
    assert!(status.get("certificate").is_none(), "{status}");
    assert_eq!(status["webhookQueue"]["pending"], 0);
    assert!(status["webhookQueue"].get("oldestPendingAt").is_none());

    let hook = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &admin,
            Some(&json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let queued = app
        .send_as(
            Method::POST,
            &format!("/v1/webhooks/{}/test", s(&hook, "id")),
            &admin,
            Some(&json!({})),
            None,
        )
        .await;
    assert_eq!(queued.status(), 202);
    // The outbox fans events out to deliveries in the background (the webhook's own
    // creation event among them), so the count may move while the status is read: compare
    // once the table holds still around one read.
    let pending_count = || -> i64 {
        app.query(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'",
            |r| r.get(0),
        )[0]
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let before = pending_count();
        let status = get_json(&app, "/admin/status", &admin, None).await;
        if before >= 1 && before == pending_count() {
            assert_eq!(status["webhookQueue"]["pending"], before, "{status}");
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the test delivery waits for its retry"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        status["webhookQueue"]["oldestPendingAt"].is_string(),
        "{status}"
    );
    // The console shows the queue waiting, and that TLS is off.
    let mut steps = sign_in(&app, "/app/admin", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["js", "/^[1-9]\\d* pending, \\d+ due now, oldest since /.test(document.getElementById('status-queue')?.textContent)"]),
        json!(["js", "document.getElementById('status-cert')?.textContent.startsWith('TLS is off')"]),
    ]);
    browse(Value::Array(steps)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_deep_links_reload_and_the_back_button_keep_the_page() {
    let app = TestApp::spawn().await;
    admin_and_org(&app).await;
    let mut steps = sign_in(
        &app,
        "/app/audit?action=auth.login",
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    );
    steps.extend([
        // The deep link survived signing in, query included, and the filter shows.
        json!(["js", "location.search === '?action=auth.login'"]),
        json!(["js", "document.querySelector('input[name=action]').value === 'auth.login'"]),
        json!(["js", "document.title === 'Audit log · sealbox'"]),
        json!(["js", "document.querySelector('#nav a[aria-current=page]').textContent === 'Audit log'"]),
        // A link inside the app is followed without loading a new document.
        json!(["js", "(window.sameDocument = 'yes', true)"]),
        json!(["click", "#nav a[href='/app/organization']"]),
        rendered("/app/organization"),
        json!(["text", "Members"]),
        json!(["js", "window.sameDocument === 'yes'"]),
        json!(["click", "#nav a[href='/app/account']"]),
        rendered("/app/account"),
        // Back, twice, and forward.
        json!(["js", "(history.back(), true)"]),
        rendered("/app/organization"),
        json!(["js", "(history.back(), true)"]),
        rendered("/app/audit"),
        json!(["js", "location.search === '?action=auth.login' && window.sameDocument === 'yes'"]),
        json!(["js", "(history.forward(), true)"]),
        rendered("/app/organization"),
        // A reload keeps the page and the session (the refresh token in this tab).
        json!(["open", app.url("/app/organization")]),
        rendered("/app/organization"),
        json!(["text", "Ada Lovelace"]),
        // An address with no page says so inside the shell.
        json!(["open", app.url("/app/nowhere")]),
        rendered("/app/nowhere"),
        json!(["text", "Page not found"]),
        // Signing out ends the session: the next visit signs in again.
        json!(["click", "#account-menu summary"]),
        json!(["click", "#sign-out"]),
        json!(["js", "location.pathname === '/login'"]),
        json!(["js", "sessionStorage.getItem('sealbox.refresh') === null"]),
        json!(["open", app.url("/app/audit")]),
        json!(["js", "location.pathname === '/login' && new URLSearchParams(location.search).get('next') === '/app/audit'"]),
    ]);
    browse(Value::Array(steps)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organization_page_manages_members_invites_roles_and_teams() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let bob_id = s(&bob["user"], "id");
    let carol = app
        .invite_and_register(&admin, &acme, "carol@example.com", "member")
        .await;
    let carol_id = s(&carol["user"], "id");
    let shots = tempfile::tempdir().unwrap();
    let link_file = shots.path().join("invite-link");

    let mut steps = sign_in(&app, "/app/organization", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["text", "bob@example.com"]),
        // Members: a role change, disabling, removing (after the dialog).
        choose(
            &format!("document.getElementById('role-{bob_id}')"),
            "auditor",
        ),
        json!(["text", "bob is now auditor."]),
        json!(["click", "button[aria-label='Disable carol']"]),
        json!(["text", "carol is disabled."]),
        json!(["click", "button[aria-label='Remove carol']"]),
        json!(["js", "document.getElementById('confirm-dialog').open"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "carol was removed."]),
        json!([
            "js",
            format!("!document.querySelector('#members [data-id=\"{carol_id}\"]')")
        ]),
        // Invites: mail is off, so the link is shown to copy; then withdrawn.
        json!(["fill", "#invites input[name=email]", "dave@example.com"]),
        choose(
            "document.querySelector('#invites select[name=role]')",
            "admin",
        ),
        json!(["click", "#invites button[type=submit]"]),
        json!([
            "text",
            "Mail is off: give dave@example.com this link yourself."
        ]),
        json!([
            "save",
            "document.getElementById('invite-link').value",
            link_file.to_str().unwrap()
        ]),
        json!([
            "js",
            "document.querySelector('#invites tbody').textContent.includes('dave@example.com')"
        ]),
        // The server's refusal shows as its message.
        json!(["fill", "#invites input[name=email]", "not-an-address"]),
        json!(["click", "#invites button[type=submit]"]),
        json!([
            "js",
            "!document.querySelector('#invites [role=alert]').hidden"
        ]),
        json!([
            "click",
            "button[aria-label='Withdraw the invite to dave@example.com']"
        ]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Invite withdrawn."]),
        json!([
            "js",
            "!document.querySelector('#invites').textContent.includes('dave@example.com')"
        ]),
        // Roles: built-in ones are read-only; a custom role from permission checkboxes.
        json!(["js", "document.querySelector('#roles details[data-id=owner]') && !document.querySelector('#roles details[data-id=owner] form')"]),
        json!(["click", "#roles details[data-id=owner] summary"]),
        json!(["text", "Built-in roles cannot be changed."]),
        json!(["fill", "#roles form input[name=name]", "Release manager"]),
        json!(["click", "#roles form input[value='files:read']"]),
        json!(["click", "#roles form input[value='audit:read']"]),
        json!(["click", "#roles form button[type=submit]"]),
        json!(["text", "Role Release manager created."]),
        // Teams: one with Bob in it.
        json!(["fill", "#teams form input[name=name]", "Platform"]),
        json!(["click", format!("#teams form input[value='{bob_id}']")]),
        json!(["click", "#teams form button[type=submit]"]),
        json!(["text", "Platform created."]),
        json!(["fill", "#departments form input[name=name]", "Engineering"]),
        json!(["click", "#departments form button[type=submit]"]),
        json!(["text", "Engineering created."]),
        // Settings: a rename shows in the header's switcher at once.
        json!(["fill", "#settings input[name=name]", "Acme Corp"]),
        json!(["click", "#settings button[type=submit]"]),
        json!(["text", "Settings saved."]),
        json!([
            "js",
            "document.getElementById('org-switch').selectedOptions[0].textContent === 'Acme Corp'"
        ]),
        readme_screenshot(shots.path(), "app-organization.png", Some("#members")),
    ]);
    browse(Value::Array(steps)).await;

    // What the browser did is what the server holds.
    let members = get_json(
        &app,
        &format!("/v1/organizations/{acme}/members"),
        &admin,
        None,
    )
    .await;
    let members = members.as_array().unwrap();
    let bob_row = members
        .iter()
        .find(|m| m["userId"] == bob_id.as_str())
        .unwrap();
    assert_eq!(bob_row["role"], "auditor");
    assert!(!members.iter().any(|m| m["userId"] == carol_id.as_str()));
    let invites = get_json(&app, &format!("/v1/invites/{acme}"), &admin, None).await;
    assert_eq!(invites.as_array().unwrap().len(), 0, "{invites}");
    let link = std::fs::read_to_string(&link_file).unwrap();
    assert!(link.starts_with(&app.url("/invite?token=")), "{link}");
    let roles = get_json(&app, "/v1/roles", &admin, Some(&acme)).await;
    let custom = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Release manager")
        .unwrap();
    assert_eq!(custom["builtIn"], false);
    let mut permissions: Vec<&str> = custom["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    permissions.sort_unstable();
    assert_eq!(permissions, ["audit:read", "files:read"]);
    let teams = get_json(&app, "/v1/teams", &admin, Some(&acme)).await;
    assert_eq!(teams[0]["name"], "Platform");
    assert_eq!(teams[0]["memberIds"], json!([bob_id]));
    let departments = get_json(&app, "/v1/departments", &admin, Some(&acme)).await;
    assert_eq!(departments[0]["name"], "Engineering");
    let org = get_json(&app, &format!("/v1/organizations/{acme}"), &admin, None).await;
    assert_eq!(org["name"], "Acme Corp");

    // Then changed and deleted in the browser, too.
    let role_id = s(custom, "id");
    let team_id = s(&teams[0], "id");
    let department_id = s(&departments[0], "id");
    let team = format!("#teams details[data-id='{team_id}']");
    let department = format!("#departments details[data-id='{department_id}']");
    let mut steps = sign_in(&app, "/app/organization", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        // A team renamed with another member; a department renamed, then deleted.
        json!(["click", format!("{team} summary")]),
        json!(["fill", format!("{team} input[name=name]"), "Platform team"]),
        json!(["click", format!("{team} input[value='{bob_id}']")]),
        json!(["click", format!("{team} button[type=submit]")]),
        json!(["text", "Platform team saved."]),
        // Bob was in it and is no longer.
        json!([
            "js",
            format!(
                "document.querySelector(\"{team} summary\")?.textContent.includes('0 members')"
            )
        ]),
        json!(["click", format!("{department} summary")]),
        json!([
            "fill",
            format!("{department} input[name=name]"),
            "Engineering and Ops"
        ]),
        json!(["click", format!("{department} button[type=submit]")]),
        json!(["text", "Engineering and Ops saved."]),
        json!(["click", format!("{department} summary")]),
        json!(["click", format!("{department} button.danger")]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Engineering and Ops deleted."]),
        json!(["text", "No departments yet."]),
        // Settings: JSON that is not an object is refused on the page; a slug and an
        // object are saved.
        json!(["fill", "#settings textarea[name=settings]", "[1, 2]"]),
        json!(["click", "#settings button[type=submit]"]),
        json!(["text", "Settings must be a JSON object"]),
        json!(["fill", "#settings input[name=slug]", "acme-corp"]),
        json!([
            "fill",
            "#settings textarea[name=settings]",
            "{\"brandColor\": \"#0a7\"}"
        ]),
        json!(["click", "#settings button[type=submit]"]),
        json!(["text", "Settings saved."]),
        json!([
            "js",
            "document.querySelector('#settings dd.mono')?.textContent === 'acme-corp'"
        ]),
        json!([
            "click",
            format!("#roles details[data-id='{role_id}'] summary")
        ]),
        json!([
            "click",
            format!("#roles details[data-id='{role_id}'] input[value='kv:read']")
        ]),
        json!([
            "click",
            format!("#roles details[data-id='{role_id}'] button[type=submit]")
        ]),
        json!(["text", "Role Release manager saved."]),
        json!([
            "click",
            format!("#roles details[data-id='{role_id}'] summary")
        ]),
        json!([
            "click",
            format!("#roles details[data-id='{role_id}'] button.danger")
        ]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Role Release manager deleted."]),
        json!([
            "click",
            format!("#teams details[data-id='{team_id}'] summary")
        ]),
        json!([
            "click",
            format!("#teams details[data-id='{team_id}'] button.danger")
        ]),
        // Cancelling the dialog keeps it.
        json!(["click", "#confirm-no"]),
        json!([
            "js",
            format!("!!document.querySelector(\"#teams details[data-id='{team_id}']\")")
        ]),
        json!([
            "click",
            format!("#teams details[data-id='{team_id}'] button.danger")
        ]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Platform team deleted."]),
        json!(["text", "No teams yet."]),
    ]);
    browse(Value::Array(steps)).await;
    let roles = get_json(&app, "/v1/roles", &admin, Some(&acme)).await;
    assert!(
        !roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "Release manager")
    );
    let teams = get_json(&app, "/v1/teams", &admin, Some(&acme)).await;
    assert_eq!(teams, json!([]));
    let departments = get_json(&app, "/v1/departments", &admin, Some(&acme)).await;
    assert_eq!(departments, json!([]));
    let org = get_json(&app, &format!("/v1/organizations/{acme}"), &admin, None).await;
    assert_eq!(org["slug"], "acme-corp");
    assert_eq!(org["settings"], json!({"brandColor": "#0a7"}));
}

/// Puts `n` unread notifications for `user` in `org` straight into the database, as the
/// services do when a transfer reaches a member.
fn notify(app: &TestApp, org: &str, user: &str, n: usize) {
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    for i in 0..n {
        conn.execute(
            "INSERT INTO notifications (id, org_id, user_id, kind, title, body, data, created_at)
             VALUES (?1, ?2, ?3, 'transfer.received', ?4, 'Ready to download.', '{}', ?5)",
            rusqlite::params![
                uuid::Uuid::now_v7().to_string(),
                org,
                user,
                format!("Files were sent to you #{i}"),
                format!("2026-01-01T00:00:0{i}Z"),
            ],
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_changes_profile_password_sessions_and_notifications() {
    const NEW_PASSWORD: &str = "saffron-harbor-ninety";
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    let me = get_json(&app, "/v1/auth/me", &admin, None).await;
    let my_id = s(&me, "id");
    notify(&app, &acme, &my_id, 3);
    // Another session of the same account, elsewhere.
    let elsewhere = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let shots = tempfile::tempdir().unwrap();

    let mut steps = sign_in(&app, "/app/account", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        // The bell counts the unread notifications.
        json!(["js", "document.getElementById('bell-count').textContent === '3' && !document.getElementById('bell-count').hidden"]),
        json!(["js", "document.getElementById('bell').getAttribute('aria-label') === 'Notifications: 3 unread'"]),
        json!(["text", "Files were sent to you #2"]),
        json!(["click", "button[aria-label='Mark “Files were sent to you #2” read']"]),
        json!(["js", "document.getElementById('bell-count').textContent === '2'"]),
        json!(["click", "#mark-all-read"]),
        json!(["js", "document.getElementById('bell-count').hidden"]),
        json!(["js", "document.querySelectorAll('#notification-list [data-read=true]').length === 3"]),
        // Sessions: this one is marked; the other one is signed out.
        json!(["text", "this session"]),
        // Setup's session, the one signed in elsewhere, and this one.
        json!(["js", "document.querySelectorAll('#sessions-list tbody tr').length === 3"]),
        json!(["click", "#revoke-other-sessions"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Other sessions signed out."]),
        json!(["js", "document.querySelectorAll('#sessions-list tbody tr').length === 1"]),
        // Profile: the header shows the new name.
        json!(["fill", "input[name=displayName]", "Ada King"]),
        json!(["click", "form:has(input[name=displayName]) button[type=submit]"]),
        json!(["text", "Profile saved."]),
        json!(["js", "document.getElementById('account-name').textContent === 'Ada King'"]),
        // Password: checked in the page, then refused by the server with its message.
        json!(["fill", "input[name=currentPassword]", "not-the-password"]),
        json!(["fill", "input[name=password]", NEW_PASSWORD]),
        json!(["fill", "input[name=passwordRepeat]", "something-else-entirely"]),
        json!(["click", "form:has(input[name=currentPassword]) button[type=submit]"]),
        json!(["text", "The two passwords do not match."]),
        json!(["fill", "input[name=passwordRepeat]", NEW_PASSWORD]),
        json!(["click", "form:has(input[name=currentPassword]) button[type=submit]"]),
        json!(["text", "is not the current password"]),
        json!(["fill", "input[name=currentPassword]", ADMIN_PASSWORD]),
        json!(["click", "form:has(input[name=currentPassword]) button[type=submit]"]),
        json!(["text", "Password changed."]),
        readme_screenshot(shots.path(), "app-account.png", Some("section:has(#sessions-list)")),
    ]);
    browse(Value::Array(steps)).await;

    // The other session is gone; the new password signs in; the old one does not.
    let refreshed = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refreshToken": elsewhere["refreshToken"]}),
        )
        .await;
    assert_envelope(refreshed, 401, "UNAUTHORIZED").await;
    let pair = app.login(ADMIN_EMAIL, NEW_PASSWORD).await;
    assert_eq!(pair["user"]["displayName"], "Ada King");
    let unread = get_json(
        &app,
        "/v1/notifications?unread=true",
        &s(&pair, "accessToken"),
        Some(&acme),
    )
    .await;
    assert_eq!(unread, json!([]));
    let old = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(old.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_verifies_and_exports_the_log_but_is_offered_no_write() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    app.invite_and_register(&admin, &acme, "audrey@example.com", "auditor")
        .await;
    for email in ["x1@example.com", "x2@example.com", "x3@example.com"] {
        let invite = app
            .send_as(
                Method::POST,
                &format!("/v1/invites/{acme}"),
                &admin,
                Some(&json!({"email": email})),
                None,
            )
            .await;
        assert_eq!(invite.status(), 201);
    }
    let downloads = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let head_file = out.path().join("head");
    let forced_file = out.path().join("forced");
    let forced_role_file = out.path().join("forced-role");
    let shots = tempfile::tempdir().unwrap();

    let mut steps = sign_in(&app, "/app/audit", "audrey@example.com", MEMBER_PASSWORD);
    steps.extend([
        json!(["downloads", downloads.path().to_str().unwrap()]),
        // The nav offers only what the auditor's role opens.
        json!(["js", "!!document.querySelector('#nav a[href=\"/app/audit\"]')"]),
        json!(["js", "!document.querySelector('#nav a[href=\"/app/admin\"]')"]),
        json!(["text", "invite.created"]),
        // Verify: the result and the head hash.
        json!(["click", "#verify-chain"]),
        json!(["text", "The chain is intact"]),
        json!(["save", "document.getElementById('verify-head').textContent", head_file.to_str().unwrap()]),
        // Filter by action: kept in the address.
        json!(["fill", "input[name=action]", "invite.created"]),
        json!(["click", "form.filters button[type=submit]"]),
        json!(["js", "location.search === '?action=invite.created'"]),
        rendered("/app/audit"),
        json!(["js", "document.querySelectorAll('#audit-table tbody tr').length === 4"]),
        json!(["js", "[...document.querySelectorAll('#audit-table tbody tr')].every((r) => r.dataset.action === 'invite.created')"]),
        // One entry's details.
        json!(["click", "#audit-table tbody tr:first-child button"]),
        json!(["text", "x3@example.com"]),
        json!(["js", "document.activeElement.id === 'audit-detail-heading'"]),
        readme_screenshot(shots.path(), "app-audit.png", Some("section:has(#verify-chain)")),
        // Exports of the filtered entries.
        json!(["click", "#export-jsonl"]),
        json!(["downloaded", 1]),
        json!(["text", "Exported 4 entries."]),
        json!(["click", "#export-csv"]),
        json!(["downloaded", 2]),
        // The organization page: read-only for this role, and says why.
        json!(["click", "#nav a[href='/app/organization']"]),
        rendered("/app/organization"),
        json!(["text", "audrey@example.com"]),
        json!(["text", "Seeing and sending invites needs the invites:write permission"]),
        json!(["text", "Creating and changing custom roles needs the roles:write permission"]),
        json!(["js", "!document.querySelector('#page form') && !document.querySelector('#members select') && !document.querySelector('#page button.danger')"]),
        // The admin console is not offered, and says so when opened by address.
        json!(["open", app.url("/app/admin")]),
        rendered("/app/admin"),
        json!(["text", "Only instance admins can open this page."]),
        // A write forced through fetch with this session: refused by the server.
        forced_fetch("POST", &format!("/v1/invites/{acme}"), &acme, &json!({"email": "eve@example.com"}), &forced_file),
        forced_fetch("POST", "/v1/roles", &acme, &json!({"name": "Sneaky", "permissions": ["org:write"]}), &forced_role_file),
    ]);
    browse(Value::Array(steps)).await;

    assert_eq!(
        std::fs::read_to_string(&forced_file).unwrap(),
        "403 FORBIDDEN"
    );
    assert_eq!(
        std::fs::read_to_string(&forced_role_file).unwrap(),
        "403 FORBIDDEN"
    );
    let verify = get_json(&app, "/v1/audit/verify", &admin, Some(&acme)).await;
    assert_eq!(verify["valid"], true);
    // The page showed the head of the chain as it was; entries may have come since
    // (the auditor's own sign-in), so the page's head is one of the chain's hashes.
    let head = std::fs::read_to_string(&head_file).unwrap();
    let entries = get_json(&app, "/v1/audit?action=invite.created", &admin, Some(&acme)).await;
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let all = get_json(&app, "/v1/audit?limit=200", &admin, Some(&acme)).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["hash"] == head.as_str()),
        "the head hash {head} is an entry of the chain"
    );

    let mut files: Vec<_> = std::fs::read_dir(downloads.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let csv = files
        .iter()
        .find(|p| p.extension().unwrap() == "csv")
        .unwrap();
    let jsonl = files
        .iter()
        .find(|p| p.extension().unwrap() == "jsonl")
        .unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        &lines, entries,
        "the export holds the filtered entries as the API gives them"
    );
    let csv = std::fs::read_to_string(csv).unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(
        rows[0].starts_with("id,createdAt,action,outcome,actorUserId"),
        "{csv}"
    );
    for (row, entry) in rows[1..].iter().zip(entries) {
        assert!(
            row.starts_with(&format!(
                "{},{},invite.created,success,",
                s(entry, "id"),
                s(entry, "createdAt")
            )),
            "{row}"
        );
        assert!(
            row.ends_with(&format!("{},{}", s(entry, "prevHash"), s(entry, "hash"))),
            "{row}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_another_organization_sees_nothing_of_this_one() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    app.invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    // Globex: its own owner, Gina, who belongs to nothing else.
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
    let globex_id = s(&globex, "id");
    let gina = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{globex_id}/users"),
            &admin,
            Some(&json!({"email": "gina@example.com", "displayName": "Gina", "password": MEMBER_PASSWORD, "role": "owner"})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(gina["user"]["role"], "owner");
    // Acme has a webhook and an API key for Gina's pages not to show.
    let hook = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &admin,
            Some(&json!({"url": "https://hooks.example.com/acme-only"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let hook_id = s(&hook, "id");
    json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &admin,
            Some(&json!({"name": "acme-deploy-key"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let forced = out.path().join("forced");
    let forced_audit = out.path().join("forced-audit");
    let forced_hook = out.path().join("forced-hook");
    let forced_hook_here = out.path().join("forced-hook-here");

    let mut steps = sign_in(
        &app,
        "/app/organization",
        "gina@example.com",
        MEMBER_PASSWORD,
    );
    steps.extend([
        json!(["text", "gina@example.com"]),
        json!(["js", "[...document.getElementById('org-switch').options].map((o) => o.textContent).join() === 'Globex'"]),
        json!(["no-text", "Acme"]),
        json!(["no-text", "bob@example.com"]),
        json!(["no-text", "ada@example.com"]),
        json!(["click", "#nav a[href='/app/audit']"]),
        rendered("/app/audit"),
        json!(["no-text", "bob@example.com"]),
        json!(["no-text", "Ada"]),
        // Asking for Acme's members by its id answers 404, as for anything unknown.
        forced_fetch("GET", &format!("/v1/organizations/{acme}/members"), &acme, &Value::Null, &forced),
        forced_fetch("GET", "/v1/audit", &acme, &Value::Null, &forced_audit),
        // Her own webhooks and keys pages list nothing of Acme's; Acme's webhook by its
        // id is 404 in her organization and in Acme's.
        json!(["click", "#nav a[href='/app/webhooks']"]),
        rendered("/app/webhooks"),
        json!(["text", "No webhooks yet"]),
        json!(["no-text", "acme-only"]),
        json!(["click", "#nav a[href='/app/api-keys']"]),
        rendered("/app/api-keys"),
        json!(["no-text", "acme-deploy-key"]),
        forced_fetch("GET", &format!("/v1/webhooks/{hook_id}"), &globex_id, &Value::Null, &forced_hook_here),
        forced_fetch("GET", &format!("/v1/webhooks/{hook_id}"), &acme, &Value::Null, &forced_hook),
    ]);
    browse(Value::Array(steps)).await;
    for file in [&forced_hook, &forced_hook_here] {
        assert_eq!(std::fs::read_to_string(file).unwrap(), "404 NOT_FOUND");
    }
    assert_eq!(std::fs::read_to_string(&forced).unwrap(), "404 NOT_FOUND");
    assert_eq!(
        std::fs::read_to_string(&forced_audit).unwrap(),
        "404 NOT_FOUND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organization_switcher_changes_what_the_pages_show() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    app.invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let initech = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Initech"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let initech_id = s(&initech, "id");
    app.invite_and_register(&admin, &initech_id, "peter@example.com", "member")
        .await;

    let mut steps = sign_in(&app, "/app/organization", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["text", "bob@example.com"]),
        json!(["no-text", "peter@example.com"]),
        choose("document.getElementById('org-switch')", &initech_id),
        json!([
            "js",
            "document.querySelector('#page h1').textContent === 'Initech'"
        ]),
        json!(["text", "peter@example.com"]),
        json!(["no-text", "bob@example.com"]),
        // The choice holds across a reload of the tab and for the other pages.
        json!(["open", app.url("/app/audit")]),
        rendered("/app/audit"),
        json!([
            "js",
            format!("document.getElementById('org-switch').value === {initech_id:?}")
        ]),
        json!([
            "js",
            "document.querySelector('#page .lead').textContent.includes('Initech')"
        ]),
        choose("document.getElementById('org-switch')", &acme),
        json!([
            "js",
            "document.querySelector('#page .lead').textContent.includes('Acme')"
        ]),
        rendered("/app/audit"),
    ]);
    browse(Value::Array(steps)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_console_reports_status_and_manages_organizations_and_accounts() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "admin")
        .await;
    let bob_token = s(&bob, "accessToken");
    let out = tempfile::tempdir().unwrap();
    let link_file = out.path().join("link");
    let reset_file = out.path().join("reset");
    let shots = tempfile::tempdir().unwrap();
    let schema: Vec<i64> = app.query("PRAGMA user_version", |r| r.get(0));

    let mut steps = sign_in(&app, "/app/admin", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!([
            "js",
            format!(
                "document.getElementById('status-version').textContent.startsWith({:?})",
                env!("CARGO_PKG_VERSION")
            )
        ]),
        json!([
            "js",
            format!(
                "document.getElementById('status-schema').textContent === 'version {}, current'",
                schema[0]
            )
        ]),
        json!([
            "js",
            "/ of /.test(document.getElementById('status-disk').textContent)"
        ]),
        json!(["text", "TLS is off"]),
        json!([
            "js",
            "document.getElementById('status-queue').textContent.startsWith('0 pending')"
        ]),
        // A new organization, then its first account without a password: the link.
        json!(["fill", "#organizations input[name=name]", "Umbrella"]),
        json!(["click", "#organizations button[type=submit]"]),
        json!(["text", "Umbrella created."]),
        json!(["text", "Accounts of Umbrella"]),
        json!(["js", "new URLSearchParams(location.search).has('org')"]),
        json!(["fill", "#accounts input[name=email]", "uma@example.com"]),
        json!(["fill", "#accounts input[name=displayName]", "Uma"]),
        choose(
            "document.querySelector('#accounts select[name=role]')",
            "owner",
        ),
        json!(["click", "#accounts button[type=submit]"]),
        json!(["text", "Account uma@example.com created."]),
        json!([
            "save",
            "document.getElementById('set-password-link').value",
            link_file.to_str().unwrap()
        ]),
        json!([
            "js",
            "document.querySelector('#accounts tbody').textContent.includes('uma@example.com')"
        ]),
        // The organizations table counts her at once, without a reload.
        json!([
            "js",
            "[...document.querySelectorAll('#organizations tbody tr')].some((r) => \
             r.textContent.includes('Umbrella') && \
             r.querySelector('td[data-label=Members]').textContent === '1')"
        ]),
        // A duplicate is refused with the server's message.
        json!(["fill", "#accounts input[name=email]", "uma@example.com"]),
        json!(["fill", "#accounts input[name=displayName]", "Uma again"]),
        json!(["click", "#accounts button[type=submit]"]),
        json!([
            "js",
            "!document.querySelector('#accounts [role=alert]').hidden"
        ]),
        // A reset link for the existing account, shown with its copy button.
        json!([
            "click",
            "button[aria-label='Issue a password reset link for uma@example.com']"
        ]),
        json!(["text", "Password reset link for uma@example.com"]),
        json!(["text", "It was not mailed (mail is off"]),
        json!([
            "js",
            "document.querySelector('#reset-result .copy') !== null"
        ]),
        json!([
            "save",
            "document.getElementById('reset-link').value",
            reset_file.to_str().unwrap()
        ]),
        readme_screenshot(shots.path(), "app-admin.png", Some("#organizations")),
        // Suspend Acme, then lift it.
        json!(["click", "button[aria-label='Suspend Acme']"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Acme is suspended."]),
        json!(["text", "by an instance admin"]),
        json!(["click", "button[aria-label='Lift the suspension of Acme']"]),
        json!(["text", "Acme is active again."]),
        // A reload keeps the picked organization: it is in the address.
        json!(["js", "(setTimeout(() => location.reload(), 0), true)"]),
        json!([
            "js",
            "performance.getEntriesByType('navigation')[0].type === 'reload'"
        ]),
        rendered("/app/admin"),
        json!(["text", "Accounts of Umbrella"]),
    ]);
    browse(Value::Array(steps)).await;

    let link = std::fs::read_to_string(&link_file).unwrap();
    assert!(
        link.starts_with(&app.url("/reset-password?token=")),
        "{link}"
    );
    // The reset link works, once; redeeming it ends the earlier set-password link too.
    let reset = std::fs::read_to_string(&reset_file).unwrap();
    assert_ne!(reset, link);
    let token = |link: &str| link.split_once("?token=").unwrap().1.to_owned();
    let redeem = |link: &str| {
        let body = json!({"token": token(link), "password": "bright-harbor-sixty"});
        let app = &app;
        async move { app.post_json("/v1/auth/reset-password", &body).await }
    };
    assert_eq!(redeem(&reset).await.status(), 204);
    assert_envelope(redeem(&reset).await, 401, "UNAUTHORIZED").await;
    assert_envelope(redeem(&link).await, 401, "UNAUTHORIZED").await;
    app.login("uma@example.com", "bright-harbor-sixty").await;
    let orgs = get_json(&app, "/admin/orgs", &admin, None).await;
    let umbrella = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Umbrella")
        .unwrap();
    assert_eq!(umbrella["memberCount"], 1);
    let acme_row = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == acme.as_str())
        .unwrap();
    assert_eq!(acme_row["status"], "active");
    // An organization admin has no console: the page is not offered, the route refuses.
    let mut steps = sign_in(&app, "/app", "bob@example.com", MEMBER_PASSWORD);
    steps.extend([
        json!([
            "js",
            "!document.querySelector('#nav a[href=\"/app/admin\"]')"
        ]),
        json!(["no-text", "Instance admin"]),
    ]);
    browse(Value::Array(steps)).await;
    assert_envelope(
        app.send_as(Method::GET, "/admin/orgs", &bob_token, None, None)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_sized_screen_shows_the_shell_without_sideways_scrolling() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    app.invite_and_register(
        &admin,
        &acme,
        "a-member-with-a-rather-long-address@example.com",
        "member",
    )
    .await;
    let shots = tempfile::tempdir().unwrap();
    let no_sideways = "document.documentElement.scrollWidth <= window.innerWidth";
    let mut steps = vec![json!(["viewport", 390, 844])];
    steps.extend(sign_in(
        &app,
        "/app/organization",
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    ));
    steps.extend([
        json!(["text", "a-member-with-a-rather-long-address@example.com"]),
        json!(["js", no_sideways]),
        // The navigation folds behind the Menu button.
        json!([
            "js",
            "getComputedStyle(document.getElementById('nav')).display === 'none'"
        ]),
        json!(["click", "#nav-toggle"]),
        json!([
            "js",
            "document.getElementById('nav-toggle').getAttribute('aria-expanded') === 'true'"
        ]),
        json!(["click", "#nav a[href='/app/audit']"]),
        rendered("/app/audit"),
        json!([
            "js",
            "getComputedStyle(document.getElementById('nav')).display === 'none'"
        ]),
        json!(["js", no_sideways]),
        // Not one of the README's: the phone's own screen, whole.
        json!([
            "screenshot",
            shots.path().join("app-phone.png").to_str().unwrap()
        ]),
        json!(["open", app.url("/app/account")]),
        rendered("/app/account"),
        json!(["js", no_sideways]),
        json!(["open", app.url("/app/admin")]),
        rendered("/app/admin"),
        json!(["js", no_sideways]),
    ]);
    // Every other page, as drawn for this owner.
    for page in [
        "/app",
        "/app/files",
        "/app/secrets",
        "/app/api-keys",
        "/app/webhooks",
        "/app/billing",
        "/send",
    ] {
        steps.push(json!(["open", app.url(page)]));
        if page.starts_with("/app") {
            steps.push(rendered(page));
        } else {
            steps.push(json!(["js", "document.readyState === 'complete'"]));
        }
        steps.push(json!(["js", no_sideways]));
    }
    browse(Value::Array(steps)).await;
}
