//! Read-only file shares: the proxy reference's File Sharing flow and every error it
//! names, download links for shared files too large for JSON, expiry, tampering, other
//! organizations and API-key scopes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s};

const OWNER_SECRET: &str = "owner-secret-phrase";
const MEMBER_SECRET: &str = "member-secret-phrase";
const CONTENT: &[u8] = b"{\"rows\": [1, 2, 3]}";

/// Acme with its owner and a member, both with key pairs.
struct Org {
    app: TestApp,
    owner: String,
    owner_id: String,
    member: String,
    member_id: String,
    org: String,
}

async fn org() -> Org {
    org_with(|_| {}).await
}

async fn org_with(adjust: impl FnOnce(&mut sealbox::config::Config)) -> Org {
    let app = TestApp::spawn_with(adjust).await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    let owner = s(&pair, "accessToken");
    let member_pair = app
        .invite_and_register(&owner, &org, "mia@example.com", "member")
        .await;
    let o = Org {
        owner_id: s(&pair["user"], "id"),
        member: s(&member_pair, "accessToken"),
        member_id: s(&member_pair["user"], "id"),
        app,
        owner,
        org,
    };
    generate(&o.app, &o.owner, OWNER_SECRET).await;
    generate(&o.app, &o.member, MEMBER_SECRET).await;
    o
}

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

async fn generate(app: &TestApp, token: &str, secret: &str) {
    let generated = call(
        app,
        Method::POST,
        "/v1/keys/generate",
        token,
        Some(secret),
        None,
    )
    .await;
    assert_eq!(generated.status(), 201);
}

/// The owner stores `snapshot.json` through `POST /v1/files`; returns its id.
async fn store_file(o: &Org) -> String {
    let created = call(
        &o.app,
        Method::POST,
        "/v1/files",
        &o.owner,
        None,
        Some(
            json!({"fileName": "snapshot.json", "contentB64": B64.encode(CONTENT),
                    "contentType": "application/json"}),
        ),
    )
    .await;
    s(&json_of(created, 201).await, "id")
}

/// Uploads `bytes` through presign, PUT and finalize with the given encryption.
async fn upload(o: &Org, name: &str, bytes: &[u8], encryption: &str) -> String {
    let presigned = json_of(
        call(
            &o.app,
            Method::POST,
            "/v1/files/presign",
            &o.owner,
            None,
            Some(
                json!({"filename": name, "size": bytes.len(), "encryption": encryption,
                        "contentType": "application/octet-stream"}),
            ),
        )
        .await,
        201,
    )
    .await;
    let put = o
        .app
        .client
        .put(s(&presigned, "uploadUrl"))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let id = s(&presigned, "fileId");
    let path = format!("/v1/files/{id}/finalize");
    json_of(
        call(&o.app, Method::POST, &path, &o.owner, None, None).await,
        200,
    )
    .await;
    id
}

async fn share(o: &Org, file: &str, body: Value) -> reqwest::Response {
    call(
        &o.app,
        Method::POST,
        &format!("/v1/files/{file}/shares"),
        &o.owner,
        Some(OWNER_SECRET),
        Some(body),
    )
    .await
}

fn to_member(o: &Org) -> Value {
    json!({"recipientUserId": o.member_id, "permission": "read"})
}

/// What the member gets for `path` with their secret.
async fn as_member(o: &Org, path: &str) -> reqwest::Response {
    call(
        &o.app,
        Method::GET,
        path,
        &o.member,
        Some(MEMBER_SECRET),
        None,
    )
    .await
}

async fn owner_view(o: &Org, file: &str) -> Value {
    json_of(
        o.app
            .get_as(&format!("/v1/files/{file}/shares"), &o.owner)
            .await,
        200,
    )
    .await
}

fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

#[tokio::test]
async fn the_whole_file_sharing_flow_of_the_reference() {
    let o = org().await;
    let app = &o.app;
    let file = store_file(&o).await;

    let created = json_of(
        share(
            &o,
            &file,
            json!({"recipientUserId": o.member_id, "permission": "read",
                   "expiresUtc": "2999-01-01T00:00:00Z"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["recipientUserId"], o.member_id.as_str());
    assert_eq!(created["permission"], "read");
    assert_eq!(created["expiresUtc"], "2999-01-01T00:00:00.000Z");
    assert!(created["createdUtc"].is_string());
    let share_id = s(&created, "shareId");

    let view = owner_view(&o, &file).await;
    assert_eq!(view.as_array().unwrap().len(), 1);
    assert_eq!(view[0]["shareId"], share_id.as_str());
    assert_eq!(view[0]["recipientUserId"], o.member_id.as_str());
    assert_eq!(view[0]["recipientName"], "mia");
    assert_eq!(view[0]["permission"], "read");
    assert!(view[0]["createdUtc"].is_string() && view[0]["updatedUtc"].is_string());
    assert_eq!(view[0]["expiresUtc"], "2999-01-01T00:00:00.000Z");
    assert_eq!(view[0]["firstAccessUtc"], Value::Null);
    assert_eq!(view[0]["lastAccessUtc"], Value::Null);

    // `/v1/files/shared` is its own route, not a file id.
    let received = json_of(as_member(&o, "/v1/files/shared").await, 200).await;
    assert_eq!(
        received,
        json!([{
            "shareId": share_id,
            "fileId": file,
            "ownerUserId": o.owner_id,
            "ownerName": "Ada Lovelace",
            "fileName": "snapshot.json",
            "contentType": "application/json",
            "sizeBytes": CONTENT.len(),
            "updatedUtc": received[0]["updatedUtc"],
            "expiresUtc": "2999-01-01T00:00:00.000Z",
        }])
    );
    assert!(received[0]["updatedUtc"].is_string());

    let path = format!("/v1/files/shared/{share_id}");
    let read = json_of(as_member(&o, &path).await, 200).await;
    assert_eq!(B64.decode(s(&read, "contentB64")).unwrap(), CONTENT);
    assert_eq!(read["shareId"], share_id.as_str());
    assert_eq!(read["fileId"], file.as_str());
    assert_eq!(read["ownerUserId"], o.owner_id.as_str());
    assert_eq!(read["fileName"], "snapshot.json");
    assert_eq!(read["contentType"], "application/json");
    assert_eq!(read["expiresUtc"], "2999-01-01T00:00:00.000Z");
    as_member(&o, &path).await;
    let view = owner_view(&o, &file).await;
    let (first, last) = (s(&view[0], "firstAccessUtc"), s(&view[0], "lastAccessUtc"));
    assert!(first <= last);

    // The member reads nothing of the owner's directly; the owner's routes still work.
    let direct = as_member(&o, &format!("/v1/files/{file}")).await;
    assert_envelope(direct, 404, "NOT_FOUND").await;
    let own = call(
        app,
        Method::GET,
        &format!("/v1/files/{file}"),
        &o.owner,
        Some(OWNER_SECRET),
        None,
    )
    .await;
    assert_eq!(json_of(own, 200).await["fileName"], "snapshot.json");

    // One active share per recipient and file.
    let duplicate = share(&o, &file, to_member(&o)).await;
    assert_envelope(duplicate, 409, "CONFLICT").await;

    // The owner revokes: the recipient gets 404 from then on.
    let revoked = json_of(
        call(
            app,
            Method::DELETE,
            &format!("/v1/files/{file}/shares/{}", o.member_id),
            &o.owner,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["shareId"], share_id.as_str());
    assert!(revoked["revokedUtc"].is_string());
    assert_envelope(as_member(&o, &path).await, 404, "NOT_FOUND").await;
    let listed = json_of(as_member(&o, "/v1/files/shared").await, 200).await;
    assert_eq!(listed, json!([]));
    assert_eq!(owner_view(&o, &file).await, json!([]));

    // Shared again, then the recipient removes their own access: the file stays.
    let again = json_of(share(&o, &file, to_member(&o)).await, 201).await;
    let again_path = format!("/v1/files/shared/{}", s(&again, "shareId"));
    let removed = json_of(
        call(app, Method::DELETE, &again_path, &o.member, None, None).await,
        200,
    )
    .await;
    assert_eq!(removed["removed"], true);
    assert_eq!(removed["shareId"], again["shareId"]);
    assert!(removed["revokedUtc"].is_string());
    assert_envelope(as_member(&o, &again_path).await, 404, "NOT_FOUND").await;
    assert_eq!(owner_view(&o, &file).await, json!([]));
    let removed_twice = call(app, Method::DELETE, &again_path, &o.member, None, None).await;
    assert_envelope(removed_twice, 404, "NOT_FOUND").await;
    let files: Vec<String> = app.query("SELECT id FROM files", |r| r.get(0));
    assert_eq!(files, [file.as_str()]);

    // Deleting the file ends its shares.
    json_of(share(&o, &file, to_member(&o)).await, 201).await;
    let deleted = call(
        app,
        Method::DELETE,
        &format!("/v1/files/{file}"),
        &o.owner,
        None,
        None,
    )
    .await;
    assert_eq!(deleted.status(), 204);
    let shares: Vec<String> = app.query("SELECT id FROM shares", |r| r.get(0));
    assert!(shares.is_empty(), "{shares:?}");

    let actions: Vec<String> = app.query(
        "SELECT action FROM audit_log WHERE action LIKE 'file.share%' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(
        actions,
        [
            "file.shared",
            "file.share_accessed",
            "file.share_accessed",
            "file.share_revoked",
            "file.shared",
            "file.share_removed",
            "file.shared",
        ]
    );
    let events: Vec<String> = app.query(
        "SELECT type FROM outbox_events WHERE type LIKE 'file.share%' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(events, actions);
    let shared_event: Vec<String> = app.query(
        "SELECT data FROM outbox_events WHERE type = 'file.shared' ORDER BY seq LIMIT 1",
        |r| r.get(0),
    );
    let data: Value = serde_json::from_str(&shared_event[0]).unwrap();
    assert_eq!(data["fileId"], file.as_str());
    assert_eq!(data["recipientUserId"], o.member_id.as_str());
    assert_eq!(data["shareId"], share_id.as_str());
}

#[tokio::test]
async fn large_shared_files_come_through_a_download_link() {
    let o = org_with(|c| c.limits.json_file_bytes = 1024).await;
    let bytes = payload(200_000);
    let file = upload(&o, "disk.img", &bytes, "server").await;
    let created = json_of(share(&o, &file, to_member(&o)).await, 201).await;
    let path = format!("/v1/files/shared/{}", s(&created, "shareId"));

    let whole = as_member(&o, &path).await;
    let error = assert_envelope(whole, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{path}/download")),
        "{error}"
    );
    assert_eq!(
        owner_view(&o, &file).await[0]["firstAccessUtc"],
        Value::Null
    );

    let listed = json_of(as_member(&o, "/v1/files/shared").await, 200).await;
    assert_eq!(listed[0]["fileName"], "disk.img");
    assert_eq!(listed[0]["sizeBytes"], bytes.len());

    let link = json_of(as_member(&o, &format!("{path}/download")).await, 200).await;
    assert!(link["expiresIn"].as_u64().unwrap() > 0);
    let url = s(&link, "url");
    assert!(url.contains("/v1/downloads/"), "{url}");
    let fetched = o.app.client.get(&url).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), &bytes[..]);
    let ranged = o
        .app
        .client
        .get(&url)
        .header("Range", "bytes=70000-70009")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.bytes().await.unwrap().as_ref(),
        &bytes[70_000..70_010]
    );

    // Issuing the link is the recorded access.
    assert!(owner_view(&o, &file).await[0]["firstAccessUtc"].is_string());
    let via: Vec<String> = o.app.query(
        "SELECT json_extract(details, '$.via') FROM audit_log
         WHERE action = 'file.share_accessed'",
        |r| r.get(0),
    );
    assert_eq!(via, ["download_link"]);

    // The link needs the same things as reading: the recipient's secret and an active share.
    let wrong = call(
        &o.app,
        Method::GET,
        &format!("{path}/download"),
        &o.member,
        Some("wrong-secret"),
        None,
    )
    .await;
    assert_envelope(wrong, 401, "UNAUTHORIZED").await;
    let not_theirs = call(
        &o.app,
        Method::GET,
        &format!("{path}/download"),
        &o.owner,
        Some(OWNER_SECRET),
        None,
    )
    .await;
    assert_envelope(not_theirs, 404, "NOT_FOUND").await;

    // Revoking the share ends the link already issued, long before it would expire.
    let revoked = call(
        &o.app,
        Method::DELETE,
        &format!("/v1/files/{file}/shares/{}", o.member_id),
        &o.owner,
        None,
        None,
    )
    .await;
    assert_eq!(revoked.status(), 200);
    let after = o.app.client.get(&url).send().await.unwrap();
    assert_envelope(after, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn expired_file_shares_are_hidden_and_make_way_for_new_ones() {
    let o = org().await;
    let file = store_file(&o).await;
    let created = json_of(
        share(
            &o,
            &file,
            json!({"recipientUserId": o.member_id, "permission": "read",
                   "expiresUtc": "2999-01-01T00:00:00Z"}),
        )
        .await,
        201,
    )
    .await;
    let conn = rusqlite::Connection::open(o.app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE shares SET expires_at = '2000-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    let path = format!("/v1/files/shared/{}", s(&created, "shareId"));
    assert_envelope(as_member(&o, &path).await, 404, "NOT_FOUND").await;
    assert_envelope(
        as_member(&o, &format!("{path}/download")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let listed = json_of(as_member(&o, "/v1/files/shared").await, 200).await;
    assert_eq!(listed, json!([]));
    assert_eq!(owner_view(&o, &file).await, json!([]));
    let revoke_expired = call(
        &o.app,
        Method::DELETE,
        &format!("/v1/files/{file}/shares/{}", o.member_id),
        &o.owner,
        None,
        None,
    )
    .await;
    assert_envelope(revoke_expired, 404, "NOT_FOUND").await;
    let renewed = share(&o, &file, to_member(&o)).await;
    assert_eq!(
        renewed.status(),
        201,
        "an expired share does not block a new one"
    );
    let renewed_path = format!(
        "/v1/files/shared/{}",
        s(&renewed.json().await.unwrap(), "shareId")
    );
    assert_eq!(as_member(&o, &renewed_path).await.status(), 200);
}

#[tokio::test]
async fn every_error_of_the_file_sharing_reference() {
    let o = org().await;
    let app = &o.app;
    let file = store_file(&o).await;

    let share_body = |permission: &str, expires: Option<&str>| {
        let mut body = json!({"recipientUserId": o.member_id, "permission": permission});
        if let Some(at) = expires {
            body["expiresUtc"] = json!(at);
        }
        body
    };
    let write = share(&o, &file, share_body("write", None)).await;
    assert_envelope(write, 400, "BAD_REQUEST").await;
    let past = share(&o, &file, share_body("read", Some("2001-01-01T00:00:00Z"))).await;
    assert_envelope(past, 400, "BAD_REQUEST").await;
    let garbled = share(&o, &file, share_body("read", Some("next week"))).await;
    assert_envelope(garbled, 400, "BAD_REQUEST").await;
    let newcomer = app
        .invite_and_register(&o.owner, &o.org, "neo@example.com", "member")
        .await;
    let to_keyless = share(
        &o,
        &file,
        json!({"recipientUserId": s(&newcomer["user"], "id"), "permission": "read"}),
    )
    .await;
    let error = assert_envelope(to_keyless, 400, "BAD_REQUEST").await;
    assert!(error["message"].as_str().unwrap().contains("recipient"));
    let to_self = share(
        &o,
        &file,
        json!({"recipientUserId": o.owner_id, "permission": "read"}),
    )
    .await;
    assert_envelope(to_self, 400, "BAD_REQUEST").await;
    for nobody in ["00000000-0000-0000-0000-000000000000", "not-a-user"] {
        let to_nobody = share(
            &o,
            &file,
            json!({"recipientUserId": nobody, "permission": "read"}),
        )
        .await;
        assert_envelope(to_nobody, 404, "NOT_FOUND").await;
    }
    for missing in ["00000000-0000-0000-0000-000000000000", "not-a-file"] {
        let of_nothing = share(&o, missing, to_member(&o)).await;
        assert_envelope(of_nothing, 404, "NOT_FOUND").await;
        let listed = app
            .get_as(&format!("/v1/files/{missing}/shares"), &o.owner)
            .await;
        assert_envelope(listed, 404, "NOT_FOUND").await;
    }
    let path = format!("/v1/files/{file}/shares");
    let wrong_secret = call(
        app,
        Method::POST,
        &path,
        &o.owner,
        Some("wrong-secret"),
        Some(to_member(&o)),
    )
    .await;
    assert_envelope(wrong_secret, 401, "UNAUTHORIZED").await;
    let no_secret = call(
        app,
        Method::POST,
        &path,
        &o.owner,
        None,
        Some(to_member(&o)),
    )
    .await;
    assert_envelope(no_secret, 401, "UNAUTHORIZED").await;
    // Only the owner shares their file.
    let by_member = call(
        app,
        Method::POST,
        &path,
        &o.member,
        Some(MEMBER_SECRET),
        Some(json!({"recipientUserId": o.owner_id, "permission": "read"})),
    )
    .await;
    assert_envelope(by_member, 404, "NOT_FOUND").await;
    let revoke_none = call(
        app,
        Method::DELETE,
        &format!("/v1/files/{file}/shares/{}", o.member_id),
        &o.owner,
        None,
        None,
    )
    .await;
    assert_envelope(revoke_none, 404, "NOT_FOUND").await;

    // A client-encrypted file has no key sealbox could re-seal.
    let sealed_by_client = upload(&o, "ciphertext.bin", b"opaque bytes", "client").await;
    let refused = share(&o, &sealed_by_client, to_member(&o)).await;
    let error = assert_envelope(refused, 400, "BAD_REQUEST").await;
    assert!(
        error["message"].as_str().unwrap().contains("client"),
        "{error}"
    );

    // Recipient-side errors.
    let created = json_of(share(&o, &file, to_member(&o)).await, 201).await;
    let shared = format!("/v1/files/shared/{}", s(&created, "shareId"));
    for (secret, status) in [(None, 401), (Some("wrong-secret"), 401)] {
        for route in ["/v1/files/shared", shared.as_str()] {
            let refused = call(app, Method::GET, route, &o.member, secret, None).await;
            assert_envelope(refused, status, "UNAUTHORIZED").await;
        }
    }
    for unknown in ["not-an-id", "00000000-0000-0000-0000-000000000000"] {
        let path = format!("/v1/files/shared/{unknown}");
        assert_envelope(as_member(&o, &path).await, 404, "NOT_FOUND").await;
        let removed = call(app, Method::DELETE, &path, &o.member, None, None).await;
        assert_envelope(removed, 404, "NOT_FOUND").await;
    }
    // Another member of Acme is not the recipient.
    let neo_token = s(&newcomer, "accessToken");
    generate(app, &neo_token, "neo-secret").await;
    let not_theirs = call(
        app,
        Method::GET,
        &shared,
        &neo_token,
        Some("neo-secret"),
        None,
    )
    .await;
    assert_envelope(not_theirs, 404, "NOT_FOUND").await;
    let not_theirs = call(app, Method::DELETE, &shared, &neo_token, None, None).await;
    assert_envelope(not_theirs, 404, "NOT_FOUND").await;
    // `shared` names no file: the recipients' routes own that path segment.
    let not_a_file = call(
        app,
        Method::DELETE,
        "/v1/files/shared",
        &o.owner,
        None,
        None,
    )
    .await;
    assert_envelope(not_a_file, 405, "METHOD_NOT_ALLOWED").await;
    // DELETE /v1/files/shared/{id} is the recipient's route, never a file's deletion.
    let owner_delete = call(app, Method::DELETE, &shared, &o.owner, None, None).await;
    assert_envelope(owner_delete, 404, "NOT_FOUND").await;
    assert_eq!(owner_view(&o, &file).await.as_array().unwrap().len(), 1);

    // The owner without private keys any more: 400.
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "DELETE FROM user_keys WHERE user_id = ?1",
        [o.owner_id.as_str()],
    )
    .unwrap();
    let keyless_owner = share(
        &o,
        &file,
        json!({"recipientUserId": s(&newcomer["user"], "id"), "permission": "read"}),
    )
    .await;
    let error = assert_envelope(keyless_owner, 400, "BAD_REQUEST").await;
    assert!(
        error["message"].as_str().unwrap().contains("owner"),
        "{error}"
    );
}

#[tokio::test]
async fn other_organizations_see_nothing() {
    let o = org().await;
    let app = &o.app;
    let file = store_file(&o).await;
    // An account that left Acme for its own organization.
    let outsider = app
        .invite_and_register(&o.owner, &o.org, "out@example.com", "member")
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
            o.org,
            s(&outsider["user"], "id")
        ),
        &o.owner,
        None,
        None,
    )
    .await;
    generate(app, &outsider_token, "outsider-secret").await;
    let foreign = share(
        &o,
        &file,
        json!({"recipientUserId": s(&outsider["user"], "id"), "permission": "read"}),
    )
    .await;
    assert_envelope(foreign, 404, "NOT_FOUND").await;

    let created = json_of(share(&o, &file, to_member(&o)).await, 201).await;
    let as_outsider = |method: Method, path: String| {
        let (app, token, globex) = (app, &outsider_token, s(&globex, "id"));
        async move {
            app.client
                .request(method, app.url(&path))
                .bearer_auth(token)
                .header("X-User-Secret", "outsider-secret")
                .header("X-Organization-Id", globex)
                .send()
                .await
                .unwrap()
        }
    };
    let shared = format!("/v1/files/shared/{}", s(&created, "shareId"));
    for (method, path) in [
        (Method::GET, shared.clone()),
        (Method::GET, format!("{shared}/download")),
        (Method::DELETE, shared.clone()),
        (Method::GET, format!("/v1/files/{file}/shares")),
        (
            Method::DELETE,
            format!("/v1/files/{file}/shares/{}", o.member_id),
        ),
    ] {
        let refused = as_outsider(method, path).await;
        assert_envelope(refused, 404, "NOT_FOUND").await;
    }
    let listed = json_of(
        as_outsider(Method::GET, "/v1/files/shared".to_owned()).await,
        200,
    )
    .await;
    assert_eq!(listed, json!([]));
    assert_eq!(as_member(&o, &shared).await.status(), 200);
}

#[tokio::test]
async fn a_flipped_byte_in_a_shares_envelope_is_a_403_and_the_share_is_left_out() {
    let o = org().await;
    let file = store_file(&o).await;
    let created = json_of(share(&o, &file, to_member(&o)).await, 201).await;
    let conn = rusqlite::Connection::open(o.app.data_dir.join("sealbox.db")).unwrap();
    let envelope: Vec<u8> = conn
        .query_row("SELECT envelope FROM shares", [], |r| r.get(0))
        .unwrap();
    let mut tampered = envelope.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    conn.execute(
        "UPDATE shares SET envelope = ?1",
        rusqlite::params![tampered],
    )
    .unwrap();
    let path = format!("/v1/files/shared/{}", s(&created, "shareId"));
    let error = assert_envelope(as_member(&o, &path).await, 403, "FORBIDDEN").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("can no longer be decrypted"),
        "{error}"
    );
    let link = as_member(&o, &format!("{path}/download")).await;
    assert_envelope(link, 403, "FORBIDDEN").await;
    let listed = json_of(as_member(&o, "/v1/files/shared").await, 200).await;
    assert_eq!(
        listed,
        json!([]),
        "shares the caller cannot open are left out"
    );
    assert_eq!(
        owner_view(&o, &file).await[0]["firstAccessUtc"],
        Value::Null
    );
    // Still active for the owner, so the recipient can remove it.
    let removed = call(&o.app, Method::DELETE, &path, &o.member, None, None).await;
    assert_eq!(removed.status(), 200);
}

#[tokio::test]
async fn api_keys_need_the_file_and_share_scopes() {
    let o = org().await;
    let app = &o.app;
    let file = store_file(&o).await;
    let key_with = |token: &str, scopes: Value| {
        let token = token.to_owned();
        async move {
            s(
                &json_of(
                    app.send_as(
                        Method::POST,
                        "/v1/api-keys",
                        &token,
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
    let path = format!("/v1/files/{file}/shares");
    let reader = key_with(&o.owner, json!(["files:read"])).await;
    let by_reader = call(
        app,
        Method::POST,
        &path,
        &reader,
        Some(OWNER_SECRET),
        Some(to_member(&o)),
    )
    .await;
    let error = assert_envelope(by_reader, 403, "FORBIDDEN").await;
    assert!(error["message"].as_str().unwrap().contains("shares:write"));

    let sharer = key_with(&o.owner, json!(["shares:write"])).await;
    let created = call(
        app,
        Method::POST,
        &path,
        &sharer,
        Some(OWNER_SECRET),
        Some(to_member(&o)),
    )
    .await;
    let created = json_of(created, 201).await;
    let list_by_sharer = call(app, Method::GET, &path, &sharer, None, None).await;
    let error = assert_envelope(list_by_sharer, 403, "FORBIDDEN").await;
    assert!(error["message"].as_str().unwrap().contains("files:read"));
    let listed = json_of(
        call(app, Method::GET, &path, &reader, None, None).await,
        200,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let revoke_path = format!("{path}/{}", o.member_id);
    let revoke_by_reader = call(app, Method::DELETE, &revoke_path, &reader, None, None).await;
    assert_envelope(revoke_by_reader, 403, "FORBIDDEN").await;

    // The recipient reads with files:read; shares:write alone does not read.
    let shared = format!("/v1/files/shared/{}", s(&created, "shareId"));
    let member_sharer = key_with(&o.member, json!(["shares:write"])).await;
    for route in ["/v1/files/shared", shared.as_str()] {
        let refused = call(
            app,
            Method::GET,
            route,
            &member_sharer,
            Some(MEMBER_SECRET),
            None,
        )
        .await;
        let error = assert_envelope(refused, 403, "FORBIDDEN").await;
        assert!(error["message"].as_str().unwrap().contains("files:read"));
    }
    let member_reader = key_with(&o.member, json!(["files:read"])).await;
    let read = call(
        app,
        Method::GET,
        &shared,
        &member_reader,
        Some(MEMBER_SECRET),
        None,
    )
    .await;
    assert_eq!(
        B64.decode(s(&json_of(read, 200).await, "contentB64"))
            .unwrap(),
        CONTENT
    );

    let revoked = call(app, Method::DELETE, &revoke_path, &sharer, None, None).await;
    assert_eq!(revoked.status(), 200);
}
