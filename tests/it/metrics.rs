//! Prometheus metrics (`[metrics]`): `/metrics` off by default, on the main listener
//! behind its bearer token, or alone on a separate listener; its text read by the official
//! Python client's parser (tests/metrics/parse.py); counters that move with traffic; no
//! id, token or secret as a label; the request log's route template.
//!
//! The metrics recorder is process-wide, so these tests run the real `sealbox serve`, one
//! process per test: what one test counts is nobody else's traffic.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, SEALBOX_BIN, Server, TestApp, assert_envelope, json_of, s,
    venv_python,
};

const TOKEN: &str = "scrape-4f9c2a7e1b3d";
const SECRET: &str = "metrics-owner-secret";

/// The parsed exposition: every sample, and each family's type.
struct Scrape {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    types: BTreeMap<String, String>,
    text: String,
}

impl Scrape {
    /// Parses `text` with prometheus_client's parser; panics if it does not parse.
    fn parse(text: String) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metrics/parse.py");
        let mut child = Command::new(venv_python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "the Prometheus parser refused the text: {}\n{text}",
            String::from_utf8_lossy(&output.stderr)
        );
        let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
        let samples = parsed["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sample| {
                let labels = sample["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                let value = sample["value"].as_f64().unwrap_or(f64::NAN);
                (s(sample, "name"), labels, value)
            })
            .collect();
        let types = parsed["families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (s(f, "name"), s(f, "type")))
            .collect();
        Self {
            samples,
            types,
            text,
        }
    }

    /// The value of the sample `name` with exactly `labels`; 0 when there is none yet (a
    /// counter not yet incremented has no sample).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == wanted)
            .map_or(0.0, |(_, _, v)| *v)
    }

    /// Every sample named `name`.
    fn all(&self, name: &str) -> Vec<&(String, BTreeMap<String, String>, f64)> {
        self.samples.iter().filter(|(n, _, _)| n == name).collect()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Writes `<home>/sealbox.toml`: plain HTTP on a free port, JSON logs at info (so the
/// request log is written), and `extra` appended.
fn write_config(home: &Path, extra: &str) {
    let data = toml::Value::from(home.join("data").to_str().unwrap());
    std::fs::write(
        home.join("sealbox.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = {data}\n\
             [tls]\nmode = \"off\"\n\
             [rate_limits]\nper_ip_per_minute = 100000\n\
             per_token_per_minute = 100000\nper_api_key_per_minute = 100000\n\
             [log]\nlevel = \"info\"\nformat = \"json\"\n\
             {extra}"
        ),
    )
    .unwrap();
}

async fn scrape(url: &str, token: Option<&str>) -> Scrape {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(response.text().await.unwrap())
}

/// Signs the first admin up on a fresh server and gives them a key pair; returns the
/// access token.
async fn admin(server: &Server) -> String {
    let http = client();
    let setup = http
        .post(format!("{}/v1/setup", server.base))
        .json(&json!({
            "token": server.setup_token.as_deref().unwrap(),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "displayName": "Ada Lovelace",
            "organizationName": "Acme",
        }))
        .send()
        .await
        .unwrap();
    let token = s(&json_of(setup, 201).await, "accessToken");
    let keys = http
        .post(format!("{}/v1/keys/generate", server.base))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 201);
    token
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let app = TestApp::spawn().await;
    assert!(!sealbox::config::Config::default().metrics.enabled);
    assert_envelope(app.get("/metrics").await, 404, "NOT_FOUND").await;
    // Not even a token makes it appear.
    assert_envelope(
        app.get_as("/metrics", "scrape-4f9c2a7e1b3d").await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[test]
fn metrics_on_the_main_listener_need_a_token_to_start() {
    let home = tempfile::tempdir().unwrap();
    for (extra, message) in [
        (
            "[metrics]\nenabled = true\n",
            "metrics.enabled serves /metrics on the main listener, which needs metrics.bearer_token",
        ),
        (
            "[metrics]\nenabled = true\nbearer_token = \"short\"\n",
            "metrics.bearer_token must be at least 16 characters",
        ),
        (
            "[metrics]\nenabled = true\nlisten = \"localhost-9090\"\n",
            "`localhost-9090` is not an address such as 127.0.0.1:9090",
        ),
    ] {
        write_config(home.path(), extra);
        let output = Command::new(SEALBOX_BIN)
            .env_clear()
            .env("HOME", home.path())
            .args(["serve", "--config"])
            .arg(home.path().join("sealbox.toml"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{extra}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{extra}: {stderr}");
        assert!(output.stdout.is_empty(), "it must not serve: {extra}");
    }
    // The token may come from a file, as every secret can.
    let token_file = home.path().join("metrics.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config = sealbox::config::Config::load(&sealbox::config::Sources {
        file: None,
        env: vec![
            ("SEALBOX_METRICS__ENABLED".into(), "true".into()),
            (
                "SEALBOX_METRICS__BEARER_TOKEN_FILE".into(),
                token_file.to_str().unwrap().into(),
            ),
        ],
    })
    .unwrap();
    config.validate().unwrap();
    assert_eq!(config.metrics.bearer_token.expose(), TOKEN);
    assert!(
        !format!("{config:?}").contains(TOKEN),
        "Debug shows the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_listener_serves_metrics_that_move_with_traffic() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "[metrics]\nenabled = true\nbearer_token = \"{TOKEN}\"\n\
             [webhooks]\nallowed_networks = [\"127.0.0.0/8\"]\n"
        ),
    );
    // The API key budget is small, so a few requests with one key are refused.
    let config = std::fs::read_to_string(home.path().join("sealbox.toml"))
        .unwrap()
        .replace(
            "per_api_key_per_minute = 100000",
            "per_api_key_per_minute = 2",
        );
    std::fs::write(home.path().join("sealbox.toml"), config).unwrap();
    let mut server = Server::start(home.path(), true);
    let http = client();
    let url = format!("{}/metrics", server.base);
    assert!(
        !server.banner.iter().any(|l| l.contains("metrics:")),
        "no separate listener: {:?}",
        server.banner
    );

    // Without the token, with a wrong one, or in the wrong scheme: 401 and the envelope.
    for auth in [
        None,
        Some("Bearer scrape-4f9c2a7e1b3e".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
    ] {
        let mut request = http.get(&url);
        if let Some(auth) = &auth {
            request = request.header("Authorization", auth);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(
            refused.headers()["www-authenticate"],
            "Bearer realm=\"sealbox\""
        );
        let error = assert_envelope(refused, 401, "UNAUTHORIZED").await;
        assert!(
            !error.to_string().contains(TOKEN),
            "the answer repeats the token"
        );
    }
    let refused_count = 5.0;

    let token = admin(&server).await;
    let before = scrape(&url, Some(TOKEN)).await;
    assert_eq!(before.types["sealbox_http_requests"], "counter");
    assert_eq!(
        before.types["sealbox_http_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(before.types["sealbox_db_wait_seconds"], "histogram");
    assert_eq!(
        before.value(
            "sealbox_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // The refused scrapes were counted under the route template, as 401s.
    assert_eq!(
        before.value(
            "sealbox_http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "401")]
        ),
        refused_count
    );

    // N requests to a route raise its counter by exactly N, and its latency count too.
    const N: usize = 7;
    for _ in 0..N {
        let health = http
            .get(format!("{}/health", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
    // Routes with ids and capabilities in their paths, and paths no route matches.
    let link_id = uuid::Uuid::now_v7().to_string();
    let upload_token = "Zm9yZ2VkLXVwbG9hZC10b2tlbi0xMjM0NTY3ODkw";
    let missing_transfer = http
        .get(format!("{}/v1/public/transfers/{link_id}", server.base))
        .header("X-Transfer-Secret", "not-the-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(missing_transfer.status(), 404);
    let forged_upload = http
        .head(format!("{}/v1/uploads/{upload_token}", server.base))
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(forged_upload.status(), 404);
    let file_id = uuid::Uuid::now_v7().to_string();
    let foreign_file = http
        .get(format!("{}/v1/files/{file_id}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // Refused (no such file, or the secret header it needs is missing): counted under
    // its template whichever answer it is.
    let foreign_status = foreign_file.status().as_u16().to_string();
    assert!(foreign_file.status().is_client_error(), "{foreign_status}");
    let unknown = format!("/v1/no-such-route-{link_id}");
    for path in [unknown.as_str(), "/nothing/here", "/admin/nope"] {
        let missing = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404, "{path}");
    }
    let odd_method = http
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            format!("{}/health", server.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(odd_method.status(), 405);

    // A failed sign-in.
    let failed_login = http
        .post(format!("{}/v1/auth/login", server.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": "not-the-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed_login.status(), 401);

    // The API key budget of 2 per minute: the third request with one key is refused.
    let mut refusals = 0;
    for _ in 0..3 {
        let answer = http
            .get(format!("{}/v1/me", server.base))
            .header("X-Api-Key", "sbx_live_notakeyatall")
            .send()
            .await
            .unwrap();
        if answer.status() == 429 {
            refusals += 1;
        }
    }
    assert_eq!(refusals, 1);

    // An upload of known size, then its download.
    let bytes: Vec<u8> = (0..150_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (file, in_progress) = upload(&server, &token, &bytes).await;
    assert_eq!(
        in_progress, 1.0,
        "the streaming PATCH is one upload in progress"
    );
    let link = http
        .get(format!("{}/v1/files/{file}/download", server.base))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    let link = s(&json_of(link, 200).await, "url");
    let downloaded = http.get(&link).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let after = scrape(&url, Some(TOKEN)).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let requests = "sealbox_http_requests_total";
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", "/health"), ("status", "200")]
        ),
        N as f64
    );
    assert_eq!(
        delta(
            "sealbox_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/health")]
        ),
        N as f64
    );
    // Every bucket is cumulative and the +Inf bucket holds every request.
    let buckets: Vec<_> = after
        .all("sealbox_http_request_duration_seconds_bucket")
        .into_iter()
        .filter(|(_, l, _)| l["route"] == "/health" && l["method"] == "GET")
        .collect();
    assert_eq!(buckets.len(), 17, "16 bounds and +Inf: {buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].2 <= w[1].2), "{buckets:?}");
    assert_eq!(buckets.last().unwrap().1["le"], "+Inf");
    assert_eq!(buckets.last().unwrap().2, N as f64);

    for (method, route, status) in [
        ("GET", "/v1/public/transfers/{id}", "404"),
        ("HEAD", "/v1/uploads/{token}", "404"),
        ("other", "/health", "405"),
        ("POST", "/v1/auth/login", "401"),
        ("GET", "/v1/me", "429"),
        ("POST", "/v1/uploads", "201"),
        ("POST", "/v1/files/{id}/finalize", "200"),
        ("GET", "/v1/downloads/{token}", "200"),
    ] {
        assert_eq!(
            delta(
                requests,
                &[("method", method), ("route", route), ("status", status)]
            ),
            1.0,
            "{method} {route} {status}"
        );
    }
    assert_eq!(
        delta(
            requests,
            &[
                ("method", "PATCH"),
                ("route", "/v1/uploads/{token}"),
                ("status", "204")
            ]
        ),
        2.0
    );
    assert_eq!(
        delta(
            requests,
            &[
                ("method", "GET"),
                ("route", "/v1/files/{id}"),
                ("status", foreign_status.as_str())
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        3.0
    );
    assert_eq!(
        delta("sealbox_login_failures_total", &[("reason", "credentials")]),
        1.0
    );
    assert_eq!(
        delta(
            "sealbox_rate_limit_refusals_total",
            &[("budget", "api_key")]
        ),
        1.0
    );
    assert_eq!(
        delta("sealbox_uploaded_bytes_total", &[]),
        bytes.len() as f64
    );
    assert_eq!(
        delta("sealbox_downloaded_bytes_total", &[]),
        bytes.len() as f64
    );
    assert_eq!(after.value("sealbox_uploads_in_progress", &[]), 0.0);
    assert!(delta("sealbox_db_wait_seconds_count", &[("wait", "connection")]) > 0.0);
    assert!(delta("sealbox_db_wait_seconds_count", &[("wait", "writer")]) > 0.0);
    for dir in ["data", "uploads", "blobs"] {
        let free = after.value("sealbox_disk_free_bytes", &[("dir", dir)]);
        let size = after.value("sealbox_disk_size_bytes", &[("dir", dir)]);
        assert!(free > 0.0 && free <= size, "{dir}: {free} of {size}");
    }
    assert_eq!(after.value("sealbox_webhook_queue_depth", &[]), 0.0);
    assert_eq!(
        after.value("sealbox_webhook_oldest_pending_age_seconds", &[]),
        0.0
    );

    // No label carries an id, a token or a secret: they appear nowhere in the text.
    for secret in [
        link_id.as_str(),
        upload_token,
        file.as_str(),
        file_id.as_str(),
        TOKEN,
        &token,
        SECRET,
        link.rsplit('/').next().unwrap(),
        "not-the-password",
        "sbx_live_notakeyatall",
    ] {
        assert!(
            !after.text.contains(secret),
            "/metrics shows {secret}:\n{}",
            after.text
        );
    }
    // Every route label is a template or `unmatched`.
    for (_, labels, _) in after.all(requests) {
        let route = &labels["route"];
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "route label {route}"
        );
        assert!(
            !route
                .split('/')
                .any(|seg| uuid::Uuid::try_parse(seg).is_ok()),
            "route label {route}"
        );
    }

    // A webhook whose endpoint refuses connections: its delivery waits for a retry.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let webhook = http
        .post(format!("{}/v1/webhooks", server.base))
        .bearer_auth(&token)
        .json(
            &json!({"url": format!("http://127.0.0.1:{closed_port}/hook"),
                      "events": ["api_key.*"]}),
        )
        .send()
        .await
        .unwrap();
    json_of(webhook, 201).await;
    let key = http
        .post(format!("{}/v1/api-keys", server.base))
        .bearer_auth(&token)
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    let queued = loop {
        let now = scrape(&url, Some(TOKEN)).await;
        if now.value(
            "sealbox_webhook_delivery_attempts_total",
            &[("outcome", "retrying")],
        ) >= 1.0
        {
            break now;
        }
        assert!(Instant::now() < deadline, "no attempt was recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(queued.value("sealbox_webhook_queue_depth", &[]), 1.0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = scrape(&url, Some(TOKEN)).await;
    let age = later.value("sealbox_webhook_oldest_pending_age_seconds", &[]);
    assert!((1.0..60.0).contains(&age), "oldest pending age {age}");
    assert_eq!(
        later.value(
            "sealbox_webhook_delivery_attempts_total",
            &[("outcome", "succeeded")]
        ),
        0.0
    );

    // The request log: one line per request with id, method, route template, status and
    // duration, and never the id or token of the path.
    server.kill();
    let log = std::fs::read_to_string(home.path().join("serve.log")).unwrap();
    let handled: Vec<Value> = log
        .lines()
        .filter(|l| l.contains("\"handled\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = handled
        .iter()
        .find(|l| l["span"]["route"] == "/v1/public/transfers/{id}")
        .unwrap_or_else(|| panic!("no request line for the public transfer:\n{log}"));
    assert_eq!(line["fields"]["status"], 404);
    assert!(line["fields"]["elapsed_ms"].is_u64(), "{line}");
    assert_eq!(line["span"]["method"], "GET");
    assert!(
        uuid::Uuid::try_parse(line["span"]["id"].as_str().unwrap()).is_ok(),
        "{line}"
    );
    let upload_line = handled
        .iter()
        .find(|l| l["span"]["route"] == "/v1/uploads/{token}" && l["span"]["method"] == "HEAD")
        .unwrap_or_else(|| panic!("no request line for the upload:\n{log}"));
    assert_eq!(upload_line["fields"]["status"], 404);
    assert!(
        handled
            .iter()
            .any(|l| l["span"]["route"] == "unmatched" && l["fields"]["status"] == 404),
        "{log}"
    );
    // The unmatched path was made with the link id in it on purpose (for the metrics'
    // labels); the log shows unmatched paths as they came. Everywhere else, nothing.
    for secret in [link_id.as_str(), upload_token, TOKEN] {
        let shown = log
            .lines()
            .filter(|l| !l.contains(&unknown))
            .any(|l| l.contains(secret));
        assert!(!shown, "the log shows {secret}:\n{log}");
    }
}

/// A tus upload of `bytes` in two PATCHes, finalized; returns the file id and the
/// uploads-in-progress gauge as scraped while the second PATCH was still sending.
async fn upload(server: &Server, token: &str, bytes: &[u8]) -> (String, f64) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let http = client();
    let created = http
        .post(format!("{}/v1/uploads", server.base))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .header(
            "Upload-Metadata",
            format!(
                "filename {},encryption {}",
                b64.encode("figures.bin"),
                b64.encode("server")
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
    let patch = |offset: usize, body: reqwest::Body| {
        http.patch(&location)
            .header("Tus-Resumable", "1.0.0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .body(body)
            .send()
    };
    // One whole 64 KiB segment: the server keeps whole segments only until the last byte,
    // so the offset is exactly what was sent and no byte is sent twice.
    let half = 65_536;
    let first = patch(0, bytes[..half].to_vec().into()).await.unwrap();
    assert_eq!(first.status(), 204);
    assert_eq!(first.headers()["upload-offset"], half.to_string().as_str());

    // The second PATCH streams: its first part, then (once the gauge shows it) the rest.
    let (part, parts) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let body = futures_util::stream::unfold(parts, |mut parts| async move {
        parts
            .recv()
            .await
            .map(|bytes| (Ok::<_, std::io::Error>(bytes), parts))
    });
    let second = tokio::spawn(patch(half, reqwest::Body::wrap_stream(body)));
    let middle = half + (bytes.len() - half) / 2;
    part.send(bytes[half..middle].to_vec()).await.unwrap();
    let url = format!("{}/metrics", server.base);
    let deadline = Instant::now() + Duration::from_secs(10);
    let gauge = loop {
        let gauge = scrape(&url, Some(TOKEN))
            .await
            .value("sealbox_uploads_in_progress", &[]);
        if gauge >= 1.0 || Instant::now() > deadline {
            break gauge;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    part.send(bytes[middle..].to_vec()).await.unwrap();
    drop(part);
    let second = second.await.unwrap().unwrap();
    assert_eq!(second.status(), 204);
    assert_eq!(
        second.headers()["upload-offset"],
        bytes.len().to_string().as_str()
    );
    let finalized = http
        .post(format!("{}/v1/files/{id}/finalize", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    json_of(finalized, 200).await;
    (id, gauge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_listener_serves_only_metrics() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "[metrics]\nenabled = true\nlisten = \"127.0.0.1:0\"\nbearer_token = \"{TOKEN}\"\n"
        ),
    );
    let server = Server::start(home.path(), true);
    let metrics_url = server
        .banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("metrics:"))
        .unwrap_or_else(|| panic!("no metrics line in {:?}", server.banner))
        .trim()
        .to_owned();
    assert!(
        metrics_url.starts_with("http://127.0.0.1:") && metrics_url.ends_with("/metrics"),
        "{metrics_url}"
    );
    assert_ne!(
        metrics_url.trim_end_matches("/metrics"),
        server.base,
        "a listener of its own"
    );
    let http = client();

    // The main listener has no /metrics when a separate one serves it.
    let main = http
        .get(format!("{}/metrics", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_envelope(main, 404, "NOT_FOUND").await;
    // The separate one serves nothing else, and checks the token it has.
    let base = metrics_url.trim_end_matches("/metrics");
    for path in ["/health", "/v1/openapi.json", "/"] {
        let other = http
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_envelope(other, 404, "NOT_FOUND").await;
    }
    assert_envelope(
        http.get(&metrics_url).send().await.unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    let posted = http
        .post(&metrics_url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.headers()["allow"], "GET, HEAD");
    assert_envelope(posted, 405, "METHOD_NOT_ALLOWED").await;

    // Main-listener traffic is counted and read on the separate listener.
    for _ in 0..3 {
        let health = http
            .get(format!("{}/health", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
    let scraped = scrape(&metrics_url, Some(TOKEN)).await;
    assert_eq!(
        scraped.value(
            "sealbox_http_requests_total",
            &[("method", "GET"), ("route", "/health"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        scraped.value(
            "sealbox_http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "401")]
        ),
        1.0
    );
}
