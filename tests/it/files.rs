//! Encrypted files: the JSON routes for small files, presigned uploads (PUT and tus)
//! encrypted as they stream in, finalize, download links with `Range`, limits and quotas,
//! and what lands on disk.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::{TestApp, assert_envelope, json_of, s};

const SECRET: &str = "owner-secret-phrase";
const SEGMENT: usize = 64 * 1024;

struct Owner {
    app: TestApp,
    token: String,
}

async fn owner_with(adjust: impl FnOnce(&mut sealbox::config::Config)) -> Owner {
    let app = TestApp::spawn_with(adjust).await;
    let token = s(&app.setup_admin().await, "accessToken");
    let keys = app
        .client
        .post(app.url("/v1/keys/generate"))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 201);
    Owner { app, token }
}

async fn owner() -> Owner {
    owner_with(|_| {}).await
}

/// Bytes that do not repeat within a segment, so misplaced segments are noticed.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

async fn presign(o: &Owner, body: Value) -> reqwest::Response {
    o.app
        .send_as(
            Method::POST,
            "/v1/files/presign",
            &o.token,
            Some(&body),
            None,
        )
        .await
}

async fn upload_whole(o: &Owner, name: &str, bytes: &[u8], encryption: &str) -> String {
    let presigned = json_of(
        presign(
            o,
            json!({"filename": name, "contentType": "application/pdf", "size": bytes.len(),
                   "encryption": encryption}),
        )
        .await,
        201,
    )
    .await;
    let put = o
        .app
        .client
        .put(s(&presigned, "uploadUrl"))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let progress = json_of(put, 200).await;
    assert_eq!(progress["complete"], true);
    let id = s(&presigned, "fileId");
    let finalized = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/files/{id}/finalize"),
            &o.token,
            None,
            None,
        )
        .await;
    let stored = json_of(finalized, 200).await;
    assert_eq!(stored["sizeBytes"], bytes.len());
    id
}

async fn download_url(o: &Owner, id: &str) -> String {
    let link = o
        .app
        .client
        .get(o.app.url(&format!("/v1/files/{id}/download")))
        .bearer_auth(&o.token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    s(&json_of(link, 200).await, "url")
}

async fn fetch(o: &Owner, url: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = o.app.client.get(url);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn small_files_go_whole_as_json() {
    let o = owner().await;
    let created = json_of(
        o.app
            .send_as(
                Method::POST,
                "/v1/files",
                &o.token,
                Some(
                    &json!({"fileName": "snapshot.json", "contentB64": B64.encode(b"{\"a\":1}"),
                             "contentType": "application/json"}),
                ),
                None,
            )
            .await,
        201,
    )
    .await;
    assert_eq!(created["fileName"], "snapshot.json");
    assert_eq!(created["sizeBytes"], 7);
    let id = s(&created, "id");
    let with_secret = |path: String| {
        let o = &o;
        async move {
            o.app
                .client
                .get(o.app.url(&path))
                .bearer_auth(&o.token)
                .header("X-User-Secret", SECRET)
                .send()
                .await
                .unwrap()
        }
    };
    let listed = json_of(with_secret("/v1/files".into()).await, 200).await;
    assert_eq!(listed[0]["fileName"], "snapshot.json");
    assert_eq!(listed[0]["contentType"], "application/json");
    let read = json_of(with_secret(format!("/v1/files/{id}")).await, 200).await;
    assert_eq!(B64.decode(s(&read, "contentB64")).unwrap(), b"{\"a\":1}");
    assert_eq!(read["fileName"], "snapshot.json");
    let no_secret = o.app.get_as(&format!("/v1/files/{id}"), &o.token).await;
    assert_envelope(no_secret, 401, "UNAUTHORIZED").await;

    let bad = o
        .app
        .send_as(
            Method::POST,
            "/v1/files",
            &o.token,
            Some(&json!({"fileName": "x", "contentB64": "%%%"})),
            None,
        )
        .await;
    assert_envelope(bad, 400, "BAD_REQUEST").await;

    let deleted = o
        .app
        .send_as(
            Method::DELETE,
            &format!("/v1/files/{id}"),
            &o.token,
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    assert_envelope(
        with_secret(format!("/v1/files/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let blobs = o.app.blobs.keys().await;
    assert!(blobs.is_empty(), "{blobs:?}");
}

#[tokio::test]
async fn uploads_stream_in_encrypted_and_download_with_ranges() {
    let o = owner().await;
    let bytes = payload(5 * SEGMENT + 1234);
    let id = upload_whole(&o, "report 2026 \u{e9}t\u{e9}.pdf", &bytes, "server").await;

    // Nothing of the plaintext is on disk: not in the blob, not in the database.
    let mut disk = Vec::new();
    for path in walk(&o.app.data_dir) {
        disk.extend(std::fs::read(path).unwrap());
    }
    for stored in o.app.blobs.outside_data_dir().await {
        disk.extend(stored);
    }
    let probe = &bytes[SEGMENT + 100..SEGMENT + 164];
    assert!(!disk.windows(probe.len()).any(|w| w == probe));
    assert!(!disk.windows(11).any(|w| w == b"report 2026"));

    let url = download_url(&o, &id).await;
    let whole = fetch(&o, &url, None).await;
    assert_eq!(whole.status(), 200);
    let headers = whole.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert!(headers["etag"].to_str().unwrap().starts_with('"'));
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.contains("filename*=UTF-8''report%202026%20%C3%A9t%C3%A9.pdf"),
        "{disposition}"
    );
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &bytes[..]);

    let n = bytes.len();
    for (range, expected) in [
        ("bytes=0-0", 0..1),
        ("bytes=65535-65536", SEGMENT - 1..SEGMENT + 1),
        ("bytes=65536-131071", SEGMENT..2 * SEGMENT),
        ("bytes=-10", n - 10..n),
        ("bytes=300000-", 300_000..n),
        ("bytes=5-999999999", 5..n),
    ] {
        let partial = fetch(&o, &url, Some(range)).await;
        assert_eq!(partial.status(), 206, "{range}");
        let content_range = partial.headers()["content-range"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            content_range,
            format!("bytes {}-{}/{n}", expected.start, expected.end - 1),
            "{range}"
        );
        assert_eq!(
            partial.bytes().await.unwrap().as_ref(),
            &bytes[expected],
            "{range}"
        );
    }
    let beyond = fetch(&o, &url, Some("bytes=999999999-")).await;
    assert_eq!(beyond.status(), 416);
    assert_eq!(
        beyond.headers()["content-range"],
        format!("bytes */{n}").as_str()
    );
    let downloads: Vec<i64> = o.app.query(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'file.downloaded'",
        |r| r.get(0),
    );
    assert_eq!(
        downloads,
        [1],
        "one link is one download session: its requests and ranges are one download"
    );
    let head = o.app.client.head(&url).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], n.to_string().as_str());

    // A link needs the owner's secret for a file sealbox encrypted.
    let without = o
        .app
        .get_as(&format!("/v1/files/{id}/download"), &o.token)
        .await;
    assert_envelope(without, 401, "UNAUTHORIZED").await;
    let forged = fetch(&o, &o.app.url("/v1/downloads/AAAA"), None).await;
    assert_envelope(forged, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn client_encrypted_bytes_are_stored_untouched() {
    let o = owner().await;
    let bytes = payload(100_000);
    let id = upload_whole(&o, "ciphertext.sbx", &bytes, "client").await;
    let stored: Vec<String> = o.app.query("SELECT blob_key FROM files", |r| r.get(0));
    assert_eq!(o.app.blobs.read(&stored[0]).await, bytes);
    let link = json_of(
        o.app
            .get_as(&format!("/v1/files/{id}/download"), &o.token)
            .await,
        200,
    )
    .await;
    let fetched = fetch(&o, &s(&link, "url"), Some("bytes=10-19")).await;
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), &bytes[10..20]);
}

#[tokio::test]
async fn limits_quotas_and_bad_uploads_are_refused_and_leave_nothing() {
    let o = owner_with(|c| {
        c.limits.max_file_bytes = 200_000;
        c.limits.org_quota_bytes = 300_000;
    })
    .await;
    let too_big = presign(&o, json!({"filename": "a", "size": 200_001})).await;
    assert_envelope(too_big, 413, "PAYLOAD_TOO_LARGE").await;
    upload_whole(&o, "first", &payload(150_000), "server").await;
    let over_quota = presign(&o, json!({"filename": "b", "size": 150_001})).await;
    assert_envelope(over_quota, 413, "QUOTA_EXCEEDED").await;
    let bad_mode = presign(
        &o,
        json!({"filename": "b", "size": 1, "encryption": "none"}),
    )
    .await;
    assert_envelope(bad_mode, 422, "VALIDATION").await;

    // A body longer than declared is refused; the upload can still be sent right.
    let presigned = json_of(
        presign(&o, json!({"filename": "c", "size": 1000})).await,
        201,
    )
    .await;
    let url = s(&presigned, "uploadUrl");
    let long = o
        .app
        .client
        .put(&url)
        .body(payload(1001))
        .send()
        .await
        .unwrap();
    assert_envelope(long, 400, "BAD_REQUEST").await;
    // A short body: finalize discards the upload (400), and its URL is gone.
    let short = o
        .app
        .client
        .put(&url)
        .body(payload(999))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(short, 200).await["complete"], false);
    let id = s(&presigned, "fileId");
    let finalize = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/files/{id}/finalize"),
            &o.token,
            None,
            None,
        )
        .await;
    assert_envelope(finalize, 400, "BAD_REQUEST").await;
    let after = o
        .app
        .client
        .put(&url)
        .body(payload(1000))
        .send()
        .await
        .unwrap();
    assert_envelope(after, 404, "NOT_FOUND").await;
    let staged = walk(&o.app.data_dir.join("uploads"));
    assert!(staged.is_empty(), "{staged:?}");
}

#[tokio::test]
async fn tus_uploads_resume_and_check_offsets_and_checksums() {
    let o = owner().await;
    let bytes = payload(3 * SEGMENT + 500);
    let options = o
        .app
        .client
        .request(Method::OPTIONS, o.app.url("/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 204);
    assert!(
        options.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("checksum")
    );

    let metadata = format!(
        "filename {},filetype {}",
        B64.encode("big.bin"),
        B64.encode("application/octet-stream")
    );
    let no_tus = o
        .app
        .client
        .post(o.app.url("/v1/uploads"))
        .bearer_auth(&o.token)
        .header("Upload-Length", bytes.len().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(no_tus.status(), 412);
    let created = o
        .app
        .client
        .post(o.app.url("/v1/uploads"))
        .bearer_auth(&o.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .header("Upload-Metadata", metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let file_id = created.headers()["x-sealbox-file-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let expires = created.headers()["upload-expires"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        expires.ends_with(" GMT") && expires.len() == 29,
        "{expires}"
    );

    let patch = |offset: usize, chunk: &[u8], checksum: Option<String>| {
        let mut request = o
            .app
            .client
            .patch(&location)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(chunk.to_vec());
        if let Some(checksum) = checksum {
            request = request.header("Upload-Checksum", checksum);
        }
        request.send()
    };
    let head = || {
        o.app
            .client
            .head(&location)
            .header("Tus-Resumable", "1.0.0")
            .send()
    };
    // 100,000 bytes arrive; only the whole segment is durable, and tus resumes there.
    let first = patch(0, &bytes[..100_000], None).await.unwrap();
    assert_eq!(first.status(), 204);
    assert_eq!(first.headers()["upload-expires"], expires.as_str());
    assert_eq!(
        first.headers()["upload-offset"],
        SEGMENT.to_string().as_str()
    );
    let standing = head().await.unwrap();
    assert_eq!(
        standing.headers()["upload-offset"],
        SEGMENT.to_string().as_str()
    );
    assert_eq!(
        standing.headers()["upload-length"],
        bytes.len().to_string().as_str()
    );
    let wrong_offset = patch(100_000, &bytes[100_000..], None).await.unwrap();
    assert_eq!(wrong_offset.status(), 409);
    let bad_sum = format!("sha256 {}", B64.encode([0u8; 32]));
    let mismatch = patch(SEGMENT, &bytes[SEGMENT..2 * SEGMENT], Some(bad_sum))
        .await
        .unwrap();
    assert_eq!(mismatch.status(), 460);
    assert_eq!(
        head().await.unwrap().headers()["upload-offset"],
        SEGMENT.to_string().as_str()
    );
    let sum = format!(
        "sha256 {}",
        B64.encode(sha2::Sha256::digest(&bytes[SEGMENT..]))
    );
    let rest = patch(SEGMENT, &bytes[SEGMENT..], Some(sum)).await.unwrap();
    assert_eq!(rest.status(), 204);
    assert_eq!(
        rest.headers()["upload-offset"],
        bytes.len().to_string().as_str()
    );

    let finalized = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/files/{file_id}/finalize"),
            &o.token,
            None,
            None,
        )
        .await;
    assert_eq!(finalized.status(), 200);
    let url = download_url(&o, &file_id).await;
    assert_eq!(
        fetch(&o, &url, None).await.bytes().await.unwrap().as_ref(),
        &bytes[..]
    );

    // Termination.
    let another = o
        .app
        .client
        .post(o.app.url("/v1/uploads"))
        .bearer_auth(&o.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    let gone = another.headers()["location"].to_str().unwrap().to_owned();
    let terminated = o
        .app
        .client
        .delete(&gone)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(terminated.status(), 204);
    let after = o
        .app
        .client
        .head(&gone)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 404);
}

/// A tus upload from the start, PATCHed in `chunks` (each given by its end); returns the
/// file id once finalized.
async fn upload_in_patches(o: &Owner, bytes: &[u8], encryption: &str, ends: &[usize]) -> String {
    let created = o
        .app
        .client
        .post(o.app.url("/v1/uploads"))
        .bearer_auth(&o.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .header(
            "Upload-Metadata",
            format!(
                "filename {},encryption {}",
                B64.encode("parts.bin"),
                B64.encode(encryption)
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id = created.headers()["x-sealbox-file-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut offset = 0;
    for &end in ends {
        let sent = o
            .app
            .client
            .patch(&location)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(bytes[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 204);
        offset = sent.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
    }
    assert_eq!(offset, bytes.len());
    let finalized = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/files/{id}/finalize"),
            &o.token,
            None,
            None,
        )
        .await;
    assert_eq!(finalized.status(), 200);
    id
}

#[tokio::test]
async fn the_recorded_blake3_is_the_stored_blobs_however_the_bytes_arrived() {
    // Finalize uses the digest kept while the bytes were written when it covers them all,
    // and hashes the file otherwise; either way the row must match the blob.
    let o = owner().await;
    let bytes = payload(3 * SEGMENT + 777);
    let mut ids = vec![
        upload_whole(&o, "whole.bin", &bytes, "server").await,
        upload_whole(&o, "whole-client.bin", &bytes, "client").await,
        // Each PATCH ends mid-segment: the server keeps whole segments, the client resends.
        upload_in_patches(
            &o,
            &bytes,
            "server",
            &[100_000, 2 * SEGMENT + 10, bytes.len()],
        )
        .await,
        upload_in_patches(&o, &bytes, "client", &[70_000, 150_000, bytes.len()]).await,
    ];
    ids.sort();
    let mut rows: Vec<(String, String, String)> = o
        .app
        .query("SELECT id, blob_key, blake3 FROM files ORDER BY id", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        });
    rows.sort();
    assert_eq!(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), ids);
    for (id, key, recorded) in rows {
        let actual = blake3::hash(&o.app.blobs.read(&key).await)
            .to_hex()
            .to_string();
        assert_eq!(recorded, actual, "file {id}");
        let url = download_url(&o, &id).await;
        assert_eq!(
            fetch(&o, &url, None).await.bytes().await.unwrap().as_ref(),
            &bytes[..]
        );
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_stored_blob_is_an_error_not_garbage() {
    let o = owner().await;
    let bytes = payload(3 * SEGMENT);
    let id = upload_whole(&o, "x.bin", &bytes, "server").await;
    let key: Vec<String> = o.app.query("SELECT blob_key FROM files", |r| r.get(0));
    let mut stored = o.app.blobs.read(&key[0]).await;
    stored[100] ^= 1;
    o.app.blobs.write(&key[0], &stored).await;
    let url = download_url(&o, &id).await;
    let first = fetch(&o, &url, None).await;
    assert_envelope(first, 500, "INTERNAL").await;
    let later = fetch(&o, &url, Some(&format!("bytes={}-", 2 * SEGMENT))).await;
    assert_eq!(later.status(), 206, "untouched segments still read");
    assert_eq!(later.bytes().await.unwrap().as_ref(), &bytes[2 * SEGMENT..]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_dropped_connection_keeps_the_whole_segments_that_arrived() {
    use tokio::io::AsyncWriteExt as _;
    let o = owner().await;
    let bytes = payload(6 * SEGMENT + 77);
    let presigned = json_of(
        presign(&o, json!({"filename": "flaky.bin", "size": bytes.len()})).await,
        201,
    )
    .await;
    let url = s(&presigned, "uploadUrl");
    let path = url.strip_prefix(&o.app.base).unwrap().to_owned();
    // Half the body, then the connection drops.
    let sent = 3 * SEGMENT + 1000;
    let mut stream = tokio::net::TcpStream::connect(o.app.addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        o.app.addr,
        bytes.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&bytes[..sent]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(stream);

    // The server keeps what it could seal: whole segments, one held back for the last.
    let mut offset = 0;
    for _ in 0..50 {
        let standing = o
            .app
            .client
            .head(&url)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        offset = standing.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        if offset > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(offset % SEGMENT, 0);
    assert!(offset >= 2 * SEGMENT && offset <= sent, "{offset}");
    let rest = o
        .app
        .client
        .patch(&url)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .body(bytes[offset..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 204);
    let id = s(&presigned, "fileId");
    let finalized = o
        .app
        .send_as(
            Method::POST,
            &format!("/v1/files/{id}/finalize"),
            &o.token,
            None,
            None,
        )
        .await;
    assert_eq!(finalized.status(), 200);
    let downloaded = fetch(&o, &download_url(&o, &id).await, None).await;
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), &bytes[..]);
}

#[tokio::test]
async fn tus_chunks_of_one_segment_advance_one_segment_each() {
    let o = owner().await;
    let bytes = payload(3 * SEGMENT + 10);
    let created = o
        .app
        .client
        .post(o.app.url("/v1/uploads"))
        .bearer_auth(&o.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .send()
        .await
        .unwrap();
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + SEGMENT).min(bytes.len());
        let sent = o
            .app
            .client
            .patch(&location)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(bytes[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 204);
        let now: usize = sent.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(now, end, "every whole segment counts at once");
        offset = now;
    }
}

#[tokio::test]
async fn the_organization_upload_budget_limits_upload_creation() {
    let o = owner_with(|c| c.rate_limits.org_uploads_per_hour = 2).await;
    for _ in 0..2 {
        let created = presign(&o, json!({"filename": "a", "size": 1})).await;
        assert_eq!(created.status(), 201);
    }
    let refused = presign(&o, json!({"filename": "a", "size": 1})).await;
    assert!(refused.headers().contains_key("retry-after"));
    let error = assert_envelope(refused, 429, "RATE_LIMITED").await;
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("uploads an hour"), "{message}");
    let tus = o
        .app
        .client
        .post(o.app.url("/v1/uploads"))
        .bearer_auth(&o.token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(tus.status(), 429);
}
