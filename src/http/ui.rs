//! The embedded web UI (`web/`, compiled into the binary by rust-embed) and the
//! interactive API reference at `/docs` (our page around the vendored Swagger UI,
//! `web/vendor/swagger-ui/`). Besides `/`, the UI has the pages the links
//! sealbox mails and prints open: `/reset-password`, `/invite`, and a transfer's public
//! page `/t/{id}` with its download worker `/t/download-worker.js`, and the signed-in
//! workspace `/app` with every path under it (`docs/web.md`).

use std::borrow::Cow;

use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response, Result};
use rust_embed::RustEmbed;

use crate::service::invites::INVITE_PAGE_PATH;
use crate::service::password_reset::RESET_PAGE_PATH;

/// What the UI's own pages may do: load their own scripts, styles and images, call the
/// API, run their own service worker, and nothing else (no inline script, no framing, no
/// third-party origin). Trusted Types are required: no page can hand a string to an HTML
/// or script sink (`innerHTML` and the like; the pages build their DOM from `<template>`
/// and `textContent`), and the one policy allowed, `sealbox-worker`
/// (`web/assets/js/receiver.js`), yields only the download worker's URL.
pub const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; worker-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
     require-trusted-types-for 'script'; trusted-types sealbox-worker";

/// The API reference's page (`/docs`): Swagger UI's bundle and our module load from this
/// origin like the UI's (no inline script, no `eval`), and it fetches only this server's
/// document and, with "Try it out", its API. Unlike [`UI_CSP`] it requires no Trusted
/// Types: Swagger UI (React) renders the document's Markdown through `innerHTML`.
/// `img-src data:`: its stylesheet draws icons as `data:` SVGs.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// HTML entry points are revalidated on every load so an upgrade shows at once.
const HTML_CACHE: &str = "no-cache";
/// Other assets are reused for an hour, then revalidated by ETag.
const ASSET_CACHE: &str = "public, max-age=3600";

#[derive(RustEmbed)]
#[folder = "web/"]
struct WebAssets;

/// The UI's pages: the path a browser opens and the embedded file that answers it.
/// Everything else the pages load lives under `/assets/` (and, for `/docs`, the
/// [`DOCS_FILES`]).
pub const PAGES: [(&str, &str); 9] = [
    ("/", "index.html"),
    (super::DOCS_PATH, DOCS_PAGE_FILE),
    (RESET_PAGE_PATH, "reset-password.html"),
    (INVITE_PAGE_PATH, "invite.html"),
    (LOGIN_PAGE_PATH, "login.html"),
    (SEND_PAGE_PATH, "send.html"),
    (TRANSFERS_PAGE_PATH, "transfers.html"),
    (SETUP_PAGE_PATH, "setup.html"),
    (APP_PAGE_PATH, APP_PAGE_FILE),
];

/// Signing in: then on to `?next=` (a path of this site) or the workspace, `/app`.
pub const LOGIN_PAGE_PATH: &str = "/login";
/// Sending a transfer (signed in).
pub const SEND_PAGE_PATH: &str = "/send";
/// The sender's transfers (signed in).
pub const TRANSFERS_PAGE_PATH: &str = "/transfers";
/// First-run setup, opened from the link `sealbox serve` prints (`?token=`).
pub const SETUP_PAGE_PATH: &str = "/setup";
/// The signed-in workspace and admin console: one page whose script routes by URL, so
/// `/app` and every path under it (`/app/audit`, `/app/files/{id}`) serve the same file
/// and a deep link or a reload lands on the page it names.
pub const APP_PAGE_PATH: &str = "/app";
/// The route of the paths under `/app` (poem syntax); [`APP_PAGES_TEMPLATE`] is the same
/// for the `Allow` index.
pub const APP_PAGES_ROUTE: &str = "/app/*path";
pub const APP_PAGES_TEMPLATE: &str = "/app/*";
const APP_PAGE_FILE: &str = "app.html";

/// The route of a transfer's public page (poem syntax); [`TRANSFER_PAGE_TEMPLATE`] is the
/// same in the `{param}` syntax of the `Allow` index.
pub const TRANSFER_PAGE_ROUTE: &str = "/t/:id";
pub const TRANSFER_PAGE_TEMPLATE: &str = "/t/{id}";
/// The embedded file behind `/t/{transfer id}`.
const TRANSFER_PAGE_FILE: &str = "transfer.html";
/// The download worker: served under `/t/` so its default scope covers the downloads it
/// answers (`/t/download/...`) and nothing else of the UI.
pub const DOWNLOAD_WORKER_PATH: &str = "/t/download-worker.js";
const DOWNLOAD_WORKER_FILE: &str = "assets/js/download-worker.js";

/// The API reference's page, served with [`DOCS_CSP`].
const DOCS_PAGE_FILE: &str = "docs.html";
/// The route of the vendored Swagger UI files the page loads (poem syntax); only
/// [`DOCS_FILES`] answer under it.
pub const DOCS_FILES_ROUTE: &str = "/docs/*path";
/// What `/docs` loads besides our module: the vendored files, refreshed from the npm
/// registry by `scripts/vendor-swagger-ui` (version and integrity in its `VERSION`).
const DOCS_FILES: [(&str, &str); 2] = [
    (
        "/docs/swagger-ui-bundle.js",
        "vendor/swagger-ui/swagger-ui-bundle.js",
    ),
    ("/docs/swagger-ui.css", "vendor/swagger-ui/swagger-ui.css"),
];

/// No page of the UI tells another site where the user came from: a transfer page's path
/// names the transfer, and a link page's query holds a token.
pub const REFERRER_POLICY: &str = "no-referrer";

/// The embedded file that answers `path`, if any.
fn file_for(path: &str) -> Option<&str> {
    if let Some((_, file)) = PAGES.iter().find(|(page, _)| *page == path) {
        return Some(file);
    }
    if path.starts_with("/assets/") {
        return Some(&path[1..]);
    }
    if path == DOWNLOAD_WORKER_PATH {
        return Some(DOWNLOAD_WORKER_FILE);
    }
    if let Some((_, file)) = DOCS_FILES.iter().find(|(served, _)| *served == path) {
        return Some(file);
    }
    if path.starts_with("/app/") {
        return Some(APP_PAGE_FILE);
    }
    // `/t/{id}`: only a UUID, so other paths under /t/ stay 404.
    let id = path.strip_prefix("/t/")?;
    uuid::Uuid::try_parse(id).ok()?;
    Some(TRANSFER_PAGE_FILE)
}

/// Serves the [`PAGES`], the transfer page, its worker, `GET /assets/...` and the API
/// reference's vendored files from the embedded files.
pub struct WebUi;

impl Endpoint for WebUi {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return Err(MethodNotAllowedError.into());
        }
        let requested = req.uri().path();
        let path = file_for(requested).ok_or(NotFoundError)?;
        let file = WebAssets::get(path).ok_or(NotFoundError)?;

        // The status page carries the version, filled in here so that it shows without
        // script (and its tag changes with the binary, not only with the file).
        let data = if path == STATUS_PAGE_FILE {
            Cow::Owned(fill_versions(&file.data).into_bytes())
        } else {
            file.data
        };
        let etag = format!(
            "\"{}-{}\"",
            hex(&file.metadata.sha256_hash()[..16]),
            env!("CARGO_PKG_VERSION")
        );
        // Pages and the worker are revalidated on every load, so an upgrade shows at once.
        let cache = if path.ends_with(".html") || path == DOWNLOAD_WORKER_FILE {
            HTML_CACHE
        } else {
            ASSET_CACHE
        };
        let builder = Response::builder()
            .header(header::ETAG, etag.as_str())
            .header(header::CACHE_CONTROL, cache)
            .header(
                header::CONTENT_SECURITY_POLICY,
                if path == DOCS_PAGE_FILE {
                    DOCS_CSP
                } else {
                    UI_CSP
                },
            )
            .header(header::REFERRER_POLICY, REFERRER_POLICY);

        let not_modified = req
            .headers()
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag.as_str())
            });
        if not_modified {
            return Ok(builder.status(StatusCode::NOT_MODIFIED).finish());
        }

        let mime = file.metadata.mimetype();
        let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_owned()
        };
        let builder = builder.header(header::CONTENT_TYPE, content_type);
        if req.method() == Method::HEAD {
            // No body, but the length a GET would send.
            let mut response = builder.finish();
            if let Ok(len) = HeaderValue::from_str(&data.len().to_string()) {
                response.headers_mut().insert(header::CONTENT_LENGTH, len);
            }
            return Ok(response);
        }
        // Embedded files are sent from the binary's own bytes, not a copy per request (the
        // API reference's bundle is 1.7 MB; issue 20).
        let body = match data {
            Cow::Borrowed(bytes) => Body::from(bytes),
            Cow::Owned(bytes) => Body::from(bytes),
        };
        Ok(builder.body(body))
    }
}

/// The status page's file; its `{{version}}` and `{{api-version}}` are filled in.
const STATUS_PAGE_FILE: &str = "index.html";

fn fill_versions(page: &[u8]) -> String {
    String::from_utf8_lossy(page)
        .replace("{{version}}", env!("CARGO_PKG_VERSION"))
        .replace("{{api-version}}", super::middleware::API_VERSION)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
