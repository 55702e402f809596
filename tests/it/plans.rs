//! Plans (docs/billing.md): feature gates and daily quotas at their edges with the plans'
//! clock moved across midnight, downgrades and upgrades on the next request with the same
//! key, storage, file-size, members and webhooks limits, the admin API and `sealbox admin
//! set-plan` against a running server, and the subscription view's access rules. No
//! payment processor is configured anywhere here: the air-gapped case.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api_keys::create_key;
use crate::support::{SEALBOX_BIN, TestApp, assert_envelope, json_of, s};

/// Two plans: `free` (the default: no features, small limits) and `pro`.
const PLANS: &str = r#"
[[plans]]
id = "free"
name = "Free"
features = []
[plans.limits]
storage_bytes = 4096
max_file_bytes = 1024
transfers_per_day = 2
members = 2
webhooks = 1

[[plans]]
id = "pro"
name = "Pro"
features = ["api_access", "e2e_transfers", "sso"]
[plans.limits]
api_requests_per_day_per_key = 3
api_requests_per_day_per_org = 5

[billing]
default_plan = "free"
"#;

#[derive(serde::Deserialize)]
struct PlansOnly {
    plans: Vec<sealbox::config::PlanConfig>,
    billing: sealbox::config::BillingConfig,
}

async fn with_plans() -> (TestApp, String, String) {
    let parsed: PlansOnly = toml::from_str(PLANS).unwrap();
    let app = TestApp::spawn_with(|config| {
        config.plans = parsed.plans;
        config.billing = parsed.billing;
    })
    .await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    (app, s(&pair, "accessToken"), org)
}

async fn set_plan(app: &TestApp, token: &str, org: &str, body: Value) -> reqwest::Response {
    app.send_as(
        Method::PUT,
        &format!("/admin/orgs/{org}/plan"),
        token,
        Some(&body),
        None,
    )
    .await
}

async fn me_with_key(app: &TestApp, key: &str) -> reqwest::Response {
    app.get_as("/v1/me", key).await
}

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// Today's stored API request counts, once the server has written what it counted in
/// memory (within a second; waits up to 10 s for them to stop changing).
async fn stored_counts(app: &TestApp) -> Vec<i64> {
    let read = || {
        app.query(
            "SELECT n FROM plan_usage WHERE counter = 'api_requests' ORDER BY n",
            |r| r.get(0),
        )
    };
    let mut last: Vec<i64> = read();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = read();
        if now == last && !now.is_empty() {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            if read() == now {
                return now;
            }
        }
        last = now;
    }
    last
}

/// Moves the plans' clock just past the next UTC midnight.
fn next_day(app: &TestApp) {
    app.plan_clock
        .advance(app.plan_clock.until_midnight() + Duration::from_secs(1));
}

#[tokio::test]
async fn api_keys_follow_the_plan_on_the_next_request_with_daily_quotas_per_key_and_org() {
    let (app, admin, org) = with_plans().await;
    let key = s(
        &create_key(&app, &admin, json!({"name": "ci"})).await,
        "key",
    );
    let other = s(
        &create_key(&app, &admin, json!({"name": "ci-2"})).await,
        "key",
    );

    // The default plan has no api_access: the key is refused, the session is not.
    let refused = assert_envelope(me_with_key(&app, &key).await, 403, "PLAN_REQUIRED").await;
    let message = s(&refused, "message");
    assert!(message.starts_with("API access requires"), "{message}");
    assert!(message.contains("api_access"), "{message}");
    json_of(app.get_as("/v1/me", &admin).await, 200).await;

    let changed = json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    assert_eq!(changed["plan"], "pro");
    assert_eq!(changed["previousPlan"], "free");

    // 3 a day per key: the 3rd passes with 0 left, the 4th is 429 until midnight.
    for remaining in [2, 1, 0] {
        let ok = me_with_key(&app, &key).await;
        assert_eq!(ok.status(), 200);
        assert_eq!(header(&ok, "x-quota-limit"), Some(3));
        assert_eq!(header(&ok, "x-quota-remaining"), Some(remaining));
        let reset = header(&ok, "x-quota-reset").unwrap();
        assert_eq!(
            reset,
            app.plan_clock.next_midnight().unix_timestamp() as u64
        );
    }
    let spent = me_with_key(&app, &key).await;
    let retry_after = header(&spent, "retry-after").expect("Retry-After");
    let until_midnight = app.plan_clock.until_midnight().as_secs();
    assert!(
        retry_after.abs_diff(until_midnight) <= 2,
        "{retry_after} vs {until_midnight}"
    );
    assert_eq!(header(&spent, "x-quota-remaining"), Some(0));
    assert_envelope(spent, 429, "QUOTA_EXCEEDED").await;

    // 5 a day per organization: the other key gets the 2 its organization has left.
    for _ in 0..2 {
        assert_eq!(me_with_key(&app, &other).await.status(), 200);
    }
    assert_envelope(me_with_key(&app, &other).await, 429, "QUOTA_EXCEEDED").await;
    // Counted in memory, written within a second.
    assert_eq!(
        stored_counts(&app).await,
        [2, 3, 5],
        "refusals count nothing"
    );

    // The day turns: both keys work again.
    next_day(&app);
    assert_eq!(me_with_key(&app, &key).await.status(), 200);
    assert_eq!(me_with_key(&app, &other).await.status(), 200);

    // A downgrade refuses the same key on the next request; an upgrade restores it.
    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "free"})).await,
        200,
    )
    .await;
    assert_envelope(me_with_key(&app, &key).await, 403, "PLAN_REQUIRED").await;
    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    assert_eq!(me_with_key(&app, &key).await.status(), 200);

    let changes: Vec<String> = app.query(
        "SELECT details FROM audit_log WHERE action = 'plan.changed' ORDER BY seq",
        |r| r.get(0),
    );
    assert_eq!(changes.len(), 3);
    let last: Value = serde_json::from_str(&changes[2]).unwrap();
    assert_eq!(last["from"], "free");
    assert_eq!(last["to"], "pro");
    assert_eq!(last["via"], "admin_api");
}

#[tokio::test]
async fn api_requests_counted_in_memory_survive_a_restart_and_the_subscription_shows_them() {
    // Not across a UTC midnight: the counts would start again.
    let before_midnight = sealbox::service::plans::Clock::default().until_midnight();
    if before_midnight < Duration::from_secs(30) {
        tokio::time::sleep(before_midnight + Duration::from_secs(1)).await;
    }
    let parsed: PlansOnly = toml::from_str(PLANS).unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let adjust = |config: &mut sealbox::config::Config| {
        config.plans = parsed.plans.clone();
        config.billing = parsed.billing.clone();
    };
    let app = TestApp::spawn_in(dir.path(), adjust).await.unwrap();
    let pair = app.setup_admin().await;
    let (admin, org) = (
        s(&pair, "accessToken"),
        s(&pair["user"]["organizations"][0], "id"),
    );
    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    let key = s(
        &create_key(&app, &admin, json!({"name": "ci"})).await,
        "key",
    );
    for _ in 0..2 {
        assert_eq!(me_with_key(&app, &key).await.status(), 200);
    }
    // The view counts what is not written yet.
    let view = json_of(
        app.get_as(&format!("/v1/subscriptions/{org}"), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(view["usage"]["apiRequestsToday"], 2);

    // A clean stop writes the counts; the next start goes on from them.
    app.shutdown().await.unwrap();
    let app = TestApp::spawn_in(dir.path(), adjust).await.unwrap();
    let admin = s(
        &app.login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
            .await,
        "accessToken",
    );
    let last = me_with_key(&app, &key).await;
    assert_eq!(last.status(), 200);
    assert_eq!(header(&last, "x-quota-remaining"), Some(0));
    assert_envelope(me_with_key(&app, &key).await, 429, "QUOTA_EXCEEDED").await;
    let view = json_of(
        app.get_as(&format!("/v1/subscriptions/{org}"), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(view["usage"]["apiRequestsToday"], 3);
    assert_eq!(stored_counts(&app).await, [3, 3]);
}

#[tokio::test]
async fn transfers_per_day_and_end_to_end_transfers_follow_the_plan() {
    let (app, admin, org) = with_plans().await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            app.send_as(Method::POST, "/v1/transfers", admin, Some(&body), None)
                .await
        }
    };
    let e2e = assert_envelope(
        create(json!({"name": "sealed", "e2e": true})).await,
        403,
        "PLAN_REQUIRED",
    )
    .await;
    assert!(s(&e2e, "message").contains("e2e_transfers"));

    for n in 0..2 {
        json_of(create(json!({"name": format!("t{n}")})).await, 201).await;
    }
    let spent = create(json!({"name": "t2"})).await;
    assert!(header(&spent, "retry-after").is_some());
    assert_eq!(header(&spent, "x-quota-limit"), Some(2));
    assert_envelope(spent, 429, "QUOTA_EXCEEDED").await;
    let transfers: Vec<i64> = app.query("SELECT count(*) FROM transfers", |r| r.get(0));
    assert_eq!(transfers, [2], "the refused transfer left nothing");

    next_day(&app);
    json_of(create(json!({"name": "tomorrow"})).await, 201).await;

    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    json_of(create(json!({"name": "sealed", "e2e": true})).await, 201).await;
}

#[tokio::test]
async fn storage_and_file_size_limits_apply_when_an_upload_is_created() {
    let (app, admin, org) = with_plans().await;
    let presign = |size: u64| {
        let (app, admin) = (&app, &admin);
        async move {
            app.send_as(
                Method::POST,
                "/v1/files/presign",
                admin,
                Some(&json!({"filename": "f.bin", "size": size, "encryption": "client"})),
                None,
            )
            .await
        }
    };
    // Larger than the plan's largest file (1024): 413 PAYLOAD_TOO_LARGE, as for the
    // instance's limit.
    assert_envelope(presign(1025).await, 413, "PAYLOAD_TOO_LARGE").await;
    // 4096 bytes of storage: four uploads of 1024 fit, the fifth does not.
    for _ in 0..4 {
        json_of(presign(1024).await, 201).await;
    }
    let full = assert_envelope(presign(1).await, 413, "QUOTA_EXCEEDED").await;
    assert!(s(&full, "message").contains("free"));

    // The whole-file JSON route meets the same rules.
    app.generate_keys(&admin, "a long user secret 1").await;
    let big = app
        .send_as(
            Method::POST,
            "/v1/files",
            &admin,
            Some(&json!({"fileName": "big.bin", "contentB64": B64.encode([7u8; 2000])})),
            None,
        )
        .await;
    assert_envelope(big, 413, "PAYLOAD_TOO_LARGE").await;
    let small = app
        .send_as(
            Method::POST,
            "/v1/files",
            &admin,
            Some(&json!({"fileName": "small.bin", "contentB64": B64.encode([7u8; 10])})),
            None,
        )
        .await;
    assert_envelope(small, 413, "QUOTA_EXCEEDED").await;

    // Pro has no storage limit.
    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    json_of(presign(1024).await, 201).await;
}

#[tokio::test]
async fn members_limit_applies_at_invite_and_accept_and_webhooks_at_create() {
    let (app, admin, org) = with_plans().await;
    let invite = |email: &'static str| {
        let (app, admin, org) = (&app, &admin, &org);
        async move {
            app.send_as(
                Method::POST,
                &format!("/v1/invites/{org}"),
                admin,
                Some(&json!({"email": email, "role": "member"})),
                None,
            )
            .await
        }
    };
    // Two members allowed; one (the owner) so far: both invites may be sent.
    let first = json_of(invite("bob@example.com").await, 201).await;
    let second = json_of(invite("cy@example.com").await, 201).await;
    let register = |email: &'static str, token: String| {
        let app = &app;
        async move {
            app.post_json(
                "/v1/auth/register",
                &json!({"email": email, "password": crate::support::MEMBER_PASSWORD,
                        "displayName": "x", "inviteToken": token}),
            )
            .await
        }
    };
    json_of(register("bob@example.com", s(&first, "token")).await, 201).await;
    // Now full: accepting the second invite is refused, and so is a new one.
    let refused = register("cy@example.com", s(&second, "token")).await;
    let refused = assert_envelope(refused, 403, "PLAN_REQUIRED").await;
    assert!(s(&refused, "message").contains("2 members"));
    let users: Vec<i64> = app.query(
        "SELECT count(*) FROM users WHERE email = 'cy@example.com'",
        |r| r.get(0),
    );
    assert_eq!(users, [0], "the refused registration left no account");
    assert_envelope(invite("dee@example.com").await, 403, "PLAN_REQUIRED").await;

    let hook = |n: u32| {
        let (app, admin) = (&app, &admin);
        async move {
            app.send_as(
                Method::POST,
                "/v1/webhooks",
                admin,
                Some(&json!({"url": format!("https://hooks.example.com/{n}")})),
                None,
            )
            .await
        }
    };
    json_of(hook(1).await, 201).await;
    assert_envelope(hook(2).await, 403, "PLAN_REQUIRED").await;

    // Pro has neither limit.
    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    json_of(hook(2).await, 201).await;
    json_of(invite("dee@example.com").await, 201).await;
}

#[tokio::test]
async fn members_limit_holds_for_accounts_an_admin_creates_and_members_enabled_again() {
    let (app, admin, org) = with_plans().await;
    let create = |email: &'static str| {
        let (app, admin, org) = (&app, &admin, &org);
        async move {
            app.send_as(
                Method::POST,
                &format!("/admin/orgs/{org}/users"),
                admin,
                Some(&json!({"email": email, "displayName": "x"})),
                None,
            )
            .await
        }
    };
    let member_status = |user: String, status: &'static str| {
        let (app, admin, org) = (&app, &admin, &org);
        async move {
            app.send_as(
                Method::PATCH,
                &format!("/v1/organizations/{org}/members/{user}"),
                admin,
                Some(&json!({"status": status})),
                None,
            )
            .await
        }
    };
    // The free plan seats two: the owner and one more.
    let bob = json_of(create("bob@example.com").await, 201).await;
    let bob = s(&bob["user"], "userId");
    let refused = assert_envelope(create("cy@example.com").await, 403, "PLAN_REQUIRED").await;
    assert!(s(&refused, "message").contains("2 members"));
    let users: Vec<i64> = app.query(
        "SELECT count(*) FROM users WHERE email = 'cy@example.com'",
        |r| r.get(0),
    );
    assert_eq!(users, [0], "the refused account was not created");

    // A disabled member frees the seat; enabling them again needs one.
    json_of(member_status(bob.clone(), "disabled").await, 200).await;
    json_of(create("cy@example.com").await, 201).await;
    assert_envelope(
        member_status(bob.clone(), "active").await,
        403,
        "PLAN_REQUIRED",
    )
    .await;
    let status: Vec<String> = app.query(
        &format!("SELECT status FROM memberships WHERE user_id = '{bob}'"),
        |r| r.get(0),
    );
    assert_eq!(
        status,
        ["disabled"],
        "the refused change left the member disabled"
    );

    // A plan without the limit seats them all.
    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    json_of(member_status(bob, "active").await, 200).await;
}

#[tokio::test]
async fn the_admin_plan_api_refuses_what_it_must_and_an_end_date_returns_the_default() {
    let (app, admin, org) = with_plans().await;
    let member = s(
        &app.invite_and_register(&admin, &org, "bob@example.com", "owner")
            .await,
        "accessToken",
    );
    // An organization's owner is no instance admin.
    assert_envelope(
        set_plan(&app, &member, &org, json!({"plan": "pro"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let anonymous = app
        .client
        .put(app.url(&format!("/admin/orgs/{org}/plan")))
        .json(&json!({"plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_envelope(anonymous, 401, "UNAUTHORIZED").await;
    let unknown_org = "0193a6b0-0000-7000-8000-000000000000";
    assert_envelope(
        set_plan(&app, &admin, unknown_org, json!({"plan": "pro"})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(
        set_plan(&app, &admin, "not-an-id", json!({"plan": "pro"})).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let unknown_plan = assert_envelope(
        set_plan(&app, &admin, &org, json!({"plan": "gold"})).await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(unknown_plan["details"][0]["path"], "plan");
    let past = assert_envelope(
        set_plan(
            &app,
            &admin,
            &org,
            json!({"plan": "pro", "endsAt": "2020-01-01T00:00:00Z"}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(past["details"][0]["path"], "endsAt");
    assert_envelope(
        set_plan(&app, &admin, &org, json!({"plan": 7})).await,
        422,
        "VALIDATION",
    )
    .await;

    // Pro for two days, then the default plan again.
    let ends = sealbox::ids::format_rfc3339(app.plan_clock.now() + time::Duration::days(2));
    let changed = json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro", "endsAt": ends})).await,
        200,
    )
    .await;
    assert_eq!(changed["endsAt"], ends.as_str());
    let path = format!("/v1/subscriptions/{org}");
    let now = json_of(app.get_as(&path, &admin).await, 200).await;
    assert_eq!(now["plan"], "pro");
    assert_eq!(now["status"], "active");
    assert_eq!(now["endsAt"], ends.as_str());
    app.plan_clock
        .advance(Duration::from_secs(3 * 24 * 60 * 60));
    let later = json_of(app.get_as(&path, &admin).await, 200).await;
    assert_eq!(later["plan"], "free");
    assert_eq!(later["status"], "default");
    assert!(later.get("endsAt").is_none());
    // The admin's view says the assignment ended, and by whom it was made.
    let admin_view = json_of(
        app.get_as(&format!("/admin/orgs/{org}/plan"), &admin).await,
        200,
    )
    .await;
    assert_eq!(admin_view["plan"], "free");
    assert_eq!(admin_view["status"], "default");
    assert_eq!(admin_view["assignedPlan"], "pro");
    assert_eq!(admin_view["setVia"], "admin_api");

    // The catalog and an organization's plan: instance admins only, 404 for no org.
    let plans = json_of(app.get_as("/admin/plans", &admin).await, 200).await;
    let ids: Vec<(&str, bool)> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["default"].as_bool().unwrap()))
        .collect();
    assert_eq!(ids, [("free", true), ("pro", false)]);
    assert_eq!(plans[0]["limits"]["members"], 2);
    assert_eq!(
        plans[1]["features"],
        json!(["api_access", "e2e_transfers", "sso"])
    );
    for path in ["/admin/plans".to_owned(), format!("/admin/orgs/{org}/plan")] {
        assert_envelope(app.get_as(&path, &member).await, 403, "FORBIDDEN").await;
    }
    assert_envelope(
        app.get_as(&format!("/admin/orgs/{unknown_org}/plan"), &admin)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn the_admin_console_shows_an_organizations_plan_and_assigns_one_until_a_date() {
    use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD};
    use crate::web_ui::browse;
    use crate::web_workspace::{choose, rendered, sign_in};

    let (app, admin, org) = with_plans().await;
    let mut steps = sign_in(
        &app,
        &format!("/app/admin?org={org}"),
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    );
    steps.extend([
        rendered("/app/admin"),
        json!(["js", "document.getElementById('plan-now')?.textContent.startsWith('Free, the default plan')"]),
        choose("document.querySelector('#plan-form select')", "pro"),
        choose("document.querySelector('#plan-form input[type=datetime-local]')", "2099-01-31T12:00"),
        json!(["click", "#plan-form button[type=submit]"]),
        json!(["js", "document.getElementById('plan-now')?.textContent.startsWith('Pro, assigned by an instance admin')"]),
        json!(["js", "document.getElementById('plan-now').textContent.includes('until')"]),
    ]);
    browse(serde_json::Value::Array(steps)).await;
    let view = json_of(
        app.get_as(&format!("/admin/orgs/{org}/plan"), &admin).await,
        200,
    )
    .await;
    assert_eq!(view["plan"], "pro");
    assert_eq!(view["status"], "active");
    assert!(
        s(&view, "endsAt").starts_with("2099-01-31T"),
        "the picked end: {view}"
    );
}

#[tokio::test]
async fn the_subscription_is_for_owners_and_the_billing_role_only() {
    let (app, admin, org) = with_plans().await;
    let path = format!("/v1/subscriptions/{org}");
    let view = json_of(app.get_as(&path, &admin).await, 200).await;
    assert_eq!(view["organizationId"], org.as_str());
    assert_eq!(view["plan"], "free");
    assert_eq!(view["planName"], "Free");
    assert_eq!(view["status"], "default");
    assert_eq!(view["features"], json!([]));
    assert_eq!(view["limits"]["storageBytes"], 4096);
    assert_eq!(view["limits"]["transfersPerDay"], 2);
    assert!(view["limits"].get("apiRequestsPerDayPerKey").is_none());
    assert_eq!(view["usage"]["members"], 1);
    assert_eq!(view["usage"]["storageBytes"], 0);
    assert_eq!(view["usage"]["transfersToday"], 0);
    assert_eq!(view["usage"]["day"], app.plan_clock.today().as_str());

    json_of(
        app.send_as(
            Method::POST,
            "/v1/transfers",
            &admin,
            Some(&json!({"name": "one"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let view = json_of(app.get_as(&path, &admin).await, 200).await;
    assert_eq!(view["usage"]["transfersToday"], 1);

    // An admin and a member may not; a custom role holding billing:read may.
    let role = json_of(
        app.send_as(
            Method::POST,
            "/v1/roles",
            &admin,
            Some(&json!({"name": "Billing", "permissions": ["org:read", "billing:read"]})),
            None,
        )
        .await,
        201,
    )
    .await;
    // The default plan allows two members: the billing member first, then pro for more.
    let billing = s(
        &app.invite_and_register(&admin, &org, "bill@example.com", &s(&role, "id"))
            .await,
        "accessToken",
    );
    json_of(app.get_as(&path, &billing).await, 200).await;
    json_of(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        200,
    )
    .await;
    for (email, role) in [("mo@example.com", "member"), ("al@example.com", "admin")] {
        let token = s(
            &app.invite_and_register(&admin, &org, email, role).await,
            "accessToken",
        );
        assert_envelope(app.get_as(&path, &token).await, 403, "FORBIDDEN").await;
    }

    // Another tenant's owner: 404, as for an organization that does not exist.
    let globex = json_of(
        app.send_as(
            Method::POST,
            "/admin/orgs",
            &admin,
            Some(&json!({"name": "Globex"})),
            None,
        )
        .await,
        201,
    )
    .await;
    json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{}/users", s(&globex, "id")),
            &admin,
            Some(&json!({"email": "gus@example.com", "displayName": "Gus",
                         "password": crate::support::MEMBER_PASSWORD, "role": "owner"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let gus = s(
        &app.login("gus@example.com", crate::support::MEMBER_PASSWORD)
            .await,
        "accessToken",
    );
    assert_envelope(app.get_as(&path, &gus).await, 404, "NOT_FOUND").await;
    json_of(
        app.get_as(&format!("/v1/subscriptions/{}", s(&globex, "id")), &gus)
            .await,
        200,
    )
    .await;
    assert_envelope(
        app.get_as("/v1/subscriptions/not-an-id", &admin).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let anonymous = app.get(&path).await;
    assert_envelope(anonymous, 401, "UNAUTHORIZED").await;

    // An API key reads it with the billing:read scope only.
    let scoped = s(
        &create_key(
            &app,
            &admin,
            json!({"name": "books", "scopes": ["billing:read"]}),
        )
        .await,
        "key",
    );
    json_of(app.get_as(&path, &scoped).await, 200).await;
    let unscoped = s(
        &create_key(&app, &admin, json!({"name": "ci", "scopes": ["org:read"]})).await,
        "key",
    );
    assert_envelope(app.get_as(&path, &unscoped).await, 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn without_plans_everything_is_unlimited_as_before() {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let (admin, org) = (
        s(&pair, "accessToken"),
        s(&pair["user"]["organizations"][0], "id"),
    );
    let view = json_of(
        app.get_as(&format!("/v1/subscriptions/{org}"), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(view["plan"], "unlimited");
    assert_eq!(view["status"], "unlimited");
    assert_eq!(
        view["features"],
        json!(["api_access", "e2e_transfers", "sso", "conversions"])
    );
    assert_eq!(view["limits"], json!({}));
    let key = s(
        &create_key(&app, &admin, json!({"name": "ci"})).await,
        "key",
    );
    let ok = me_with_key(&app, &key).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("x-quota-limit").is_none());
    let refused = assert_envelope(
        set_plan(&app, &admin, &org, json!({"plan": "pro"})).await,
        422,
        "VALIDATION",
    )
    .await;
    assert!(s(&refused["details"][0], "message").contains("no plans"));
}

#[tokio::test]
async fn set_plan_at_the_console_applies_to_the_running_server_on_the_next_request() {
    let (app, admin, org) = with_plans().await;
    let key = s(
        &create_key(&app, &admin, json!({"name": "ci"})).await,
        "key",
    );
    assert_envelope(me_with_key(&app, &key).await, 403, "PLAN_REQUIRED").await;

    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(&config, PLANS).unwrap();
    let run = |plan: &str| {
        std::process::Command::new(SEALBOX_BIN)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("admin")
            .arg("set-plan")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&app.data_dir)
            .args(["--org", &org, "--plan", plan])
            .output()
            .unwrap()
    };
    let unknown = run("gold");
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("unknown plan `gold`"), "{stderr}");

    let done = run("pro");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&done.stdout).trim(), "pro");
    // The server's cache saw the change another process committed.
    assert_eq!(me_with_key(&app, &key).await.status(), 200);
    let via: Vec<String> = app.query("SELECT set_via FROM org_plans", |r| r.get(0));
    assert_eq!(via, ["cli"]);
}
