//! More of the workspace's main flows in a real headless Chromium against the real server,
//! each checked over HTTP (and, where the API cannot tell, in the database) afterwards:
//! a failed webhook delivery as the log shows it and deleting a webhook with a retry
//! pending; the audit page's actor, target and time-range filters and its older pages
//! through `Link`; an owner suspending and lifting their own organization (what the
//! suspended view shows and what the server refuses meanwhile); changing the default
//! organization; a section's error state (the server's refusal) and loading state (on a
//! slow link). The shell's step helpers are `web_workspace`'s.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, assert_envelope, json_of, s,
};
use crate::web_ui::browse_with_timeout;
use crate::web_workspace::{admin_and_org, choose, forced_fetch, get_json, rendered, sign_in};
use crate::webhooks_delivery::Receiver;

/// Seconds a waiting browser step may take: the machine running the suite is loaded, and
/// a webhook attempt goes through the worker's queue.
const STEP_TIMEOUT: u32 = 20;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The ids of a list of the API's objects, in order.
fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| s(item, "id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_shows_its_answer_and_next_attempt_and_a_webhook_is_deleted() {
    let receiver = Receiver::start(None);
    // The real retry schedule (no `time_scale`): a retry stays in the future while the
    // page is read.
    let app =
        TestApp::spawn_with(|c| c.webhooks.allowed_networks = vec!["127.0.0.0/8".into()]).await;
    let (admin, _acme) = admin_and_org(&app).await;
    let create = |path: &str, max_attempts: u32| {
        let body = json!({"url": receiver.url(path), "events": ["api_key.created"],
                          "retryPolicy": {"maxAttempts": max_attempts, "disableAfterConsecutiveFailures": 50}});
        let (app, admin) = (&app, &admin);
        async move {
            let hook = app
                .send_as(Method::POST, "/v1/webhooks", admin, Some(&body), None)
                .await;
            s(&json_of(hook, 201).await, "id")
        }
    };
    // "broken" answers 500 to everything and gets one attempt: its delivery fails for good.
    // "busy" answers 503 with `Retry-After: 3600`: its delivery waits an hour or more.
    let broken = create("/fail/1000/broken", 1).await;
    let busy = create("/retry-after/3600/busy", 3).await;
    let sent = app
        .send_as(
            Method::POST,
            &format!("/v1/webhooks/{broken}/test"),
            &admin,
            Some(&json!({"event_type": "ping"})),
            None,
        )
        .await;
    assert_eq!(sent.status(), 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let log = get_json(
            &app,
            &format!("/v1/webhooks/{broken}/deliveries"),
            &admin,
            None,
        )
        .await;
        if log[0]["status"] == "failed" {
            break log[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{log:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed["responseStatusCode"], 500, "{failed:#}");
    assert_eq!(failed["responseBody"], "answered 500");
    assert!(failed.get("nextAttemptAt").is_none(), "{failed:#}");
    let broken_hook = get_json(&app, &format!("/v1/webhooks/{broken}"), &admin, None).await;
    assert_eq!(broken_hook["consecutiveFailures"], 1);

    let out = tempfile::tempdir().unwrap();
    let (broken_response, busy_response, busy_next) = (
        out.path().join("broken-response"),
        out.path().join("busy-response"),
        out.path().join("busy-next"),
    );
    let card = |id: &str| format!(".webhook[data-id='{id}']");
    let cell = |id: &str, status: &str, label: &str| {
        format!(
            "document.querySelector(\"{} .deliveries tr[data-status={status}] td[data-label='{label}']\")",
            card(id)
        )
    };
    let mut steps = sign_in(&app, "/app/webhooks", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        // The failed delivery: its status, the code and time, the body's start, no retry.
        json!(["js", format!("{}?.textContent === '1'", cell(&broken, "failed", "Attempts"))]),
        json!(["js", format!("/^500 in \\d+ ms$/.test({}.textContent)", cell(&broken, "failed", "Response"))]),
        json!(["save", format!("{}.textContent", cell(&broken, "failed", "Response")), broken_response.to_str().unwrap()]),
        json!(["js", format!("{}.textContent === 'answered 500'", cell(&broken, "failed", "Body"))]),
        json!(["js", format!("{}.textContent === '—'", cell(&broken, "failed", "Next attempt"))]),
        json!(["js", format!("document.querySelector(\"{} .hook-state\").textContent === 'Enabled · 1 failure in a row'", card(&broken))]),
        // A test to the busy endpoint: the log follows it until the first attempt is in,
        // and shows when the next one is due, in the reader's local time.
        json!(["click", format!("{} .send-test", card(&busy))]),
        json!(["click", format!("{} .test-form button[type=submit]", card(&busy))]),
        json!(["text", "Queued."]),
        json!(["js", format!("{}?.textContent === '1'", cell(&busy, "pending", "Attempts"))]),
        json!(["js", format!("/^503 in \\d+ ms$/.test({}.textContent)", cell(&busy, "pending", "Response"))]),
        json!(["save", format!("{}.textContent", cell(&busy, "pending", "Response")), busy_response.to_str().unwrap()]),
        json!(["js", format!("{}.textContent === 'answered 503'", cell(&busy, "pending", "Body"))]),
        json!(["js", format!(
            "(() => {{ const t = {}.querySelector('time'); \
             return t.textContent === new Date(t.dateTime).toLocaleString(); }})()",
            cell(&busy, "pending", "Next attempt")
        )]),
        json!(["save", format!("{}.querySelector('time').dateTime", cell(&busy, "pending", "Next attempt")), busy_next.to_str().unwrap()]),
        // Delete the busy one, its pending retry with it; cancelling the dialog first keeps it.
        json!(["click", format!("{} button.danger", card(&busy))]),
        json!(["click", "#confirm-no"]),
        json!(["js", format!("document.querySelector(\"{}\") !== null", card(&busy))]),
        json!(["click", format!("{} button.danger", card(&busy))]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "Webhook deleted."]),
        json!(["js", format!("document.querySelector(\"{}\") === null", card(&busy))]),
        json!(["js", format!("document.querySelectorAll('.webhook').length === 1 && document.querySelector(\"{}\") !== null", card(&broken))]),
    ]);
    browse_with_timeout(Value::Array(steps), STEP_TIMEOUT).await;

    // The page showed the server's figures.
    assert_eq!(
        read(&broken_response),
        format!("500 in {} ms", failed["durationMs"])
    );
    let got = receiver.received("busy").await;
    assert_eq!(got.len(), 1, "one attempt, no retry yet: {got:#?}");
    assert_eq!(got[0]["answered"], 503);
    assert!(read(&busy_response).starts_with("503 in "));
    // The next attempt shown is the one the receiver asked for: an hour after it answered
    // (plus at most the 20% jitter).
    let next = OffsetDateTime::parse(
        &read(&busy_next),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let answered = got[0]["receivedAt"].as_f64().unwrap();
    let wait = next.unix_timestamp_nanos() as f64 / 1e9 - answered;
    assert!((3599.0..=3600.0 * 1.2 + 60.0).contains(&wait), "{wait} s");

    // Deleted: gone from the API, its deliveries from the database, nothing queued.
    assert_envelope(
        app.get_as(&format!("/v1/webhooks/{busy}"), &admin).await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(
        app.get_as(&format!("/v1/webhooks/{busy}/deliveries"), &admin)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let hooks = get_json(&app, "/v1/webhooks", &admin, None).await;
    assert_eq!(ids(&hooks), [broken]);
    let left: Vec<i64> = app.query(
        &format!("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = '{busy}'"),
        |r| r.get(0),
    );
    assert_eq!(left, [0]);
    let status = get_json(&app, "/admin/status", &admin, None).await;
    assert_eq!(status["webhookQueue"]["pending"], 0, "{status}");
    let deleted = get_json(&app, "/v1/audit?action=webhook.deleted", &admin, None).await;
    assert_eq!(deleted[0]["targetId"], busy.as_str(), "{deleted:#}");
}

/// Waits until the wall clock has passed the next whole second, and returns that second.
async fn next_second() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let next = now.replace_nanosecond(0).unwrap() + time::Duration::SECOND;
    while OffsetDateTime::now_utc() < next {
        let left = next - OffsetDateTime::now_utc();
        tokio::time::sleep(left.try_into().unwrap_or(Duration::from_millis(1))).await;
    }
    next
}

/// `at` in India's time (UTC+05:30, no daylight saving) as a `datetime-local` value to
/// the second, normalized as the browser keeps it (no `:00` seconds).
fn kolkata(at: OffsetDateTime) -> String {
    let local = at.to_offset(time::macros::offset!(+5:30));
    let minute = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute()
    );
    match local.second() {
        0 => minute,
        second => format!("{minute}:{second:02}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_filters_by_actor_target_and_time_and_pages_through_link() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    let bob = app
        .invite_and_register(&admin, &acme, "bob@example.com", "admin")
        .await;
    let (bob_token, bob_id) = (s(&bob, "accessToken"), s(&bob["user"], "id"));
    let invite = |token: String, email: String| {
        let app = &app;
        let path = format!("/v1/invites/{acme}");
        async move {
            let created = app
                .send_as(
                    Method::POST,
                    &path,
                    &token,
                    Some(&json!({"email": email})),
                    None,
                )
                .await;
            s(&json_of(created, 201).await, "id")
        }
    };
    // Bob's entries are more than one page of 50.
    for i in 0..55 {
        invite(bob_token.clone(), format!("b{i}@example.com")).await;
    }
    // One invite created and withdrawn: two entries about one target.
    let target = invite(admin.clone(), "t@example.com".into()).await;
    let withdrawn = app
        .delete_as(&format!("/v1/invites/{acme}/{target}"), &admin)
        .await;
    assert_eq!(withdrawn.status(), 204);
    // Three entries alone in a window of whole seconds, [since, until).
    let since = next_second().await;
    for i in 1..=3 {
        invite(admin.clone(), format!("w{i}@example.com")).await;
    }
    let until = next_second().await;
    invite(admin.clone(), "late@example.com".into()).await;

    let out = tempfile::tempdir().unwrap();
    let saved = |name: &str| out.path().join(name);
    let rows = "document.querySelectorAll('#audit-table tbody tr')";
    let save_rows = |name: &str| {
        json!([
            "save",
            format!("JSON.stringify([...{rows}].map((r) => r.dataset.id))"),
            saved(name).to_str().unwrap()
        ])
    };
    let (since_value, until_value) = (kolkata(since), kolkata(until));
    let mut steps = vec![json!(["timezone", "Asia/Kolkata"])];
    steps.extend(sign_in(&app, "/app/audit", ADMIN_EMAIL, ADMIN_PASSWORD));
    steps.extend([
        // Everything: 50, then the older ones through the `Link` header, then no more.
        json!(["js", format!("{rows}.length === 50")]),
        json!(["click", "#audit-older"]),
        json!(["text", "No older entries."]),
        json!(["js", format!("{rows}.length > 50 && !document.getElementById('audit-older')")]),
        save_rows("all"),
        // Bob's: the filter is in the address, and the older page keeps it.
        choose("document.querySelector('select[name=actor]')", &bob_id),
        json!(["click", "form.filters button[type=submit]"]),
        json!(["js", format!("location.search === '?actor={bob_id}'")]),
        rendered("/app/audit"),
        json!(["js", format!("{rows}.length === 50")]),
        json!(["click", "#audit-older"]),
        json!(["text", "No older entries."]),
        json!(["js", format!("{rows}.length > 50 && [...{rows}].every((r) => r.children[3].textContent === 'bob (bob@example.com)')")]),
        save_rows("actor"),
        // One target: the actor back to anyone.
        choose("document.querySelector('select[name=actor]')", ""),
        json!(["fill", "input[name=target]", target]),
        json!(["click", "form.filters button[type=submit]"]),
        json!(["js", format!("location.search === '?target={target}'")]),
        rendered("/app/audit"),
        json!(["js", format!("{rows}.length === 2")]),
        json!(["text", "invite.revoked"]),
        save_rows("target"),
        // A time range picked in local time (India's), to the second.
        json!(["click", "form.filters a[href='/app/audit']"]),
        json!(["js", "location.search === ''"]),
        rendered("/app/audit"),
        choose("document.querySelector('input[name=since]')", &since_value),
        choose("document.querySelector('input[name=until]')", &until_value),
        json!(["click", "form.filters button[type=submit]"]),
        json!(["js", format!(
            "(() => {{ const q = new URLSearchParams(location.search); \
             return q.get('since') === '{since_value}' && q.get('until') === '{until_value}'; }})()"
        )]),
        rendered("/app/audit"),
        json!(["js", format!("{rows}.length === 3")]),
        json!(["js", format!("document.querySelector('input[name=since]').value === '{since_value}' && document.querySelector('input[name=until]').value === '{until_value}'")]),
        save_rows("window"),
    ]);
    browse_with_timeout(Value::Array(steps), STEP_TIMEOUT).await;

    let page = |name: &str| -> Vec<String> { serde_json::from_str(&read(&saved(name))).unwrap() };
    let audit = |query: String| {
        let (app, admin) = (&app, &admin);
        async move { get_json(app, &format!("/v1/audit?limit=200&{query}"), admin, None).await }
    };
    // Everything: what the server holds, from the page's newest entry on, each once.
    let all = ids(&audit(String::new()).await);
    let shown = page("all");
    let first = all.iter().position(|id| *id == shown[0]).unwrap();
    assert_eq!(shown, all[first..], "every entry once, newest first");
    assert!(shown.len() > 60, "{}", shown.len());
    // Bob's: exactly his, all of them, over two pages.
    let bobs = audit(format!("actor={bob_id}")).await;
    assert_eq!(page("actor"), ids(&bobs));
    assert!(bobs.as_array().unwrap().len() >= 55);
    assert!(
        bobs.as_array()
            .unwrap()
            .iter()
            .all(|e| e["actorUserId"] == bob_id.as_str())
    );
    // The target: its creation and its withdrawal.
    let about = audit(format!("target={target}")).await;
    assert_eq!(page("target"), ids(&about));
    let actions: Vec<&str> = about
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["invite.revoked", "invite.created"]);
    // The window: the three invites made in it, as the API gives them in UTC.
    let utc = |at: OffsetDateTime| sealbox::ids::format_rfc3339(at);
    let window = audit(format!("since={}&until={}", utc(since), utc(until))).await;
    assert_eq!(page("window"), ids(&window));
    let emails: Vec<&str> = window
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["w3@example.com", "w2@example.com", "w1@example.com"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_suspends_and_lifts_their_organization_and_the_server_refuses_it_meanwhile() {
    let app = TestApp::spawn().await;
    let (admin, _acme) = admin_and_org(&app).await;
    // Globex and its owner Gina, who is no instance admin.
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
    let globex = s(&globex, "id");
    let gina = json_of(
        app.send_as(
            Method::POST,
            &format!("/admin/orgs/{globex}/users"),
            &admin,
            Some(&json!({"email": "gina@example.com", "displayName": "Gina",
                         "password": MEMBER_PASSWORD, "role": "owner"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let gina_id = s(&gina["user"], "userId");
    let gina_token = s(
        &app.login("gina@example.com", MEMBER_PASSWORD).await,
        "accessToken",
    );
    // An API key of hers in Globex.
    let key = json_of(
        app.send_as(
            Method::POST,
            "/v1/api-keys",
            &gina_token,
            Some(&json!({"name": "ci"})),
            Some(&globex),
        )
        .await,
        201,
    )
    .await;
    let key = s(&key, "key");
    let key_me = || {
        app.client
            .get(app.url("/v1/me"))
            .header("X-Api-Key", &key)
            .send()
    };
    assert_eq!(key_me().await.unwrap().status(), 200);

    let out = tempfile::tempdir().unwrap();
    let saved = |name: &str| out.path().join(name);
    let banner = "document.getElementById('org-banner')";
    let option = "document.getElementById('org-switch').selectedOptions[0].textContent";
    let nav = |path: &str| format!("document.querySelector(\"#nav a[href='{path}']\")");
    let mut steps = sign_in(
        &app,
        "/app/organization",
        "gina@example.com",
        MEMBER_PASSWORD,
    );
    steps.extend([
        json!(["text", "gina@example.com"]),
        json!(["click", "#suspend"]),
        json!(["js", "document.getElementById('confirm-dialog').open"]),
        json!(["click", "#confirm-yes"]),
        json!(["text", "The organization is suspended."]),
        // The suspended view: a banner, the section, who did it, the way back; no pages.
        json!(["js", "!!document.getElementById('unsuspend')"]),
        json!(["js", format!("!{banner}.hidden && {banner}.textContent.startsWith('Globex is suspended: its data cannot be used')")]),
        json!(["js", "document.getElementById('suspended-by').textContent === 'Its owners suspended it.'"]),
        json!(["js", format!("{option} === 'Globex (suspended)'")]),
        json!(["js", "!document.getElementById('members') && !document.getElementById('suspend')"]),
        json!(["js", format!("!{} && !{} && !{} && !{} && !!{}", nav("/app/audit"), nav("/app/files"), nav("/app/webhooks"), nav("/app/api-keys"), nav("/app/organization"))]),
        json!(["open", app.url("/app/audit")]),
        rendered("/app/audit"),
        json!(["text", "The organization is suspended."]),
        // The server refuses what the page no longer offers, and her API key.
        forced_fetch("GET", "/v1/audit", &globex, &Value::Null, &saved("audit")),
        forced_fetch("POST", &format!("/v1/invites/{globex}"), &globex, &json!({"email": "eve@example.com"}), &saved("invite")),
        json!(["save", format!(
            "(async () => {{ const r = await fetch('/v1/me', {{headers: {{'X-Api-Key': {key:?}}}}}); \
             return r.status + ' ' + (await r.json()).error.code; }})()"
        ), saved("key").to_str().unwrap()]),
        // Lifted by her: the page is whole again.
        json!(["click", "#nav a[href='/app/organization']"]),
        rendered("/app/organization"),
        json!(["click", "#unsuspend"]),
        json!(["text", "The suspension is lifted."]),
        json!(["js", "!!document.getElementById('suspend') && !!document.getElementById('members')"]),
        json!(["js", format!("{banner}.hidden && {option} === 'Globex' && !!{}", nav("/app/audit"))]),
        // An instance admin suspends it (from elsewhere): after a reload, she is not
        // offered to lift it, and the server refuses her if she tries.
        json!(["save", format!(
            "(async () => String((await fetch('/v1/organizations/{globex}/suspend', \
             {{method: 'POST', headers: {{'Authorization': 'Bearer ' + {admin:?}}}}})).status))()"
        ), saved("admin-suspend").to_str().unwrap()]),
        json!(["open", app.url("/app/organization")]),
        rendered("/app/organization"),
        json!(["js", "document.getElementById('suspended-by')?.textContent === 'An instance admin suspended it.'"]),
        json!(["text", "Only an instance admin can lift it."]),
        json!(["js", "!document.getElementById('unsuspend')"]),
        forced_fetch("POST", &format!("/v1/organizations/{globex}/unsuspend"), &globex, &json!({}), &saved("unsuspend")),
    ]);
    browse_with_timeout(Value::Array(steps), STEP_TIMEOUT).await;

    assert_eq!(read(&saved("audit")), "403 ORG_SUSPENDED");
    assert_eq!(read(&saved("invite")), "403 ORG_SUSPENDED");
    assert_eq!(read(&saved("key")), "403 ORG_SUSPENDED");
    assert_eq!(read(&saved("admin-suspend")), "200");
    assert_eq!(read(&saved("unsuspend")), "403 FORBIDDEN");
    // Still suspended, by the instance admin; her key is refused until the admin lifts it.
    let orgs = get_json(&app, "/admin/orgs", &admin, None).await;
    let org = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == globex.as_str())
        .unwrap();
    assert_eq!(org["status"], "suspended", "{org}");
    assert_eq!(org["suspendedBy"], "instanceAdmin");
    assert_envelope(key_me().await.unwrap(), 403, "ORG_SUSPENDED").await;
    let lifted = app
        .send_as(
            Method::POST,
            &format!("/v1/organizations/{globex}/unsuspend"),
            &admin,
            None,
            None,
        )
        .await;
    assert_eq!(json_of(lifted, 200).await["status"], "active");
    assert_eq!(key_me().await.unwrap().status(), 200);
    // The log holds her suspension and lifting, then the admin's, each by its actor.
    let log = get_json(&app, "/v1/audit?limit=200", &gina_token, Some(&globex)).await;
    let suspensions: Vec<(String, String, bool)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().contains("suspended"))
        .map(|e| {
            (
                s(e, "action"),
                s(e, "actorUserId"),
                e["details"]["byInstanceAdmin"].as_bool().unwrap(),
            )
        })
        .collect();
    let ada_id = s(&get_json(&app, "/v1/auth/me", &admin, None).await, "id");
    let entry =
        |action: &str, actor: &str, by_admin| (action.to_owned(), actor.to_owned(), by_admin);
    assert_eq!(
        suspensions,
        [
            entry("organization.unsuspended", &ada_id, true),
            entry("organization.suspended", &ada_id, true),
            entry("organization.unsuspended", &gina_id, false),
            entry("organization.suspended", &gina_id, false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_organization_changed_in_the_page_is_the_one_the_next_sign_in_opens() {
    let app = TestApp::spawn().await;
    let (admin, acme) = admin_and_org(&app).await;
    let initech = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &admin,
            Some(&json!({"name": "Initech"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let initech = s(&initech, "id");
    // An organization she is no member of.
    let umbrella = json_of(
        app.send_as(
            Method::POST,
            "/admin/orgs",
            &admin,
            Some(&json!({"name": "Umbrella"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let umbrella = s(&umbrella, "id");
    let me = get_json(&app, "/v1/auth/me", &admin, None).await;
    assert_eq!(me["defaultOrganizationId"], acme.as_str());
    let acts_in = |token: String| {
        let app = &app;
        async move {
            s(
                &get_json(app, "/v1/me", &token, None).await["organization"],
                "id",
            )
        }
    };
    assert_eq!(acts_in(admin.clone()).await, acme);

    let out = tempfile::tempdir().unwrap();
    let refused = out.path().join("refused");
    let switch = "document.getElementById('org-switch').value";
    let picker = "document.querySelector('select[name=defaultOrganizationId]')";
    let mut steps = sign_in(&app, "/app/account", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!([
            "js",
            format!("{switch} === {acme:?} && {picker}.value === {acme:?}")
        ]),
        json!([
            "js",
            format!(
                "[...{picker}.options].map((o) => o.textContent).sort().join() === 'Acme,Initech'"
            )
        ]),
        choose(picker, &initech),
        json!([
            "click",
            "form:has(select[name=defaultOrganizationId]) button[type=submit]"
        ]),
        json!(["text", "Default organization saved."]),
        // This tab stays where it is; the account page shows the new default.
        json!([
            "js",
            format!("{switch} === {acme:?} && {picker}.value === {initech:?}")
        ]),
        // One she does not belong to is refused by the server.
        forced_fetch(
            "PATCH",
            "/v1/users/me",
            &acme,
            &json!({"defaultOrganizationId": umbrella}),
            &refused,
        ),
        // Signed out and in again: the workspace opens in Initech.
        json!(["click", "#account-menu summary"]),
        json!(["click", "#sign-out"]),
        json!(["js", "location.pathname === '/login'"]),
        json!(["fill", "#login-email", ADMIN_EMAIL]),
        json!(["fill", "#login-password", ADMIN_PASSWORD]),
        json!(["click", "#login-form button[type=submit]"]),
        rendered("/app"),
        json!(["js", format!("{switch} === {initech:?}")]),
        json!([
            "js",
            "document.querySelector('#page .lead').textContent.endsWith('owner of Initech.')"
        ]),
    ]);
    browse_with_timeout(Value::Array(steps), STEP_TIMEOUT).await;

    assert_eq!(read(&refused), "422 VALIDATION");
    let me = get_json(&app, "/v1/auth/me", &admin, None).await;
    assert_eq!(me["defaultOrganizationId"], initech.as_str());
    // A call that names no organization acts in the default one, for a new sign-in too.
    assert_eq!(acts_in(admin.clone()).await, initech);
    let fresh = s(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await, "accessToken");
    assert_eq!(acts_in(fresh).await, initech);
}

#[tokio::test]
async fn a_section_that_cannot_load_shows_the_servers_error_and_a_slow_one_its_loading_state() {
    let app = TestApp::spawn().await;
    let (admin, _org) = admin_and_org(&app).await;
    // A time filter the server cannot read, deep-linked: the entries section says what the
    // server answered (422, and what is wrong with the parameter) in an alert; the rest of
    // the page still works.
    let mut steps = sign_in(
        &app,
        "/app/audit?since=yesterday",
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    );
    steps.extend([
        json!(["js", "[...document.querySelectorAll('[role=alert]')].some((b) => !b.hidden && b.textContent.includes('The request is invalid.') && b.textContent.includes('Since: must be an RFC 3339 timestamp'))"]),
        json!(["js", "document.querySelector('#audit-filters, form') !== null"]),
        // A slow link: the next page shows its loading state until its data arrives.
        json!(["throttle", 400]),
        json!(["click", "#nav a[href='/app/organization']"]),
        json!(["js", "document.querySelector('.loading[role=status]') !== null"]),
    ]);
    browse_with_timeout(Value::Array(steps), STEP_TIMEOUT).await;
    // The server's side of the first: the same 422.
    assert_envelope(
        app.get_as("/v1/audit?since=yesterday", &admin).await,
        422,
        "VALIDATION",
    )
    .await;
}
