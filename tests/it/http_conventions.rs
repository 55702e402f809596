//! SPEC §3 on every route: request ids, version header, the error envelope for every error
//! class, body limits, health, readiness and welcome.

use futures_util::stream;
use sealbox::http::middleware::{API_VERSION, API_VERSION_HEADER};

use crate::support::{TestApp, assert_envelope};

#[tokio::test]
async fn health_answers_ok_once_the_database_answers() {
    let app = TestApp::spawn().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[API_VERSION_HEADER], API_VERSION);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn health_is_503_in_the_envelope_when_the_database_does_not_answer() {
    let app = TestApp::spawn_with(|c| c.database.max_connections = 2).await;
    // Every connection is taken by a statement that does not finish (a runaway query, a
    // stuck disk): the health check cannot get an answer within its timeout.
    let release = std::sync::Arc::new(std::sync::Barrier::new(3));
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let (store, release) = (app.store.clone(), release.clone());
            tokio::spawn(async move {
                store
                    .call(move |_conn| {
                        release.wait();
                        Ok(())
                    })
                    .await
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let error = assert_envelope(app.get("/health").await, 503, "UNAVAILABLE").await;
    assert_eq!(error["message"], "the database is not answering");
    assert!(started.elapsed() >= sealbox::service::system::HEALTH_DB_TIMEOUT);

    tokio::task::spawn_blocking(move || release.wait())
        .await
        .unwrap();
    for task in stuck {
        task.await.unwrap().unwrap();
    }
    assert_eq!(app.get("/health").await.status(), 200, "healthy again");
}

#[tokio::test]
async fn ready_is_503_while_the_data_directory_refuses_writes_and_health_stays_ok() {
    let app = TestApp::spawn().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    // The directory that takes uploads disappears (an unmounted or replaced volume):
    // the server is alive but cannot take bytes.
    let uploads = sealbox::data_dir::DataDir::new(&app.data_dir).uploads();
    let moved = app.data_dir.join("uploads-away");
    std::fs::rename(&uploads, &moved).unwrap();
    // One probe answers for a second (the route needs no credentials, so calls share it).
    tokio::time::sleep(sealbox::service::system::READY_PROBE_REUSE).await;
    let error = assert_envelope(app.get("/ready").await, 503, "UNAVAILABLE").await;
    assert_eq!(
        error["message"],
        "the data directory does not accept writes"
    );
    assert_eq!(app.get("/health").await.status(), 200, "still alive");

    std::fs::rename(&moved, &uploads).unwrap();
    tokio::time::sleep(sealbox::service::system::READY_PROBE_REUSE).await;
    assert_eq!(app.get("/ready").await.status(), 200, "ready again");
    // The probes leave nothing behind.
    for dir in [
        uploads,
        sealbox::data_dir::DataDir::new(&app.data_dir)
            .blobs()
            .join(sealbox::blob::local::TMP_DIR),
    ] {
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(".ready-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "probe files left in {}",
            dir.display()
        );
    }
}

#[tokio::test]
async fn welcome_describes_the_server() {
    let app = TestApp::spawn().await;
    let body: serde_json::Value = app.get("/v1/welcome").await.json().await.unwrap();
    assert_eq!(body["name"], "sealbox");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["apiVersion"], API_VERSION);
    assert_eq!(body["docsUrl"], "/docs");
    assert_eq!(body["openapiUrl"], "/v1/openapi.json");
    assert_eq!(body["instanceId"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_envelope() {
    let app = TestApp::spawn().await;
    for path in [
        "/nope",
        "/v1/nope",
        "/v1/",
        "/assets/missing.js",
        "/docs/../etc/passwd",
    ] {
        let error = assert_envelope(app.get(path).await, 404, "NOT_FOUND").await;
        assert_eq!(error["message"], "no such route", "{path}");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_in_the_envelope() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (reqwest::Method::POST, "/health"),
        (reqwest::Method::DELETE, "/v1/welcome"),
        (reqwest::Method::PUT, "/"),
        (reqwest::Method::POST, "/v1/openapi.json"),
        (reqwest::Method::PATCH, "/assets/app.css"),
        (reqwest::Method::POST, "/docs"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], "GET, HEAD", "{method} {path}");
        assert_envelope(response, 405, "METHOD_NOT_ALLOWED").await;
    }
    // HEAD is indeed answered wherever Allow says so.
    for path in [
        "/health",
        "/v1/welcome",
        "/",
        "/v1/openapi.json",
        "/assets/app.css",
        "/docs",
    ] {
        let response = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "HEAD {path}");
    }
}

#[tokio::test]
async fn a_sane_inbound_request_id_is_echoed_and_anything_else_replaced() {
    let app = TestApp::spawn().await;
    let echoed = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-abc_123.4:5")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc_123.4:5");

    for bad in ["", "has space", &"x".repeat(129), "semi;colon", "quote\"d"] {
        let response = app
            .client
            .get(app.url("/nope"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "generated id {id}");
        let error = assert_envelope(response, 404, "NOT_FOUND").await;
        assert_eq!(error["requestId"], id.as_str());
    }
}

#[tokio::test]
async fn every_response_carries_the_common_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/health",
        "/v1/welcome",
        "/v1/openapi.json",
        "/docs",
        "/",
        "/nope",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers[API_VERSION_HEADER], API_VERSION, "{path}");
        assert!(headers.contains_key("x-request-id"), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("content-security-policy"), "{path}");
    }
}

#[tokio::test]
async fn declared_bodies_over_the_limit_are_413() {
    let app = TestApp::spawn_with(|c| c.limits.json_body_bytes = 1024).await;
    let response = app
        .client
        .post(app.url("/v1/welcome"))
        .header("content-type", "application/json")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    let error = assert_envelope(response, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(error["message"].as_str().unwrap().contains("1024"));
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_are_413() {
    let app = TestApp::spawn_with(|c| c.limits.json_body_bytes = 1024).await;
    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512]));
    let response = app
        .client
        .post(app.url("/v1/welcome"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn bodies_within_the_limit_reach_routing() {
    let app = TestApp::spawn_with(|c| c.limits.json_body_bytes = 1024).await;
    let chunks = (0..2).map(|_| Ok::<_, std::io::Error>(vec![b' '; 256]));
    let response = app
        .client
        .post(app.url("/v1/welcome"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED").await;
}
