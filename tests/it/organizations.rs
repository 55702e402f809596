//! Organizations, members, roles, teams, departments and invites: the rules of SPEC §4,
//! and tenant isolation checked route by route.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, MEMBER_PASSWORD, TestApp, assert_envelope, json_of, s};

/// An instance with the admin (owner of Acme) signed in: (app, admin token, Acme's id).
async fn acme() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    (app, s(&pair, "accessToken"), org)
}

#[tokio::test]
async fn organizations_are_created_listed_read_and_updated() {
    let (app, admin, acme) = acme().await;
    let created = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Analytical Engine Co", "slug": "analytical-engine"})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["slug"], "analytical-engine");
    assert_eq!(created["role"], "owner");
    assert_eq!(created["status"], "active");
    let engine = s(&created, "id");

    // Without a slug, one is derived from the name; a taken slug is a conflict.
    let derived = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Difference Engine!"})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(derived["slug"], "difference-engine");
    let taken = app
        .send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "X", "slug": "analytical-engine"})),
            None,
        )
        .await;
    assert_envelope(taken, 409, "CONFLICT").await;
    let bad = app
        .send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "  ", "slug": "Bad Slug"})),
            None,
        )
        .await;
    let error = assert_envelope(bad, 422, "VALIDATION").await;
    let paths: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"name") && paths.contains(&"slug"),
        "{error}"
    );

    let list = json_of(app.get_as("/v1/organizations", &admin).await, 200).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&acme.as_str()) && ids.contains(&engine.as_str()));

    let patched = json_of(
        app.send_as(
            Method::PATCH,
            &format!("/v1/organizations/{engine}"),
            &admin,
            Some(&json!({"name": "Engine Works", "settings": {"brandColor": "#0a7"}})),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["name"], "Engine Works");
    assert_eq!(patched["settings"]["brandColor"], "#0a7");
    let fetched = json_of(
        app.get_as(&format!("/v1/organizations/{engine}"), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(fetched["name"], "Engine Works");
    let not_object = app
        .send_as(
            Method::PATCH,
            &format!("/v1/organizations/{engine}"),
            &admin,
            Some(&json!({"settings": [1]})),
            None,
        )
        .await;
    assert_envelope(not_object, 422, "VALIDATION").await;
    let unknown = app
        .get_as(
            &format!("/v1/organizations/{}", uuid::Uuid::now_v7()),
            &admin,
        )
        .await;
    assert_envelope(unknown, 404, "NOT_FOUND").await;
    let garbage = app.get_as("/v1/organizations/not-an-id", &admin).await;
    assert_envelope(garbage, 404, "NOT_FOUND").await;

    let actions = app.query(
        "SELECT action FROM audit_log WHERE action LIKE 'organization.%' ORDER BY seq",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(
        actions,
        [
            "organization.created",
            "organization.created",
            "organization.created",
            "organization.updated"
        ]
    );
    let events = app.query(
        "SELECT count(*) FROM outbox_events WHERE type = 'organization.updated'",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(events, [1]);
}

#[tokio::test]
async fn registration_by_invite_joins_the_organization_with_the_invited_role() {
    let (app, admin, acme) = acme().await;
    // The default mode is "invite": no token, no account.
    let no_token = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "bob@example.com", "password": MEMBER_PASSWORD, "displayName": "Bob"}),
        )
        .await;
    let error = assert_envelope(no_token, 403, "FORBIDDEN").await;
    assert!(
        error["message"].as_str().unwrap().contains("inviteToken"),
        "{error}"
    );

    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "Bob@Example.com", "role": "auditor", "expiresInHours": 2})),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(invite["mailed"], false);
    assert_eq!(invite["role"], "auditor");
    let token = s(&invite, "token");
    assert!(s(&invite, "inviteUrl").ends_with(&format!("/invite?token={token}")));

    // For another address, the invite does not work, and no account is left behind.
    let wrong_email = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "eve@example.com", "password": MEMBER_PASSWORD, "displayName": "Eve", "inviteToken": token}),
        )
        .await;
    assert_envelope(wrong_email, 403, "FORBIDDEN").await;
    assert_eq!(
        app.query("SELECT count(*) FROM users", |r| r.get::<_, i64>(0)),
        [1]
    );

    let pair = json_of(
        app.post_json(
            "/v1/auth/register",
            &json!({"email": "bob@example.com", "password": MEMBER_PASSWORD, "displayName": "Bob", "inviteToken": token}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(pair["user"]["organizations"][0]["id"], acme.as_str());
    assert_eq!(pair["user"]["organizations"][0]["role"], "auditor");
    assert_eq!(pair["user"]["defaultOrganizationId"], acme.as_str());

    // Single use: the token is spent, and the email is taken.
    let again = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "bob2@example.com", "password": MEMBER_PASSWORD, "displayName": "Bob", "inviteToken": token}),
        )
        .await;
    assert_envelope(again, 401, "UNAUTHORIZED").await;
    let garbage = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "carol@example.com", "password": MEMBER_PASSWORD, "displayName": "C", "inviteToken": "nope"}),
        )
        .await;
    assert_envelope(garbage, 401, "UNAUTHORIZED").await;

    // An expired invite is refused.
    let late = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "late@example.com"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    conn.execute(
        "UPDATE invites SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
        [s(&late, "id")],
    )
    .unwrap();
    let expired = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "late@example.com", "password": MEMBER_PASSWORD, "displayName": "Late", "inviteToken": late["token"]}),
        )
        .await;
    assert_envelope(expired, 401, "UNAUTHORIZED").await;

    // Weak passwords and bad addresses are validation errors with paths.
    let fresh = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "x@example.com"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let weak = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "x@.", "password": "password123", "displayName": "X", "inviteToken": fresh["token"]}),
        )
        .await;
    let error = assert_envelope(weak, 422, "VALIDATION").await;
    let paths: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"email") && paths.contains(&"password"),
        "{error}"
    );

    // Inviting an existing member is a conflict; open invites can be listed and withdrawn.
    let member_again = app
        .send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "bob@example.com"})),
            None,
        )
        .await;
    assert_envelope(member_again, 409, "CONFLICT").await;
    let open = json_of(
        app.get_as(&format!("/v1/invites/{acme}"), &admin).await,
        200,
    )
    .await;
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .all(|i| i.get("token").is_none_or(Value::is_null))
    );
    let pending = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "dan@example.com"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let withdrawn = app
        .delete_as(&format!("/v1/invites/{acme}/{}", s(&pending, "id")), &admin)
        .await;
    assert_eq!(withdrawn.status(), 204);
    let after = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "dan@example.com", "password": MEMBER_PASSWORD, "displayName": "Dan", "inviteToken": pending["token"]}),
        )
        .await;
    assert_envelope(after, 401, "UNAUTHORIZED").await;

    let events = app.query(
        "SELECT type FROM outbox_events WHERE type LIKE 'invite.%' ORDER BY seq",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(events.iter().filter(|e| *e == "invite.created").count(), 4);
    assert_eq!(events.iter().filter(|e| *e == "invite.accepted").count(), 1);
}

#[tokio::test]
async fn registration_obeys_closed_and_open_modes() {
    let closed =
        TestApp::spawn_with(|c| c.auth.registration = sealbox::config::Registration::Closed).await;
    let refused = closed
        .post_json(
            "/v1/auth/register",
            &json!({"email": "bob@example.com", "password": MEMBER_PASSWORD, "displayName": "Bob", "inviteToken": "x"}),
        )
        .await;
    assert_envelope(refused, 403, "FORBIDDEN").await;

    let open =
        TestApp::spawn_with(|c| c.auth.registration = sealbox::config::Registration::Open).await;
    open.setup_admin().await;
    let pair = json_of(
        open.post_json(
            "/v1/auth/register",
            &json!({"email": "bob@example.com", "password": MEMBER_PASSWORD, "displayName": "Bob"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(pair["user"]["organizations"], json!([]));
    assert_eq!(pair["user"]["isInstanceAdmin"], false);
    let duplicate = open
        .post_json(
            "/v1/auth/register",
            &json!({"email": "BOB@example.com", "password": MEMBER_PASSWORD, "displayName": "Bob"}),
        )
        .await;
    assert_envelope(duplicate, 409, "CONFLICT").await;
    // Someone without an organization has nothing to act in until they create one.
    let bob = s(&pair, "accessToken");
    assert_envelope(open.get_as("/v1/roles", &bob).await, 404, "NOT_FOUND").await;
    json_of(
        open.send_as(
            Method::POST,
            "/v1/organizations",
            &bob,
            Some(&json!({"name": "Bob's"})),
            None,
        )
        .await,
        201,
    )
    .await;
    json_of(open.get_as("/v1/roles", &bob).await, 200).await;
}

#[tokio::test]
async fn a_signed_in_user_accepts_an_invite_into_a_second_organization() {
    let (app, admin, acme) = acme().await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let bob_token = s(&bob, "accessToken");
    let other = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Other"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let other_id = s(&other, "id");
    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{other_id}"),
            &admin,
            Some(&json!({"email": "bob@example.com", "role": "admin"})),
            None,
        )
        .await,
        201,
    )
    .await;
    // Before accepting, Bob cannot see the organization.
    assert_envelope(
        app.get_as(&format!("/v1/organizations/{other_id}"), &bob_token)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let accepted = json_of(
        app.send_as(
            Method::POST,
            "/v1/invites/accept",
            &bob_token,
            Some(&json!({"token": invite["token"]})),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        accepted,
        json!({"organizationId": other_id, "role": "admin"})
    );
    let fetched = json_of(
        app.get_as(&format!("/v1/organizations/{other_id}"), &bob_token)
            .await,
        200,
    )
    .await;
    assert_eq!(fetched["role"], "admin");
    // X-Organization-Id picks the organization a call acts in; the default stays Acme.
    let roles = app
        .send_as(
            Method::POST,
            "/v1/roles",
            &bob_token,
            Some(&json!({"name": "Ops", "permissions": ["org:read"]})),
            None,
        )
        .await;
    assert_envelope(roles, 403, "FORBIDDEN").await;
    json_of(
        app.send_as(
            Method::POST,
            "/v1/roles",
            &bob_token,
            Some(&json!({"name": "Ops", "permissions": ["org:read"]})),
            Some(&other_id),
        )
        .await,
        201,
    )
    .await;
    let malformed = app
        .send_as(
            Method::GET,
            "/v1/roles",
            &bob_token,
            None,
            Some("not-a-uuid"),
        )
        .await;
    assert_envelope(malformed, 400, "BAD_REQUEST").await;
    let reused = app
        .send_as(
            Method::POST,
            "/v1/invites/accept",
            &bob_token,
            Some(&json!({"token": invite["token"]})),
            None,
        )
        .await;
    assert_envelope(reused, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn member_changes_follow_the_role_ladder_and_keep_an_owner() {
    let (app, admin, acme) = acme().await;
    let admin_id = s(
        &app.login(ADMIN_EMAIL, crate::support::ADMIN_PASSWORD).await["user"],
        "id",
    );
    let carol = app
        .invite_and_register(&admin, &acme, "carol@example.com", "admin")
        .await;
    let carol_token = s(&carol, "accessToken");
    let bob = app
        .invite_and_register(&carol_token, &acme, "bob@example.com", "member")
        .await;
    let (bob_token, bob_id) = (s(&bob, "accessToken"), s(&bob["user"], "id"));
    let members_path = format!("/v1/organizations/{acme}/members");

    let members = json_of(app.get_as(&members_path, &bob_token).await, 200).await;
    let roles: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["owner", "admin", "member"]);

    let patch = |token: &str, user: &str, body: Value| {
        let (app, token, path) = (&app, token.to_owned(), format!("{members_path}/{user}"));
        async move {
            app.send_as(Method::PATCH, &path, &token, Some(&body), None)
                .await
        }
    };
    // A member cannot change members at all; an admin cannot make an owner, nor touch one.
    assert_envelope(
        patch(&bob_token, &bob_id, json!({"role": "admin"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let escalate = assert_envelope(
        patch(&carol_token, &bob_id, json!({"role": "owner"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        escalate["message"]
            .as_str()
            .unwrap()
            .contains("org:suspend"),
        "{escalate}"
    );
    assert_envelope(
        patch(&carol_token, &admin_id, json!({"role": "member"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_envelope(
        patch(&carol_token, &bob_id, json!({"role": "wizard"})).await,
        422,
        "VALIDATION",
    )
    .await;
    assert_envelope(
        patch(&carol_token, &bob_id, json!({"status": "gone"})).await,
        422,
        "VALIDATION",
    )
    .await;
    let unknown = patch(
        &carol_token,
        &uuid::Uuid::now_v7().to_string(),
        json!({"role": "member"}),
    )
    .await;
    assert_envelope(unknown, 404, "NOT_FOUND").await;

    // The last owner can be neither demoted, disabled nor removed.
    assert_envelope(
        patch(&admin, &admin_id, json!({"role": "admin"})).await,
        409,
        "CONFLICT",
    )
    .await;
    assert_envelope(
        patch(&admin, &admin_id, json!({"status": "disabled"})).await,
        409,
        "CONFLICT",
    )
    .await;
    assert_envelope(
        app.delete_as(&format!("{members_path}/{admin_id}"), &admin)
            .await,
        409,
        "CONFLICT",
    )
    .await;

    let changed = json_of(
        patch(&carol_token, &bob_id, json!({"role": "auditor"})).await,
        200,
    )
    .await;
    assert_eq!(changed["role"], "auditor");
    // A disabled member loses the organization on their next request.
    json_of(
        patch(&carol_token, &bob_id, json!({"status": "disabled"})).await,
        200,
    )
    .await;
    assert_envelope(
        app.get_as(&members_path, &bob_token).await,
        404,
        "NOT_FOUND",
    )
    .await;
    json_of(
        patch(&carol_token, &bob_id, json!({"status": "active"})).await,
        200,
    )
    .await;
    json_of(app.get_as(&members_path, &bob_token).await, 200).await;

    // With a second owner, the first may step down; members may leave on their own.
    let carol_id = s(&carol["user"], "id");
    json_of(
        patch(&admin, &carol_id, json!({"role": "owner"})).await,
        200,
    )
    .await;
    json_of(
        patch(&admin, &admin_id, json!({"role": "admin"})).await,
        200,
    )
    .await;
    assert_eq!(
        app.delete_as(&format!("{members_path}/{bob_id}"), &bob_token)
            .await
            .status(),
        204
    );
    assert_envelope(
        app.get_as(&members_path, &bob_token).await,
        404,
        "NOT_FOUND",
    )
    .await;

    let events = app.query(
        "SELECT type FROM outbox_events WHERE type LIKE 'member.%' ORDER BY seq",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "member.role_changed")
            .count(),
        3
    );
    assert_eq!(events.iter().filter(|e| *e == "member.removed").count(), 1);
    let statuses = app.query(
        "SELECT count(*) FROM audit_log WHERE action = 'member.status_changed'",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(statuses, [2]);
}

#[tokio::test]
async fn a_suspended_organization_refuses_every_call_on_its_behalf() {
    let (app, admin, acme) = acme().await;
    let carol = app
        .invite_and_register(&admin, &acme, "carol@example.com", "admin")
        .await;
    let carol_token = s(&carol, "accessToken");
    // Admins are not owners: suspension is the owners' call.
    let refused = app
        .send_as(
            Method::POST,
            &format!("/v1/organizations/{acme}/suspend"),
            &carol_token,
            None,
            None,
        )
        .await;
    assert_envelope(refused, 403, "FORBIDDEN").await;

    let suspended = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{acme}/suspend"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(suspended["status"], "suspended");
    for path in [
        format!("/v1/organizations/{acme}"),
        format!("/v1/organizations/{acme}/members"),
        "/v1/roles".to_owned(),
        "/v1/teams".to_owned(),
    ] {
        assert_envelope(app.get_as(&path, &carol_token).await, 403, "ORG_SUSPENDED").await;
    }
    let invite = app
        .send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "x@example.com"})),
            None,
        )
        .await;
    assert_envelope(invite, 403, "ORG_SUSPENDED").await;
    // The list of one's organizations still shows it, with its status.
    let mine = json_of(app.get_as("/v1/organizations", &carol_token).await, 200).await;
    assert_eq!(mine[0]["status"], "suspended");

    let unsuspended = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{acme}/unsuspend"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(unsuspended["status"], "active");
    json_of(app.get_as("/v1/roles", &carol_token).await, 200).await;

    // An instance admin may suspend an organization they are not a member of.
    let bobs = {
        let open_invite = app
            .invite_and_register(&admin, &acme, "bob@example.com", "member")
            .await;
        let bob = s(&open_invite, "accessToken");
        let org = json_of(
            app.send_as(
                Method::POST,
                "/v1/organizations",
                &bob,
                Some(&json!({"name": "Bob's"})),
                None,
            )
            .await,
            201,
        )
        .await;
        s(&org, "id")
    };
    let by_admin = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/organizations/{bobs}/suspend"),
            &admin,
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(by_admin["role"], Value::Null);
    let audit = app.query(
        "SELECT action FROM audit_log WHERE action LIKE 'organization.%suspended' ORDER BY seq",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(
        audit,
        [
            "organization.suspended",
            "organization.unsuspended",
            "organization.suspended"
        ]
    );
}

#[tokio::test]
async fn custom_roles_bind_permissions_and_cannot_exceed_their_author() {
    let (app, admin, acme) = acme().await;
    let permissions = json_of(app.get_as("/v1/permissions", &admin).await, 200).await;
    let keys: Vec<&str> = permissions
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"teams:write")
            && keys.contains(&"audit:read")
            && keys.contains(&"org:suspend")
    );
    assert!(
        permissions
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["description"].as_str().is_some_and(|d| !d.is_empty()))
    );

    let roles = json_of(app.get_as("/v1/roles", &admin).await, 200).await;
    let built_in: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(built_in, ["owner", "admin", "member", "auditor"]);

    let create = |token: &str, body: Value| {
        let (app, token) = (&app, token.to_owned());
        async move {
            app.send_as(Method::POST, "/v1/roles", &token, Some(&body), None)
                .await
        }
    };
    let unknown = assert_envelope(
        create(
            &admin,
            json!({"name": "Bad", "permissions": ["org:read", "org:delete"]}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(unknown["details"][0]["path"], "permissions[1]");
    assert_envelope(
        create(&admin, json!({"name": "Owner", "permissions": []})).await,
        422,
        "VALIDATION",
    )
    .await;

    let organizer = json_of(
        create(&admin, json!({"name": "Organizer", "description": "Runs teams", "permissions": ["org:read", "teams:write"]})).await,
        201,
    )
    .await;
    assert_eq!(organizer["builtIn"], false);
    assert_eq!(organizer["permissions"], json!(["org:read", "teams:write"]));
    let organizer_id = s(&organizer, "id");
    assert_envelope(
        create(&admin, json!({"name": "organizer", "permissions": []})).await,
        409,
        "CONFLICT",
    )
    .await;

    // An admin cannot create a role that can suspend the organization.
    let carol = app
        .invite_and_register(&admin, &acme, "carol@example.com", "admin")
        .await;
    let carol_token = s(&carol, "accessToken");
    assert_envelope(
        create(
            &carol_token,
            json!({"name": "Coup", "permissions": ["org:suspend"]}),
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;

    // A member with the custom role gets exactly its permissions.
    let dave = app
        .invite_and_register(&admin, &acme, "dave@example.com", &organizer_id)
        .await;
    let dave_token = s(&dave, "accessToken");
    json_of(
        app.send_as(
            Method::POST,
            "/v1/teams",
            &dave_token,
            Some(&json!({"name": "Platform"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let forbidden = app
        .send_as(
            Method::PATCH,
            &format!("/v1/organizations/{acme}"),
            &dave_token,
            Some(&json!({"name": "Dave Inc"})),
            None,
        )
        .await;
    let error = assert_envelope(forbidden, 403, "FORBIDDEN").await;
    assert!(
        error["message"].as_str().unwrap().contains("org:write"),
        "{error}"
    );

    // Changing the role changes what its holders may do, on their next request.
    json_of(
        app.send_as(
            Method::PATCH,
            &format!("/v1/roles/{organizer_id}"),
            &admin,
            Some(&json!({"permissions": ["org:read"]})),
            None,
        )
        .await,
        200,
    )
    .await;
    let now_refused = app
        .send_as(
            Method::POST,
            "/v1/teams",
            &dave_token,
            Some(&json!({"name": "Infra"})),
            None,
        )
        .await;
    assert_envelope(now_refused, 403, "FORBIDDEN").await;
    let fetched = json_of(
        app.get_as(&format!("/v1/roles/{organizer_id}"), &dave_token)
            .await,
        200,
    )
    .await;
    assert_eq!(fetched["permissions"], json!(["org:read"]));

    // Built-in roles are fixed; a held role cannot be deleted; an unheld one can.
    let builtin = app
        .send_as(
            Method::PATCH,
            "/v1/roles/admin",
            &admin,
            Some(&json!({"name": "Boss"})),
            None,
        )
        .await;
    assert_envelope(builtin, 403, "FORBIDDEN").await;
    assert_envelope(
        app.delete_as(&format!("/v1/roles/{organizer_id}"), &admin)
            .await,
        409,
        "CONFLICT",
    )
    .await;
    let dave_id = s(&dave["user"], "id");
    json_of(
        app.send_as(
            Method::PATCH,
            &format!("/v1/organizations/{acme}/members/{dave_id}"),
            &admin,
            Some(&json!({"role": "member"})),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        app.delete_as(&format!("/v1/roles/{organizer_id}"), &admin)
            .await
            .status(),
        204
    );
    assert_envelope(
        app.get_as(&format!("/v1/roles/{organizer_id}"), &admin)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;

    // An invite granting a role deleted meanwhile no longer lets anyone in.
    let temp = json_of(
        create(&admin, json!({"name": "Temp", "permissions": ["org:read"]})).await,
        201,
    )
    .await;
    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "erin@example.com", "role": temp["id"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let temp_path = format!("/v1/roles/{}", s(&temp, "id"));
    assert_eq!(app.delete_as(&temp_path, &admin).await.status(), 204);
    let late = app
        .post_json(
            "/v1/auth/register",
            &json!({"email": "erin@example.com", "password": MEMBER_PASSWORD,
                    "displayName": "Erin", "inviteToken": invite["token"]}),
        )
        .await;
    assert_envelope(late, 409, "CONFLICT").await;

    let audit = app.query(
        "SELECT action FROM audit_log WHERE action LIKE 'role.%' ORDER BY seq",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(
        audit,
        [
            "role.created",
            "role.updated",
            "role.deleted",
            "role.created",
            "role.deleted"
        ]
    );
}

#[tokio::test]
async fn teams_and_departments_group_members_of_the_organization() {
    let (app, admin, acme) = acme().await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    let bob_id = s(&bob["user"], "id");
    let admin_id = s(
        &app.login(ADMIN_EMAIL, crate::support::ADMIN_PASSWORD).await["user"],
        "id",
    );

    for (path, noun) in [("/v1/teams", "team"), ("/v1/departments", "department")] {
        let created = json_of(
            app.send_as(
                Method::POST,
                path,
                &admin,
                Some(&json!({"name": "Research", "memberIds": [bob_id, bob_id]})),
                None,
            )
            .await,
            201,
        )
        .await;
        assert_eq!(created["memberIds"], json!([bob_id]), "{noun}");
        assert_eq!(created["organizationId"], acme.as_str());
        let id = s(&created, "id");
        let item = format!("{path}/{id}");

        let duplicate = app
            .send_as(
                Method::POST,
                path,
                &admin,
                Some(&json!({"name": "research"})),
                None,
            )
            .await;
        assert_envelope(duplicate, 409, "CONFLICT").await;
        let stranger = app
            .send_as(
                Method::POST,
                path,
                &admin,
                Some(&json!({"name": "X", "memberIds": [uuid::Uuid::now_v7()]})),
                None,
            )
            .await;
        let error = assert_envelope(stranger, 422, "VALIDATION").await;
        assert_eq!(error["details"][0]["path"], "memberIds[0]");

        let patched = json_of(
            app.send_as(
                Method::PATCH,
                &item,
                &admin,
                Some(&json!({"description": "R&D", "memberIds": [admin_id]})),
                None,
            )
            .await,
            200,
        )
        .await;
        assert_eq!(patched["name"], "Research");
        assert_eq!(patched["description"], "R&D");
        assert_eq!(patched["memberIds"], json!([admin_id]));
        let listed = json_of(app.get_as(path, &admin).await, 200).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        // Members read; only those with teams:write change.
        json_of(app.get_as(&item, &s(&bob, "accessToken")).await, 200).await;
        let refused = app
            .send_as(Method::DELETE, &item, &s(&bob, "accessToken"), None, None)
            .await;
        assert_envelope(refused, 403, "FORBIDDEN").await;
        assert_eq!(app.delete_as(&item, &admin).await.status(), 204);
        assert_envelope(app.get_as(&item, &admin).await, 404, "NOT_FOUND").await;
    }
    // A team and a department of the same name are different things.
    json_of(
        app.send_as(
            Method::POST,
            "/v1/teams",
            &admin,
            Some(&json!({"name": "Ops"})),
            None,
        )
        .await,
        201,
    )
    .await;
    json_of(
        app.send_as(
            Method::POST,
            "/v1/departments",
            &admin,
            Some(&json!({"name": "Ops"})),
            None,
        )
        .await,
        201,
    )
    .await;
}

#[tokio::test]
async fn profile_updates_and_password_change_sign_out_other_sessions() {
    let (app, admin, acme) = acme().await;
    let other_session = app.login(ADMIN_EMAIL, crate::support::ADMIN_PASSWORD).await;
    let patch = |body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.send_as(Method::PATCH, "/v1/users/me", &admin, Some(&body), None)
                .await
        }
    };
    let updated = json_of(
        patch(json!({"displayName": "Ada King", "avatarUrl": "https://example.com/ada.png", "preferences": {"theme": "dark"}})).await,
        200,
    )
    .await;
    assert_eq!(updated["displayName"], "Ada King");
    assert_eq!(updated["avatarUrl"], "https://example.com/ada.png");
    assert_eq!(updated["preferences"], json!({"theme": "dark"}));
    let cleared = json_of(patch(json!({"avatarUrl": null})).await, 200).await;
    assert_eq!(cleared["avatarUrl"], Value::Null);
    assert_eq!(cleared["displayName"], "Ada King");
    let me = json_of(app.get_as("/v1/users/me", &admin).await, 200).await;
    assert_eq!(me["preferences"], json!({"theme": "dark"}));

    assert_envelope(
        patch(json!({"avatarUrl": "javascript:alert(1)"})).await,
        422,
        "VALIDATION",
    )
    .await;
    assert_envelope(
        patch(json!({"preferences": "dark"})).await,
        422,
        "VALIDATION",
    )
    .await;
    let foreign_default = patch(json!({"defaultOrganizationId": uuid::Uuid::now_v7()})).await;
    assert_envelope(foreign_default, 422, "VALIDATION").await;
    json_of(patch(json!({"defaultOrganizationId": acme})).await, 200).await;

    // The password: only with the current one, and never a weak one.
    let no_current = assert_envelope(
        patch(json!({"password": "a-much-better-password"})).await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(no_current["details"][0]["path"], "currentPassword");
    let wrong = patch(
        json!({"password": "a-much-better-password", "currentPassword": "wrong-password-here"}),
    )
    .await;
    assert_envelope(wrong, 422, "VALIDATION").await;
    let weak = patch(
        json!({"password": "password1234", "currentPassword": crate::support::ADMIN_PASSWORD}),
    )
    .await;
    assert_envelope(weak, 422, "VALIDATION").await;
    json_of(
        patch(json!({"password": "a-much-better-password", "currentPassword": crate::support::ADMIN_PASSWORD})).await,
        200,
    )
    .await;
    // This session goes on; the other one is over, at once.
    json_of(app.get_as("/v1/users/me", &admin).await, 200).await;
    assert_envelope(
        app.get_as("/v1/users/me", &s(&other_session, "accessToken"))
            .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let refresh = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refreshToken": other_session["refreshToken"]}),
        )
        .await;
    assert_envelope(refresh, 401, "UNAUTHORIZED").await;
    app.login(ADMIN_EMAIL, "a-much-better-password").await;
    let events = app.query(
        "SELECT type FROM outbox_events WHERE type IN ('user.updated', 'user.password_changed') ORDER BY seq",
        |r| r.get::<_, String>(0),
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "user.password_changed")
            .count(),
        1
    );
    assert_eq!(events.iter().filter(|e| *e == "user.updated").count(), 3);
}

#[tokio::test]
async fn user_search_sees_only_colleagues() {
    let (app, admin, acme) = acme().await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "member")
        .await;
    // Eve is in an organization of her own, with nobody from Acme.
    let eve = app
        .invite_and_register(&admin, &acme, "eve@example.com", "member")
        .await;
    let eve_token = s(&eve, "accessToken");
    let eve_org = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &eve_token,
            Some(&json!({"name": "Eve's"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let acme_eve = format!("/v1/organizations/{acme}/members/{}", s(&eve["user"], "id"));
    assert_eq!(app.delete_as(&acme_eve, &admin).await.status(), 204);
    let zed = app
        .invite_and_register(&eve_token, &s(&eve_org, "id"), "zed@example.com", "member")
        .await;

    let found = json_of(
        app.get_as("/v1/users/search?q=EXAMPLE", &s(&bob, "accessToken"))
            .await,
        200,
    )
    .await;
    let emails: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, [ADMIN_EMAIL, "bob@example.com"]);
    let by_name = json_of(app.get_as("/v1/users/search?q=zed", &eve_token).await, 200).await;
    assert_eq!(by_name[0]["id"], zed["user"]["id"]);
    let none = json_of(app.get_as("/v1/users/search?q=zed", &admin).await, 200).await;
    assert_eq!(none, json!([]));
    // LIKE wildcards are literal characters.
    let wildcard = json_of(app.get_as("/v1/users/search?q=%25%25", &admin).await, 200).await;
    assert_eq!(wildcard, json!([]));
    assert_envelope(
        app.get_as("/v1/users/search?q=a", &admin).await,
        400,
        "BAD_REQUEST",
    )
    .await;
}

/// Bob owns organization B. On every organization-scoped route, naming organization A
/// (in the path or in `X-Organization-Id`) or one of A's objects is 404 for him.
#[tokio::test]
async fn every_organization_scoped_route_hides_other_tenants() {
    let (app, admin, acme) = acme().await;
    let role = json_of(
        app.send_as(
            Method::POST,
            "/v1/roles",
            &admin,
            Some(&json!({"name": "Ops", "permissions": ["org:read"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    let team = json_of(
        app.send_as(
            Method::POST,
            "/v1/teams",
            &admin,
            Some(&json!({"name": "T"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let department = json_of(
        app.send_as(
            Method::POST,
            "/v1/departments",
            &admin,
            Some(&json!({"name": "D"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let invite = json_of(
        app.send_as(
            Method::POST,
            &format!("/v1/invites/{acme}"),
            &admin,
            Some(&json!({"email": "x@example.com"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let admin_id = s(
        &app.login(ADMIN_EMAIL, crate::support::ADMIN_PASSWORD).await["user"],
        "id",
    );

    // Bob: invited into Acme, then left it; he owns organization B only.
    let bob_app_token = {
        let pair = app
            .invite_and_register(&admin, &acme, "bob@example.com", "member")
            .await;
        let bob = s(&pair, "accessToken");
        json_of(
            app.send_as(
                Method::POST,
                "/v1/organizations",
                &bob,
                Some(&json!({"name": "B"})),
                None,
            )
            .await,
            201,
        )
        .await;
        let bob_id = s(&pair["user"], "id");
        assert_eq!(
            app.delete_as(&format!("/v1/organizations/{acme}/members/{bob_id}"), &bob)
                .await
                .status(),
            204
        );
        bob
    };
    let (role_id, team_id, department_id, invite_id) = (
        s(&role, "id"),
        s(&team, "id"),
        s(&department, "id"),
        s(&invite, "id"),
    );
    let body = json!({"name": "Hijack", "role": "member", "email": "y@example.com", "permissions": [], "token": "t"});
    let routes: Vec<(Method, String, bool)> = vec![
        // (method, path, act in A through X-Organization-Id)
        (Method::GET, format!("/v1/organizations/{acme}"), false),
        (Method::PATCH, format!("/v1/organizations/{acme}"), false),
        (
            Method::GET,
            format!("/v1/organizations/{acme}/members"),
            false,
        ),
        (
            Method::PATCH,
            format!("/v1/organizations/{acme}/members/{admin_id}"),
            false,
        ),
        (
            Method::DELETE,
            format!("/v1/organizations/{acme}/members/{admin_id}"),
            false,
        ),
        (
            Method::POST,
            format!("/v1/organizations/{acme}/suspend"),
            false,
        ),
        (
            Method::POST,
            format!("/v1/organizations/{acme}/unsuspend"),
            false,
        ),
        (Method::POST, format!("/v1/invites/{acme}"), false),
        (Method::GET, format!("/v1/invites/{acme}"), false),
        (
            Method::DELETE,
            format!("/v1/invites/{acme}/{invite_id}"),
            false,
        ),
        // A's objects named from Bob's own organization.
        (Method::GET, format!("/v1/roles/{role_id}"), false),
        (Method::PATCH, format!("/v1/roles/{role_id}"), false),
        (Method::DELETE, format!("/v1/roles/{role_id}"), false),
        (Method::GET, format!("/v1/teams/{team_id}"), false),
        (Method::PATCH, format!("/v1/teams/{team_id}"), false),
        (Method::DELETE, format!("/v1/teams/{team_id}"), false),
        (
            Method::GET,
            format!("/v1/departments/{department_id}"),
            false,
        ),
        (
            Method::PATCH,
            format!("/v1/departments/{department_id}"),
            false,
        ),
        (
            Method::DELETE,
            format!("/v1/departments/{department_id}"),
            false,
        ),
        // Acting in A by header.
        (Method::GET, "/v1/roles".into(), true),
        (Method::POST, "/v1/roles".into(), true),
        (Method::GET, format!("/v1/roles/{role_id}"), true),
        (Method::PATCH, format!("/v1/roles/{role_id}"), true),
        (Method::DELETE, format!("/v1/roles/{role_id}"), true),
        (Method::GET, "/v1/teams".into(), true),
        (Method::POST, "/v1/teams".into(), true),
        (Method::GET, format!("/v1/teams/{team_id}"), true),
        (Method::PATCH, format!("/v1/teams/{team_id}"), true),
        (Method::DELETE, format!("/v1/teams/{team_id}"), true),
        (Method::GET, "/v1/departments".into(), true),
        (Method::POST, "/v1/departments".into(), true),
        (
            Method::GET,
            format!("/v1/departments/{department_id}"),
            true,
        ),
        (
            Method::PATCH,
            format!("/v1/departments/{department_id}"),
            true,
        ),
        (
            Method::DELETE,
            format!("/v1/departments/{department_id}"),
            true,
        ),
    ];
    for (method, path, by_header) in routes {
        let send_body = matches!(method, Method::POST | Method::PATCH).then_some(&body);
        let org = by_header.then_some(acme.as_str());
        let response = app
            .send_as(method.clone(), &path, &bob_app_token, send_body, org)
            .await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 404, "{method} {path} (header: {by_header}): {text}");
        assert!(text.contains("NOT_FOUND"), "{method} {path}: {text}");
    }
    // Nothing of A changed.
    let unchanged = json_of(
        app.get_as(&format!("/v1/organizations/{acme}"), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(unchanged["name"], "Acme");
    assert_eq!(unchanged["status"], "active");
    json_of(
        app.get_as(&format!("/v1/roles/{role_id}"), &admin).await,
        200,
    )
    .await;
    json_of(
        app.get_as(&format!("/v1/teams/{team_id}"), &admin).await,
        200,
    )
    .await;
}
