//! Issue 15, links: suspension and disablement stop every link, token and URL issued
//! before; public transfer links need their random secret; a password-protected
//! transfer's message stays sealed until unlock; an expired download token opens
//! nothing, even to someone who has the master key; one download link is one audit row.
//! Each test performs the attack over HTTP against the real server and checks that it is
//! refused and that nothing changed.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::{TestApp, assert_envelope, json_of, s};

const USER_SECRET: &str = "correct horse battery staple";
const SECRET_HEADER: &str = "X-Transfer-Secret";

struct Org {
    app: TestApp,
    admin: String,
    org: String,
}

async fn org() -> Org {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    Org {
        admin: s(&pair, "accessToken"),
        org: s(&pair["user"]["organizations"][0], "id"),
        app,
    }
}

/// The `#s=` part of a transfer's link.
fn secret_of(transfer: &Value) -> String {
    let link = s(transfer, "link");
    let (_, fragment) = link.split_once("#s=").expect("the link carries a secret");
    fragment.split('&').next().unwrap().to_owned()
}

async fn create(o: &Org, token: &str, body: Value) -> Value {
    json_of(
        o.app
            .send_as(Method::POST, "/v1/transfers", token, Some(&body), None)
            .await,
        201,
    )
    .await
}

/// A tus creation with the whole body at the transfer's upload URL.
async fn upload(o: &Org, transfer: &Value, bytes: &[u8], encryption: &str) -> reqwest::Response {
    let metadata = format!(
        "filename {},encryption {}",
        B64.encode("report.pdf"),
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

/// A ready server-sealed transfer of one file made by `token`: (transfer, file id).
async fn ready(o: &Org, token: &str, body: Value) -> (Value, String) {
    let transfer = create(o, token, body).await;
    let response = upload(o, &transfer, &[7u8; 5000], "server").await;
    assert_eq!(response.status(), 201);
    let file = response.headers()["X-Sealbox-File-Id"]
        .to_str()
        .unwrap()
        .to_owned();
    let id = s(&transfer, "id");
    let done = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/transfers/{id}/finalize"),
            token,
            None,
            None,
        )
        .await;
    json_of(done, 200).await;
    (transfer, file)
}

async fn public_view(
    o: &Org,
    id: &str,
    secret: Option<&str>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut url = o.app.url(&format!("/v1/public/transfers/{id}"));
    if let Some(token) = token {
        url.push_str(&format!("?token={token}"));
    }
    let mut request = o.app.client.get(url);
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    request.send().await.unwrap()
}

async fn unlock(o: &Org, id: &str, secret: Option<&str>, password: &str) -> reqwest::Response {
    let mut request = o
        .app
        .client
        .post(o.app.url(&format!("/v1/public/transfers/{id}/unlock")))
        .json(&json!({"password": password}));
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    request.send().await.unwrap()
}

async fn fetch_file(
    o: &Org,
    id: &str,
    file: &str,
    secret: Option<&str>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut url = o
        .app
        .url(&format!("/v1/public/transfers/{id}/files/{file}"));
    if let Some(token) = token {
        url.push_str(&format!("?token={token}"));
    }
    let mut request = o.app.client.get(url);
    if let Some(secret) = secret {
        request = request.header(SECRET_HEADER, secret);
    }
    request.send().await.unwrap()
}

async fn token_of(response: reqwest::Response) -> String {
    s(&json_of(response, 200).await, "downloadToken")
}

fn count(app: &TestApp, sql: &str) -> i64 {
    app.query(sql, |row| row.get::<_, i64>(0))[0]
}

/// Generates the caller's key pair (server-sealed files need it).
async fn generate_keys(o: &Org, token: &str) {
    o.app.generate_keys(token, USER_SECRET).await;
}

/// A stored file of `token`'s (server-encrypted) and a download link to it.
async fn file_with_link(o: &Org, token: &str) -> (String, String) {
    let bytes = vec![3u8; 70_000];
    let presigned = json_of(
        o.app
            .send_as(
                Method::POST,
                "/v1/files/presign",
                token,
                Some(&json!({"filename": "a.bin", "size": bytes.len()})),
                None,
            )
            .await,
        201,
    )
    .await;
    let put = o
        .app
        .client
        .put(s(&presigned, "uploadUrl"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    json_of(put, 200).await;
    let id = s(&presigned, "fileId");
    let finalized = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/files/{id}/finalize"),
            token,
            None,
            None,
        )
        .await;
    json_of(finalized, 200).await;
    let link = o
        .app
        .client
        .get(o.app.url(&format!("/v1/files/{id}/download")))
        .bearer_auth(token)
        .header("X-User-Secret", USER_SECRET)
        .send()
        .await
        .unwrap();
    (id, s(&json_of(link, 200).await, "url"))
}

/// A pending transfer with one upload created but not sent: (transfer, upload URL).
async fn pending_with_upload(o: &Org, token: &str) -> (Value, String) {
    let transfer = create(o, token, json!({"name": "Pending"})).await;
    let metadata = format!(
        "filename {},encryption {}",
        B64.encode("late.bin"),
        B64.encode("server")
    );
    let created = o
        .app
        .client
        .post(s(&transfer, "uploadUrl"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "100000")
        .header("Upload-Metadata", metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["Location"].to_str().unwrap().to_owned();
    (transfer, location)
}

async fn patch(o: &Org, upload_url: &str) -> reqwest::Response {
    o.app
        .client
        .patch(upload_url)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(vec![1u8; 70_000])
        .send()
        .await
        .unwrap()
}

/// Everything issued before a suspension stops at once: the public link (view, unlock,
/// bare file URL), a download token already handed out, a pending transfer's upload
/// token, an upload URL and a file download link. 403 `ORG_SUSPENDED`, and nothing
/// moved: no download counted, no upload created or advanced.
#[tokio::test]
async fn suspension_stops_links_tokens_upload_urls_and_download_links_at_once() {
    let o = org().await;
    generate_keys(&o, &o.admin).await;
    let (transfer, file) = ready(&o, &o.admin, json!({"name": "Ready"})).await;
    let (id, secret) = (s(&transfer, "id"), secret_of(&transfer));
    let token = token_of(unlock(&o, &id, Some(&secret), "").await).await;
    let (pending, upload_url) = pending_with_upload(&o, &o.admin).await;
    let (_, download_url) = file_with_link(&o, &o.admin).await;
    // All of them work before.
    assert_eq!(
        public_view(&o, &id, Some(&secret), None).await.status(),
        200
    );
    assert_eq!(
        o.app
            .client
            .head(&upload_url)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        o.app
            .client
            .head(&download_url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let suspended = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/organizations/{}/suspend", o.org),
            &o.admin,
            None,
            None,
        )
        .await;
    assert_eq!(suspended.status(), 200);
    let downloads_before = count(
        &o.app,
        "SELECT downloads FROM transfers WHERE status = 'ready'",
    );
    let audit_before = count(&o.app, "SELECT count(*) FROM audit_log");

    assert_envelope(
        public_view(&o, &id, Some(&secret), None).await,
        403,
        "ORG_SUSPENDED",
    )
    .await;
    assert_envelope(
        unlock(&o, &id, Some(&secret), "").await,
        403,
        "ORG_SUSPENDED",
    )
    .await;
    assert_envelope(
        fetch_file(&o, &id, &file, Some(&secret), None).await,
        403,
        "ORG_SUSPENDED",
    )
    .await;
    assert_envelope(
        fetch_file(&o, &id, &file, None, Some(&token)).await,
        403,
        "ORG_SUSPENDED",
    )
    .await;
    // The pending transfer's upload token takes no new file.
    let files_before = count(&o.app, "SELECT count(*) FROM transfer_files");
    assert_envelope(
        upload(&o, &pending, &[1u8; 10], "server").await,
        403,
        "ORG_SUSPENDED",
    )
    .await;
    assert_eq!(
        count(&o.app, "SELECT count(*) FROM transfer_files"),
        files_before
    );
    // The upload URL takes no bytes.
    assert_envelope(patch(&o, &upload_url).await, 403, "ORG_SUSPENDED").await;
    assert_eq!(
        count(&o.app, "SELECT coalesce(max(received), 0) FROM uploads"),
        0
    );
    // The file download link streams nothing.
    assert_envelope(
        o.app.client.get(&download_url).send().await.unwrap(),
        403,
        "ORG_SUSPENDED",
    )
    .await;
    assert_eq!(
        count(
            &o.app,
            "SELECT downloads FROM transfers WHERE status = 'ready'"
        ),
        downloads_before
    );
    assert_eq!(
        count(&o.app, "SELECT count(*) FROM audit_log"),
        audit_before
    );

    // It is the suspension: lifting it lets the same link and token work again.
    let lifted = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/organizations/{}/unsuspend", o.org),
            &o.admin,
            None,
            None,
        )
        .await;
    assert_eq!(lifted.status(), 200);
    assert_eq!(
        fetch_file(&o, &id, &file, None, Some(&token))
            .await
            .status(),
        200
    );
}

/// A disabled member's (or account's) links and tokens stop: 404, as if they did not
/// exist; the transfer is not counted, the upload token takes nothing.
#[tokio::test]
async fn a_disabled_member_or_account_stops_what_was_issued_on_their_behalf() {
    let o = org().await;
    let bob = o
        .app
        .invite_and_register(&o.admin, &o.org, "bob@example.com", "member")
        .await;
    let (bob_token, bob_id) = (s(&bob, "accessToken"), s(&bob["user"], "id"));
    generate_keys(&o, &bob_token).await;
    let (transfer, file) = ready(&o, &bob_token, json!({"name": "Bob's"})).await;
    let (id, secret) = (s(&transfer, "id"), secret_of(&transfer));
    let token = token_of(unlock(&o, &id, Some(&secret), "").await).await;
    let (pending, upload_url) = pending_with_upload(&o, &bob_token).await;
    let (_, download_url) = file_with_link(&o, &bob_token).await;

    let set_status = |status: &'static str| {
        let (app, admin, org, bob_id) = (&o.app, &o.admin, &o.org, &bob_id);
        async move {
            let response = app
                .send_as(
                    Method::PATCH,
                    &format!("/v1/organizations/{org}/members/{bob_id}"),
                    admin,
                    Some(&json!({"status": status})),
                    None,
                )
                .await;
            assert_eq!(response.status(), 200);
        }
    };
    let refused_everywhere = || async {
        assert_envelope(
            public_view(&o, &id, Some(&secret), None).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_envelope(unlock(&o, &id, Some(&secret), "").await, 404, "NOT_FOUND").await;
        assert_envelope(
            fetch_file(&o, &id, &file, None, Some(&token)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_envelope(
            upload(&o, &pending, &[1u8; 10], "server").await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_envelope(patch(&o, &upload_url).await, 404, "NOT_FOUND").await;
        assert_envelope(
            o.app.client.get(&download_url).send().await.unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
    };

    set_status("disabled").await;
    let files_before = count(&o.app, "SELECT count(*) FROM transfer_files");
    refused_everywhere().await;
    assert_eq!(
        count(&o.app, "SELECT count(*) FROM transfer_files"),
        files_before
    );
    assert_eq!(
        count(
            &o.app,
            "SELECT downloads FROM transfers WHERE status = 'ready'"
        ),
        0
    );
    assert_eq!(
        count(&o.app, "SELECT coalesce(max(received), 0) FROM uploads"),
        0
    );

    // Re-enabled, the same token works; a disabled account stops it again.
    set_status("active").await;
    assert_eq!(
        fetch_file(&o, &id, &file, None, Some(&token))
            .await
            .status(),
        200
    );
    let conn = rusqlite::Connection::open(o.app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE users SET status = 'disabled' WHERE id = ?1",
        [&bob_id],
    )
    .unwrap();
    refused_everywhere().await;
}

/// The transfer id is a UUIDv7, whose timestamp and counter leak (`X-Request-Id` is one
/// too): the link's random secret is what opens it. Without it, or with a wrong one,
/// every public route answers 404 as for an unknown transfer, even for a revoked one.
#[tokio::test]
async fn a_public_link_without_its_secret_is_404_like_an_unknown_transfer() {
    let o = org().await;
    let (transfer, file) = ready(&o, &o.admin, json!({"name": "Guess me"})).await;
    let (id, secret) = (s(&transfer, "id"), secret_of(&transfer));
    assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), 32);
    let wrong = URL_SAFE_NO_PAD.encode([0u8; 32]);
    for presented in [None, Some(wrong.as_str())] {
        assert_envelope(
            public_view(&o, &id, presented, None).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_envelope(unlock(&o, &id, presented, "").await, 404, "NOT_FOUND").await;
        assert_envelope(
            fetch_file(&o, &id, &file, presented, None).await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    assert_eq!(count(&o.app, "SELECT downloads FROM transfers"), 0);
    assert_eq!(count(&o.app, "SELECT count(*) FROM download_tokens"), 0);
    // The server keeps the secret's SHA-256 to check it, never the secret in the clear.
    let stored: Vec<(Vec<u8>, String)> = o.app.query(
        "SELECT link_secret_hash, sealed_link_secret FROM transfers",
        |row| Ok((row.get(0)?, row.get(1)?)),
    );
    assert_eq!(
        stored[0].0,
        sha2::Sha256::digest(secret.as_bytes()).to_vec()
    );
    assert!(!stored[0].1.contains(&secret));
    // With the secret: the view, a token, the bytes.
    assert_eq!(
        public_view(&o, &id, Some(&secret), None).await.status(),
        200
    );
    assert_eq!(
        fetch_file(&o, &id, &file, Some(&secret), None)
            .await
            .status(),
        200
    );
    // The sender's view shows the whole link.
    let mine = json_of(
        o.app.get_as(&format!("/v1/transfers/{id}"), &o.admin).await,
        200,
    )
    .await;
    assert_eq!(s(&mine, "link"), s(&transfer, "link"));

    // A revoked transfer says 410 only to someone holding its link.
    let revoked = o
        .app
        .delete_as(&format!("/v1/transfers/{id}"), &o.admin)
        .await;
    assert_eq!(revoked.status(), 204);
    assert_envelope(public_view(&o, &id, None, None).await, 404, "NOT_FOUND").await;
    assert_envelope(public_view(&o, &id, Some(&secret), None).await, 410, "GONE").await;
}

/// A transfer created before link secrets (no secret stored) keeps its bare link.
#[tokio::test]
async fn a_transfer_from_before_link_secrets_keeps_its_bare_link() {
    let o = org().await;
    let (transfer, file) = ready(&o, &o.admin, json!({"name": "Old"})).await;
    let id = s(&transfer, "id");
    let conn = rusqlite::Connection::open(o.app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE transfers SET link_secret_hash = NULL, sealed_link_secret = NULL",
        [],
    )
    .unwrap();
    assert_eq!(public_view(&o, &id, None, None).await.status(), 200);
    assert_eq!(fetch_file(&o, &id, &file, None, None).await.status(), 200);
    let mine = json_of(
        o.app.get_as(&format!("/v1/transfers/{id}"), &o.admin).await,
        200,
    )
    .await;
    assert!(s(&mine, "link").ends_with(&format!("/t/{id}")), "{mine}");
}

/// With a password, the message is shown only after unlock, and it is not sealed by the
/// master key: the master key and the database do not open it.
#[tokio::test]
async fn a_password_transfers_message_shows_only_after_unlock_and_is_sealed_like_its_files() {
    let o = org().await;
    for e2e in [false, true] {
        // An end-to-end transfer now refuses a `message` at creation (its client seals it
        // under the transfer key and sets `sealedMessage`); that case, its password gate
        // included, is `transfers::an_end_to_end_message_is_sealed_by_the_client_...`.
        if e2e {
            continue;
        }
        // An e2e message is the client's ciphertext; any text stands for it here.
        let message = if e2e {
            URL_SAFE_NO_PAD.encode(b"client-sealed message 0451")
        } else {
            "the vault code is 0451".to_owned()
        };
        let transfer = create(
            &o,
            &o.admin,
            json!({"name": "Sealed", "message": message,
                   "password": "open sesame please", "e2e": e2e}),
        )
        .await;
        let id = s(&transfer, "id");
        let secret = secret_of(&transfer);
        let bytes = if e2e {
            // The smallest SBX1 file: a header and one empty last segment.
            let key = sealbox::crypto::Dek::generate();
            let mut out = Vec::new();
            sealbox::crypto::sbx1::encrypt_stream(&b""[..], &mut out, &key, uuid::Uuid::now_v7())
                .unwrap();
            out
        } else {
            vec![5u8; 1000]
        };
        let response = upload(&o, &transfer, &bytes, if e2e { "client" } else { "server" }).await;
        assert_eq!(response.status(), 201, "e2e {e2e}");
        let done = o
            .app
            .send_as(
                Method::POST,
                &format!("/v1/transfers/{id}/finalize"),
                &o.admin,
                None,
                None,
            )
            .await;
        json_of(done, 200).await;

        let before = json_of(public_view(&o, &id, Some(&secret), None).await, 200).await;
        assert_eq!(before["passwordRequired"], true);
        assert!(before.get("message").is_none(), "e2e {e2e}: {before}");
        let token = token_of(unlock(&o, &id, Some(&secret), "open sesame please").await).await;
        let after = json_of(public_view(&o, &id, Some(&secret), Some(&token)).await, 200).await;
        assert_eq!(after["message"], message.as_str(), "e2e {e2e}");

        // What is stored is not the master key's format, and the master key opens
        // nothing of it.
        let stored: String = o.app.query(
            &format!("SELECT sealed_message FROM transfers WHERE id = '{id}'"),
            |row| row.get::<_, String>(0),
        )[0]
        .clone();
        assert!(stored.starts_with("g1:"), "{stored}");
        assert!(!stored.contains(&message));
        let master = sealbox::crypto::MasterKey::from_file_bytes(
            &std::fs::read(o.app.data_dir.join("master.key")).unwrap(),
        )
        .unwrap();
        let mut aad = b"sealbox/v1/transfer-message\0".to_vec();
        aad.extend_from_slice(uuid::Uuid::parse_str(&id).unwrap().as_bytes());
        assert!(master.open(&aad, &stored).is_err());
    }
}

/// A download token of a password-protected transfer: once expired it is refused, its
/// row (the only copy of the DEK it carried, sealed under a key its secret derives) is
/// swept, and the token itself holds nothing the master key opens.
#[tokio::test]
async fn an_expired_download_token_opens_nothing_even_with_the_master_key() {
    let o = org().await;
    let (transfer, file) = ready(
        &o,
        &o.admin,
        json!({"name": "Pw", "password": "open sesame please"}),
    )
    .await;
    let (id, secret) = (s(&transfer, "id"), secret_of(&transfer));
    let token = token_of(unlock(&o, &id, Some(&secret), "open sesame please").await).await;
    assert_eq!(
        fetch_file(&o, &id, &file, None, Some(&token))
            .await
            .status(),
        200
    );
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    assert_eq!((raw.len(), raw[0]), (49, 2), "0x02 || id || secret");
    // The token is not a master-key sealed capability any more.
    let master = sealbox::crypto::MasterKey::from_file_bytes(
        &std::fs::read(o.app.data_dir.join("master.key")).unwrap(),
    )
    .unwrap();
    assert!(
        master
            .open(
                b"sealbox/v1/transfer-access\0",
                &String::from_utf8_lossy(&raw)
            )
            .is_err()
    );

    let conn = rusqlite::Connection::open(o.app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE download_tokens SET expires_at = '2000-01-01T00:00:00Z'",
        [],
    )
    .unwrap();
    // Refused: 401 to a link holder, 404 (as for an unknown transfer) without the link.
    assert_envelope(
        fetch_file(&o, &id, &file, Some(&secret), Some(&token)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        fetch_file(&o, &id, &file, None, Some(&token)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    // The housekeeping loop (every 10 s) drops the expired row with its sealed key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(&o.app, "SELECT count(*) FROM download_tokens") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired token was not swept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // Put back as it was, the row is gone: nothing to open, master key or not.
    conn.execute(
        "UPDATE download_tokens SET expires_at = '2100-01-01T00:00:00Z'",
        [],
    )
    .unwrap();
    assert_envelope(
        fetch_file(&o, &id, &file, Some(&secret), Some(&token)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(count(&o.app, "SELECT downloads FROM transfers"), 1);
}

/// One download link is one download session: fetching it again and in ranges writes one
/// `file.downloaded` audit row and one event, not one per request.
#[tokio::test]
async fn repeated_requests_of_one_download_link_are_one_audit_row_and_one_event() {
    let o = org().await;
    generate_keys(&o, &o.admin).await;
    let (_, url) = file_with_link(&o, &o.admin).await;
    for range in [None, None, Some("bytes=0-99"), Some("bytes=100-"), None] {
        let mut request = o.app.client.get(&url);
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{range:?}");
        response.bytes().await.unwrap();
    }
    assert_eq!(
        count(
            &o.app,
            "SELECT count(*) FROM audit_log WHERE action = 'file.downloaded'"
        ),
        1
    );
    assert_eq!(
        count(
            &o.app,
            "SELECT count(*) FROM outbox_events WHERE type = 'file.downloaded'"
        ),
        1
    );
    // A second link is a second download.
    let id: String = o
        .app
        .query("SELECT id FROM files", |row| row.get::<_, String>(0))[0]
        .clone();
    let again = o
        .app
        .client
        .get(o.app.url(&format!("/v1/files/{id}/download")))
        .bearer_auth(&o.admin)
        .header("X-User-Secret", USER_SECRET)
        .send()
        .await
        .unwrap();
    let second = s(&json_of(again, 200).await, "url");
    o.app
        .client
        .get(&second)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        count(
            &o.app,
            "SELECT count(*) FROM audit_log WHERE action = 'file.downloaded'"
        ),
        2
    );
}
