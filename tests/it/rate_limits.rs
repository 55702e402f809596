//! Rate limits: headers on every limited response, 429 with Retry-After beyond the budget,
//! budgets per address and per credential, /health exempt.

use reqwest::Method;

use crate::support::{TestApp, assert_envelope, s};

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_address_budget_counts_down_then_refuses_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.rate_limits.per_ip_per_minute = 3).await;
    for remaining in [2, 1, 0] {
        let response = app.get("/v1/welcome").await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit"), "3");
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            remaining.to_string()
        );
        assert_eq!(header(&response, "x-ratelimit-policy"), "3;w=60");
        assert_eq!(header(&response, "ratelimit-policy"), "\"ip\";q=3;w=60");
        let ietf = header(&response, "ratelimit");
        assert!(
            ietf.starts_with(&format!("\"ip\";r={remaining};t=")),
            "{ietf}"
        );
        let reset: u64 = header(&response, "x-ratelimit-reset").parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(reset >= now && reset <= now + 61, "{reset} vs {now}");
    }
    let refused = app.get("/v1/welcome").await;
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    let error = assert_envelope(refused, 429, "RATE_LIMITED").await;
    assert!(error["message"].as_str().unwrap().contains("ip"), "{error}");
    // Probes are never limited.
    for _ in 0..5 {
        let health = app.get("/health").await;
        assert_eq!(health.status(), 200);
        assert!(health.headers().get("x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn each_credential_has_its_own_budget() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limits.per_token_per_minute = 2;
        c.rate_limits.per_api_key_per_minute = 3;
    })
    .await;
    let first = s(&app.setup_admin().await, "accessToken");
    let second = s(
        &app.login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
            .await,
        "accessToken",
    );
    for _ in 0..2 {
        let response = app.get_as("/v1/auth/me", &first).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-policy"), "\"token\";q=2;w=60");
    }
    assert_envelope(app.get_as("/v1/auth/me", &first).await, 429, "RATE_LIMITED").await;
    // Another token of the same user, from the same address, still has its budget.
    let created = app
        .send_as(
            Method::POST,
            "/v1/api-keys",
            &second,
            Some(&serde_json::json!({"name": "k"})),
            None,
        )
        .await;
    assert_eq!(created.status(), 201);
    let key = s(&created.json().await.unwrap(), "key");
    for remaining in [2, 1, 0] {
        let response = app
            .client
            .get(app.url("/v1/me"))
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let ietf = header(&response, "ratelimit");
        assert!(
            ietf.starts_with(&format!("\"api_key\";r={remaining};t=")),
            "{ietf}"
        );
    }
    let refused = app
        .client
        .get(app.url("/v1/me"))
        .header("X-Api-Key", &key)
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("retry-after").is_some());
    assert_envelope(refused, 429, "RATE_LIMITED").await;
}
