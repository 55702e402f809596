//! `TestApp`: the whole appliance on a free port with its own data directory.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use sealbox::app::{App, AppError};
use sealbox::config::{Config, TlsMode};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub addr: SocketAddr,
    /// Base URL, such as `http://127.0.0.1:41234`.
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    /// Owns the temporary directory unless the test passed its own.
    _tmp: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), AppError>>>,
    pub certificate_fingerprint: Option<String>,
    /// The running app's store, for tests that need to load the database.
    pub store: sealbox::store::Store,
    /// The first-run setup token, while no user exists.
    pub setup_token: Option<String>,
    /// The clock of the plans' daily quotas, which tests move forward.
    pub plan_clock: sealbox::service::plans::Clock,
    /// The stored blobs, for tests that look at (or damage) them behind the API.
    pub blobs: StoredBlobs,
}

/// A TestApp's stored blobs, read and changed behind the API: the files of
/// `<data>/blobs/`, or with `SBX_TEST_BLOB_BACKEND=s3` (or a test's own `[storage.s3]`)
/// the objects under the app's prefix in moto, through the S3 store's own client.
pub enum StoredBlobs {
    Local(PathBuf),
    S3(sealbox::blob::S3BlobStore),
}

impl StoredBlobs {
    fn of(config: &Config) -> Self {
        match config.storage.backend {
            sealbox::config::storage::BlobBackend::Local => {
                Self::Local(config.storage.data_dir.join("blobs"))
            }
            sealbox::config::storage::BlobBackend::S3 => Self::S3(
                sealbox::blob::S3BlobStore::connect(&config.storage.s3, &config.storage.data_dir)
                    .expect("the test's S3 store"),
            ),
        }
    }

    /// Whether the blobs are outside the data directory (an S3 bucket).
    pub fn remote(&self) -> bool {
        matches!(self, Self::S3(_))
    }

    /// The keys of the stored blobs (not the local store's write area, `blobs/tmp/`).
    pub async fn keys(&self) -> Vec<String> {
        match self {
            Self::Local(dir) => files_in(dir)
                .into_iter()
                .filter(|path| !path.starts_with(dir.join("tmp")))
                .filter_map(|path| Some(path.file_name()?.to_str()?.to_owned()))
                .collect(),
            Self::S3(store) => store
                .list()
                .await
                .expect("list the bucket")
                .into_iter()
                .filter_map(|object| Some(object.blob_key?.as_str().to_owned()))
                .collect(),
        }
    }

    /// The stored bytes of blob `key`.
    pub async fn read(&self, key: &str) -> Vec<u8> {
        match self {
            Self::Local(dir) => std::fs::read(local_blob(dir, key)).expect("read the blob"),
            Self::S3(store) => {
                use sealbox::blob::BlobStore;
                use tokio::io::AsyncReadExt;
                let key = sealbox::blob::BlobKey::new(key).expect("a blob key");
                let mut reader = store.open(&key, 0).await.expect("open the object");
                let mut bytes = Vec::new();
                reader
                    .read_to_end(&mut bytes)
                    .await
                    .expect("read the object");
                bytes
            }
        }
    }

    /// Replaces the stored bytes of blob `key` (to damage it).
    pub async fn write(&self, key: &str, bytes: &[u8]) {
        match self {
            Self::Local(dir) => std::fs::write(local_blob(dir, key), bytes).expect("write"),
            Self::S3(store) => {
                use sealbox::blob::BlobStore;
                let key = sealbox::blob::BlobKey::new(key).expect("a blob key");
                store
                    .put(&key, &mut &bytes[..])
                    .await
                    .expect("put the object");
            }
        }
    }

    /// Every stored blob's bytes when they are outside the data directory, for the tests
    /// that search the data directory for plaintext (local blobs are among its files).
    pub async fn outside_data_dir(&self) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        if self.remote() {
            for key in self.keys().await {
                all.push(self.read(&key).await);
            }
        }
        all
    }
}

fn local_blob(dir: &Path, key: &str) -> PathBuf {
    files_in(dir)
        .into_iter()
        .find(|path| path.file_name().and_then(|n| n.to_str()) == Some(key))
        .unwrap_or_else(|| panic!("no blob {key} under {}", dir.display()))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_in(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The Python of the test venv (`$SBX_TEST_VENV`, made by `scripts/test` from
/// `tests/requirements.txt`), for the external peers the tests drive.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("SBX_TEST_VENV").unwrap_or_else(|| {
        panic!(
            "SBX_TEST_VENV is not set: run the tests through scripts/test, which creates the venv"
        )
    });
    PathBuf::from(venv).join("bin/python")
}

/// The first admin created by [`TestApp::setup_admin`].
pub const ADMIN_EMAIL: &str = "ada@example.com";
pub const ADMIN_PASSWORD: &str = "violet-anchor-thirty";
/// The password of accounts made by [`TestApp::invite_and_register`].
pub const MEMBER_PASSWORD: &str = "copper-lantern-forty";

/// A configuration for tests: loopback, free port, plain HTTP, data in `dir`.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.server.shutdown_timeout_secs = 5;
    config.storage.data_dir = dir.to_owned();
    config.tls.mode = TlsMode::Off;
    config.database.max_connections = 4;
    // Tests send many requests from one address; the rate-limit tests set their own.
    config.rate_limits.per_ip_per_minute = 100_000;
    config.rate_limits.per_token_per_minute = 100_000;
    config.rate_limits.per_api_key_per_minute = 100_000;
    test_blob_backend(&mut config);
    config
}

/// With `SBX_TEST_BLOB_BACKEND=s3`, every `TestApp` keeps its blobs in a moto S3 server on
/// loopback (one per test process, a prefix per app) instead of `<data>/blobs`, so whole
/// suites run against S3 (docs/storage.md). Unset: local storage, as always.
fn test_blob_backend(config: &mut Config) {
    if std::env::var("SBX_TEST_BLOB_BACKEND").as_deref() != Ok("s3") {
        return;
    }
    static MOTO: std::sync::OnceLock<crate::blob_store_s3::Moto> = std::sync::OnceLock::new();
    let moto = MOTO.get_or_init(|| crate::blob_store_s3::Moto::start(&["sealbox-suite"], false));
    let prefix = format!("suite-{}", uuid::Uuid::now_v7().simple());
    moto.configure(config, "sealbox-suite", &prefix);
}

impl TestApp {
    /// Boots the app with the test defaults.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Boots the app after `adjust` has changed the test defaults.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let tmp = TempDir::new().expect("temp dir");
        let mut config = test_config(tmp.path());
        adjust(&mut config);
        Self::start(config, Some(tmp)).await.expect("app starts")
    }

    /// Boots the app on an existing data directory (to test restarts).
    pub async fn spawn_in(dir: &Path, adjust: impl FnOnce(&mut Config)) -> Result<Self, AppError> {
        let mut config = test_config(dir);
        adjust(&mut config);
        Self::start(config, None).await
    }

    async fn start(config: Config, tmp: Option<TempDir>) -> Result<Self, AppError> {
        let data_dir = config.storage.data_dir.clone();
        let blobs = StoredBlobs::of(&config);
        let app = App::open(config).await?;
        let bound = app.bind().await?;
        let addr = bound.local_addr();
        let base = bound.url();
        let certificate_fingerprint = bound.certificate().map(|c| c.fingerprint.clone());
        let store = app.store().clone();
        let setup_token = app.setup_token().map(str::to_owned);
        let plan_clock = app.plan_clock();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(bound, async {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            data_dir,
            _tmp: tmp,
            shutdown: Some(tx),
            server: Some(server),
            certificate_fingerprint,
            store,
            setup_token,
            plan_clock,
            blobs,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// GETs with `Authorization: Bearer <token>`.
    pub async fn get_as(&self, path: &str, access_token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request")
    }

    /// DELETEs with `Authorization: Bearer <token>`.
    pub async fn delete_as(&self, path: &str, access_token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request")
    }

    /// Sends `method path` as `access_token`, with a JSON body and an
    /// `X-Organization-Id` when given.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        access_token: &str,
        body: Option<&serde_json::Value>,
        org: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(access_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(org) = org {
            request = request.header("X-Organization-Id", org);
        }
        request.send().await.expect("request")
    }

    /// Invites `email` into `org` as `role` (mail is off, so the token comes back), then
    /// registers that account with the invite. Returns the new account's token pair.
    pub async fn invite_and_register(
        &self,
        inviter_token: &str,
        org: &str,
        email: &str,
        role: &str,
    ) -> serde_json::Value {
        let invite = self
            .send_as(
                reqwest::Method::POST,
                &format!("/v1/invites/{org}"),
                inviter_token,
                Some(&serde_json::json!({"email": email, "role": role})),
                None,
            )
            .await;
        assert_eq!(invite.status(), 201, "invite {email}");
        let invite: serde_json::Value = invite.json().await.unwrap();
        let registered = self
            .post_json(
                "/v1/auth/register",
                &serde_json::json!({
                    "email": email,
                    "password": MEMBER_PASSWORD,
                    "displayName": email.split('@').next().unwrap(),
                    "inviteToken": invite["token"],
                }),
            )
            .await;
        assert_eq!(registered.status(), 201, "register {email}");
        registered.json().await.unwrap()
    }

    /// Uploads `bytes` as a new file of the user signed in with `token`: presign (with
    /// `encryption` `server` or `client`), one PUT, finalize. Returns the file id.
    pub async fn upload_file(
        &self,
        token: &str,
        name: &str,
        bytes: &[u8],
        encryption: &str,
    ) -> String {
        let presigned = json_of(
            self.send_as(
                reqwest::Method::POST,
                "/v1/files/presign",
                token,
                Some(&serde_json::json!({"filename": name, "size": bytes.len(),
                                         "encryption": encryption})),
                None,
            )
            .await,
            201,
        )
        .await;
        let put = self
            .client
            .put(s(&presigned, "uploadUrl"))
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(json_of(put, 200).await["complete"], true);
        let id = s(&presigned, "fileId");
        let finalized = self
            .send_as(
                reqwest::Method::POST,
                &format!("/v1/files/{id}/finalize"),
                token,
                None,
                None,
            )
            .await;
        json_of(finalized, 200).await;
        id
    }

    /// Runs first-run setup: [`ADMIN_EMAIL`] becomes instance admin and owner of "Acme".
    /// Returns the token pair.
    /// Generates the key pair of the user signed in with `token`, unlocked by `secret`.
    pub async fn generate_keys(&self, token: &str, secret: &str) {
        let generated = self
            .client
            .post(self.url("/v1/keys/generate"))
            .bearer_auth(token)
            .header("X-User-Secret", secret)
            .send()
            .await
            .unwrap();
        assert_eq!(generated.status(), 201, "generating the key pair");
    }

    pub async fn setup_admin(&self) -> serde_json::Value {
        let response = self
            .post_json(
                "/v1/setup",
                &serde_json::json!({
                    "token": self.setup_token.as_deref().expect("no user yet"),
                    "email": ADMIN_EMAIL,
                    "password": ADMIN_PASSWORD,
                    "displayName": "Ada Lovelace",
                    "organizationName": "Acme",
                }),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Signs in and returns the token pair.
    pub async fn login(&self, email: &str, password: &str) -> serde_json::Value {
        let response = self
            .post_json(
                "/v1/auth/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login as {email}");
        response.json().await.unwrap()
    }

    /// Runs a query against the app's database file from outside the app.
    pub fn query<T>(
        &self,
        sql: &str,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Vec<T> {
        let conn = rusqlite::Connection::open(self.data_dir.join("sealbox.db")).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], map)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Stops the server gracefully and waits for it, returning what `serve` returned.
    pub async fn shutdown(mut self) -> Result<(), AppError> {
        self.stop().await
    }

    async fn stop(&mut self) -> Result<(), AppError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }
}

/// A data directory that one start and clean stop of the app has initialized.
pub async fn initialized_data_dir() -> TempDir {
    let dir = TempDir::new().expect("temp dir");
    TestApp::spawn_in(dir.path(), |_| {})
        .await
        .expect("app starts")
        .shutdown()
        .await
        .expect("app stops");
    dir
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts the SPEC §3 error envelope and returns its `error` object.
pub async fn assert_envelope(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_owned();
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type}"
    );
    let body: serde_json::Value = response.json().await.expect("JSON body");
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("no `error` in {body}"))
        .clone();
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["details"].is_array(), "{body}");
    assert_eq!(error["requestId"], request_id.as_str(), "{body}");
    error
}

/// The string field `key` of a JSON object, or a panic naming it.
pub fn s(v: &serde_json::Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

/// Asserts the status and returns the JSON body (or null when there is none).
pub async fn json_of(response: reqwest::Response, status: u16) -> serde_json::Value {
    let code = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    assert_eq!(code, status, "{body}");
    body
}

/// The `sealbox` binary Cargo built for these tests.
pub const SEALBOX_BIN: &str = env!("CARGO_BIN_EXE_sealbox");

/// The real `sealbox serve` on `<home>/sealbox.toml` (written on first use, unless the test
/// wrote its own): plain HTTP on a free loopback port, data in `<home>/data`, logs in
/// `<home>/serve.log`. Killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The setup token the banner printed (only while no account exists).
    pub setup_token: Option<String>,
    /// The banner lines read at start (all of them when `fresh`, else the first).
    pub banner: Vec<String>,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Server {
    /// Starts the server; `fresh` when no account exists yet, so the banner ends with a
    /// setup token.
    pub fn start(home: &Path, fresh: bool) -> Self {
        Self::spawn(home, fresh, Command::new(SEALBOX_BIN))
    }

    /// Starts `bin` (another build of sealbox, such as the static release binary) as
    /// [`Server::start`] starts the test build.
    pub fn start_binary(home: &Path, fresh: bool, bin: &Path) -> Self {
        Self::spawn(home, fresh, Command::new(bin))
    }

    /// Starts a fresh server whose `uploads/` and `blobs/` directories are tmpfs mounts of
    /// `uploads` and `blobs` bytes, in a mount namespace of its own (util-linux `unshare`),
    /// so a disk fills up for real. The rest of the data directory is on the real disk.
    pub fn start_with_small_disks(home: &Path, uploads: u64, blobs: u64) -> Self {
        let data = home.join("data");
        for dir in [data.clone(), data.join("uploads"), data.join("blobs")] {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .unwrap();
        }
        let mut command = Command::new("unshare");
        command
            .args(["--map-root-user", "--mount", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o size=\"$1\",mode=0700 tmpfs \"$3/uploads\" && \
                 mount -t tmpfs -o size=\"$2\",mode=0700 tmpfs \"$3/blobs\" && \
                 shift 3 && exec \"$@\"",
            )
            .args(["sh", &uploads.to_string(), &blobs.to_string()])
            .arg(&data)
            .arg(SEALBOX_BIN);
        Self::spawn(home, true, command)
    }

    /// What `path` holds as the server sees it, inside its own mount namespace.
    pub fn seen(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
            .join(path.strip_prefix("/").unwrap())
    }

    /// Runs `command` (the binary, or a wrapper that ends by exec-ing it, given the
    /// `serve` arguments after its own).
    fn spawn(home: &Path, fresh: bool, mut command: Command) -> Self {
        let config = home.join("sealbox.toml");
        if !config.exists() {
            let data = toml::Value::from(home.join("data").to_str().unwrap());
            std::fs::write(
                &config,
                format!(
                    "[server]\nlisten = \"127.0.0.1:0\"\n\
                     [storage]\ndata_dir = {data}\n\
                     [tls]\nmode = \"off\"\n\
                     [rate_limits]\nper_ip_per_minute = 100000\n\
                     per_token_per_minute = 100000\nper_api_key_per_minute = 100000\n\
                     [log]\nlevel = \"warn\"\n"
                ),
            )
            .unwrap();
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(home.join("serve.log"))
            .unwrap();
        let mut child = command
            .env_clear()
            .env("HOME", home)
            // For a wrapper's own lookups (`sh`, `mount`); the server needs no PATH.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let mut line = || {
            let line = stdout.next().expect("a banner line").unwrap();
            banner.push(line.clone());
            line
        };
        let first = line();
        assert!(first.contains(" serving http://"), "{first}");
        let base = first.split_whitespace().last().unwrap().to_owned();
        let setup_token = fresh.then(|| {
            let mut link = None;
            loop {
                let next = line();
                if let Some(printed) = next.trim().strip_prefix("setup link:") {
                    link = Some(printed.trim().to_owned());
                }
                if let Some(token) = next.trim().strip_prefix("setup token:") {
                    let token = token.trim().to_owned();
                    // The banner's setup link opens the web UI's setup page with it.
                    assert_eq!(link, Some(format!("{base}/setup?token={token}")));
                    break token;
                }
            }
        });
        Self {
            child,
            base,
            setup_token,
            banner,
            _stdout: stdout,
        }
    }

    /// Signs up the first admin (ada@example.com, of Acme) and makes their key pair under
    /// `secret`; returns their access token.
    pub async fn setup_owner(&self, client: &reqwest::Client, secret: &str) -> String {
        let pair: serde_json::Value = client
            .post(format!("{}/v1/setup", self.base))
            .json(&serde_json::json!({
                "token": self.setup_token.as_deref().unwrap(),
                "email": "ada@example.com",
                "password": "violet-anchor-thirty",
                "displayName": "Ada",
                "organizationName": "Acme",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = s(&pair, "accessToken");
        let generated = client
            .post(format!("{}/v1/keys/generate", self.base))
            .bearer_auth(&token)
            .header("X-User-Secret", secret)
            .send()
            .await
            .unwrap();
        assert_eq!(generated.status(), 201);
        token
    }

    /// SIGKILL, and the status the process ended with.
    pub fn kill(&mut self) -> std::process::ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.kill();
        }
    }
}
