//! Issue 15, crypto bindings and leaks: a KV row edited in the database to carry another
//! key's name (or a file row another content type) is refused (400), never served under
//! the wrong name, while values sealed before the binding still open; what the server
//! stores under the master key and the password gate open exactly as docs/crypto.md says;
//! webhook URLs reach audit entries and events only as their origin; the request log
//! masks KV names and other secrets in paths; log files carry no ANSI colour codes.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, TestApp, assert_envelope, json_of, s};

const SECRET: &str = "owner-secret-phrase";

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(secret) = secret {
        request = request.header("X-User-Secret", secret);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// The admin's token, after generating their key pair.
async fn vault_owner(app: &TestApp) -> String {
    let pair = app.setup_admin().await;
    let token = s(&pair, "accessToken");
    json_of(
        call(
            app,
            Method::POST,
            "/v1/keys/generate",
            &token,
            Some(SECRET),
            None,
        )
        .await,
        201,
    )
    .await;
    token
}

async fn put(app: &TestApp, token: &str, name: &str, value: &str, secret: Option<&str>) {
    let response = call(
        app,
        Method::PUT,
        &format!("/v1/kv/{name}"),
        token,
        secret,
        Some(json!({"valueB64": B64.encode(value)})),
    )
    .await;
    assert!(
        response.status() == 201 || response.status() == 200,
        "PUT {name}: {}",
        response.status()
    );
}

async fn get(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    call(
        app,
        Method::GET,
        &format!("/v1/kv/{name}"),
        token,
        Some(SECRET),
        None,
    )
    .await
}

async fn value_of(app: &TestApp, token: &str, name: &str) -> String {
    let body = json_of(get(app, token, name).await, 200).await;
    String::from_utf8(B64.decode(s(&body, "valueB64")).unwrap()).unwrap()
}

fn db(app: &TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// Every KV row as (id, name, version, sealed value), by id.
fn kv_rows(app: &TestApp) -> Vec<(String, String, i64, Vec<u8>)> {
    app.query(
        "SELECT id, name, version, sealed_value FROM kv_entries ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// Swaps the names of two KV rows, as someone with write access to the database file can.
fn swap_names(app: &TestApp, a: &str, b: &str) {
    let conn = db(app);
    conn.execute_batch(&format!(
        "BEGIN;
         UPDATE kv_entries SET name = '~swap' WHERE name = '{a}';
         UPDATE kv_entries SET name = '{a}' WHERE name = '{b}';
         UPDATE kv_entries SET name = '{b}' WHERE name = '~swap';
         COMMIT;"
    ))
    .unwrap();
}

#[tokio::test]
async fn kv_rows_whose_names_were_swapped_in_the_database_are_refused() {
    let app = TestApp::spawn().await;
    let token = vault_owner(&app).await;
    put(&app, &token, "db-password", "alpha-value-1", None).await;
    put(&app, &token, "api-token", "bravo-value-2", None).await;
    assert_eq!(value_of(&app, &token, "db-password").await, "alpha-value-1");
    let before = kv_rows(&app);
    // New values are in format 2, which binds organization, owner and name.
    assert!(before.iter().all(|(.., sealed)| sealed[0] == 2));

    swap_names(&app, "db-password", "api-token");
    for name in ["db-password", "api-token"] {
        let response = get(&app, &token, name).await;
        let text = format!("{:?}", response.headers());
        let error = assert_envelope(response, 400, "BAD_REQUEST").await;
        assert!(
            error["message"].as_str().unwrap().contains("tampered"),
            "{error}"
        );
        for value in ["alpha-value-1", "bravo-value-2"] {
            assert!(!error.to_string().contains(value), "{error}");
            assert!(!error.to_string().contains(&B64.encode(value)), "{error}");
            assert!(!text.contains(&B64.encode(value)));
        }
    }
    // Refusing changed nothing: the rows are as the swap left them.
    let swapped = kv_rows(&app);
    assert_eq!(swapped.len(), 2);
    for ((id, name, version, sealed), (id0, name0, version0, sealed0)) in
        swapped.iter().zip(&before)
    {
        assert_eq!((id, version, sealed), (id0, version0, sealed0));
        assert_ne!(name, name0);
    }

    // Put back, each opens under its own name again.
    swap_names(&app, "db-password", "api-token");
    assert_eq!(value_of(&app, &token, "db-password").await, "alpha-value-1");
    assert_eq!(value_of(&app, &token, "api-token").await, "bravo-value-2");
    assert_eq!(kv_rows(&app), before);
}

#[tokio::test]
async fn a_kv_row_moved_to_another_organization_of_its_owner_is_refused() {
    let app = TestApp::spawn().await;
    let token = vault_owner(&app).await;
    put(&app, &token, "db-password", "alpha-value-1", None).await;
    let other = json_of(
        call(
            &app,
            Method::POST,
            "/v1/organizations",
            &token,
            None,
            Some(json!({"name": "Other"})),
        )
        .await,
        201,
    )
    .await;
    let other_org = s(&other, "id");
    db(&app)
        .execute("UPDATE kv_entries SET org_id = ?1", [&other_org])
        .unwrap();
    let response = app
        .client
        .get(app.url("/v1/kv/db-password"))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .header("X-Organization-Id", &other_org)
        .send()
        .await
        .unwrap();
    let error = assert_envelope(response, 400, "BAD_REQUEST").await;
    assert!(!error.to_string().contains(&B64.encode("alpha-value-1")));
}

/// A value written before the binding existed (format 1: bound to the secret's id and
/// version only) still opens; the next write seals it in format 2.
#[tokio::test]
async fn kv_values_sealed_before_the_binding_still_open() {
    use sealbox::crypto::{
        Argon2Params, Envelope, EnvelopeContext, SealedSeed, UserKeyPair, ValueContext, derive_kek,
        open_dek, open_seed, seal_value,
    };

    let app = TestApp::spawn().await;
    let token = vault_owner(&app).await;
    put(&app, &token, "legacy", "written-by-0.x", None).await;

    // Reseal the stored value the way the previous release did, from the owner's secret.
    let (user_id, sealed_seed, salt, params): (String, Vec<u8>, Vec<u8>, String) = app.query(
        "SELECT user_id, sealed_seed, kek_salt, kek_params FROM user_keys",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )[0]
    .clone();
    let user_id: sealbox::ids::UserId = user_id.parse().unwrap();
    let params: Argon2Params = serde_json::from_str(&params).unwrap();
    let kek = derive_kek(SECRET.as_bytes(), &salt.try_into().unwrap(), &params).unwrap();
    let seed = open_seed(&kek, user_id, &SealedSeed::from_bytes(sealed_seed)).unwrap();
    let pair = UserKeyPair::from_seed(seed);
    let (id, version, envelope): (String, i64, Vec<u8>) = app
        .query("SELECT id, version, owner_envelope FROM kv_entries", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })[0]
        .clone();
    let object_id: uuid::Uuid = id.parse().unwrap();
    let dek = open_dek(
        &pair,
        &EnvelopeContext {
            kind: "kv",
            object_id,
            recipient_id: user_id,
        },
        &Envelope::from_bytes(envelope),
    )
    .unwrap();
    let legacy = seal_value(
        &dek,
        &ValueContext {
            kind: "kv-value",
            object_id,
            version: version as u64,
        },
        b"written-by-0.x",
    );
    assert_eq!(legacy.as_bytes()[0], 1);
    db(&app)
        .execute(
            "UPDATE kv_entries SET sealed_value = ?1",
            [legacy.as_bytes()],
        )
        .unwrap();

    assert_eq!(value_of(&app, &token, "legacy").await, "written-by-0.x");
    put(&app, &token, "legacy", "rewritten", Some(SECRET)).await;
    assert_eq!(value_of(&app, &token, "legacy").await, "rewritten");
    let sealed: Vec<Vec<u8>> = app.query("SELECT sealed_value FROM kv_entries", |r| r.get(0));
    assert_eq!(sealed[0][0], 2, "a new version is sealed in format 2");
}

#[tokio::test]
async fn webhook_urls_reach_audit_entries_and_events_only_as_their_origin() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let token = s(&pair, "accessToken");
    let url = "https://hooks.example.com/in/tok_LEAKME123?signature=QUERYSECRET";
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/webhooks",
            &token,
            Some(&json!({"url": url, "events": ["file.*"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let id = s(&created, "id");
    // The owner still sees (and the worker still calls) the whole URL.
    assert_eq!(created["url"], url);
    let changed_url = "https://hooks.example.com:8443/other/tok_LEAKME456?key=pa55word";
    json_of(
        app.send_as(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &token,
            Some(&json!({"url": changed_url})),
            None,
        )
        .await,
        200,
    )
    .await;
    json_of(
        app.send_as(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            &token,
            None,
            None,
        )
        .await,
        204,
    )
    .await;

    let audit: Vec<(String, String)> = app.query(
        "SELECT action, details FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    let events: Vec<(String, String)> = app.query(
        "SELECT type, data FROM outbox_events WHERE type LIKE 'webhook.%' ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["webhook.created", "webhook.updated", "webhook.deleted"]
    );
    for (what, text) in audit.iter().chain(&events) {
        for secret in ["tok_LEAKME", "QUERYSECRET", "pa55word", "/in/", "/other/"] {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
    }
    let origins: Vec<Value> = audit
        .iter()
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap()["origin"].clone())
        .collect();
    assert_eq!(
        origins,
        [
            "https://hooks.example.com",
            "https://hooks.example.com:8443",
            "https://hooks.example.com:8443"
        ]
    );
    let created_event: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(events[0].0, "webhook.created");
    assert_eq!(created_event["origin"], "https://hooks.example.com");
    assert!(created_event.get("url").is_none());
}

/// A fresh `sealbox serve` logging every request at `info` in `format`, to a file.
fn logging_server(home: &Path, format: &str) -> Server {
    let data = toml::Value::from(home.join("data").to_str().unwrap());
    std::fs::write(
        home.join("sealbox.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\ndata_dir = {data}\n\
             [tls]\nmode = \"off\"\n\
             [log]\nlevel = \"info\"\nformat = \"{format}\"\n"
        ),
    )
    .unwrap();
    Server::start(home, true)
}

#[tokio::test]
async fn the_request_log_masks_kv_names_and_link_ids_and_has_no_colour_codes() {
    for format in ["text", "json"] {
        let home = tempfile::TempDir::new().unwrap();
        let mut server = logging_server(home.path(), format);
        let client = reqwest::Client::new();
        let token = server.setup_owner(&client, SECRET).await;
        let name = "acme-prod-stripe-live-key";
        let kv = format!("{}/v1/kv/{name}", server.base);
        let put = client
            .put(&kv)
            .bearer_auth(&token)
            .json(&json!({"valueB64": B64.encode("sk_live_x")}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201);
        let got = client
            .get(&kv)
            .bearer_auth(&token)
            .header("X-User-Secret", SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
        let shares = client
            .get(format!("{kv}/shares"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(shares.status(), 200);
        // A public transfer's id is its link's secret (there is no such transfer: 404).
        let link_id = "0192f0a0-0000-7000-8000-00000000beef";
        let public = client
            .get(format!("{}/v1/public/transfers/{link_id}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(public.status(), 404);
        server.kill();

        let log = std::fs::read(home.path().join("serve.log")).unwrap();
        let log = String::from_utf8(log).unwrap();
        assert!(
            !log.contains('\u{1b}'),
            "{format} log has ANSI codes:\n{log}"
        );
        assert!(
            !log.contains(name),
            "{format} log shows the KV name:\n{log}"
        );
        assert!(
            !log.contains(link_id),
            "{format} log shows the link:\n{log}"
        );
        assert!(log.contains("/v1/kv/[redacted]/shares"), "{format}:\n{log}");
        assert!(
            log.contains("/v1/public/transfers/[redacted]"),
            "{format}:\n{log}"
        );
        if format == "json" {
            for line in log.lines().filter(|l| l.contains("handled")) {
                serde_json::from_str::<Value>(line).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_file_whose_content_type_was_changed_in_the_database_is_refused() {
    let app = TestApp::spawn().await;
    let token = vault_owner(&app).await;
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/files",
            &token,
            Some(
                &json!({"fileName": "invoice.pdf", "contentB64": B64.encode(b"%PDF-1.7"),
                         "contentType": "application/pdf"}),
            ),
            None,
        )
        .await,
        201,
    )
    .await;
    let id = s(&created, "id");
    let read = |path: String| {
        app.client
            .get(app.url(&path))
            .bearer_auth(&token)
            .header("X-User-Secret", SECRET)
            .send()
    };
    let before = json_of(read(format!("/v1/files/{id}")).await.unwrap(), 200).await;
    assert_eq!(before["contentType"], "application/pdf");
    let sealed_before: Vec<Vec<u8>> = app.query("SELECT sealed_name FROM files", |r| r.get(0));
    assert_eq!(sealed_before[0][0], 2, "names are sealed in format 2");

    // Served as HTML, a PDF's bytes could become a page: the changed row must not open.
    db(&app)
        .execute("UPDATE files SET content_type = 'text/html'", [])
        .unwrap();
    let error = assert_envelope(
        read(format!("/v1/files/{id}")).await.unwrap(),
        400,
        "BAD_REQUEST",
    )
    .await;
    assert!(!error.to_string().contains("invoice"), "{error}");
    // A download link is issued, but following it refuses to stream under the changed type.
    let link = json_of(read(format!("/v1/files/{id}/download")).await.unwrap(), 200).await;
    let fetched = app.client.get(s(&link, "url")).send().await.unwrap();
    assert_envelope(fetched, 400, "BAD_REQUEST").await;
    let sealed_after: Vec<Vec<u8>> = app.query("SELECT sealed_name FROM files", |r| r.get(0));
    assert_eq!(sealed_after, sealed_before);

    db(&app)
        .execute("UPDATE files SET content_type = 'application/pdf'", [])
        .unwrap();
    let after = json_of(read(format!("/v1/files/{id}")).await.unwrap(), 200).await;
    assert_eq!(after["fileName"], "invoice.pdf");
}

/// Associated data of a master-key seal as docs/crypto.md gives it: the label, one NUL,
/// then the fields.
fn master_aad(label: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut aad = label.as_bytes().to_vec();
    aad.push(0);
    for field in fields {
        aad.extend_from_slice(field);
    }
    aad
}

fn uuid_bytes(text: &str) -> Vec<u8> {
    text.parse::<uuid::Uuid>().unwrap().as_bytes().to_vec()
}

/// What the server really stores opens with the associated data docs/crypto.md gives,
/// from the master key (and the password) alone: the document is not just self-consistent.
#[tokio::test]
async fn stored_master_seals_and_the_password_gate_open_as_documented() {
    use sealbox::crypto::{Argon2Params, Dek, MasterKey, SealedValue, ValueContext};

    let app = TestApp::spawn().await;
    let token = vault_owner(&app).await;
    let me = json_of(app.get_as("/v1/me", &token).await, 200).await;
    let user_id = s(&me["user"], "id");
    let master =
        MasterKey::from_file_bytes(&std::fs::read(app.data_dir.join("master.key")).unwrap())
            .unwrap();

    // A webhook, created with an Idempotency-Key so its response is stored too.
    let created = app
        .client
        .post(app.url("/v1/webhooks"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "doc-check-1")
        .json(&json!({"url": "https://hooks.example.com/in", "events": ["file.*"]}))
        .send()
        .await
        .unwrap();
    let created = json_of(created, 201).await;
    let (hook_id, secret) = (s(&created, "id"), s(&created, "secret"));
    let sealed: String = app.query("SELECT secret_sealed FROM webhooks", |r| {
        r.get::<_, String>(0)
    })[0]
        .clone();
    let aad = master_aad("sealbox/v1/webhook-secret", &[&uuid_bytes(&hook_id)]);
    assert_eq!(
        master.open(&aad, &sealed).unwrap().as_slice(),
        secret.as_bytes()
    );

    let (scope, key, response): (String, String, String) = app.query(
        "SELECT principal, key, response FROM idempotency_keys",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )[0]
    .clone();
    assert_eq!(scope, format!("user:{user_id}"));
    let aad = master_aad(
        "sealbox/v1/idempotent-response",
        &[scope.as_bytes(), b"\0", key.as_bytes()],
    );
    let stored: Value = serde_json::from_slice(&master.open(&aad, &response).unwrap()).unwrap();
    assert_eq!(stored["status"], 201);
    let body = B64.decode(stored["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["id"],
        hook_id
    );

    // A server-sealed upload's DEK while it runs.
    let presigned = json_of(
        app.send_as(
            Method::POST,
            "/v1/files/presign",
            &token,
            Some(
                &json!({"filename": "a.txt", "contentType": "text/plain", "size": 3,
                         "encryption": "server"}),
            ),
            None,
        )
        .await,
        201,
    )
    .await;
    let (file_id, sealed): (String, String) = app
        .query("SELECT id, master_sealed_dek FROM uploads", |r| {
            Ok((r.get(0)?, r.get(1)?))
        })[0]
        .clone();
    assert_eq!(file_id, s(&presigned, "fileId"));
    let aad = master_aad("sealbox/v1/upload-dek", &[&uuid_bytes(&file_id)]);
    assert_eq!(master.open(&aad, &sealed).unwrap().len(), 32);

    // A transfer with a message and a password: its DEK (kept while pending), its
    // message, and the gate that opens to the same DEK with the password.
    let transfer = json_of(
        app.send_as(
            Method::POST,
            "/v1/transfers",
            &token,
            Some(&json!({"name": "Docs", "message": "Signed copies \u{2713}",
                         "password": "correct horse battery"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let transfer_id = s(&transfer, "id");
    let (dek, message, salt, params, gate): (String, String, Vec<u8>, String, String) = app.query(
        "SELECT master_sealed_dek, sealed_message, password_salt, password_params,
                    password_sealed_key FROM transfers",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )[0]
    .clone();
    let id = uuid_bytes(&transfer_id);
    let dek = master
        .open(&master_aad("sealbox/v1/transfer-dek", &[&id]), &dek)
        .unwrap();
    // With a password the message is sealed like the files: under the key the gate
    // holds (server mode: the DEK), never by the master key.
    let message = B64
        .decode(message.strip_prefix("g1:").expect("a gated message"))
        .unwrap();
    let message = sealbox::crypto::open_value(
        &Dek::from_bytes(dek.as_slice().try_into().unwrap()),
        &ValueContext {
            kind: "transfer-message",
            object_id: transfer_id.parse().unwrap(),
            version: 1,
        },
        &SealedValue::from_bytes(message),
    )
    .unwrap();
    assert_eq!(message.as_slice(), "Signed copies \u{2713}".as_bytes());
    // The link secret: its hash is what is compared, its master-key seal binds the
    // organization, the sender and the name.
    let (org, sender, name, hash, sealed): (String, String, String, Vec<u8>, String) = app.query(
        "SELECT org_id, sender_id, name, link_secret_hash, sealed_link_secret FROM transfers",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )[0]
    .clone();
    let aad = master_aad(
        "sealbox/v1/transfer-link-secret",
        &[
            &id,
            &uuid_bytes(&org),
            &uuid_bytes(&sender),
            name.as_bytes(),
        ],
    );
    let link_secret = master.open(&aad, &sealed).unwrap();
    let link = s(&transfer, "link");
    assert_eq!(
        link.split_once("#s=").unwrap().1.as_bytes(),
        link_secret.as_slice()
    );
    use sha2::Digest as _;
    assert_eq!(sha2::Sha256::digest(&link_secret).to_vec(), hash);
    // The KEK straight from the argon2 crate, as the document describes it.
    let params: Argon2Params = serde_json::from_str(&params).unwrap();
    let mut kek = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32)).unwrap(),
    )
    .hash_password_into(b"correct horse battery", &salt, &mut kek)
    .unwrap();
    let gate = B64.decode(gate).unwrap();
    assert_eq!((gate.len(), gate[0]), (61, 1));
    let opened = sealbox::crypto::open_value(
        &Dek::from_bytes(kek),
        &ValueContext {
            kind: "transfer-password-gate",
            object_id: transfer_id.parse().unwrap(),
            version: 1,
        },
        &SealedValue::from_bytes(gate),
    )
    .unwrap();
    assert_eq!(opened.as_slice(), dek.as_slice());
}
