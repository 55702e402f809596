//! The embedded web UI and the API reference, as a browser receives them; and the pages
//! that mailed and printed links open, used by a real headless Chromium against the real
//! server (`tests/browser/drive.py` drives it over the DevTools protocol).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use reqwest::Method;
use sealbox::http::ui::{DOCS_CSP, UI_CSP};
use serde_json::{Value, json};

use crate::support::{MEMBER_PASSWORD, TestApp, json_of, s};

#[tokio::test]
async fn index_is_served_from_the_binary_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], UI_CSP);
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers["etag"].to_str().unwrap().starts_with('"'));
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>sealbox</title>"));
    // The versions show without script (issue 15: the page said "Version –").
    assert!(
        html.contains(&format!(
            "<dd id=\"version\">{}</dd>",
            env!("CARGO_PKG_VERSION")
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<dd id=\"api-version\">{}</dd>",
            sealbox::http::middleware::API_VERSION
        )),
        "{html}"
    );
    assert!(
        !html.contains("<script>"),
        "no inline script: the policy would block it"
    );

    // Every asset the page references is served.
    for asset in ["/assets/app.css", "/assets/app.js", "/assets/favicon.svg"] {
        assert!(html.contains(asset), "{asset} referenced");
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
    }
    assert_eq!(
        app.get("/assets/app.js").await.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test]
async fn etags_make_revalidation_cheap() {
    let app = TestApp::spawn().await;
    let etag = app.get("/assets/app.css").await.headers()["etag"].clone();
    let revalidated = app
        .client
        .get(app.url("/assets/app.css"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag);
    assert!(revalidated.bytes().await.unwrap().is_empty());

    let stale = app
        .client
        .get(app.url("/assets/app.css"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn head_gives_headers_without_a_body() {
    let app = TestApp::spawn().await;
    let get_len = app.get("/assets/app.js").await.bytes().await.unwrap().len();
    let head = app
        .client
        .head(app.url("/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        get_len.to_string().as_str()
    );
}

#[tokio::test]
async fn docs_are_an_interactive_reference_served_without_a_cdn() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], DOCS_CSP);
    assert_eq!(headers["cache-control"], "no-cache");
    // Issue 20: no inline script (nor style, nor eval) is allowed on the page any more.
    assert!(!DOCS_CSP.contains("unsafe"), "{DOCS_CSP}");
    assert!(DOCS_CSP.contains("script-src 'self';"), "{DOCS_CSP}");
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("<style"), "no inline style");
    // Nothing from another origin (poem's page inlined the 3 MiB bundle instead).
    assert!(!html.contains("://"), "{html}");
    assert!(
        html.len() < 4096,
        "the page is ours and small: {} bytes",
        html.len()
    );

    // The page's files: the vendored bundle and stylesheet, as they are in web/vendor/,
    // and our module, cached like the UI's assets.
    let vendor = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/vendor/swagger-ui");
    for (asset, content_type, vendored) in [
        (
            "/docs/swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            Some("swagger-ui-bundle.js"),
        ),
        (
            "/docs/swagger-ui.css",
            "text/css; charset=utf-8",
            Some("swagger-ui.css"),
        ),
        ("/assets/docs.js", "text/javascript; charset=utf-8", None),
    ] {
        assert!(html.contains(asset), "{asset} referenced");
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(response.headers()["content-type"], content_type, "{asset}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=3600",
            "{asset}"
        );
        assert!(response.headers().contains_key("etag"), "{asset}");
        let body = response.bytes().await.unwrap();
        if let Some(file) = vendored {
            assert!(
                body == std::fs::read(vendor.join(file)).unwrap(),
                "{asset} is the vendored file"
            );
        }
    }
    let module = app.get("/assets/docs.js").await.text().await.unwrap();
    assert!(module.contains("url: \"/v1/openapi.json\""), "{module}");
    assert!(module.contains("validatorUrl: null"), "{module}");
    let version = std::fs::read_to_string(vendor.join("VERSION")).unwrap();
    assert!(version.starts_with("swagger-ui-dist 5."), "{version}");
    assert!(version.contains("integrity sha512-"), "{version}");

    // Only those files answer under /docs/; the rest of web/vendor/ and the page's own
    // file stay unreachable.
    for path in [
        "/docs/",
        "/docs/LICENSE",
        "/docs/VERSION",
        "/docs/vendor/swagger-ui/swagger-ui.css",
        "/docs/swagger-ui-bundle.js.map",
        "/vendor/swagger-ui/swagger-ui.css",
        "/assets/../vendor/swagger-ui/swagger-ui.css",
        "/docs.html",
    ] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
}

/// Swagger UI renders the server's document in a real browser under the page's policy
/// (the driver fails the run on any CSP violation or uncaught error), and "Try it out"
/// calls the API from the page, without and then with a credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_render_the_operations_in_a_browser_under_the_policy() {
    let app = TestApp::spawn().await;
    let admin = s(&app.setup_admin().await, "accessToken");
    const WHO_AM_I: &str = "#operations-Users-whoAmI";
    browse(json!([
        // Swagger UI renders only the operations in view; a deep link scrolls to one and
        // opens it.
        ["open", app.url("/docs#/Users/whoAmI")],
        [
            "js",
            format!("document.querySelector('{WHO_AM_I} .try-out__btn') !== null")
        ],
        ["text", "/v1/me"],
        ["text", "Who am I"],
        ["text", "Schemas"],
        ["click", format!("{WHO_AM_I} .try-out__btn")],
        ["click", format!("{WHO_AM_I} .execute")],
        // Without a credential the server answers its 401 envelope, shown by the page.
        ["text", "UNAUTHORIZED"],
        // Closing the dialog can leave the operation out of the rendered list: scroll
        // back to where it was.
        ["js", "(window.operationAt = window.scrollY, true)"],
        ["click", ".auth-wrapper .authorize"],
        ["fill", "#auth-bearer-value", admin],
        [
            "click",
            ".auth-container:has(#auth-bearer-value) .auth-btn-wrapper .authorize"
        ],
        ["click", ".auth-btn-wrapper .btn-done"],
        [
            "js",
            format!(
                "(window.scrollTo(0, window.operationAt), \
                 document.querySelector('{WHO_AM_I} .execute') !== null)"
            )
        ],
        ["click", format!("{WHO_AM_I} .execute")],
        ["text", crate::support::ADMIN_EMAIL],
    ]))
    .await;
}

#[tokio::test]
async fn link_pages_are_served_like_the_index() {
    let app = TestApp::spawn().await;
    for (page, script) in [
        ("/reset-password", "/assets/reset-password.js"),
        ("/invite", "/assets/invite.js"),
    ] {
        // The token stays in the query; the server serves the page whatever it is.
        let response = app.get(&format!("{page}?token=abc")).await;
        assert_eq!(response.status(), 200, "{page}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["content-security-policy"], UI_CSP);
        assert_eq!(headers["cache-control"], "no-cache");
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script>"), "{page}: no inline script");
        assert!(!html.contains("style="), "{page}: no inline style");
        for asset in [script, "/assets/app.css"] {
            assert!(html.contains(asset), "{page} references {asset}");
            assert_eq!(app.get(asset).await.status(), 200, "{asset}");
        }
        // The page's module imports the shared helpers by a relative path.
        let js = app.get(script).await.text().await.unwrap();
        assert!(js.contains("from \"./forms.js\""), "{script}");

        let post = app.client.post(app.url(page)).send().await.unwrap();
        assert_eq!(post.status(), 405, "{page}");
        assert_eq!(post.headers()["allow"], "GET, HEAD", "{page}");
    }
    assert_eq!(app.get("/assets/forms.js").await.status(), 200);
    // Only the pages are reachable outside /assets/, not the files behind them.
    assert_eq!(app.get("/invite.html").await.status(), 404);
    assert_eq!(app.get("/reset-password/").await.status(), 404);
}

/// The driver of the browser tests.
const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/drive.py");

/// The size of the README's screenshots: a laptop's screen, at device scale factor 1.
const README_SCREEN: [u32; 2] = [1280, 800];

/// A step that saves one of the README's screenshots, `name`, of a 1280x800 screen with
/// `scroll_to` (a selector) at its top and without the shell's passing messages (they
/// would cover the page): into `$SBX_SCREENSHOTS` (to refresh `docs/screenshots/`, then
/// `scripts/optimize-screenshots`), else into `fallback`, which only proves the step works.
pub(crate) fn readme_screenshot(fallback: &Path, name: &str, scroll_to: Option<&str>) -> Value {
    let base =
        std::env::var_os("SBX_SCREENSHOTS").map_or_else(|| fallback.to_owned(), PathBuf::from);
    let mut options = json!({"window": README_SCREEN, "hide": "#toasts"});
    if let Some(selector) = scroll_to {
        options["scrollTo"] = json!(selector);
    }
    json!(["screenshot", base.join(name).to_str().unwrap(), options])
}

/// Runs the browser `steps` (see `tests/browser/drive.py`) in a fresh headless Chromium
/// and fails the test with the driver's account of the failing step. The driver needs
/// only the standard library: it runs with the test venv's Python when `scripts/test`
/// prepared one, else with `python3`.
pub(crate) async fn browse(steps: Value) {
    browse_with_timeout(steps, 10).await;
}

/// [`browse`] where a waiting step may take up to `timeout_secs` (large downloads).
pub(crate) async fn browse_with_timeout(steps: Value, timeout_secs: u32) {
    let output = drive(steps, timeout_secs).await;
    // What the driver measured (the JS heap's peak, say), for `--nocapture`.
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the browser run failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the driver on `steps` and returns how it ended, whether or not they passed.
pub(crate) async fn drive(steps: Value, timeout_secs: u32) -> std::process::Output {
    let python = std::env::var_os("SBX_TEST_VENV").map_or_else(
        || PathBuf::from("python3"),
        |venv| PathBuf::from(venv).join("bin/python"),
    );
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .arg(DRIVER)
            .arg(format!("--timeout={timeout_secs}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", python.display()));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(steps.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// True in the page once the token is gone from the address bar.
const TOKEN_GONE: &str = "!location.href.includes('token')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_link_opens_a_page_that_sets_the_password_once() {
    const NEW_PASSWORD: &str = "amber-willow-seventy";
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");
    // An account made without a password comes with a link to choose one.
    let created = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{acme}/users"),
            &admin,
            Some(&json!({"email": "marge@example.com", "displayName": "Marge"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let link = s(&created, "setPasswordUrl");
    assert!(
        link.starts_with(&app.url("/reset-password?token=")),
        "{link}"
    );

    browse(json!([
        ["open", link],
        ["js", TOKEN_GONE],
        // Checked in the page before anything is sent.
        ["fill", "#password", NEW_PASSWORD],
        ["fill", "#password-repeat", "amber-willow-eighty"],
        ["click", "button[type=submit]"],
        ["text", "The two passwords do not match."],
        // Refused by the server: its field detail is shown against the field.
        ["fill", "#password", "1234567890"],
        ["fill", "#password-repeat", "1234567890"],
        ["click", "button[type=submit]"],
        ["text", "New password is too common"],
        [
            "js",
            "document.getElementById('password').getAttribute('aria-invalid') === 'true'"
        ],
        ["fill", "#password", NEW_PASSWORD],
        ["fill", "#password-repeat", NEW_PASSWORD],
        ["click", "button[type=submit]"],
        ["text", "Your password is set."],
        ["js", "document.getElementById('reset-form').hidden"],
        // The link works once.
        ["open", link],
        ["fill", "#password", "amber-willow-ninety"],
        ["fill", "#password-repeat", "amber-willow-ninety"],
        ["click", "button[type=submit]"],
        [
            "text",
            "This link is invalid, has expired or was already used."
        ],
        // Without a token the page explains instead of offering a form that cannot work.
        ["open", app.url("/reset-password")],
        ["text", "carries no token"],
        ["js", "document.getElementById('reset-form').hidden"],
    ]))
    .await;

    let signed_in = app.login("marge@example.com", NEW_PASSWORD).await;
    assert_eq!(signed_in["user"]["organizations"][0]["name"], "Acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_link_opens_a_page_that_creates_the_account() {
    const PASSWORD: &str = "silver-meadow-fifty";
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");
    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "grace@example.com", "role": "auditor"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let link = s(&invite, "inviteUrl");
    assert!(link.starts_with(&app.url("/invite?token=")), "{link}");

    browse(json!([
        ["open", link],
        ["js", TOKEN_GONE],
        // Another address than the invite's is refused by the server.
        ["fill", "#register-email", "eve@example.com"],
        ["fill", "#register-name", "Grace Hopper"],
        ["fill", "#register-password", PASSWORD],
        ["fill", "#register-password-repeat", PASSWORD],
        ["click", "#register-form button[type=submit]"],
        ["text", "This invite was sent to another email address."],
        ["fill", "#register-email", "grace@example.com"],
        ["fill", "#register-password", PASSWORD],
        ["fill", "#register-password-repeat", PASSWORD],
        ["click", "#register-form button[type=submit]"],
        ["text", "You joined Acme as an auditor."],
        ["text", "Welcome, Grace Hopper!"],
        ["no-text", "Sign in and accept"],
        // The invite is spent.
        ["open", link],
        ["fill", "#login-email", "grace@example.com"],
        ["fill", "#login-password", PASSWORD],
        ["click", "#login-form button[type=submit]"],
        [
            "text",
            "This invite is invalid, has expired, was withdrawn or was already used."
        ],
        ["open", app.url("/invite")],
        ["text", "carries no invite token"],
    ]))
    .await;

    let signed_in = app.login("grace@example.com", PASSWORD).await;
    assert_eq!(signed_in["user"]["displayName"], "Grace Hopper");
    assert_eq!(signed_in["user"]["organizations"][0]["name"], "Acme");
    assert_eq!(signed_in["user"]["organizations"][0]["role"], "auditor");
    assert_no_browser_session(&app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_link_lets_an_existing_account_sign_in_and_accept() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let acme = s(&pair["user"]["organizations"][0], "id");
    app.invite_and_register(&admin, &acme, "linus@example.com", "member")
        .await;
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
    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{}", s(&globex, "id")),
            &admin,
            Some(&json!({"email": "linus@example.com", "role": "admin"})),
            None,
        )
        .await,
        201,
    )
    .await;

    browse(json!([
        ["open", s(&invite, "inviteUrl")],
        // Registering again says to sign in instead, and fills in the address.
        ["fill", "#register-email", "linus@example.com"],
        ["fill", "#register-name", "Linus"],
        ["fill", "#register-password", MEMBER_PASSWORD],
        ["fill", "#register-password-repeat", MEMBER_PASSWORD],
        ["click", "#register-form button[type=submit]"],
        ["text", "An account with this email address already exists."],
        [
            "js",
            "document.getElementById('login-email').value === 'linus@example.com'"
        ],
        ["fill", "#login-password", "not-the-password"],
        ["click", "#login-form button[type=submit]"],
        ["text", "Wrong email address or password."],
        ["fill", "#login-password", MEMBER_PASSWORD],
        ["click", "#login-form button[type=submit]"],
        ["text", "You joined Globex as an admin."],
    ]))
    .await;

    let signed_in = app.login("linus@example.com", MEMBER_PASSWORD).await;
    let roles: Vec<(&str, &str)> = signed_in["user"]["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert!(roles.contains(&("Globex", "admin")), "{roles:?}");
    assert!(roles.contains(&("Acme", "member")), "{roles:?}");
    assert_no_browser_session(&app);
}

/// The page signs out the sessions it opens: the browser had some, and none is live.
fn assert_no_browser_session(app: &TestApp) {
    let counts = app.query(
        "SELECT count(*), count(revoked_at) FROM sessions WHERE user_agent LIKE '%HeadlessChrome%'",
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
    );
    let (opened, revoked) = counts[0];
    assert!(opened > 0, "the browser signed in");
    assert_eq!(
        revoked, opened,
        "every session the browser opened is signed out"
    );
}

/// The driver's memory measure (the `heap` step) counts what a page holds in ArrayBuffers
/// and typed arrays, which V8's heap size alone leaves out: a page holding 100 MiB of them
/// fails a 64 MiB bound, one holding 8 MiB passes it, and the failure names the buffers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heap_step_counts_array_buffers() {
    const LIMIT: u64 = 64 * 1024 * 1024;
    let app = TestApp::spawn().await;
    let hold = |mib: u32| {
        format!(
            "(window.held = Array.from({{length: {mib}}}, (_, i) => new Uint8Array(1 << 20).fill(i + 1)),\
             window.held.length === {mib})"
        )
    };
    let small = drive(
        json!([
            ["open", app.url("/")],
            ["js", hold(8)],
            ["heap", "true", LIMIT]
        ]),
        20,
    )
    .await;
    let printed = String::from_utf8_lossy(&small.stderr);
    assert!(small.status.success(), "8 MiB fails the bound: {printed}");
    let peak: u64 = printed
        .split("peak memory ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak in {printed}"));
    assert!(peak >= 8 << 20, "the 8 MiB held are counted: {printed}");

    let large = drive(
        json!([
            ["open", app.url("/")],
            ["js", hold(100)],
            ["heap", "true", LIMIT]
        ]),
        20,
    )
    .await;
    let printed = String::from_utf8_lossy(&large.stderr);
    assert_eq!(
        large.status.code(),
        Some(1),
        "100 MiB passes the bound: {printed}"
    );
    assert!(
        printed.contains("the tab's memory (JS heaps and buffers) reached"),
        "{printed}"
    );
    let buffers: u64 = printed
        .split("\"buffers\": ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no buffers in {printed}"));
    assert!(buffers >= 100 << 20, "{printed}");
}
