//! The receive side of transfers beyond one download: renewing the download token
//! (`POST /v1/public/transfers/{id}/renew`) so that a long "Download all" outlives it, and
//! the receive page's timeout when its download worker does not answer. The API against
//! the real server; the page in a real headless Chromium (`tests/browser/drive.py`).

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s};
use crate::web_ui::browse_with_timeout;

const MIB: usize = 1024 * 1024;
const PASSWORD: &str = "correct horse battery";

/// Stands in for the browser's save dialogs, which a headless browser cannot show (as in
/// `web_transfers`): the picked folder is the origin-private file system.
const PICKER_STAND_IN: &str = "\
    window.showDirectoryPicker = async () => navigator.storage.getDirectory();\
    window.showSaveFilePicker = async (options) =>\
      (await navigator.storage.getDirectory()).getFileHandle(options.suggestedName, { create: true });";

/// Pseudo-random bytes (xorshift) from `seed`.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A server (with `ttl_secs`-second download tokens) with an admin and an API key.
async fn server(ttl_secs: u32) -> (TestApp, String) {
    let app = TestApp::spawn_with(|config| config.limits.download_token_ttl_secs = ttl_secs).await;
    let pair = app.setup_admin().await;
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &s(&pair, "accessToken"),
            Some(
                &json!({"name": "receive tests", "scopes": ["transfers:read", "transfers:write"]}),
            ),
            None,
        )
        .await,
        201,
    )
    .await;
    (app, s(&created, "key"))
}

/// A ready server-sealed transfer holding `files` (name, bytes); `extra` adds fields to
/// the creation (a password, `maxDownloads`). Returns (transfer id, link secret, link).
async fn server_transfer(
    app: &TestApp,
    key: &str,
    files: &[(&str, &[u8])],
    extra: Value,
) -> (String, String, String) {
    let mut body = json!({"name": "Renewal"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let created = json_of(
        app.send_as(Method::POST, "/v1/transfers", key, Some(&body), None)
            .await,
        201,
    )
    .await;
    let b64 = base64::engine::general_purpose::STANDARD;
    for (name, bytes) in files {
        let uploaded = app
            .client
            .post(s(&created, "uploadUrl"))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", bytes.len().to_string())
            .header(
                "Upload-Metadata",
                format!(
                    "filename {},encryption {}",
                    b64.encode(name),
                    b64.encode("server")
                ),
            )
            .header("Content-Type", "application/offset+octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 201, "{name} uploads");
    }
    let id = s(&created, "id");
    json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/transfers/{id}/finalize"),
            key,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    let link = s(&created, "link");
    let secret = link.split_once("#s=").unwrap().1.to_owned();
    (id, secret, link)
}

async fn unlock(app: &TestApp, id: &str, secret: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/public/transfers/{id}/unlock")))
        .header("X-Transfer-Secret", secret)
        .json(&json!({"password": password}))
        .send()
        .await
        .unwrap()
}

async fn renew(app: &TestApp, id: &str, secret: Option<&str>, token: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/public/transfers/{id}/renew")))
        .json(&json!({"downloadToken": token}));
    if let Some(secret) = secret {
        request = request.header("X-Transfer-Secret", secret);
    }
    request.send().await.unwrap()
}

/// GETs one file of a transfer under `token`, with the link's secret as the page sends
/// it; returns (status, body).
async fn fetch_file(
    app: &TestApp,
    (id, secret): (&str, &str),
    file: &str,
    token: &str,
) -> (u16, Vec<u8>) {
    let response = app
        .client
        .get(app.url(&format!(
            "/v1/public/transfers/{id}/files/{file}?token={token}"
        )))
        .header("X-Transfer-Secret", secret)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

async fn file_ids(app: &TestApp, id: &str, secret: &str, token: &str) -> Vec<String> {
    let view = json_of(
        app.client
            .get(app.url(&format!("/v1/public/transfers/{id}?token={token}")))
            .header("X-Transfer-Secret", secret)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    view["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(f, "id"))
        .collect()
}

fn downloads_of(app: &TestApp, id: &str) -> i64 {
    app.query(
        &format!("SELECT downloads FROM transfers WHERE id = '{id}'"),
        |row| row.get(0),
    )[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_token_is_the_same_download_session_and_the_old_one_stops() {
    let (app, key) = server(2).await;
    let first = random_bytes(300_000, 1);
    let second = random_bytes(200_000, 2);
    let (id, secret, _) = server_transfer(
        &app,
        &key,
        &[("one.bin", &first), ("two.bin", &second)],
        json!({"password": PASSWORD, "maxDownloads": 1}),
    )
    .await;
    let unlocked = json_of(unlock(&app, &id, &secret, PASSWORD).await, 200).await;
    assert_eq!(unlocked["expiresIn"], 2);
    let token = s(&unlocked, "downloadToken");
    let files = file_ids(&app, &id, &secret, &token).await;

    // The first file counts the transfer's one download.
    assert_eq!(
        fetch_file(&app, (&id, &secret), &files[0], &token).await,
        (200, first.clone())
    );
    assert_eq!(downloads_of(&app, &id), 1);

    // Renewed: a new token, the same lifetime; the old one no longer works.
    let renewed = json_of(renew(&app, &id, Some(&secret), &token).await, 200).await;
    assert_eq!(renewed["expiresIn"], 2);
    let mut current = s(&renewed, "downloadToken");
    assert_ne!(current, token);
    assert_eq!(current.len(), token.len());
    assert_eq!(
        fetch_file(&app, (&id, &secret), &files[1], &token).await.0,
        401
    );
    let again = renew(&app, &id, Some(&secret), &token).await;
    assert_envelope(again, 401, "UNAUTHORIZED").await;

    // Renewed every second for longer than a token lives and than a housekeeping sweep
    // (10 s) takes: the session is never forgotten, so fetching from byte 0 again is not
    // a second download (maxDownloads is 1: it would be 410), and the password's key
    // re-sealed under each new token still opens the server-sealed files.
    for _ in 0..13 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let renewed = json_of(renew(&app, &id, Some(&secret), &current).await, 200).await;
        current = s(&renewed, "downloadToken");
    }
    assert_eq!(
        fetch_file(&app, (&id, &secret), &files[1], &current).await,
        (200, second.clone())
    );
    assert_eq!(
        fetch_file(&app, (&id, &secret), &files[0], &current).await,
        (200, first)
    );
    assert_eq!(downloads_of(&app, &id), 1);
    // Others are refused: the one download is used.
    assert_envelope(unlock(&app, &id, &secret, PASSWORD).await, 410, "GONE").await;

    // Left to expire, the token renews no more.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_envelope(
        renew(&app, &id, Some(&secret), &current).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        fetch_file(&app, (&id, &secret), &files[1], &current)
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_needs_the_link_secret_and_a_live_token_of_that_transfer() {
    let (app, key) = server(60).await;
    let (id, secret, _) = server_transfer(&app, &key, &[("a.txt", b"alpha")], json!({})).await;
    let (other, other_secret, _) =
        server_transfer(&app, &key, &[("b.txt", b"beta")], json!({})).await;
    let token = s(
        &json_of(unlock(&app, &id, &secret, "").await, 200).await,
        "downloadToken",
    );
    let other_token = s(
        &json_of(unlock(&app, &other, &other_secret, "").await, 200).await,
        "downloadToken",
    );

    // Without the link's secret, or with another's: as for an unknown transfer.
    assert_envelope(renew(&app, &id, None, &token).await, 404, "NOT_FOUND").await;
    assert_envelope(
        renew(&app, &id, Some(&other_secret), &token).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_envelope(
        renew(&app, &unknown, Some(&secret), &token).await,
        404,
        "NOT_FOUND",
    )
    .await;
    // Another transfer's token, a malformed one, one with a flipped secret byte: 401.
    assert_envelope(
        renew(&app, &id, Some(&secret), &other_token).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        renew(&app, &id, Some(&secret), "not-a-token").await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    assert_envelope(
        renew(&app, &id, Some(&secret), &forged).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    // A body without the token: the validation envelope.
    let missing = app
        .client
        .post(app.url(&format!("/v1/public/transfers/{id}/renew")))
        .header("X-Transfer-Secret", &secret)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(missing.status().as_u16(), 400 | 422),
        "{}",
        missing.status()
    );

    // Two renewals of one token at once: exactly one wins.
    let (a, b) = tokio::join!(
        renew(&app, &id, Some(&secret), &token),
        renew(&app, &id, Some(&secret), &token)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);

    // A revoked transfer renews nothing.
    let fresh = s(
        &json_of(unlock(&app, &other, &other_secret, "").await, 200).await,
        "downloadToken",
    );
    let revoked = app
        .send_as(
            Method::DELETE,
            &format!("/v1/transfers/{other}"),
            &key,
            None,
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    assert_envelope(
        renew(&app, &other, Some(&other_secret), &fresh).await,
        410,
        "GONE",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_all_that_outlasts_several_tokens_completes_byte_identical() {
    // Tokens live 3 s; three files at 1 MiB/s take about 9 s: each token expires while a
    // file streams, and the page renews without asking for the password again.
    let (app, key) = server(3).await;
    let files: Vec<(String, Vec<u8>)> = (0..3u64)
        .map(|n| {
            (
                format!("part-{n}.bin"),
                random_bytes(3 * MIB + 1000 * n as usize, 40 + n),
            )
        })
        .collect();
    let listed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let (id, _, link) = server_transfer(
        &app,
        &key,
        &listed,
        json!({"password": PASSWORD, "maxDownloads": 1}),
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let mut steps = vec![
        json!(["init-script", PICKER_STAND_IN]),
        json!(["throttle", MIB]),
        json!(["open", link.replace('#', "?download=picker#")]),
        json!(["fill", "#transfer-password", PASSWORD]),
        json!(["click", "#password-form button[type=submit]"]),
        json!(["text", "part-2.bin"]),
        json!(["js", "(window.__started = performance.now(), true)"]),
        json!(["click", "#download-all"]),
        json!(["text", "All 3 files are downloaded."]),
        json!(["no-text", "password again"]),
    ];
    let elapsed = out.path().join("elapsed");
    steps.push(json!([
        "save",
        "String(performance.now() - window.__started)",
        elapsed.to_str().unwrap()
    ]));
    for (name, _) in &files {
        let path = out.path().join(name);
        steps.push(json!(["save", opfs_sha256(name), path.to_str().unwrap()]));
    }
    browse_with_timeout(Value::Array(steps), 60).await;
    let millis: f64 = std::fs::read_to_string(&elapsed).unwrap().parse().unwrap();
    assert!(
        millis > 6000.0,
        "the download took {millis} ms, not longer than two tokens live"
    );
    for (name, bytes) in &files {
        assert_eq!(
            std::fs::read_to_string(out.path().join(name)).unwrap(),
            sha256_hex(bytes),
            "{name} is byte-identical"
        );
    }
    // One download, however many tokens it took.
    assert_eq!(downloads_of(&app, &id), 1);
}

/// The SHA-256 (hex) of a file in the origin-private file system, read in the page.
fn opfs_sha256(name: &str) -> String {
    format!(
        "(async () => {{ const dir = await navigator.storage.getDirectory();\
         const file = await (await dir.getFileHandle({name:?})).getFile();\
         const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));\
         return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join(''); }})()"
    )
}

/// Replaces `navigator.serviceWorker` while `window.__stuck` is set: "register" never
/// settles (the worker never installs), "answer" gives a worker that takes no job (stuck).
/// `window.__stuck = ''` gives the browser's own back. Records the time of each click.
const STUCK_WORKER: &str = "\
    const real = Object.getOwnPropertyDescriptor(Navigator.prototype, 'serviceWorker').get;\
    window.__stuck = new URL(location.href).searchParams.get('stuck') || '';\
    const never = new Promise(() => {});\
    const silent = { postMessage() {} };\
    const stubs = {\
      register: { register: () => never, ready: never, getRegistration: () => never },\
      answer: { register: async () => ({}), ready: Promise.resolve({ active: silent }),\
                getRegistration: async () => undefined },\
    };\
    Object.defineProperty(Navigator.prototype, 'serviceWorker', { configurable: true,\
      get() { return stubs[window.__stuck] ?? real.call(this); } });\
    document.addEventListener('click', () => { window.__clicked = performance.now(); }, true);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_worker_that_never_answers_fails_readably_and_a_retry_restarts_it() {
    let (app, key) = server(900).await;
    let body = random_bytes(700_000, 9);
    let (_, _, link) = server_transfer(&app, &key, &[("notes.bin", &body)], json!({})).await;
    let out = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let mut steps = vec![
        json!(["downloads", downloads.path().to_str().unwrap()]),
        json!(["init-script", STUCK_WORKER]),
    ];
    for (stuck, words) in [
        ("register", "did not start within 10 s"),
        ("answer", "did not take the download within 10 s"),
    ] {
        let page = link.replace('#', &format!("?download=worker&stuck={stuck}#"));
        let waited = out.path().join(stuck);
        steps.extend([
            json!(["open", page]),
            json!(["text", "built-in helper"]),
            json!(["click", "#files li:nth-child(1) .file-download"]),
            json!(["text", words]),
            json!(["text", "Press Download to try again"]),
            json!([
                "js",
                "document.querySelector('#files li:nth-child(1)').dataset.state === 'failed'"
            ]),
            json!([
                "js",
                "!document.querySelector('#files li:nth-child(1) .file-download').disabled"
            ]),
            json!([
                "save",
                "String(performance.now() - window.__clicked)",
                waited.to_str().unwrap()
            ]),
        ]);
    }
    // The retry path: with the browser's worker back, Download again works.
    steps.extend([
        json!(["js", "(window.__stuck = '', true)"]),
        json!(["click", "#files li:nth-child(1) .file-download"]),
        json!(["text", "notes.bin is downloaded."]),
        json!(["downloaded", 1]),
    ]);
    browse_with_timeout(Value::Array(steps), 30).await;
    for stuck in ["register", "answer"] {
        let millis: f64 = std::fs::read_to_string(out.path().join(stuck))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (9_500.0..16_000.0).contains(&millis),
            "{stuck}: the error came after {millis} ms, not at the 10 s timeout"
        );
    }
    let path = downloads.path().join("notes.bin");
    for _ in 0..100 {
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == body.len() as u64) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        std::fs::read(&path).unwrap() == body,
        "the retried download is byte-identical"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_worker_stopped_mid_download_fails_readably_and_a_retry_finishes() {
    let (app, key) = server(900).await;
    let body = random_bytes(200 * MIB, 21);
    let (_, _, link) = server_transfer(&app, &key, &[("big.bin", &body)], json!({})).await;
    let downloads = tempfile::tempdir().unwrap();
    let row = "#files li:nth-child(1)";
    browse_with_timeout(
        json!([
            ["downloads", downloads.path().to_str().unwrap()],
            ["open", link.replace('#', "?download=worker#")],
            ["click", format!("{row} .file-download")],
            // Bytes are arriving: the worker is answering. Then it is stopped.
            [
                "js",
                format!(
                    "document.querySelector('{row} .file-status').textContent.includes(' of ')"
                )
            ],
            ["stop-workers"],
            ["text", "stopped answering for 30 s"],
            [
                "js",
                format!("document.querySelector('{row}').dataset.state === 'failed'")
            ],
            // The retry registers a fresh worker and finishes.
            ["click", format!("{row} .file-download")],
            ["text", "big.bin is downloaded."],
            ["downloaded", 1],
        ]),
        90,
    )
    .await;
    // The browser names the retry as it likes (the stopped one may have kept the name);
    // one complete file is there, and it is the file.
    let complete: Vec<_> = std::fs::read_dir(downloads.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| std::fs::metadata(path).is_ok_and(|m| m.len() == body.len() as u64))
        .collect();
    assert_eq!(complete.len(), 1, "{complete:?}");
    assert!(
        std::fs::read(&complete[0]).unwrap() == body,
        "the retried download is byte-identical"
    );
}

/// In the receive page: wrong passwords sent straight to unlock (as another tab of the same
/// person would) until the server answers 429; true once it did.
const GUESS_UNTIL_LOCKED: &str = "(window.__guessed ??= (async () => {\
      const id = location.pathname.split('/').pop();\
      const secret = new URLSearchParams(location.hash.slice(1)).get('s');\
      for (let i = 0; i < 10; i++) {\
        const answer = await fetch(`/v1/public/transfers/${id}/unlock`, { method: 'POST',\
          headers: { 'Content-Type': 'application/json', 'X-Transfer-Secret': secret },\
          body: JSON.stringify({ password: `wrong guess ${i}` }) });\
        if (answer.status === 429) return true;\
      }\
      return false;\
    })())";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receive_page_says_expired_used_up_and_locked_out_and_offers_nothing() {
    use crate::web_transfers::NOTHING_LISTED;
    let (app, key) = server(900).await;
    let (expired, _, expired_link) =
        server_transfer(&app, &key, &[("a.txt", b"alpha")], json!({})).await;
    crate::transfers::expire_now(&app, &expired);
    // Used up: its one download taken by someone else first.
    let (used, used_secret, used_link) = server_transfer(
        &app,
        &key,
        &[("b.txt", b"beta")],
        json!({"maxDownloads": 1}),
    )
    .await;
    let token = s(
        &json_of(unlock(&app, &used, &used_secret, "").await, 200).await,
        "downloadToken",
    );
    let files = file_ids(&app, &used, &used_secret, &token).await;
    assert_eq!(
        fetch_file(&app, (&used, &used_secret), &files[0], &token).await,
        (200, b"beta".to_vec())
    );
    let (_, _, locked_link) = server_transfer(
        &app,
        &key,
        &[("c.txt", b"gamma")],
        json!({"password": PASSWORD}),
    )
    .await;
    let password_shown = "!document.getElementById('password-form').hidden";
    browse_with_timeout(
        json!([
            ["open", expired_link],
            ["text", "The transfer has expired."],
            ["js", NOTHING_LISTED],
            ["open", used_link],
            ["text", "The transfer's downloads are used up."],
            ["js", NOTHING_LISTED],
            // A wrong password: the server's 401 message, nothing offered.
            ["open", locked_link],
            ["js", password_shown],
            ["fill", "#transfer-password", "not the password"],
            ["click", "#password-form button[type=submit]"],
            ["text", "Wrong password."],
            ["js", NOTHING_LISTED],
            // Guessed on until the server holds guesses back: its 429 message and the wait.
            ["js", GUESS_UNTIL_LOCKED],
            ["fill", "#transfer-password", "still not the password"],
            ["click", "#password-form button[type=submit]"],
            [
                "text",
                "Too many failed attempts; wait before trying again."
            ],
            ["text", "Try again in"],
            ["js", NOTHING_LISTED],
            ["js", password_shown],
        ]),
        30,
    )
    .await;
}
