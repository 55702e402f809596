//! Transfers in the browser: the web UI's format modules (`web/assets/js/sbx1.js`,
//! `transfer-e2e.js`, `transfer-link.js`) against the committed vectors and the Rust code,
//! and the pages that send and receive, all in a real headless Chromium
//! (`tests/browser/drive.py`) against the real server.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sealbox::crypto::Dek;
use sealbox::crypto::sbx1::{decrypt_stream, encrypt_stream};
use sealbox::crypto::transfer_e2e::{encode_key, new_file_id, open_name, seal_name};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;
use crate::web_ui::browse_with_timeout;

const VECTORS: &str = include_str!("../vectors/sbx1.json");
const FORMATS_JS: &str = include_str!("../browser/formats.js");
const E2E_VECTORS: &str = include_str!("../vectors/transfer_e2e.json");

/// Bytes that differ at every offset (a pattern SBX1 segment boundaries do not line up with).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 253) as u8 ^ seed.wrapping_mul((i / 253) as u8))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_formats_match_the_vectors_and_the_rust_code() {
    let app = TestApp::spawn().await;

    // What the Rust code writes, for the browser to open: a file of 3 full 64 KiB
    // segments and a short one, and a sealed name.
    let dek = Dek::generate();
    let file_id = new_file_id();
    let plaintext = pattern(3 * 65536 + 1234, 7);
    let mut ciphertext = Vec::new();
    encrypt_stream(plaintext.as_slice(), &mut ciphertext, &dek, file_id).unwrap();
    let transfer_id = Uuid::now_v7();
    let name_file_id = new_file_id();
    let name = "Q3 report — final (v2).pdf";
    let sealed = seal_name(&dek, transfer_id, name_file_id, name);

    let browser_plaintext = "written in the browser, ".repeat(5000);
    let browser_name = "Ünïcode résumé.txt";
    let input = json!({
        "sbx1": serde_json::from_str::<Value>(VECTORS).unwrap(),
        "rustFile": {
            "dek": STANDARD.encode(dek.expose_bytes()),
            "fileId": file_id.to_string(),
            "ciphertext": STANDARD.encode(&ciphertext),
            "plaintext": STANDARD.encode(&plaintext),
        },
        "rustName": {
            "key": encode_key(&dek),
            "transferId": transfer_id.to_string(),
            "fileId": name_file_id.to_string(),
            "name": name,
            "sealed": sealed,
        },
        "browserPlaintext": browser_plaintext,
        "browserName": browser_name,
    });
    let expression = format!("(async () => {{ {FORMATS_JS}\nreturn await run({input}); }})()");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("browser.json");
    browse_with_timeout(
        json!([
            ["open", app.url("/")],
            ["save", expression, out.to_str().unwrap()],
        ]),
        60,
    )
    .await;

    // What the browser wrote opens with the Rust code.
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let file = &written["browserFile"];
    let key: [u8; 32] = STANDARD
        .decode(file["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = Dek::from_bytes(key);
    let browser_id = Uuid::parse_str(file["fileId"].as_str().unwrap()).unwrap();
    assert_eq!(browser_id.get_version_num(), 4);
    let browser_cipher = STANDARD
        .decode(file["ciphertext"].as_str().unwrap())
        .unwrap();
    let mut opened = Vec::new();
    decrypt_stream(browser_cipher.as_slice(), &mut opened, &key, browser_id).unwrap();
    assert_eq!(opened, browser_plaintext.as_bytes());
    // One byte flipped anywhere, and the Rust reader refuses it too.
    let mut flipped = browser_cipher.clone();
    flipped[browser_cipher.len() / 2] ^= 1;
    assert!(decrypt_stream(flipped.as_slice(), &mut Vec::new(), &key, browser_id).is_err());

    let browser_sealed = written["browserName"].as_str().unwrap();
    assert_eq!(
        open_name(&dek, transfer_id, browser_sealed).unwrap(),
        (browser_id, browser_name.to_owned())
    );
    assert!(open_name(&dek, Uuid::now_v7(), browser_sealed).is_err());
}

// --- The receive page, /t/{id} ---------------------------------------------------------

const MIB: usize = 1024 * 1024;
/// The size of the large file the receive tests download through each path (issue 16).
const LARGE: usize = 300 * MIB;
/// The most JS heap the receiving tab may use while it downloads (issue 16).
const HEAP_LIMIT: u64 = 64 * MIB as u64;
const MARKER: &[u8] = b"BROWSER-PLAINTEXT-MARKER-7f03a1";

/// True on the receive page when it lists no file and offers no download.
pub(crate) const NOTHING_LISTED: &str = "document.querySelectorAll('#files li').length === 0 && document.getElementById('downloads').hidden";

/// Counts the receive page's token renewals (`POST .../renew`) in `window.__renewals`.
const COUNT_RENEWALS: &str = "\
    const realFetch = window.fetch; window.__renewals = 0;\
    window.fetch = (url, init) => {\
      if (String(url).endsWith('/renew')) window.__renewals += 1;\
      return realFetch(url, init);\
    };";

/// Stands in for the browser's save dialogs, which a headless browser cannot show: the
/// "picked" folder or file is in the origin-private file system, written through the same
/// FileSystemWritableFileStream a picked file on disk is.
const PICKER_STAND_IN: &str = "\
    window.showDirectoryPicker = async () => navigator.storage.getDirectory();\
    window.showSaveFilePicker = async (options) =>\
      (await navigator.storage.getDirectory()).getFileHandle(options.suggestedName, { create: true });";

/// The SHA-256 (hex) of a file in the origin-private file system, read in the page.
fn opfs_sha256(name: &str) -> String {
    format!(
        "(async () => {{ const dir = await navigator.storage.getDirectory();\
         const file = await (await dir.getFileHandle({name:?})).getFile();\
         const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));\
         return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join(''); }})()"
    )
}

/// Whether a file is in the origin-private file system with any bytes in it.
fn opfs_has(name: &str) -> String {
    format!(
        "(async () => {{ const dir = await navigator.storage.getDirectory();\
         try {{ return String((await (await dir.getFileHandle({name:?})).getFile()).size > 0); }}\
         catch {{ return 'false'; }} }})()"
    )
}

/// Pseudo-random bytes (xorshift), with `marker` at byte 100 when given.
fn random_bytes(len: usize, seed: u64, marker: Option<&[u8]>) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    if let Some(marker) = marker {
        out[100..100 + marker.len()].copy_from_slice(marker);
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A server with an admin and an API key scoped as the CLI's.
async fn server_with_key() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let created = crate::support::json_of(
        app.send_as(
            reqwest::Method::POST,
            "/v1/api-keys",
            &crate::support::s(&pair, "accessToken"),
            Some(&json!({"name": "web test", "scopes": ["transfers:read", "transfers:write"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    (app, crate::support::s(&created, "key"))
}

/// `sealbox send FILES... ARGS...` as a user runs it; returns the printed link.
async fn cli_send(app: &TestApp, key: &str, args: Vec<String>) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(crate::support::SEALBOX_BIN);
    command
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SEALBOX_SERVER", &app.base)
        .env("SEALBOX_API_KEY", key)
        .arg("send")
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "sealbox send: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// `link` with `?download=METHOD` before its fragment.
fn forcing(link: &str, method: &str) -> String {
    let (base, fragment) = link.split_once('#').unwrap_or((link, ""));
    format!("{base}?download={method}#{fragment}")
}

/// Waits (up to a minute) until the browser's download of `name` into `dir` is complete.
async fn downloaded(dir: &std::path::Path, name: &str, len: usize) -> Vec<u8> {
    let path = dir.join(name);
    for _ in 0..600 {
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.len() == len as u64
        {
            return std::fs::read(&path).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{name} was not downloaded; the folder holds {:?}",
        walk(dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_transfer_downloads_in_the_browser_through_both_paths_and_a_flipped_byte_fails() {
    let (app, key) = server_with_key().await;
    let files = tempfile::tempdir().unwrap();
    let large = random_bytes(LARGE, 3, None);
    let small = random_bytes(200_000, 5, Some(MARKER));
    let large_path = files.path().join("large.bin");
    let small_path = files.path().join("Notes für Q3.txt");
    std::fs::write(&large_path, &large).unwrap();
    std::fs::write(&small_path, &small).unwrap();
    let link = cli_send(
        &app,
        &key,
        vec![
            small_path.to_str().unwrap().to_owned(),
            large_path.to_str().unwrap().to_owned(),
            "--message".to_owned(),
            "Two files for you".to_owned(),
        ],
    )
    .await;
    let transfer_key = link.split_once("k=").unwrap().1.to_owned();

    // Through the download worker: the browser's download manager writes the files.
    let downloads = tempfile::tempdir().unwrap();
    browse_with_timeout(
        json!([
            ["downloads", downloads.path().to_str().unwrap()],
            ["open", forcing(&link, "worker")],
            ["text", "Two files for you"],
            ["text", "Notes für Q3.txt"],
            ["text", "End-to-end encrypted"],
            ["text", "built-in helper"],
            ["click", "#download-all"],
            [
                "heap",
                "document.body.innerText.includes('All 2 files are downloaded.')",
                HEAP_LIMIT
            ],
            ["downloaded", 2],
        ]),
        900,
    )
    .await;
    assert_eq!(
        downloaded(downloads.path(), "Notes für Q3.txt", small.len()).await,
        small
    );
    let got = downloaded(downloads.path(), "large.bin", LARGE).await;
    assert!(got == large, "the worker's download is byte-identical");
    drop(got);

    // Straight into the picked file: the page decrypts into it.
    let hash_out = tempfile::tempdir().unwrap();
    let hash_path = hash_out.path().join("sha256");
    browse_with_timeout(
        json!([
            ["init-script", PICKER_STAND_IN],
            // On a phone-sized screen nothing is wider than the screen.
            ["viewport", 375, 740],
            ["open", forcing(&link, "picker")],
            ["text", "large.bin"],
            ["js", "document.documentElement.scrollWidth <= 375"],
            ["text", "written straight to the place you pick"],
            ["click", "#download-all"],
            [
                "heap",
                "document.body.innerText.includes('All 2 files are downloaded.')",
                HEAP_LIMIT
            ],
            [
                "save",
                opfs_sha256("large.bin"),
                hash_path.to_str().unwrap()
            ],
        ]),
        900,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&hash_path).unwrap(),
        sha256_hex(&large)
    );

    // The server's disk holds neither a plaintext nor the key.
    let key_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&transfer_key)
        .unwrap();
    for path in walk(&app.data_dir) {
        let bytes = std::fs::read(&path).unwrap();
        for needle in [MARKER, key_bytes.as_slice(), transfer_key.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a secret",
                path.display()
            );
        }
    }

    // One byte flipped in the stored ciphertext of the large file: both paths fail
    // visibly and leave no complete-looking file.
    let stored = sealbox::crypto::sbx1::HEADER_LEN + LARGE + 16 * LARGE.div_ceil(65536);
    let blob = walk(&app.data_dir)
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() == stored as u64)
        .expect("the large file's blob");
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[stored / 2] ^= 0x40;
    std::fs::write(&blob, &bytes).unwrap();
    drop(bytes);

    let downloads = tempfile::tempdir().unwrap();
    browse_with_timeout(
        json!([
            ["downloads", downloads.path().to_str().unwrap()],
            ["open", forcing(&link, "worker")],
            ["click", "#files li:nth-child(2) .file-download"],
            ["text", "did not decrypt"],
            [
                "js",
                "document.querySelector('#files li:nth-child(2)').dataset.state === 'failed'"
            ],
        ]),
        600,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let left = walk(downloads.path());
    assert!(
        !left.iter().any(|p| p.file_name().unwrap() == "large.bin"),
        "a failed download looks complete: {left:?}"
    );

    let has_out = hash_out.path().join("has");
    browse_with_timeout(
        json!([
            ["init-script", PICKER_STAND_IN],
            ["open", forcing(&link, "picker")],
            ["click", "#files li:nth-child(2) .file-download"],
            ["text", "did not decrypt"],
            ["save", opfs_has("large.bin"), has_out.to_str().unwrap()],
        ]),
        600,
    )
    .await;
    assert_eq!(std::fs::read_to_string(&has_out).unwrap(), "false");
}

#[tokio::test]
async fn the_transfer_page_and_its_worker_are_served_with_a_strict_policy_and_no_referrer() {
    use sealbox::http::ui::{REFERRER_POLICY, UI_CSP};
    let app = TestApp::spawn().await;
    let page = format!("/t/{}", Uuid::now_v7());
    let response = app.get(&page).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], UI_CSP);
    assert_eq!(headers["referrer-policy"], REFERRER_POLICY);
    assert_eq!(headers["cache-control"], "no-cache");
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("style="));
    assert!(html.contains("/assets/receive.js"));

    // Every module the page and the worker load is served.
    for asset in [
        "/assets/receive.js",
        "/assets/js/api.js",
        "/assets/js/bytes.js",
        "/assets/js/capabilities.js",
        "/assets/js/receiver.js",
        "/assets/js/sbx1.js",
        "/assets/js/transfer-e2e.js",
        "/assets/js/transfer-link.js",
    ] {
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(
            response.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
    }
    // The worker is served under /t/ (its scope), revalidated on every load.
    let worker = app.get("/t/download-worker.js").await;
    assert_eq!(worker.status(), 200);
    assert_eq!(
        worker.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(worker.headers()["cache-control"], "no-cache");
    assert_eq!(worker.headers()["content-security-policy"], UI_CSP);

    // Only transfer ids open the page; other paths under /t/ are not found.
    for path in ["/t/not-a-uuid", "/t/", "/t/download/abc", "/transfer.html"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
    let post = app.client.post(app.url(&page)).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receive_page_explains_bad_links_gone_transfers_and_passwords() {
    use crate::support::{json_of, s};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use reqwest::Method;
    let (app, key) = server_with_key().await;
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("plans.txt");
    std::fs::write(&path, b"the plans").unwrap();
    let link = cli_send(&app, &key, vec![path.to_str().unwrap().to_owned()]).await;
    let (page, fragment) = link.split_once('#').unwrap();
    // The link's secret (`s=`) without its key (`k=`).
    let secret = fragment.split('&').find(|p| p.starts_with("s=")).unwrap();
    let other_key = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let nothing_listed = NOTHING_LISTED;
    browse_with_timeout(
        json!([
            // No fragment at all: without its secret the server knows no such transfer.
            ["open", page],
            ["text", "no transfer answers to it"],
            ["js", nothing_listed],
            // No key, a malformed key, another key, an unknown transfer: nothing is offered.
            ["open", format!("{page}#{secret}")],
            ["text", "This link is incomplete or wrong"],
            ["text", "lacks the key"],
            ["js", nothing_listed],
            ["open", format!("{page}#{secret}&k=not-a-key")],
            [
                "text",
                "This link is incomplete or wrong: the link's key is not 32 bytes"
            ],
            ["js", nothing_listed],
            ["open", format!("{page}#{secret}&k={other_key}")],
            ["text", "its key does not open this transfer"],
            ["js", nothing_listed],
            [
                "open",
                app.url(&format!("/t/{}#{secret}&k={other_key}", Uuid::now_v7()))
            ],
            ["text", "no transfer answers to it"],
            ["js", nothing_listed],
        ]),
        30,
    )
    .await;

    // Revoked: the page says so.
    let id = page.rsplit('/').next().unwrap();
    let revoked = app
        .send_as(
            Method::DELETE,
            &format!("/v1/transfers/{id}"),
            &key,
            None,
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    browse_with_timeout(
        json!([
            ["open", link],
            ["text", "The transfer was revoked."],
            ["js", nothing_listed]
        ]),
        30,
    )
    .await;

    // A server-sealed transfer with a password: the server's 401 message, then the files,
    // downloaded through the same page without client decryption.
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/transfers",
            &key,
            Some(&json!({"name": "Server plans", "password": "correct horse battery"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b"sealed by the server ".repeat(10_000);
    let uploaded = app
        .client
        .post(s(&created, "uploadUrl"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", body.len().to_string())
        .header(
            "Upload-Metadata",
            format!(
                "filename {},encryption {}",
                b64.encode("plain.txt"),
                b64.encode("server")
            ),
        )
        .header("Content-Type", "application/offset+octet-stream")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let server_id = s(&created, "id");
    json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/transfers/{server_id}/finalize"),
            &key,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    let downloads = tempfile::tempdir().unwrap();
    browse_with_timeout(
        json!([
            ["downloads", downloads.path().to_str().unwrap()],
            ["open", forcing(&s(&created, "link"), "worker")],
            ["text", "Server plans"],
            ["text", "Encrypted by the server"],
            ["fill", "#transfer-password", "wrong horse battery"],
            ["click", "#password-form button[type=submit]"],
            ["text", "Wrong password."],
            ["js", "document.getElementById('transfer-password').getAttribute('aria-invalid') === 'true'"],
            ["js", "document.getElementById('downloads').hidden"],
            ["fill", "#transfer-password", "correct horse battery"],
            ["click", "#password-form button[type=submit]"],
            ["text", "plain.txt"],
            ["click", "#files li:nth-child(1) .file-download"],
            ["text", "plain.txt is downloaded."],
            ["downloaded", 1],
        ]),
        60,
    )
    .await;
    assert_eq!(
        downloaded(downloads.path(), "plain.txt", body.len()).await,
        body
    );
}

// --- The send page, /send --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_sent_from_the_browser_is_received_byte_identical_by_the_cli() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    let (app, _key) = server_with_key().await;
    let files = tempfile::tempdir().unwrap();
    let large = random_bytes(20 * MIB + 12_345, 11, None);
    let small = random_bytes(70_000, 13, Some(MARKER));
    let large_path = files.path().join("video.bin");
    let small_path = files.path().join("Résumé 2026.txt");
    std::fs::write(&large_path, &large).unwrap();
    std::fs::write(&small_path, &small).unwrap();
    let out = tempfile::tempdir().unwrap();
    let link_path = out.path().join("link");
    browse_with_timeout(
        json!([
            // Signed out, /send sends the user to sign in.
            ["open", app.url("/send")],
            ["text", "Sign in to send files."],
            ["open", app.url("/login?next=/send")],
            ["fill", "#login-email", ADMIN_EMAIL],
            ["fill", "#login-password", "not the password"],
            ["click", "#login-form button[type=submit]"],
            ["js", "!document.getElementById('problem').hidden"],
            ["fill", "#login-password", ADMIN_PASSWORD],
            ["click", "#login-form button[type=submit]"],
            [
                "js",
                "location.pathname === '/send' && !document.getElementById('send-form').hidden"
            ],
            // A reload keeps the session (the refresh token is in this tab's storage).
            ["open", app.url("/send")],
            ["js", "!document.getElementById('send-form').hidden"],
            ["js", "!Object.keys(localStorage).length"],
            ["text", "End-to-end encrypted"],
            ["viewport", 375, 740],
            ["js", "document.documentElement.scrollWidth <= 375"],
            [
                "files",
                "#send-files",
                [small_path.to_str().unwrap(), large_path.to_str().unwrap()]
            ],
            ["fill", "#send-message", "From the browser"],
            ["click", "#send-form button[type=submit]"],
            ["text", "The key is in the link"],
            [
                "save",
                "document.getElementById('link').value",
                link_path.to_str().unwrap()
            ],
        ]),
        120,
    )
    .await;
    let link = std::fs::read_to_string(&link_path).unwrap();
    assert!(
        link.starts_with(&app.url("/t/")) && link.contains("k="),
        "{link}"
    );

    // `sealbox receive` opens what the browser sealed.
    let home = tempfile::tempdir().unwrap();
    let received = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(crate::support::SEALBOX_BIN);
    command
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["receive", &link, "-o", received.path().to_str().unwrap()]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "sealbox receive: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read(received.path().join("Résumé 2026.txt")).unwrap(),
        small
    );
    assert!(std::fs::read(received.path().join("video.bin")).unwrap() == large);

    // The server holds neither the plaintext nor the key, and no file name.
    let transfer_key = link.split_once("k=").unwrap().1.to_owned();
    let key_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&transfer_key)
        .unwrap();
    for path in walk(&app.data_dir) {
        let bytes = std::fs::read(&path).unwrap();
        for needle in [
            MARKER,
            key_bytes.as_slice(),
            transfer_key.as_bytes(),
            "Résumé".as_bytes(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a secret",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_mib_file_sent_from_the_send_page_downloads_byte_identical_through_both_paths() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    // Download tokens live 2 s (the least): each download outlives them, so the page
    // renews them (through the worker path too) and the second file starts under a
    // renewed one.
    const TTL_SECS: u32 = 2;
    let app = TestApp::spawn_with(|c| c.limits.download_token_ttl_secs = TTL_SECS).await;
    app.setup_admin().await;
    let files = tempfile::tempdir().unwrap();
    let large = random_bytes(LARGE, 31, Some(MARKER));
    let small = random_bytes(150_000, 37, None);
    let large_path = files.path().join("launch-footage.mov");
    let small_path = files.path().join("shot list.txt");
    std::fs::write(&large_path, &large).unwrap();
    std::fs::write(&small_path, &small).unwrap();
    // Sealed in the browser: the data directory must not hold it.
    const MESSAGE: &str = "The raw launch footage and the shot list, for Friday’s cut.";
    let out = tempfile::tempdir().unwrap();
    let shots = tempfile::tempdir().unwrap();
    let link_path = out.path().join("link");

    // Sent once, from /send (a desktop window, for the README's screenshot mid-upload).
    browse_with_timeout(
        json!([
            ["open", app.url("/login?next=/send")],
            ["fill", "#login-email", ADMIN_EMAIL],
            ["fill", "#login-password", ADMIN_PASSWORD],
            ["click", "#login-form button[type=submit]"],
            [
                "js",
                "location.pathname === '/send' && !document.getElementById('send-form').hidden"
            ],
            [
                "files",
                "#send-files",
                [large_path.to_str().unwrap(), small_path.to_str().unwrap()]
            ],
            ["fill", "#send-name", "Launch footage"],
            ["fill", "#send-message", MESSAGE],
            ["fill", "#send-recipients", "press@example.com"],
            ["click", "#send-form button[type=submit]"],
            [
                "js",
                "document.getElementById('total-progress').value > 0.2"
            ],
            ["text", " left"],
            crate::web_ui::readme_screenshot(shots.path(), "send.png", None),
            ["text", "The key is in the link"],
            [
                "save",
                "document.getElementById('link').value",
                link_path.to_str().unwrap()
            ],
        ]),
        900,
    )
    .await;
    let link = std::fs::read_to_string(&link_path).unwrap();
    let transfer_key = link.split_once("k=").unwrap().1.to_owned();

    // Received twice. Through the download worker: the browser's download manager writes
    // the files, the tab (page and worker) under the bound all the while.
    let downloads = tempfile::tempdir().unwrap();
    let renewals = out.path().join("renewals");
    let elapsed = out.path().join("elapsed");
    browse_with_timeout(
        json!([
            ["downloads", downloads.path().to_str().unwrap()],
            ["init-script", COUNT_RENEWALS],
            ["open", forcing(&link, "worker")],
            ["text", MESSAGE],
            ["text", "shot list.txt"],
            ["text", "built-in helper"],
            ["js", "(window.__started = performance.now(), true)"],
            ["click", "#download-all"],
            [
                "heap",
                "document.body.innerText.includes('All 2 files are downloaded.')",
                HEAP_LIMIT
            ],
            ["downloaded", 2],
            [
                "save",
                "String(performance.now() - window.__started)",
                elapsed.to_str().unwrap()
            ],
            [
                "save",
                "String(window.__renewals)",
                renewals.to_str().unwrap()
            ],
        ]),
        900,
    )
    .await;
    let got = downloaded(downloads.path(), "launch-footage.mov", LARGE).await;
    assert!(got == large, "the worker's download is byte-identical");
    drop(got);
    assert_eq!(
        downloaded(downloads.path(), "shot list.txt", small.len()).await,
        small
    );
    // The second file started after the unlock's token expired (the first one took longer
    // than a token lives, and renewing stops the renewed token): under a renewed one.
    let millis: f64 = std::fs::read_to_string(&elapsed).unwrap().parse().unwrap();
    assert!(
        millis > f64::from(TTL_SECS) * 1000.0,
        "the download took {millis} ms, not longer than a token lives"
    );
    let renewed: u32 = std::fs::read_to_string(&renewals).unwrap().parse().unwrap();
    assert!(renewed >= 1, "the page renewed its token {renewed} times");

    // Straight into the picked folder (a desktop window, for the README's screenshot).
    let large_hash = out.path().join("large.sha256");
    let small_hash = out.path().join("small.sha256");
    browse_with_timeout(
        json!([
            ["init-script", PICKER_STAND_IN],
            ["open", forcing(&link, "picker")],
            ["text", MESSAGE],
            ["text", "written straight to the place you pick"],
            ["click", "#download-all"],
            [
                "heap",
                "document.body.innerText.includes('All 2 files are downloaded.')",
                HEAP_LIMIT
            ],
            crate::web_ui::readme_screenshot(shots.path(), "receive.png", None),
            [
                "save",
                opfs_sha256("launch-footage.mov"),
                large_hash.to_str().unwrap()
            ],
            [
                "save",
                opfs_sha256("shot list.txt"),
                small_hash.to_str().unwrap()
            ],
        ]),
        900,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&large_hash).unwrap(),
        sha256_hex(&large)
    );
    assert_eq!(
        std::fs::read_to_string(&small_hash).unwrap(),
        sha256_hex(&small)
    );
    // Two downloads (one per receive), however many tokens each took.
    let counted: Vec<i64> = app.query("SELECT downloads FROM transfers", |row| row.get(0));
    assert_eq!(counted, [2]);

    // The server's disk holds neither the plaintext, nor the key, nor the message.
    let key_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&transfer_key)
        .unwrap();
    assert_data_dir_lacks(
        &app,
        &[
            MARKER,
            &key_bytes,
            transfer_key.as_bytes(),
            MESSAGE.as_bytes(),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_then_send_then_the_transfers_page_lists_and_revokes() {
    let app = TestApp::spawn().await;
    let token = app
        .setup_token
        .clone()
        .expect("a fresh server has a setup token");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("minutes.txt");
    std::fs::write(&path, b"the minutes").unwrap();
    browse_with_timeout(
        json!([
            ["open", app.url("/setup")],
            ["text", "carries no token"],
            ["open", app.url(&format!("/setup?token={token}"))],
            ["js", "!location.href.includes('token')"],
            ["fill", "#setup-org", "Initech"],
            ["fill", "#setup-name", "Peter Gibbons"],
            ["fill", "#setup-email", "peter@example.com"],
            ["fill", "#setup-password", "tangerine-stapler-nine"],
            ["fill", "#setup-password-repeat", "tangerine-stapler-nine"],
            ["click", "#setup-form button[type=submit]"],
            [
                "js",
                "location.pathname === '/send' && !document.getElementById('send-form').hidden"
            ],
            ["files", "#send-files", [path.to_str().unwrap()]],
            ["fill", "#send-name", "Minutes"],
            ["fill", "#send-max", "3"],
            [
                "fill",
                "#send-recipients",
                "legal@example.com, ops@example.com"
            ],
            ["click", "#send-form button[type=submit]"],
            ["text", "The key is in the link"],
            ["open", app.url("/transfers")],
            ["text", "Minutes"],
            ["text", "1 end-to-end encrypted file"],
            ["text", "downloads left: 3"],
            [
                "js",
                "document.querySelector('#transfers li').dataset.status === 'ready'"
            ],
            ["click", "#transfers li .transfer-revoke"],
            [
                "js",
                "document.querySelector('#transfers li').dataset.status === 'revoked'"
            ],
        ]),
        60,
    )
    .await;
    // The account exists, and the transfer is revoked on the server.
    let pair = app
        .login("peter@example.com", "tangerine-stapler-nine")
        .await;
    assert_eq!(pair["user"]["organizations"][0]["name"], "Initech");
    let list = crate::support::json_of(
        app.get_as("/v1/transfers", &crate::support::s(&pair, "accessToken"))
            .await,
        200,
    )
    .await;
    assert_eq!(list[0]["name"], "Minutes");
    assert_eq!(list[0]["status"], "revoked");
    let recipients: Vec<&str> = list[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["email"].as_str())
        .collect();
    assert_eq!(recipients, ["legal@example.com", "ops@example.com"]);
}

/// A network that hangs: every tus PATCH after the page's first never answers, until the
/// test sets `test-no-stall` in the tab's sessionStorage.
const STALL_AFTER_FIRST_PATCH: &str = "\
    const realFetch = window.fetch; let patches = 0;\
    window.fetch = (url, init) => {\
      if (init && init.method === 'PATCH' && !sessionStorage.getItem('test-no-stall') && ++patches > 1) {\
        return new Promise(() => {});\
      }\
      return realFetch(url, init);\
    };";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_interrupted_by_a_reload_resumes_with_the_same_files_and_refuses_changed_ones() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    let files = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let big = random_bytes(24 * MIB + 1234, 17, None);
    let path = files.path().join("big.bin");
    std::fs::write(&path, &big).unwrap();
    // Same name, other contents: what a file changed on disk since looks like.
    let changed = other.path().join("big.bin");
    std::fs::write(&changed, random_bytes(24 * MIB + 99, 19, None)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let link_path = out.path().join("link");
    browse_with_timeout(
        json!([
            ["open", app.url("/login?next=/send")],
            ["fill", "#login-email", ADMIN_EMAIL],
            ["fill", "#login-password", ADMIN_PASSWORD],
            ["click", "#login-form button[type=submit]"],
            ["js", "location.pathname === '/send' && !document.getElementById('send-form').hidden"],
            // The connection hangs after the first PATCH, so the reload lands mid-upload.
            ["init-script", STALL_AFTER_FIRST_PATCH],
            ["files", "#send-files", [path.to_str().unwrap()]],
            ["click", "#send-form button[type=submit]"],
            ["js", "document.getElementById('total-progress').value > 0"],
            ["open", app.url("/send")],
            ["text", "was interrupted"],
            ["files", "#resume-files", [changed.to_str().unwrap()]],
            ["click", "#resume-form button[type=submit]"],
            ["text", "big.bin changed on disk since the upload started"],
            ["js", "(sessionStorage.setItem('test-no-stall', '1'), true)"],
            ["files", "#resume-files", [path.to_str().unwrap()]],
            ["click", "#resume-form button[type=submit]"],
            ["text", "The key is in the link"],
            ["text", "resuming from"],
            ["js", "!document.getElementById('resume-note').textContent.includes('resuming from 0 bytes')"],
            ["js", "sessionStorage.getItem('sealbox.pending-send') === null"],
            ["save", "document.getElementById('link').value", link_path.to_str().unwrap()],
        ]),
        120,
    )
    .await;
    let link = std::fs::read_to_string(&link_path).unwrap();
    let home = tempfile::tempdir().unwrap();
    let received = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(crate::support::SEALBOX_BIN);
    command
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["receive", &link, "-o", received.path().to_str().unwrap()]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "sealbox receive: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::read(received.path().join("big.bin")).unwrap() == big);
}

// --- Folders, sealed messages and the member picker (send side) -------------------------

/// A folder `Album/` with files at three depths; returns (the folder, [(relative path,
/// bytes)]).
fn album(root: &std::path::Path) -> (std::path::PathBuf, Vec<(&'static str, Vec<u8>)>) {
    let dir = root.join("Album");
    std::fs::create_dir_all(dir.join("raw/deeper")).unwrap();
    let files = vec![
        ("Album/cover.txt", random_bytes(3_000, 21, Some(MARKER))),
        ("Album/raw/b.bin", random_bytes(200_000, 22, None)),
        ("Album/raw/deeper/c d.txt", random_bytes(70_001, 23, None)),
    ];
    for (path, bytes) in &files {
        std::fs::write(root.join(path), bytes).unwrap();
    }
    (dir, files)
}

/// `sealbox receive LINK -o DIR`; returns its stderr.
async fn cli_receive(link: &str, dir: &std::path::Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(crate::support::SEALBOX_BIN);
    command
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["receive", link, "-o", dir.to_str().unwrap()]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "sealbox receive: {stderr}");
    stderr
}

/// Fails if any file of the data directory holds one of `needles`.
fn assert_data_dir_lacks(app: &TestApp, needles: &[&[u8]]) {
    let files = walk(&app.data_dir);
    assert!(files.iter().any(|p| p.ends_with("sealbox.db")));
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == *needle),
                "{} holds {:?}",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_page_modules_seal_messages_walk_dropped_folders_and_check_paths() {
    use sealbox::crypto::transfer_e2e::{open_message, seal_message};
    let app = TestApp::spawn().await;
    let key = Dek::generate();
    let transfer_id = Uuid::now_v7();
    let rust_sealed = seal_message(&key, transfer_id, "from Rust — grüße");
    let input = json!({
        "key": encode_key(&key),
        "transferId": transfer_id.to_string(),
        "rustSealed": rust_sealed,
        "vectors": serde_json::from_str::<Value>(E2E_VECTORS).unwrap(),
    });
    // Fake FileSystemEntry objects, as DataTransferItem.webkitGetAsEntry() gives for a
    // dropped folder (readEntries answers in batches, then an empty one).
    let script = format!(
        "(async () => {{
          const input = {input};
          const e2e = await import('/assets/js/transfer-e2e.js');
          const sender = await import('/assets/js/sender.js');
          const key = e2e.decodeKey(input.key);
          const file = (name, text) => ({{ isFile: true, isDirectory: false, name,
            file: (ok) => ok(new File([text], name)) }});
          const dir = (name, batches) => ({{ isFile: false, isDirectory: true, name,
            createReader: () => {{ const left = [...batches, []];
              return {{ readEntries: (ok) => ok(left.shift()) }}; }} }});
          const dropped = [dir('Trip', [[file('b.txt', 'bb'), dir('day 1', [[file('a.jpg', 'a')]])],
                                        [file('notes.md', 'n')]]), file('loose.txt', 'l')];
          const files = await sender.filesFromEntries(dropped);
          // The committed vectors open here as in Rust and Python, and reseal to the same text.
          const v = input.vectors;
          const vkey = e2e.decodeKey(v.key_text);
          const hexBytes = (hex) => Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
          const vectors = [];
          for (const name of v.names) {{
            const opened = await e2e.openName(vkey, v.transfer_id, name.sealed);
            const again = await e2e.sealName(vkey, v.transfer_id, opened.fileId, opened.name, hexBytes(name.nonce));
            vectors.push([opened.name === name.path_utf8, e2e.splitRelativePath(opened.name).length > 0, again === name.sealed]);
          }}
          for (const message of v.messages) {{
            const opened = await e2e.openMessage(vkey, v.transfer_id, message.sealed);
            const again = await e2e.sealMessage(vkey, v.transfer_id, opened, hexBytes(message.nonce));
            vectors.push([opened === message.message_utf8, again === message.sealed]);
          }}
          const vectorPaths = v.refused_paths.map((p) => {{ try {{ e2e.splitRelativePath(p); return false; }} catch {{ return true; }} }})
            .concat(v.accepted_paths.map((p) => {{ try {{ e2e.splitRelativePath(p); return true; }} catch {{ return false; }} }}));
          const refused = ['../evil', '/abs', 'a\\\\b', 'C:/x', 'a//b', 'a/./b', ''].map((p) => {{
            try {{ e2e.splitRelativePath(p); return 'accepted ' + p; }} catch (error) {{ return error.kind; }} }});
          return JSON.stringify({{
            paths: files.map(sender.sendName),
            vectors,
            vectorPaths,
            check: sender.checkFiles(files),
            duplicate: sender.checkFiles([...files, files[0]]),
            refused,
            split: e2e.splitRelativePath('Trip/day 1/a.jpg'),
            safe: ['a/b/c.txt', '../../.bashrc', 'x\\\\y', '', '..'].map(e2e.safeDownloadName),
            opened: await e2e.openMessage(key, input.transferId, input.rustSealed),
            wrongKey: await e2e.openMessage(e2e.generateKey(), input.transferId, input.rustSealed)
              .then(() => 'opened', (error) => error.kind),
            browserSealed: await e2e.sealMessage(key, input.transferId, 'from the browser ✓'),
          }});
        }})()"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    browse_with_timeout(
        json!([
            ["open", app.url("/")],
            ["save", script, out.to_str().unwrap()]
        ]),
        60,
    )
    .await;
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        got["paths"],
        json!([
            "Trip/b.txt",
            "Trip/day 1/a.jpg",
            "Trip/notes.md",
            "loose.txt"
        ])
    );
    let vectors: Value = serde_json::from_str(E2E_VECTORS).unwrap();
    let expected: Vec<Value> = vectors["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|_| json!([true, true, true]))
        .chain(
            vectors["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|_| json!([true, true])),
        )
        .collect();
    assert_eq!(got["vectors"], Value::Array(expected));
    let paths = vectors["refused_paths"].as_array().unwrap().len()
        + vectors["accepted_paths"].as_array().unwrap().len();
    assert_eq!(got["vectorPaths"], json!(vec![true; paths]));
    assert_eq!(got["check"], Value::Null);
    assert!(
        got["duplicate"].as_str().unwrap().contains("picked twice"),
        "{got}"
    );
    assert_eq!(got["refused"], json!(vec!["path"; 7]));
    assert_eq!(got["split"], json!(["Trip", "day 1", "a.jpg"]));
    assert_eq!(
        got["safe"],
        json!(["a_b_c.txt", "bashrc", "x_y", "download", "download"])
    );
    assert_eq!(got["opened"], "from Rust — grüße");
    assert_eq!(got["wrongKey"], "unauthentic");
    assert_eq!(
        open_message(&key, transfer_id, got["browserSealed"].as_str().unwrap()).unwrap(),
        "from the browser ✓"
    );
    assert!(open_message(&key, Uuid::now_v7(), got["browserSealed"].as_str().unwrap()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_a_member_and_a_sealed_message_sent_from_the_browser_arrive_with_the_cli() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let token = crate::support::s(&pair, "accessToken");
    let org = crate::support::s(&pair["user"]["organizations"][0], "id");
    app.invite_and_register(&token, &org, "dana.member@example.com", "member")
        .await;
    let root = tempfile::tempdir().unwrap();
    let (folder, files) = album(root.path());
    const MESSAGE: &str = "BROWSER-SEALED-MESSAGE: the album, see raw/ for originals";
    let out = tempfile::tempdir().unwrap();
    let link_path = out.path().join("link");
    let search = "document.getElementById('send-member-search')";
    browse_with_timeout(
        json!([
            ["open", app.url("/login?next=/send")],
            ["fill", "#login-email", ADMIN_EMAIL],
            ["fill", "#login-password", ADMIN_PASSWORD],
            ["click", "#login-form button[type=submit]"],
            ["js", "location.pathname === '/send' && !document.getElementById('send-form').hidden"],
            // The folder input: each file keeps its path inside the picked folder.
            ["files", "#send-folder", [folder.to_str().unwrap()]],
            ["text", "Album/raw/deeper/c d.txt"],
            ["text", "3 files"],
            ["fill", "#send-message", MESSAGE],
            // The member picker, by keyboard: type, the listbox opens, Enter picks the
            // highlighted member (a keydown the page handles as a key press).
            ["fill", "#send-member-search", "dana"],
            ["js", format!("{search}.getAttribute('aria-expanded') === 'true' && document.querySelectorAll('#send-member-options [role=option]').length === 1")],
            ["js", format!("{search}.getAttribute('aria-activedescendant') === 'send-member-option-0'")],
            ["js", format!("({search}.dispatchEvent(new KeyboardEvent('keydown', {{ key: 'Enter', bubbles: true, cancelable: true }})), true)")],
            ["text", "Added dana.member"],
            ["js", "document.querySelector('#send-members li').textContent.includes('dana.member@example.com')"],
            ["js", format!("{search}.getAttribute('aria-expanded') === 'false' && document.activeElement === {search}")],
            // Removing and adding again, by mouse this time.
            ["click", "#send-members li button"],
            ["js", "document.querySelectorAll('#send-members li').length === 0"],
            ["fill", "#send-member-search", "dana.mem"],
            ["js", "document.querySelectorAll('#send-member-options [role=option]').length === 1"],
            ["click", "#send-member-option-0"],
            ["text", "Added dana.member"],
            ["click", "#send-form button[type=submit]"],
            ["text", "The key is in the link"],
            ["save", "document.getElementById('link').value", link_path.to_str().unwrap()],
        ]),
        120,
    )
    .await;
    let link = std::fs::read_to_string(&link_path).unwrap();

    // `sealbox receive` recreates the folder and prints the message it opened.
    let received = tempfile::tempdir().unwrap();
    let stderr = cli_receive(&link, received.path()).await;
    assert!(stderr.contains(MESSAGE), "{stderr}");
    for (path, bytes) in &files {
        assert!(
            std::fs::read(received.path().join(path)).unwrap() == *bytes,
            "{path}"
        );
    }
    assert_eq!(walk(received.path()).len(), files.len());

    // The member was added by their email; the server holds the message only sealed.
    let list = crate::support::json_of(app.get_as("/v1/transfers", &token).await, 200).await;
    assert_eq!(
        list[0]["recipients"],
        json!([{"email": "dana.member@example.com"}])
    );
    assert!(list[0].get("message").is_none(), "{}", list[0]);
    assert!(
        list[0]["sealedMessage"]
            .as_str()
            .is_some_and(|m| m.len() > 40)
    );
    assert_data_dir_lacks(&app, &[MESSAGE.as_bytes(), b"Album/raw", MARKER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_sent_by_the_cli_shows_its_message_and_paths_in_the_browser() {
    let (app, key) = server_with_key().await;
    let root = tempfile::tempdir().unwrap();
    let (folder, files) = album(root.path());
    const MESSAGE: &str = "CLI-SEALED-MESSAGE for the browser";
    let link = cli_send(
        &app,
        &key,
        vec![
            folder.to_str().unwrap().to_owned(),
            "--message".to_owned(),
            MESSAGE.to_owned(),
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let hash_path = out.path().join("sha256");
    // Into a picked folder: the tree is recreated in it.
    let nested_hash = "(async () => { let dir = await navigator.storage.getDirectory();\
        for (const part of ['Album', 'raw', 'deeper']) dir = await dir.getDirectoryHandle(part);\
        const file = await (await dir.getFileHandle('c d.txt')).getFile();\
        const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));\
        return Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join(''); })()";
    browse_with_timeout(
        json!([
            ["init-script", PICKER_STAND_IN],
            ["open", forcing(&link, "picker")],
            ["text", MESSAGE],
            ["text", "Album/raw/deeper/c d.txt"],
            ["click", "#download-all"],
            ["text", "All 3 files are downloaded."],
            ["save", nested_hash, hash_path.to_str().unwrap()],
        ]),
        120,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&hash_path).unwrap(),
        sha256_hex(&files[2].1)
    );
    // Through the download worker, which cannot make folders: the path's segments joined.
    let downloads = tempfile::tempdir().unwrap();
    browse_with_timeout(
        json!([
            ["downloads", downloads.path().to_str().unwrap()],
            ["open", forcing(&link, "worker")],
            ["text", MESSAGE],
            ["click", "#files li:nth-child(2) .file-download"],
            ["text", "is downloaded"],
            ["downloaded", 1],
        ]),
        120,
    )
    .await;
    assert_eq!(
        downloaded(downloads.path(), "Album_raw_b.bin", files[1].1.len()).await,
        files[1].1
    );
    // A wrong key: the message does not open, so the page says the link is wrong.
    let (bare, _) = link.split_once("&k=").unwrap();
    browse_with_timeout(
        json!([
            ["open", format!("{bare}&k={}", "A".repeat(43))],
            ["text", "This link is incomplete or wrong"],
            ["no-text", MESSAGE],
        ]),
        60,
    )
    .await;
    assert_data_dir_lacks(&app, &[MESSAGE.as_bytes(), b"Album/raw", MARKER]);
}
