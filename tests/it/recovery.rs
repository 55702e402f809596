//! Recovery: material left with a trustee and handed back, a key restored from a recovery
//! secret and verified by the next rekey, and every refusal of the reference.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use sealbox::crypto::{
    Argon2Params, KEK_SALT_LEN, SealedSeed, UserSeed, derive_kek, open_seed, seal_seed,
};
use sealbox::ids::UserId;
use sealbox::service::recovery::{MAX_HINT_CHARS, MAX_SHARE_BYTES};
use serde_json::{Value, json};

use crate::support::{TestApp, assert_envelope, json_of, s};

/// The secret the owner generated keys with, and then forgot.
const FORGOTTEN: &str = "owner-secret-phrase";
/// The recovery secret the owner's client sealed the restored seed under.
const RECOVERY: &str = "recovery-secret-phrase";
/// The secret the owner chooses after recovering.
const NEW_SECRET: &str = "brand-new-secret-phrase";
const MEMBER_SECRET: &str = "member-secret-phrase";

/// Acme with its owner (keys under [`FORGOTTEN`], one KV secret) and a member with keys.
struct Team {
    app: TestApp,
    owner: String,
    owner_id: String,
    member: String,
    member_id: String,
    org: String,
}

async fn team() -> Team {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    let owner = s(&pair, "accessToken");
    let member_pair = app
        .invite_and_register(&owner, &org, "mia@example.com", "member")
        .await;
    let t = Team {
        owner_id: s(&pair["user"], "id"),
        member: s(&member_pair, "accessToken"),
        member_id: s(&member_pair["user"], "id"),
        app,
        owner,
        org,
    };
    generate(&t.app, &t.owner, FORGOTTEN).await;
    generate(&t.app, &t.member, MEMBER_SECRET).await;
    let stored = call(
        &t.app,
        Method::PUT,
        "/v1/kv/db-password",
        &t.owner,
        &[],
        Some(json!({"valueB64": B64.encode(b"hunter2")})),
    )
    .await;
    assert_eq!(stored.status(), 201);
    t
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn generate(app: &TestApp, token: &str, secret: &str) {
    let response = call(
        app,
        Method::POST,
        "/v1/keys/generate",
        token,
        &[("X-User-Secret", secret)],
        None,
    )
    .await;
    assert_eq!(response.status(), 201);
}

async fn read_kv(app: &TestApp, token: &str, secret: &str) -> reqwest::Response {
    call(
        app,
        Method::GET,
        "/v1/kv/db-password",
        token,
        &[("X-User-Secret", secret)],
        None,
    )
    .await
}

async fn rekey(app: &TestApp, token: &str, old: &str, new: &str) -> reqwest::Response {
    call(
        app,
        Method::POST,
        "/v1/keys/rekey",
        token,
        &[("X-User-Secret", old), ("X-New-User-Secret", new)],
        None,
    )
    .await
}

async fn put_trustee(app: &TestApp, token: &str, trustee: &str, body: Value) -> reqwest::Response {
    call(
        app,
        Method::PUT,
        &format!("/v1/recovery/trustees/{trustee}"),
        token,
        &[],
        Some(body),
    )
    .await
}

fn share_body(ecc: &[u8], kyber: &[u8]) -> Value {
    json!({
        "encryptedPrivateKeyEccShareB64": B64.encode(ecc),
        "encryptedPrivateKeyKyberShareB64": B64.encode(kyber),
        "xorApplied": true,
        "xorSaltHint": "dog-name",
    })
}

async fn restore(
    app: &TestApp,
    token: &str,
    owner: &str,
    ecc: &str,
    kyber: &str,
) -> reqwest::Response {
    call(
        app,
        Method::POST,
        &format!("/v1/recovery/restore/{owner}"),
        token,
        &[],
        Some(json!({
            "encryptedPrivateKeyEccB64": ecc,
            "encryptedPrivateKeyKyberB64": kyber,
            "usedXor": true,
            "xorSaltHint": "dog-name",
        })),
    )
    .await
}

async fn key_status(app: &TestApp, token: &str) -> Value {
    json_of(app.get_as("/v1/keys/status", token).await, 200).await
}

/// `seed` sealed the way a client seals a restored seed: under the KEK of `secret` with
/// the salt and costs that `GET /v1/keys/status` gives.
async fn seal_for_restore(
    app: &TestApp,
    token: &str,
    user: &str,
    seed: &UserSeed,
    secret: &str,
) -> String {
    let status = key_status(app, token).await;
    let salt: [u8; KEK_SALT_LEN] = B64
        .decode(s(&status, "kekSaltB64"))
        .unwrap()
        .try_into()
        .unwrap();
    let cost = |name: &str| u32::try_from(status["kekParams"][name].as_u64().unwrap()).unwrap();
    let params = Argon2Params {
        m_cost_kib: cost("mCostKib"),
        t_cost: cost("tCost"),
        p_cost: cost("pCost"),
    };
    let kek = derive_kek(secret.as_bytes(), &salt, &params).unwrap();
    let user: UserId = user.parse().unwrap();
    B64.encode(seal_seed(&kek, user, seed).as_bytes())
}

/// The seed a client exported while it still knew `secret`: opened from the stored row.
pub(crate) fn exported_seed(app: &TestApp, user: &str, secret: &str) -> UserSeed {
    let (sealed, salt, params): (Vec<u8>, Vec<u8>, String) = app
        .query(
            &format!(
                "SELECT sealed_seed, kek_salt, kek_params FROM user_keys WHERE user_id = '{user}'"
            ),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .pop()
        .unwrap();
    let params: Argon2Params = serde_json::from_str(&params).unwrap();
    let kek = derive_kek(secret.as_bytes(), &salt.try_into().unwrap(), &params).unwrap();
    open_seed(&kek, user.parse().unwrap(), &SealedSeed::from_bytes(sealed)).unwrap()
}

#[tokio::test]
async fn a_trustee_hands_material_back_and_a_restored_key_is_rekeyed() {
    let t = team().await;
    let app = &t.app;

    // The owner leaves material with a colleague; the server keeps it byte for byte.
    let (ecc, kyber) = (vec![0xA5u8; 300], vec![0x5Au8; 1200]);
    let created = json_of(
        put_trustee(app, &t.owner, &t.member_id, share_body(&ecc, &kyber)).await,
        201,
    )
    .await;
    assert_eq!(s(&created, "trusteeUserId"), t.member_id);
    assert_eq!(s(&created, "trusteeName"), "mia");
    assert_eq!(
        (created["xorApplied"].clone(), s(&created, "xorSaltHint")),
        (json!(true), "dog-name".to_owned())
    );
    let held = json_of(app.get_as("/v1/recovery/shares", &t.member).await, 200).await;
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    assert_eq!(s(&held[0], "ownerUserId"), t.owner_id);
    assert_eq!(s(&held[0], "ownerName"), "Ada Lovelace");
    assert_eq!(held[0]["xorApplied"], true);
    let material = json_of(
        app.get_as(&format!("/v1/recovery/shares/{}", t.owner_id), &t.member)
            .await,
        200,
    )
    .await;
    assert_eq!(
        B64.decode(s(&material, "encryptedPrivateKeyEccShareB64"))
            .unwrap(),
        ecc
    );
    assert_eq!(
        B64.decode(s(&material, "encryptedPrivateKeyKyberShareB64"))
            .unwrap(),
        kyber
    );
    assert_eq!(s(&material, "ownerUserId"), t.owner_id);

    // A second PUT replaces the material: 200, same creation time.
    let updated = json_of(
        put_trustee(
            app,
            &t.owner,
            &t.member_id,
            share_body(b"second", b"shares"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["createdUtc"], created["createdUtc"]);
    let trustees = json_of(app.get_as("/v1/recovery/trustees", &t.owner).await, 200).await;
    assert_eq!(trustees.as_array().unwrap().len(), 1, "{trustees}");
    assert_eq!(s(&trustees[0], "trusteeUserId"), t.member_id);
    assert_eq!(s(&trustees[0], "trusteeName"), "mia");
    let material = json_of(
        app.get_as(&format!("/v1/recovery/shares/{}", t.owner_id), &t.member)
            .await,
        200,
    )
    .await;
    assert_eq!(
        B64.decode(s(&material, "encryptedPrivateKeyEccShareB64"))
            .unwrap(),
        b"second"
    );

    // The owner forgets the secret. Their client had exported the seed while it knew it,
    // and now seals it under a recovery secret with what the status gives.
    let stored_salt: Vec<Vec<u8>> = app.query("SELECT kek_salt FROM user_keys", |r| r.get(0));
    let status = key_status(app, &t.owner).await;
    assert!(stored_salt.contains(&B64.decode(s(&status, "kekSaltB64")).unwrap()));
    assert_eq!(
        status["kekParams"]["mCostKib"],
        Argon2Params::default().m_cost_kib
    );
    let seed = exported_seed(app, &t.owner_id, FORGOTTEN);
    let sealed = seal_for_restore(app, &t.owner, &t.owner_id, &seed, RECOVERY).await;
    let restored = json_of(
        restore(app, &t.owner, &t.owner_id, &sealed, &sealed).await,
        200,
    )
    .await;
    assert_eq!(restored, json!({"requiresRekey": true}));
    assert_eq!(key_status(app, &t.owner).await["requiresRekey"], true);

    // The recovery secret opens nothing but the rekey; the rekey makes the new secret work.
    assert_envelope(read_kv(app, &t.owner, RECOVERY).await, 401, "UNAUTHORIZED").await;
    assert_eq!(
        rekey(app, &t.owner, RECOVERY, NEW_SECRET).await.status(),
        204
    );
    let value = json_of(read_kv(app, &t.owner, NEW_SECRET).await, 200).await;
    assert_eq!(B64.decode(s(&value, "valueB64")).unwrap(), b"hunter2");
    for old in [FORGOTTEN, RECOVERY] {
        assert_envelope(read_kv(app, &t.owner, old).await, 401, "UNAUTHORIZED").await;
    }
    assert_eq!(key_status(app, &t.owner).await["requiresRekey"], false);

    // The owner removes the trustee, who then holds nothing.
    let removed = call(
        app,
        Method::DELETE,
        &format!("/v1/recovery/trustees/{}", t.member_id),
        &t.owner,
        &[],
        None,
    )
    .await;
    assert_eq!(removed.status(), 204);
    let held = json_of(app.get_as("/v1/recovery/shares", &t.member).await, 200).await;
    assert_eq!(held, json!([]));

    // Every write is in the audit log and the outbox, without the material.
    let audit: Vec<(String, String, String)> = app.query(
        "SELECT action, org_id, details FROM audit_log WHERE action LIKE 'recovery.%' ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    );
    let actions: Vec<&str> = audit.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "recovery.trustee_added",
            "recovery.trustee_updated",
            "recovery.restored",
            "recovery.trustee_removed"
        ]
    );
    let events: Vec<(String, String)> = app.query(
        "SELECT type, data FROM outbox_events WHERE type LIKE 'recovery.%' ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "recovery.trustee_added",
            "recovery.restored",
            "recovery.trustee_removed"
        ]
    );
    assert!(audit.iter().all(|(_, org, _)| *org == t.org));
    let recorded: String = audit
        .iter()
        .map(|(_, _, d)| d.as_str())
        .chain(events.iter().map(|(_, d)| d.as_str()))
        .collect();
    for material in [
        B64.encode(&ecc),
        B64.encode(&kyber),
        B64.encode(b"second"),
        sealed,
    ] {
        assert!(!recorded.contains(&material), "material in the journal");
    }
    assert!(!recorded.contains("dog-name"), "hint in the journal");
}

#[tokio::test]
async fn a_restored_seed_that_does_not_match_is_refused_and_loses_nothing() {
    let t = team().await;
    let app = &t.app;
    let stranger = UserSeed::generate();
    let sealed = seal_for_restore(app, &t.owner, &t.owner_id, &stranger, RECOVERY).await;
    let restored = restore(app, &t.owner, &t.owner_id, &sealed, &sealed).await;
    assert_eq!(restored.status(), 200);

    let refused = assert_envelope(
        rekey(app, &t.owner, RECOVERY, NEW_SECRET).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{refused}"
    );
    let value = json_of(read_kv(app, &t.owner, FORGOTTEN).await, 200).await;
    assert_eq!(B64.decode(s(&value, "valueB64")).unwrap(), b"hunter2");
    assert_envelope(
        read_kv(app, &t.owner, NEW_SECRET).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    // Rekeying with the secret that still works clears the bad restore.
    assert_eq!(
        rekey(app, &t.owner, FORGOTTEN, NEW_SECRET).await.status(),
        204
    );
    assert_eq!(key_status(app, &t.owner).await["requiresRekey"], false);
}

#[tokio::test]
async fn recovery_refuses_what_the_reference_refuses() {
    let t = team().await;
    let app = &t.app;
    let ok = share_body(b"ecc", b"kyber");

    // Trustees: unknown, malformed, yourself, in another organization.
    for nobody in ["00000000-0000-0000-0000-000000000000", "not-a-user"] {
        assert_envelope(
            put_trustee(app, &t.owner, nobody, ok.clone()).await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    assert_envelope(
        put_trustee(app, &t.owner, &t.owner_id, ok.clone()).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    let outsider = app
        .invite_and_register(&t.owner, &t.org, "out@example.com", "member")
        .await;
    let outsider_token = s(&outsider, "accessToken");
    let outsider_id = s(&outsider["user"], "id");
    // The outsider founds Globex, then leaves Acme.
    json_of(
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
    let gone = app
        .send_as(
            Method::DELETE,
            &format!("/v1/organizations/{}/members/{outsider_id}", t.org),
            &t.owner,
            None,
            None,
        )
        .await;
    assert!(gone.status().is_success());
    assert_envelope(
        put_trustee(app, &t.owner, &outsider_id, ok.clone()).await,
        404,
        "NOT_FOUND",
    )
    .await;

    // The material: base64, size, hint length.
    let bad_b64 = json!({
        "encryptedPrivateKeyEccShareB64": "not base64!",
        "encryptedPrivateKeyKyberShareB64": "AAAA",
        "xorApplied": false,
    });
    assert_envelope(
        put_trustee(app, &t.owner, &t.member_id, bad_b64).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    let oversized = share_body(&vec![0; MAX_SHARE_BYTES + 1], b"kyber");
    assert_envelope(
        put_trustee(app, &t.owner, &t.member_id, oversized).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    let at_limit = share_body(&vec![0; MAX_SHARE_BYTES], &vec![0; MAX_SHARE_BYTES]);
    assert_eq!(
        put_trustee(app, &t.owner, &t.member_id, at_limit)
            .await
            .status(),
        201
    );
    let mut long_hint = ok.clone();
    long_hint["xorSaltHint"] = json!("x".repeat(MAX_HINT_CHARS + 1));
    assert_envelope(
        put_trustee(app, &t.owner, &t.member_id, long_hint).await,
        422,
        "VALIDATION",
    )
    .await;

    // Without key material: no trustee, no restore.
    let keyless = app
        .invite_and_register(&t.owner, &t.org, "kim@example.com", "member")
        .await;
    let keyless_token = s(&keyless, "accessToken");
    let keyless_id = s(&keyless["user"], "id");
    let error = assert_envelope(
        put_trustee(app, &keyless_token, &t.member_id, ok.clone()).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("key material"),
        "{error}"
    );
    let any_seal = B64.encode([1u8; 61]);
    assert_envelope(
        restore(app, &keyless_token, &keyless_id, &any_seal, &any_seal).await,
        400,
        "BAD_REQUEST",
    )
    .await;

    // Restores: someone else's, mismatched halves, not base64, not a sealed seed.
    assert_envelope(
        restore(app, &t.owner, &t.member_id, &any_seal, &any_seal).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let other_seal = B64.encode([2u8; 61]);
    assert_envelope(
        restore(app, &t.owner, &t.owner_id, &any_seal, &other_seal).await,
        400,
        "BAD_REQUEST",
    )
    .await;
    assert_envelope(
        restore(app, &t.owner, &t.owner_id, "%%%", "%%%").await,
        400,
        "BAD_REQUEST",
    )
    .await;
    for wrong in [B64.encode([1u8; 60]), B64.encode([9u8; 61])] {
        assert_envelope(
            restore(app, &t.owner, &t.owner_id, &wrong, &wrong).await,
            400,
            "BAD_REQUEST",
        )
        .await;
    }
    assert_eq!(key_status(app, &t.owner).await["requiresRekey"], false);

    // Shares: only a trustee sees them, and only in that organization.
    let not_trustee = app
        .get_as(
            &format!("/v1/recovery/shares/{}", t.owner_id),
            &keyless_token,
        )
        .await;
    assert_envelope(not_trustee, 404, "NOT_FOUND").await;
    assert_eq!(
        json_of(app.get_as("/v1/recovery/shares", &keyless_token).await, 200).await,
        json!([])
    );
    let initech = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &t.member,
            Some(&json!({"name": "Initech"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let in_initech = s(&initech, "id");
    let held_there = call(
        app,
        Method::GET,
        "/v1/recovery/shares",
        &t.member,
        &[("X-Organization-Id", &in_initech)],
        None,
    )
    .await;
    assert_eq!(json_of(held_there, 200).await, json!([]));
    let material_there = call(
        app,
        Method::GET,
        &format!("/v1/recovery/shares/{}", t.owner_id),
        &t.member,
        &[("X-Organization-Id", &in_initech)],
        None,
    )
    .await;
    assert_envelope(material_there, 404, "NOT_FOUND").await;

    // Deleting a trustee that is not one.
    let unknown = call(
        app,
        Method::DELETE,
        &format!("/v1/recovery/trustees/{keyless_id}"),
        &t.owner,
        &[],
        None,
    )
    .await;
    assert_envelope(unknown, 404, "NOT_FOUND").await;

    // API keys: writes need keys:write.
    let owner = &t.owner;
    let key_with = |scopes: Value| async move {
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
    };
    let reader = key_with(json!(["kv:read"])).await;
    let error = assert_envelope(
        put_trustee(app, &reader, &t.member_id, ok.clone()).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("keys:write"),
        "{error}"
    );
    assert_eq!(
        json_of(app.get_as("/v1/recovery/trustees", &reader).await, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let writer = key_with(json!(["keys:write"])).await;
    assert_eq!(
        put_trustee(app, &writer, &t.member_id, ok).await.status(),
        200
    );
}
