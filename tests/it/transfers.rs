//! Transfers: both modes end to end (server-sealed and end-to-end), the password gate and
//! its lockout, `maxDownloads` under concurrent downloads, expiry, revocation, validation
//! and organization scoping.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s};
use sealbox::service::login_throttle::FREE_FAILURES;
use sealbox::service::transfers::MAX_RECIPIENTS;

struct Sender {
    app: TestApp,
    token: String,
    org: String,
}

async fn sender() -> Sender {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    Sender {
        token: s(&pair, "accessToken"),
        app,
        org,
    }
}

/// Bytes that do not repeat within a segment, with a marker to look for on disk.
fn payload(len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect();
    let marker = b"PLAINTEXT-MARKER-7f3a9c";
    bytes[1000..1000 + marker.len()].copy_from_slice(marker);
    bytes
}

async fn create(o: &Sender, body: Value) -> reqwest::Response {
    o.app
        .send_as(Method::POST, "/v1/transfers", &o.token, Some(&body), None)
        .await
}

async fn created(o: &Sender, body: Value) -> Value {
    let transfer = json_of(create(o, body).await, 201).await;
    remember_secret(&transfer);
    transfer
}

/// The link secrets of the transfers this module created, by transfer id: the tests
/// below act as link holders who have the whole link.
static LINK_SECRETS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, String>>,
> = std::sync::LazyLock::new(Default::default);

fn remember_secret(transfer: &Value) {
    let link = s(transfer, "link");
    let secret = link
        .split_once("#s=")
        .map(|(_, secret)| secret.split('&').next().unwrap_or("").to_owned())
        .expect("a transfer link carries its secret");
    LINK_SECRETS
        .lock()
        .unwrap()
        .insert(s(transfer, "id"), secret);
}

/// The secret of the transfer a public path names, if this module created it.
fn secret_for(path: &str) -> Option<String> {
    let rest = path.split_once("/v1/public/transfers/")?.1;
    let id = rest.split(['/', '?']).next()?;
    LINK_SECRETS.lock().unwrap().get(id).cloned()
}

/// A link holder's request: with `X-Transfer-Secret` when the link has one.
fn public_request(app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        app.url(path)
    };
    let request = app.client.request(method, url);
    match secret_for(path) {
        Some(secret) => request.header("X-Transfer-Secret", secret),
        None => request,
    }
}

async fn public_get(app: &TestApp, path: &str) -> reqwest::Response {
    public_request(app, Method::GET, path).send().await.unwrap()
}

async fn public_post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    public_request(app, Method::POST, path)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// tus creation with the whole body at the transfer's upload URL.
async fn upload(
    o: &Sender,
    transfer: &Value,
    name: &str,
    bytes: &[u8],
    encryption: &str,
) -> reqwest::Response {
    let metadata = format!(
        "filename {},encryption {}",
        B64.encode(name),
        B64.encode(encryption)
    );
    o.app
        .client
        .post(s(transfer, "uploadUrl"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .header("Upload-Metadata", metadata)
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn uploaded(
    o: &Sender,
    transfer: &Value,
    name: &str,
    bytes: &[u8],
    encryption: &str,
) -> String {
    let response = upload(o, transfer, name, bytes, encryption).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["Upload-Offset"].to_str().unwrap(),
        bytes.len().to_string()
    );
    response.headers()["X-Sealbox-File-Id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn finalize(o: &Sender, id: &str) -> reqwest::Response {
    o.app
        .send_as(
            Method::POST,
            &format!("/v1/transfers/{id}/finalize"),
            &o.token,
            None,
            None,
        )
        .await
}

/// A ready transfer of one file; returns (transfer, file id).
async fn ready(o: &Sender, body: Value, bytes: &[u8]) -> (Value, String) {
    let transfer = created(o, body).await;
    let file = uploaded(o, &transfer, "report.pdf", bytes, "server").await;
    json_of(finalize(o, &s(&transfer, "id")).await, 200).await;
    (transfer, file)
}

async fn download(
    app: &TestApp,
    transfer: &str,
    file: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut url = app.url(&format!("/v1/public/transfers/{transfer}/files/{file}"));
    if let Some(token) = token {
        url.push_str(&format!("?token={token}"));
    }
    public_request(app, Method::GET, &url).send().await.unwrap()
}

/// The sender's view of a transfer (`GET /v1/transfers/{id}`).
async fn sender_view(o: &Sender, id: &str) -> Value {
    json_of(
        o.app.get_as(&format!("/v1/transfers/{id}"), &o.token).await,
        200,
    )
    .await
}

/// Moves a transfer's expiry into the past, as if its time had run out (the sweeper has
/// not necessarily seen it yet).
pub(crate) fn expire_now(app: &TestApp, id: &str) {
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute(
        "UPDATE transfers SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
        [id],
    )
    .unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    app.query(
        &format!("SELECT data FROM outbox_events WHERE type = '{kind}' ORDER BY seq"),
        |r| r.get::<_, String>(0),
    )
    .into_iter()
    .map(|d| serde_json::from_str(&d).unwrap())
    .collect()
}

#[tokio::test]
async fn server_sealed_transfer_round_trip_with_range_counting_events_and_notification() {
    let o = sender().await;
    let bytes = payload(200_000);
    let transfer = created(
        &o,
        json!({"name": "Q3 contracts", "message": "Signed copies", "maxDownloads": 5,
               "recipients": [{"email": "legal@example.com"}]}),
    )
    .await;
    let id = s(&transfer, "id");
    assert_eq!(transfer["status"], "pending");
    assert_eq!(transfer["mode"], "server");
    let link = s(&transfer, "link");
    let (path, secret) = link.split_once("#s=").expect("the link carries its secret");
    assert!(path.ends_with(&format!("/t/{id}")), "{link}");
    assert_eq!(secret.len(), 43, "{link}");
    // Not visible to link holders before finalize.
    assert_eq!(
        public_get(&o.app, &format!("/v1/public/transfers/{id}"))
            .await
            .status(),
        404
    );
    let file = uploaded(&o, &transfer, "report.pdf", &bytes, "server").await;
    // A server-sealed transfer takes no client ciphertext.
    assert_envelope(
        upload(&o, &transfer, "x.bin", b"abc", "client").await,
        422,
        "VALIDATION",
    )
    .await;
    let done = json_of(finalize(&o, &id).await, 200).await;
    assert_eq!(done["status"], "ready");
    assert_eq!(
        done["mailed"], false,
        "mail is off: the sender passes the link on"
    );
    // The upload token stops working at finalize.
    assert_eq!(
        upload(&o, &transfer, "late.bin", b"late", "server")
            .await
            .status(),
        404
    );

    let public = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        200,
    )
    .await;
    assert_eq!(public["name"], "Q3 contracts");
    assert_eq!(public["message"], "Signed copies");
    assert_eq!(public["passwordRequired"], false);
    assert_eq!(public["remainingDownloads"], 5);
    assert_eq!(public["files"][0]["name"], "report.pdf");
    assert_eq!(public["files"][0]["size"], bytes.len());

    let token = s(
        &json_of(unlock(&o.app, &id, "").await, 200).await,
        "downloadToken",
    );
    let whole = download(&o.app, &id, &file, Some(&token)).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let ranged = |token: Option<String>| {
        let mut url = o
            .app
            .url(&format!("/v1/public/transfers/{id}/files/{file}"));
        if let Some(token) = token {
            url.push_str(&format!("?token={token}"));
        }
        public_request(&o.app, Method::GET, &url)
            .header("Range", "bytes=70000-70999")
            .send()
    };
    // A range that continues the download under its token is not counted again.
    let part = ranged(Some(token.clone())).await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[70_000..71_000]);
    // Without a token a range must start at byte 0 (else it would skip the count).
    assert_envelope(ranged(None).await.unwrap(), 401, "UNAUTHORIZED").await;
    let mine = sender_view(&o, &id).await;
    assert_eq!(mine["downloads"], 1);
    assert_eq!(mine["remainingDownloads"], 4);
    assert_eq!(mine["recipients"][0]["email"], "legal@example.com");
    assert_eq!(
        mine["files"][0]["name"], "report.pdf",
        "the sender sees the names"
    );

    // The bytes on disk are SBX1 ciphertext.
    let blob = o
        .app
        .blobs
        .keys()
        .await
        .into_iter()
        .find(|key| key.contains(&file.replace('-', "")))
        .expect("the transfer's blob");
    let stored = o.app.blobs.read(&blob).await;
    assert_eq!(&stored[..4], b"SBX1");
    assert!(!contains(&stored, b"PLAINTEXT-MARKER-7f3a9c"));

    // Lists: status filter; and the files API cannot reach (here: delete) a transfer's file.
    let listed = json_of(
        o.app.get_as("/v1/transfers?status=ready", &o.token).await,
        200,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let none = json_of(
        o.app.get_as("/v1/transfers?status=revoked", &o.token).await,
        200,
    )
    .await;
    assert!(none.as_array().unwrap().is_empty());
    assert_eq!(
        o.app
            .delete_as(&format!("/v1/files/{file}"), &o.token)
            .await
            .status(),
        404
    );

    for kind in ["transfer.created", "transfer.ready", "transfer.downloaded"] {
        assert_eq!(events(&o.app, kind).len(), 1, "{kind}");
    }
    assert_eq!(
        events(&o.app, "transfer.downloaded")[0]["fileId"],
        file.as_str()
    );
    let notes = json_of(o.app.get_as("/v1/notifications", &o.token).await, 200).await;
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "transfer.downloaded"),
        "{notes}"
    );
}

#[tokio::test]
async fn end_to_end_transfer_stores_only_ciphertext_and_never_the_key() {
    use sealbox::crypto::sbx1::{decrypt_stream, encrypt_stream};
    use sealbox::crypto::transfer_e2e;
    let o = sender().await;
    let plaintext = payload(300_000);
    let transfer = created(&o, json!({"name": "1 file", "e2e": true})).await;
    let id = s(&transfer, "id");
    assert_eq!(transfer["e2e"], true);
    // The client's key and its encryption (docs/crypto.md, "End-to-end transfers"); the
    // key travels only in the link's fragment.
    let key = transfer_e2e::generate_key();
    let transfer_uuid: uuid::Uuid = id.parse().unwrap();
    let client_file_id = transfer_e2e::new_file_id();
    let mut ciphertext = Vec::new();
    encrypt_stream(plaintext.as_slice(), &mut ciphertext, &key, client_file_id).unwrap();
    let encrypted_name =
        transfer_e2e::seal_name(&key, transfer_uuid, client_file_id, "holiday-secret.jpg");
    // An e2e transfer refuses uploads the server would encrypt.
    assert_envelope(
        upload(&o, &transfer, "x", b"abc", "server").await,
        422,
        "VALIDATION",
    )
    .await;
    let file = uploaded(&o, &transfer, &encrypted_name, &ciphertext, "client").await;
    json_of(finalize(&o, &id).await, 200).await;

    let public = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        200,
    )
    .await;
    assert_eq!(public["e2e"], true);
    assert_eq!(public["files"][0]["name"], encrypted_name.as_str());
    assert_eq!(public["files"][0]["size"], ciphertext.len());
    let served = download(&o.app, &id, &file, None).await;
    assert_eq!(served.status(), 200);
    let served = served.bytes().await.unwrap();
    assert_eq!(served.as_ref(), ciphertext.as_slice());
    // A link holder with the key opens the name, and with the file id in it, the bytes.
    let (opened_id, opened_name) =
        transfer_e2e::open_name(&key, transfer_uuid, &s(&public["files"][0], "name")).unwrap();
    assert_eq!(
        (opened_id, opened_name.as_str()),
        (client_file_id, "holiday-secret.jpg")
    );
    let mut opened = Vec::new();
    decrypt_stream(served.as_ref(), &mut opened, &key, opened_id).unwrap();
    assert_eq!(opened, plaintext);

    // Nothing in the data directory (database, WAL, blobs, uploads) holds the plaintext
    // or the key.
    let files = walk(&o.app.data_dir);
    assert!(files.iter().any(|p| p.ends_with("sealbox.db")));
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !contains(&bytes, b"PLAINTEXT-MARKER-7f3a9c"),
            "plaintext in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, b"holiday-secret"),
            "the file name in {}",
            path.display()
        );
        assert!(
            !contains(&bytes, key.expose_bytes()),
            "the key in {}",
            path.display()
        );
    }
    // Nor the bucket, when the blobs are in S3.
    for bytes in o.app.blobs.outside_data_dir().await {
        assert!(
            !contains(&bytes, b"PLAINTEXT-MARKER-7f3a9c"),
            "plaintext in the bucket"
        );
        assert!(
            !contains(&bytes, b"holiday-secret"),
            "the file name in the bucket"
        );
        assert!(
            !contains(&bytes, key.expose_bytes()),
            "the key in the bucket"
        );
    }
}

#[tokio::test]
async fn password_gate_unlocks_with_a_token_and_locks_after_repeated_failures() {
    let o = sender().await;
    let bytes = payload(100_000);
    let (transfer, file) = ready(
        &o,
        json!({"name": "Payroll", "password": "correct horse battery"}),
        &bytes,
    )
    .await;
    let id = s(&transfer, "id");
    // Finalized with a password: only the password's key opens the file key now.
    let master_copies: Vec<Option<String>> = o.app.query(
        &format!("SELECT master_sealed_dek FROM transfers WHERE id = '{id}'"),
        |r| r.get(0),
    );
    assert_eq!(master_copies, vec![None]);

    let public = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        200,
    )
    .await;
    assert_eq!(public["passwordRequired"], true);
    assert!(public["files"][0].get("name").is_none(), "{public}");
    assert_envelope(
        download(&o.app, &id, &file, None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        download(&o.app, &id, &file, Some("bm90LWEtdG9rZW4")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    let unlock = |password: &'static str| {
        let app = &o.app;
        let id = id.clone();
        async move {
            public_post(
                app,
                &format!("/v1/public/transfers/{id}/unlock"),
                &json!({"password": password}),
            )
            .await
        }
    };
    assert_envelope(unlock("wrong password!").await, 401, "UNAUTHORIZED").await;
    let token = s(
        &json_of(unlock("correct horse battery").await, 200).await,
        "downloadToken",
    );
    let named = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{id}?token={token}")).await,
        200,
    )
    .await;
    assert_eq!(named["files"][0]["name"], "report.pdf");
    let got = download(&o.app, &id, &file, Some(&token)).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Repeated failures lock the transfer: 429 with Retry-After, even for the right one.
    for _ in 0..FREE_FAILURES {
        assert_eq!(unlock("wrong password!").await.status(), 401);
    }
    let locked = unlock("correct horse battery").await;
    assert_eq!(locked.status(), 429);
    let wait: u64 = locked.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    assert_envelope(locked, 429, "RATE_LIMITED").await;
}

/// Issue 15: the transfer password throttle could be raced (checked, then recorded), so
/// parallel guesses all got a real check. Each guess is now reserved before it is checked.
#[tokio::test]
async fn parallel_wrong_transfer_passwords_get_only_the_free_checks() {
    let o = sender().await;
    let (transfer, _) = ready(
        &o,
        json!({"name": "Race", "password": "correct horse battery"}),
        &payload(10_000),
    )
    .await;
    let id = s(&transfer, "id");
    let guesses = (0..40).map(|_| unlock(&o.app, &id, "a wrong guess!!"));
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|&&c| c == 401).count();
    let refused = statuses.iter().filter(|&&c| c == 429).count();
    assert_eq!(checked, FREE_FAILURES as usize, "{statuses:?}");
    assert_eq!(refused, 40 - FREE_FAILURES as usize, "{statuses:?}");
    // Only the real checks were audited as failures.
    let failures: Vec<i64> = o.app.query(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.unlock_failed'",
        |r| r.get(0),
    );
    assert_eq!(failures, vec![FREE_FAILURES as i64]);
}

/// Issue 15: a transfer's name was not bound, so swapping two rows' names in the
/// database showed each under the other's name. The master-key seal of the link secret
/// binds the organization, the sender and the name: a swapped row is refused (400).
#[tokio::test]
async fn transfers_whose_names_were_swapped_in_the_database_are_refused() {
    let o = sender().await;
    let (alpha, _) = ready(&o, json!({"name": "Alpha"}), &payload(2_000)).await;
    let (beta, _) = ready(&o, json!({"name": "Beta"}), &payload(2_000)).await;
    let (a, b) = (s(&alpha, "id"), s(&beta, "id"));
    let swap = |first: &str, second: &str| {
        let conn = rusqlite::Connection::open(o.app.data_dir.join("sealbox.db")).unwrap();
        conn.execute_batch(&format!(
            "UPDATE transfers SET name = '{second}' WHERE id = '{a}';
             UPDATE transfers SET name = '{first}' WHERE id = '{b}';"
        ))
        .unwrap();
    };
    swap("Alpha", "Beta");
    let public = public_get(&o.app, &format!("/v1/public/transfers/{a}")).await;
    let error = assert_envelope(public, 400, "BAD_REQUEST").await;
    assert!(!error.to_string().contains("Beta"), "{error}");
    assert_envelope(
        o.app.get_as(&format!("/v1/transfers/{b}"), &o.token).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_envelope(
        o.app.get_as("/v1/transfers", &o.token).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    // Put back, each opens again under its own name.
    swap("Beta", "Alpha");
    let public = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{a}")).await,
        200,
    )
    .await;
    assert_eq!(public["name"], "Alpha");
}

async fn unlock(app: &TestApp, id: &str, password: &str) -> reqwest::Response {
    public_post(
        app,
        &format!("/v1/public/transfers/{id}/unlock"),
        &json!({"password": password}),
    )
    .await
}

/// One recipient's download of the whole transfer: unlock for a token, then every file
/// under it. Returns the status of each step, and the bytes of the files that came.
async fn download_whole(app: &TestApp, id: &str, files: &[String]) -> (Vec<u16>, Vec<Vec<u8>>) {
    let response = unlock(app, id, "").await;
    if response.status() != 200 {
        return (vec![response.status().as_u16()], Vec::new());
    }
    let token = s(&response.json::<Value>().await.unwrap(), "downloadToken");
    let (mut statuses, mut bodies) = (vec![200], Vec::new());
    for file in files {
        let response = download(app, id, file, Some(&token)).await;
        statuses.push(response.status().as_u16());
        if response.status() != 200 {
            break;
        }
        bodies.push(response.bytes().await.unwrap().to_vec());
    }
    (statuses, bodies)
}

#[tokio::test]
async fn max_downloads_is_exact_under_twenty_concurrent_downloads() {
    let o = sender().await;
    let (first, second) = (payload(150_000), payload(90_000));
    let transfer = created(&o, json!({"name": "Limited", "maxDownloads": 3})).await;
    let id = s(&transfer, "id");
    let files = vec![
        uploaded(&o, &transfer, "a.bin", &first, "server").await,
        uploaded(&o, &transfer, "b.bin", &second, "server").await,
    ];
    json_of(finalize(&o, &id).await, 200).await;

    // Twenty recipients download the whole transfer (both files) at once: exactly three
    // downloads are counted and complete; the others get 410, at unlock or at their first
    // file. A download's second file is not counted again.
    let attempts = (0..20).map(|_| download_whole(&o.app, &id, &files));
    let results = futures_util::future::join_all(attempts).await;
    let complete: Vec<_> = results
        .iter()
        .filter(|(statuses, _)| statuses == &[200, 200, 200])
        .collect();
    let statuses: Vec<_> = results.iter().map(|r| r.0.clone()).collect();
    assert_eq!(complete.len(), 3, "{statuses:?}");
    for (_, bodies) in &complete {
        assert_eq!(bodies[0], first);
        assert_eq!(bodies[1], second);
    }
    assert!(
        results
            .iter()
            .filter(|(statuses, _)| statuses != &[200, 200, 200])
            .all(|(statuses, _)| statuses.last() == Some(&410)),
        "{statuses:?}"
    );
    let mine = sender_view(&o, &id).await;
    assert_eq!(mine["downloads"], 3);
    assert_eq!(mine["remainingDownloads"], 0);
    assert_envelope(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        410,
        "GONE",
    )
    .await;
    assert_envelope(unlock(&o.app, &id, "").await, 410, "GONE").await;
    // Without a token nobody starts a new download.
    assert_envelope(download(&o.app, &id, &files[0], None).await, 410, "GONE").await;
    assert_eq!(events(&o.app, "transfer.downloaded").len(), 3);
    assert_eq!(events(&o.app, "transfer.download_limit_reached").len(), 1);
}

#[tokio::test]
async fn a_download_session_counts_once_and_may_finish_after_the_limit() {
    let o = sender().await;
    let bytes = payload(120_000);
    let transfer = created(&o, json!({"name": "Two", "maxDownloads": 2})).await;
    let id = s(&transfer, "id");
    let a = uploaded(&o, &transfer, "a.bin", &bytes, "server").await;
    let b = uploaded(&o, &transfer, "b.bin", &bytes[..5000], "server").await;
    json_of(finalize(&o, &id).await, 200).await;
    let downloads = || async { sender_view(&o, &id).await["downloads"].as_i64().unwrap() };

    let token = s(
        &json_of(unlock(&o.app, &id, "").await, 200).await,
        "downloadToken",
    );
    assert_eq!(download(&o.app, &id, &a, Some(&token)).await.status(), 200);
    assert_eq!(download(&o.app, &id, &b, Some(&token)).await.status(), 200);
    // Fetching a file again under the same token is the same download.
    assert_eq!(download(&o.app, &id, &a, Some(&token)).await.status(), 200);
    assert_eq!(downloads().await, 1);

    // A file fetched without a token counts by itself: the limit (2) is reached.
    assert_eq!(download(&o.app, &id, &b, None).await.status(), 200);
    assert_eq!(downloads().await, 2);
    assert_envelope(download(&o.app, &id, &b, None).await, 410, "GONE").await;

    // The session counted earlier still finishes (a file again, and a resumed range).
    let again = download(&o.app, &id, &a, Some(&token)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let resumed = o
        .app
        .client
        .get(o.app.url(&format!(
            "/v1/public/transfers/{id}/files/{a}?token={token}"
        )))
        .header("Range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 206);
    assert_eq!(resumed.bytes().await.unwrap().as_ref(), &bytes[100_000..]);
    assert_eq!(downloads().await, 2);
    // A token of another transfer, or a forged one, is refused even without a password.
    assert_envelope(
        download(&o.app, &id, &a, Some("bm90LWEtdG9rZW4")).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn repeated_failures_from_one_address_lock_its_unlocks_of_every_transfer() {
    let o = sender().await;
    let bytes = payload(10_000);
    let (first, _) = ready(
        &o,
        json!({"name": "One", "password": "correct horse battery"}),
        &bytes,
    )
    .await;
    let (second, _) = ready(
        &o,
        json!({"name": "Two", "password": "staple battery horse"}),
        &bytes,
    )
    .await;
    let (first, second) = (s(&first, "id"), s(&second, "id"));
    for _ in 0..FREE_FAILURES {
        assert_eq!(
            unlock(&o.app, &first, "wrong password!").await.status(),
            401
        );
    }
    // The next guess from this address, at another transfer, waits too.
    let locked = unlock(&o.app, &second, "staple battery horse").await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("Retry-After"));
    assert_envelope(locked, 429, "RATE_LIMITED").await;
    let audited: Vec<i64> = o.app.query(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'transfer.unlock_failed'",
        |r| r.get(0),
    );
    assert_eq!(audited, vec![FREE_FAILURES as i64]);
}

#[tokio::test]
async fn an_expired_transfer_answers_410_and_its_bytes_are_swept() {
    let o = sender().await;
    let (transfer, file) = ready(
        &o,
        json!({"name": "Soon gone", "expiresInHours": 1}),
        &payload(80_000),
    )
    .await;
    let id = s(&transfer, "id");
    let blob_name = file.replace('-', "");
    let has_blob = async |app: &TestApp| {
        app.blobs
            .keys()
            .await
            .iter()
            .any(|key| key.contains(&blob_name))
    };
    assert!(has_blob(&o.app).await);
    expire_now(&o.app, &id);
    assert_envelope(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        410,
        "GONE",
    )
    .await;
    assert_envelope(download(&o.app, &id, &file, None).await, 410, "GONE").await;
    // The sweeper runs every few seconds and deletes the bytes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while has_blob(&o.app).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the blob is still there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let mine = sender_view(&o, &id).await;
    assert_eq!(mine["status"], "expired");
    assert_eq!(events(&o.app, "transfer.expired").len(), 1);
}

#[tokio::test]
async fn revocation_deletes_the_bytes_and_links_answer_410() {
    let o = sender().await;
    let (transfer, file) = ready(&o, json!({"name": "Oops"}), &payload(80_000)).await;
    let id = s(&transfer, "id");
    let path = format!("/v1/transfers/{id}");
    let revoke = || o.app.delete_as(&path, &o.token);
    assert_eq!(revoke().await.status(), 204);
    assert!(
        !o.app
            .blobs
            .keys()
            .await
            .iter()
            .any(|key| key.contains(&file.replace('-', "")))
    );
    assert_envelope(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        410,
        "GONE",
    )
    .await;
    assert_envelope(download(&o.app, &id, &file, None).await, 410, "GONE").await;
    assert_envelope(revoke().await, 410, "GONE").await;
    let mine = sender_view(&o, &id).await;
    assert_eq!(mine["status"], "revoked");
    assert_eq!(events(&o.app, "transfer.revoked").len(), 1);
}

#[tokio::test]
async fn bad_input_is_422_and_unknown_is_404() {
    let o = sender().await;
    let too_many: Vec<Value> = (0..=MAX_RECIPIENTS)
        .map(|i| json!({"email": format!("r{i}@example.com")}))
        .collect();
    for (body, path) in [
        (json!({"name": "x", "expiresInHours": 0}), "expiresInHours"),
        (
            json!({"name": "x", "expiresInHours": 721}),
            "expiresInHours",
        ),
        (json!({"name": "x", "maxDownloads": 0}), "maxDownloads"),
        (json!({"name": "x", "maxDownloads": -3}), "maxDownloads"),
        (json!({"name": "x", "recipients": too_many}), "recipients"),
        (
            json!({"name": "x", "recipients": [{"email": "not an email"}]}),
            "recipients[0].email",
        ),
        (
            json!({"name": "x", "recipients": [{"userId": "0193a1f0-5c2e-7b3a-9d41-2f6e8c0b1a27"}]}),
            "recipients[0].userId",
        ),
        (
            json!({"name": "x", "recipients": [{"email": "a@example.com", "userId": "0193a1f0-5c2e-7b3a-9d41-2f6e8c0b1a27"}]}),
            "recipients[0]",
        ),
        (json!({"name": "x", "password": "short"}), "password"),
        (json!({"name": "  "}), "name"),
    ] {
        let error = assert_envelope(create(&o, body.clone()).await, 422, "VALIDATION").await;
        assert!(
            error["details"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["path"] == path),
            "{body}: {error}"
        );
    }
    // A member of the organization is a valid recipient.
    let me = json_of(o.app.get_as("/v1/users/me", &o.token).await, 200).await;
    created(
        &o,
        json!({"name": "x", "recipients": [{"userId": s(&me, "id")}]}),
    )
    .await;
    // Finalizing without files, or with an unfinished upload, is a conflict.
    let empty = created(&o, json!({"name": "empty"})).await;
    assert_envelope(finalize(&o, &s(&empty, "id")).await, 409, "CONFLICT").await;

    for path in [
        "/v1/public/transfers/not-a-uuid".to_owned(),
        "/v1/public/transfers/0193a1f0-5c2e-7b3a-9d41-2f6e8c0b1a27".to_owned(),
        "/v1/public/transfers/0193a1f0-5c2e-7b3a-9d41-2f6e8c0b1a27/files/0193a1f0-5c2e-7b3a-9d41-2f6e8c0b1a27".to_owned(),
    ] {
        assert_envelope(o.app.get(&path).await, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn another_organizations_transfer_is_404() {
    let o = sender().await;
    let (transfer, _) = ready(&o, json!({"name": "Acme only"}), &payload(70_000)).await;
    let id = s(&transfer, "id");
    let outsider = o
        .app
        .invite_and_register(&o.token, &o.org, "out@example.com", "member")
        .await;
    let outsider = s(&outsider, "accessToken");
    let globex = json_of(
        o.app
            .send_as(
                Method::POST,
                "/v1/organizations",
                &outsider,
                Some(&json!({"name": "Globex"})),
                None,
            )
            .await,
        201,
    )
    .await;
    let globex = s(&globex, "id");
    for (method, path) in [
        (Method::GET, format!("/v1/transfers/{id}")),
        (Method::DELETE, format!("/v1/transfers/{id}")),
        (Method::POST, format!("/v1/transfers/{id}/finalize")),
    ] {
        let response = o
            .app
            .send_as(method, &path, &outsider, None, Some(&globex))
            .await;
        assert_envelope(response, 404, "NOT_FOUND").await;
    }
    let theirs = json_of(
        o.app
            .send_as(Method::GET, "/v1/transfers", &outsider, None, Some(&globex))
            .await,
        200,
    )
    .await;
    assert!(theirs.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn recipients_with_an_email_are_mailed_the_link_when_smtp_is_configured() {
    use crate::password_reset::{SmtpSink, body, spawn_with_mail};
    let sink = SmtpSink::start().await;
    let app = spawn_with_mail(&sink).await;
    let pair = app.setup_admin().await;
    let o = Sender {
        token: s(&pair, "accessToken"),
        org: s(&pair["user"]["organizations"][0], "id"),
        app,
    };
    let me = json_of(o.app.get_as("/v1/users/me", &o.token).await, 200).await;
    let (transfer, _) = ready(
        &o,
        json!({"name": "Board pack",
               "recipients": [{"email": "carol@example.com"}, {"userId": s(&me, "id")}]}),
        &payload(70_000),
    )
    .await;
    // The recipient in the organization is told in the app.
    let notes = json_of(o.app.get_as("/v1/notifications", &o.token).await, 200).await;
    let received = notes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "transfer.received")
        .unwrap_or_else(|| panic!("{notes}"));
    let mine = json_of(
        o.app
            .get_as(&format!("/v1/transfers/{}", s(&transfer, "id")), &o.token)
            .await,
        200,
    )
    .await;
    // The notified link is the whole link, with its secret in the fragment.
    let link = received["data"]["link"].as_str().unwrap();
    assert!(
        link.contains(&format!("/t/{}#s=", s(&transfer, "id"))),
        "{link}"
    );
    assert_eq!(link, s(&mine, "link"));
    let messages = sink.wait_for_messages(1).await;
    assert!(messages[0].contains("carol@example.com"));
    let text = body(&messages[0]);
    assert!(text.contains("Board pack"), "{text}");
    assert!(text.contains(&s(&mine, "link")), "{text}");
}

#[tokio::test]
async fn an_end_to_end_transfer_with_a_password_gates_the_download_only() {
    let o = sender().await;
    let ciphertext = payload(90_000);
    let transfer = created(
        &o,
        json!({"name": "Gated", "e2e": true, "password": "open sesame please"}),
    )
    .await;
    let id = s(&transfer, "id");
    let file = uploaded(&o, &transfer, "bmFtZQ", &ciphertext, "client").await;
    json_of(finalize(&o, &id).await, 200).await;
    let public = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        200,
    )
    .await;
    assert_eq!(public["passwordRequired"], true);
    assert_eq!(public["files"][0]["name"], "bmFtZQ");
    assert_envelope(
        download(&o.app, &id, &file, None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let wrong = public_post(
        &o.app,
        &format!("/v1/public/transfers/{id}/unlock"),
        &json!({"password": "not the password"}),
    )
    .await;
    assert_envelope(wrong, 401, "UNAUTHORIZED").await;
    let token = s(
        &json_of(
            public_post(
                &o.app,
                &format!("/v1/public/transfers/{id}/unlock"),
                &json!({"password": "open sesame please"}),
            )
            .await,
            200,
        )
        .await,
        "downloadToken",
    );
    let got = download(&o.app, &id, &file, Some(&token)).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), ciphertext.as_slice());
    // A token is bound to its transfer.
    let (other, other_file) = ready(
        &o,
        json!({"name": "Other", "password": "another password"}),
        &payload(70_000),
    )
    .await;
    assert_envelope(
        download(&o.app, &s(&other, "id"), &other_file, Some(&token)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn api_key_scopes_gate_reading_and_writing_transfers() {
    let o = sender().await;
    let key = |scopes: Value| {
        let app = &o.app;
        let token = o.token.clone();
        async move {
            let body = json!({"name": "script", "scopes": scopes});
            s(
                &json_of(
                    app.send_as(Method::POST, "/v1/api-keys", &token, Some(&body), None)
                        .await,
                    201,
                )
                .await,
                "key",
            )
        }
    };
    let reader = key(json!(["transfers:read"])).await;
    let writer = key(json!(["transfers:read", "transfers:write"])).await;
    let other = key(json!(["files:read"])).await;
    let body = json!({"name": "From a script"});
    let post = |key: String| {
        let (app, body) = (&o.app, body.clone());
        async move {
            app.send_as(Method::POST, "/v1/transfers", &key, Some(&body), None)
                .await
        }
    };
    assert_envelope(post(reader.clone()).await, 403, "FORBIDDEN").await;
    assert_envelope(post(other.clone()).await, 403, "FORBIDDEN").await;
    let made = json_of(post(writer.clone()).await, 201).await;
    let id = s(&made, "id");
    let seen = json_of(
        o.app.get_as(&format!("/v1/transfers/{id}"), &reader).await,
        200,
    )
    .await;
    assert_eq!(seen["name"], "From a script");
    assert_eq!(
        json_of(o.app.get_as("/v1/transfers", &reader).await, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_envelope(
        o.app.get_as("/v1/transfers", &other).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_envelope(
        o.app
            .delete_as(&format!("/v1/transfers/{id}"), &reader)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        o.app
            .delete_as(&format!("/v1/transfers/{id}"), &writer)
            .await
            .status(),
        204
    );
}

#[tokio::test]
async fn a_download_that_starts_mid_file_is_counted_too() {
    let o = sender().await;
    let bytes = payload(50_000);
    let (transfer, file) = ready(&o, json!({"name": "Once", "maxDownloads": 1}), &bytes).await;
    let id = s(&transfer, "id");
    let skip_first_byte = |token: String| {
        o.app
            .client
            .get(o.app.url(&format!(
                "/v1/public/transfers/{id}/files/{file}?token={token}"
            )))
            .header("Range", "bytes=1-")
            .send()
    };
    // Skipping byte 0 (a known magic number) does not skip the count.
    let first = s(
        &json_of(unlock(&o.app, &id, "").await, 200).await,
        "downloadToken",
    );
    let rest = skip_first_byte(first.clone()).await.unwrap();
    assert_eq!(rest.status(), 206);
    assert_eq!(rest.bytes().await.unwrap().as_ref(), &bytes[1..]);
    let mine = sender_view(&o, &id).await;
    assert_eq!(mine["downloads"], 1);
    assert_envelope(unlock(&o.app, &id, "").await, 410, "GONE").await;
    // The counted session may still list the files and fetch the first byte.
    let listed = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{id}?token={first}")).await,
        200,
    )
    .await;
    assert_eq!(listed["remainingDownloads"], 0);
    assert_eq!(
        download(&o.app, &id, &file, Some(&first)).await.status(),
        200
    );
}

#[tokio::test]
async fn finalize_leaves_out_terminated_uploads_and_refuses_an_expired_transfer() {
    let o = sender().await;
    let bytes = payload(40_000);
    let transfer = created(&o, json!({"name": "Edges"})).await;
    let id = s(&transfer, "id");
    let kept = uploaded(&o, &transfer, "kept.bin", &bytes, "server").await;
    // A second upload the client abandons with tus DELETE.
    let dropped = upload(&o, &transfer, "dropped.bin", &bytes[..10], "server").await;
    assert_eq!(dropped.status(), 201);
    let location = dropped.headers()["Location"].to_str().unwrap().to_owned();
    let url = if location.starts_with("http") {
        location
    } else {
        o.app.url(&location)
    };
    let deleted = o
        .app
        .client
        .delete(url)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let done = json_of(finalize(&o, &id).await, 200).await;
    let files = done["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{done}");
    assert_eq!(files[0]["id"], kept.as_str());

    // A pending transfer past its expiry takes no uploads and cannot be finalized, even
    // before the sweeper has seen it.
    let late = created(&o, json!({"name": "Late"})).await;
    let late_id = s(&late, "id");
    uploaded(&o, &late, "a.bin", &bytes, "server").await;
    expire_now(&o.app, &late_id);
    assert_eq!(
        upload(&o, &late, "b.bin", &bytes, "server").await.status(),
        404
    );
    assert_envelope(finalize(&o, &late_id).await, 409, "CONFLICT").await;
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn put_sealed_message(
    o: &Sender,
    id: &str,
    body: &Value,
    token: &str,
    org: Option<&str>,
) -> reqwest::Response {
    o.app
        .send_as(
            Method::PUT,
            &format!("/v1/transfers/{id}/sealed-message"),
            token,
            Some(body),
            org,
        )
        .await
}

/// The `path`s of a 422 envelope's details.
fn detail_paths(error: &Value) -> Vec<String> {
    error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(d, "path"))
        .collect()
}

#[tokio::test]
async fn an_end_to_end_message_is_sealed_by_the_client_and_the_server_stores_it_verbatim() {
    use sealbox::crypto::transfer_e2e;
    let o = sender().await;
    const SECRET_MESSAGE: &str = "E2E-MESSAGE-PLAINTEXT the vault code is 4711";

    // A plaintext message under the end-to-end label is refused, naming the field.
    let refused = assert_envelope(
        create(
            &o,
            json!({"name": "1 file", "e2e": true, "message": SECRET_MESSAGE}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(detail_paths(&refused), ["message"]);

    let transfer = created(&o, json!({"name": "1 file", "e2e": true})).await;
    let id = s(&transfer, "id");
    let key = transfer_e2e::generate_key();
    let uuid: uuid::Uuid = id.parse().unwrap();
    let sealed = transfer_e2e::seal_message(&key, uuid, SECRET_MESSAGE);

    // Not a sealed value: plaintext, standard base64 with padding, a value of another
    // version byte, and one over the length bound.
    let other_version = {
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&sealed)
            .unwrap();
        bytes[0] = 2;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let too_long =
        transfer_e2e::seal_message(&key, uuid, &"x".repeat(transfer_e2e::MAX_MESSAGE_BYTES + 1));
    assert!(too_long.len() > transfer_e2e::MAX_SEALED_MESSAGE_CHARS);
    for bad in [
        SECRET_MESSAGE.to_owned(),
        B64.encode([1u8; 40]) + "=",
        other_version,
        too_long,
    ] {
        let error = assert_envelope(
            put_sealed_message(&o, &id, &json!({"sealedMessage": bad}), &o.token, None).await,
            422,
            "VALIDATION",
        )
        .await;
        assert_eq!(detail_paths(&error), ["sealedMessage"], "{error}");
    }
    // Without the field, or with the wrong type: the body's shape is wrong.
    assert_envelope(
        put_sealed_message(&o, &id, &json!({"message": sealed}), &o.token, None).await,
        422,
        "VALIDATION",
    )
    .await;
    // No credential: 401; an unknown transfer: 404.
    let anonymous = o
        .app
        .client
        .put(o.app.url(&format!("/v1/transfers/{id}/sealed-message")))
        .json(&json!({"sealedMessage": sealed}))
        .send()
        .await
        .unwrap();
    assert_envelope(anonymous, 401, "UNAUTHORIZED").await;
    assert_envelope(
        put_sealed_message(
            &o,
            &uuid::Uuid::now_v7().to_string(),
            &json!({"sealedMessage": sealed}),
            &o.token,
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;

    // Another organization's member cannot set it: 404, as for an unknown transfer.
    let outsider = o
        .app
        .invite_and_register(&o.token, &o.org, "out@example.com", "member")
        .await;
    let outsider = s(&outsider, "accessToken");
    let globex = s(
        &json_of(
            o.app
                .send_as(
                    Method::POST,
                    "/v1/organizations",
                    &outsider,
                    Some(&json!({"name": "Globex"})),
                    None,
                )
                .await,
            201,
        )
        .await,
        "id",
    );
    assert_envelope(
        put_sealed_message(
            &o,
            &id,
            &json!({"sealedMessage": sealed}),
            &outsider,
            Some(&globex),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;

    // The sealed value is stored and returned as sent; setting it again replaces it.
    let first = transfer_e2e::seal_message(&key, uuid, "a first draft");
    json_of(
        put_sealed_message(&o, &id, &json!({"sealedMessage": first}), &o.token, None).await,
        200,
    )
    .await;
    let set = json_of(
        put_sealed_message(&o, &id, &json!({"sealedMessage": sealed}), &o.token, None).await,
        200,
    )
    .await;
    assert_eq!(set["sealedMessage"], sealed.as_str());
    assert!(set.get("message").is_none(), "{set}");
    assert_eq!(sender_view(&o, &id).await["sealedMessage"], sealed.as_str());

    let client_file_id = transfer_e2e::new_file_id();
    let mut ciphertext = Vec::new();
    sealbox::crypto::sbx1::encrypt_stream(
        payload(70_000).as_slice(),
        &mut ciphertext,
        &key,
        client_file_id,
    )
    .unwrap();
    let name = transfer_e2e::seal_name(&key, uuid, client_file_id, "docs/a.txt");
    uploaded(&o, &transfer, &name, &ciphertext, "client").await;
    json_of(finalize(&o, &id).await, 200).await;

    // Once ready it can no longer change.
    assert_envelope(
        put_sealed_message(&o, &id, &json!({"sealedMessage": first}), &o.token, None).await,
        409,
        "CONFLICT",
    )
    .await;

    // A link holder gets it verbatim and opens it with the link's key.
    let public = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{id}")).await,
        200,
    )
    .await;
    assert_eq!(public["sealedMessage"], sealed.as_str());
    assert!(public.get("message").is_none(), "{public}");
    assert_eq!(
        transfer_e2e::open_message(&key, uuid, &s(&public, "sealedMessage")).unwrap(),
        SECRET_MESSAGE
    );

    // A server-sealed transfer takes no sealed message.
    let server = created(&o, json!({"name": "Server side", "message": "plain"})).await;
    let error = assert_envelope(
        put_sealed_message(
            &o,
            &s(&server, "id"),
            &json!({"sealedMessage": sealed}),
            &o.token,
            None,
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(detail_paths(&error), ["sealedMessage"]);
    assert_eq!(sender_view(&o, &s(&server, "id")).await["message"], "plain");

    // With a password, the sealed message is shown only after unlock.
    let gated = created(
        &o,
        json!({"name": "Gated", "e2e": true, "password": "open sesame please"}),
    )
    .await;
    let gated_id = s(&gated, "id");
    let gated_uuid: uuid::Uuid = gated_id.parse().unwrap();
    let gated_sealed = transfer_e2e::seal_message(&key, gated_uuid, SECRET_MESSAGE);
    json_of(
        put_sealed_message(
            &o,
            &gated_id,
            &json!({"sealedMessage": gated_sealed}),
            &o.token,
            None,
        )
        .await,
        200,
    )
    .await;
    uploaded(&o, &gated, "bmFtZQ", &ciphertext, "client").await;
    json_of(finalize(&o, &gated_id).await, 200).await;
    let locked = json_of(
        public_get(&o.app, &format!("/v1/public/transfers/{gated_id}")).await,
        200,
    )
    .await;
    assert!(locked.get("sealedMessage").is_none(), "{locked}");
    let token = s(
        &json_of(
            public_post(
                &o.app,
                &format!("/v1/public/transfers/{gated_id}/unlock"),
                &json!({"password": "open sesame please"}),
            )
            .await,
            200,
        )
        .await,
        "downloadToken",
    );
    let unlocked = json_of(
        public_get(
            &o.app,
            &format!("/v1/public/transfers/{gated_id}?token={token}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(unlocked["sealedMessage"], gated_sealed.as_str());

    // The data directory (database, its WAL, blobs, uploads) never held the message.
    let files = files_under(&o.app.data_dir);
    assert!(files.iter().any(|p| p.ends_with("sealbox.db")));
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(SECRET_MESSAGE.len())
                .any(|w| w == SECRET_MESSAGE.as_bytes()),
            "{} holds the message",
            path.display()
        );
    }
    for bytes in o.app.blobs.outside_data_dir().await {
        assert!(
            !bytes
                .windows(SECRET_MESSAGE.len())
                .any(|w| w == SECRET_MESSAGE.as_bytes()),
            "the bucket holds the message"
        );
    }
}

/// The list pages newest first through its cursor, with and without a status filter, and
/// `after` reads back towards the newest (each condition its own index range).
#[tokio::test]
async fn the_transfer_list_pages_through_its_cursor() {
    let o = sender().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let transfer = created(
            &o,
            json!({"name": format!("Batch {n}"), "recipients": [{"email": "a@example.com"}]}),
        )
        .await;
        ids.push(s(&transfer, "id"));
    }
    ids.reverse();
    for first in [
        "/v1/transfers?limit=2",
        "/v1/transfers?status=pending&limit=2",
    ] {
        let mut seen = Vec::new();
        let mut next = Some(first.to_owned());
        while let Some(path) = next.take() {
            let response = o.app.get_as(&path, &o.token).await;
            next = response.headers().get("link").map(|link| {
                let link = link.to_str().unwrap();
                link[1..link.find('>').unwrap()].to_owned()
            });
            let page = json_of(response, 200).await;
            assert!(page.as_array().unwrap().len() <= 2, "{first}");
            seen.extend(page.as_array().unwrap().iter().map(|t| s(t, "id")));
        }
        assert_eq!(seen, ids, "{first}: every transfer once, newest first");
    }
    let newer = json_of(
        o.app
            .get_as(&format!("/v1/transfers?limit=2&after={}", ids[4]), &o.token)
            .await,
        200,
    )
    .await;
    let newer: Vec<String> = newer
        .as_array()
        .unwrap()
        .iter()
        .map(|t| s(t, "id"))
        .collect();
    assert_eq!(newer, ids[2..4].to_vec());
    let none = json_of(
        o.app
            .get_as(
                &format!("/v1/transfers?status=ready&before={}", ids[0]),
                &o.token,
            )
            .await,
        200,
    )
    .await;
    assert!(none.as_array().unwrap().is_empty());
}
