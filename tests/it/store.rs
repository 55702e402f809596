//! The database and master key on disk: first start, restart, refusal of a newer schema,
//! clean close at shutdown, acknowledged writes surviving a SIGKILL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealbox::app::AppError;
use sealbox::store::{LATEST_SCHEMA_VERSION, StoreError};
use serde_json::{Value, json};

use crate::support::{Server, TestApp, initialized_data_dir, s};

fn user_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn first_start_creates_data_dir_key_and_migrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/data");
    let app = TestApp::spawn_in(&root, |_| {}).await.unwrap();
    let mode = |p: &std::path::Path| sealbox::data_dir::mode_of(p).unwrap();
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("master.key")), 0o600);
    assert_eq!(
        std::fs::metadata(root.join("master.key")).unwrap().len(),
        32
    );
    for sub in ["blobs", "uploads", "tls"] {
        assert!(root.join(sub).is_dir(), "{sub}");
    }
    app.shutdown().await.unwrap();
    assert_eq!(
        user_version(&root.join("sealbox.db")),
        LATEST_SCHEMA_VERSION
    );
}

#[tokio::test]
async fn restart_keeps_identity_key_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    let first: serde_json::Value = app.get("/v1/welcome").await.json().await.unwrap();
    let key = std::fs::read(dir.path().join("master.key")).unwrap();
    app.shutdown().await.unwrap();

    let app = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    let second: serde_json::Value = app.get("/v1/welcome").await.json().await.unwrap();
    assert_eq!(first["instanceId"], second["instanceId"]);
    assert_eq!(key, std::fs::read(dir.path().join("master.key")).unwrap());
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused() {
    let dir = initialized_data_dir().await;
    let db = dir.path().join("sealbox.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", LATEST_SCHEMA_VERSION + 1)
        .unwrap();

    let err = TestApp::spawn_in(dir.path(), |_| {})
        .await
        .err()
        .expect("refused");
    match &err {
        AppError::Store(StoreError::NewerSchema {
            found, supported, ..
        }) => {
            assert_eq!(*found, LATEST_SCHEMA_VERSION + 1);
            assert_eq!(*supported, LATEST_SCHEMA_VERSION);
        }
        other => panic!("unexpected error: {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("newer"), "{message}");
    assert!(message.contains("restore a backup"), "{message}");
    assert_eq!(
        user_version(&db),
        LATEST_SCHEMA_VERSION + 1,
        "the database was not touched"
    );
}

#[tokio::test]
async fn a_missing_master_key_beside_an_existing_database_is_refused() {
    let dir = initialized_data_dir().await;
    std::fs::remove_file(dir.path().join("master.key")).unwrap();

    let err = TestApp::spawn_in(dir.path(), |_| {})
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, AppError::MasterKey { .. }), "{err}");
    assert!(err.to_string().contains("restore master.key"), "{err}");
    assert!(
        !dir.path().join("master.key").exists(),
        "no replacement key was generated"
    );
}

#[tokio::test]
async fn a_truncated_master_key_is_refused() {
    let dir = initialized_data_dir().await;
    std::fs::write(dir.path().join("master.key"), [1u8; 16]).unwrap();
    let err = TestApp::spawn_in(dir.path(), |_| {})
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("exactly 32 bytes"), "{err}");
}

#[tokio::test]
async fn a_configured_master_key_file_is_used_and_never_generated() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("external.key");
    let data = dir.path().join("data");

    let err = TestApp::spawn_in(&data, |c| c.storage.master_key_file = key_path.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not generated"), "{err}");

    std::fs::write(&key_path, [7u8; 32]).unwrap();
    let app = TestApp::spawn_in(&data, |c| c.storage.master_key_file = key_path.clone())
        .await
        .unwrap();
    assert!(!data.join("master.key").exists());
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_then_closes_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    let addr = app.addr;
    assert_eq!(app.get("/health").await.status(), 200);

    // A request whose body is still arriving when shutdown begins.
    let slow_body = futures_util::stream::unfold(0u8, |sent| async move {
        match sent {
            0 => Some((Ok::<_, std::io::Error>(vec![b' '; 16]), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(400)).await;
                Some((Ok(vec![b' '; 16]), 2))
            }
            _ => None,
        }
    });
    let in_flight = tokio::spawn(
        app.client
            .post(app.url("/v1/welcome"))
            .body(reqwest::Body::wrap_stream(slow_body))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let stopping = tokio::spawn(app.shutdown());
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(response.status(), 405, "it ran to completion");
    stopping.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown did not wait for its timeout"
    );

    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    let wal_len = std::fs::metadata(dir.path().join("sealbox.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(
        wal_len, 0,
        "the WAL was checkpointed into the database file"
    );
    assert_eq!(
        user_version(&dir.path().join("sealbox.db")),
        LATEST_SCHEMA_VERSION
    );
}

/// Group commit does not weaken durability: every KV PUT the real server acknowledged
/// before a SIGKILL (many writers at once, so commits are shared) is there after a
/// restart, with the value it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_a_sigkill() {
    const SECRET: &str = "durable-secret-phrase";
    const WRITERS: usize = 32;
    let home = tempfile::TempDir::new().unwrap();
    let mut server = Server::start(home.path(), true);
    let client = reqwest::Client::new();
    let token = server.setup_owner(&client, SECRET).await;
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (client, base, token) = (client.clone(), server.base.clone(), token.clone());
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{writer}-{i}");
                let value = B64.encode(format!("the value of {name}"));
                let Ok(response) = client
                    .put(format!("{base}/v1/kv/{name}"))
                    .bearer_auth(&token)
                    .json(&json!({"valueB64": value}))
                    .send()
                    .await
                else {
                    // The server is gone: what it answered before is what counts.
                    break;
                };
                if response.status() != 201 {
                    break;
                }
                acknowledged.lock().unwrap().push((name, value));
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Killed in the middle of the flood: PUTs are in flight, batches half-run.
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        acknowledged.len() >= 300,
        "only {} PUTs were acknowledged",
        acknowledged.len()
    );

    let server = Server::start(home.path(), false);
    let pair: Value = client
        .post(format!("{}/v1/auth/login", server.base))
        .json(&json!({"email": "ada@example.com", "password": "violet-anchor-thirty"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = s(&pair, "accessToken");
    for (name, value) in &acknowledged {
        let response = client
            .get(format!("{}/v1/kv/{name}", server.base))
            .bearer_auth(&token)
            .header("X-User-Secret", SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "acknowledged {name} is gone");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["valueB64"], value.as_str(), "{name}");
    }
}
