//! The transfer CLI as a user runs it: `sealbox login`, `send` and `receive` as
//! subprocesses against a real server (pinned self-signed TLS, or plain HTTP behind a TCP
//! proxy that cuts an upload), with a clean environment and a temporary config directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, SEALBOX_BIN, TestApp, json_of, s};
use sealbox::config::TlsMode;

const MIB: u64 = 1024 * 1024;
const MARKER: &[u8] = b"CLI-PLAINTEXT-MARKER-51c2e8";
const TRANSFER_PASSWORD: &str = "correct horse battery";

/// What a finished `sealbox` run printed and how it ended.
#[derive(Debug)]
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// A user's machine: a home and config directory of its own, no inherited environment.
struct User {
    home: TempDir,
}

impl User {
    fn new() -> Self {
        Self {
            home: TempDir::new().unwrap(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    /// Runs `sealbox args...` with `env` on a blocking thread (the server runs in this
    /// test's runtime).
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(SEALBOX_BIN);
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Makes the test's own client trust the server's self-signed certificate (if any).
fn trust_own_certificate(app: &mut TestApp) {
    if let Ok(pem) = std::fs::read(app.data_dir.join("tls/cert.pem")) {
        app.client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
    }
}

/// A server with an admin, and an API key scoped as the CLI's.
async fn server_with_key(adjust: impl FnOnce(&mut sealbox::config::Config)) -> (TestApp, String) {
    let mut app = TestApp::spawn_with(adjust).await;
    trust_own_certificate(&mut app);
    let pair = app.setup_admin().await;
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &s(&pair, "accessToken"),
            Some(&json!({"name": "cli test", "scopes": ["transfers:read", "transfers:write"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    (app, s(&created, "key"))
}

/// Writes `len` pseudo-random bytes (xorshift, seeded) to `path` in 1 MiB steps, with
/// `marker` at byte 100 when given; returns the SHA-256.
fn write_file(path: &Path, len: u64, seed: u64, marker: Option<&[u8]>) -> [u8; 32] {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut state = seed | 1;
    let mut written = 0u64;
    let mut chunk = vec![0u8; MIB as usize];
    while written < len {
        let n = (len - written).min(MIB) as usize;
        for word in chunk[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        if written == 0
            && let Some(marker) = marker
        {
            chunk[100..100 + marker.len()].copy_from_slice(marker);
        }
        hash.update(&chunk[..n]);
        file.write_all(&chunk[..n]).unwrap();
        written += n as u64;
    }
    file.flush().unwrap();
    hash.finalize().into()
}

fn hash_file(path: &Path) -> [u8; 32] {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hash = Sha256::new();
    let mut chunk = vec![0u8; MIB as usize];
    loop {
        let n = file.read(&mut chunk).unwrap();
        if n == 0 {
            break hash.finalize().into();
        }
        hash.update(&chunk[..n]);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
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

/// Whether any of `needles` occurs in the file, read in chunks that overlap by the
/// longest needle.
fn file_contains(path: &Path, needles: &[&[u8]]) -> Option<usize> {
    let longest = needles.iter().map(|n| n.len()).max().unwrap();
    let Ok(mut file) = std::fs::File::open(path) else {
        return None;
    };
    let mut window: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8 * MIB as usize];
    loop {
        let n = file.read(&mut chunk).unwrap();
        if n == 0 {
            return None;
        }
        window.extend_from_slice(&chunk[..n]);
        for (i, needle) in needles.iter().enumerate() {
            if window.windows(needle.len()).any(|w| w == *needle) {
                return Some(i);
            }
        }
        let keep = window.len().saturating_sub(longest);
        window.drain(..keep);
    }
}

/// The raw key bytes of a printed link's `k=`.
fn key_of(link: &str) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = link.split_once("&k=").expect("a key in the link").1;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .unwrap()
}

fn transfer_count(app: &TestApp) -> i64 {
    app.query("SELECT COUNT(*) FROM transfers", |r| r.get(0))[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sends_and_receives_300_mib_over_pinned_tls_and_the_server_sees_no_plaintext() {
    let mut app = TestApp::spawn_with(|c| c.tls.mode = TlsMode::SelfSigned).await;
    trust_own_certificate(&mut app);
    app.setup_admin().await;
    let pin = app.certificate_fingerprint.clone().unwrap();
    let user = User::new();

    let login = user
        .run(
            &[
                "login",
                "--server",
                &app.base,
                "--pin",
                &pin,
                "--email",
                ADMIN_EMAIL,
            ],
            &[("SEALBOX_PASSWORD", ADMIN_PASSWORD)],
        )
        .await;
    assert!(login.ok, "{login:?}");
    let credentials = user.config_dir().join("sealbox/credentials.toml");
    let mode = std::fs::metadata(&credentials).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let saved = std::fs::read_to_string(&credentials).unwrap();
    assert!(saved.contains("sbx_live_"), "an API key is saved");
    assert!(!saved.contains(ADMIN_PASSWORD), "no password is saved");

    let files = TempDir::new().unwrap();
    let small = files.path().join("notes.txt");
    let other = files.path().join("Q3 report (final).md");
    let big = files.path().join("big.bin");
    let hashes = [
        write_file(&small, 5_000, 1, Some(MARKER)),
        write_file(&other, 200_000, 2, Some(MARKER)),
        write_file(&big, 300 * MIB, 3, None),
    ];

    let started = Instant::now();
    let sent = user
        .run(
            &[
                "send",
                small.to_str().unwrap(),
                other.to_str().unwrap(),
                big.to_str().unwrap(),
                "--message",
                "three files",
            ],
            &[],
        )
        .await;
    let send_time = started.elapsed();
    assert!(sent.ok, "{sent:?}");
    let link = sent.stdout.trim().to_owned();
    assert_eq!(sent.stdout.lines().count(), 1, "only the link on stdout");
    assert!(link.starts_with(&format!("{}/t/", app.base)), "{link}");
    let key = key_of(&link);
    assert_eq!(key.len(), 32);
    assert!(!sent.stderr.contains(link.split_once("&k=").unwrap().1));

    let out = TempDir::new().unwrap();
    let started = Instant::now();
    let received = user
        .run(&["receive", &link, "-o", out.path().to_str().unwrap()], &[])
        .await;
    let receive_time = started.elapsed();
    assert!(received.ok, "{received:?}");
    eprintln!("300 MiB + 2 small files: send {send_time:?}, receive {receive_time:?}");
    for (path, hash) in [&small, &other, &big].into_iter().zip(hashes) {
        let got = out.path().join(path.file_name().unwrap());
        assert!(
            received.stdout.contains(got.to_str().unwrap()),
            "{received:?}"
        );
        assert_eq!(hash_file(&got), hash, "{}", got.display());
    }
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        3,
        "no part files left"
    );

    // Neither the plaintext, the file names nor the key is anywhere in the server's
    // data directory.
    let encoded_key = link.split_once("&k=").unwrap().1.as_bytes().to_vec();
    // Nor the link secret: the server keeps its hash (and a master-key sealed copy).
    let link_secret = link.split_once("#s=").unwrap().1.split('&').next().unwrap();
    let needles: [&[u8]; 6] = [
        MARKER,
        &key,
        &encoded_key,
        link_secret.as_bytes(),
        b"Q3 report (final)",
        b"notes.txt",
    ];
    let scanned = walk(&app.data_dir);
    assert!(scanned.iter().any(|p| p.ends_with("sealbox.db")));
    for path in scanned {
        assert_eq!(file_contains(&path, &needles), None, "{}", path.display());
    }

    // Logout revokes the key with the key itself (no password: a key may revoke itself
    // without `api_keys:write`) and deletes the file.
    let api_key = saved
        .lines()
        .find_map(|l| l.strip_prefix("api_key = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let logout = user.run(&["logout"], &[]).await;
    assert!(logout.ok, "{logout:?}");
    assert!(!credentials.exists());
    let me = app
        .client
        .get(app.url("/v1/me"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "the key is revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_receives_a_server_mode_transfer() {
    use base64::Engine as _;
    let (app, key) = server_with_key(|_| {}).await;
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/transfers",
            &key,
            Some(&json!({"name": "Server mode"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b"sealed by the server".repeat(5000);
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
    let id = s(&created, "id");
    json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/transfers/{id}/finalize"),
            &key,
            None,
            None,
        )
        .await,
        200,
    )
    .await;

    let user = User::new();
    let out = TempDir::new().unwrap();
    let got = user
        .run(
            &[
                "receive",
                &s(&created, "link"),
                "-o",
                out.path().to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert!(got.ok, "{got:?}");
    assert_eq!(std::fs::read(out.path().join("plain.txt")).unwrap(), body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_refuses_a_self_signed_server_without_pin_and_uploads_nothing() {
    let (app, key) = server_with_key(|c| c.tls.mode = TlsMode::SelfSigned).await;
    let user = User::new();
    let files = TempDir::new().unwrap();
    let file = files.path().join("a.txt");
    std::fs::write(&file, b"hello").unwrap();

    let login = user
        .run(
            &["login", "--server", &app.base, "--email", ADMIN_EMAIL],
            &[("SEALBOX_PASSWORD", ADMIN_PASSWORD)],
        )
        .await;
    assert!(!login.ok);
    assert!(login.stderr.contains("--pin"), "{}", login.stderr);
    assert!(login.stderr.contains("TLS SHA-256"), "{}", login.stderr);
    assert!(!user.config_dir().join("sealbox/credentials.toml").exists());

    let sent = user
        .run(
            &["send", file.to_str().unwrap()],
            &[("SEALBOX_SERVER", &app.base), ("SEALBOX_API_KEY", &key)],
        )
        .await;
    assert!(!sent.ok);
    assert!(sent.stdout.is_empty());
    assert!(sent.stderr.contains("--pin"), "{}", sent.stderr);
    assert!(!sent.stderr.contains(&key), "the key is never printed");

    // A wrong pin is refused too, with its own message.
    let wrong = "00".repeat(32);
    let sent = user
        .run(
            &["send", file.to_str().unwrap(), "--pin", &wrong],
            &[("SEALBOX_SERVER", &app.base), ("SEALBOX_API_KEY", &key)],
        )
        .await;
    assert!(!sent.ok);
    assert!(sent.stderr.contains("does not match"), "{}", sent.stderr);
    assert_eq!(transfer_count(&app), 0);
}

/// A TCP proxy to `upstream` that cuts the first connection once it has carried more
/// than `cut_after` bytes from the client. Returns its address and the cut flag.
async fn cutting_proxy(
    listener: tokio::net::TcpListener,
    upstream: std::net::SocketAddr,
    cut_after: u64,
) -> Arc<AtomicBool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let carried = AtomicU64::new(0);
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let total = carried.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                        if total > cut_after && !flag.swap(true, Ordering::SeqCst) {
                            return; // drops both directions: the connection is cut
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = tokio::io::copy(&mut server_read, &mut client_write);
                tokio::select! {
                    () = up => {}
                    _ = down => {}
                }
            });
        }
    });
    cut
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_send_resumes_after_the_connection_is_cut() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let public = proxy.clone();
    let (app, key) = server_with_key(move |c| c.server.public_url = public).await;
    let cut = cutting_proxy(listener, app.addr, 8 * MIB).await;
    let user = User::new();
    let files = TempDir::new().unwrap();
    let file = files.path().join("forty.bin");
    let hash = write_file(&file, 40 * MIB, 4, None);

    let env = [
        ("SEALBOX_SERVER", proxy.as_str()),
        ("SEALBOX_API_KEY", &key),
    ];
    let sent = user.run(&["send", file.to_str().unwrap()], &env).await;
    assert!(sent.ok, "{sent:?}");
    assert!(cut.load(Ordering::SeqCst), "the proxy cut a connection");
    // It went on from what the server had durably stored, not from the start.
    let held: u64 = sent
        .stderr
        .split("the server holds ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume in {}", sent.stderr));
    assert!(held > 0 && held <= 8 * MIB + MIB, "resumed at {held}");
    eprintln!("cut after 8 MiB of 40 MiB; resumed at byte {held}");
    let link = sent.stdout.trim();
    assert!(link.starts_with(&proxy), "{link}");

    let out = TempDir::new().unwrap();
    let received = user
        .run(&["receive", link, "-o", out.path().to_str().unwrap()], &[])
        .await;
    assert!(received.ok, "{received:?}");
    assert_eq!(hash_file(&out.path().join("forty.bin")), hash);
}

/// A TCP proxy to `upstream` that passes the server's answers at `rate` bytes a second per
/// connection (a slow link: a download that outlives short download tokens).
async fn slow_proxy(listener: tokio::net::TcpListener, upstream: std::net::SocketAddr, rate: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = tokio::io::copy(&mut client_read, &mut server_write);
                let down = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    let (started, mut sent) = (tokio::time::Instant::now(), 0u64);
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        sent += n as u64;
                        let due = std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
                        tokio::time::sleep_until(started + due).await;
                    }
                };
                tokio::select! {
                    _ = up => {}
                    () = down => {}
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_receive_renews_its_download_token_when_the_download_outlives_it() {
    // Tokens live 2 s; three files of 3 MiB at 1 MiB/s take about 9 s, so the second and
    // third file start long after the unlock's token expired.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let public = proxy.clone();
    let (app, key) = server_with_key(move |c| {
        c.server.public_url = public;
        c.limits.download_token_ttl_secs = 2;
    })
    .await;
    slow_proxy(listener, app.addr, MIB).await;
    let user = User::new();
    let files = TempDir::new().unwrap();
    let mut paths = Vec::new();
    let mut hashes = Vec::new();
    for n in 0..3u64 {
        let path = files.path().join(format!("part-{n}.bin"));
        hashes.push(write_file(&path, 3 * MIB + 1000 * n, 60 + n, None));
        paths.push(path.to_str().unwrap().to_owned());
    }
    let mut args: Vec<&str> = vec!["send"];
    args.extend(paths.iter().map(String::as_str));
    args.extend(["--max-downloads", "1"]);
    let sent = user
        .run(
            &args,
            &[("SEALBOX_SERVER", &proxy), ("SEALBOX_API_KEY", &key)],
        )
        .await;
    assert!(sent.ok, "{sent:?}");
    let link = sent.stdout.trim();
    assert!(link.starts_with(&proxy), "{link}");

    let out = TempDir::new().unwrap();
    let started = Instant::now();
    let received = user
        .run(&["receive", link, "-o", out.path().to_str().unwrap()], &[])
        .await;
    let took = started.elapsed();
    assert!(received.ok, "{received:?}");
    assert!(
        took > std::time::Duration::from_secs(6),
        "the download took {took:?}, not longer than a token lives (three times)"
    );
    for (n, hash) in hashes.iter().enumerate() {
        assert_eq!(hash_file(&out.path().join(format!("part-{n}.bin"))), *hash);
    }
    // One download, however many tokens it took (maxDownloads 1 would refuse a second).
    let downloads: Vec<i64> = app.query("SELECT downloads FROM transfers", |row| row.get(0));
    assert_eq!(downloads, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_password_protected_transfer_needs_the_right_password() {
    let (app, key) = server_with_key(|_| {}).await;
    let user = User::new();
    let files = TempDir::new().unwrap();
    let file = files.path().join("secret.txt");
    std::fs::write(&file, b"the secret plans").unwrap();
    let env = [
        ("SEALBOX_SERVER", app.base.as_str()),
        ("SEALBOX_API_KEY", &key),
    ];

    let sent = user
        .run(
            &["send", file.to_str().unwrap(), "--password"],
            &[
                env[0],
                env[1],
                ("SEALBOX_TRANSFER_PASSWORD", TRANSFER_PASSWORD),
            ],
        )
        .await;
    assert!(sent.ok, "{sent:?}");
    let link = sent.stdout.trim();
    let out = TempDir::new().unwrap();
    let dir = out.path().to_str().unwrap();

    let wrong = user
        .run(
            &["receive", link, "-o", dir],
            &[("SEALBOX_TRANSFER_PASSWORD", "not the password")],
        )
        .await;
    assert!(!wrong.ok);
    assert!(wrong.stderr.contains("wrong password"), "{}", wrong.stderr);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    let right = user
        .run(
            &["receive", link, "-o", dir],
            &[("SEALBOX_TRANSFER_PASSWORD", TRANSFER_PASSWORD)],
        )
        .await;
    assert!(right.ok, "{right:?}");
    assert_eq!(
        std::fs::read(out.path().join("secret.txt")).unwrap(),
        b"the secret plans"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_max_downloads_one_allows_one_receive() {
    let (app, key) = server_with_key(|_| {}).await;
    let user = User::new();
    let files = TempDir::new().unwrap();
    let file = files.path().join("once.txt");
    std::fs::write(&file, b"read me once").unwrap();
    let env = [
        ("SEALBOX_SERVER", app.base.as_str()),
        ("SEALBOX_API_KEY", &key),
    ];
    let sent = user
        .run(
            &[
                "send",
                file.to_str().unwrap(),
                "--max-downloads",
                "1",
                "--expires",
                "2d",
            ],
            &env,
        )
        .await;
    assert!(sent.ok, "{sent:?}");
    let link = sent.stdout.trim();

    let first = TempDir::new().unwrap();
    let got = user
        .run(
            &["receive", link, "-o", first.path().to_str().unwrap()],
            &[],
        )
        .await;
    assert!(got.ok, "{got:?}");
    assert_eq!(
        std::fs::read(first.path().join("once.txt")).unwrap(),
        b"read me once"
    );

    let second = TempDir::new().unwrap();
    let again = user
        .run(
            &["receive", link, "-o", second.path().to_str().unwrap()],
            &[],
        )
        .await;
    assert!(!again.ok);
    assert!(
        again.stderr.contains("no downloads left"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_dir(second.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_bad_input_fails_clearly_before_any_upload() {
    let (app, key) = server_with_key(|_| {}).await;
    let user = User::new();
    let files = TempDir::new().unwrap();
    let file = files.path().join("a.txt");
    std::fs::write(&file, b"hello").unwrap();
    let path = file.to_str().unwrap();
    let env = [
        ("SEALBOX_SERVER", app.base.as_str()),
        ("SEALBOX_API_KEY", &key),
    ];

    for (expires, message) in [
        ("0h", "out of range"),
        ("1000d", "out of range"),
        ("7w", "Nd or Nh"),
    ] {
        let run = user.run(&["send", path, "--expires", expires], &env).await;
        assert!(!run.ok, "{expires}");
        assert!(run.stderr.contains(message), "{expires}: {}", run.stderr);
    }
    // A directory with no regular file in it has nothing to send.
    let empty = files.path().join("empty");
    std::fs::create_dir_all(empty.join("deeper")).unwrap();
    let run = user.run(&["send", empty.to_str().unwrap()], &env).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("no regular files"), "{}", run.stderr);
    let run = user
        .run(
            &[
                "send",
                path,
                &files.path().join("missing").to_string_lossy(),
            ],
            &env,
        )
        .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("missing"), "{}", run.stderr);
    assert_eq!(transfer_count(&app), 0, "nothing was created");

    // An end-to-end link without its key, or with a damaged one.
    let sent = user.run(&["send", path], &env).await;
    assert!(sent.ok, "{sent:?}");
    let link = sent.stdout.trim();
    // `.../t/{id}#s={secret}&k={key}`: the link without its key keeps its secret.
    let (bare, key_text) = link.split_once("&k=").unwrap();
    let out = TempDir::new().unwrap();
    let dir = out.path().to_str().unwrap();
    let run = user.run(&["receive", bare, "-o", dir], &[]).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("has no key"), "{}", run.stderr);
    let run = user
        .run(&["receive", &format!("{bare}&k=short"), "-o", dir], &[])
        .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("not 32 bytes"), "{}", run.stderr);
    let wrong_key = format!("{bare}&k={}", "A".repeat(43));
    let run = user.run(&["receive", &wrong_key, "-o", dir], &[]).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("wrong key"), "{}", run.stderr);
    let run = user
        .run(&["receive", "https://example.com/nothing", "-o", dir], &[])
        .await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("not a sealbox transfer link"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    assert!(!key_text.is_empty());

    // The right link works, and a second receive into the same directory refuses to
    // overwrite.
    let ok = user.run(&["receive", link, "-o", dir], &[]).await;
    assert!(ok.ok, "{ok:?}");
    let again = user.run(&["receive", link, "-o", dir], &[]).await;
    assert!(!again.ok);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sends_a_folder_with_a_sealed_message_and_receive_recreates_the_tree() {
    let (app, key) = server_with_key(|_| {}).await;
    let user = User::new();
    let env = [
        ("SEALBOX_SERVER", app.base.as_str()),
        ("SEALBOX_API_KEY", key.as_str()),
    ];
    let files = TempDir::new().unwrap();
    let album = files.path().join("Album 2026");
    std::fs::create_dir_all(album.join("raw/deeper")).unwrap();
    let hashes = [
        (
            "Album 2026/cover.txt",
            write_file(&album.join("cover.txt"), 3_000, 7, Some(MARKER)),
        ),
        (
            "Album 2026/raw/b.bin",
            write_file(&album.join("raw/b.bin"), 150_000, 8, None),
        ),
        (
            "Album 2026/raw/deeper/c d.txt",
            write_file(&album.join("raw/deeper/c d.txt"), 10, 9, None),
        ),
    ];
    // A link inside the folder is skipped, not followed.
    let elsewhere = TempDir::new().unwrap();
    write_file(&elsewhere.path().join("private.txt"), 100, 10, None);
    std::os::unix::fs::symlink(elsewhere.path(), album.join("link")).unwrap();
    const MESSAGE: &str = "FOLDER-MESSAGE-PLAINTEXT: the photos, as promised";

    let sent = user
        .run(
            &["send", album.to_str().unwrap(), "--message", MESSAGE],
            &env,
        )
        .await;
    assert!(sent.ok, "{sent:?}");
    assert!(sent.stderr.contains("skipped"), "{}", sent.stderr);
    let link = sent.stdout.trim().to_owned();

    let out = TempDir::new().unwrap();
    let got = user
        .run(&["receive", &link, "-o", out.path().to_str().unwrap()], &[])
        .await;
    assert!(got.ok, "{got:?}");
    assert!(got.stderr.contains(MESSAGE), "{}", got.stderr);
    for (path, hash) in hashes {
        assert_eq!(hash_file(&out.path().join(path)), hash, "{path}");
    }
    assert!(!out.path().join("Album 2026/link").exists());
    assert_eq!(walk(out.path()).len(), 3, "{:?}", walk(out.path()));

    // A wrong key: the message does not open, the link is wrong, nothing is written.
    let (bare, _) = link.split_once("&k=").unwrap();
    let wrong = TempDir::new().unwrap();
    let run = user
        .run(
            &[
                "receive",
                &format!("{bare}&k={}", "A".repeat(43)),
                "-o",
                wrong.path().to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("link is wrong"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(wrong.path()).unwrap().count(), 0);

    // The server's data directory holds neither the message, nor the paths, nor the
    // contents.
    let needles: [&[u8]; 3] = [MESSAGE.as_bytes(), b"Album 2026", MARKER];
    for path in walk(&app.data_dir) {
        assert_eq!(file_contains(&path, &needles), None, "{}", path.display());
    }
}

/// An end-to-end transfer made by a hostile sender, whose files' sealed names are
/// `names`; returns its whole link.
async fn crafted_transfer(app: &TestApp, api_key: &str, names: &[&str]) -> String {
    use base64::Engine as _;
    use sealbox::crypto::transfer_e2e;
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/transfers",
            api_key,
            Some(&json!({"name": "crafted", "e2e": true})),
            None,
        )
        .await,
        201,
    )
    .await;
    let id = s(&created, "id");
    let uuid: uuid::Uuid = id.parse().unwrap();
    let key = transfer_e2e::generate_key();
    let b64 = base64::engine::general_purpose::STANDARD;
    for name in names {
        let file_id = transfer_e2e::new_file_id();
        let mut ciphertext = Vec::new();
        sealbox::crypto::sbx1::encrypt_stream(
            b"payload".as_slice(),
            &mut ciphertext,
            &key,
            file_id,
        )
        .unwrap();
        let sealed = transfer_e2e::seal_name(&key, uuid, file_id, name);
        let uploaded = app
            .client
            .post(s(&created, "uploadUrl"))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", ciphertext.len().to_string())
            .header(
                "Upload-Metadata",
                format!(
                    "filename {},encryption {}",
                    b64.encode(&sealed),
                    b64.encode("client")
                ),
            )
            .header("Content-Type", "application/offset+octet-stream")
            .body(ciphertext)
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 201);
    }
    json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/transfers/{id}/finalize"),
            api_key,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    format!(
        "{}&k={}",
        app.url(
            &s(&created, "link")
                .split_once("/t/")
                .map(|(_, rest)| format!("/t/{rest}"))
                .unwrap()
        ),
        transfer_e2e::encode_key(&key)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_receive_refuses_names_that_leave_the_output_directory() {
    let (app, key) = server_with_key(|_| {}).await;
    let user = User::new();
    let root = TempDir::new().unwrap();
    for evil in [
        "../evil",
        "/tmp/sealbox-evil-absolute",
        "C:/evil",
        "a\\evil",
        "a/../../evil",
    ] {
        // A harmless file first: nothing at all is written, not even it.
        let link = crafted_transfer(&app, &key, &["fine.txt", evil]).await;
        let out = root.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let run = user
            .run(&["receive", &link, "-o", out.to_str().unwrap()], &[])
            .await;
        assert!(!run.ok, "{evil}: {run:?}");
        assert!(
            run.stderr.contains("not a safe relative path"),
            "{evil}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
        assert_eq!(
            walk(root.path()),
            Vec::<PathBuf>::new(),
            "{evil}: something was written"
        );
        assert!(!Path::new("/tmp/sealbox-evil-absolute").exists());
        std::fs::remove_dir(&out).unwrap();
    }
    // A folder on the way that is a symbolic link out of the output directory is refused.
    let link = crafted_transfer(&app, &key, &["escape/x.txt"]).await;
    let out = root.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let outside = TempDir::new().unwrap();
    std::os::unix::fs::symlink(outside.path(), out.join("escape")).unwrap();
    let run = user
        .run(&["receive", &link, "-o", out.to_str().unwrap()], &[])
        .await;
    assert!(!run.ok, "{run:?}");
    assert!(run.stderr.contains("not a directory"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // A safe crafted path is recreated.
    let link = crafted_transfer(&app, &key, &["deep/er/ok.txt"]).await;
    let fine = root.path().join("fine");
    std::fs::create_dir_all(&fine).unwrap();
    let run = user
        .run(&["receive", &link, "-o", fine.to_str().unwrap()], &[])
        .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(
        std::fs::read(fine.join("deep/er/ok.txt")).unwrap(),
        b"payload"
    );
}
