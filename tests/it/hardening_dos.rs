//! Denial of service without credentials (issue 15), each attack made over HTTP against
//! the real server and seen refused: stalled and oversized bodies before authentication,
//! half-sent requests, too many connections, parallel Argon2id work, raced login and
//! user-secret guesses, the byte routes outside the rate limiter; and user secrets that
//! are not ASCII. Loops are bounded in count and time and only reach 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::stream;
use reqwest::Method;
use reqwest::header::HeaderValue;
use sealbox::http::middleware::UNAUTHENTICATED_BODY_BYTES;
use sealbox::service::login_throttle::FREE_FAILURES;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, TestApp, assert_envelope, json_of, s};

const SECRET: &str = "owner-secret-phrase";

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The real server with `extra` appended to its configuration (TOML).
fn server_with(home: &Path, extra: &str) -> Server {
    let data = toml::Value::from(home.join("data").to_str().unwrap());
    std::fs::write(
        home.join("sealbox.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{extra}\n\
             [storage]\ndata_dir = {data}\n\
             [tls]\nmode = \"off\"\n\
             [rate_limits]\nper_ip_per_minute = 100000\n\
             per_token_per_minute = 100000\nper_api_key_per_minute = 100000\n\
             [log]\nlevel = \"warn\"\n"
        ),
    )
    .unwrap();
    Server::start(home, true)
}

fn host_of(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

async fn setup(client: &reqwest::Client, base: &str, token: &str) -> Value {
    let response = client
        .post(format!("{base}/v1/setup"))
        .json(&json!({
            "token": token,
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "displayName": "Ada Lovelace",
            "organizationName": "Acme",
        }))
        .send()
        .await
        .unwrap();
    json_of(response, 201).await
}

/// Sends a chunked POST of up to `total` bytes without credentials and stops when the
/// server stops reading (or has answered). Returns the open connection.
async fn stalled_chunked_post(host: &str, path: &str, total: usize) -> TcpStream {
    let mut conn = TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = {
        let data = vec![b' '; 64 * 1024];
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(&data);
        framed.extend_from_slice(b"\r\n");
        framed
    };
    let mut sent = 0;
    while sent < total {
        match tokio::time::timeout(Duration::from_millis(300), conn.write_all(&chunk)).await {
            Ok(Ok(())) => sent += 64 * 1024,
            // The server stopped reading (the socket buffers are full) or hung up.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    conn
}

/// What the server said on `conn` within `wait`: the status line, or `None` if the
/// connection closed or reset with nothing (both mean the server let go of it).
async fn status_line(conn: &mut TcpStream, wait: Duration) -> Result<Option<String>, String> {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Err(_) => return Err(format!("no answer in {wait:?}: {got:?}")),
            Ok(Err(_)) | Ok(Ok(0)) => {
                let text = String::from_utf8_lossy(&got).into_owned();
                return Ok(text
                    .lines()
                    .next()
                    .map(str::to_owned)
                    .filter(|l| !l.is_empty()));
            }
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(2).any(|w| w == b"\r\n") {
                    let text = String::from_utf8_lossy(&got).into_owned();
                    return Ok(text.lines().next().map(str::to_owned));
                }
            }
        }
    }
}

#[tokio::test]
async fn stalled_chunked_bodies_without_credentials_are_refused_and_memory_stays_flat() {
    let home = tempfile::TempDir::new().unwrap();
    let server = server_with(home.path(), "");
    let pid = server.child.id();
    let host = host_of(&server.base);
    // Let start-up settle, then take the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_before, _) = memory_kib(pid);

    // 30 connections, each trying to send 20 MiB (within the whole-file JSON limit that
    // every path under /v1/files used to get) and then stalling: the server used to
    // buffer every byte of them and wait for the rest.
    let started = Instant::now();
    let connections = futures_util::future::join_all((0..30).map(|i| {
        let host = host.clone();
        async move {
            let path = if i % 2 == 0 {
                "/v1/files"
            } else {
                "/v1/files/anything"
            };
            stalled_chunked_post(&host, path, 20 * 1024 * 1024).await
        }
    }))
    .await;
    assert!(started.elapsed() < Duration::from_secs(60));
    let (rss_during, peak_during) = memory_kib(pid);

    for mut conn in connections {
        match status_line(&mut conn, Duration::from_secs(10)).await {
            Ok(Some(line)) => assert!(line.contains(" 413 "), "{line}"),
            // Answered and closed; the reset can swallow the answer on our side.
            Ok(None) => {}
            Err(why) => panic!("the server still waits for a stranger's body: {why}"),
        }
    }
    let grown = rss_during.saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "VmRSS grew by {grown} KiB ({rss_before} -> {rss_during}, peak {peak_during}) under 30 stalled bodies"
    );
    // Nothing was created by any of it.
    let conn = rusqlite::Connection::open(home.path().join("data/sealbox.db")).unwrap();
    let files: i64 = conn
        .query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(files, 0);
}

#[tokio::test]
async fn a_strangers_declared_body_over_the_small_limit_is_refused_unread() {
    let app = TestApp::spawn().await;
    let login = app.setup_admin().await;
    let token = s(&login, "accessToken");
    let big = json!({"valueB64": B64.encode(vec![7u8; 64 * 1024])});

    // Without credentials only a few KiB are accepted, even on the route whose limit is
    // large.
    let request = app.client.put(app.url("/v1/kv/big")).json(&big);
    let error = assert_envelope(request.send().await.unwrap(), 413, "PAYLOAD_TOO_LARGE").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&UNAUTHENTICATED_BODY_BYTES.to_string()),
        "{error}"
    );
    // With a credential that fails, the same body is refused for that reason (401),
    // still unread.
    let request = app
        .client
        .put(app.url("/v1/kv/big"))
        .header("authorization", "Bearer not-a-token")
        .json(&big);
    assert_envelope(request.send().await.unwrap(), 401, "UNAUTHORIZED").await;
    // A small body without credentials still gets its 401 from the handler.
    let small = app
        .client
        .put(app.url("/v1/kv/small"))
        .json(&json!({"valueB64": "AAAA"}))
        .send()
        .await
        .unwrap();
    assert_envelope(small, 401, "UNAUTHORIZED").await;

    // Authenticated, the same body reaches the operation (no keys yet: its own 400).
    let response = app
        .send_as(Method::PUT, "/v1/kv/big", &token, Some(&big), None)
        .await;
    assert_envelope(response, 400, "BAD_REQUEST").await;

    // The larger limit belongs to the exact operations only: another route under the
    // same prefix keeps the ordinary JSON limit.
    let app = TestApp::spawn_with(|c| c.limits.json_body_bytes = 2048).await;
    let token = s(&app.setup_admin().await, "accessToken");
    let presign = app
        .send_as(
            Method::POST,
            "/v1/files/presign",
            &token,
            Some(&json!({"filename": "x".repeat(4096), "size": 1, "encryption": "server"})),
            None,
        )
        .await;
    let error = assert_envelope(presign, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(
        error["message"].as_str().unwrap().contains("2048"),
        "{error}"
    );
}

#[tokio::test]
async fn half_sent_request_heads_are_dropped_after_the_header_timeout() {
    let app = TestApp::spawn_with(|c| c.server.header_read_timeout_secs = 1).await;
    let host = app.addr.to_string();

    // A request line and part of the headers, then nothing.
    let mut partial = TcpStream::connect(&host).await.unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(&host).await.unwrap();
    let started = Instant::now();
    for conn in [&mut partial, &mut silent] {
        let said = status_line(conn, Duration::from_secs(5))
            .await
            .unwrap_or_else(|why| panic!("still open: {why}"));
        assert!(
            said.as_ref().is_none_or(|line| line.contains(" 408 ")),
            "{said:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A complete request is served as ever.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(|c| c.server.max_connections = 2).await;
    let host = app.addr.to_string();
    let first = TcpStream::connect(&host).await.unwrap();
    let _second = TcpStream::connect(&host).await.unwrap();
    // Give the server the moment it needs to accept both.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let refused = client.get(app.url("/health")).send().await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_timeout),
        "a third connection was served: {refused:?}"
    );

    drop(first);
    let served = client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(served.status(), 200);
}

/// PUT /v1/kv/{key} whose JSON body arrives in `pieces`, `gap` apart, then (if `stall`)
/// nothing more.
async fn slow_put(
    app: &TestApp,
    token: &str,
    key: &str,
    gap: Duration,
    stall: bool,
) -> reqwest::Result<reqwest::Response> {
    let body = serde_json::to_vec(&json!({"valueB64": B64.encode(b"slow but steady")})).unwrap();
    let pieces: Vec<Vec<u8>> = body
        .chunks(body.len().div_ceil(8))
        .map(<[u8]>::to_vec)
        .collect();
    let sent = if stall {
        pieces.len() / 2
    } else {
        pieces.len()
    };
    let chunks = stream::unfold(0usize, move |i| {
        let pieces = pieces.clone();
        async move {
            if i >= sent {
                if i < pieces.len() {
                    // Stalled: never another byte.
                    std::future::pending::<()>().await;
                }
                return None;
            }
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            Some((Ok::<_, std::io::Error>(pieces[i].clone()), i + 1))
        }
    });
    reqwest::Client::new()
        .put(app.url(&format!("/v1/kv/{key}")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(10))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_but_a_slow_steady_one_completes() {
    let app = TestApp::spawn_with(|c| c.server.body_idle_timeout_secs = 1).await;
    let token = s(&app.setup_admin().await, "accessToken");
    app.generate_keys(&token, SECRET).await;

    // Eight pieces 400 ms apart: 2.8 s in all, never 1 s idle.
    let steady = slow_put(&app, &token, "steady", Duration::from_millis(400), false)
        .await
        .unwrap();
    assert!(steady.status().is_success(), "{}", steady.status());

    // Half the body, then silence: the server gives up after the idle timeout.
    let started = Instant::now();
    let stalled = slow_put(&app, &token, "stalled", Duration::from_millis(50), true).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the server waited {waited:?} for a stalled body: {stalled:?}"
    );
    if let Ok(response) = stalled {
        assert_envelope(response, 400, "BAD_REQUEST").await;
    }
    // Nothing was stored for it.
    let missing = app
        .client
        .get(app.url("/v1/kv/stalled"))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_envelope(missing, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn parallel_logins_wait_for_argon2_slots_and_memory_stays_bounded() {
    let home = tempfile::TempDir::new().unwrap();
    // Two slots whatever the machine, a queue long enough for all, and X-Forwarded-For
    // believed from loopback so each login comes from its own address.
    let mut server = server_with(
        home.path(),
        "argon2_concurrency = 2\nargon2_queue_timeout_ms = 120000\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let pid = server.child.id();
    let client = reqwest::Client::new();
    let token = server.setup_token.clone().unwrap();
    setup(&client, &server.base, &token).await;
    let (_, peak_before) = memory_kib(pid);

    let started = Instant::now();
    let logins = futures_util::future::join_all((0..100).map(|i| {
        let (client, base) = (client.clone(), server.base.clone());
        async move {
            client
                .post(format!("{base}/v1/auth/login"))
                .header(
                    "x-forwarded-for",
                    format!("10.9.{}.{}", i / 200, i % 200 + 1),
                )
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
                .timeout(Duration::from_secs(150))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    let took = started.elapsed();
    assert!(logins.iter().all(|&status| status == 200), "{logins:?}");
    let (_, peak_after) = memory_kib(pid);
    let grown = peak_after.saturating_sub(peak_before);
    // Two runs of 19 MiB at a time, plus what 100 requests in flight cost.
    assert!(
        grown < 120 * 1024,
        "peak resident memory grew by {grown} KiB ({peak_before} -> {peak_after}) for 100 parallel logins in {took:?}"
    );
    server.kill();
}

#[tokio::test]
async fn a_full_argon2_queue_answers_503_with_retry_after_and_changes_nothing() {
    let home = tempfile::TempDir::new().unwrap();
    let _server = server_with(
        home.path(),
        "argon2_concurrency = 1\nargon2_queue_timeout_ms = 1\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let server = &_server;
    let client = reqwest::Client::new();
    setup(
        &client,
        &server.base,
        server.setup_token.as_deref().unwrap(),
    )
    .await;
    let db = home.path().join("data/sealbox.db");
    let sessions = || -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
            .unwrap()
    };
    let before = sessions();

    let answers = futures_util::future::join_all((0..20).map(|i| {
        let (client, base) = (client.clone(), server.base.clone());
        async move {
            client
                .post(format!("{base}/v1/auth/login"))
                .header("x-forwarded-for", format!("10.8.0.{}", i + 1))
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
                .send()
                .await
                .unwrap()
        }
    }))
    .await;
    let mut signed_in = 0;
    let mut refused = 0;
    for answer in answers {
        match answer.status().as_u16() {
            200 => signed_in += 1,
            503 => {
                let retry_after: u64 = answer.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry_after >= 1);
                assert_envelope(answer, 503, "UNAVAILABLE").await;
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        signed_in >= 1 && refused >= 1,
        "{signed_in} signed in, {refused} refused"
    );
    // Refused logins made no session.
    assert_eq!(sessions() - before, signed_in);
}

#[tokio::test]
async fn parallel_wrong_passwords_from_one_address_get_only_the_free_checks() {
    let app = TestApp::spawn_with(|c| c.server.trusted_proxies = vec!["127.0.0.1".into()]).await;
    app.setup_admin().await;
    let attacker = "10.7.0.1";
    let guesses = futures_util::future::join_all((0..60).map(|i| {
        let (client, url) = (app.client.clone(), app.url("/v1/auth/login"));
        async move {
            client
                .post(url)
                .header("x-forwarded-for", attacker)
                .json(&json!({"email": ADMIN_EMAIL, "password": format!("guess-number-{i}")}))
                .send()
                .await
                .unwrap()
        }
    }))
    .await;
    let statuses: Vec<u16> = guesses.iter().map(|r| r.status().as_u16()).collect();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let throttled = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(checked, FREE_FAILURES as usize, "{statuses:?}");
    assert_eq!(throttled, 60 - FREE_FAILURES as usize, "{statuses:?}");
    for refused in guesses.into_iter().filter(|r| r.status() == 429) {
        assert!(refused.headers().contains_key("retry-after"));
        assert_envelope(refused, 429, "RATE_LIMITED").await;
    }
    // Only the real checks left a trace.
    let failures = app.query(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login' AND outcome = 'failure'",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(failures, vec![i64::from(FREE_FAILURES)]);

    // The attacker's address is delayed even with the right password...
    let from = |address: &str| {
        app.client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", address.to_owned())
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
    };
    assert_envelope(from(attacker).await.unwrap(), 429, "RATE_LIMITED").await;
    // ...but the owner, at their own address, is not locked out by the stranger.
    assert_eq!(from("10.7.0.2").await.unwrap().status(), 200);
}

async fn kv_get(app: &TestApp, token: &str, key: &str, secret: HeaderValue) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/v1/kv/{key}")))
        .bearer_auth(token)
        .header("X-User-Secret", secret)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_user_secrets_are_delayed_per_credential() {
    // No unlock cache, so every call with a secret derives the key.
    let app = TestApp::spawn_with(|c| c.vault.unlock_cache_secs = 0).await;
    let token = s(&app.setup_admin().await, "accessToken");
    app.generate_keys(&token, SECRET).await;
    let put = app
        .send_as(
            Method::PUT,
            "/v1/kv/db",
            &token,
            Some(&json!({"valueB64": B64.encode(b"hunter2")})),
            None,
        )
        .await;
    assert!(put.status().is_success());

    // 30 wrong secrets at once: the free ones are checked, the rest wait.
    let guesses = futures_util::future::join_all((0..30).map(|i| {
        kv_get(
            &app,
            &token,
            "db",
            HeaderValue::from_str(&format!("wrong-secret-{i}")).unwrap(),
        )
    }))
    .await;
    let statuses: Vec<u16> = guesses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        FREE_FAILURES as usize,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        30 - FREE_FAILURES as usize
    );
    // The right secret now waits too, so the answer says nothing about it.
    let right = kv_get(&app, &token, "db", HeaderValue::from_static(SECRET)).await;
    let retry_after: u64 = right.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_envelope(right, 429, "RATE_LIMITED").await;

    // Another credential of the same user has its own count (the user's ceiling is higher).
    let other = s(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await, "accessToken");
    let body = json_of(
        kv_get(&app, &other, "db", HeaderValue::from_static(SECRET)).await,
        200,
    )
    .await;
    assert_eq!(B64.decode(s(&body, "valueB64")).unwrap(), b"hunter2");
}

#[tokio::test]
async fn user_secrets_are_their_utf8_bytes_and_other_bytes_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let token = s(&app.setup_admin().await, "accessToken");
    let secret = "pässwort-ü-秘密-🔑";
    let utf8 = || HeaderValue::from_bytes(secret.as_bytes()).unwrap();
    let generate = app
        .client
        .post(app.url("/v1/keys/generate"))
        .bearer_auth(&token)
        .header("X-User-Secret", utf8())
        .send()
        .await
        .unwrap();
    assert_eq!(generate.status(), 201, "{:?}", generate.text().await);
    let put = app
        .send_as(
            Method::PUT,
            "/v1/kv/unicode",
            &token,
            Some(&json!({"valueB64": B64.encode(b"opened")})),
            None,
        )
        .await;
    assert!(put.status().is_success());
    let body = json_of(kv_get(&app, &token, "unicode", utf8()).await, 200).await;
    assert_eq!(B64.decode(s(&body, "valueB64")).unwrap(), b"opened");

    // The same text in Latin-1 is not UTF-8: refused, saying why, not "required".
    let latin1: Vec<u8> = "pässwort".chars().map(|c| c as u8).collect();
    let refused = kv_get(
        &app,
        &token,
        "unicode",
        HeaderValue::from_bytes(&latin1).unwrap(),
    )
    .await;
    let error = assert_envelope(refused, 400, "BAD_REQUEST").await;
    assert!(
        error["message"].as_str().unwrap().contains("UTF-8"),
        "{error}"
    );
    // A different UTF-8 secret is simply wrong.
    let wrong = kv_get(
        &app,
        &token,
        "unicode",
        HeaderValue::from_bytes("pässwort-u".as_bytes()).unwrap(),
    )
    .await;
    assert_envelope(wrong, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn byte_routes_spend_the_address_budget_and_carry_its_headers() {
    let app = TestApp::spawn_with(|c| c.rate_limits.per_ip_per_minute = 20).await;
    let token = s(&app.setup_admin().await, "accessToken");
    app.generate_keys(&token, SECRET).await;
    let bytes = vec![42u8; 10_000];
    let presigned = json_of(
        app.send_as(
            Method::POST,
            "/v1/files/presign",
            &token,
            Some(
                &json!({"filename": "a.bin", "contentType": "application/octet-stream",
                         "size": bytes.len(), "encryption": "server"}),
            ),
            None,
        )
        .await,
        201,
    )
    .await;
    let put = app
        .client
        .put(s(&presigned, "uploadUrl"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert!(
        put.headers().contains_key("x-ratelimit-limit"),
        "uploads are limited too"
    );
    let id = s(&presigned, "fileId");
    let finalize = app
        .send_as(
            Method::POST,
            &format!("/v1/files/{id}/finalize"),
            &token,
            None,
            None,
        )
        .await;
    assert_eq!(finalize.status(), 200);
    let link = app
        .client
        .get(app.url(&format!("/v1/files/{id}/download")))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    let url = s(&json_of(link, 200).await, "url");
    let downloads = || {
        app.query(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'file.downloaded'",
            |r| r.get::<_, i64>(0),
        )[0]
    };

    // Anonymous ranged requests of the link, far more than the budget.
    let mut served = 0;
    let mut refused = None;
    for _ in 0..40 {
        let response = app
            .client
            .get(&url)
            .header("Range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
        assert!(response.headers().contains_key("ratelimit-policy"));
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 206);
        served += 1;
    }
    let refused = refused.expect("the budget ran out");
    assert!(served < 20, "{served}");
    assert!(refused.headers().contains_key("retry-after"));
    assert_envelope(refused, 429, "RATE_LIMITED").await;
    // Refused requests wrote nothing.
    let recorded = downloads();
    assert!(
        recorded <= served,
        "{recorded} audit rows for {served} served ranges"
    );
    for path in [url.clone(), app.url("/v1/public/transfers/x/files/y")] {
        let again = app.client.get(&path).send().await.unwrap();
        assert_envelope(again, 429, "RATE_LIMITED").await;
    }
    assert_eq!(downloads(), recorded);
}
