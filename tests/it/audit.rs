//! The audit log: what it records, who may read it, filters and cursors, and the BLAKE3
//! hash chain catching entries edited, deleted or reordered directly in the SQLite file,
//! by `GET /v1/audit/verify` and by `sealbox audit verify` alike.

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, TestApp, assert_envelope, json_of, s};

async fn acme() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    let pair = app.setup_admin().await;
    let org = s(&pair["user"]["organizations"][0], "id");
    (app, s(&pair, "accessToken"), org)
}

/// Three API keys created and one revoked: four entries in Acme's chain after setup's.
async fn some_activity(app: &TestApp, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let key = json_of(
            app.send_as(
                Method::POST,
                "/v1/api-keys",
                token,
                Some(&json!({"name": name})),
                None,
            )
            .await,
            201,
        )
        .await;
        ids.push(s(&key, "id"));
    }
    let revoked = app
        .delete_as(&format!("/v1/api-keys/{}", ids[0]), token)
        .await;
    assert_eq!(revoked.status(), 204);
    ids
}

async fn audit(app: &TestApp, token: &str, query: &str) -> (Vec<Value>, Option<String>) {
    let response = app.get_as(&format!("/v1/audit{query}"), token).await;
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    let entries = json_of(response, 200).await;
    (entries.as_array().unwrap().clone(), link)
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

/// `sealbox audit verify` on the app's data directory: exit success and standard output.
fn cli_verify(data_dir: &Path) -> (bool, String) {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sealbox"))
        .env_clear()
        .env("HOME", home.path())
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), stdout)
}

async fn verify(app: &TestApp, token: &str) -> Value {
    json_of(app.get_as("/v1/audit/verify", token).await, 200).await
}

#[tokio::test]
async fn entries_record_who_did_what_newest_first_with_filters() {
    let (app, admin, acme) = acme().await;
    let keys = some_activity(&app, &admin).await;
    let failed = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": ADMIN_EMAIL, "password": "not the password"}),
        )
        .await;
    assert_eq!(failed.status(), 401);

    let (entries, link) = audit(&app, &admin, "").await;
    assert!(link.is_none(), "one page holds everything: {link:?}");
    assert_eq!(
        &actions(&entries)[..5],
        [
            "auth.login",
            "api_key.revoked",
            "api_key.created",
            "api_key.created",
            "api_key.created"
        ]
    );
    let failure = &entries[0];
    assert_eq!(failure["outcome"], "failure");
    assert_eq!(failure["organizationId"], acme.as_str());
    let revoked = &entries[1];
    assert_eq!(revoked["targetId"], keys[0].as_str());
    assert_eq!(revoked["targetType"], "api_key");
    assert_eq!(revoked["outcome"], "success");
    assert_eq!(revoked["ip"], "127.0.0.1");
    assert!(
        revoked["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(
        revoked["prevHash"], entries[2]["hash"],
        "newest first, chained"
    );
    let admin_id = s(revoked, "actorUserId");

    let (created, _) = audit(&app, &admin, "?action=api_key.created").await;
    assert_eq!(created.len(), 3);
    let (about_key, _) = audit(&app, &admin, &format!("?target={}", keys[0])).await;
    assert_eq!(actions(&about_key), ["api_key.revoked", "api_key.created"]);
    let (by_admin, _) = audit(
        &app,
        &admin,
        &format!("?actor={admin_id}&action=api_key.revoked"),
    )
    .await;
    assert_eq!(by_admin.len(), 1);

    let since = s(&entries[3], "createdAt");
    let until = s(&entries[1], "createdAt");
    let (window, _) = audit(&app, &admin, &format!("?since={since}&until={until}")).await;
    assert!(window.iter().all(|e| {
        let at = e["createdAt"].as_str().unwrap();
        at >= since.as_str() && at < until.as_str()
    }));
    assert!(
        window.iter().any(|e| e["id"] == entries[3]["id"]),
        "since is inclusive"
    );
    let (future, _) = audit(&app, &admin, "?since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());

    for (query, path) in [
        ("?since=yesterday", "since"),
        ("?until=2026-13-01T00:00:00Z", "until"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?before=00000000-0000-0000-0000-000000000000", "before"),
    ] {
        let refused = app.get_as(&format!("/v1/audit{query}"), &admin).await;
        let body = assert_envelope(refused, 422, "VALIDATION").await;
        assert_eq!(body["details"][0]["path"], path, "{query}");
    }
}

#[tokio::test]
async fn cursors_page_through_the_log_with_link_headers() {
    let (app, admin, acme) = acme().await;
    some_activity(&app, &admin).await;
    some_activity(&app, &admin).await;
    let (everything, _) = audit(&app, &admin, "?limit=200").await;
    assert!(everything.len() >= 8);

    let mut seen = Vec::new();
    let mut next = Some("/v1/audit?limit=3".to_owned());
    while let Some(path) = next.take() {
        let response = app.get_as(&path, &admin).await;
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            let target = &link[1..link.find('>').unwrap()];
            assert!(
                target.contains("limit=3") && target.contains("before="),
                "{target}"
            );
            target.to_owned()
        });
        let page = json_of(response, 200).await;
        assert!(page.as_array().unwrap().len() <= 3);
        seen.extend(page.as_array().unwrap().iter().map(|e| e["id"].clone()));
    }
    let all_ids: Vec<Value> = everything.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(seen, all_ids, "pages cover the log once, in order");

    // `after` lists what is newer than an entry, still newest first, nearest page first.
    let oldest = everything.last().unwrap();
    let (newer, link) = audit(&app, &admin, &format!("?limit=2&after={}", s(oldest, "id"))).await;
    let n = everything.len();
    assert_eq!(newer, everything[n - 3..n - 1].to_vec());
    assert!(
        link.unwrap()
            .contains(&format!("after={}", s(&newer[0], "id")))
    );

    // The same log through /v1/audit-logs?organizationId=.
    let listed = json_of(
        app.get_as(
            &format!("/v1/audit-logs?organizationId={acme}&limit=200"),
            &admin,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(listed.as_array().unwrap(), &everything);
}

/// A filter and a cursor together (each its own index range since migration 17): the
/// pages of one action cover exactly that action's entries, in order, both ways.
#[tokio::test]
async fn a_filtered_listing_pages_with_its_cursor() {
    let (app, admin, _) = acme().await;
    some_activity(&app, &admin).await;
    some_activity(&app, &admin).await;
    let (everything, _) = audit(&app, &admin, "?limit=200").await;
    let created: Vec<Value> = everything
        .iter()
        .filter(|e| e["action"] == "api_key.created")
        .cloned()
        .collect();
    assert_eq!(created.len(), 6);

    let mut seen = Vec::new();
    let mut next = Some("/v1/audit?action=api_key.created&limit=4".to_owned());
    while let Some(path) = next.take() {
        let response = app.get_as(&path, &admin).await;
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            link[1..link.find('>').unwrap()].to_owned()
        });
        let page = json_of(response, 200).await;
        seen.extend(page.as_array().unwrap().iter().cloned());
    }
    assert_eq!(
        seen, created,
        "the filtered pages cover its entries once, in order"
    );

    let oldest = created.last().unwrap();
    let (newer, _) = audit(
        &app,
        &admin,
        &format!("?action=api_key.created&limit=2&after={}", s(oldest, "id")),
    )
    .await;
    assert_eq!(newer, created[3..5].to_vec());
}

#[tokio::test]
async fn owners_admins_auditors_and_audit_read_keys_may_read_it_no_one_else() {
    let (app, owner, acme) = acme().await;
    let member = app
        .invite_and_register(&owner, &acme, "mia@example.com", "member")
        .await;
    let auditor = app
        .invite_and_register(&owner, &acme, "aud@example.com", "auditor")
        .await;
    let admin = app
        .invite_and_register(&owner, &acme, "adm@example.com", "admin")
        .await;
    for token in [
        &owner,
        &s(&auditor, "accessToken"),
        &s(&admin, "accessToken"),
    ] {
        assert_eq!(app.get_as("/v1/audit", token).await.status(), 200);
        assert_eq!(app.get_as("/v1/audit/verify", token).await.status(), 200);
    }
    for path in ["/v1/audit", "/v1/audit/verify"] {
        let refused = app.get_as(path, &s(&member, "accessToken")).await;
        let body = assert_envelope(refused, 403, "FORBIDDEN").await;
        assert!(body["message"].as_str().unwrap().contains("audit:read"));
    }

    let key_with = |scopes: Value| {
        let (app, owner) = (&app, &owner);
        async move {
            let key = json_of(
                app.send_as(
                    Method::POST,
                    "/v1/api-keys",
                    owner,
                    Some(&json!({"name": "siem", "scopes": scopes})),
                    None,
                )
                .await,
                201,
            )
            .await;
            s(&key, "key")
        }
    };
    let reader = key_with(json!(["audit:read"])).await;
    assert_eq!(app.get_as("/v1/audit", &reader).await.status(), 200);
    let other = key_with(json!(["files:read"])).await;
    let refused = app.get_as("/v1/audit", &other).await;
    assert_envelope(refused, 403, "FORBIDDEN").await;

    // Another organization's log does not exist for an outsider.
    let outsider = app
        .invite_and_register(&owner, &acme, "out@example.com", "member")
        .await;
    let globex = json_of(
        app.send_as(
            Method::POST,
            "/v1/organizations",
            &s(&outsider, "accessToken"),
            Some(&json!({"name": "Globex"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let theirs = format!("/v1/audit-logs?organizationId={}", s(&globex, "id"));
    assert_envelope(app.get_as(&theirs, &owner).await, 404, "NOT_FOUND").await;
    let mine = format!("/v1/audit-logs?organizationId={acme}");
    assert_envelope(
        app.get_as(&mine, &s(&outsider, "accessToken")).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let unknown = "/v1/audit-logs?organizationId=not-an-id";
    assert_envelope(app.get_as(unknown, &owner).await, 404, "NOT_FOUND").await;
    let unauthenticated = app.get("/v1/audit").await;
    assert_envelope(unauthenticated, 401, "UNAUTHORIZED").await;
}

/// How an attacker with the database file rewrites history.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    Edit,
    Delete,
    Reorder,
    DeleteNewest,
}

/// Tampers with Acme's entries (ordered by seq) directly in the SQLite file, dropping the
/// triggers first as an attacker would. Returns the id verification must blame, if any.
fn tamper(db: &Path, org: &str, how: Tamper) -> Option<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_log_is_append_only_update;
         DROP TRIGGER audit_log_deletes_only_pruned;",
    )
    .unwrap();
    let rows: Vec<(i64, String)> = {
        let mut stmt = conn
            .prepare("SELECT seq, id FROM audit_log WHERE org_id = ?1 ORDER BY seq")
            .unwrap();
        stmt.query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(rows.len() >= 5);
    let (seq, id) = rows[2].clone();
    match how {
        Tamper::Edit => {
            conn.execute(
                "UPDATE audit_log SET actor_user_id = 'someone-else' WHERE seq = ?1",
                [seq],
            )
            .unwrap();
            Some(id)
        }
        Tamper::Delete => {
            conn.execute("DELETE FROM audit_log WHERE seq = ?1", [seq])
                .unwrap();
            Some(rows[3].1.clone())
        }
        Tamper::Reorder => {
            let next = rows[3].0;
            // Swap every column but the row number: the two entries change places.
            conn.execute_batch(&format!(
                "UPDATE audit_log SET seq = -1 WHERE seq = {seq};
                 UPDATE audit_log SET seq = {seq} WHERE seq = {next};
                 UPDATE audit_log SET seq = {next} WHERE seq = -1;"
            ))
            .unwrap();
            Some(rows[3].1.clone())
        }
        Tamper::DeleteNewest => {
            let newest = rows.last().unwrap().0;
            conn.execute("DELETE FROM audit_log WHERE seq = ?1", [newest])
                .unwrap();
            None
        }
    }
}

#[tokio::test]
async fn verification_catches_an_edited_a_deleted_and_a_reordered_entry() {
    for how in [
        Tamper::Edit,
        Tamper::Delete,
        Tamper::Reorder,
        Tamper::DeleteNewest,
    ] {
        let (app, admin, acme) = acme().await;
        some_activity(&app, &admin).await;
        let intact = verify(&app, &admin).await;
        assert_eq!(intact["valid"], true, "{how:?}: {intact}");
        assert_eq!(intact["organizationId"], acme.as_str());
        assert!(intact["entries"].as_u64().unwrap() >= 5);
        assert_eq!(intact["anchorHash"], "0".repeat(64));
        let (ok, report) = cli_verify(&app.data_dir);
        assert!(ok, "{how:?}: {report}");
        assert!(report.contains("audit log intact"), "{report}");

        let blamed = tamper(&app.data_dir.join("sealbox.db"), &acme, how);

        let broken = verify(&app, &admin).await;
        assert_eq!(broken["valid"], false, "{how:?}: {broken}");
        assert!(broken["problem"].as_str().is_some(), "{broken}");
        match &blamed {
            Some(id) => assert_eq!(broken["brokenAt"], id.as_str(), "{how:?}: {broken}"),
            None => assert!(broken["problem"].as_str().unwrap().contains("newest")),
        }
        let (ok, report) = cli_verify(&app.data_dir);
        assert!(!ok, "{how:?}: the CLI must fail: {report}");
        assert!(
            report.contains(&format!("TAMPERED  organization {acme}")),
            "{report}"
        );
        if let Some(id) = blamed {
            assert!(report.contains(&id), "{report}");
        }
    }
}

#[tokio::test]
async fn the_database_refuses_edits_and_unpruned_deletes() {
    let (app, admin, _) = acme().await;
    some_activity(&app, &admin).await;
    let conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
    let edit = conn.execute("UPDATE audit_log SET action = 'nothing'", []);
    assert!(edit.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM audit_log", []);
    assert!(delete.unwrap_err().to_string().contains("retention"));
    let rewind = conn.execute("UPDATE audit_chains SET head_seq = 0", []);
    assert!(rewind.unwrap_err().to_string().contains("forward"));
    assert_eq!(verify(&app, &admin).await["valid"], true);
}

#[tokio::test]
async fn pruning_old_entries_leaves_a_chain_that_still_verifies() {
    let (app, admin, _) = acme().await;
    some_activity(&app, &admin).await;
    let before = verify(&app, &admin).await;
    let cutoff = sealbox::ids::now_rfc3339();
    {
        let mut conn = rusqlite::Connection::open(app.data_dir.join("sealbox.db")).unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let removed = sealbox::store::audit::prune_before(&tx, &cutoff).unwrap();
        tx.commit().unwrap();
        assert!(removed as u64 >= before["entries"].as_u64().unwrap());
    }
    let (left, _) = audit(&app, &admin, "").await;
    assert!(
        left.iter()
            .all(|e| e["createdAt"].as_str().unwrap() >= cutoff.as_str())
    );

    some_activity(&app, &admin).await;
    let after = verify(&app, &admin).await;
    assert_eq!(after["valid"], true, "{after}");
    assert_eq!(
        after["anchorHash"], before["headHash"],
        "verification starts at the last pruned entry"
    );
    assert_eq!(after["entries"], 4);
    let (ok, report) = cli_verify(&app.data_dir);
    assert!(ok, "{report}");
}

#[tokio::test]
async fn the_audit_page_says_where_a_tampered_chain_breaks() {
    use crate::support::ADMIN_PASSWORD;
    use crate::web_ui::browse;
    use crate::web_workspace::sign_in;

    let (app, admin, acme) = acme().await;
    some_activity(&app, &admin).await;
    let blamed = tamper(&app.data_dir.join("sealbox.db"), &acme, Tamper::Edit)
        .expect("an edit is blamed on its entry");
    let mut steps = sign_in(&app, "/app/audit", ADMIN_EMAIL, ADMIN_PASSWORD);
    steps.extend([
        json!(["click", "#verify-chain"]),
        json!(["text", format!("The chain is broken at entry {blamed}")]),
        json!([
            "js",
            "document.querySelector('#verify-result [data-kind=error]') !== null"
        ]),
    ]);
    browse(Value::Array(steps)).await;
}
