//! File conversions (docs/conversions.md): real sample files made by the test (Pillow,
//! openpyxl, plain bytes) converted through the API, each result downloaded and read by an
//! independent reader (Pillow, Python's csv and json, html.parser); decompression bombs
//! and oversized images refused; jobs surviving a restart; `convert:write`, the plan
//! feature and the daily quota enforced; and every refusal in the envelope.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::api_keys::create_key;
use crate::support::{TestApp, assert_envelope, json_of, s, venv_python};

const SECRET: &str = "owner-secret-phrase";

fn samples_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conversions/samples.py")
}

/// Runs `samples.py` with `args`; its stdout.
fn samples(args: &[&str]) -> String {
    let out = std::process::Command::new(venv_python())
        .arg(samples_script())
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "samples.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A sample file's bytes (`make KIND OUT ARGS...`).
fn make(dir: &Path, kind: &str, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let mut all = vec!["make", kind, path.to_str().unwrap()];
    all.extend_from_slice(args);
    samples(&all);
    std::fs::read(path).unwrap()
}

/// What the independent reader finds in `bytes` (`check KIND FILE`).
fn check(dir: &Path, kind: &str, bytes: &[u8]) -> Value {
    let path = dir.join(format!("result-{}", uuid::Uuid::now_v7()));
    std::fs::write(&path, bytes).unwrap();
    serde_json::from_str(&samples(&["check", kind, path.to_str().unwrap()])).unwrap()
}

struct Owner {
    app: TestApp,
    token: String,
    org: String,
    dir: tempfile::TempDir,
}

async fn owner_with(adjust: impl FnOnce(&mut sealbox::config::Config)) -> Owner {
    let app = TestApp::spawn_with(adjust).await;
    let pair = app.setup_admin().await;
    let token = s(&pair, "accessToken");
    let org = s(&pair["user"]["organizations"][0], "id");
    app.generate_keys(&token, SECRET).await;
    Owner {
        app,
        token,
        org,
        dir: tempfile::TempDir::new().unwrap(),
    }
}

async fn post(o: &Owner, path: &str, credential: &str, body: &Value) -> reqwest::Response {
    o.app
        .client
        .post(o.app.url(path))
        .bearer_auth(credential)
        .header("X-User-Secret", SECRET)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn convert(o: &Owner, body: Value) -> Value {
    json_of(post(o, "/v1/conversions", &o.token, &body).await, 202).await
}

/// Polls the conversion until it has finished.
async fn finished(o: &Owner, id: &str) -> Value {
    for _ in 0..600 {
        let job = json_of(
            o.app
                .get_as(&format!("/v1/conversions/{id}"), &o.token)
                .await,
            200,
        )
        .await;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("conversion {id} did not finish");
}

/// A file's plaintext, through a download link.
async fn download(o: &Owner, file: &str) -> Vec<u8> {
    let link = json_of(
        o.app
            .client
            .get(o.app.url(&format!("/v1/files/{file}/download")))
            .bearer_auth(&o.token)
            .header("X-User-Secret", SECRET)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let got = o.app.client.get(s(&link, "url")).send().await.unwrap();
    assert_eq!(got.status(), 200);
    got.bytes().await.unwrap().to_vec()
}

/// Converts `file` and returns the result's bytes, checking the job went well.
async fn converted(o: &Owner, body: Value) -> (Value, Vec<u8>) {
    let queued = convert(o, body).await;
    let done = finished(o, &s(&queued, "id")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"], 100);
    let bytes = download(o, &s(&done, "resultFileId")).await;
    (done, bytes)
}

#[tokio::test]
async fn formats_list_every_converter_with_its_options() {
    let o = owner_with(|_| {}).await;
    let formats = json_of(o.app.get_as("/v1/formats", &o.token).await, 200).await;
    let pairs = formats.as_array().unwrap();
    let find = |from: &str, to: &str| {
        pairs
            .iter()
            .find(|p| p["from"] == from && p["to"] == to)
            .cloned()
    };
    let names = |p: Value| -> Vec<String> {
        p["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| s(o, "name"))
            .collect()
    };
    let images = ["png", "jpeg", "webp", "gif", "bmp", "tiff"];
    for from in images {
        for to in images {
            let pair = find(from, to).unwrap_or_else(|| panic!("{from} -> {to}"));
            let options = names(pair.clone());
            assert!(options.contains(&"width".to_owned()), "{pair}");
            assert_eq!(options.contains(&"quality".to_owned()), to == "jpeg");
        }
    }
    assert_eq!(find("png", "jpeg").unwrap()["contentType"], "image/jpeg");
    for (from, to) in [
        ("csv", "json"),
        ("csv", "jsonl"),
        ("json", "csv"),
        ("jsonl", "csv"),
        ("xlsx", "csv"),
        ("ods", "csv"),
        ("markdown", "html"),
        ("text", "text"),
    ] {
        assert!(find(from, to).is_some(), "{from} -> {to}");
    }
    assert!(find("png", "csv").is_none());
    assert!(find("html", "markdown").is_none());
    assert_eq!(pairs.len(), 36 + 6 + 4 + 1 + 1);
    // Any valid credential; none at all is 401.
    assert_envelope(o.app.get("/v1/formats").await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn images_convert_between_every_format_and_pillow_reads_them_without_metadata() {
    let o = owner_with(|_| {}).await;
    let png = make(o.dir.path(), "image", "in.png", &["PNG", "64", "48"]);
    let jpeg = make(o.dir.path(), "image", "in.jpg", &["JPEG", "64", "48"]);
    // The samples do carry metadata.
    assert_eq!(check(o.dir.path(), "image", &png)["leaked"], true);
    assert_eq!(check(o.dir.path(), "image", &jpeg)["exif"], true);
    let png_id = o
        .app
        .upload_file(&o.token, "photo.png", &png, "server")
        .await;
    let jpeg_id = o
        .app
        .upload_file(&o.token, "camera.jpg", &jpeg, "server")
        .await;

    for (to, format) in [
        ("jpeg", "JPEG"),
        ("webp", "WEBP"),
        ("gif", "GIF"),
        ("bmp", "BMP"),
        ("tiff", "TIFF"),
        ("png", "PNG"),
    ] {
        let (_, bytes) = converted(&o, json!({"fileId": png_id, "from": "png", "to": to})).await;
        let seen = check(o.dir.path(), "image", &bytes);
        assert_eq!(seen["format"], format, "{seen}");
        assert_eq!(
            (seen["width"].as_u64(), seen["height"].as_u64()),
            (Some(64), Some(48))
        );
        let (left, right) = (&seen["left"], &seen["right"]);
        assert!(
            left[0].as_u64().unwrap() > 180 && left[2].as_u64().unwrap() < 70,
            "{seen}"
        );
        assert!(
            right[2].as_u64().unwrap() > 180 && right[0].as_u64().unwrap() < 70,
            "{seen}"
        );
        // The PNG's text chunk is not carried over.
        assert_eq!(seen["leaked"], false, "{to}: {seen}");
        // (A TIFF's own tags are its structure, which Pillow also reports as EXIF.)
        if to != "tiff" {
            assert_eq!(seen["exif"], false, "{to}: {seen}");
        }
    }

    // JPEG with EXIF to PNG, resized to a width (the height follows): no EXIF left.
    let (done, bytes) = converted(
        &o,
        json!({"fileId": jpeg_id, "from": "jpeg", "to": "png", "options": {"width": 32}}),
    )
    .await;
    let seen = check(o.dir.path(), "image", &bytes);
    assert_eq!(
        (seen["width"].as_u64(), seen["height"].as_u64()),
        (Some(32), Some(24))
    );
    assert_eq!(seen["exif"], false, "{seen}");
    assert_eq!(seen["leaked"], false, "{seen}");
    assert_eq!(done["from"], "jpeg");
    // Cover crops to the box; fill stretches; a JPEG quality is taken.
    let (_, bytes) = converted(
        &o,
        json!({"fileId": png_id, "from": "png", "to": "jpeg",
               "options": {"width": 20, "height": 20, "fit": "cover", "quality": 60}}),
    )
    .await;
    let seen = check(o.dir.path(), "image", &bytes);
    assert_eq!(
        (seen["width"].as_u64(), seen["height"].as_u64()),
        (Some(20), Some(20))
    );
    let (_, bytes) = converted(
        &o,
        json!({"fileId": png_id, "from": "png", "to": "webp",
               "options": {"width": 10, "height": 30, "fit": "fill"}}),
    )
    .await;
    let seen = check(o.dir.path(), "image", &bytes);
    assert_eq!(
        (seen["width"].as_u64(), seen["height"].as_u64()),
        (Some(10), Some(30))
    );

    // The result is a new file of the owner, named after the source.
    let files = json_of(
        o.app
            .client
            .get(o.app.url("/v1/files"))
            .bearer_auth(&o.token)
            .header("X-User-Secret", SECRET)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let result = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == done["resultFileId"])
        .expect("the result is listed");
    assert_eq!(result["fileName"], "camera.png");
    assert_eq!(result["contentType"], "image/png");

    // Bulk: several at once, in order, all queued.
    let bulk = json_of(
        post(
            &o,
            "/v1/conversions/bulk",
            &o.token,
            &json!({"items": [
                {"fileId": png_id, "from": "png", "to": "gif"},
                {"fileId": jpeg_id, "from": "jpeg", "to": "bmp"},
            ]}),
        )
        .await,
        202,
    )
    .await;
    let items = bulk["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["to"], "bmp");
    for item in items {
        let done = finished(&o, &s(item, "id")).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }

    // Listing pages newest first.
    let page = o.app.get_as("/v1/conversions?limit=3", &o.token).await;
    assert!(page.headers().get("link").is_some());
    let page = json_of(page, 200).await;
    assert_eq!(page.as_array().unwrap().len(), 3);
    assert_eq!(page[0]["id"], items[1]["id"]);
}

#[tokio::test]
async fn decompression_bombs_and_oversized_images_are_refused() {
    let o = owner_with(|c| {
        c.conversions.max_dimension = 1000;
        c.conversions.max_input_bytes = 2 * 1024 * 1024;
    })
    .await;
    // 20000 x 20000 pixels (400 megapixels of zeros) in a few hundred KB.
    let bomb = make(o.dir.path(), "bomb", "bomb.png", &["20000"]);
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    let bomb_id = o
        .app
        .upload_file(&o.token, "bomb.png", &bomb, "server")
        .await;
    let job = convert(&o, json!({"fileId": bomb_id, "from": "png", "to": "jpeg"})).await;
    let done = finished(&o, &s(&job, "id")).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = s(&done, "error");
    assert!(
        error.contains("larger than this server converts") || error.contains("decompression bomb"),
        "{error}"
    );
    assert!(done.get("resultFileId").is_none());

    // Within the pixel budget but wider than max_dimension.
    let wide = make(o.dir.path(), "image", "wide.png", &["PNG", "1200", "10"]);
    let wide_id = o
        .app
        .upload_file(&o.token, "wide.png", &wide, "server")
        .await;
    let job = convert(&o, json!({"fileId": wide_id, "from": "png", "to": "gif"})).await;
    let done = finished(&o, &s(&job, "id")).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        s(&done, "error").contains("larger than this server converts"),
        "{done}"
    );

    // Asking for a larger output than max_dimension is refused at once (422).
    let small = make(o.dir.path(), "image", "small.png", &["PNG", "8", "8"]);
    let small_id = o
        .app
        .upload_file(&o.token, "small.png", &small, "server")
        .await;
    let refused = assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": small_id, "from": "png", "to": "jpeg", "options": {"width": 5000}}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(refused["details"][0]["path"], "options.width", "{refused}");

    // A file above max_input_bytes is refused when asked.
    let big = vec![7u8; 3 * 1024 * 1024];
    let big_id = o.app.upload_file(&o.token, "big.png", &big, "server").await;
    let refused = assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": big_id, "from": "png", "to": "jpeg"}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(refused["details"][0]["path"], "fileId", "{refused}");

    // Garbage that claims to be a PNG fails with the reader's reason.
    let junk_id = o
        .app
        .upload_file(&o.token, "junk.png", b"not an image", "server")
        .await;
    let job = convert(&o, json!({"fileId": junk_id, "from": "png", "to": "jpeg"})).await;
    let done = finished(&o, &s(&job, "id")).await;
    assert_eq!(done["status"], "failed");
    assert!(s(&done, "error").contains("not a readable PNG"), "{done}");
}

#[tokio::test]
async fn refusals_answer_with_the_envelope() {
    let o = owner_with(|c| c.conversions.concurrency = 0).await;
    let png = make(o.dir.path(), "image", "in.png", &["PNG", "8", "8"]);
    let id = o.app.upload_file(&o.token, "in.png", &png, "server").await;
    let e2e = o
        .app
        .upload_file(&o.token, "sealed.bin", b"ciphertext", "client")
        .await;

    // End-to-end files cannot be converted, and the message says why.
    let refused = assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": e2e, "from": "png", "to": "jpeg"}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(refused["details"][0]["path"], "fileId");
    assert!(
        s(&refused["details"][0], "message").contains("end-to-end"),
        "{refused}"
    );

    // Malformed, wrong shapes, unknown formats and impossible pairs.
    let raw = o
        .app
        .client
        .post(o.app.url("/v1/conversions"))
        .bearer_auth(&o.token)
        .header("X-User-Secret", SECRET)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_envelope(raw, 400, "BAD_REQUEST").await;
    assert_envelope(
        post(&o, "/v1/conversions", &o.token, &json!({"to": "png"})).await,
        422,
        "VALIDATION",
    )
    .await;
    let bad = assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": id, "from": "png", "to": "docx"}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(bad["details"][0]["path"], "to");
    let bad = assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": id, "from": "png", "to": "csv"}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert!(
        s(&bad["details"][0], "message").contains("cannot be converted"),
        "{bad}"
    );
    // Without `from`, the content type decides; an octet stream names no format.
    let bad = assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": id, "to": "jpeg"}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(bad["details"][0]["path"], "from");
    let bad = assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": id, "from": "png", "to": "jpeg", "options": {"speed": 3}}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(bad["details"][0]["path"], "options.speed");
    // Bulk: every item checked, each problem under its index; too many items refused.
    let bad = assert_envelope(
        post(
            &o,
            "/v1/conversions/bulk",
            &o.token,
            &json!({"items": [
                {"fileId": id, "from": "png", "to": "jpeg"},
                {"fileId": id, "from": "png", "to": "nope"},
            ]}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_eq!(bad["details"][0]["path"], "items[1].to");
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"fileId": id, "from": "png", "to": "gif"}))
        .collect();
    assert_envelope(
        post(
            &o,
            "/v1/conversions/bulk",
            &o.token,
            &json!({"items": many}),
        )
        .await,
        422,
        "VALIDATION",
    )
    .await;
    assert_envelope(
        post(&o, "/v1/conversions/bulk", &o.token, &json!({"items": []})).await,
        422,
        "VALIDATION",
    )
    .await;
    // Nothing was queued by any refusal.
    let listed = json_of(o.app.get_as("/v1/conversions", &o.token).await, 200).await;
    assert_eq!(listed, json!([]));

    // A missing or wrong secret.
    let no_secret = o
        .app
        .send_as(
            Method::POST,
            "/v1/conversions",
            &o.token,
            Some(&json!({"fileId": id, "from": "png", "to": "jpeg"})),
            None,
        )
        .await;
    assert_envelope(no_secret, 401, "UNAUTHORIZED").await;
    // An unknown file, and a malformed id: 404.
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": unknown, "from": "png", "to": "jpeg"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(
        post(
            &o,
            "/v1/conversions",
            &o.token,
            &json!({"fileId": "x", "from": "png", "to": "jpeg"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_envelope(
        o.app.get_as("/v1/conversions/nope", &o.token).await,
        404,
        "NOT_FOUND",
    )
    .await;

    // The worker is paused (concurrency 0): the job waits, and can be cancelled once.
    let job = convert(&o, json!({"fileId": id, "from": "png", "to": "jpeg"})).await;
    assert_eq!(job["status"], "queued");
    let path = format!("/v1/conversions/{}", s(&job, "id"));
    let cancelled = json_of(o.app.delete_as(&path, &o.token).await, 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_envelope(o.app.delete_as(&path, &o.token).await, 409, "CONFLICT").await;
    let rows = o.app.query(
        &format!(
            "SELECT count(*) FROM conversions WHERE id = '{}' AND master_sealed_dek IS NULL",
            s(&job, "id")
        ),
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(rows, vec![1], "a finished job keeps no key");

    // Another organization's member sees none of it.
    let org2 = json_of(
        o.app
            .send_as(
                Method::POST,
                "/v1/organizations",
                &o.token,
                Some(&json!({"name": "Globex"})),
                None,
            )
            .await,
        201,
    )
    .await;
    let foreign = o
        .app
        .send_as(Method::GET, &path, &o.token, None, Some(&s(&org2, "id")))
        .await;
    assert_envelope(foreign, 404, "NOT_FOUND").await;
    let listed = json_of(
        o.app
            .send_as(
                Method::GET,
                "/v1/conversions",
                &o.token,
                None,
                Some(&s(&org2, "id")),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(listed, json!([]));
    let _ = &o.org;
}

#[tokio::test]
async fn convert_write_scope_gates_creating_not_reading() {
    let o = owner_with(|c| c.conversions.concurrency = 0).await;
    let png = make(o.dir.path(), "image", "in.png", &["PNG", "8", "8"]);
    let id = o.app.upload_file(&o.token, "in.png", &png, "server").await;
    let reader = s(
        &create_key(
            &o.app,
            &o.token,
            json!({"name": "reader", "scopes": ["files:read"]}),
        )
        .await,
        "key",
    );
    let converter = s(
        &create_key(
            &o.app,
            &o.token,
            json!({"name": "conv", "scopes": ["convert:write", "files:read"]}),
        )
        .await,
        "key",
    );
    let body = json!({"fileId": id, "from": "png", "to": "jpeg"});
    let refused = assert_envelope(
        post(&o, "/v1/conversions", &reader, &body).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        s(&refused, "message").contains("convert:write"),
        "{refused}"
    );
    assert_envelope(
        post(
            &o,
            "/v1/conversions/bulk",
            &reader,
            &json!({"items": [body.clone()]}),
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    let job = json_of(post(&o, "/v1/conversions", &converter, &body).await, 202).await;
    // Reading a conversion needs no scope beyond a valid key; cancelling needs convert:write.
    let path = format!("/v1/conversions/{}", s(&job, "id"));
    let seen = json_of(o.app.get_as(&path, &reader).await, 200).await;
    assert_eq!(seen["id"], job["id"]);
    assert_envelope(o.app.delete_as(&path, &reader).await, 403, "FORBIDDEN").await;
    json_of(o.app.delete_as(&path, &converter).await, 200).await;
    // The scope is known: a key may be made with it (it was refused as unknown before).
    let listed = json_of(o.app.get_as("/v1/permissions", &o.token).await, 200).await;
    assert!(listed.to_string().contains("convert:write"), "{listed}");
}

#[tokio::test]
async fn queued_conversions_survive_a_restart_and_an_interrupted_one_is_not_retried_forever() {
    let dir = tempfile::TempDir::new().unwrap();
    let work = tempfile::TempDir::new().unwrap();
    let app = TestApp::spawn_in(dir.path(), |c| c.conversions.concurrency = 0)
        .await
        .unwrap();
    let pair = app.setup_admin().await;
    let token = s(&pair, "accessToken");
    app.generate_keys(&token, SECRET).await;
    let png = make(work.path(), "image", "in.png", &["PNG", "16", "16"]);
    let file = app.upload_file(&token, "in.png", &png, "server").await;
    let mut ids = Vec::new();
    for to in ["jpeg", "gif", "bmp"] {
        let job = app
            .client
            .post(app.url("/v1/conversions"))
            .bearer_auth(&token)
            .header("X-User-Secret", SECRET)
            .json(&json!({"fileId": file, "from": "png", "to": to}))
            .send()
            .await
            .unwrap();
        ids.push(s(&json_of(job, 202).await, "id"));
    }
    app.shutdown().await.unwrap();
    // As if the server had died twice while converting the last one.
    {
        let conn = rusqlite::Connection::open(dir.path().join("sealbox.db")).unwrap();
        conn.execute(
            "UPDATE conversions SET status = 'running', attempts = 2 WHERE id = ?1",
            [&ids[2]],
        )
        .unwrap();
    }
    let app = TestApp::spawn_in(dir.path(), |_| {}).await.unwrap();
    let o = Owner {
        token: s(
            &app.login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
                .await,
            "accessToken",
        ),
        app,
        org: String::new(),
        dir: work,
    };
    for id in &ids[..2] {
        let done = finished(&o, id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let bytes = download(&o, &s(&done, "resultFileId")).await;
        let seen = check(o.dir.path(), "image", &bytes);
        assert_eq!(seen["width"], 16);
    }
    let done = finished(&o, &ids[2]).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(s(&done, "error").contains("interrupted"), "{done}");
}

/// `free` (the default) has no conversions; `pro` has them, 3 a day.
const PLANS: &str = r#"
[[plans]]
id = "free"
features = []

[[plans]]
id = "pro"
features = ["conversions"]
[plans.limits]
conversions_per_day = 3

[billing]
default_plan = "free"
"#;

#[derive(serde::Deserialize)]
struct PlansOnly {
    plans: Vec<sealbox::config::PlanConfig>,
    billing: sealbox::config::BillingConfig,
}

#[tokio::test]
async fn the_plan_feature_and_daily_quota_gate_conversions_and_events_are_emitted() {
    let parsed: PlansOnly = toml::from_str(PLANS).unwrap();
    let o = owner_with(|c| {
        c.plans = parsed.plans;
        c.billing = parsed.billing;
    })
    .await;
    let png = make(o.dir.path(), "image", "in.png", &["PNG", "8", "8"]);
    let id = o.app.upload_file(&o.token, "in.png", &png, "server").await;
    let one = json!({"fileId": id, "from": "png", "to": "gif"});
    let refused = assert_envelope(
        post(&o, "/v1/conversions", &o.token, &one).await,
        403,
        "PLAN_REQUIRED",
    )
    .await;
    assert!(s(&refused, "message").contains("conversions"), "{refused}");
    let plan = o
        .app
        .send_as(
            Method::PUT,
            &format!("/admin/orgs/{}/plan", o.org),
            &o.token,
            Some(&json!({"plan": "pro"})),
            None,
        )
        .await;
    json_of(plan, 200).await;
    let first = convert(&o, one.clone()).await;
    convert(&o, one.clone()).await;
    // One left today: a bulk of two is refused whole and counts nothing.
    let bulk = post(
        &o,
        "/v1/conversions/bulk",
        &o.token,
        &json!({"items": [one.clone(), one.clone()]}),
    )
    .await;
    assert!(bulk.headers().get("retry-after").is_some());
    assert_envelope(bulk, 429, "QUOTA_EXCEEDED").await;
    convert(&o, one.clone()).await;
    let spent = post(&o, "/v1/conversions", &o.token, &one).await;
    assert!(spent.headers().get("retry-after").is_some());
    assert_envelope(spent, 429, "QUOTA_EXCEEDED").await;
    let listed = json_of(o.app.get_as("/v1/conversions", &o.token).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    // The next UTC day has a fresh quota.
    o.app
        .plan_clock
        .advance(o.app.plan_clock.until_midnight() + Duration::from_secs(1));
    convert(&o, one.clone()).await;

    // conversion.created for each, then conversion.succeeded with the result.
    let done = finished(&o, &s(&first, "id")).await;
    let events = o.app.query(
        &format!(
            "SELECT type, data FROM outbox_events WHERE type LIKE 'conversion.%' AND data LIKE '%{}%' ORDER BY seq",
            s(&first, "id")
        ),
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    );
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["conversion.created", "conversion.succeeded"]);
    let data: Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(data["resultFileId"], done["resultFileId"]);
    assert_eq!(data["status"], "succeeded");
}

#[tokio::test]
async fn data_markdown_and_text_conversions_are_read_back_by_python() {
    let o = owner_with(|_| {}).await;
    let dir = o.dir.path();
    // CSV to JSON (objects keyed by the header) and JSON Lines.
    let csv = "name,age,note\nAda,36,\"says \"\"hi\"\", twice\"\nGrace,85,\n";
    let csv_id = o
        .app
        .upload_file(&o.token, "people.csv", csv.as_bytes(), "server")
        .await;
    let (_, bytes) = converted(&o, json!({"fileId": csv_id, "from": "csv", "to": "json"})).await;
    assert_eq!(
        check(dir, "json", &bytes)["value"],
        json!([{"name": "Ada", "age": "36", "note": "says \"hi\", twice"},
               {"name": "Grace", "age": "85", "note": ""}])
    );
    let (_, bytes) = converted(
        &o,
        json!({"fileId": csv_id, "from": "csv", "to": "jsonl", "options": {"header": false}}),
    )
    .await;
    assert_eq!(
        check(dir, "jsonl", &bytes)["rows"][0],
        json!(["name", "age", "note"])
    );
    // JSON to CSV: the union of keys as the header, nested values as JSON text.
    let json_doc = json!([{"a": 1, "b": "x,y"}, {"b": "z", "c": {"deep": true}}, {"a": null}]);
    let json_id = o
        .app
        .upload_file(
            &o.token,
            "rows.json",
            json_doc.to_string().as_bytes(),
            "server",
        )
        .await;
    let (_, bytes) = converted(
        &o,
        json!({"fileId": json_id, "from": "json", "to": "csv", "options": {"delimiter": ";"}}),
    )
    .await;
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("a;b;c\n"), "{text}");
    let (_, bytes) = converted(&o, json!({"fileId": json_id, "from": "json", "to": "csv"})).await;
    assert_eq!(
        check(dir, "csv", &bytes)["rows"],
        json!([
            ["a", "b", "c"],
            ["1", "x,y", ""],
            ["", "z", "{\"deep\":true}"],
            ["", "", ""]
        ])
    );
    // JSON Lines to CSV.
    let lines = "{\"k\": \"v1\"}\n\n{\"k\": \"v2\"}\n";
    let lines_id = o
        .app
        .upload_file(&o.token, "rows.jsonl", lines.as_bytes(), "server")
        .await;
    let (_, bytes) = converted(
        &o,
        json!({"fileId": lines_id, "from": "jsonl", "to": "csv"}),
    )
    .await;
    assert_eq!(
        check(dir, "csv", &bytes)["rows"],
        json!([["k"], ["v1"], ["v2"]])
    );
    // A JSON document that is not an array of rows fails, saying so.
    let object_id = o
        .app
        .upload_file(&o.token, "o.json", b"{\"a\": 1}", "server")
        .await;
    let job = convert(
        &o,
        json!({"fileId": object_id, "from": "json", "to": "csv"}),
    )
    .await;
    let done = finished(&o, &s(&job, "id")).await;
    assert_eq!(done["status"], "failed");
    assert!(s(&done, "error").contains("array"), "{done}");

    // XLSX (written by openpyxl) to CSV and to JSON, by sheet name.
    let xlsx = make(dir, "xlsx", "book.xlsx", &[]);
    let xlsx_id = o
        .app
        .upload_file(&o.token, "book.xlsx", &xlsx, "server")
        .await;
    let (_, bytes) = converted(&o, json!({"fileId": xlsx_id, "from": "xlsx", "to": "csv"})).await;
    assert_eq!(
        check(dir, "csv", &bytes)["rows"],
        json!([["name", "age"], ["Ada", "36"], ["Grace", "85"]])
    );
    let (_, bytes) = converted(
        &o,
        json!({"fileId": xlsx_id, "from": "xlsx", "to": "json", "options": {"sheet": "People"}}),
    )
    .await;
    assert_eq!(
        check(dir, "json", &bytes)["value"],
        json!([{"name": "Ada", "age": 36}, {"name": "Grace", "age": 85}])
    );
    let job = convert(
        &o,
        json!({"fileId": xlsx_id, "from": "xlsx", "to": "csv", "options": {"sheet": "Nope"}}),
    )
    .await;
    let done = finished(&o, &s(&job, "id")).await;
    assert!(s(&done, "error").contains("People"), "{done}");

    // Markdown to HTML, sanitized: raw scripts, handlers and javascript: links are gone.
    let md = "# Title\n\nSome *text* and a [link](https://example.com).\n\n\
              <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
              [bad](javascript:alert(3))\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
    let md_id = o
        .app
        .upload_file(&o.token, "notes.md", md.as_bytes(), "server")
        .await;
    let (_, bytes) = converted(
        &o,
        json!({"fileId": md_id, "from": "markdown", "to": "html"}),
    )
    .await;
    let seen = check(dir, "html", &bytes);
    let tags: Vec<String> = serde_json::from_value(seen["tags"].clone()).unwrap();
    for wanted in ["h1", "em", "a", "table", "td"] {
        assert!(tags.contains(&wanted.to_owned()), "{wanted}: {seen}");
    }
    assert!(!tags.contains(&"script".to_owned()), "{seen}");
    assert!(!seen["attrs"].to_string().contains("onerror"), "{seen}");
    let html = String::from_utf8(bytes).unwrap();
    assert!(
        !html.contains("javascript:") && !html.contains("alert(1)"),
        "{html}"
    );

    // Text in windows-1252 and with a UTF-16 byte order mark, to UTF-8 without one.
    let latin = b"caf\xe9 \x80 na\xefve";
    let latin_id = o
        .app
        .upload_file(&o.token, "old.txt", latin, "server")
        .await;
    let (_, bytes) = converted(
        &o,
        json!({"fileId": latin_id, "from": "text", "to": "text", "options": {"encoding": "windows-1252"}}),
    )
    .await;
    assert_eq!(
        check(dir, "text", &bytes),
        json!({"text": "café € naïve", "bom": false})
    );
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "Grüße".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let utf16_id = o
        .app
        .upload_file(&o.token, "wide.txt", &utf16, "server")
        .await;
    let (_, bytes) = converted(
        &o,
        json!({"fileId": utf16_id, "from": "text", "to": "text"}),
    )
    .await;
    assert_eq!(check(dir, "text", &bytes)["text"], "Grüße");
    // Not UTF-8 and no encoding named: it fails, saying what to do.
    let job = convert(
        &o,
        json!({"fileId": latin_id, "from": "text", "to": "text"}),
    )
    .await;
    let done = finished(&o, &s(&job, "id")).await;
    assert!(s(&done, "error").contains("options.encoding"), "{done}");
    assert_envelope(
        post(&o, "/v1/conversions", &o.token,
             &json!({"fileId": latin_id, "from": "text", "to": "text", "options": {"encoding": "klingon"}})).await,
        422,
        "VALIDATION",
    )
    .await;
}

#[tokio::test]
async fn a_spreadsheet_zip_bomb_is_refused_before_it_is_unpacked() {
    let o = owner_with(|c| c.conversions.max_decode_bytes = 1024 * 1024).await;
    // A zip whose one entry unpacks to 8 MiB of zeros, built by Python's zipfile.
    let path = o.dir.path().join("bomb.xlsx");
    let script = format!(
        "import zipfile\nwith zipfile.ZipFile({:?}, 'w', zipfile.ZIP_DEFLATED) as z:\n    z.writestr('xl/worksheets/sheet1.xml', b'0' * (8 << 20))\n",
        path.to_str().unwrap()
    );
    let ok = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() < 64 * 1024);
    let id = o
        .app
        .upload_file(&o.token, "bomb.xlsx", &bytes, "server")
        .await;
    let job = convert(&o, json!({"fileId": id, "from": "xlsx", "to": "csv"})).await;
    let done = finished(&o, &s(&job, "id")).await;
    assert_eq!(done["status"], "failed");
    assert!(s(&done, "error").contains("unpacks to"), "{done}");
}

/// A multipart/form-data body with one field.
fn multipart(field: &str, filename: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "sealbox-test-boundary-7d1c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn upload_media_takes_raw_and_multipart_bodies_within_its_own_hourly_budget() {
    let o = owner_with(|c| {
        c.rate_limits.org_media_uploads_per_hour = 3;
        c.limits.max_file_bytes = 1024 * 1024;
        c.limits.json_file_bytes = 64 * 1024;
    })
    .await;
    let png = make(o.dir.path(), "image", "in.png", &["PNG", "32", "32"]);
    let raw = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .header("Content-Type", "image/png")
        .header("X-File-Name", "shot.png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    let stored = json_of(raw, 201).await;
    assert_eq!(stored["fileName"], "shot.png");
    assert_eq!(stored["contentType"], "image/png");
    assert_eq!(stored["encryption"], "server");
    assert_eq!(stored["sizeBytes"], png.len());
    assert_eq!(download(&o, &s(&stored, "id")).await, png);
    // Its content type names the format: it converts without `from`.
    let (_, jpeg) = converted(&o, json!({"fileId": stored["id"], "to": "jpeg"})).await;
    assert_eq!(check(o.dir.path(), "image", &jpeg)["format"], "JPEG");

    let (content_type, body) = multipart("file", "form.png", "image/png", &png);
    let form = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let stored = json_of(form, 201).await;
    assert_eq!(stored["fileName"], "form.png");
    assert_eq!(download(&o, &s(&stored, "id")).await, png);

    // Refusals: the envelope, nothing stored, no budget spent.
    let unauthenticated = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_envelope(unauthenticated, 401, "UNAUTHORIZED").await;
    let too_big = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .body(vec![0u8; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_envelope(too_big, 413, "PAYLOAD_TOO_LARGE").await;
    let (content_type, body) = multipart("other", "", "text/plain", b"x");
    let body = String::from_utf8(body)
        .unwrap()
        .replace("; filename=\"\"", "");
    let no_file = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_envelope(no_file, 422, "VALIDATION").await;
    let (content_type, body) = multipart(
        "file",
        "big.bin",
        "application/octet-stream",
        &vec![1u8; 100 * 1024],
    );
    let big_form = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_envelope(big_form, 413, "PAYLOAD_TOO_LARGE").await;
    let chunked = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"abc"))],
        )))
        .send()
        .await
        .unwrap();
    assert_envelope(chunked, 400, "BAD_REQUEST").await;
    // A key without files:write cannot.
    let reader = s(
        &create_key(
            &o.app,
            &o.token,
            json!({"name": "r", "scopes": ["files:read"]}),
        )
        .await,
        "key",
    );
    let refused = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&reader)
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_envelope(refused, 403, "FORBIDDEN").await;

    // The third media upload of the hour is the last; presigned uploads are not counted.
    let third = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(third, 201).await["fileName"], "upload");
    let spent = o
        .app
        .client
        .post(o.app.url("/v1/upload-media"))
        .bearer_auth(&o.token)
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert!(spent.headers().get("retry-after").is_some());
    assert_envelope(spent, 429, "RATE_LIMITED").await;
    o.app
        .upload_file(&o.token, "presigned.png", &png, "server")
        .await;
}
