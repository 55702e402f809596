//! The embedded web UI and the API reference, as a browser receives them.

use sealbox::http::ui::{DOCS_CSP, UI_CSP};

use crate::support::TestApp;

#[tokio::test]
async fn index_is_served_from_the_binary_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], UI_CSP);
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers["etag"].to_str().unwrap().starts_with('"'));
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>sealbox</title>"));
    assert!(
        !html.contains("<script>"),
        "no inline script: the policy would block it"
    );

    // Every asset the page references is served.
    for asset in ["/assets/app.css", "/assets/app.js", "/assets/favicon.svg"] {
        assert!(html.contains(asset), "{asset} referenced");
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
    }
    assert_eq!(
        app.get("/assets/app.js").await.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test]
async fn etags_make_revalidation_cheap() {
    let app = TestApp::spawn().await;
    let etag = app.get("/assets/app.css").await.headers()["etag"].clone();
    let revalidated = app
        .client
        .get(app.url("/assets/app.css"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag);
    assert!(revalidated.bytes().await.unwrap().is_empty());

    let stale = app
        .client
        .get(app.url("/assets/app.css"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn head_gives_headers_without_a_body() {
    let app = TestApp::spawn().await;
    let get_len = app.get("/assets/app.js").await.bytes().await.unwrap().len();
    let head = app
        .client
        .head(app.url("/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        get_len.to_string().as_str()
    );
}

#[tokio::test]
async fn docs_are_an_interactive_reference_served_without_a_cdn() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-security-policy"], DOCS_CSP);
    let html = response.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"), "Swagger UI is embedded");
    assert!(html.contains("getWelcome"), "the document is inlined");
    for cdn in ["unpkg.com", "cdn.jsdelivr", "cdnjs"] {
        assert!(!html.contains(cdn), "loads from {cdn}");
    }
}
