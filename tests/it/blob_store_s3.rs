//! The S3-compatible blob store (`storage.backend = "s3"`, docs/storage.md) against a real
//! S3 server on loopback: moto's server mode (`tests/s3/moto_server.py`, `moto[server]`
//! from tests/requirements.txt), started by each test with its own bucket. Uploads (tus and
//! JSON), finalize as single PUTs and as multipart uploads of 5 MiB parts, downloads whole
//! and by Range across part boundaries, transfers, deletes, a SIGKILL in the middle of a
//! multipart upload and the resume after it, orphaned multipart uploads aborted at
//! start-up, `doctor` and `doctor --scrub` on the bucket, and bad credentials.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::{Client, Method};
use sealbox::config::Config;
use sealbox::config::storage::BlobBackend;
use serde_json::json;

use crate::support::{SEALBOX_BIN, Server, TestApp, json_of, s, venv_python};
use crate::uploads_resume::{
    MIB, create_tus, finalize_and_link, owner_on, patch, payload, upload_offset,
};

const MOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3/moto_server.py");
const BUCKET: &str = "sealbox-blobs";
const PREFIX: &str = "tenant/blobs";
const ACCESS_KEY: &str = "AKIASEALBOXTEST";
const SECRET_KEY: &str = "never-in-a-log-3f9a1c";
/// The smallest part S3 takes, so a 12 MiB file is a multipart upload of three parts.
const PART: u64 = 5 * MIB;

/// A moto S3 server on a free loopback port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// Kept open so moto never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Moto {
    /// Starts moto with `buckets` created; `auth` makes it check credentials afterwards
    /// (it then knows no key, so every configured one is refused).
    pub fn start(buckets: &[&str], auth: bool) -> Self {
        let mut command = Command::new(venv_python());
        command
            .arg(MOTO)
            .args(buckets)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if auth {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", buckets.len().to_string());
        }
        let mut child = command.spawn().expect("moto starts");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("moto printed {line:?}"))
            .to_owned();
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _stdout: stdout,
        }
    }

    /// `[storage.s3]` for this server's `bucket`.
    pub fn configure(&self, config: &mut Config, bucket: &str, prefix: &str) {
        config.storage.backend = BlobBackend::S3;
        let s3 = &mut config.storage.s3;
        s3.endpoint = self.endpoint.clone();
        s3.bucket = bucket.into();
        s3.prefix = prefix.into();
        s3.access_key_id = ACCESS_KEY.into();
        s3.secret_access_key = sealbox::config::Secret::new(SECRET_KEY);
        s3.part_size_bytes = PART;
        s3.request_timeout_secs = 10;
        s3.max_retries = 1;
    }

    /// The same as a TOML file's `[storage]` lines (for the real binary).
    fn toml(&self, data: &Path) -> String {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = {}\nbackend = \"s3\"\n\
             [storage.s3]\nendpoint = \"{}\"\nbucket = \"{BUCKET}\"\nprefix = \"{PREFIX}\"\n\
             access_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n\
             part_size_bytes = {PART}\nrequest_timeout_secs = 10\nmax_retries = 1\n\
             [tls]\nmode = \"off\"\n\
             [rate_limits]\nper_ip_per_minute = 100000\n\
             per_token_per_minute = 100000\nper_api_key_per_minute = 100000\n\
             [log]\nlevel = \"warn\"\n",
            toml::Value::from(data.to_str().unwrap()),
            self.endpoint
        )
    }

    /// Keys and sizes of the objects under `prefix` (an unsigned request: moto without
    /// `auth` takes it).
    pub async fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let body = reqwest::get(format!(
            "{}/{bucket}?list-type=2&prefix={prefix}",
            self.endpoint
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        let tag = |chunk: &str, name: &str| -> String {
            let open = format!("<{name}>");
            let start = chunk.find(&open).unwrap() + open.len();
            let end = chunk[start..].find(&format!("</{name}>")).unwrap() + start;
            chunk[start..end].to_owned()
        };
        body.split("<Contents>")
            .skip(1)
            .map(|chunk| (tag(chunk, "Key"), tag(chunk, "Size").parse().unwrap()))
            .collect()
    }

    /// Multipart uploads in progress in `bucket`.
    pub async fn multipart_uploads(&self, bucket: &str) -> usize {
        reqwest::get(format!("{}/{bucket}?uploads", self.endpoint))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .matches("<UploadId>")
            .count()
    }

    /// Starts a multipart upload of `key` behind sealbox's back; returns its upload id.
    async fn create_multipart(&self, bucket: &str, key: &str) -> String {
        let body = Client::new()
            .post(format!("{}/{bucket}/{key}?uploads", self.endpoint))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let start = body.find("<UploadId>").unwrap() + "<UploadId>".len();
        let end = body.find("</UploadId>").unwrap();
        body[start..end].to_owned()
    }

    /// A signed client of `bucket`. moto answers an unsigned GET or HEAD of an object
    /// stored with a single PUT with 403 (its ACL is private, and an anonymous request
    /// may only read public objects), so what the tests read or write behind sealbox's
    /// back goes through a real S3 client; moto without `auth` takes any credentials.
    fn bucket(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("moto")
            .with_secret_access_key("moto")
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    /// The ETag of `key` (a multipart object's ends in `-<parts>`).
    async fn etag(&self, bucket: &str, key: &str) -> String {
        use object_store::ObjectStore;
        let meta = self
            .bucket(bucket)
            .head(&object_store::path::Path::from(key))
            .await
            .unwrap_or_else(|e| panic!("HEAD {key}: {e}"));
        meta.e_tag.unwrap().trim_matches('"').to_owned()
    }

    /// The stored bytes of `key`.
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        use object_store::ObjectStore;
        self.bucket(bucket)
            .get(&object_store::path::Path::from(key))
            .await
            .unwrap_or_else(|e| panic!("GET {key}: {e}"))
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    /// Writes `bytes` as `key`, behind sealbox's back.
    pub async fn put_object(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        use object_store::ObjectStore;
        self.bucket(bucket)
            .put(&object_store::path::Path::from(key), bytes.into())
            .await
            .unwrap_or_else(|e| panic!("PUT {key}: {e}"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TestApp on a fresh moto bucket, with metrics on, and its signed-in owner with keys.
async fn app_on(moto: &Moto) -> (TestApp, String) {
    let app = TestApp::spawn_with(|config| {
        moto.configure(config, BUCKET, PREFIX);
        config.metrics.enabled = true;
        config.metrics.bearer_token = sealbox::config::Secret::new("metrics-token-for-s3-tests");
    })
    .await;
    let token = owner_on(&app.client, &app.base, app.setup_token.as_deref().unwrap()).await;
    (app, token)
}

async fn ranged(client: &Client, url: &str, range: &str) -> (u16, Vec<u8>) {
    let response = client.get(url).header("Range", range).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// The object of a file: `<prefix>/file-<uuid without hyphens>` (its blob key).
fn object_key(file_id: &str) -> String {
    format!("{PREFIX}/{}", blob_key(file_id))
}

fn blob_key(file_id: &str) -> String {
    format!("file-{}", uuid::Uuid::parse_str(file_id).unwrap().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_finalize_into_the_bucket_and_download_whole_and_by_range_across_parts() {
    let moto = Moto::start(&[BUCKET], false);
    let (app, token) = app_on(&moto).await;
    let client = &app.client;
    // Ready, though the local blob write area was never made.
    assert_eq!(app.get("/ready").await.status(), 200);

    // 12 MiB through tus, sealed by sealbox: a multipart upload of three 5 MiB parts.
    let bytes = payload(12 * MIB as usize);
    let (location, file_id) = create_tus(client, &app.base, &token, bytes.len() as u64).await;
    let sent = patch(client, &location, 0, bytes.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 204);
    assert_eq!(upload_offset(&sent), bytes.len() as u64);
    let url = finalize_and_link(client, &app.base, &token, &file_id).await;
    let objects = moto.objects(BUCKET, PREFIX).await;
    let stored = objects
        .iter()
        .find(|(key, _)| *key == object_key(&file_id))
        .unwrap_or_else(|| panic!("no object for {file_id}: {objects:?}"));
    assert!(stored.1 > bytes.len() as u64, "sealed bytes are longer");
    assert!(
        moto.etag(BUCKET, &stored.0).await.ends_with("-3"),
        "a multipart object of three parts"
    );
    assert!(
        !app.data_dir
            .join(format!("uploads/{file_id}.part"))
            .exists(),
        "the staged bytes are gone once stored"
    );
    assert_eq!(moto.multipart_uploads(BUCKET).await, 0);
    // The plaintext never reaches the bucket.
    let raw = moto.object(BUCKET, &stored.0).await;
    assert_eq!(raw.len() as u64, stored.1);
    assert!(!raw.windows(64).any(|w| w == &bytes[4096..4160]));

    let whole = client.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert!(
        whole.bytes().await.unwrap() == bytes,
        "the download differs"
    );
    // Ranges that cross the stored object's 5 MiB part boundaries (the sealed bytes are a
    // little longer than the plaintext, so these plaintext offsets straddle them).
    for (start, end) in [
        (PART - 1000, PART + 1000),
        (2 * PART - 70_000, 2 * PART + 70_000),
        (0, 3 * PART / 2),
        (bytes.len() as u64 - 10, bytes.len() as u64 - 1),
    ] {
        let (status, got) = ranged(client, &url, &format!("bytes={start}-{end}")).await;
        assert_eq!(status, 206, "{start}-{end}");
        assert!(
            got == bytes[start as usize..=end as usize],
            "range {start}-{end} differs"
        );
    }
    let (status, got) = ranged(client, &url, "bytes=-5").await;
    assert_eq!((status, got.as_slice()), (206, &bytes[bytes.len() - 5..]));
    let (status, _) = ranged(client, &url, &format!("bytes={}-", bytes.len())).await;
    assert_eq!(status, 416);

    // A small client-encrypted file (presign + PUT): one PUT, stored as sent.
    let small = payload(70_000);
    let small_id = app.upload_file(&token, "small.bin", &small, "client").await;
    let small_key = object_key(&small_id);
    let etag = moto.etag(BUCKET, &small_key).await;
    assert!(!etag.contains('-'), "a single PUT: {etag}");
    let stored_small = moto.object(BUCKET, &small_key).await;
    assert!(stored_small == small, "client ciphertext is stored as sent");

    // A JSON upload (`POST /v1/files`, server-encrypted), downloaded back.
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/files",
            &token,
            Some(&json!({"fileName": "notes.json",
                         "contentB64": base64::engine::general_purpose::STANDARD.encode(b"{\"a\":1}"),
                         "contentType": "application/json"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let json_id = s(&created, "id");
    assert!(
        moto.objects(BUCKET, PREFIX)
            .await
            .iter()
            .any(|(key, _)| *key == object_key(&json_id))
    );

    // Deleting a file deletes its object.
    let deleted = app.delete_as(&format!("/v1/files/{file_id}"), &token).await;
    assert_eq!(deleted.status(), 204);
    let left: Vec<String> = moto
        .objects(BUCKET, PREFIX)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert!(!left.contains(&object_key(&file_id)), "{left:?}");
    assert!(left.contains(&object_key(&small_id)), "{left:?}");
    let gone = client.get(&url).send().await.unwrap();
    assert_eq!(gone.status(), 404);

    // The store's requests are counted by operation.
    let metrics = client
        .get(app.url("/metrics"))
        .bearer_auth("metrics-token-for-s3-tests")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for operation in [
        "put",
        "create_multipart",
        "put_part",
        "complete_multipart",
        "get",
        "delete",
    ] {
        let series = format!(
            "sealbox_blob_store_requests_total{{backend=\"s3\",operation=\"{operation}\"}}"
        );
        assert!(metrics.contains(&series), "no {series} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_round_trips_through_the_bucket_and_revocation_deletes_its_objects() {
    let moto = Moto::start(&[BUCKET], false);
    let (app, token) = app_on(&moto).await;
    let bytes = payload(6 * MIB as usize);
    let transfer = json_of(
        app.send_as(
            Method::POST,
            "/v1/transfers",
            &token,
            Some(&json!({"name": "Q3 contracts", "maxDownloads": 5})),
            None,
        )
        .await,
        201,
    )
    .await;
    let id = s(&transfer, "id");
    let link = s(&transfer, "link");
    let link_secret = link
        .split_once("#s=")
        .map(|(_, rest)| rest.split('&').next().unwrap().to_owned())
        .unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let uploaded = app
        .client
        .post(s(&transfer, "uploadUrl"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .header(
            "Upload-Metadata",
            format!(
                "filename {},encryption {}",
                engine.encode("report.pdf"),
                engine.encode("server")
            ),
        )
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let file = uploaded.headers()["x-sealbox-file-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let done = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/transfers/{id}/finalize"),
            &token,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(done["status"], "ready");
    assert!(
        moto.etag(BUCKET, &object_key(&file)).await.ends_with("-2"),
        "two parts"
    );

    let public = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("X-Transfer-Secret", &link_secret)
    };
    let unlocked = json_of(
        public(Method::POST, &format!("/v1/public/transfers/{id}/unlock"))
            .json(&json!({"password": ""}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let download_token = s(&unlocked, "downloadToken");
    let path = format!("/v1/public/transfers/{id}/files/{file}?token={download_token}");
    let whole = public(Method::GET, &path).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert!(
        whole.bytes().await.unwrap() == bytes,
        "the download differs"
    );
    let ranged = public(Method::GET, &path)
        .header("Range", format!("bytes={}-{}", PART - 10, PART + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert!(
        ranged.bytes().await.unwrap() == bytes[PART as usize - 10..=PART as usize + 10],
        "the range differs"
    );

    let revoked = app.delete_as(&format!("/v1/transfers/{id}"), &token).await;
    assert_eq!(revoked.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(20);
    while moto
        .objects(BUCKET, PREFIX)
        .await
        .iter()
        .any(|(key, _)| *key == object_key(&file))
    {
        assert!(
            Instant::now() < deadline,
            "the revoked transfer's object stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_that_no_finalize_owns_are_aborted_at_start_up() {
    let moto = Moto::start(&[BUCKET], false);
    let dir = tempfile::tempdir().unwrap();
    // A process that stopped mid-upload left a journaled multipart upload behind.
    let key = format!("{PREFIX}/file-019a0000000070008000000000000001");
    let upload_id = moto.create_multipart(BUCKET, &key).await;
    assert_eq!(moto.multipart_uploads(BUCKET).await, 1);
    let journal = dir.path().join("s3-multipart");
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::write(
        journal.join("left-by-a-crash"),
        serde_json::to_vec(&json!({"location": key, "upload_id": upload_id})).unwrap(),
    )
    .unwrap();
    // And a journal file cut short before it was written (its upload never existed).
    std::fs::write(journal.join("cut-short"), b"{\"locat").unwrap();

    let app = TestApp::spawn_in(dir.path(), |config| moto.configure(config, BUCKET, PREFIX))
        .await
        .expect("starts");
    assert_eq!(
        moto.multipart_uploads(BUCKET).await,
        0,
        "aborted at start-up"
    );
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_during_a_multipart_upload_resumes_and_doctor_scrubs_the_bucket() {
    let moto = Moto::start(&[BUCKET], false);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("sealbox.toml"),
        moto.toml(&home.path().join("data")),
    )
    .unwrap();
    let client = Client::new();
    let mut server = Server::start(home.path(), true);
    let token = owner_on(
        &client,
        &server.base,
        server.setup_token.as_deref().unwrap(),
    )
    .await;

    // 60 MiB staged completely (thirteen parts to send at finalize).
    let bytes = payload(60 * MIB as usize);
    let length = bytes.len() as u64;
    let (location, file_id) = create_tus(&client, &server.base, &token, length).await;
    let path = location.strip_prefix(&server.base).unwrap().to_owned();
    let sent = patch(&client, &location, 0, bytes.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 204);
    assert_eq!(upload_offset(&sent), length);

    // Finalize, and SIGKILL the server once its multipart upload is journaled.
    let finalize = {
        let (client, url, token) = (
            client.clone(),
            format!("{}/v1/files/{file_id}/finalize", server.base),
            token.clone(),
        );
        tokio::spawn(async move { client.post(url).bearer_auth(token).send().await })
    };
    let journal = home.path().join("data/s3-multipart");
    let deadline = Instant::now() + Duration::from_secs(60);
    // A journal entry is written under a dot name and renamed into place once synced:
    // wait for a whole one, whose upload id a restart can abort.
    let journaled = || {
        std::fs::read_dir(&journal).map_or(0, |d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
    };
    while journaled() == 0 {
        assert!(
            !finalize.is_finished(),
            "finalize ended before its multipart upload was seen"
        );
        assert!(Instant::now() < deadline, "no multipart upload started");
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = server.kill();
    assert_eq!(status.signal(), Some(9), "{status}");
    let cut = tokio::time::timeout(Duration::from_secs(30), finalize)
        .await
        .unwrap()
        .unwrap();
    assert!(cut.is_err(), "a killed server answered: {cut:?}");
    // The interrupted upload is still in the bucket, and no object became visible.
    assert_eq!(moto.multipart_uploads(BUCKET).await, 1);
    assert!(
        !moto
            .objects(BUCKET, PREFIX)
            .await
            .iter()
            .any(|(key, _)| *key == object_key(&file_id)),
        "a half-sent blob is visible"
    );

    // Restarted: the orphaned multipart upload is aborted, the upload still stands at its
    // full length (its staged bytes are intact), and finalize starts over.
    let server = Server::start(home.path(), false);
    assert_eq!(
        moto.multipart_uploads(BUCKET).await,
        0,
        "aborted at start-up"
    );
    let location = format!("{}{path}", server.base);
    let head = client
        .head(&location)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(upload_offset(&head), length);
    let url = finalize_and_link(&client, &server.base, &token, &file_id).await;
    assert!(
        moto.etag(BUCKET, &object_key(&file_id))
            .await
            .ends_with("-13"),
        "thirteen parts (60 MiB sealed is a little over twelve)"
    );
    let downloaded = client.get(&url).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert!(
        downloaded.bytes().await.unwrap() == bytes,
        "the download differs"
    );

    // doctor checks the store, and --scrub reads the bucket back: all is well...
    let doctor = |scrub: bool| {
        let mut command = Command::new(SEALBOX_BIN);
        command.env_clear().env("HOME", home.path()).arg("doctor");
        if scrub {
            command.arg("--scrub");
        }
        let out = command
            .arg("--config")
            .arg(home.path().join("sealbox.toml"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, report) = doctor(true);
    assert!(ok, "{report}");
    assert!(
        report.contains("ok       blob storage: S3 bucket sealbox-blobs"),
        "{report}"
    );
    assert!(
        report.contains("probe object was written, read back and deleted"),
        "{report}"
    );
    assert!(report.contains("ok       store clock: within"), "{report}");
    assert!(report.contains("1 blob(s)"), "{report}");
    assert!(report.contains("nothing orphaned"), "{report}");
    assert!(!report.contains(SECRET_KEY));

    // ...then a stray object and a changed blob are found.
    let stray = format!("{PREFIX}/file-019a00000000700080000000000000ff");
    moto.put_object(BUCKET, &stray, b"stray".to_vec()).await;
    let mut stored = moto.object(BUCKET, &object_key(&file_id)).await;
    stored[1000] ^= 1;
    moto.put_object(BUCKET, &object_key(&file_id), stored).await;
    let (ok, report) = doctor(true);
    assert!(!ok, "{report}");
    assert!(
        report.contains(&format!(
            "orphan blob s3://{BUCKET}/{stray} (5 bytes): no file refers to it"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "file {file_id}: blob {} has BLAKE3",
            blob_key(&file_id)
        )),
        "{report}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_stop_start_up_and_doctor_with_a_clear_error() {
    let moto = Moto::start(&[BUCKET], true);
    let dir = tempfile::tempdir().unwrap();
    let refused = TestApp::spawn_in(dir.path(), |config| moto.configure(config, BUCKET, PREFIX))
        .await
        .err()
        .expect("start-up fails");
    let message = refused.to_string();
    assert!(message.contains("cannot use S3 storage (bucket sealbox-blobs, prefix tenant/blobs/, at http://127.0.0.1:"), "{message}");
    assert!(
        message.contains("check storage.s3.endpoint, bucket, region and credentials"),
        "{message}"
    );
    assert!(
        message.contains("InvalidAccessKeyId") || message.contains("403"),
        "{message}"
    );
    assert!(!message.contains(SECRET_KEY), "{message}");

    // A bucket that does not exist is refused as clearly.
    let other = Moto::start(&["another-bucket"], false);
    let missing = TestApp::spawn_in(dir.path(), |config| other.configure(config, BUCKET, PREFIX))
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(missing.contains("cannot use S3 storage"), "{missing}");
    assert!(
        missing.contains("NoSuchBucket") || missing.contains("404"),
        "{missing}"
    );

    // doctor says the same, without the secret.
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("sealbox.toml");
    let mut file = std::fs::File::create(&config).unwrap();
    file.write_all(moto.toml(&home.path().join("data")).as_bytes())
        .unwrap();
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = Command::new(SEALBOX_BIN)
        .env_clear()
        .env("HOME", home.path())
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("PROBLEM  blob storage: S3 bucket sealbox-blobs, prefix tenant/blobs/"),
        "{report}"
    );
    assert!(report.contains("write a probe object"), "{report}");
    assert!(!report.contains(SECRET_KEY), "{report}");
}

#[test]
fn the_s3_configuration_validates_and_hides_its_secret() {
    let mut config = Config::default();
    config.storage.backend = BlobBackend::S3;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("storage.s3.bucket"), "{err}");
    config.storage.s3.bucket = "b".into();
    config.storage.s3.access_key_id = ACCESS_KEY.into();
    config.storage.s3.secret_access_key = sealbox::config::Secret::new(SECRET_KEY);
    config.tls.mode = sealbox::config::TlsMode::Off;
    config.validate().expect("valid");
    config.storage.s3.part_size_bytes = MIB;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("storage.s3.part_size_bytes"), "{err}");
    config.storage.s3.part_size_bytes = PART;
    config.storage.s3.endpoint = "ftp://store".into();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("storage.s3.endpoint"), "{err}");
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET_KEY), "{debug}");
    assert!(debug.contains("Secret([redacted])"), "{debug}");

    // The secret from `secret_access_key_file` (one trailing newline removed), not both.
    config.storage.s3.endpoint = String::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s3.secret");
    std::fs::write(&file, format!("{SECRET_KEY}\n")).unwrap();
    config.storage.s3.secret_access_key_file = file.clone();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("not both"), "{err}");
    config.storage.s3.secret_access_key = sealbox::config::Secret::default();
    config.validate().expect("valid with the secret in a file");
    assert_eq!(config.storage.s3.secret().unwrap().expose(), SECRET_KEY);
    config.storage.s3.secret_access_key_file = dir.path().join("absent");
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("storage.s3.secret_access_key_file"), "{err}");
    assert!(!err.contains(SECRET_KEY), "{err}");
}
