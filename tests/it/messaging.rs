//! Messaging (issue 19): devices and key bundles, chats, messages with per-device
//! envelopes, the per-device event stream, self-destruct; every route's bad paths; and
//! the Python end-to-end client (tests/messaging/client.py) against the real server.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s, venv_python};

/// One signed-in user acting as one of their devices.
#[derive(Clone)]
struct Peer {
    token: String,
    user: String,
    device: String,
}

fn key(byte: u8, len: usize) -> String {
    B64.encode(vec![byte; len])
}

fn bundle(name: &str, prekeys: usize) -> Value {
    json!({
        "name": name,
        "identityKey": {"alg": "ed25519", "publicKey": key(1, 32)},
        "signedPreKey": {"keyId": 1, "alg": "x25519", "publicKey": key(2, 32),
                         "signature": key(3, 64)},
        "oneTimePreKeys": (1..=prekeys)
            .map(|i| json!({"keyId": i, "alg": "x25519", "publicKey": key(i as u8, 32)}))
            .collect::<Vec<_>>(),
    })
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    device: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(device) = device {
        request = request.header("X-Device-Id", device);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

impl Peer {
    async fn go(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        call(app, method, path, &self.token, Some(&self.device), body).await
    }

    /// Another device of the same user.
    async fn second_device(&self, app: &TestApp, name: &str) -> Peer {
        let device = json_of(
            call(
                app,
                Method::POST,
                "/v1/devices",
                &self.token,
                None,
                Some(bundle(name, 2)),
            )
            .await,
            201,
        )
        .await;
        Peer {
            device: s(&device, "id"),
            ..self.clone()
        }
    }
}

async fn user_id(app: &TestApp, token: &str) -> String {
    s(
        &json_of(app.get_as("/v1/me", token).await, 200).await["user"],
        "id",
    )
}

async fn peer(app: &TestApp, token: String, name: &str) -> Peer {
    let user = user_id(app, &token).await;
    let device = json_of(
        call(
            app,
            Method::POST,
            "/v1/devices",
            &token,
            None,
            Some(bundle(name, 3)),
        )
        .await,
        201,
    )
    .await;
    Peer {
        token,
        user,
        device: s(&device, "id"),
    }
}

/// Acme with Ada (owner) and Bob (member), a device each; the org id.
async fn acme() -> (TestApp, Peer, Peer, String) {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    let ada = s(&pair, "accessToken");
    let bob = app
        .invite_and_register(&ada, &org, "bob@example.com", "member")
        .await;
    let ada = peer(&app, ada, "Ada's laptop").await;
    let bob = peer(&app, s(&bob, "accessToken"), "Bob's phone").await;
    (app, ada, bob, org)
}

async fn direct_chat(app: &TestApp, from: &Peer, to: &Peer) -> String {
    let chat = json_of(
        from.go(
            app,
            Method::POST,
            "/v1/chats",
            Some(json!({"memberIds": [to.user]})),
        )
        .await,
        201,
    )
    .await;
    s(&chat, "id")
}

fn envelopes(devices: &[&str]) -> Value {
    devices
        .iter()
        .map(|d| json!({"deviceId": d, "header": key(9, 48)}))
        .collect()
}

fn message(chat: &str, devices: &[&str]) -> Value {
    json!({"chatId": chat, "contentType": "text/plain", "ciphertext": key(7, 100),
           "envelopes": envelopes(devices)})
}

fn detail_ids(error: &Value, path: &str) -> Vec<String> {
    let mut ids: Vec<String> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["path"] == path)
        .map(|d| s(d, "message"))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn devices_register_list_and_remove_and_a_removed_device_is_401() {
    let (app, ada, _bob, _) = acme().await;
    let listed = json_of(ada.go(&app, Method::GET, "/v1/devices", None).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], ada.device.as_str());
    assert_eq!(listed[0]["oneTimePreKeysLeft"], 3);
    assert_eq!(listed[0]["identityKey"]["alg"], "ed25519");
    assert_eq!(listed[0]["signedPreKey"]["signature"], key(3, 64).as_str());

    // Bad bundles: every problem named, 422.
    let mut bad = bundle("x", 0);
    bad["identityKey"]["alg"] = json!("rsa-2048");
    bad["signedPreKey"]["publicKey"] = json!(key(2, 31));
    bad["signedPreKey"]["signature"] = json!("not base64!!");
    let error = assert_envelope(
        call(
            &app,
            Method::POST,
            "/v1/devices",
            &ada.token,
            None,
            Some(bad),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    let paths: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "identityKey.alg",
            "signedPreKey.publicKey",
            "signedPreKey.signature"
        ]
    );
    let error = assert_envelope(
        call(
            &app,
            Method::POST,
            "/v1/devices",
            &ada.token,
            None,
            Some(bundle("many", 101)),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(error["details"][0]["path"], "oneTimePreKeys");
    // An X-Wing pre-key has its own size.
    let mut xwing = bundle("pq", 0);
    xwing["signedPreKey"]["alg"] = json!("x-wing");
    xwing["signedPreKey"]["publicKey"] = json!(key(4, 1216));
    json_of(
        call(
            &app,
            Method::POST,
            "/v1/devices",
            &ada.token,
            None,
            Some(xwing),
        )
        .await,
        201,
    )
    .await;

    // Remove: 204, audited, evented (ids only), and the id is 401 from the next call on.
    let second = ada.second_device(&app, "tablet").await;
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v1/devices/{}", second.device),
            &ada.token,
            None,
            None
        )
        .await
        .status(),
        204
    );
    assert_envelope(
        second.go(&app, Method::GET, "/v1/chats", None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        second.go(&app, Method::GET, "/v1/devices", None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_envelope(
        call(
            &app,
            Method::DELETE,
            &format!("/v1/devices/{}", second.device),
            &ada.token,
            None,
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let audit: Vec<String> = app.query(
        &format!(
            "SELECT action FROM audit_log WHERE target_id = '{}' ORDER BY seq",
            second.device
        ),
        |r| r.get(0),
    );
    assert_eq!(audit, ["device.registered", "device.removed"]);
    let events: Vec<String> = app.query(
        "SELECT data FROM outbox_events WHERE type = 'device.removed'",
        |r| r.get(0),
    );
    assert_eq!(events.len(), 1);
    let data: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(data, json!({"deviceId": second.device, "userId": ada.user}));
    // Chats need a device; a malformed one is 401 like a removed one.
    assert_envelope(
        call(&app, Method::GET, "/v1/chats", &ada.token, None, None).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_envelope(
        call(
            &app,
            Method::GET,
            "/v1/chats",
            &ada.token,
            Some("nope"),
            None,
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    // Another user's device is not the caller's.
    let bob_device = json_of(
        call(&app, Method::GET, "/v1/devices", &_bob.token, None, None).await,
        200,
    )
    .await;
    assert_envelope(
        call(
            &app,
            Method::GET,
            "/v1/chats",
            &ada.token,
            Some(&s(&bob_device[0], "id")),
            None,
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn one_time_pre_keys_are_claimed_once_even_concurrently_and_strangers_are_404() {
    let (app, ada, bob, _) = acme().await;
    let path = format!("/v1/users/{}/devices", bob.user);
    let first = json_of(ada.go(&app, Method::GET, &path, None).await, 200).await;
    assert_eq!(first[0]["id"], bob.device.as_str());
    assert_eq!(first[0]["oneTimePreKey"]["keyId"], 1);
    assert!(first[0].get("oneTimePreKeysLeft").is_none());
    // Ten callers at once share the two keys left: each key goes to exactly one.
    let claims =
        futures_util::future::join_all((0..10).map(|_| ada.go(&app, Method::GET, &path, None)))
            .await;
    let mut keys = Vec::new();
    for claim in claims {
        let body = json_of(claim, 200).await;
        if let Some(id) = body[0]["oneTimePreKey"]["keyId"].as_i64() {
            keys.push(id);
        }
    }
    keys.sort();
    assert_eq!(keys, [2, 3]);
    let left = json_of(bob.go(&app, Method::GET, "/v1/devices", None).await, 200).await;
    assert_eq!(left[0]["oneTimePreKeysLeft"], 0);
    // Unknown user, malformed id: 404.
    for path in [
        format!("/v1/users/{}/devices", uuid_like()),
        "/v1/users/nope/devices".to_owned(),
    ] {
        assert_envelope(
            ada.go(&app, Method::GET, &path, None).await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
}

fn uuid_like() -> String {
    "0193a1f0-6d14-7e2b-8c35-41a9f7d2e603".to_owned()
}

/// Carol, who belongs to another organization only.
async fn outsider(app: &TestApp, ada: &Peer) -> Peer {
    let globex = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &ada.token,
            Some(&json!({"name": "Globex"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let globex = s(&globex, "id");
    let carol = app
        .invite_and_register(&ada.token, &globex, "carol@example.com", "member")
        .await;
    peer(app, s(&carol, "accessToken"), "Carol's phone").await
}

#[tokio::test]
async fn chats_one_to_one_and_groups_with_members_of_the_same_organization_only() {
    let (app, ada, bob, org) = acme().await;
    let dan = app
        .invite_and_register(&ada.token, &org, "dan@example.com", "member")
        .await;
    let dan = peer(&app, s(&dan, "accessToken"), "Dan's phone").await;
    let carol = outsider(&app, &ada).await;

    let chat = direct_chat(&app, &ada, &bob).await;
    // The same pair again: the existing chat, 200.
    let again = json_of(
        bob.go(
            &app,
            Method::POST,
            "/v1/chats",
            Some(json!({"type": "direct", "memberIds": [ada.user]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["id"], chat.as_str());
    let got = json_of(
        bob.go(&app, Method::GET, &format!("/v1/chats/{chat}"), None)
            .await,
        200,
    )
    .await;
    let participants = got["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    for p in participants {
        let devices = p["deviceIds"].as_array().unwrap();
        let expected = if p["userId"] == ada.user.as_str() {
            &ada.device
        } else {
            &bob.device
        };
        assert_eq!(devices, &vec![json!(expected)]);
    }
    // A user of another organization, or nobody: 404. Bad shapes: 422.
    for members in [json!([carol.user]), json!([uuid_like()])] {
        assert_envelope(
            ada.go(
                &app,
                Method::POST,
                "/v1/chats",
                Some(json!({"memberIds": members})),
            )
            .await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    for body in [
        json!({"type": "group", "memberIds": [bob.user]}),
        json!({"memberIds": [bob.user, dan.user]}),
        json!({"type": "party", "memberIds": [bob.user]}),
        json!({"memberIds": ["nope"]}),
    ] {
        assert_envelope(
            ada.go(&app, Method::POST, "/v1/chats", Some(body)).await,
            422,
            "VALIDATION",
        )
        .await;
    }
    // Dan is not in the chat: 404 for everything about it.
    for (method, path) in [
        (Method::GET, format!("/v1/chats/{chat}")),
        (Method::GET, format!("/v1/chats/{chat}/messages")),
    ] {
        assert_envelope(dan.go(&app, method, &path, None).await, 404, "NOT_FOUND").await;
    }
    assert_envelope(
        dan.go(
            &app,
            Method::POST,
            "/v1/messages",
            Some(message(&chat, &[&ada.device, &bob.device])),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;

    // A group: the owner adds and removes; a member may only leave.
    let group = json_of(
        ada.go(
            &app,
            Method::POST,
            "/v1/chats",
            Some(json!({"type": "group", "name": "Ops", "memberIds": [bob.user]})),
        )
        .await,
        201,
    )
    .await;
    let group = s(&group, "id");
    let members = format!("/v1/chats/{group}/members");
    let added = json_of(
        ada.go(
            &app,
            Method::POST,
            &members,
            Some(json!({"userId": dan.user})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(added["participants"].as_array().unwrap().len(), 3);
    assert_envelope(
        ada.go(
            &app,
            Method::POST,
            &members,
            Some(json!({"userId": dan.user})),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert_envelope(
        ada.go(
            &app,
            Method::POST,
            &members,
            Some(json!({"userId": carol.user})),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(
        bob.go(
            &app,
            Method::DELETE,
            &format!("{members}/{}", dan.user),
            None,
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        bob.go(
            &app,
            Method::DELETE,
            &format!("{members}/{}", bob.user),
            None
        )
        .await
        .status(),
        204
    );
    assert_envelope(
        bob.go(&app, Method::GET, &format!("/v1/chats/{group}"), None)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(
        ada.go(
            &app,
            Method::DELETE,
            &format!("{members}/{}", dan.user),
            None
        )
        .await
        .status(),
        204
    );
    assert_envelope(
        ada.go(
            &app,
            Method::POST,
            &format!("/v1/chats/{chat}/members"),
            Some(json!({"userId": dan.user})),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    let audit: Vec<(String, String)> = app.query(
        &format!("SELECT action, details FROM audit_log WHERE target_id = '{group}' ORDER BY seq"),
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "chat.created",
            "chat.member_added",
            "chat.member_removed",
            "chat.member_removed"
        ]
    );
    assert!(
        audit[2].1.contains("left") && audit[3].1.contains("removed"),
        "{audit:?}"
    );
    let types: Vec<String> = app.query(
        "SELECT type FROM outbox_events WHERE type LIKE 'chat.%' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(
        types,
        [
            "chat.created",
            "chat.created",
            "chat.member_added",
            "chat.member_removed",
            "chat.member_removed"
        ]
    );
    // The listing: most recent first, unread counts.
    let chats = json_of(bob.go(&app, Method::GET, "/v1/chats", None).await, 200).await;
    assert_eq!(chats.as_array().unwrap().len(), 1);
    assert_eq!(chats[0]["unreadCount"], 0);
}

#[tokio::test]
async fn envelopes_must_cover_exactly_the_chats_devices_and_bad_input_is_422() {
    let (app, ada, bob, _) = acme().await;
    let chat = direct_chat(&app, &ada, &bob).await;
    let ada2 = ada.second_device(&app, "Ada's phone").await;
    // Missing Ada's other device and Bob's, with a stranger's id: 409 naming both lists.
    let stranger = uuid_like();
    let error = assert_envelope(
        ada.go(
            &app,
            Method::POST,
            "/v1/messages",
            Some(message(&chat, &[&stranger])),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    let mut missing = vec![ada2.device.clone(), bob.device.clone()];
    missing.sort();
    assert_eq!(detail_ids(&error, "missing"), missing);
    assert_eq!(detail_ids(&error, "extra"), [stranger.as_str()]);
    // Exactly the others' devices (the sender's own envelope optional): 201.
    let sent = json_of(
        ada.go(
            &app,
            Method::POST,
            "/v1/messages",
            Some(message(&chat, &[&ada2.device, &bob.device])),
        )
        .await,
        201,
    )
    .await;
    assert!(sent["envelopes"].as_array().unwrap().is_empty());
    let with_own = json_of(
        ada.go(
            &app,
            Method::POST,
            "/v1/messages",
            Some(message(&chat, &[&ada.device, &ada2.device, &bob.device])),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(with_own["envelopes"][0]["deviceId"], ada.device.as_str());

    // Bad input: 422 naming the field.
    let big = B64.encode(vec![0u8; 64 * 1024 + 1]);
    for (body, path) in [
        (
            json!({"chatId": chat, "contentType": "text/plain", "ciphertext": big, "envelopes": envelopes(&[&bob.device])}),
            "ciphertext",
        ),
        (
            json!({"chatId": chat, "contentType": "text/plain", "ciphertext": "%%%", "envelopes": envelopes(&[&bob.device])}),
            "ciphertext",
        ),
        (
            json!({"chatId": chat, "contentType": "text/plain", "ciphertext": key(1, 8),
                "envelopes": [{"deviceId": bob.device, "header": B64.encode(vec![0u8; 4097])}]}),
            "envelopes[0].header",
        ),
        (
            json!({"chatId": chat, "contentType": "text/plain", "ciphertext": key(1, 8),
                "envelopes": [{"deviceId": bob.device, "header": "***"}]}),
            "envelopes[0].header",
        ),
        (
            json!({"chatId": chat, "contentType": "text/plain", "ciphertext": key(1, 8), "envelopes": []}),
            "envelopes",
        ),
        (
            json!({"chatId": "nope", "contentType": "text/plain", "ciphertext": key(1, 8), "envelopes": envelopes(&[&bob.device])}),
            "chatId",
        ),
        (
            json!({"chatId": chat, "contentType": "", "ciphertext": key(1, 8), "envelopes": envelopes(&[&bob.device])}),
            "contentType",
        ),
        (
            json!({"chatId": chat, "contentType": "text/plain", "ciphertext": key(1, 8), "envelopes": envelopes(&[&bob.device]),
                "expiresAt": "2001-01-01T00:00:00Z"}),
            "expiresAt",
        ),
        (
            json!({"chatId": chat, "contentType": "text/plain", "ciphertext": key(1, 8),
                "envelopes": envelopes(&[&bob.device, &bob.device])}),
            "envelopes[1].deviceId",
        ),
    ] {
        let error = assert_envelope(
            ada.go(&app, Method::POST, "/v1/messages", Some(body)).await,
            422,
            "VALIDATION",
        )
        .await;
        assert_eq!(error["details"][0]["path"], path, "{error}");
    }
    // A missing field is the JSON extractor's 422 too, in the envelope.
    assert_envelope(
        ada.go(
            &app,
            Method::POST,
            "/v1/messages",
            Some(json!({"chatId": chat})),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    // Nothing refused was stored.
    let stored: Vec<i64> = app.query("SELECT COUNT(*) FROM messages", |r| r.get(0));
    assert_eq!(stored, [2]);
}

#[tokio::test]
async fn lists_edits_deletes_and_reactions_follow_the_rules() {
    let (app, ada, bob, _) = acme().await;
    let chat = direct_chat(&app, &ada, &bob).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let sent = json_of(
            ada.go(
                &app,
                Method::POST,
                "/v1/messages",
                Some(message(&chat, &[&bob.device])),
            )
            .await,
            201,
        )
        .await;
        ids.push(s(&sent, "id"));
    }
    let chats = json_of(bob.go(&app, Method::GET, "/v1/chats", None).await, 200).await;
    assert_eq!(chats[0]["unreadCount"], 3);
    assert!(chats[0]["lastMessageAt"].is_string());
    // Newest first, two per page, the Link to the older page, each with Bob's envelope.
    let page = bob
        .go(
            &app,
            Method::GET,
            &format!("/v1/chats/{chat}/messages?limit=2"),
            None,
        )
        .await;
    let link = page
        .headers()
        .get("link")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let page = json_of(page, 200).await;
    assert_eq!(
        page.as_array()
            .unwrap()
            .iter()
            .map(|m| s(m, "id"))
            .collect::<Vec<_>>(),
        [ids[2].clone(), ids[1].clone()]
    );
    assert_eq!(
        page[0]["envelopes"],
        json!([{"deviceId": bob.device, "header": key(9, 48)}])
    );
    assert!(link.contains(&format!("before={}", ids[1])), "{link}");
    let older = json_of(
        bob.go(
            &app,
            Method::GET,
            &format!("/v1/chats/{chat}/messages?limit=2&before={}", ids[1]),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(older.as_array().unwrap().len(), 1);
    assert_eq!(older[0]["id"], ids[0].as_str());
    let chats = json_of(bob.go(&app, Method::GET, "/v1/chats", None).await, 200).await;
    assert_eq!(
        chats[0]["unreadCount"], 0,
        "reading the newest page marks the chat read"
    );
    assert_envelope(
        bob.go(
            &app,
            Method::GET,
            &format!("/v1/chats/{chat}/messages?before={}", uuid_like()),
            None,
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;

    // Bob may not edit or delete Ada's message.
    let path = format!("/v1/messages/{}", ids[0]);
    let edit = json!({"ciphertext": key(8, 50), "envelopes": envelopes(&[&bob.device])});
    assert_envelope(
        bob.go(&app, Method::PATCH, &path, Some(edit.clone())).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_envelope(
        bob.go(&app, Method::DELETE, &path, None).await,
        403,
        "FORBIDDEN",
    )
    .await;
    // Ada's edit follows the envelope rule, then replaces ciphertext and envelopes.
    assert_envelope(
        ada.go(
            &app,
            Method::PATCH,
            &path,
            Some(json!({"ciphertext": key(8, 50), "envelopes": envelopes(&[&ada.device])})),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    let edited = json_of(ada.go(&app, Method::PATCH, &path, Some(edit)).await, 200).await;
    assert!(edited["editedAt"].is_string());
    assert_eq!(edited["ciphertext"], key(8, 50).as_str());
    assert_eq!(edited["contentType"], "text/plain");

    // Reactions: one per user, toggled, counted.
    let react = format!("/v1/messages/{}/reactions", ids[1]);
    let r = json_of(
        bob.go(&app, Method::POST, &react, Some(json!({"emoji": "👍"})))
            .await,
        200,
    )
    .await;
    assert_eq!(
        r["reactions"],
        json!([{"emoji": "👍", "count": 1, "mine": true}])
    );
    let r = json_of(
        ada.go(&app, Method::POST, &react, Some(json!({"emoji": "👍"})))
            .await,
        200,
    )
    .await;
    assert_eq!(
        r["reactions"],
        json!([{"emoji": "👍", "count": 2, "mine": true}])
    );
    let r = json_of(
        bob.go(&app, Method::POST, &react, Some(json!({"emoji": "🎉"})))
            .await,
        200,
    )
    .await;
    assert_eq!(r["reactions"].as_array().unwrap().len(), 2);
    let r = json_of(
        bob.go(&app, Method::POST, &react, Some(json!({"emoji": "🎉"})))
            .await,
        200,
    )
    .await;
    assert_eq!(
        r["reactions"],
        json!([{"emoji": "👍", "count": 1, "mine": false}])
    );
    assert_envelope(
        bob.go(
            &app,
            Method::POST,
            &react,
            Some(json!({"emoji": "x".repeat(33)})),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;

    // Delete: a tombstone for everyone; ciphertext and envelopes gone from the database.
    assert_eq!(
        ada.go(&app, Method::DELETE, &path, None).await.status(),
        204
    );
    let list = json_of(
        bob.go(
            &app,
            Method::GET,
            &format!("/v1/chats/{chat}/messages"),
            None,
        )
        .await,
        200,
    )
    .await;
    let tombstone = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(tombstone["deleted"], true);
    assert!(tombstone.get("ciphertext").is_none() && tombstone["envelopes"] == json!([]));
    let row: Vec<(Option<String>, i64)> = app.query(
        &format!("SELECT ciphertext, (SELECT COUNT(*) FROM message_envelopes WHERE message_id = id) FROM messages WHERE id = '{}'", ids[0]),
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert_eq!(row, [(None, 0)]);
    assert_envelope(
        ada.go(
            &app,
            Method::PATCH,
            &path,
            Some(json!({"ciphertext": key(1, 5), "envelopes": envelopes(&[&bob.device])})),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    // Webhook events carry ids, never ciphertext.
    let data: Vec<String> = app.query(
        "SELECT data FROM outbox_events WHERE type LIKE 'message.%'",
        |r| r.get(0),
    );
    assert_eq!(data.len(), 5);
    for d in data {
        assert!(
            !d.contains(&key(7, 100)) && !d.contains(&key(8, 50)) && !d.contains(&key(9, 48)),
            "{d}"
        );
    }
}

#[tokio::test]
async fn scopes_limit_keys_and_idempotency_keys_replay_a_send() {
    let (app, ada, bob, _) = acme().await;
    let chat = direct_chat(&app, &ada, &bob).await;
    let read_only = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &ada.token,
            Some(&json!({"name": "reader", "scopes": ["messages:read"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let read_only = s(&read_only, "key");
    let as_key = |method: Method, path: &str, body: Option<Value>| {
        let mut r = app
            .client
            .request(method, app.url(path))
            .header("X-Api-Key", &read_only)
            .header("X-Device-Id", &ada.device);
        if let Some(body) = body {
            r = r.json(&body);
        }
        r.send()
    };
    json_of(as_key(Method::GET, "/v1/chats", None).await.unwrap(), 200).await;
    let error = assert_envelope(
        as_key(
            Method::POST,
            "/v1/messages",
            Some(message(&chat, &[&bob.device])),
        )
        .await
        .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(s(&error, "message").contains("messages:write"));
    assert_envelope(
        as_key(Method::POST, "/v1/devices", Some(bundle("k", 0)))
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    let no_messages = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &ada.token,
            Some(&json!({"name": "files", "scopes": ["files:read"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let response = app
        .client
        .get(app.url("/v1/chats"))
        .header("X-Api-Key", s(&no_messages, "key"))
        .header("X-Device-Id", &ada.device)
        .send()
        .await
        .unwrap();
    assert_envelope(response, 403, "FORBIDDEN").await;

    // The same Idempotency-Key: the first answer replayed, one message stored.
    let send = || {
        app.client
            .post(app.url("/v1/messages"))
            .bearer_auth(&ada.token)
            .header("X-Device-Id", &ada.device)
            .header("Idempotency-Key", "9f1c2b7e-3a4d-4f8a-9c2e-1b0d5e6f7a8b")
            .json(&message(&chat, &[&bob.device]))
            .send()
    };
    let first = json_of(send().await.unwrap(), 201).await;
    let again = send().await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again = json_of(again, 201).await;
    assert_eq!(first["id"], again["id"]);
    let count: Vec<i64> = app.query("SELECT COUNT(*) FROM messages", |r| r.get(0));
    assert_eq!(count, [1]);
}

/// A reader of one device's Server-Sent Events.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
struct SseEvent {
    id: i64,
    event: String,
    data: Value,
}

impl Sse {
    async fn open(app: &TestApp, peer: &Peer, last: Option<i64>) -> Sse {
        let mut request = app
            .client
            .get(app.url("/v1/stream"))
            .bearer_auth(&peer.token)
            .header("X-Device-Id", &peer.device);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (skipping keep-alive comments), or `None` when the stream ended
    /// or nothing came within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    }
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    }
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                match id {
                    Some(id) => {
                        return Some(SseEvent {
                            id,
                            event,
                            data: serde_json::from_str(&data).unwrap(),
                        });
                    }
                    None => continue,
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Whether the server closed the stream within `wait`.
    async fn ended(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
        false
    }
}

#[tokio::test]
async fn the_stream_delivers_at_once_resumes_without_gap_or_duplicate_and_ends_for_a_removed_device()
 {
    let (app, ada, bob, _) = acme().await;
    let chat = direct_chat(&app, &ada, &bob).await;
    // Bob has no stream open: one notification for the chat (ids only), not one per message.
    for _ in 0..2 {
        json_of(
            ada.go(
                &app,
                Method::POST,
                "/v1/messages",
                Some(message(&chat, &[&bob.device])),
            )
            .await,
            201,
        )
        .await;
    }
    let notes = json_of(
        call(
            &app,
            Method::GET,
            "/v1/notifications",
            &bob.token,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    let notes: Vec<&Value> = notes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "message.created")
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["data"]["chatId"], chat.as_str());
    assert!(!notes[0].to_string().contains(&key(7, 100)));
    let mut stream = Sse::open(&app, &bob, None).await;
    let started = Instant::now();
    let sent = json_of(
        ada.go(
            &app,
            Method::POST,
            "/v1/messages",
            Some(message(&chat, &[&bob.device])),
        )
        .await,
        201,
    )
    .await;
    let event = stream.next(Duration::from_secs(5)).await.expect("an event");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(event.event, "message.created");
    assert_eq!(event.data["message"]["id"], sent["id"]);
    assert_eq!(
        event.data["message"]["envelopes"],
        json!([{"deviceId": bob.device, "header": key(9, 48)}])
    );
    assert_eq!(event.data["message"]["ciphertext"], key(7, 100).as_str());
    let seen = event.id;
    drop(stream);

    // While Bob is away: two messages and a reaction; he resumes from the last id seen.
    let mut sent_ids = Vec::new();
    for _ in 0..2 {
        let m = json_of(
            ada.go(
                &app,
                Method::POST,
                "/v1/messages",
                Some(message(&chat, &[&bob.device])),
            )
            .await,
            201,
        )
        .await;
        sent_ids.push(s(&m, "id"));
    }
    json_of(
        ada.go(
            &app,
            Method::POST,
            &format!("/v1/messages/{}/reactions", sent_ids[0]),
            Some(json!({"emoji": "👍"})),
        )
        .await,
        200,
    )
    .await;
    let mut stream = Sse::open(&app, &bob, Some(seen)).await;
    let mut got = Vec::new();
    while let Some(e) = stream.next(Duration::from_millis(700)).await {
        got.push(e);
    }
    let ids: Vec<i64> = got.iter().map(|e| e.id).collect();
    assert_eq!(ids, [seen + 1, seen + 2, seen + 3], "{got:?}");
    assert_eq!(got[0].data["message"]["id"], sent_ids[0].as_str());
    assert_eq!(got[1].data["message"]["id"], sent_ids[1].as_str());
    assert_eq!(got[2].event, "message.reaction");
    // A bad Last-Event-ID: 422.
    let bad = app
        .client
        .get(app.url("/v1/stream"))
        .bearer_auth(&bob.token)
        .header("X-Device-Id", &bob.device)
        .header("Last-Event-ID", "99999")
        .send()
        .await
        .unwrap();
    assert_envelope(bad, 422, "VALIDATION").await;

    // Removing the device ends its stream at once, and it is 401 from then on.
    let removed = Instant::now();
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/v1/devices/{}", bob.device),
            &bob.token,
            None,
            None
        )
        .await
        .status(),
        204
    );
    assert!(
        stream.ended(Duration::from_secs(3)).await,
        "the stream ended"
    );
    assert!(removed.elapsed() < Duration::from_secs(2));
    let again = app
        .client
        .get(app.url("/v1/stream"))
        .bearer_auth(&bob.token)
        .header("X-Device-Id", &bob.device)
        .send()
        .await
        .unwrap();
    assert_envelope(again, 401, "UNAUTHORIZED").await;
    // Its envelopes are gone, and a message now needs none for it.
    let left: Vec<i64> = app.query(
        &format!(
            "SELECT COUNT(*) FROM message_envelopes WHERE device_id = '{}'",
            bob.device
        ),
        |r| r.get(0),
    );
    assert_eq!(left, [0]);
    let error = assert_envelope(
        ada.go(
            &app,
            Method::POST,
            "/v1/messages",
            Some(message(&chat, &[&bob.device])),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(detail_ids(&error, "extra"), [bob.device.as_str()]);
}

#[tokio::test]
async fn a_revoked_session_or_key_ends_its_open_stream() {
    let (app, _ada, bob, _) = acme().await;
    // A stream on Bob's session, and one on an API key of his (same device).
    let key = json_of(
        call(
            &app,
            Method::POST,
            "/v1/api-keys",
            &bob.token,
            None,
            Some(json!({"name": "bot", "scopes": ["messages:read"]})),
        )
        .await,
        201,
    )
    .await;
    let by_key = Peer {
        token: s(&key, "key"),
        user: bob.user.clone(),
        device: bob.device.clone(),
    };
    let mut on_session = Sse::open(&app, &bob, None).await;
    let mut on_key = Sse::open(&app, &by_key, None).await;
    assert!(!on_session.ended(Duration::from_millis(300)).await);

    // Bob signs out this session (from another one): its stream ends within the
    // recheck interval, the key's goes on.
    let other = app
        .login("bob@example.com", crate::support::MEMBER_PASSWORD)
        .await;
    let other = s(&other, "accessToken");
    let sessions = json_of(
        call(&app, Method::GET, "/v1/sessions", &other, None, None).await,
        200,
    )
    .await;
    let first = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["current"] == false)
        .expect("the stream's session");
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/v1/sessions/{}", s(first, "id")),
        &other,
        None,
        None,
    )
    .await;
    assert_eq!(revoked.status(), 204);
    let wait = sealbox::service::messaging::stream::RECHECK + Duration::from_secs(3);
    assert!(
        on_session.ended(wait).await,
        "the revoked session's stream ended"
    );
    assert!(!on_key.ended(Duration::from_millis(300)).await);

    // Revoking the key ends the other.
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/v1/api-keys/{}", s(&key, "id")),
        &other,
        None,
        None,
    )
    .await;
    assert_eq!(revoked.status(), 204);
    assert!(on_key.ended(wait).await, "the revoked key's stream ended");
}

#[tokio::test]
async fn the_stream_caps_open_connections_per_device() {
    let (app, _ada, bob, _) = acme().await;
    let mut open = Vec::new();
    for _ in 0..sealbox::service::messaging::limits::MAX_STREAMS_PER_DEVICE {
        open.push(Sse::open(&app, &bob, None).await);
    }
    let refused = app
        .client
        .get(app.url("/v1/stream"))
        .bearer_auth(&bob.token)
        .header("X-Device-Id", &bob.device)
        .send()
        .await
        .unwrap();
    assert_envelope(refused, 429, "RATE_LIMITED").await;
    drop(open);
    // Places free up when clients leave (the server sees a closed connection when it
    // next writes to it, at the latest with the keep-alive).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app
            .client
            .get(app.url("/v1/stream"))
            .bearer_auth(&bob.token)
            .header("X-Device-Id", &bob.device)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_self_destructing_message_is_gone_within_seconds_of_its_time() {
    let (app, ada, bob, _) = acme().await;
    let chat = direct_chat(&app, &ada, &bob).await;
    let mut stream = Sse::open(&app, &bob, None).await;
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let mut body = message(&chat, &[&bob.device]);
    body["expiresAt"] = json!(
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let sent = json_of(
        ada.go(&app, Method::POST, "/v1/messages", Some(body)).await,
        201,
    )
    .await;
    let id = s(&sent, "id");
    assert!(sent["expiresAt"].is_string());
    assert_eq!(
        stream.next(Duration::from_secs(3)).await.unwrap().event,
        "message.created"
    );
    let gone = stream
        .next(Duration::from_secs(6))
        .await
        .expect("the expiry event");
    assert_eq!(gone.event, "message.deleted");
    assert_eq!(
        gone.data,
        json!({"messageId": id, "chatId": chat, "reason": "expired"})
    );
    assert!(time::OffsetDateTime::now_utc() - at < time::Duration::seconds(3));
    let rows: Vec<i64> = app.query(
        &format!("SELECT COUNT(*) FROM messages WHERE id = '{id}'"),
        |r| r.get(0),
    );
    assert_eq!(rows, [0]);
    let envelopes: Vec<i64> = app.query(
        &format!("SELECT COUNT(*) FROM message_envelopes WHERE message_id = '{id}'"),
        |r| r.get(0),
    );
    assert_eq!(envelopes, [0]);
    let list = json_of(
        bob.go(
            &app,
            Method::GET,
            &format!("/v1/chats/{chat}/messages"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(list, json!([]));
    let events: Vec<String> = app.query(
        "SELECT data FROM outbox_events WHERE type = 'message.deleted'",
        |r| r.get(0),
    );
    assert!(events[0].contains("expired"));
}

/// The "done when": the Python client (cryptography's X25519, HKDF and AES-GCM)
/// drives three, then four devices of two users through the real server.
#[tokio::test]
async fn the_python_client_exchanges_end_to_end_encrypted_messages() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    let ada = s(&pair, "accessToken");
    let bob = app
        .invite_and_register(&ada, &org, "bob@example.com", "member")
        .await;
    let (ada, bob) = (
        Peer {
            token: ada,
            user: String::new(),
            device: String::new(),
        },
        Peer {
            token: s(&bob, "accessToken"),
            user: String::new(),
            device: String::new(),
        },
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messaging/client.py");
    let (base, ada_token, bob_token, data) = (
        app.base.clone(),
        ada.token.clone(),
        bob.token.clone(),
        app.data_dir.clone(),
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(venv_python())
            .arg(script)
            .arg(base)
            .arg(ada_token)
            .arg(bob_token)
            .arg(data)
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ALL CHECKS PASSED"), "{stdout}\n{stderr}");
}

/// A one-time pre-key body for a top-up.
fn prekeys(ids: impl IntoIterator<Item = i64>) -> Value {
    json!({"oneTimePreKeys": ids
        .into_iter()
        .map(|i| json!({"keyId": i, "alg": "x25519", "publicKey": key(i as u8, 32)}))
        .collect::<Vec<_>>()})
}

/// The key id `claimer` got from one claim of `owner`'s first device, if any.
async fn claim(app: &TestApp, claimer: &Peer, owner: &Peer) -> Option<i64> {
    let path = format!("/v1/users/{}/devices", owner.user);
    json_of(claimer.go(app, Method::GET, &path, None).await, 200).await[0]["oneTimePreKey"]["keyId"]
        .as_i64()
}

#[tokio::test]
async fn a_device_tops_up_its_one_time_pre_keys_and_claims_hand_each_out_once() {
    let (app, ada, bob, _) = acme().await;
    let carol = outsider(&app, &ada).await;
    let top_up = format!("/v1/devices/{}/prekeys", bob.device);
    for expected in [Some(1), Some(2), Some(3), None] {
        assert_eq!(claim(&app, &ada, &bob).await, expected);
    }
    let listed = json_of(bob.go(&app, Method::GET, "/v1/devices", None).await, 200).await;
    assert_eq!(listed[0]["oneTimePreKeysLeft"], 0);

    // The owner tops up; the count says so, and the claim hands the new keys out.
    let device = json_of(
        bob.go(&app, Method::POST, &top_up, Some(prekeys([4, 5])))
            .await,
        200,
    )
    .await;
    assert_eq!(device["id"], bob.device.as_str());
    assert_eq!(device["oneTimePreKeysLeft"], 2);
    assert_eq!(claim(&app, &ada, &bob).await, Some(4));
    let listed = json_of(bob.go(&app, Method::GET, "/v1/devices", None).await, 200).await;
    assert_eq!(listed[0]["oneTimePreKeysLeft"], 1);
    assert_eq!(claim(&app, &ada, &bob).await, Some(5));
    assert_eq!(claim(&app, &ada, &bob).await, None);

    // Ten topped-up keys, twenty callers at once: each key goes to exactly one.
    json_of(
        bob.go(&app, Method::POST, &top_up, Some(prekeys(6..=15)))
            .await,
        200,
    )
    .await;
    let claims = futures_util::future::join_all((0..20).map(|_| claim(&app, &ada, &bob))).await;
    let mut keys: Vec<i64> = claims.into_iter().flatten().collect();
    keys.sort();
    assert_eq!(keys, (6..=15).collect::<Vec<_>>());

    // A key id the device had claimed, or holds now: 409, naming it.
    let error = assert_envelope(
        bob.go(&app, Method::POST, &top_up, Some(prekeys([1, 40])))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    assert!(s(&error, "message").contains(" 1 "), "{error}");
    json_of(
        bob.go(&app, Method::POST, &top_up, Some(prekeys([30])))
            .await,
        200,
    )
    .await;
    let error = assert_envelope(
        bob.go(&app, Method::POST, &top_up, Some(prekeys([31, 30])))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    assert!(s(&error, "message").contains("30"), "{error}");
    // Nothing of a refused top-up is kept: 31 is still free.
    let device = json_of(
        bob.go(&app, Method::POST, &top_up, Some(prekeys([31])))
            .await,
        200,
    )
    .await;
    assert_eq!(device["oneTimePreKeysLeft"], 2);

    // Malformed: 422 naming each problem.
    let mut bad = prekeys([50, 50, 51, 52, 53]);
    bad["oneTimePreKeys"][2]["publicKey"] = json!("not base64!!");
    bad["oneTimePreKeys"][3]["publicKey"] = json!(key(1, 31));
    bad["oneTimePreKeys"][4]["alg"] = json!("rsa");
    let error = assert_envelope(
        bob.go(&app, Method::POST, &top_up, Some(bad)).await,
        422,
        "VALIDATION",
    )
    .await;
    let mut paths: Vec<String> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(d, "path"))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "oneTimePreKeys[1].keyId",
            "oneTimePreKeys[2].publicKey",
            "oneTimePreKeys[3].publicKey",
            "oneTimePreKeys[4].alg"
        ]
    );
    for body in [
        prekeys(Vec::new()),
        prekeys(100..=200),
        prekeys([-1]),
        prekeys([1 << 32]),
    ] {
        assert_envelope(
            bob.go(&app, Method::POST, &top_up, Some(body)).await,
            422,
            "VALIDATION",
        )
        .await;
    }
    // At most 200 unclaimed keys held: 2 + 100 + 100 is one too many.
    json_of(
        bob.go(&app, Method::POST, &top_up, Some(prekeys(100..200)))
            .await,
        200,
    )
    .await;
    assert_envelope(
        bob.go(&app, Method::POST, &top_up, Some(prekeys(200..300)))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    let listed = json_of(bob.go(&app, Method::GET, "/v1/devices", None).await, 200).await;
    assert_eq!(listed[0]["oneTimePreKeysLeft"], 102);

    // Only the owner: Ada on Bob's device, Carol from another organization, a malformed
    // or unknown device id, a removed device: 404, and nothing is added.
    for (who, path) in [
        (&ada, top_up.clone()),
        (&carol, top_up.clone()),
        (&bob, "/v1/devices/nope/prekeys".to_owned()),
        (&bob, format!("/v1/devices/{}/prekeys", uuid_like())),
    ] {
        assert_envelope(
            who.go(&app, Method::POST, &path, Some(prekeys([500])))
                .await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    let spare = bob.second_device(&app, "Bob's tablet").await;
    assert_eq!(
        bob.go(
            &app,
            Method::DELETE,
            &format!("/v1/devices/{}", spare.device),
            None
        )
        .await
        .status(),
        204
    );
    assert_envelope(
        bob.go(
            &app,
            Method::POST,
            &format!("/v1/devices/{}/prekeys", spare.device),
            Some(prekeys([500])),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let listed = json_of(bob.go(&app, Method::GET, "/v1/devices", None).await, 200).await;
    assert_eq!(listed[0]["oneTimePreKeysLeft"], 102);
}

/// Asks for a download link of `file` as `who`; the response as is.
async fn download_link(app: &TestApp, who: &Peer, file: &str) -> reqwest::Response {
    who.go(
        app,
        Method::GET,
        &format!("/v1/files/{file}/download"),
        None,
    )
    .await
}

/// Downloads `file` as `who` through its link: the bytes served.
async fn download(app: &TestApp, who: &Peer, file: &str) -> Vec<u8> {
    let link = json_of(download_link(app, who, file).await, 200).await;
    let got = app.client.get(s(&link, "url")).send().await.unwrap();
    assert_eq!(got.status(), 200);
    got.bytes().await.unwrap().to_vec()
}

async fn group_chat(app: &TestApp, owner: &Peer, members: &[&Peer]) -> String {
    let ids: Vec<&str> = members.iter().map(|m| m.user.as_str()).collect();
    let chat = json_of(
        owner
            .go(
                app,
                Method::POST,
                "/v1/chats",
                Some(json!({"type": "group", "name": "Files", "memberIds": ids})),
            )
            .await,
        201,
    )
    .await;
    s(&chat, "id")
}

/// Sends a message into `chat` sealed to `devices`, naming `files`: the response.
async fn send_with(
    app: &TestApp,
    from: &Peer,
    chat: &str,
    devices: &[&str],
    files: Value,
) -> reqwest::Response {
    let mut body = message(chat, devices);
    body["attachments"] = files;
    from.go(app, Method::POST, "/v1/messages", Some(body)).await
}

async fn member_of(app: &TestApp, ada: &Peer, org: &str, email: &str) -> Peer {
    let pair = app
        .invite_and_register(&ada.token, org, email, "member")
        .await;
    peer(app, s(&pair, "accessToken"), email).await
}

#[tokio::test]
async fn files_named_in_messages_download_for_participants_only_while_the_message_lives() {
    let (app, ada, bob, org) = acme().await;
    let dan = member_of(&app, &ada, &org, "dan@example.com").await;
    let eve = member_of(&app, &ada, &org, "eve@example.com").await;
    let carol = outsider(&app, &ada).await;
    // End-to-end encrypted bytes, as a client would upload them.
    let sealed: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
    let file = app
        .upload_file(&ada.token, "report.enc", &sealed, "client")
        .await;
    let eves = app
        .upload_file(&eve.token, "eve.enc", b"eve's", "client")
        .await;
    let chat = group_chat(&app, &ada, &[&bob, &dan]).await;
    let others = [bob.device.as_str(), dan.device.as_str()];

    // Nobody but Ada can download the file before a message names it.
    for who in [&bob, &dan, &eve] {
        assert_envelope(download_link(&app, who, &file).await, 404, "NOT_FOUND").await;
    }
    let sent = json_of(
        send_with(&app, &ada, &chat, &others, json!([file])).await,
        201,
    )
    .await;
    assert_eq!(sent["attachments"], json!([file]));
    let id = s(&sent, "id");
    let listed = json_of(
        bob.go(
            &app,
            Method::GET,
            &format!("/v1/chats/{chat}/messages"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(listed[0]["attachments"], json!([file]));
    // Participants get the bytes exactly as uploaded: ciphertext the server never opened.
    assert_eq!(download(&app, &bob, &file).await, sealed);
    assert_eq!(download(&app, &dan, &file).await, sealed);
    // Not a participant, another organization (in its own or in Acme): 404.
    assert_envelope(download_link(&app, &eve, &file).await, 404, "NOT_FOUND").await;
    assert_envelope(download_link(&app, &carol, &file).await, 404, "NOT_FOUND").await;
    let in_acme = app
        .client
        .get(app.url(&format!("/v1/files/{file}/download")))
        .bearer_auth(&carol.token)
        .header("X-Organization-Id", &org)
        .send()
        .await
        .unwrap();
    assert_envelope(in_acme, 404, "NOT_FOUND").await;

    // The attack: naming a file one cannot read (Eve's) is 404 and gains nothing; no
    // message is stored.
    assert_envelope(
        send_with(
            &app,
            &bob,
            &chat,
            &[&ada.device, &dan.device],
            json!([eves]),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(download_link(&app, &bob, &eves).await, 404, "NOT_FOUND").await;
    let count: Vec<i64> = app.query(
        &format!("SELECT COUNT(*) FROM messages WHERE chat_id = '{chat}'"),
        |r| r.get(0),
    );
    assert_eq!(count, [1]);
    // Bad attachment lists: 422. A file sealbox encrypted: 422 (only its owner opens it).
    app.generate_keys(&ada.token, "ada-secret-phrase").await;
    let server_side = app
        .upload_file(&ada.token, "plain.txt", b"plain", "server")
        .await;
    for files in [
        json!(["nope"]),
        json!([file, file]),
        json!(vec![file.clone(); 11]),
        json!([server_side]),
    ] {
        assert_envelope(
            send_with(&app, &ada, &chat, &others, files).await,
            422,
            "VALIDATION",
        )
        .await;
    }

    // A participant who joins later does not see the message, nor its file.
    let frank = member_of(&app, &ada, &org, "frank@example.com").await;
    json_of(
        ada.go(
            &app,
            Method::POST,
            &format!("/v1/chats/{chat}/members"),
            Some(json!({"userId": frank.user})),
        )
        .await,
        200,
    )
    .await;
    assert_envelope(download_link(&app, &frank, &file).await, 404, "NOT_FOUND").await;

    // Forwarding: Bob can read the file, so he may name it in his chat with Eve.
    let with_eve = direct_chat(&app, &bob, &eve).await;
    let forwarded = json_of(
        send_with(&app, &bob, &with_eve, &[&eve.device], json!([file])).await,
        201,
    )
    .await;
    assert_eq!(download(&app, &eve, &file).await, sealed);
    assert_eq!(
        bob.go(
            &app,
            Method::DELETE,
            &format!("/v1/messages/{}", s(&forwarded, "id")),
            None
        )
        .await
        .status(),
        204
    );
    assert_envelope(download_link(&app, &eve, &file).await, 404, "NOT_FOUND").await;

    // A removed participant: 404, for new links and for the one issued before.
    let dans_link = s(
        &json_of(download_link(&app, &dan, &file).await, 200).await,
        "url",
    );
    assert_eq!(
        ada.go(
            &app,
            Method::DELETE,
            &format!("/v1/chats/{chat}/members/{}", dan.user),
            None
        )
        .await
        .status(),
        204
    );
    assert_envelope(download_link(&app, &dan, &file).await, 404, "NOT_FOUND").await;
    assert_eq!(
        app.client.get(&dans_link).send().await.unwrap().status(),
        404
    );
    // Nor may Dan pass it on any more: he cannot read it.
    let dan_eve = direct_chat(&app, &dan, &eve).await;
    assert_envelope(
        send_with(&app, &dan, &dan_eve, &[&eve.device], json!([file])).await,
        404,
        "NOT_FOUND",
    )
    .await;

    // An edit without `attachments` keeps them; with them, replaces them.
    let second = app
        .upload_file(&ada.token, "more.enc", b"more", "client")
        .await;
    let now = [bob.device.as_str(), frank.device.as_str()];
    let mut edit = message(&chat, &now);
    edit.as_object_mut().unwrap().remove("chatId");
    let edited = json_of(
        ada.go(
            &app,
            Method::PATCH,
            &format!("/v1/messages/{id}"),
            Some(edit.clone()),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(edited["attachments"], json!([file]));
    edit["attachments"] = json!([second, file]);
    let edited = json_of(
        ada.go(
            &app,
            Method::PATCH,
            &format!("/v1/messages/{id}"),
            Some(edit),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(edited["attachments"], json!([second, file]));
    assert_eq!(download(&app, &bob, &second).await, b"more");

    // Deleting the message ends the access, links included; the owner keeps hers.
    let bobs_link = s(
        &json_of(download_link(&app, &bob, &file).await, 200).await,
        "url",
    );
    assert_eq!(
        ada.go(&app, Method::DELETE, &format!("/v1/messages/{id}"), None)
            .await
            .status(),
        204
    );
    for f in [&file, &second] {
        assert_envelope(download_link(&app, &bob, f).await, 404, "NOT_FOUND").await;
    }
    assert_eq!(
        app.client.get(&bobs_link).send().await.unwrap().status(),
        404
    );
    assert_eq!(download(&app, &ada, &file).await, sealed);

    // A self-destructing message's files: downloadable until its time, then 404.
    let mut body = message(&chat, &now);
    body["attachments"] = json!([file]);
    body["expiresAt"] = json!(
        (time::OffsetDateTime::now_utc() + time::Duration::seconds(3))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    json_of(
        ada.go(&app, Method::POST, "/v1/messages", Some(body)).await,
        201,
    )
    .await;
    assert_eq!(download(&app, &bob, &file).await, sealed);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_envelope(download_link(&app, &bob, &file).await, 404, "NOT_FOUND").await;
    let attached = || -> Vec<i64> {
        app.query(
            &format!("SELECT COUNT(*) FROM message_attachments WHERE file_id = '{file}'"),
            |r| r.get(0),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while attached() != [0] && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        attached(),
        [0],
        "the sweeper deletes the message and its attachments"
    );
}
