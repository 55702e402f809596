//! The binary that ships resolves host names for its two outbound clients: a webhook to
//! `http://localhost:PORT` and mail to an SMTP server named `localhost`, both names taken
//! from /etc/hosts, not addresses. With `SBX_STATIC_BIN` set (`.ci/run` sets it to what
//! `scripts/build-static` built), that binary runs, and must be statically linked: glibc
//! linked statically resolves through its built-in `files` and `dns` sources. Without it
//! the test build of `sealbox` runs the same checks.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::password_reset::{SmtpSink, body};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, SEALBOX_BIN, Server, json_of, s};
use crate::webhooks_delivery::Receiver;

fn binary() -> PathBuf {
    match std::env::var_os("SBX_STATIC_BIN") {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            let file = Command::new("file").arg(&bin).output().unwrap();
            let described = String::from_utf8_lossy(&file.stdout);
            assert!(
                described.contains("statically linked") || described.contains("static-pie linked"),
                "SBX_STATIC_BIN is not a static executable: {described}"
            );
            bin
        }
        None => PathBuf::from(SEALBOX_BIN),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_mail_reach_localhost_by_name() {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().skip(1).any(|name| name == "localhost")),
        "/etc/hosts names no localhost: {hosts}"
    );
    let receiver = Receiver::start(None);
    let receiver_port = receiver.url("").rsplit(':').next().unwrap().to_owned();
    let sink = SmtpSink::start().await;
    let home = tempfile::tempdir().unwrap();
    let data = toml::Value::from(home.path().join("data").to_str().unwrap());
    // localhost may name ::1 as well as 127.0.0.1: the SSRF policy must allow both, as it
    // refuses a name when any of its addresses is forbidden.
    std::fs::write(
        home.path().join("sealbox.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = {data}\n\
             [tls]\nmode = \"off\"\n\
             [smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"none\"\n\
             from = \"Sealbox <sealbox@example.test>\"\n\
             [webhooks]\nallowed_networks = [\"127.0.0.0/8\", \"::1/128\"]\n\
             [log]\nlevel = \"warn\"\n",
            sink.port
        ),
    )
    .unwrap();
    let bin = binary();
    let server = Server::start_binary(home.path(), true, &bin);
    let client = reqwest::Client::new();
    let pair = json_of(
        client
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
            .unwrap(),
        201,
    )
    .await;
    let token = s(&pair, "accessToken");

    let hook = json_of(
        client
            .post(format!("{}/v1/webhooks", server.base))
            .bearer_auth(&token)
            .json(
                &json!({"url": format!("http://localhost:{receiver_port}/ok/by-name"),
                          "events": ["api_key.created"]}),
            )
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let created = client
        .post(format!("{}/v1/api-keys", server.base))
        .bearer_auth(&token)
        .json(&json!({"name": "named"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let got = receiver.wait_for("by-name", 1).await;
    assert_eq!(got[0]["answered"], 200, "{got:#?}");
    // And the attempt is recorded as the success it was.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let deliveries = json_of(
            client
                .get(format!(
                    "{}/v1/webhooks/{}/deliveries",
                    server.base,
                    s(&hook, "id")
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        if deliveries[0]["status"] == "succeeded" {
            assert_eq!(deliveries[0]["responseStatusCode"], 200, "{deliveries:#}");
            break;
        }
        assert!(Instant::now() < deadline, "{deliveries:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let forgot = client
        .post(format!("{}/v1/auth/forgot-password", server.base))
        .json(&json!({"email": ADMIN_EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status(), 202);
    let mail = sink.wait_for_messages(1).await;
    let text = body(&mail[0]);
    assert!(text.contains("/reset-password?token="), "{text}");
    eprintln!(
        "{} resolved localhost for a webhook and for SMTP",
        bin.display()
    );
}
