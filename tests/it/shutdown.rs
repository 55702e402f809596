//! Graceful shutdown of the real `sealbox serve`: a SIGTERM while a large tus upload
//! streams in, and while webhook sends are in flight. The process must exit 0 within
//! `server.shutdown_timeout_secs`; the upload resumes after the restart from a durable
//! offset that includes the bytes that arrived during the shutdown; a webhook send that
//! finishes within the timeout is recorded, one that does not is sent again after the
//! restart with the same `webhook-id`, never lost.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::Client;
use rustix::process::{Pid, Signal, kill_process};
use sealbox::crypto::sbx1::{HEADER_LEN, TAG_LEN};
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, SEALBOX_BIN, Server, json_of, s};
use crate::uploads_resume::{
    MIB, SEGMENT, create_tus, finalize_and_link, owner_on, patch, payload, sealed_len,
    upload_offset,
};
use crate::webhooks_delivery::Receiver;

/// How far past `server.shutdown_timeout_secs` the process may take to exit: start-up of
/// the exit path, closing the database, a loaded test machine.
const EXIT_SLACK: Duration = Duration::from_millis(1500);

/// Writes `<home>/sealbox.toml` for [`Server::start`], with `extra` appended.
fn write_config(home: &Path, shutdown_secs: u64, extra: &str) {
    let data = toml::Value::from(home.join("data").to_str().unwrap());
    std::fs::write(
        home.join("sealbox.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout_secs = {shutdown_secs}\n\
             [storage]\ndata_dir = {data}\n\
             [tls]\nmode = \"off\"\n\
             [log]\nlevel = \"info\"\n{extra}"
        ),
    )
    .unwrap();
}

fn sigterm(child: &Child) {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
}

/// Waits for the process to exit, at most `limit`; its status and how long it took.
async fn exit_within(child: &mut Child, limit: Duration) -> (ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "sealbox still running {limit:?} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_large_upload_exits_in_time_and_the_upload_resumes_from_a_durable_offset()
{
    const SHUTDOWN_SECS: u64 = 3;
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), SHUTDOWN_SECS, "");
    let client = Client::new();
    let mut server = Server::start(home.path(), true);
    let token = owner_on(
        &client,
        &server.base,
        server.setup_token.as_deref().unwrap(),
    )
    .await;
    // Far below the 64 MiB checkpoint: without the shutdown path, nothing of this PATCH
    // would be recorded as durable.
    let bytes = payload(32 * MIB as usize);
    let length = bytes.len() as u64;
    let (location, file_id) = create_tus(&client, &server.base, &token, length).await;
    let path = location.strip_prefix(&server.base).unwrap().to_owned();

    // One PATCH from offset 0, fed a chunk at a time and never finished.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let streaming =
        tokio::spawn(patch(&client, &location, 0, reqwest::Body::wrap_stream(body)).send());
    let part = home.path().join(format!("data/uploads/{file_id}.part"));
    let staged = || std::fs::metadata(&part).map_or(0, |m| m.len());
    const CHUNK: u64 = 64 * 1024;
    let mut sent = 0u64;
    // Never the last megabyte: the request must still be running at the timeout. Once
    // the server has answered or gone, the client stops sending (the channel closes).
    let feed = async |sent: &mut u64| {
        if *sent + CHUNK <= length - MIB {
            let chunk = &bytes[*sent as usize..(*sent + CHUNK) as usize];
            if tx.send(Bytes::copy_from_slice(chunk)).await.is_ok() {
                *sent += CHUNK;
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while staged() < sealed_len(4 * MIB) {
        assert!(
            Instant::now() < deadline,
            "the bytes never reached the disk"
        );
        feed(&mut sent).await;
    }

    sigterm(&server.child);
    let staged_at_sigterm = staged();
    let segments_at_sigterm = (staged_at_sigterm - HEADER_LEN as u64) / (SEGMENT + TAG_LEN as u64);
    // The client goes on sending, slowly (about 3 MiB/s), while the server shuts down.
    let limit = Duration::from_secs(SHUTDOWN_SECS) + EXIT_SLACK;
    let started = Instant::now();
    let (status, took) = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break (status, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "sealbox still running {limit:?} after SIGTERM"
        );
        feed(&mut sent).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    drop(tx);
    // Whatever the client got (an answer or a broken connection), it got it.
    let _ = tokio::time::timeout(Duration::from_secs(10), streaming)
        .await
        .expect("the cut request ends");
    let log = std::fs::read_to_string(home.path().join("serve.log")).unwrap();
    assert!(log.contains("cutting off request bodies"), "{log}");

    // Restarted on the same data directory, the upload stands at a whole segment that
    // includes what arrived after the SIGTERM, and no further than what was sent.
    let server = Server::start(home.path(), false);
    let location = format!("{}{path}", server.base);
    let head = client
        .head(&location)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let resume_at = upload_offset(&head);
    eprintln!(
        "SIGTERM with {segments_at_sigterm} segments staged; exit 0 after {took:?}; \
         {sent} bytes sent; after the restart HEAD says {resume_at}"
    );
    assert!(
        resume_at.is_multiple_of(SEGMENT)
            && resume_at > segments_at_sigterm * SEGMENT
            && resume_at <= sent,
        "resume at {resume_at}: {segments_at_sigterm} segments at SIGTERM, {sent} sent"
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

    let doctor = Command::new(SEALBOX_BIN)
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
async fn webhook_sends_in_flight_at_sigterm_finish_or_are_sent_again_after_the_restart() {
    const SHUTDOWN_SECS: u64 = 2;
    let receiver = Receiver::start(None);
    let home = tempfile::tempdir().unwrap();
    // A send may take 6 s, so its lease lasts 12 s: the one dropped at the shutdown
    // timeout is due again 12 s after it was leased.
    write_config(
        home.path(),
        SHUTDOWN_SECS,
        "[webhooks]\nallowed_networks = [\"127.0.0.0/8\"]\ntimeout_secs = 6\n",
    );
    let client = Client::new();
    let mut server = Server::start(home.path(), true);
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
    let hook = async |path: &str| {
        s(
            &json_of(
                client
                    .post(format!("{}/v1/webhooks", server.base))
                    .bearer_auth(&token)
                    .json(&json!({"url": receiver.url(path), "events": ["api_key.created"]}))
                    .send()
                    .await
                    .unwrap(),
                201,
            )
            .await,
            "id",
        )
    };
    // Answers within the shutdown timeout, and after it.
    let quick = hook("/slow/600/quick").await;
    let slow = hook("/slow/5000/slow").await;
    let created = client
        .post(format!("{}/v1/api-keys", server.base))
        .bearer_auth(&token)
        .json(&json!({"name": "in-flight"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Both sends start within the worker's 25 ms poll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sigterm_at = unix_now();
    sigterm(&server.child);
    let (status, took) = exit_within(
        &mut server.child,
        Duration::from_secs(SHUTDOWN_SECS) + EXIT_SLACK,
    )
    .await;
    assert!(status.success(), "exit after SIGTERM: {status}");

    // The quick send was in flight at the SIGTERM and answered during the shutdown.
    let got = receiver.wait_for("quick", 1).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let answered_at = got[0]["receivedAt"].as_f64().unwrap();
    assert!(answered_at > sigterm_at, "{got:#?}");

    let server = Server::start(home.path(), false);
    let deliveries = async |hook: &str| {
        json_of(
            client
                .get(format!("{}/v1/webhooks/{hook}/deliveries", server.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
        .as_array()
        .cloned()
        .unwrap()
    };
    // Recorded before the process exited: succeeded at its first attempt.
    let recorded = deliveries(&quick).await;
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["status"], "succeeded", "{recorded:#?}");
    assert_eq!(recorded[0]["attempts"], 1, "{recorded:#?}");

    // The slow send was dropped at the timeout; once its lease runs out it is sent again
    // with the same webhook-id, and succeeds.
    let deadline = Instant::now() + Duration::from_secs(40);
    let finished: Vec<Value> = loop {
        let list = deliveries(&slow).await;
        if list.len() == 1 && list[0]["status"] == "succeeded" {
            break list;
        }
        assert!(Instant::now() < deadline, "{list:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let attempts = receiver.received("slow").await;
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(
        attempts[0]["headers"]["webhook-id"], attempts[1]["headers"]["webhook-id"],
        "{attempts:#?}"
    );
    assert_eq!(
        attempts[0]["headers"]["webhook-id"], finished[0]["messageId"],
        "{attempts:#?}"
    );
    // And the quick one was not sent twice.
    assert_eq!(receiver.received("quick").await.len(), 1);
    eprintln!("SIGTERM with two webhook sends in flight: exit 0 after {took:?}");
}
