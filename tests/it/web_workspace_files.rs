//! The rest of the vault pages' main flows in a real headless Chromium against the real
//! server (`tests/it/web_vault.rs` has the first ones, and the helpers): Files' sort, the
//! `/app/files/{id}` deep link, revoking a share and giving up one shared with you;
//! Secrets' copy button, revoking and giving up shares, removing a trustee and a share
//! that expires; an API key's maximum number of uses. Each flow is checked twice: what the
//! page shows, and what the server holds afterwards over HTTP.

use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration as Span, OffsetDateTime, UtcOffset};

use crate::support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, assert_envelope, json_of, s,
};
use crate::vault::{call, put};
use crate::web_ui::browse_with_timeout;
use crate::web_vault::{
    ADMIN_SECRET, BOB_SECRET, acme, choose, files_of, local_value, pick_time, rendered, run, saved,
    sign_in, unlock,
};

/// `GET path` as `token` with the user secret `secret`; the JSON of its 200.
async fn with_secret(app: &TestApp, path: &str, token: &str, secret: &str) -> Value {
    json_of(
        call(app, Method::GET, path, token, Some(secret), None).await,
        200,
    )
    .await
}

/// `field` of every element of a JSON array, in order.
fn column(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| s(item, field))
        .collect()
}

/// What the page says for an API error (forms.js `sentence`): capitalized, with a stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let first = chars.next().unwrap().to_uppercase();
    format!("{first}{}.", chars.as_str().trim_end_matches('.'))
}

/// The names in the Files page's list, in the order shown, joined by commas.
const SHOWN_FILES: &str =
    "[...document.querySelectorAll('#files-list .file-name')].map((e) => e.textContent).join()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sort_open_by_deep_link_and_end_shares_from_both_sides() {
    let app = TestApp::spawn().await;
    let (admin, _org, bob, bob_id) = acme(&app, true).await;
    // Names, sizes and upload order chosen so that each of the six sorts differs.
    let mut ids = std::collections::HashMap::new();
    for (name, size) in [("beta.txt", 1000), ("alpha.txt", 10), ("gamma.txt", 300)] {
        let id = app
            .upload_file(&admin, name, &vec![b'x'; size], "server")
            .await;
        ids.insert(name, id);
    }
    for name in ["alpha.txt", "gamma.txt"] {
        let shared = call(
            &app,
            Method::POST,
            &format!("/v1/files/{}/shares", ids[name]),
            &admin,
            Some(ADMIN_SECRET),
            Some(json!({"recipientUserId": bob_id, "permission": "read"})),
        )
        .await;
        json_of(shared, 201).await;
    }
    let bobs_shares = || with_secret(&app, "/v1/files/shared", &bob, BOB_SECRET);
    let mut before = column(&bobs_shares().await, "fileName");
    before.sort();
    assert_eq!(before, ["alpha.txt", "gamma.txt"]);

    // The orders the page must show, from what the server lists.
    let files = files_of(&app, &admin, ADMIN_SECRET).await;
    let order = |key: &dyn Fn(&Value) -> (i64, String), descending: bool| {
        let mut list = files.clone();
        list.sort_by_key(|f| key(f));
        if descending {
            list.reverse();
        }
        column(&Value::Array(list), "fileName").join(",")
    };
    let by_name = |f: &Value| (0, s(f, "fileName"));
    let by_size = |f: &Value| (f["sizeBytes"].as_i64().unwrap(), String::new());
    let by_updated = |f: &Value| (0, s(f, "updatedUtc"));
    let mut updated = column(&Value::Array(files.clone()), "updatedUtc");
    updated.sort();
    updated.dedup();
    assert_eq!(updated.len(), 3, "three distinct update times: {files:?}");
    let newest_first = order(&by_updated, true);
    assert_eq!(newest_first, "gamma.txt,alpha.txt,beta.txt");
    let shown = |names: &str| json!(["js", format!("{SHOWN_FILES} === {names:?}")]);
    let beta = &ids["beta.txt"];
    let nobodys = uuid::Uuid::now_v7().to_string();

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/files");
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        shown(&newest_first),
        choose("#files-sort", "name-asc"),
        shown(&order(&by_name, false)),
        choose("#files-sort", "name-desc"),
        shown(&order(&by_name, true)),
        choose("#files-sort", "size-desc"),
        shown(&order(&by_size, true)),
        choose("#files-sort", "size-asc"),
        shown(&order(&by_size, false)),
        choose("#files-sort", "updated-asc"),
        shown(&order(&by_updated, false)),
        // A file's name is its link: the page of that file alone, in the same tab.
        json!([
            "click",
            format!("#files-list a.file-name[href='/app/files/{beta}']")
        ]),
        rendered(&format!("/app/files/{beta}")),
        shown("beta.txt"),
        json!([
            "js",
            "document.querySelector(\"#files-list a[href='/app/files']\") !== null"
        ]),
        // Back is the whole list again.
        json!(["js", "(history.back(), true)"]),
        rendered("/app/files"),
        shown(&newest_first),
        // The link opened afresh (a colleague's tab, a reload): unlock, and just the file.
        json!(["open", app.url(&format!("/app/files/{beta}"))]),
        rendered(&format!("/app/files/{beta}")),
        json!(["text", "Unlock the vault to see your files' names."]),
    ]);
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        shown("beta.txt"),
        json!(["open", app.url(&format!("/app/files/{nobodys}"))]),
        rendered(&format!("/app/files/{nobodys}")),
    ]);
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        json!(["text", "There is no such file among yours."]),
        json!(["click", "#files-list a[href='/app/files']"]),
        rendered("/app/files"),
        shown(&newest_first),
        // Revoke Bob's share of alpha.txt.
        json!(["click", "button[aria-label='Share alpha.txt']"]),
        json!(["text", "Shares of alpha.txt"]),
        json!(["click", "button[aria-label=\"Revoke bob's share\"]"]),
        json!(["text", "Not shared with anyone."]),
    ]);
    run(steps).await;
    let alpha_shares = json_of(
        app.get_as(&format!("/v1/files/{}/shares", ids["alpha.txt"]), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(alpha_shares, json!([]));
    assert_eq!(column(&bobs_shares().await, "fileName"), ["gamma.txt"]);

    // Bob gives up gamma.txt; Ada's file is no page of his even by its address.
    let gamma = &ids["gamma.txt"];
    let mut steps = sign_in(&app, "bob@example.com", MEMBER_PASSWORD, "/app/files");
    steps.extend(unlock(BOB_SECRET));
    steps.extend([
        json!([
            "js",
            "document.getElementById('shared-list').innerText.includes('gamma.txt')"
        ]),
        json!([
            "js",
            "!document.getElementById('shared-list').innerText.includes('alpha.txt')"
        ]),
        json!([
            "click",
            "#shared-list button[aria-label='Remove gamma.txt from your list']"
        ]),
        json!(["js", "document.getElementById('confirm-dialog').open"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Nobody has shared a file with you."]),
        json!(["open", app.url(&format!("/app/files/{gamma}"))]),
        rendered(&format!("/app/files/{gamma}")),
    ]);
    steps.extend(unlock(BOB_SECRET));
    steps.extend([
        json!(["text", "There is no such file among yours."]),
        json!(["no-text", "gamma.txt"]),
    ]);
    run(steps).await;
    assert_eq!(bobs_shares().await, json!([]));
    let gamma_shares = json_of(
        app.get_as(&format!("/v1/files/{gamma}/shares"), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(gamma_shares, json!([]));
    // Giving a share up or revoking it leaves the file itself alone.
    assert_eq!(files_of(&app, &admin, ADMIN_SECRET).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_copy_end_shares_remove_a_trustee_and_a_share_expires() {
    let app = TestApp::spawn().await;
    let (admin, _org, bob, bob_id) = acme(&app, true).await;
    const TOKEN_VALUE: &str = "tok-7f3a9c-production";
    for (name, value) in [
        ("api-token", TOKEN_VALUE),
        ("db-password", "hunter2"),
        ("ssh-key", "-----BEGIN KEY-----"),
    ] {
        assert_eq!(
            put(&app, &admin, name, value.as_bytes()).await.status(),
            201
        );
    }
    for (name, alias) in [("db-password", "DB password"), ("ssh-key", "SSH key")] {
        let shared = call(
            &app,
            Method::POST,
            &format!("/v1/kv/{name}/shares"),
            &admin,
            Some(ADMIN_SECRET),
            Some(json!({"recipientUserId": bob_id, "permission": "read", "alias": alias})),
        )
        .await;
        json_of(shared, 201).await;
    }
    let trustee = call(
        &app,
        Method::PUT,
        &format!("/v1/recovery/trustees/{bob_id}"),
        &admin,
        None,
        Some(json!({"encryptedPrivateKeyEccShareB64": "c2hhcmUtb25l",
                    "encryptedPrivateKeyKyberShareB64": "c2hhcmUtdHdv", "xorApplied": false})),
    )
    .await;
    assert!(trustee.status().is_success(), "{}", trustee.status());
    let bobs_shares = || with_secret(&app, "/v1/kv/shared", &bob, BOB_SECRET);
    let mut aliases = column(&bobs_shares().await, "alias");
    aliases.sort();
    assert_eq!(aliases, ["DB password", "SSH key"]);
    // What the server says of a share that is not (or no longer) there, as the page
    // words it.
    let unknown = call(
        &app,
        Method::GET,
        &format!("/v1/kv/shared/{}", uuid::Uuid::now_v7()),
        &bob,
        Some(BOB_SECRET),
        None,
    )
    .await;
    let gone = sentence(&s(
        &assert_envelope(unknown, 404, "NOT_FOUND").await,
        "message",
    ));
    let dir = tempfile::tempdir().unwrap();
    let copied = dir.path().join("copied");

    // The api-token share ends at the next whole minute at least 60 s away (the field
    // picks minutes; both browser runs reach the share before it ends).
    let soon = OffsetDateTime::now_utc() + Span::seconds(60);
    let deadline = soon
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        + Span::minutes(1);
    let local = local_value(deadline, UtcOffset::UTC);

    let mut steps = vec![json!(["timezone", "UTC"]), json!(["clipboard"])];
    steps.extend(sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/secrets"));
    steps.extend(unlock(ADMIN_SECRET));
    steps.extend([
        // Share api-token until the deadline.
        json!(["click", "button[aria-label='Share api-token']"]),
        choose(".share-form select", &bob_id),
        json!(["fill", ".share-form input[type=text]", "API token"]),
        pick_time(".share-form input[type=datetime-local]", &local),
        json!(["click", ".share-form button[type=submit]"]),
        json!(["text", "Shared with bob"]),
        json!(["text", "Shares of api-token"]),
        json!(["click", "button[aria-label='Share api-token']"]),
        json!(["js", "document.querySelector('.share-form') === null"]),
        // Reveal and copy: the page says so, and the clipboard holds the value.
        json!(["click", "button[aria-label='Reveal api-token']"]),
        json!(["text", TOKEN_VALUE]),
        json!(["click", "button[aria-label='Copy api-token']"]),
        json!(["text", "Copied."]),
        json!([
            "save",
            "navigator.clipboard.readText()",
            copied.to_string_lossy()
        ]),
        json!(["click", "button[aria-label='Hide api-token']"]),
        json!([
            "js",
            format!("!document.body.innerText.includes({TOKEN_VALUE:?})")
        ]),
        // Revoke Bob's share of db-password.
        json!(["click", "button[aria-label='Share db-password']"]),
        json!(["text", "Shares of db-password"]),
        json!(["click", "button[aria-label=\"Revoke bob's share\"]"]),
        json!(["text", "Not shared with anyone."]),
        // Bob is no longer a trustee.
        json!([
            "js",
            "document.getElementById('trustees').innerText.includes('bob')"
        ]),
        json!(["click", "button[aria-label='Remove trustee bob']"]),
        json!(["js", "document.getElementById('confirm-dialog').open"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "No trustees yet."]),
    ]);
    run(steps).await;
    assert_eq!(saved(&copied), TOKEN_VALUE);
    assert_eq!(
        json_of(app.get_as("/v1/kv/db-password/shares", &admin).await, 200).await,
        json!([])
    );
    assert_eq!(
        json_of(app.get_as("/v1/recovery/trustees", &admin).await, 200).await,
        json!([])
    );
    assert_eq!(
        json_of(app.get_as("/v1/recovery/shares", &bob).await, 200).await,
        json!([])
    );
    let listed = bobs_shares().await;
    let token_share = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|share| share["alias"] == "API token")
        .unwrap_or_else(|| panic!("Bob has the api-token share before the deadline: {listed}"))
        .clone();
    let parse = |v: &Value| {
        OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(parse(&token_share["expiresUtc"]), deadline, "{token_share}");
    let token_share = s(&token_share, "shareId");

    // Bob gives up the SSH key; then, past the deadline, revealing the API token is the
    // server's answer for a share that is gone, and it leaves his list.
    let after_deadline = (deadline.unix_timestamp() + 1) * 1000;
    let list = "(document.getElementById('kv-shared-list')?.innerText ?? '')";
    let mut steps = sign_in(&app, "bob@example.com", MEMBER_PASSWORD, "/app/secrets");
    steps.extend(unlock(BOB_SECRET));
    steps.extend([
        json!([
            "js",
            format!("{list}.includes('API token') && {list}.includes('SSH key')")
        ]),
        json!(["js", format!("!{list}.includes('DB password')")]),
        json!(["text", "Nobody has chosen you as a trustee."]),
        json!([
            "click",
            "button[aria-label='Remove SSH key from your list']"
        ]),
        json!(["js", "document.getElementById('confirm-dialog').open"]),
        json!(["click", "#confirm-yes"]),
        json!([
            "js",
            format!("{list}.includes('API token') && !{list}.includes('SSH key')")
        ]),
        json!(["js", format!("Date.now() > {after_deadline}")]),
        json!([
            "click",
            "#kv-shared-list button[aria-label='Reveal API token']"
        ]),
        json!([
            "js",
            format!(
                "[...document.querySelectorAll('#kv-shared-list [role=alert]')].some((n) => \
             !n.hidden && n.innerText.includes({gone:?}))"
            )
        ]),
        json!(["no-text", TOKEN_VALUE]),
        // Locked and unlocked again, the list is read afresh: nothing is left.
        json!(["click", "#vault-lock"]),
    ]);
    steps.extend(unlock(BOB_SECRET));
    steps.push(json!(["text", "Nobody has shared a secret with you."]));
    // The wait for the deadline is one step of up to two minutes.
    browse_with_timeout(Value::Array(steps), 180).await;
    assert_eq!(bobs_shares().await, json!([]));
    assert_envelope(
        call(
            &app,
            Method::GET,
            &format!("/v1/kv/shared/{token_share}"),
            &bob,
            Some(BOB_SECRET),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        json_of(app.get_as("/v1/kv/ssh-key/shares", &admin).await, 200).await,
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_with_max_uses_from_the_page_works_that_often_then_is_refused() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let admin = s(&pair, "accessToken");
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/api-keys");
    steps.extend([
        json!(["text", "No API keys yet."]),
        json!(["fill", "#key-name", "three-uses"]),
        json!(["fill", "#key-max-uses", "3"]),
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
        json!([
            "js",
            "document.getElementById('keys-list').innerText.includes('0 of 3 uses')"
        ]),
    ]);
    run(steps).await;
    let key = saved(&key_file);
    let me = || app.client.get(app.url("/v1/me")).bearer_auth(&key).send();
    for n in 1..=3 {
        let used = me().await.unwrap();
        assert_eq!(used.status(), 200, "use {n} of 3");
    }
    for _ in 0..2 {
        let refused = assert_envelope(me().await.unwrap(), 401, "UNAUTHORIZED").await;
        assert!(
            s(&refused, "message").contains("maximum number of uses"),
            "{refused}"
        );
    }
    let keys = json_of(app.get_as("/v1/api-keys", &admin).await, 200).await;
    assert_eq!(keys[0]["maxUses"], 3, "{keys}");
    assert_eq!(
        keys[0]["useCount"], 3,
        "refused requests are not uses: {keys}"
    );

    let mut steps = sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "/app/api-keys");
    steps.extend([
        json!([
            "js",
            "document.getElementById('keys-list').innerText.includes('3 of 3 uses')"
        ]),
        json!(["text", "from 127.0.0.1"]),
    ]);
    run(steps).await;
}
