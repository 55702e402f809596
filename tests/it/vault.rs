//! The secrets vault: key pairs, KV secrets and read-only shares, walked through every flow
//! and error of the proxy reference, with the database tampered with directly.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s};

const OWNER_SECRET: &str = "owner-secret-phrase";
const MEMBER_SECRET: &str = "member-secret-phrase";

/// Acme with its owner and a member, both with key pairs.
struct Vault {
    app: TestApp,
    owner: String,
    owner_id: String,
    member: String,
    member_id: String,
    org: String,
}

async fn vault() -> Vault {
    vault_with(|_| {}).await
}

async fn vault_with(adjust: impl FnOnce(&mut sealbox::config::Config)) -> Vault {
    let app = TestApp::spawn_with(adjust).await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    let owner = s(&pair, "accessToken");
    let member_pair = app
        .invite_and_register(&owner, &org, "mia@example.com", "member")
        .await;
    let member = s(&member_pair, "accessToken");
    let v = Vault {
        owner_id: s(&pair["user"], "id"),
        member_id: s(&member_pair["user"], "id"),
        app,
        owner,
        member,
        org,
    };
    generate(&v.app, &v.owner, OWNER_SECRET).await;
    generate(&v.app, &v.member, MEMBER_SECRET).await;
    v
}

pub(crate) async fn call(
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

async fn generate(app: &TestApp, token: &str, secret: &str) -> Value {
    json_of(
        call(
            app,
            Method::POST,
            "/v1/keys/generate",
            token,
            Some(secret),
            None,
        )
        .await,
        201,
    )
    .await
}

pub(crate) async fn put(app: &TestApp, token: &str, key: &str, value: &[u8]) -> reqwest::Response {
    call(
        app,
        Method::PUT,
        &format!("/v1/kv/{key}"),
        token,
        None,
        Some(json!({"valueB64": B64.encode(value)})),
    )
    .await
}

async fn get_value(app: &TestApp, token: &str, key: &str, secret: &str) -> Vec<u8> {
    let body = json_of(
        call(
            app,
            Method::GET,
            &format!("/v1/kv/{key}"),
            token,
            Some(secret),
            None,
        )
        .await,
        200,
    )
    .await;
    B64.decode(s(&body, "valueB64")).unwrap()
}

async fn share(v: &Vault, key: &str, body: Value) -> reqwest::Response {
    call(
        &v.app,
        Method::POST,
        &format!("/v1/kv/{key}/shares"),
        &v.owner,
        Some(OWNER_SECRET),
        Some(body),
    )
    .await
}

fn flip_byte(app: &TestApp, table: &str, column: &str) {
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    let bytes: Vec<u8> = conn
        .query_row(&format!("SELECT {column} FROM {table} LIMIT 1"), [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut tampered = bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    conn.execute(
        &format!("UPDATE {table} SET {column} = ?1 WHERE {column} = ?2"),
        rusqlite::params![tampered, bytes],
    )
    .unwrap();
}

#[tokio::test]
async fn keys_are_generated_once_and_rekeyed_with_the_old_secret() {
    let app = TestApp::spawn().await;
    let token = s(&app.setup_admin().await, "accessToken");
    let status = json_of(app.get_as("/v1/keys/status", &token).await, 200).await;
    assert_eq!(status["hasEcc"], false);
    assert_eq!(status["hasKyber"], false);

    let missing = call(&app, Method::POST, "/v1/keys/generate", &token, None, None).await;
    assert_envelope(missing, 401, "UNAUTHORIZED").await;
    let short = call(
        &app,
        Method::POST,
        "/v1/keys/generate",
        &token,
        Some("short"),
        None,
    )
    .await;
    assert_envelope(short, 400, "BAD_REQUEST").await;
    let rekey_first = call(
        &app,
        Method::POST,
        "/v1/keys/rekey",
        &token,
        Some(OWNER_SECRET),
        None,
    );
    let rekey_first = {
        let response = rekey_first.await;
        assert_envelope(response, 401, "UNAUTHORIZED").await
    };
    assert!(
        rekey_first["message"]
            .as_str()
            .unwrap()
            .contains("X-New-User-Secret")
    );

    let keys = generate(&app, &token, OWNER_SECRET).await;
    let x25519 = B64.decode(s(&keys, "publicKeyB64")).unwrap();
    let kyber = B64.decode(s(&keys, "publicKeyKyberB64")).unwrap();
    let whole = B64.decode(s(&keys, "publicKeyXWingB64")).unwrap();
    assert_eq!((x25519.len(), kyber.len(), whole.len()), (32, 1184, 1216));
    assert_eq!([kyber, x25519].concat(), whole);
    assert_eq!(s(&keys, "fingerprint").len(), 32);
    let again = call(
        &app,
        Method::POST,
        "/v1/keys/generate",
        &token,
        Some(OWNER_SECRET),
        None,
    )
    .await;
    assert_envelope(again, 409, "CONFLICT").await;
    let status = json_of(app.get_as("/v1/keys/status", &token).await, 200).await;
    assert_eq!(
        (status["hasEcc"].clone(), status["hasKyber"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(status["fingerprint"], keys["fingerprint"]);

    assert_eq!(put(&app, &token, "db", b"hunter2").await.status(), 201);
    assert_eq!(
        get_value(&app, &token, "db", OWNER_SECRET).await,
        b"hunter2"
    );

    let rekey = |old: &'static str, new: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            app.client
                .post(app.url("/v1/keys/rekey"))
                .bearer_auth(token)
                .header("X-User-Secret", old)
                .header("X-New-User-Secret", new)
                .send()
                .await
                .unwrap()
        }
    };
    let wrong = rekey("not-the-secret", "new-secret-phrase").await;
    assert_envelope(wrong, 401, "UNAUTHORIZED").await;
    assert_eq!(rekey(OWNER_SECRET, "new-secret-phrase").await.status(), 204);
    // The old secret stops at once, though it was just used (and cached).
    let old = call(
        &app,
        Method::GET,
        "/v1/kv/db",
        &token,
        Some(OWNER_SECRET),
        None,
    )
    .await;
    assert_envelope(old, 401, "UNAUTHORIZED").await;
    assert_eq!(
        get_value(&app, &token, "db", "new-secret-phrase").await,
        b"hunter2"
    );
    let status = json_of(app.get_as("/v1/keys/status", &token).await, 200).await;
    assert_eq!(
        status["fingerprint"], keys["fingerprint"],
        "the key pair stays"
    );

    let audit = json_of(
        app.get_as("/v1/audit?action=keys.rekeyed", &token).await,
        200,
    )
    .await;
    assert_eq!(audit.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_whole_sharing_flow_of_the_reference() {
    let v = vault().await;
    let app = &v.app;
    assert_eq!(
        put(app, &v.owner, "db-password", b"s3cr3t").await.status(),
        201
    );
    let names = json_of(app.get_as("/v1/kv", &v.owner).await, 200).await;
    assert_eq!(names, json!(["db-password"]));

    let created = json_of(
        share(
            &v,
            "db-password",
            json!({"recipientUserId": v.member_id, "permission": "read",
                   "alias": "database password", "expiresUtc": "2999-01-01T00:00:00Z"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["recipientUserId"], v.member_id.as_str());
    assert_eq!(created["permission"], "read");
    assert_eq!(created["expiresUtc"], "2999-01-01T00:00:00.000Z");
    let share_id = s(&created, "shareId");

    let owner_view = json_of(app.get_as("/v1/kv/db-password/shares", &v.owner).await, 200).await;
    assert_eq!(owner_view[0]["shareId"], share_id.as_str());
    assert_eq!(owner_view[0]["recipientName"], "mia");
    assert_eq!(owner_view[0]["firstAccessUtc"], Value::Null);
    assert_eq!(owner_view[0]["lastAccessUtc"], Value::Null);

    let received = json_of(
        call(
            app,
            Method::GET,
            "/v1/kv/shared",
            &v.member,
            Some(MEMBER_SECRET),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(received.as_array().unwrap().len(), 1);
    assert_eq!(received[0]["alias"], "database password");
    assert_eq!(received[0]["ownerUserId"], v.owner_id.as_str());
    assert_eq!(received[0]["ownerName"], "Ada Lovelace");

    let path = format!("/v1/kv/shared/{share_id}");
    let read = json_of(
        call(
            app,
            Method::GET,
            &path,
            &v.member,
            Some(MEMBER_SECRET),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(B64.decode(s(&read, "valueB64")).unwrap(), b"s3cr3t");
    assert_eq!(read["ownerUserId"], v.owner_id.as_str());
    call(
        app,
        Method::GET,
        &path,
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    let owner_view = json_of(app.get_as("/v1/kv/db-password/shares", &v.owner).await, 200).await;
    let (first, last) = (
        s(&owner_view[0], "firstAccessUtc"),
        s(&owner_view[0], "lastAccessUtc"),
    );
    assert!(first <= last);

    // The member reads nothing of the owner's directly.
    let direct = call(
        app,
        Method::GET,
        "/v1/kv/db-password",
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(direct, 404, "NOT_FOUND").await;

    // One active share per recipient and key.
    let duplicate = share(
        &v,
        "db-password",
        json!({"recipientUserId": v.member_id, "permission": "read"}),
    )
    .await;
    assert_envelope(duplicate, 409, "CONFLICT").await;

    // The owner revokes: the recipient gets 404 from then on.
    let revoked = json_of(
        call(
            app,
            Method::DELETE,
            &format!("/v1/kv/db-password/shares/{}", v.member_id),
            &v.owner,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["shareId"], share_id.as_str());
    let gone = call(
        app,
        Method::GET,
        &path,
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(gone, 404, "NOT_FOUND").await;
    let listed = json_of(
        call(
            app,
            Method::GET,
            "/v1/kv/shared",
            &v.member,
            Some(MEMBER_SECRET),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(listed, json!([]));

    // Shared again, then the recipient removes their own access.
    let again = json_of(
        share(
            &v,
            "db-password",
            json!({"recipientUserId": v.member_id, "permission": "read"}),
        )
        .await,
        201,
    )
    .await;
    let again_path = format!("/v1/kv/shared/{}", s(&again, "shareId"));
    let removed = json_of(
        call(app, Method::DELETE, &again_path, &v.member, None, None).await,
        200,
    )
    .await;
    assert_eq!(removed["removed"], true);
    let after = call(
        app,
        Method::GET,
        &again_path,
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(after, 404, "NOT_FOUND").await;
    let owner_view = json_of(app.get_as("/v1/kv/db-password/shares", &v.owner).await, 200).await;
    assert_eq!(owner_view, json!([]));

    let actions: Vec<String> = app.query(
        "SELECT action FROM audit_log WHERE action LIKE 'kv.%' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(
        actions,
        [
            "kv.created",
            "kv.shared",
            "kv.share_accessed",
            "kv.share_accessed",
            "kv.share_revoked",
            "kv.shared",
            "kv.share_removed"
        ]
    );
    let events: Vec<String> = app.query(
        "SELECT type FROM outbox_events WHERE type LIKE 'kv.%' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(events, actions);
}

#[tokio::test]
async fn expired_shares_are_hidden_and_make_way_for_new_ones() {
    let v = vault().await;
    let app = &v.app;
    put(app, &v.owner, "token", b"abc").await;
    let created = json_of(
        share(
            &v,
            "token",
            json!({"recipientUserId": v.member_id, "permission": "read",
                                  "expiresUtc": "2999-01-01T00:00:00Z"}),
        )
        .await,
        201,
    )
    .await;
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE shares SET expires_at = '2000-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    let path = format!("/v1/kv/shared/{}", s(&created, "shareId"));
    let expired = call(
        app,
        Method::GET,
        &path,
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(expired, 404, "NOT_FOUND").await;
    let listed = json_of(
        call(
            app,
            Method::GET,
            "/v1/kv/shared",
            &v.member,
            Some(MEMBER_SECRET),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(listed, json!([]));
    let owner_view = json_of(app.get_as("/v1/kv/token/shares", &v.owner).await, 200).await;
    assert_eq!(owner_view, json!([]));
    let renewed = share(
        &v,
        "token",
        json!({"recipientUserId": v.member_id, "permission": "read"}),
    )
    .await;
    assert_eq!(
        renewed.status(),
        201,
        "an expired share does not block a new one"
    );
}

#[tokio::test]
async fn rekeys_and_overwrites_keep_what_they_promise_to_shares() {
    let v = vault().await;
    let app = &v.app;
    put(app, &v.owner, "api", b"v1").await;
    let created = json_of(
        share(
            &v,
            "api",
            json!({"recipientUserId": v.member_id, "permission": "read"}),
        )
        .await,
        201,
    )
    .await;
    let path = format!("/v1/kv/shared/{}", s(&created, "shareId"));

    // The recipient rekeys: the share still opens with the new secret.
    let rekeyed = app
        .client
        .post(app.url("/v1/keys/rekey"))
        .bearer_auth(&v.member)
        .header("X-User-Secret", MEMBER_SECRET)
        .header("X-New-User-Secret", "member-new-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(rekeyed.status(), 204);
    let old = call(
        app,
        Method::GET,
        &path,
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(old, 401, "UNAUTHORIZED").await;
    let read = json_of(
        call(
            app,
            Method::GET,
            &path,
            &v.member,
            Some("member-new-secret"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(B64.decode(s(&read, "valueB64")).unwrap(), b"v1");

    // An overwrite with the owner's secret keeps the key: the share sees the new value.
    let kept = call(
        app,
        Method::PUT,
        "/v1/kv/api",
        &v.owner,
        Some(OWNER_SECRET),
        Some(json!({"valueB64": B64.encode(b"v2")})),
    )
    .await;
    assert_eq!(json_of(kept, 200).await["version"], 2);
    let read = json_of(
        call(
            app,
            Method::GET,
            &path,
            &v.member,
            Some("member-new-secret"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(B64.decode(s(&read, "valueB64")).unwrap(), b"v2");

    // Without the secret a new key seals v3: the old share can no longer be decrypted.
    assert_eq!(
        json_of(put(app, &v.owner, "api", b"v3").await, 200).await["version"],
        3
    );
    let stale = call(
        app,
        Method::GET,
        &path,
        &v.member,
        Some("member-new-secret"),
        None,
    )
    .await;
    assert_envelope(stale, 403, "FORBIDDEN").await;
    let listed = json_of(
        call(
            app,
            Method::GET,
            "/v1/kv/shared",
            &v.member,
            Some("member-new-secret"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        listed,
        json!([]),
        "shares the caller cannot open are left out"
    );
    assert_eq!(get_value(app, &v.owner, "api", OWNER_SECRET).await, b"v3");
}

#[tokio::test]
async fn every_error_of_the_reference() {
    let v = vault_with(|c| c.limits.kv_value_bytes = 1024).await;
    let app = &v.app;

    // No key material yet: 400 to store, 400 to read.
    let newcomer = app
        .invite_and_register(&v.owner, &v.org, "neo@example.com", "member")
        .await;
    let newcomer_token = s(&newcomer, "accessToken");
    let no_keys = put(app, &newcomer_token, "x", b"1").await;
    assert_envelope(no_keys, 400, "BAD_REQUEST").await;

    let bad_b64 = call(
        app,
        Method::PUT,
        "/v1/kv/x",
        &v.owner,
        None,
        Some(json!({"valueB64": "not base64!"})),
    )
    .await;
    assert_envelope(bad_b64, 400, "BAD_REQUEST").await;
    let too_big = put(app, &v.owner, "x", &[7u8; 1025]).await;
    assert_envelope(too_big, 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(put(app, &v.owner, "x", &[7u8; 1024]).await.status(), 201);
    let unpadded = call(
        app,
        Method::PUT,
        "/v1/kv/y",
        &v.owner,
        None,
        Some(json!({"valueB64": "aGk"})),
    )
    .await;
    assert_eq!(unpadded.status(), 201);
    assert_eq!(get_value(app, &v.owner, "y", OWNER_SECRET).await, b"hi");
    let control = put(app, &v.owner, "tab%09in-name", b"1").await;
    assert_envelope(control, 422, "VALIDATION").await;
    // `shared` is the recipients' list route, so it cannot name a secret.
    let reserved = put(app, &v.owner, "shared", b"1").await;
    assert_envelope(reserved, 405, "METHOD_NOT_ALLOWED").await;
    let long = put(app, &v.owner, &"k".repeat(257), b"1").await;
    assert_envelope(long, 422, "VALIDATION").await;
    assert_eq!(
        put(app, &v.owner, &"k".repeat(256), b"1").await.status(),
        201
    );

    let no_secret = call(app, Method::GET, "/v1/kv/x", &v.owner, None, None).await;
    assert_envelope(no_secret, 401, "UNAUTHORIZED").await;
    let wrong = call(
        app,
        Method::GET,
        "/v1/kv/x",
        &v.owner,
        Some("wrong-secret"),
        None,
    )
    .await;
    assert_envelope(wrong, 401, "UNAUTHORIZED").await;
    let missing = call(
        app,
        Method::GET,
        "/v1/kv/nope",
        &v.owner,
        Some(OWNER_SECRET),
        None,
    )
    .await;
    assert_envelope(missing, 404, "NOT_FOUND").await;
    let delete_missing = call(app, Method::DELETE, "/v1/kv/nope", &v.owner, None, None).await;
    assert_envelope(delete_missing, 404, "NOT_FOUND").await;

    // Share errors.
    let share_body = |permission: &str, expires: Option<&str>| {
        let mut body = json!({"recipientUserId": v.member_id, "permission": permission});
        if let Some(at) = expires {
            body["expiresUtc"] = json!(at);
        }
        body
    };
    let write = share(&v, "x", share_body("write", None)).await;
    assert_envelope(write, 400, "BAD_REQUEST").await;
    let past = share(&v, "x", share_body("read", Some("2001-01-01T00:00:00Z"))).await;
    assert_envelope(past, 400, "BAD_REQUEST").await;
    let garbled = share(&v, "x", share_body("read", Some("next week"))).await;
    assert_envelope(garbled, 400, "BAD_REQUEST").await;
    let to_keyless = share(
        &v,
        "x",
        json!({"recipientUserId": s(&newcomer["user"], "id"), "permission": "read"}),
    )
    .await;
    assert_envelope(to_keyless, 400, "BAD_REQUEST").await;
    let to_nobody = share(
        &v,
        "x",
        json!({"recipientUserId": "00000000-0000-0000-0000-000000000000", "permission": "read"}),
    )
    .await;
    assert_envelope(to_nobody, 404, "NOT_FOUND").await;
    let of_nothing = share(&v, "nope", share_body("read", None)).await;
    assert_envelope(of_nothing, 404, "NOT_FOUND").await;
    let wrong_secret = call(
        app,
        Method::POST,
        "/v1/kv/x/shares",
        &v.owner,
        Some("wrong-secret"),
        Some(share_body("read", None)),
    )
    .await;
    assert_envelope(wrong_secret, 401, "UNAUTHORIZED").await;

    // A user of another organization is not a recipient, and sees none of Acme's shares.
    let outsider = app
        .invite_and_register(&v.owner, &v.org, "out@example.com", "member")
        .await;
    let outsider_token = s(&outsider, "accessToken");
    let globex = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &outsider_token,
            Some(&json!({"name": "Globex"})),
            None,
        )
        .await,
        201,
    )
    .await;
    app.send_as(
        Method::DELETE,
        &format!(
            "/v1/organizations/{}/members/{}",
            v.org,
            s(&outsider["user"], "id")
        ),
        &v.owner,
        None,
        None,
    )
    .await;
    generate(app, &outsider_token, "outsider-secret").await;
    let foreign = share(
        &v,
        "x",
        json!({"recipientUserId": s(&outsider["user"], "id"), "permission": "read"}),
    )
    .await;
    assert_envelope(foreign, 404, "NOT_FOUND").await;
    let created = json_of(share(&v, "x", share_body("read", None)).await, 201).await;
    let theirs = app
        .client
        .get(app.url(&format!("/v1/kv/shared/{}", s(&created, "shareId"))))
        .bearer_auth(&outsider_token)
        .header("X-User-Secret", "outsider-secret")
        .header("X-Organization-Id", s(&globex, "id"))
        .send()
        .await
        .unwrap();
    assert_envelope(theirs, 404, "NOT_FOUND").await;

    // No 500 for any of these: nothing was logged as a storage failure either.
    let unknown_share = call(
        app,
        Method::GET,
        "/v1/kv/shared/not-an-id",
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(unknown_share, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn a_flipped_byte_in_a_stored_envelope_or_value_is_a_400_or_403_never_a_500() {
    for (table, column, status, code) in [
        ("kv_entries", "owner_envelope", 400, "BAD_REQUEST"),
        ("kv_entries", "sealed_value", 400, "BAD_REQUEST"),
    ] {
        let v = vault().await;
        put(&v.app, &v.owner, "x", b"value").await;
        flip_byte(&v.app, table, column);
        let read = call(
            &v.app,
            Method::GET,
            "/v1/kv/x",
            &v.owner,
            Some(OWNER_SECRET),
            None,
        )
        .await;
        let error = assert_envelope(read, status, code).await;
        assert!(
            error["message"].as_str().unwrap().contains("tampered"),
            "{table}.{column}: {error}"
        );
    }
    // A recipient's envelope that no longer opens: 403, and the share is left out.
    let v = vault().await;
    put(&v.app, &v.owner, "x", b"value").await;
    let created = json_of(
        share(
            &v,
            "x",
            json!({"recipientUserId": v.member_id, "permission": "read"}),
        )
        .await,
        201,
    )
    .await;
    flip_byte(&v.app, "shares", "envelope");
    let path = format!("/v1/kv/shared/{}", s(&created, "shareId"));
    let read = call(
        &v.app,
        Method::GET,
        &path,
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(read, 403, "FORBIDDEN").await;
    // A value flipped behind a share: 400 (tampered), not 403.
    let v = vault().await;
    put(&v.app, &v.owner, "x", b"value").await;
    let created = json_of(
        share(
            &v,
            "x",
            json!({"recipientUserId": v.member_id, "permission": "read"}),
        )
        .await,
        201,
    )
    .await;
    flip_byte(&v.app, "kv_entries", "sealed_value");
    let path = format!("/v1/kv/shared/{}", s(&created, "shareId"));
    let read = call(
        &v.app,
        Method::GET,
        &path,
        &v.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_envelope(read, 400, "BAD_REQUEST").await;
}

#[tokio::test]
async fn api_keys_need_the_kv_scopes() {
    let v = vault().await;
    let app = &v.app;
    let key_with = |scopes: Value| {
        let (app, owner) = (app, &v.owner);
        async move {
            s(
                &json_of(
                    app.send_as(
                        Method::POST,
                        "/v1/api-keys",
                        owner,
                        Some(&json!({"name": "script", "scopes": scopes})),
                        None,
                    )
                    .await,
                    201,
                )
                .await,
                "key",
            )
        }
    };
    let writer = key_with(json!(["kv:write"])).await;
    assert_eq!(put(app, &writer, "k", b"1").await.status(), 201);
    let read_by_writer = call(
        app,
        Method::GET,
        "/v1/kv/k",
        &writer,
        Some(OWNER_SECRET),
        None,
    )
    .await;
    let error = assert_envelope(read_by_writer, 403, "FORBIDDEN").await;
    assert!(error["message"].as_str().unwrap().contains("kv:read"));
    let reader = key_with(json!(["kv:read"])).await;
    assert_eq!(get_value(app, &reader, "k", OWNER_SECRET).await, b"1");
    let delete = call(app, Method::DELETE, "/v1/kv/k", &reader, None, None).await;
    assert_envelope(delete, 403, "FORBIDDEN").await;
    let sharer = call(
        app,
        Method::POST,
        "/v1/kv/k/shares",
        &reader,
        Some(OWNER_SECRET),
        Some(json!({"recipientUserId": v.member_id, "permission": "read"})),
    )
    .await;
    let error = assert_envelope(sharer, 403, "FORBIDDEN").await;
    assert!(error["message"].as_str().unwrap().contains("shares:write"));
    let generate_by_key = call(
        app,
        Method::POST,
        "/v1/keys/generate",
        &reader,
        Some("whatever-secret"),
        None,
    )
    .await;
    assert_envelope(generate_by_key, 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn nothing_secret_is_stored_in_the_clear() {
    let v = vault().await;
    let app = &v.app;
    let value = b"correct-horse-battery-staple-value";
    put(app, &v.owner, "needle", value).await;
    share(
        &v,
        "needle",
        json!({"recipientUserId": v.member_id, "permission": "read", "alias": "alias-needle-text"}),
    )
    .await;
    let seeds: Vec<Vec<u8>> = app.query("SELECT sealed_seed FROM user_keys", |r| r.get(0));
    assert!(
        seeds.iter().all(|sealed| sealed.len() == 61),
        "seeds are stored sealed"
    );
    // The private seeds, as a client that knows the secrets would open them.
    let seeds = [
        crate::recovery::exported_seed(app, &v.owner_id, OWNER_SECRET),
        crate::recovery::exported_seed(app, &v.member_id, MEMBER_SECRET),
    ];
    // Every file of the data directory: the database, its write-ahead log, the rest.
    let mut haystack = Vec::new();
    for entry in walk(&app.data_dir) {
        haystack.extend(std::fs::read(entry).unwrap());
    }
    for needle in [
        &value[..],
        b"alias-needle-text",
        OWNER_SECRET.as_bytes(),
        MEMBER_SECRET.as_bytes(),
        seeds[0].expose_bytes(),
        seeds[1].expose_bytes(),
    ] {
        assert!(
            !haystack.windows(needle.len()).any(|w| w == needle),
            "{} found in the data directory",
            String::from_utf8_lossy(needle)
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn colleagues_and_their_public_keys_are_discoverable_in_the_organization_only() {
    let v = vault().await;
    let app = &v.app;
    let newcomer = app
        .invite_and_register(&v.owner, &v.org, "neo@example.com", "member")
        .await;
    let directory = json_of(app.get_as("/v1/users/org", &v.member).await, 200).await;
    let names: Vec<&str> = directory
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada Lovelace", "mia", "neo"]);
    let ada = &directory[0];
    assert_eq!(ada["hasKeys"], true);
    assert_eq!(ada["role"], "owner");
    let status = json_of(app.get_as("/v1/keys/status", &v.owner).await, 200).await;
    assert_eq!(ada["fingerprint"], status["fingerprint"]);
    assert_eq!(B64.decode(s(ada, "publicKeyXWingB64")).unwrap().len(), 1216);
    assert_eq!(directory[2]["hasKeys"], false);
    assert!(directory[2].get("publicKeyB64").is_none());

    let one = json_of(
        app.get_as(&format!("/v1/users/org/{}", v.member_id), &v.owner)
            .await,
        200,
    )
    .await;
    assert_eq!(one["email"], "mia@example.com");
    assert_eq!(one["publicKeyB64"], directory[1]["publicKeyB64"]);

    // Someone only in another organization is not found.
    let outsider = app
        .invite_and_register(&v.owner, &v.org, "out@example.com", "member")
        .await;
    let outsider_token = s(&outsider, "accessToken");
    app.send_as(
        Method::POST,
        "/v1/organizations",
        &outsider_token,
        Some(&json!({"name": "Globex"})),
        None,
    )
    .await;
    let removed = app
        .send_as(
            Method::DELETE,
            &format!(
                "/v1/organizations/{}/members/{}",
                v.org,
                s(&outsider["user"], "id")
            ),
            &v.owner,
            None,
            None,
        )
        .await;
    assert_eq!(removed.status(), 204);
    let hidden = app
        .get_as(
            &format!("/v1/users/org/{}", s(&outsider["user"], "id")),
            &v.owner,
        )
        .await;
    assert_envelope(hidden, 404, "NOT_FOUND").await;
    let theirs = json_of(app.get_as("/v1/users/org", &outsider_token).await, 200).await;
    assert_eq!(
        theirs.as_array().unwrap().len(),
        1,
        "Globex has only its owner: {theirs}"
    );
    let newcomer_id = s(&newcomer["user"], "id");
    let not_theirs = app
        .get_as(&format!("/v1/users/org/{newcomer_id}"), &outsider_token)
        .await;
    assert_envelope(not_theirs, 404, "NOT_FOUND").await;
    let garbage = app.get_as("/v1/users/org/not-an-id", &v.owner).await;
    assert_envelope(garbage, 404, "NOT_FOUND").await;

    // Your own profile carries your key status beside the account.
    let me = json_of(app.get_as("/v1/users/me", &v.member).await, 200).await;
    assert_eq!(me["email"], "mia@example.com");
    assert_eq!(me["keys"]["hasEcc"], true);
    assert_eq!(me["keys"]["fingerprint"], directory[1]["fingerprint"]);
    let theirs_me = json_of(
        app.get_as("/v1/users/me", &s(&newcomer, "accessToken"))
            .await,
        200,
    )
    .await;
    assert_eq!(theirs_me["keys"]["hasKyber"], false);
}
