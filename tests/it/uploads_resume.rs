//! Uploads that break and resume, as clients and operators meet them: a real tus client
//! (tuspy, `tests/tus/upload.py`) abandoned mid-upload and resumed by a new one; the real
//! `sealbox` binary killed with SIGKILL while a PATCH streams in, restarted, and the upload
//! finished from the offset it reports; a 200 MiB upload and download during which the
//! server's memory stays flat; and disks that fill up under an upload and under finalize.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Client, Response};
use sealbox::crypto::sbx1::{DEFAULT_SEGMENT_EXPONENT, HEADER_LEN, TAG_LEN};
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, TestApp, json_of, s, venv_python};

use crate::support::SEALBOX_BIN as BIN;
const UPLOADER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tus/upload.py");
pub(crate) const SECRET: &str = "owner-secret-phrase";
/// With server-side encryption, the durable offset is a whole number of these segments
/// until the last byte arrives.
pub(crate) const SEGMENT: u64 = 1 << DEFAULT_SEGMENT_EXPONENT;
pub(crate) const MIB: u64 = 1024 * 1024;

/// Bytes that do not repeat within a segment, so misplaced segments are noticed.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

/// The offset the server reports after a chunk that reached `end` (from a segment
/// boundary): everything up to `end` once the upload is complete, else the whole segments
/// before it (short of the declared length, a full segment is known not to be the last).
fn durable_after(end: u64, length: u64) -> u64 {
    if end >= length {
        length
    } else {
        end / SEGMENT * SEGMENT
    }
}

/// Length of the upload's staged bytes once `offset` plaintext bytes are durable.
pub(crate) fn sealed_len(offset: u64) -> u64 {
    HEADER_LEN as u64 + offset / SEGMENT * (SEGMENT + TAG_LEN as u64)
}

/// First-run setup as the admin, then a key pair, so the admin can store files that
/// sealbox encrypts. Returns the access token.
pub(crate) async fn owner_on(client: &Client, base: &str, setup_token: &str) -> String {
    let pair = json_of(
        client
            .post(format!("{base}/v1/setup"))
            .json(&json!({
                "token": setup_token,
                "email": ADMIN_EMAIL,
                "password": ADMIN_PASSWORD,
                "displayName": "Ada Lovelace",
                "organizationName": "Acme",
            }))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let token = s(&pair, "accessToken");
    let keys = client
        .post(format!("{base}/v1/keys/generate"))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 201);
    token
}

/// tus creation: the upload URL and the file id.
pub(crate) async fn create_tus(
    client: &Client,
    base: &str,
    token: &str,
    length: u64,
) -> (String, String) {
    let created = client
        .post(format!("{base}/v1/uploads"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", length)
        .header("Upload-Metadata", "filename a2lsbGVkLmJpbg==")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let header = |name: &str| created.headers()[name].to_str().unwrap().to_owned();
    (header("location"), header("x-sealbox-file-id"))
}

pub(crate) fn patch(
    client: &Client,
    location: &str,
    offset: u64,
    body: reqwest::Body,
) -> reqwest::RequestBuilder {
    client
        .patch(location)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset)
        .body(body)
}

pub(crate) fn upload_offset(response: &Response) -> u64 {
    response.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Finalizes the upload and returns a download link for it.
pub(crate) async fn finalize_and_link(
    client: &Client,
    base: &str,
    token: &str,
    file_id: &str,
) -> String {
    let finalized = client
        .post(format!("{base}/v1/files/{file_id}/finalize"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    json_of(finalized, 200).await;
    let link = client
        .get(format!("{base}/v1/files/{file_id}/download"))
        .bearer_auth(token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    s(&json_of(link, 200).await, "url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_resumes_an_abandoned_upload_from_the_offsets_the_server_reports() {
    let python = venv_python();
    let app = TestApp::spawn().await;
    let token = owner_on(&app.client, &app.base, app.setup_token.as_deref().unwrap()).await;
    let bytes = payload(MIB as usize + 123);
    let length = bytes.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tus-payload.bin");
    std::fs::write(&file, &bytes).unwrap();

    // Chunks of 100,000 bytes, not a whole number of segments: after each, the server
    // answers an offset below what was sent, and tuspy must go on from there.
    let chunk: u64 = 100_000;
    let (base, access) = (app.base.clone(), token.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(UPLOADER)
            .args([&base, &access])
            .arg(&file)
            .args([&chunk.to_string(), "--interrupt-after", "3"])
            .output()
            .expect("the venv's python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "upload.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(&stdout).unwrap();
    let offsets = |key: &str| -> Vec<u64> {
        result[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} in {result}"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };

    let mut expected = Vec::new();
    let mut at = 0;
    while at < length {
        at = durable_after(at + chunk, length);
        expected.push(at);
    }
    assert_eq!(offsets("first"), expected[..3], "{result}");
    assert!(
        offsets("first")
            .iter()
            .all(|&o| o.is_multiple_of(SEGMENT) && o > 0)
    );
    // The new uploader learned where to go on from the server alone (HEAD).
    assert_eq!(result["resumedAt"], expected[2], "{result}");
    assert_eq!(offsets("resumed"), expected[3..], "{result}");

    let file_id = s(&result, "fileId");
    let url = finalize_and_link(&app.client, &app.base, &token, &file_id).await;
    let downloaded = app.client.get(&url).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert!(
        downloaded.bytes().await.unwrap() == bytes,
        "the download differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_killed_mid_patch_with_sigkill_resumes_after_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let client = Client::new();
    let mut server = Server::start(home.path(), true);
    let token = owner_on(
        &client,
        &server.base,
        server.setup_token.as_deref().unwrap(),
    )
    .await;
    let bytes = payload(12 * MIB as usize);
    let length = bytes.len() as u64;
    let (location, file_id) = create_tus(&client, &server.base, &token, length).await;
    let path = location.strip_prefix(&server.base).unwrap().to_owned();

    // 5 MiB in a PATCH that completes.
    let first_end = 5 * MIB;
    let first = patch(
        &client,
        &location,
        0,
        bytes[..first_end as usize].to_vec().into(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(first.status(), 204);
    let durable = upload_offset(&first);
    assert_eq!(durable, durable_after(first_end, length));

    // The rest streams in a second PATCH, fed a chunk at a time and never ended: once 3 MiB
    // more are sealed on disk, the server is killed with SIGKILL in the middle of it.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let streaming = tokio::spawn(
        patch(
            &client,
            &location,
            durable,
            reqwest::Body::wrap_stream(body),
        )
        .send(),
    );
    let part = home.path().join(format!("data/uploads/{file_id}.part"));
    let staged = || std::fs::metadata(&part).map_or(0, |m| m.len());
    const CHUNK: u64 = 256 * 1024;
    let mut sent = durable;
    let deadline = Instant::now() + Duration::from_secs(60);
    while staged() < sealed_len(durable + 3 * MIB) {
        assert!(
            Instant::now() < deadline,
            "the streamed bytes never reached the disk"
        );
        // Never the last megabyte: the request must still be running when the kill comes.
        if sent + CHUNK <= length - MIB {
            let chunk = &bytes[sent as usize..(sent + CHUNK) as usize];
            tx.send(Bytes::copy_from_slice(chunk)).await.unwrap();
            sent += CHUNK;
        } else {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let status = server.kill();
    assert_eq!(status.signal(), Some(9), "{status}");
    let on_disk = staged();
    drop(tx);
    let cut = tokio::time::timeout(Duration::from_secs(30), streaming)
        .await
        .expect("the cut request ends")
        .unwrap();
    assert!(
        cut.is_err(),
        "the PATCH got an answer from a killed server: {cut:?}"
    );

    // Restarted on the same data directory (another port), the upload stands at a whole
    // segment no further than what was sent, and no earlier than what was confirmed.
    let server = Server::start(home.path(), false);
    let location = format!("{}{path}", server.base);
    let head = client
        .head(&location)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["upload-length"], length.to_string().as_str());
    let resume_at = upload_offset(&head);
    assert!(
        resume_at.is_multiple_of(SEGMENT) && (durable..=sent).contains(&resume_at),
        "resume at {resume_at}: confirmed {durable}, sent {sent}"
    );
    eprintln!(
        "SIGKILL: confirmed {durable}, sent {sent}, {on_disk} bytes staged at the kill; \
         after the restart HEAD says {resume_at}"
    );

    let rest = patch(
        &client,
        &location,
        resume_at,
        bytes[resume_at as usize..].to_vec().into(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(rest.status(), 204);
    assert_eq!(upload_offset(&rest), length);
    let url = finalize_and_link(&client, &server.base, &token, &file_id).await;
    let downloaded = client.get(&url).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert!(
        downloaded.bytes().await.unwrap() == bytes,
        "the download differs"
    );

    // Nothing of the interrupted request is left behind.
    let doctor = Command::new(BIN)
        .env_clear()
        .env("HOME", home.path())
        .args(["doctor", "--scrub", "--config"])
        .arg(home.path().join("sealbox.toml"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{report}");
    assert!(report.contains("nothing orphaned"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_upload_and_its_download_keep_server_memory_flat() {
    const SIZE: u64 = 200 * MIB;
    /// How far the server's resident memory may grow while the bytes pass through.
    const BOUND: u64 = 64 * MIB;
    let home = tempfile::tempdir().unwrap();
    let client = Client::new();
    let server = Server::start(home.path(), true);
    let token = owner_on(
        &client,
        &server.base,
        server.setup_token.as_deref().unwrap(),
    )
    .await;
    let presigned = json_of(
        client
            .post(format!("{}/v1/files/presign", server.base))
            .bearer_auth(&token)
            .json(&json!({"filename": "big.bin", "size": SIZE}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;

    let pid = server.child.id();
    let rss = RssSampler::start(pid);
    let before_upload = vm_rss(pid);
    rss.reset();
    let started = Instant::now();
    let put = client
        .put(s(&presigned, "uploadUrl"))
        .body(reqwest::Body::wrap_stream(generated(SIZE)))
        .send()
        .await
        .unwrap();
    let progress = json_of(put, 200).await;
    let upload_peak = rss.reset();
    let upload_time = started.elapsed();
    assert_eq!(progress["complete"], true, "{progress}");

    let url = finalize_and_link(&client, &server.base, &token, &s(&presigned, "fileId")).await;
    let before_download = vm_rss(pid);
    rss.reset();
    let started = Instant::now();
    let mut download = client.get(&url).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let mut hasher = blake3::Hasher::new();
    let mut received = 0u64;
    while let Some(chunk) = download.chunk().await.unwrap() {
        hasher.update(&chunk);
        received += chunk.len() as u64;
    }
    let download_peak = rss.stop();
    let download_time = started.elapsed();

    assert_eq!(received, SIZE);
    let mut expected = blake3::Hasher::new();
    let mut source = generator();
    let mut buf = vec![0u8; MIB as usize];
    for _ in 0..SIZE / MIB {
        source.fill(&mut buf);
        expected.update(&buf);
    }
    assert!(
        hasher.finalize() == expected.finalize(),
        "the download differs"
    );
    eprintln!(
        "200 MiB: upload {upload_time:?}, VmRSS {} -> peak {} KiB; download {download_time:?}, \
         VmRSS {} -> peak {} KiB",
        before_upload / 1024,
        upload_peak / 1024,
        before_download / 1024,
        download_peak / 1024
    );
    assert!(
        upload_peak < before_upload + BOUND,
        "the upload grew the server from {before_upload} to {upload_peak} bytes"
    );
    assert!(
        download_peak < before_download + BOUND,
        "the download grew the server from {before_download} to {download_peak} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_leaves_nothing_half_written() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let client = Client::new();
    // Staging holds 2 MiB, the blob store 1 MiB; the database is on the real disk.
    let server = Server::start_with_small_disks(home.path(), 2 * MIB, MIB);
    let token = owner_on(
        &client,
        &server.base,
        server.setup_token.as_deref().unwrap(),
    )
    .await;
    let staged = server.seen(&data.join("uploads"));
    let stored = server.seen(&data.join("blobs"));
    let head = |location: String| {
        client
            .head(location)
            .header("Tus-Resumable", "1.0.0")
            .send()
    };

    // An upload bigger than the staging disk: the write that meets ENOSPC is answered 507
    // and the upload is cut back to its last durable offset (none yet), not left half full.
    let big = payload((2 * MIB + MIB / 2) as usize);
    let (location, _) = create_tus(&client, &server.base, &token, big.len() as u64).await;
    let refused = patch(&client, &location, 0, big.into())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 507);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED", "{body}");
    let after = head(location.clone()).await.unwrap();
    assert_eq!(upload_offset(&after), 0);
    assert_eq!(
        bytes_under(&staged),
        0,
        "the refused bytes are gone from staging"
    );
    let terminated = client
        .delete(&location)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(terminated.status(), 204);

    // An upload that fits in staging but not in the blob store: finalize answers 507,
    // the blob store keeps no partial copy, and the upload stays whole for a retry.
    let middling = payload((MIB + MIB / 2) as usize);
    let length = middling.len() as u64;
    let (location, file_id) = create_tus(&client, &server.base, &token, length).await;
    let sent = patch(&client, &location, 0, middling.into())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 204);
    let finalized = client
        .post(format!("{}/v1/files/{file_id}/finalize", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(finalized.status(), 507);
    assert_eq!(bytes_under(&stored), 0, "no partial blob is left behind");
    let kept = head(location).await.unwrap();
    assert_eq!(
        upload_offset(&kept),
        length,
        "the upload waits whole for a retry"
    );

    // The server is fine otherwise: a file that fits goes through, byte for byte.
    let small = payload(200 * 1024);
    let (location, file_id) = create_tus(&client, &server.base, &token, small.len() as u64).await;
    let sent = patch(&client, &location, 0, small.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 204);
    let link = finalize_and_link(&client, &server.base, &token, &file_id).await;
    let downloaded = client.get(link).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.bytes().await.unwrap(), small);
}

/// Total length of the files under `dir`, recursively.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                bytes_under(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// The 200 MiB test's bytes: BLAKE3 output of a fixed seed, incompressible and cheap to
/// make again for the comparison.
fn generator() -> blake3::OutputReader {
    blake3::Hasher::new()
        .update(b"sealbox flat-memory upload")
        .finalize_xof()
}

/// `size` generated bytes as a request body, a megabyte at a time (never all in memory).
fn generated(
    size: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold((generator(), size), |(mut source, left)| async move {
        if left == 0 {
            return None;
        }
        let mut chunk = vec![0u8; left.min(MIB) as usize];
        source.fill(&mut chunk);
        let n = chunk.len() as u64;
        Some((Ok(Bytes::from(chunk)), (source, left - n)))
    })
}

/// Samples a process's resident memory (VmRSS) every few milliseconds and keeps the peak.
struct RssSampler {
    pid: u32,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(vm_rss(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(vm_rss(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            pid,
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// The peak since the last reset (bytes); the next peak starts from now.
    fn reset(&self) -> u64 {
        let now = vm_rss(self.pid);
        self.peak.swap(now, Ordering::Relaxed).max(now)
    }

    fn stop(mut self) -> u64 {
        let peak = self.reset();
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        peak
    }
}

/// The process's resident memory in bytes.
fn vm_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    kib * 1024
}
