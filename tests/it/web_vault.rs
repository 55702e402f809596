//! The workspace's vault pages (`web/assets/app/pages/{files,secrets,api-keys,webhooks}.js`)
//! used by a real headless Chromium (`tests/browser/drive.py`) against the real server:
//! each page's main flow, with what the server holds afterwards checked over HTTP. A
//! second `browse` run is a second browser with its own profile (another person, or the
//! same person after closing the tab).
//!
//! Screenshots for the README: `SBX_SCREENSHOTS=<dir>` saves one PNG per page there.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, json_of, s};
use crate::web_ui::{browse_with_timeout, readme_screenshot};
use crate::webhooks_delivery::Receiver;

pub(crate) const ADMIN_SECRET: &str = "correct-horse-battery-staple";
pub(crate) const BOB_SECRET: &str = "bobs-own-vault-secret";

/// Steps that sign in through /login and land on `path` of the workspace, drawn.
pub(crate) fn sign_in(app: &TestApp, email: &str, password: &str, path: &str) -> Vec<Value> {
    vec![
        json!(["open", app.url(&format!("/login?next={path}"))]),
        json!(["fill", "#login-email", email]),
        json!(["fill", "#login-password", password]),
        json!(["click", "#login-form button[type=submit]"]),
        rendered(path),
    ]
}

/// Waits until the shell has drawn the page at `path`.
pub(crate) fn rendered(path: &str) -> Value {
    json!([
        "js",
        format!("document.getElementById('page')?.dataset.rendered === '{path}'")
    ])
}

/// Picks `value` in the <select> `selector`, as a person choosing an option would.
pub(crate) fn choose(selector: &str, value: &str) -> Value {
    json!([
        "js",
        format!(
            "(() => {{ const s = document.querySelector({sel}); if (!s) return false; \
             s.value = {val}; s.dispatchEvent(new Event('change', {{bubbles: true}})); \
             return s.value === {val}; }})()",
            sel = json!(selector),
            val = json!(value)
        )
    ])
}

/// Unlocks the vault bar with `secret`.
pub(crate) fn unlock(secret: &str) -> Vec<Value> {
    vec![
        json!(["fill", "#vault-secret", secret]),
        json!(["click", "#unlock-form button[type=submit]"]),
        json!([
            "js",
            "document.querySelector('.vault-bar')?.dataset.state === 'unlocked'"
        ]),
    ]
}

/// A README screenshot step (`web_ui::readme_screenshot`) when `SBX_SCREENSHOTS` names a
/// directory, else nothing.
fn screenshot(name: &str, scroll_to: Option<&str>) -> Vec<Value> {
    match std::env::var_os("SBX_SCREENSHOTS") {
        Some(dir) => vec![readme_screenshot(Path::new(&dir), name, scroll_to)],
        None => vec![],
    }
}

/// No storage of the page's origin holds `text` (the user secret stays in memory).
fn not_stored(text: &str) -> Value {
    json!([
        "js",
        format!(
            "!JSON.stringify({{...localStorage}}).includes({t}) && \
             !JSON.stringify({{...sessionStorage}}).includes({t}) && !document.cookie.includes({t})",
            t = json!(text)
        )
    ])
}

pub(crate) async fn run(steps: Vec<Value>) {
    browse_with_timeout(Value::Array(steps), 30).await;
}

/// The admin (owner of Acme) and Bob, a member of Acme; both with key pairs unless
/// `admin_keys` is false. Returns (admin token, org id, Bob's token, Bob's user id).
pub(crate) async fn acme(app: &TestApp, admin_keys: bool) -> (String, String, String, String) {
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let org = s(&pair["user"]["organizations"][0], "id");
    if admin_keys {
        app.generate_keys(&admin, ADMIN_SECRET).await;
    }
    let bob = app
        .invite_and_register(&admin, &org, "bob@example.com", "member")
        .await;
    let bob_token = s(&bob, "accessToken");
    app.generate_keys(&bob_token, BOB_SECRET).await;
    (admin, org, bob_token, s(&bob["user"], "id"))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + 13) % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_list_search_share_download_and_delete() {
    let app = TestApp::spawn().await;
    let (admin, _org, bob, bob_id) = acme(&app, true).await;
    let dir = tempfile::tempdir().unwrap();
    // Two tus PATCHes (8 MiB each at most) and a short last one.
    let content = pattern(9 * 1024 * 1024 + 4321);
    let source = dir.path().join("quarterly-report.bin");
    std::fs::write(&source, &content).unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/files");
    steps.extend([
        json!(["text", "Unlock the vault to see your files' names."]),
        // A wrong secret is the server's 401 message, and nothing unlocks.
        json!(["fill", "#vault-secret", "not-my-secret"]),
        json!(["click", "#unlock-form button[type=submit]"]),
        json!(["text", "The user secret is wrong."]),
        json!([
            "js",
            "document.querySelector('.vault-bar').dataset.state === 'locked'"
        ]),
    ]);
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        json!(["text", "No files yet."]),
        json!(["files", "#upload-input", [source.to_string_lossy()]]),
        json!(["click", "#upload-form button[type=submit]"]),
        json!(["text", "Uploaded and encrypted."]),
        json!(["js", "[...document.querySelectorAll('#files-list .file-name')].some((e) => e.textContent === 'quarterly-report.bin')"]),
        // Client-side search.
        json!(["fill", "#files-search", "no-such-name"]),
        json!(["text", "No file name contains “no-such-name”."]),
        json!(["fill", "#files-search", "quarterly"]),
        json!(["text", "quarterly-report.bin"]),
        // Download: the browser fetches the link itself.
        json!(["downloads", downloads.to_string_lossy()]),
        json!(["click", "button[aria-label='Download quarterly-report.bin']"]),
        json!(["downloaded", 1]),
        // Share read-only with Bob.
        json!(["click", "button[aria-label='Share quarterly-report.bin']"]),
        choose(".share-form select", &bob_id),
        json!(["click", ".share-form button[type=submit]"]),
        json!(["text", "Shared with bob"]),
        json!(["js", "document.querySelector('.row-details table') !== null"]),
        not_stored(ADMIN_SECRET),
    ]);
    steps.extend(screenshot("files.png", Some("#files-h")));
    steps.extend([
        // Lock: the names go away.
        json!(["click", "#vault-lock"]),
        json!(["text", "Unlock the vault to see your files' names."]),
        // (The upload's own progress row, drawn from the picked file, keeps its name.)
        json!([
            "js",
            "!document.getElementById('files-list').innerText.includes('quarterly-report.bin')"
        ]),
    ]);
    run(steps).await;
    let got = std::fs::read(downloads.join("quarterly-report.bin")).unwrap();
    assert!(
        got == content,
        "the download is byte-identical ({} of {} bytes)",
        got.len(),
        content.len()
    );

    // Bob, in his own browser, finds it under "Shared with me" and downloads it too.
    let bob_downloads = dir.path().join("bob");
    std::fs::create_dir(&bob_downloads).unwrap();
    let mut steps = sign_in(&app, "bob@example.com", MEMBER_PASSWORD, "/app/files");
    steps.extend(unlock(BOB_SECRET));
    steps.extend([
        json!(["text", "Ada Lovelace"]),
        json!(["downloads", bob_downloads.to_string_lossy()]),
        json!([
            "click",
            "#shared-list button[aria-label='Download quarterly-report.bin']"
        ]),
        json!(["downloaded", 1]),
    ]);
    run(steps).await;
    assert!(std::fs::read(bob_downloads.join("quarterly-report.bin")).unwrap() == content);
    let shared = json_of(
        app.client
            .get(app.url("/v1/files/shared"))
            .bearer_auth(&bob)
            .header("X-User-Secret", BOB_SECRET)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(shared[0]["fileName"], "quarterly-report.bin");

    // Delete, confirmed in the shell's dialog.
    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/files");
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        json!(["click", "button[aria-label='Delete quarterly-report.bin']"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "No files yet."]),
    ]);
    run(steps).await;
    let listed = json_of(
        app.client
            .get(app.url("/v1/files"))
            .bearer_auth(&admin)
            .header("X-User-Secret", ADMIN_SECRET)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_generate_store_reveal_share_and_the_recipient_reveals_it() {
    let app = TestApp::spawn().await;
    let (admin, _org, bob, bob_id) = acme(&app, false).await;

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/secrets");
    steps.extend([
        json!(["text", "The server never stores it and cannot recover it"]),
        json!(["fill", "#new-secret", ADMIN_SECRET]),
        json!(["fill", "#new-secret-repeat", "something-else-entirely"]),
        json!(["click", "#generate-form button[type=submit]"]),
        json!(["text", "The two secrets do not match."]),
        json!(["fill", "#new-secret", "short"]),
        json!(["fill", "#new-secret-repeat", "short"]),
        json!(["click", "#generate-form button[type=submit]"]),
        json!(["text", "at least 8 bytes"]),
        json!(["fill", "#new-secret", ADMIN_SECRET]),
        json!(["fill", "#new-secret-repeat", ADMIN_SECRET]),
        json!(["click", "#generate-form button[type=submit]"]),
        json!([
            "js",
            "document.querySelector('.vault-bar')?.dataset.state === 'unlocked'"
        ]),
        json!([
            "js",
            "/^[0-9a-f]{32}$/.test(document.getElementById('key-fingerprint')?.textContent)"
        ]),
        // Store, reveal, hide.
        json!(["fill", "#kv-name", "db-password"]),
        json!(["fill", "#kv-value", "hunter2-production"]),
        json!(["click", "#kv-form button[type=submit]"]),
        json!(["text", "Stored db-password."]),
        json!(["no-text", "hunter2-production"]),
        json!(["click", "button[aria-label='Reveal db-password']"]),
        json!(["text", "hunter2-production"]),
        json!(["click", "button[aria-label='Hide db-password']"]),
        json!([
            "js",
            "!document.body.innerText.includes('hunter2-production')"
        ]),
        // Overwrite (unlocked: the DEK and so the shares stay).
        json!(["click", "button[aria-label='Overwrite db-password']"]),
        json!(["fill", ".overwrite-form textarea", "hunter3-production"]),
        json!(["click", ".overwrite-form button[type=submit]"]),
        json!(["text", "db-password is now at version 2."]),
        // Share with Bob.
        json!(["click", "button[aria-label='Share db-password']"]),
        choose(".share-form select", &bob_id),
        json!(["fill", ".share-form input[type=text]", "Production DB"]),
        json!(["click", ".share-form button[type=submit]"]),
        json!(["text", "Shared with bob"]),
        not_stored(ADMIN_SECRET),
    ]);
    steps.extend(screenshot("secrets.png", Some("#kv-list")));
    steps.extend([
        // Bob becomes a recovery trustee, holding two shares made elsewhere.
        json!(["click", "details.trustee-add summary"]),
        choose("#trustee-form select", &bob_id),
        json!(["fill", "#trustee-form textarea", "c2hhcmUtb25l"]),
        json!([
            "fill",
            "#trustee-form .field:nth-of-type(3) textarea",
            "c2hhcmUtdHdv"
        ]),
        json!(["click", "#trustee-form button[type=submit]"]),
        json!(["text", "now holds your recovery material."]),
        json!([
            "js",
            "document.getElementById('trustees').innerText.includes('bob')"
        ]),
    ]);
    steps.extend([
        // Locking hides values and disables revealing.
        json!(["click", "#vault-lock"]),
        json!([
            "js",
            "document.querySelector(\"button[aria-label='Reveal db-password']\").disabled"
        ]),
        json!(["text", "Unlock the vault to see secrets shared with you."]),
    ]);
    run(steps).await;

    let names = json_of(app.get_as("/v1/kv", &admin).await, 200).await;
    assert_eq!(names, json!(["db-password"]));

    // Bob, in another browser, reveals what was shared with him.
    let mut steps = sign_in(&app, "bob@example.com", MEMBER_PASSWORD, "/app/secrets");
    steps.extend(unlock(BOB_SECRET));
    steps.extend([
        json!(["text", "Production DB"]),
        json!(["no-text", "hunter3-production"]),
        json!([
            "click",
            "#kv-shared-list button[aria-label='Reveal Production DB']"
        ]),
        json!(["text", "hunter3-production"]),
        not_stored(BOB_SECRET),
        // What Bob holds for Ada, shown to hand back.
        json!([
            "click",
            "button[aria-label=\"Show Ada Lovelace's recovery material\"]"
        ]),
        json!(["text", "c2hhcmUtdHdv"]),
    ]);
    run(steps).await;
    let received = json_of(
        app.client
            .get(app.url("/v1/kv/shared"))
            .bearer_auth(&bob)
            .header("X-User-Secret", BOB_SECRET)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(received[0]["alias"], "Production DB");
    let shares = json_of(app.get_as("/v1/kv/db-password/shares", &admin).await, 200).await;
    assert!(shares[0]["firstAccessUtc"].is_string(), "{shares}");

    // Rekey in the page: the old secret stops opening the key pair, the new one works.
    const NEW_SECRET: &str = "a-brand-new-user-secret";
    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/secrets");
    steps.extend([
        json!(["click", "details.rekey summary"]),
        json!(["fill", "#rekey-current", "not-the-secret"]),
        json!(["fill", "#rekey-new", NEW_SECRET]),
        json!(["fill", "#rekey-repeat", NEW_SECRET]),
        json!(["click", "#rekey-form button[type=submit]"]),
        json!(["text", "The user secret is wrong."]),
        json!(["fill", "#rekey-current", ADMIN_SECRET]),
        json!(["fill", "#rekey-new", NEW_SECRET]),
        json!(["fill", "#rekey-repeat", NEW_SECRET]),
        json!(["click", "#rekey-form button[type=submit]"]),
        json!(["text", "User secret changed. Use the new one from now on."]),
        json!([
            "js",
            "document.querySelector('.vault-bar')?.dataset.state === 'unlocked'"
        ]),
        // Delete, confirmed.
        json!(["click", "button[aria-label='Delete db-password']"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "No secrets yet."]),
    ]);
    run(steps).await;
    let read = |secret: &'static str| {
        app.client
            .get(app.url("/v1/kv/shared"))
            .bearer_auth(&admin)
            .header("X-User-Secret", secret)
            .send()
    };
    // The idle timeout, with the page's clock sped up: five minutes become half a second
    // (only the timer of that length), and with no key press or click the vault locks.
    let mut steps = vec![json!([
        "init-script",
        "const realTimeout = window.setTimeout; \
         window.setTimeout = (fn, ms, ...rest) => realTimeout(fn, ms === 300000 ? 500 : ms, ...rest);"
    ])];
    steps.extend(sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/secrets"));
    steps.extend(unlock(NEW_SECRET));
    steps.extend([
        json!([
            "js",
            "document.querySelector('.vault-bar')?.dataset.state === 'locked'"
        ]),
        json!([
            "text",
            "The vault locked itself after 5 minutes without activity."
        ]),
        json!(["text", "Unlock the vault to see secrets shared with you."]),
    ]);
    run(steps).await;

    assert_eq!(read(ADMIN_SECRET).await.unwrap().status(), 401);
    assert_eq!(read(NEW_SECRET).await.unwrap().status(), 200);
    assert_eq!(
        json_of(app.get_as("/v1/kv", &admin).await, 200).await,
        json!([])
    );
}

/// The key as the page showed it once (`.once-value`), saved by the browser run.
pub(crate) fn saved(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_created_in_the_page_works_with_curl_and_is_shown_only_once() {
    let app = TestApp::spawn().await;
    let (_admin, _org, bob, bob_id) = acme(&app, true).await;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("key");
    let rotated = dir.path().join("rotated");

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/api-keys");
    steps.extend([
        json!(["text", "No API keys yet."]),
        // The API's defaults are ticked.
        json!(["js", "document.getElementById('scope-files-read').checked && document.getElementById('scope-transfers-write').checked && !document.getElementById('scope-webhooks-write').checked"]),
        json!(["fill", "#key-name", "ci"]),
        json!(["click", "#scope-webhooks-read"]),
        json!(["fill", "#key-ips", "127.0.0.1/32"]),
        json!(["fill", "#key-max-uses", "50"]),
        json!(["click", "#key-form button[type=submit]"]),
        json!(["js", "document.querySelector('.once-value')?.textContent.startsWith('sbx_')"]),
        json!(["save", "document.querySelector('.once-value').textContent", first.to_string_lossy()]),
        json!(["text", "shown this once"]),
        json!(["js", "document.querySelector('#keys-list .key-prefix') !== null"]),
    ]);
    steps.extend(screenshot("api-keys.png", None));
    run(steps).await;
    let key = saved(&first);

    // The key works from outside the browser, with exactly the scopes picked.
    let me = json_of(
        app.client
            .get(app.url("/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["authType"], "api_key");
    let mut scopes: Vec<String> = serde_json::from_value(me["scopes"].clone()).unwrap();
    scopes.sort();
    assert_eq!(scopes, ["files:read", "transfers:write", "webhooks:read"]);
    // And from curl itself (`-k`: the test server's certificate is self-signed).
    let curl = std::process::Command::new("curl")
        .args(["-sS", "-k", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {key}"))
        .arg(app.url("/v1/me"))
        .output()
        .expect("curl runs");
    let answer = String::from_utf8(curl.stdout).unwrap();
    let (body, code) = answer.rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "curl: {answer}");
    let by_curl: Value = serde_json::from_str(body).unwrap();
    assert_eq!(by_curl["authType"], "api_key");
    assert_eq!(by_curl["id"], me["id"]);
    // Beyond its scopes it is refused.
    let refused = app
        .client
        .post(app.url("/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": "https://example.com/hook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // Another visit shows the key's prefix and last use, never the key; rotating shows
    // the new one once; revoking ends both.
    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/api-keys");
    steps.extend([
        json!(["text", &key[..12]]),
        json!(["no-text", &key]),
        json!(["js", "document.querySelector('.once-value') === null"]),
        json!(["text", "from 127.0.0.1"]),
        json!(["click", "button[aria-label='Rotate ci']"]),
        json!([
            "js",
            "document.querySelector('.once-value')?.textContent.startsWith('sbx_')"
        ]),
        json!([
            "save",
            "document.querySelector('.once-value').textContent",
            rotated.to_string_lossy()
        ]),
        json!(["text", "(rotated)"]),
    ]);
    run(steps).await;
    let new_key = saved(&rotated);
    assert_ne!(new_key, key);
    let status_of = |k: String| {
        let request = app.client.get(app.url("/v1/me")).bearer_auth(k).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(
        status_of(key.clone()).await,
        200,
        "the old key works during the grace"
    );
    assert_eq!(status_of(new_key.clone()).await, 200);

    // Bob's own key; the admin sees it among members' keys and revokes it.
    let bobs = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &bob,
            Some(&json!({"name": "bob-laptop"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let bob_key = s(&bobs, "key");
    assert_eq!(status_of(bob_key.clone()).await, 200);
    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/api-keys");
    steps.extend([
        choose("#member-pick", &bob_id),
        json!(["text", "bob-laptop"]),
        json!(["no-text", &bob_key]),
        json!([
            "click",
            "#member-keys button[aria-label='Revoke bob-laptop']"
        ]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "This member has no API keys here."]),
        // Revoke both of the admin's (the rotated one first in the list or not).
        json!(["click", "#keys-list button[aria-label='Revoke ci']"]),
        json!(["click", "#confirm-yes"]),
        json!([
            "js",
            "document.querySelectorAll(\"#keys-list button[aria-label='Revoke ci']\").length === 1"
        ]),
        json!(["click", "#keys-list button[aria-label='Revoke ci']"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "No API keys yet."]),
    ]);
    run(steps).await;
    assert_eq!(status_of(bob_key).await, 401);
    assert_eq!(status_of(key).await, 401);
    assert_eq!(status_of(new_key).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_created_in_the_page_gets_a_test_delivery_at_a_real_receiver() {
    let receiver = Receiver::start(None);
    let app = TestApp::spawn_with(|config| {
        config.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
        config.webhooks.time_scale = 0.001;
    })
    .await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    // What the server says about a refused target, to find it in the page.
    let refused = app
        .send_as(
            Method::POST,
            "/v1/webhooks",
            &admin,
            Some(&json!({"url": "http://169.254.169.254/latest"})),
            None,
        )
        .await;
    let refused = crate::support::assert_envelope(refused, 422, "VALIDATION").await;
    assert_eq!(refused["details"][0]["path"], "url");
    let refusal = format!("url {}", s(&refused["details"][0], "message"));

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/webhooks");
    steps.extend([
        json!(["text", "No webhooks yet."]),
        // The picker is the catalog, each type with its example payload.
        json!(["js", "document.querySelector(\"#event-picker input[value='api_key.created']\") !== null"]),
        json!(["js", "[...document.querySelectorAll('#event-picker pre')].some((p) => JSON.parse(p.textContent).type === 'api_key.created')"]),
        json!(["fill", "#hook-url", "http://169.254.169.254/latest"]),
        json!(["click", "#webhook-form button[type=submit]"]),
        json!(["text", refusal]),
        json!(["fill", "#hook-url", receiver.url("/ok/ui")]),
        json!(["fill", "#hook-description", "CI notifier"]),
        // One event type instead of every event (which would include this webhook's own
        // webhook.created).
        json!(["click", "#event-all"]),
        json!(["click", "#event-api-key-created"]),
        json!(["click", "#webhook-form button[type=submit]"]),
        json!(["js", "document.querySelector('.once-value')?.textContent.startsWith('whsec_')"]),
        json!(["save", "document.querySelector('.once-value').textContent", secret_file.to_string_lossy()]),
        json!(["text", "CI notifier"]),
        json!(["text", "No deliveries yet."]),
    ]);
    run(steps).await;
    let secret = saved(&secret_file);
    receiver.verify_with("ui", &[("current", &secret)]).await;

    // Another visit: the secret is not shown again; a test delivery arrives, verified,
    // and the log shows it; replay sends it again; disable.
    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/webhooks");
    steps.extend([
        json!(["no-text", &secret]),
        json!(["click", ".webhook .send-test"]),
        json!(["click", ".test-form button[type=submit]"]),
        json!(["text", "Queued."]),
        json!([
            "js",
            "document.querySelector('.delivery-status[data-status=\"succeeded\"]') !== null"
        ]),
        json!(["text", "ping (test)"]),
    ]);
    steps.extend(screenshot("webhooks.png", Some("#hook-list-h")));
    steps.extend([
        json!(["click", ".webhook .replay"]),
        json!([
            "js",
            "document.querySelectorAll('.delivery-status[data-status=\"succeeded\"]').length === 2"
        ]),
        json!(["text", "(replay)"]),
        // Rotating shows the new secret once; the old one still signs for the grace.
        json!(["click", ".webhook .rotate"]),
        json!(["click", ".rotate-form button[type=submit]"]),
        json!([
            "js",
            format!(
                "document.querySelector('.once-value')?.textContent.startsWith('whsec_') && \
                 document.querySelector('.once-value').textContent !== {}",
                json!(secret)
            )
        ]),
        json!(["text", "still signs until"]),
        json!(["click", ".webhook .toggle"]),
        json!(["text", "Disabled"]),
    ]);
    run(steps).await;

    let got = receiver.wait_for("ui", 2).await;
    assert_eq!(got[0]["headers"]["x-sealbox-test-delivery"], "true");
    assert_eq!(got[0]["verified"]["current"], true, "{got:#?}");
    assert_eq!(got[1]["verified"]["current"], true);
    assert_eq!(
        got[0]["headers"]["webhook-id"], got[1]["headers"]["webhook-id"],
        "a replay keeps the webhook-id"
    );
    let hooks = json_of(app.get_as("/v1/webhooks", &admin).await, 200).await;
    assert_eq!(hooks[0]["enabled"], false);
    assert_eq!(hooks[0]["description"], "CI notifier");
    assert_eq!(hooks[0]["events"], json!(["api_key.created"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_sees_the_vault_pages_without_write_actions_and_the_server_refuses_them() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let org = s(&pair["user"]["organizations"][0], "id");
    let auditor = app
        .invite_and_register(&admin, &org, "audrey@example.com", "auditor")
        .await;
    let auditor = s(&auditor, "accessToken");
    // Something to read: a webhook of the organization's with a delivery in its log, and
    // a member beside the owner and the auditor.
    let hook = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &admin,
            Some(&json!({"url": "https://hooks.example.com/audited"})),
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
            &format!("/v1/webhooks/{hook_id}/test"),
            &admin,
            Some(&json!({})),
            None,
        )
        .await,
        202,
    )
    .await;
    app.invite_and_register(&admin, &org, "bob@example.com", "member")
        .await;

    let mut steps = sign_in(&app, "audrey@example.com", MEMBER_PASSWORD, "/app/files");
    steps.extend([
        json!([
            "text",
            "Your role cannot upload files (it lacks files:write)."
        ]),
        json!(["js", "document.getElementById('upload-form') === null"]),
        json!(["click", "a[href='/app/secrets']"]),
        rendered("/app/secrets"),
        json!([
            "text",
            "Your role cannot generate a key pair (it lacks keys:write)."
        ]),
        json!(["js", "document.getElementById('generate-form') === null"]),
        json!(["click", "a[href='/app/api-keys']"]),
        rendered("/app/api-keys"),
        json!([
            "text",
            "Your role cannot create API keys (it lacks api_keys:write)."
        ]),
        json!(["js", "document.getElementById('key-form') === null"]),
        json!(["click", "a[href='/app/webhooks']"]),
        rendered("/app/webhooks"),
        json!([
            "text",
            "Your role cannot create or change webhooks (it lacks webhooks:write)."
        ]),
        json!(["js", "document.getElementById('webhook-form') === null"]),
        // The webhook and its delivery are shown, with none of their write actions.
        json!(["text", "https://hooks.example.com/audited"]),
        json!(["js", "document.querySelector('article.webhook .deliveries tbody tr') !== null"]),
        json!(["js", "document.querySelectorAll('article.webhook button.toggle, article.webhook button.send-test, article.webhook button.edit, article.webhook button.rotate, article.webhook button.danger, article.webhook button.replay').length === 0"]),
        // The organization's members are listed with no role, status or remove controls,
        // and no invite or role forms.
        json!(["click", "a[href='/app/organization']"]),
        rendered("/app/organization"),
        json!(["text", "bob@example.com"]),
        json!(["js", "document.querySelectorAll('#members select, #members button, #invites form, #roles form, #teams form, #departments form, #settings form, #settings button').length === 0"]),
    ]);
    run(steps).await;

    // And the server refuses each of them anyway.
    let (hook_path, test_path) = (
        format!("/v1/webhooks/{hook_id}"),
        format!("/v1/webhooks/{hook_id}/test"),
    );
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/files/presign",
            json!({"filename": "x", "size": 1}),
        ),
        (Method::POST, "/v1/api-keys", json!({"name": "mine"})),
        (
            Method::POST,
            "/v1/webhooks",
            json!({"url": "https://example.com/h"}),
        ),
        (Method::PUT, "/v1/kv/x", json!({"valueB64": "eA=="})),
        (Method::PATCH, hook_path.as_str(), json!({"enabled": false})),
        (Method::POST, test_path.as_str(), json!({})),
    ] {
        let response = app.send_as(method, path, &auditor, Some(&body), None).await;
        crate::support::assert_envelope(response, 403, "FORBIDDEN").await;
    }
}

/// The caller's files (`GET /v1/files`, names opened with `secret`).
pub(crate) async fn files_of(app: &TestApp, token: &str, secret: &str) -> Vec<Value> {
    let listed = json_of(
        app.client
            .get(app.url("/v1/files"))
            .bearer_auth(token)
            .header("X-User-Secret", secret)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    listed.as_array().unwrap().clone()
}

/// A file's bytes, through its download link as the page would open it.
async fn download_of(app: &TestApp, token: &str, secret: &str, id: &str) -> Vec<u8> {
    let link = json_of(
        app.client
            .get(app.url(&format!("/v1/files/{id}/download")))
            .bearer_auth(token)
            .header("X-User-Secret", secret)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    // An absolute URL (the public one), or a path of this server.
    let url = s(&link, "url");
    let url = if url.starts_with('/') {
        app.url(&url)
    } else {
        url
    };
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// What the server holds of the tab's first unfinished upload (`Upload-Offset` of a tus
/// HEAD to the URL the page recorded), as a string.
const SERVER_OFFSET: &str = "(async () => { \
    const [record] = JSON.parse(sessionStorage.getItem('sealbox.file-uploads')); \
    const r = await fetch(record.uploadUrl, {method: 'HEAD', headers: {'Tus-Resumable': '1.0.0'}}); \
    return r.headers.get('Upload-Offset'); })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_pauses_resumes_and_continues_after_a_reload() {
    let app = TestApp::spawn().await;
    let (admin, _org, _bob, _bob_id) = acme(&app, true).await;
    let dir = tempfile::tempdir().unwrap();
    // Four PATCHes of at most 8 MiB, over a link of 4 MB/s: seconds to pause in.
    let first = pattern(3 * 8 * 1024 * 1024 + 1234);
    let second: Vec<u8> = first.iter().rev().copied().collect();
    let (a, b) = (
        dir.path().join("paused.bin"),
        dir.path().join("reloaded.bin"),
    );
    std::fs::write(&a, &first).unwrap();
    std::fs::write(&b, &second).unwrap();
    let (held, later, record) = (
        dir.path().join("held"),
        dir.path().join("later"),
        dir.path().join("record"),
    );
    let uploading = "document.querySelector('.uploads li[data-state=uploading] .actions button')";

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/files");
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        json!(["throttle", 4_000_000]),
        json!(["files", "#upload-input", [a.to_string_lossy()]]),
        json!(["click", "#upload-form button[type=submit]"]),
        // Paused once the first piece is there: nothing more arrives meanwhile.
        json!(["js", "document.querySelector('.uploads progress')?.value > 0"]),
        json!(["js", format!("{uploading}?.textContent === 'Pause'")]),
        json!(["click", ".uploads li[data-state=uploading] .actions button"]),
        json!(["js", "document.querySelector('.uploads li')?.dataset.state === 'paused'"]),
        json!(["text", "Paused."]),
        // (The aborted PATCH may take a moment to end on the server's side.)
        json!(["js", "new Promise((resolve) => setTimeout(() => resolve(true), 500))"]),
        json!(["save", SERVER_OFFSET, held.to_string_lossy()]),
        json!(["js", "new Promise((resolve) => setTimeout(() => resolve(true), 1500))"]),
        json!(["save", SERVER_OFFSET, later.to_string_lossy()]),
        json!(["js", "document.querySelector('.uploads li').dataset.state === 'paused'"]),
        // Resume: it continues from the server's offset and finishes.
        json!(["click", ".uploads li[data-state=paused] .actions button"]),
        json!(["text", "Uploaded and encrypted."]),
        json!(["js", "[...document.querySelectorAll('#files-list .file-name')].some((e) => e.textContent === 'paused.bin')"]),
        // The second one: the tab reloads in the middle of it.
        json!(["files", "#upload-input", [b.to_string_lossy()]]),
        json!(["click", "#upload-form button[type=submit]"]),
        json!(["js", "[...document.querySelectorAll('.uploads li')].some((li) => li.dataset.state === 'uploading' && li.querySelector('progress').value > 0)"]),
        json!(["save", "sessionStorage.getItem('sealbox.file-uploads')", record.to_string_lossy()]),
        json!(["open", app.url("/app/files")]),
        rendered("/app/files"),
        json!(["text", "Unfinished uploads: reloaded.bin"]),
        // Another file is refused as the continuation.
        json!(["files", "#resume-input", [a.to_string_lossy()]]),
        json!(["click", "#resume-form button[type=submit]"]),
        json!(["text", "paused.bin is not one of the unfinished uploads."]),
        json!(["files", "#resume-input", [b.to_string_lossy()]]),
        json!(["click", "#resume-form button[type=submit]"]),
        json!(["text", "Uploaded and encrypted."]),
        json!(["js", "sessionStorage.getItem('sealbox.file-uploads') === null"]),
    ]);
    run(steps).await;

    let (held, later) = (saved(&held), saved(&later));
    let held: usize = held.parse().unwrap();
    assert!(
        held > 0 && held < first.len(),
        "paused part way: {held} of {}",
        first.len()
    );
    assert_eq!(later, held.to_string(), "nothing was sent while paused");
    let record: Value = serde_json::from_str(&saved(&record)).unwrap();
    let resumed_id = s(&record[0], "fileId");
    assert_eq!(record[0]["name"], "reloaded.bin");

    // Two files, byte-identical; the reloaded one is the upload it started (no second
    // presign).
    let files = files_of(&app, &admin, ADMIN_SECRET).await;
    assert_eq!(files.len(), 2, "{files:#?}");
    for (name, content) in [("paused.bin", &first), ("reloaded.bin", &second)] {
        let file = files.iter().find(|f| f["fileName"] == name).unwrap();
        if name == "reloaded.bin" {
            assert_eq!(s(file, "id"), resumed_id);
        }
        let got = download_of(&app, &admin, ADMIN_SECRET, &s(file, "id")).await;
        assert!(
            &got == content,
            "{name} is byte-identical ({} bytes)",
            got.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_pages_and_a_webhook_is_edited_in_the_page() {
    let receiver = Receiver::start(None);
    let app = TestApp::spawn_with(|config| {
        config.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
        config.webhooks.time_scale = 0.001;
    })
    .await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let hook = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &admin,
            Some(&json!({"url": receiver.url("/ok/before"), "events": ["api_key.created"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let id = s(&hook, "id");
    // 23 deliveries: the page shows 20, then the 3 older ones.
    for _ in 0..23 {
        let sent = app
            .send_as(
                Method::POST,
                &format!("/v1/webhooks/{id}/test"),
                &admin,
                Some(&json!({"event_type": "ping"})),
                None,
            )
            .await;
        assert_eq!(sent.status(), 202, "{}", sent.text().await.unwrap());
    }
    receiver.wait_for("before", 23).await;
    let settled = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = json_of(
            app.get_as(&format!("/v1/webhooks/{id}/deliveries?limit=100"), &admin)
                .await,
            200,
        )
        .await;
        let done = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "succeeded");
        if done.count() == 23 {
            break;
        }
        assert!(std::time::Instant::now() < settled, "{log:#}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let rows = "document.querySelectorAll('.webhook .deliveries tbody tr').length";
    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/webhooks");
    steps.extend([
        json!(["js", format!("{rows} === 20")]),
        json!(["click", ".webhook .older"]),
        json!(["js", format!("{rows} === 23")]),
        // Each delivery once, and no further page.
        json!(["js", "new Set([...document.querySelectorAll('.webhook .deliveries .replay')].map((b) => b.getAttribute('aria-label'))).size === 23"]),
        json!(["js", "document.querySelector('.webhook .older') === null"]),
        // Edit: URL, events, retry policy.
        json!(["click", ".webhook .edit"]),
        json!(["fill", ".edit-form input[type=url]", receiver.url("/ok/after")]),
        json!(["fill", ".edit-form input[type=text]", "Edited in the page"]),
        json!(["click", ".edit-form input[value='api_key.created']"]),
        json!(["click", ".edit-form input[value='api_key.revoked']"]),
        json!(["fill", ".edit-form .max-attempts", "3"]),
        json!(["fill", ".edit-form .disable-after", "7"]),
        // The create form's picker is not the one being edited.
        json!(["js", "document.getElementById('event-api-key-revoked').checked === false"]),
        json!(["click", ".edit-form button[type=submit]"]),
        json!(["text", "Webhook saved."]),
        json!(["text", "3 attempts; disabled after 7 failures in a row"]),
        json!(["text", "Edited in the page"]),
        json!(["click", ".webhook .toggle"]),
        json!(["js", "document.querySelector('.webhook .hook-state')?.textContent === 'Disabled'"]),
    ]);
    run(steps).await;
    let got = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &admin).await, 200).await;
    assert_eq!(got["url"], receiver.url("/ok/after"));
    assert_eq!(got["description"], "Edited in the page");
    assert_eq!(got["events"], json!(["api_key.revoked"]));
    assert_eq!(
        got["retryPolicy"],
        json!({"maxAttempts": 3, "disableAfterConsecutiveFailures": 7})
    );
    assert_eq!(got["enabled"], false);

    // Enabled again, and a test goes to the new URL.
    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/webhooks");
    steps.extend([
        json!(["click", ".webhook .toggle"]),
        json!([
            "js",
            "document.querySelector('.webhook .hook-state')?.textContent === 'Enabled'"
        ]),
        json!(["click", ".webhook .send-test"]),
        json!(["click", ".test-form button[type=submit]"]),
        json!(["text", "Queued."]),
    ]);
    run(steps).await;
    let after = receiver.wait_for("after", 1).await;
    assert_eq!(after[0]["headers"]["x-sealbox-test-delivery"], "true");
    let got = json_of(app.get_as(&format!("/v1/webhooks/{id}"), &admin).await, 200).await;
    assert_eq!(got["enabled"], true);
}

/// `at` as a `datetime-local` value in a zone `offset` from UTC.
pub(crate) fn local_value(at: time::OffsetDateTime, offset: time::UtcOffset) -> String {
    let local = at.to_offset(offset);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute()
    )
}

/// Sets the `datetime-local` field `selector` to `value` as the browser's picker would.
pub(crate) fn pick_time(selector: &str, value: &str) -> Value {
    json!([
        "js",
        format!(
            "(() => {{ const i = document.querySelector({sel}); if (!i) return false; \
             i.value = {val}; i.dispatchEvent(new Event('input', {{bubbles: true}})); \
             i.dispatchEvent(new Event('change', {{bubbles: true}})); return i.value === {val}; }})()",
            sel = json!(selector),
            val = json!(value)
        )
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_picked_in_the_pages_ends_an_api_key_and_a_file_share() {
    use time::{Duration as Span, OffsetDateTime, UtcOffset};
    let app = TestApp::spawn().await;
    let (admin, _org, bob, bob_id) = acme(&app, true).await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("brief.txt");
    std::fs::write(&source, b"for Bob's eyes, until the deadline").unwrap();
    let key_file = dir.path().join("key");

    // The next whole minute at least 40 s away (the fields pick minutes; the browser run
    // must end before it), typed in the page's own zone, India (UTC+05:30, no daylight
    // saving): a page that sent the local time as UTC would be 5.5 hours off.
    let now = OffsetDateTime::now_utc();
    let soon = now + Span::seconds(40);
    let deadline = soon
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        + Span::minutes(1);
    let local = local_value(deadline, UtcOffset::from_hms(5, 30, 0).unwrap());

    let mut steps = vec![json!(["timezone", "Asia/Kolkata"])];
    steps.extend(sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/api-keys"));
    steps.extend([
        json!(["fill", "#key-name", "until-the-deadline"]),
        pick_time("#key-expires", &local),
        json!(["click", "#key-form button[type=submit]"]),
        json!([
            "js",
            "document.querySelector('.once-value')?.textContent.startsWith('sbx_')"
        ]),
        json!([
            "save",
            "document.querySelector('.once-value').textContent",
            key_file.to_string_lossy()
        ]),
        json!(["click", "a[href='/app/files']"]),
        rendered("/app/files"),
    ]);
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        json!(["files", "#upload-input", [source.to_string_lossy()]]),
        json!(["click", "#upload-form button[type=submit]"]),
        json!(["text", "Uploaded and encrypted."]),
        json!(["click", "button[aria-label='Share brief.txt']"]),
        choose(".share-form select", &bob_id),
        pick_time(".share-form input[type=datetime-local]", &local),
        json!(["click", ".share-form button[type=submit]"]),
        json!(["text", "Shared with bob"]),
    ]);
    run(steps).await;
    let key = saved(&key_file);
    let parse = |v: &Value| {
        OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };

    // The server holds the instant picked, and both work until then.
    let me = json_of(
        app.client
            .get(app.url("/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["authType"], "api_key");
    let keys = json_of(app.get_as("/v1/api-keys", &admin).await, 200).await;
    let made = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "until-the-deadline")
        .unwrap();
    assert_eq!(parse(&made["expiresAt"]), deadline, "{made}");
    let file = files_of(&app, &admin, ADMIN_SECRET).await.remove(0);
    let shares = json_of(
        app.get_as(&format!("/v1/files/{}/shares", s(&file, "id")), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(parse(&shares[0]["expiresUtc"]), deadline, "{shares}");
    let shared_with_bob = || async {
        json_of(
            app.client
                .get(app.url("/v1/files/shared"))
                .bearer_auth(&bob)
                .header("X-User-Secret", BOB_SECRET)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    };
    assert_eq!(shared_with_bob().await[0]["fileName"], "brief.txt");

    // After it: the key is refused, the share is gone from Bob's list.
    let wait = deadline - OffsetDateTime::now_utc() + Span::seconds(2);
    if let Ok(wait) = std::time::Duration::try_from(wait) {
        tokio::time::sleep(wait).await;
    }
    let refused = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    crate::support::assert_envelope(refused, 401, "UNAUTHORIZED").await;
    assert_eq!(shared_with_bob().await, json!([]));
}
