//! `sealbox backup`, `backup verify`, `restore` and `migrate`, run as the real binary
//! against a data directory a live server is using (see `docs/operations.md`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, SEALBOX_BIN, TestApp, json_of, s};

const SECRET: &str = "backup-owner-secret";

/// Runs the binary with `args` in a clean environment; its success and all its output.
fn sealbox<I, A>(home: &Path, args: I) -> (bool, String)
where
    I: IntoIterator<Item = A>,
    A: AsRef<OsStr>,
{
    let output = Command::new(SEALBOX_BIN)
        .env_clear()
        .env("HOME", home)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A live app on `<home>/data`, its admin with a key pair, and a config file for the CLI.
struct Live {
    home: TempDir,
    app: TestApp,
    token: String,
    config: PathBuf,
}

impl Live {
    async fn start() -> Self {
        let home = tempfile::tempdir().unwrap();
        let app = TestApp::spawn_in(&home.path().join("data"), |config| {
            config.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
        })
        .await
        .unwrap();
        let token = s(&app.setup_admin().await, "accessToken");
        app.generate_keys(&token, SECRET).await;
        let config = home.path().join("sealbox.toml");
        let data = toml::Value::from(app.data_dir.to_str().unwrap());
        std::fs::write(
            &config,
            format!("[storage]\ndata_dir = {data}\n[tls]\nmode = \"off\"\n"),
        )
        .unwrap();
        Self {
            home,
            app,
            token,
            config,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// `sealbox backup DEST --config ...` plus `extra`.
    fn backup(&self, dest: &Path, extra: &[&str]) -> (bool, String) {
        let mut args: Vec<&OsStr> = vec!["backup".as_ref(), dest.as_ref()];
        args.extend([OsStr::new("--config"), self.config.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        sealbox(self.home.path(), args)
    }

    fn run<I: IntoIterator<Item = A>, A: AsRef<OsStr>>(&self, args: I) -> (bool, String) {
        sealbox(self.home.path(), args)
    }
}

/// Uploads `bytes` through presign, PUT and finalize; returns the file id.
async fn upload(app: &TestApp, token: &str, bytes: &[u8]) -> String {
    let presigned = json_of(
        app.send_as(
            Method::POST,
            "/v1/files/presign",
            token,
            Some(&json!({"filename": "f.bin", "size": bytes.len()})),
            None,
        )
        .await,
        201,
    )
    .await;
    let put = app
        .client
        .put(s(&presigned, "uploadUrl"))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(put, 200).await["complete"], true);
    let id = s(&presigned, "fileId");
    let finalized = app
        .send_as(
            Method::POST,
            &format!("/v1/files/{id}/finalize"),
            token,
            None,
            None,
        )
        .await;
    json_of(finalized, 200).await;
    id
}

async fn put_kv(app: &TestApp, token: &str, key: &str, value: &str) {
    let put = app
        .send_as(
            Method::PUT,
            &format!("/v1/kv/{key}"),
            token,
            Some(&json!({"valueB64": B64.encode(value)})),
            None,
        )
        .await;
    assert!(
        put.status().is_success(),
        "PUT /v1/kv/{key}: {}",
        put.status()
    );
}

async fn with_secret(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap()
}

async fn download(app: &TestApp, token: &str, id: &str) -> Vec<u8> {
    let link = json_of(
        with_secret(app, token, &format!("/v1/files/{id}/download")).await,
        200,
    )
    .await;
    let bytes = app.client.get(s(&link, "url")).send().await.unwrap();
    assert_eq!(bytes.status(), 200);
    bytes.bytes().await.unwrap().to_vec()
}

/// Distinct bytes for the `n`th file.
fn content(n: usize) -> Vec<u8> {
    (0..40_000 + n * 997)
        .map(|i| ((i * 31 + n * 7) % 251) as u8)
        .collect()
}

/// A minimal webhook receiver: answers 200 to everything and keeps each request's legacy
/// signature header and body.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

/// One request the receiver got: its headers (lower-case names) and body.
type Received = (HashMap<String, String>, Vec<u8>);

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let (headers, body_start) = loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
                            let headers: HashMap<String, String> = text
                                .lines()
                                .skip(1)
                                .filter_map(|line| line.split_once(':'))
                                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                                .collect();
                            break (headers, end + 4);
                        }
                    };
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < body_start + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[body_start..body_start + length].to_vec();
                    sink.lock().unwrap().push((headers, body));
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Self { url, got }
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

/// What the load wrote while the backup ran: file id -> bytes, KV key -> value.
#[derive(Default)]
struct Written {
    files: HashMap<String, Vec<u8>>,
    kv: HashMap<String, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_to_an_instance_where_everything_verifies() {
    let live = Live::start().await;
    let (app, token) = (&live.app, live.token.clone());
    let receiver = Receiver::start().await;
    let webhook = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &token,
            Some(&json!({"url": receiver.url, "events": ["*"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let webhook_id = s(&webhook, "id");
    let webhook_secret = s(&webhook, "secret");

    let written = Arc::new(Mutex::new(Written::default()));
    for n in 0..3 {
        let id = upload(app, &token, &content(n)).await;
        let (key, value) = (format!("before-{n}"), format!("value before {n}"));
        put_kv(app, &token, &key, &value).await;
        let mut w = written.lock().unwrap();
        w.files.insert(id, content(n));
        w.kv.insert(key, value);
    }
    let before: Vec<String> = written.lock().unwrap().files.keys().cloned().collect();

    // Uploads, KV writes and (through their events) webhook deliveries, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (stop, rounds, written) = (stop.clone(), rounds.clone(), written.clone());
        let (base, client, token) = (app.base.clone(), app.client.clone(), token.clone());
        tokio::spawn(async move {
            let app = LoadClient { base, client };
            let mut n = 100;
            while !stop.load(Ordering::Acquire) {
                let bytes = content(n);
                let id = app.upload(&token, &bytes).await;
                let (key, value) = (format!("live-{n}"), format!("value {n}"));
                app.put_kv(&token, &key, &value).await;
                {
                    let mut w = written.lock().unwrap();
                    w.files.insert(id, bytes);
                    w.kv.insert(key, value);
                }
                rounds.fetch_add(1, Ordering::AcqRel);
                n += 1;
            }
        })
    };
    let wait_rounds = |at_least: usize| {
        let rounds = rounds.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while rounds.load(Ordering::Acquire) < at_least {
                assert!(Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_rounds(2).await;
    let dest = live.path("backups");
    let backed_up = {
        let (home, config, dest) = (
            live.home.path().to_owned(),
            live.config.clone(),
            dest.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let mut args: Vec<&OsStr> = vec!["backup".as_ref(), dest.as_ref()];
            args.extend([OsStr::new("--config"), config.as_os_str()]);
            args.push("--include-master-key".as_ref());
            sealbox(&home, args)
        })
    };
    let (ok, text) = backed_up.await.unwrap();
    let during = rounds.load(Ordering::Acquire);
    wait_rounds(during + 1).await;
    stop.store(true, Ordering::Release);
    load.await.unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("this backup holds the master key"), "{text}");
    assert!(receiver.count() > 0, "webhook deliveries ran meanwhile");

    let (ok, text) = live.run(["backup".as_ref(), "verify".as_ref(), dest.as_os_str()]);
    assert!(ok, "{text}");
    assert!(text.contains("1 snapshot(s) verified"), "{text}");

    let restored = live.path("restored");
    let (ok, text) = live.run([
        "restore".as_ref(),
        dest.as_os_str(),
        "--data-dir".as_ref(),
        restored.as_os_str(),
    ]);
    assert!(ok, "{text}");
    let (ok, text) = live.run([
        "doctor".as_ref(),
        "--scrub".as_ref(),
        "--data-dir".as_ref(),
        restored.as_os_str(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("nothing orphaned"), "{text}");
    let (ok, text) = live.run([
        "audit".as_ref(),
        "verify".as_ref(),
        "--data-dir".as_ref(),
        restored.as_os_str(),
    ]);
    assert!(ok, "{text}");

    // The restored instance, booted: every file and secret it has reads back as written.
    drop(live.app);
    let again = TestApp::spawn_in(&restored, |config| {
        config.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
    })
    .await
    .unwrap();
    let token = s(
        &again.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "accessToken",
    );
    let written = std::mem::take(&mut *written.lock().unwrap());
    let files = json_of(with_secret(&again, &token, "/v1/files").await, 200).await;
    let ids: Vec<String> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(f, "id"))
        .collect();
    for id in &before {
        assert!(
            ids.contains(id),
            "file {id} from before the backup is restored"
        );
    }
    assert!(ids.len() > before.len(), "files uploaded during the backup");
    for id in &ids {
        let expected = written.files.get(id).expect("a file the test wrote");
        assert_eq!(&download(&again, &token, id).await, expected, "file {id}");
    }
    let names = json_of(again.get_as("/v1/kv", &token).await, 200).await;
    let names: Vec<String> = serde_json::from_value(names).unwrap();
    assert!(names.iter().any(|n| n == "before-2"), "{names:?}");
    for name in &names {
        let body = json_of(
            with_secret(&again, &token, &format!("/v1/kv/{name}")).await,
            200,
        )
        .await;
        let value = B64.decode(s(&body, "valueB64")).unwrap();
        assert_eq!(
            String::from_utf8(value).unwrap(),
            written.kv[name.as_str()],
            "{name}"
        );
    }
    let audit = json_of(again.get_as("/v1/audit/verify", &token).await, 200).await;
    assert_eq!(audit["valid"], true, "{audit}");

    // The webhook's sealed signing secret opens with the restored master key: a test
    // delivery arrives signed with the secret shown at creation.
    let already = receiver.count();
    let test = again
        .send_as(
            Method::POST,
            &format!("/v1/webhooks/{webhook_id}/test"),
            &token,
            Some(&json!({})),
            None,
        )
        .await;
    assert!(test.status().is_success(), "{}", test.status());
    let deadline = Instant::now() + Duration::from_secs(20);
    let (headers, body) = loop {
        let found = receiver.got.lock().unwrap()[already..]
            .iter()
            .find(|(h, _)| h.contains_key("x-sealbox-test-delivery"))
            .cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no test delivery arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let secret = sealbox::crypto::webhook_signature::WebhookSecret::parse(&webhook_secret).unwrap();
    assert!(
        sealbox::crypto::webhook_signature::verify_legacy(
            &secret,
            &headers["x-sealbox-signature"],
            &body
        )
        .is_some(),
        "signed with the original secret"
    );
}

/// The HTTP calls of the load task (which cannot borrow the `TestApp`).
struct LoadClient {
    base: String,
    client: reqwest::Client,
}

impl LoadClient {
    async fn upload(&self, token: &str, bytes: &[u8]) -> String {
        let presigned: Value = self
            .client
            .post(format!("{}/v1/files/presign", self.base))
            .bearer_auth(token)
            .json(&json!({"filename": "f.bin", "size": bytes.len()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let put = self
            .client
            .put(s(&presigned, "uploadUrl"))
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        let id = s(&presigned, "fileId");
        let finalized = self
            .client
            .post(format!("{}/v1/files/{id}/finalize", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(finalized.status(), 200);
        id
    }

    async fn put_kv(&self, token: &str, key: &str, value: &str) {
        let put = self
            .client
            .put(format!("{}/v1/kv/{key}", self.base))
            .bearer_auth(token)
            .json(&json!({"valueB64": B64.encode(value)}))
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success());
    }
}

/// Every blob file in the backup's blob store, with its inode.
fn backup_blobs(dest: &Path) -> HashMap<PathBuf, u64> {
    let mut found = HashMap::new();
    for shard in std::fs::read_dir(dest.join("blobs")).unwrap() {
        let shard = shard.unwrap().path();
        if shard.file_name().unwrap() == ".tmp" {
            continue;
        }
        for blob in std::fs::read_dir(&shard).unwrap() {
            let blob = blob.unwrap().path();
            let inode = std::fs::metadata(&blob).unwrap().ino();
            found.insert(blob, inode);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_copies_only_new_blobs() {
    let live = Live::start().await;
    for n in 0..2 {
        upload(&live.app, &live.token, &content(n)).await;
    }
    let dest = live.path("backups");
    let (ok, text) = live.backup(&dest, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("2 copied"), "{text}");
    let first = backup_blobs(&dest);
    assert_eq!(first.len(), 2);

    upload(&live.app, &live.token, &content(2)).await;
    let (ok, text) = live.backup(&dest, &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("3 file blob(s)")
            && text.contains("1 copied")
            && text.contains("2 already in the backup"),
        "{text}"
    );
    let second = backup_blobs(&dest);
    assert_eq!(second.len(), 3);
    for (path, inode) in &first {
        assert_eq!(
            second.get(path),
            Some(inode),
            "{} was not rewritten",
            path.display()
        );
    }
    let snapshots = std::fs::read_dir(dest.join("snapshots")).unwrap().count();
    assert_eq!(snapshots, 2);
    let (ok, text) = live.run(["backup".as_ref(), "verify".as_ref(), dest.as_os_str()]);
    assert!(ok && text.contains("2 snapshot(s) verified"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_without_the_master_key_in_the_backup_needs_the_same_key() {
    let live = Live::start().await;
    upload(&live.app, &live.token, &content(0)).await;
    let dest = live.path("backups");
    let (ok, text) = live.backup(&dest, &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("the master key") && text.contains("is not in this backup"),
        "{text}"
    );

    let restored = live.path("restored");
    let restore = |extra: &[&OsStr]| {
        let mut args: Vec<&OsStr> = vec!["restore".as_ref(), dest.as_os_str()];
        args.extend([OsStr::new("--data-dir"), restored.as_os_str()]);
        args.extend(extra);
        live.run(args)
    };
    // Another key is refused before anything is written.
    let other = live.path("other.key");
    std::fs::write(&other, [9u8; 32]).unwrap();
    let (ok, text) = restore(&["--master-key-file".as_ref(), other.as_os_str()]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("but the backup was sealed with master key"),
        "{text}"
    );
    assert!(!restored.exists());

    let (ok, text) = restore(&[]);
    assert!(ok, "{text}");
    assert!(text.contains("Supply the same master key"), "{text}");
    assert!(!restored.join("master.key").exists());
    assert!(
        TestApp::spawn_in(&restored, |_| {}).await.is_err(),
        "no server starts without the master key"
    );
    std::fs::remove_dir_all(&restored).unwrap();

    let key = live.app.data_dir.join("master.key");
    let (ok, text) = restore(&["--master-key-file".as_ref(), key.as_os_str()]);
    assert!(ok, "{text}");
    assert_eq!(
        std::fs::read(restored.join("master.key")).unwrap(),
        std::fs::read(&key).unwrap()
    );
    let (ok, text) = live.run([
        "doctor".as_ref(),
        "--scrub".as_ref(),
        "--data-dir".as_ref(),
        restored.as_os_str(),
    ]);
    assert!(ok, "{text}");
}

/// Names every entry of `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_is_refused_by_verify_and_restore() {
    let live = Live::start().await;
    upload(&live.app, &live.token, &content(0)).await;
    let dest = live.path("backups");
    let (ok, text) = live.backup(&dest, &["--include-master-key"]);
    assert!(ok, "{text}");
    let snapshot = dest
        .join("snapshots")
        .join(&listing(&dest.join("snapshots"))[0]);
    let restored = live.path("restored");
    let home_before = listing(live.home.path());
    let refused = |why: &str| {
        let (ok, text) = live.run(["backup".as_ref(), "verify".as_ref(), dest.as_os_str()]);
        assert!(!ok, "verify passed a backup with {why}: {text}");
        let verify_text = text;
        let (ok, text) = live.run([
            "restore".as_ref(),
            dest.as_os_str(),
            "--data-dir".as_ref(),
            restored.as_os_str(),
        ]);
        assert!(!ok, "restore took a backup with {why}: {text}");
        assert!(!restored.exists(), "{why}: nothing restored");
        assert_eq!(
            listing(live.home.path()),
            home_before,
            "{why}: no staging left"
        );
        (verify_text, text)
    };

    // A truncated blob.
    let (blob, _) = backup_blobs(&dest).into_iter().next().unwrap();
    let original = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &original[..original.len() / 2]).unwrap();
    let (verify, restore) = refused("a truncated blob");
    assert!(
        verify.contains("PROBLEM") && verify.contains("blob of file"),
        "{verify}"
    );
    assert!(
        restore.contains("is damaged") && restore.contains("blob of file"),
        "{restore}"
    );
    std::fs::write(&blob, &original).unwrap();

    // A manifest edited by one character.
    let manifest_path = snapshot.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let latest = sealbox::store::LATEST_SCHEMA_VERSION;
    let edited = manifest.replacen(
        &format!("\"schemaVersion\": {latest}"),
        &format!("\"schemaVersion\": {}", latest - 1),
        1,
    );
    assert_ne!(edited, manifest);
    std::fs::write(&manifest_path, &edited).unwrap();
    let (verify, restore) = refused("an edited manifest");
    assert!(
        verify.contains("manifest of snapshot") && verify.contains("corrupted"),
        "{verify}"
    );
    assert!(
        restore.contains("manifest of snapshot") && restore.contains("corrupted"),
        "{restore}"
    );
    std::fs::write(&manifest_path, &manifest).unwrap();

    // A changed database, its manifest entry left alone.
    let db = snapshot.join("sealbox.db");
    let original_db = std::fs::read(&db).unwrap();
    let mut changed = original_db.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&db, &changed).unwrap();
    let (verify, _) = refused("a changed database");
    assert!(verify.contains("sealbox.db"), "{verify}");
    std::fs::write(&db, &original_db).unwrap();

    // A backup from a newer sealbox (consistently so: database, manifest and its sum).
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(
            None,
            "user_version",
            sealbox::store::LATEST_SCHEMA_VERSION + 1,
        )
        .unwrap();
    }
    let mut parsed: Value = serde_json::from_str(&manifest).unwrap();
    parsed["schemaVersion"] = json!(sealbox::store::LATEST_SCHEMA_VERSION + 1);
    let bytes = std::fs::read(&db).unwrap();
    for file in parsed["files"].as_array_mut().unwrap() {
        if file["path"] == "sealbox.db" {
            file["size"] = json!(bytes.len());
            file["blake3"] = json!(blake3::hash(&bytes).to_hex().to_string());
        }
    }
    let newer = serde_json::to_vec_pretty(&parsed).unwrap();
    std::fs::write(&manifest_path, &newer).unwrap();
    std::fs::write(
        snapshot.join("manifest.json.blake3"),
        format!("{}  manifest.json\n", blake3::hash(&newer).to_hex()),
    )
    .unwrap();
    let (_, restore) = refused("a newer schema");
    assert!(
        restore.contains("newer than this sealbox supports"),
        "{restore}"
    );

    // The live instance never noticed.
    let health = live.app.get("/health").await;
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_non_empty_directory_needs_force_and_then_replaces_it() {
    let live = Live::start().await;
    let id = upload(&live.app, &live.token, &content(0)).await;
    let dest = live.path("backups");
    let (ok, text) = live.backup(&dest, &["--include-master-key"]);
    assert!(ok, "{text}");

    let target = live.path("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep-me"), b"old contents").unwrap();
    let restore = |force: bool| {
        let mut args: Vec<&OsStr> = vec!["restore".as_ref(), dest.as_os_str()];
        args.extend([OsStr::new("--data-dir"), target.as_os_str()]);
        if force {
            args.push("--force".as_ref());
        }
        live.run(args)
    };
    let (ok, text) = restore(false);
    assert!(!ok, "{text}");
    assert!(
        text.contains("is not empty") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(listing(&target), ["keep-me"]);

    // A damaged backup leaves the target alone, --force or not.
    let (blob, _) = backup_blobs(&dest).into_iter().next().unwrap();
    let original = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &original[..10]).unwrap();
    let (ok, text) = restore(true);
    assert!(!ok && text.contains("is damaged"), "{text}");
    assert_eq!(listing(&target), ["keep-me"]);
    assert_eq!(
        std::fs::read(target.join("keep-me")).unwrap(),
        b"old contents"
    );
    std::fs::write(&blob, &original).unwrap();

    let (ok, text) = restore(true);
    assert!(ok, "{text}");
    assert!(!target.join("keep-me").exists());
    assert!(target.join("sealbox.db").is_file());
    let (ok, text) = live.run([
        "doctor".as_ref(),
        "--scrub".as_ref(),
        "--data-dir".as_ref(),
        target.as_os_str(),
    ]);
    assert!(ok, "{text}");
    // Nothing but the target changed beside it (the swapped-out contents are gone).
    let mut home = listing(live.home.path());
    home.retain(|n| n.starts_with('.'));
    assert!(home.is_empty(), "{home:?}");

    let again = TestApp::spawn_in(&target, |_| {}).await.unwrap();
    let token = s(
        &again.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "accessToken",
    );
    assert_eq!(download(&again, &token, &id).await, content(0));
}

/// Runs `sealbox backup` with `DEST` a fresh tmpfs mounted with `options`, in a mount
/// namespace of its own (util-linux `unshare`, as `Server::start_with_small_disks`).
fn backup_onto_tmpfs(live: &Live, dest: &Path, options: &str) -> (bool, String) {
    std::fs::create_dir_all(dest).unwrap();
    let output = Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c"])
        .arg("mount -t tmpfs -o \"$1\" tmpfs \"$2\" && shift 2 && exec \"$@\"")
        .args(["sh", options])
        .arg(dest)
        .arg(SEALBOX_BIN)
        .arg("backup")
        .arg(dest)
        .arg("--config")
        .arg(&live.config)
        .env_clear()
        .env("HOME", live.home.path())
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_onto_a_full_or_read_only_disk_fails_clearly() {
    let live = Live::start().await;
    upload(&live.app, &live.token, &vec![5u8; 3 * 1024 * 1024]).await;

    let (ok, text) = backup_onto_tmpfs(&live, &live.path("small"), "size=1m,mode=0700");
    assert!(!ok, "{text}");
    assert!(
        text.starts_with("error: ") && text.contains("No space left on device"),
        "{text}"
    );

    let (ok, text) = backup_onto_tmpfs(&live, &live.path("read-only"), "ro,mode=0700");
    assert!(!ok, "{text}");
    assert!(text.contains("Read-only file system"), "{text}");

    let file = live.path("a-file");
    std::fs::write(&file, b"").unwrap();
    let (ok, text) = live.backup(&file.join("sub"), &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("a-file/sub") && text.contains("Not a directory"),
        "{text}"
    );

    // The live instance is unaffected.
    let (ok, text) = live.run([
        "doctor".as_ref(),
        "--scrub".as_ref(),
        "--config".as_ref(),
        live.config.as_os_str(),
    ]);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_lists_then_applies_pending_migrations_and_refuses_a_newer_database() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("sealbox.db");
    let version = |db: &Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let migrate = |extra: &[&str]| {
        let mut args: Vec<&OsStr> =
            vec!["migrate".as_ref(), "--data-dir".as_ref(), data.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        sealbox(home.path(), args)
    };
    let (ok, text) = migrate(&["--dry-run"]);
    assert!(!ok && text.contains("does not exist"), "{text}");
    assert!(!db.exists(), "migrate never creates a database");

    // A database from before the first migration.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE placeholder (x)")
        .unwrap();
    let latest = sealbox::store::LATEST_SCHEMA_VERSION;
    let (ok, text) = migrate(&["--dry-run"]);
    assert!(ok, "{text}");
    assert!(text.contains("pending  0001 instance"), "{text}");
    assert!(
        text.contains(&format!("{latest} migration(s) pending")),
        "{text}"
    );
    assert_eq!(version(&db), 0, "a dry run changes nothing");

    let (ok, text) = migrate(&[]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("applied  {latest:04}")), "{text}");
    assert_eq!(version(&db), latest);
    let (ok, text) = migrate(&[]);
    assert!(ok && text.contains("nothing to do"), "{text}");

    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", latest + 1)
        .unwrap();
    for extra in [&["--dry-run"][..], &[]] {
        let (ok, text) = migrate(extra);
        assert!(!ok, "{text}");
        assert!(text.contains("newer than this sealbox supports"), "{text}");
    }
    assert_eq!(version(&db), latest + 1);
}
