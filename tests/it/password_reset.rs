//! Password reset by mail, end to end: a real SMTP server (aiosmtpd, from the venv that
//! `scripts/test` prepares) receives the mail, the link in it resets the password once,
//! and every earlier session stops working. Also the admin's link from the CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealbox::config::SmtpSecurity;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_envelope, s};

const NEW_PASSWORD: &str = "copper-lantern-ninety";

/// aiosmtpd on a free loopback port, storing what it receives in a maildir; killed on drop.
pub(crate) struct SmtpSink {
    child: Child,
    pub(crate) port: u16,
    maildir: PathBuf,
    _dir: TempDir,
}

impl SmtpSink {
    pub(crate) async fn start() -> Self {
        let venv = std::env::var("SBX_TEST_VENV").unwrap_or_else(|_| {
            panic!("SBX_TEST_VENV is not set: run the tests through scripts/test, which installs aiosmtpd")
        });
        let dir = TempDir::new().unwrap();
        let maildir = dir.path().join("maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(Path::new(&venv).join("bin/python"))
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts from the test venv");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("aiosmtpd exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// Every message received so far, as stored (headers and encoded body).
    fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Waits until at least `count` messages have arrived.
    pub(crate) async fn wait_for_messages(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} mail(s), got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn spawn_with_mail(sink: &SmtpSink) -> TestApp {
    let port = sink.port;
    TestApp::spawn_with(|config| {
        config.smtp.host = "127.0.0.1".into();
        config.smtp.port = port;
        config.smtp.security = SmtpSecurity::None;
        config.smtp.from = "Sealbox <sealbox@example.test>".into();
    })
    .await
}

/// The value of a header of a stored message.
fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
}

/// The decoded text body: mail clients undo quoted-printable, and so does this.
pub(crate) fn body(message: &str) -> String {
    let message = message.replace("\r\n", "\n");
    let (_, body) = message.split_once("\n\n").expect("headers and a body");
    let quoted_printable = header(&message, "Content-Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("quoted-printable"));
    if !quoted_printable {
        return body.to_owned();
    }
    let unfolded = body.replace("=\n", "");
    let bytes = unfolded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'=', Some(hex)) => {
                let hex = std::str::from_utf8(hex).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("=XX escape"));
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The reset link in a mail body (on a line of its own) and its token.
fn reset_link(text: &str) -> (String, String) {
    let link = text
        .lines()
        .map(str::trim)
        .find(|line| line.contains("/reset-password?token="))
        .unwrap_or_else(|| panic!("no reset link in {text}"))
        .to_owned();
    let token = link.split_once("?token=").unwrap().1.to_owned();
    assert!(
        token.len() >= 43
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{token}"
    );
    (link, token)
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/v1/auth/reset-password",
        &json!({"token": token, "password": password}),
    )
    .await
}

async fn forgot(app: &TestApp, email: &str) {
    let response = app
        .post_json("/v1/auth/forgot-password", &json!({"email": email}))
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "accepted"})
    );
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.post_json(
        "/v1/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
    .status()
    .as_u16()
}

/// Polls the database until `sql` (a count) answers `want`: some work is done after the
/// response, in the background.
async fn eventually_count(app: &TestApp, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = app.query(sql, |r| r.get::<_, i64>(0))[0];
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {got}, expected {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_mailed_link_resets_the_password_once_and_signs_out_everywhere() {
    let sink = SmtpSink::start().await;
    let app = spawn_with_mail(&sink).await;
    let first = app.setup_admin().await;
    let second = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // Addresses match case-insensitively, as at login.
    forgot(&app, "ADA@Example.com").await;
    let mails = sink.wait_for_messages(1).await;
    assert_eq!(header(&mails[0], "X-RcptTo"), Some(ADMIN_EMAIL));
    assert_eq!(
        header(&mails[0], "Subject"),
        Some("Reset your sealbox password")
    );
    assert!(
        header(&mails[0], "From").is_some_and(|f| f.contains("sealbox@example.test")),
        "{}",
        mails[0]
    );
    let (link, token) = reset_link(&body(&mails[0]));
    assert_eq!(link, format!("{}/reset-password?token={token}", app.base));

    // A refused password leaves the link usable.
    for weak in ["short", "QwertyUIOP"] {
        let error = assert_envelope(reset(&app, &token, weak).await, 422, "VALIDATION").await;
        assert_eq!(error["details"][0]["path"], "password", "{error}");
    }
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), 204);
    // Single use.
    assert_envelope(
        reset(&app, &token, "another-fine-password").await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    assert_eq!(login_status(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await, 401);
    let third = app.login(ADMIN_EMAIL, NEW_PASSWORD).await;
    assert_eq!(
        app.get_as("/v1/auth/me", &s(&third, "accessToken"))
            .await
            .status(),
        200
    );

    // Every session from before the reset is over: access and refresh tokens alike.
    for pair in [&first, &second] {
        let me = app.get_as("/v1/auth/me", &s(pair, "accessToken")).await;
        assert_envelope(me, 401, "UNAUTHORIZED").await;
        let refreshed = app
            .post_json(
                "/v1/auth/refresh",
                &json!({"refreshToken": s(pair, "refreshToken")}),
            )
            .await;
        assert_envelope(refreshed, 401, "UNAUTHORIZED").await;
    }

    let audit = app.query(
        "SELECT action, actor_user_id, target_id, details FROM audit_log
         WHERE action LIKE 'auth.password_reset%' ORDER BY seq",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    );
    let user_id = s(&first["user"], "id");
    let actions: Vec<&str> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        ["auth.password_reset_requested", "auth.password_reset"]
    );
    assert!(audit.iter().all(|a| a.2 == user_id));
    assert_eq!(audit[0].1, None, "the requester is anonymous");
    assert_eq!(audit[1].1.as_deref(), Some(user_id.as_str()));
    let details: Value = serde_json::from_str(&audit[1].3).unwrap();
    assert_eq!(details["revokedSessions"], 2);
    assert!(audit.iter().all(|a| !a.3.contains(&token)));
    assert_eq!(
        app.query(
            "SELECT count(*) FROM outbox_events WHERE type = 'user.password_changed'",
            |r| r.get::<_, i64>(0)
        ),
        vec![1]
    );
}

#[tokio::test]
async fn expired_and_made_up_tokens_are_refused() {
    let sink = SmtpSink::start().await;
    let app = spawn_with_mail(&sink).await;
    app.setup_admin().await;
    forgot(&app, ADMIN_EMAIL).await;
    let (_, token) = reset_link(&body(&sink.wait_for_messages(1).await[0]));

    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE password_reset_tokens SET expires_at = '2000-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    let error = assert_envelope(reset(&app, &token, NEW_PASSWORD).await, 401, "UNAUTHORIZED").await;
    assert!(
        error["message"].as_str().unwrap().contains("expired"),
        "{error}"
    );
    assert_envelope(
        reset(&app, "not-a-token-at-all", NEW_PASSWORD).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(reset(&app, "", NEW_PASSWORD).await, 401, "UNAUTHORIZED").await;
    // Nothing changed.
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer_and_no_mail() {
    let sink = SmtpSink::start().await;
    let app = spawn_with_mail(&sink).await;
    app.setup_admin().await;

    forgot(&app, "nobody@example.com").await;
    // A real request after it: once its mail is in, an earlier one would be too.
    forgot(&app, ADMIN_EMAIL).await;
    sink.wait_for_messages(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(header(&mails[0], "X-RcptTo"), Some(ADMIN_EMAIL));
    assert_eq!(
        app.query("SELECT count(*) FROM password_reset_tokens", |r| r
            .get::<_, i64>(0)),
        vec![1]
    );
    assert_eq!(
        app.query(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.password_reset_requested'",
            |r| r.get::<_, i64>(0)
        ),
        vec![1]
    );
}

#[tokio::test]
async fn without_mail_forgot_password_creates_nothing_but_is_audited() {
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    forgot(&app, ADMIN_EMAIL).await;
    eventually_count(
        &app,
        "SELECT count(*) FROM audit_log WHERE action = 'auth.password_reset_requested'
           AND json_extract(details, '$.delivery') = 'none_mail_off'",
        1,
    )
    .await;
    assert_eq!(
        app.query("SELECT count(*) FROM password_reset_tokens", |r| r
            .get::<_, i64>(0)),
        vec![0]
    );
}

/// Runs the real `sealbox` binary with a clean environment plus `env`.
pub(crate) async fn sealbox(
    home: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealbox"));
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_reset_password_prints_a_single_use_link_that_works() {
    let app = TestApp::spawn().await;
    app.setup_admin().await;
    let home = TempDir::new().unwrap();
    let data_dir = app.data_dir.to_str().unwrap().to_owned();
    let env = [("SEALBOX_SERVER__PUBLIC_URL", "https://box.example/")];

    let output = sealbox(
        home.path(),
        &env,
        &[
            "admin",
            "reset-password",
            "--email",
            ADMIN_EMAIL,
            "--data-dir",
            &data_dir,
        ],
    )
    .await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (link, token) = reset_link(&stdout);
    assert_eq!(stdout.trim(), link, "stdout is the link alone");
    assert!(
        link.starts_with("https://box.example/reset-password?token="),
        "{link}"
    );
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), 204);
    assert_envelope(reset(&app, &token, NEW_PASSWORD).await, 401, "UNAUTHORIZED").await;
    app.login(ADMIN_EMAIL, NEW_PASSWORD).await;
    assert_eq!(
        app.query(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.password_reset_link_issued'",
            |r| r.get::<_, i64>(0)
        ),
        vec![1]
    );

    let output = sealbox(
        home.path(),
        &env,
        &[
            "admin",
            "reset-password",
            "--email",
            "nobody@example.com",
            "--data-dir",
            &data_dir,
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("no account has the email address nobody@example.com"),
        "{stderr}"
    );
}
