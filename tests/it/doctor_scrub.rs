//! `sealbox doctor --scrub`: every stored blob read back against the size and BLAKE3
//! recorded at finalize, and what lies in blob storage or the uploads directory without a
//! row, each reported as a problem with a non-zero exit. It runs beside the live server.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{TestApp, json_of, s};

use crate::support::SEALBOX_BIN as BIN;
const SECRET: &str = "owner-secret-phrase";

/// Runs `sealbox doctor` (with `--scrub` when asked) on `config`; its success and output.
fn doctor(home: &Path, config: &Path, scrub: bool) -> (bool, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("HOME", home)
        .args(["doctor", "--config"])
        .arg(config);
    if scrub {
        cmd.arg("--scrub");
    }
    let output = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_reports_changed_and_truncated_blobs_and_orphans() {
    // A data directory the app creates, with the modes doctor expects.
    let home = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(&home.path().join("data"), |_| {})
        .await
        .unwrap();
    let token = s(&app.setup_admin().await, "accessToken");
    let keys = app
        .client
        .post(app.url("/v1/keys/generate"))
        .bearer_auth(&token)
        .header("X-User-Secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 201);
    // A stored file, and an upload in progress (its part has a row: not an orphan).
    for (size, complete) in [(200_000, true), (300_000, false)] {
        let presigned = json_of(
            app.client
                .post(app.url("/v1/files/presign"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"filename": "f.bin", "size": size}))
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        let sent = if complete { size } else { size / 2 };
        let put = app
            .client
            .put(s(&presigned, "uploadUrl"))
            .body(vec![7u8; sent])
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(put, 200).await["complete"], complete);
        if complete {
            let finalized = app
                .client
                .post(app.url(&format!("/v1/files/{}/finalize", s(&presigned, "fileId"))))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            json_of(finalized, 200).await;
        }
    }
    assert_eq!(files_under(&app.data_dir.join("uploads")).len(), 1);

    let config = home.path().join("sealbox.toml");
    let data = toml::Value::from(app.data_dir.to_str().unwrap());
    std::fs::write(
        &config,
        format!("[storage]\ndata_dir = {data}\n[tls]\nmode = \"off\"\n"),
    )
    .unwrap();
    let (ok, text) = doctor(home.path(), &config, true);
    assert!(ok, "{text}");
    assert!(
        text.contains("ok       scrub: 1 blob(s), ") && text.contains("nothing orphaned"),
        "{text}"
    );

    let row: Vec<(String, String, String, i64)> = app
        .query("SELECT id, blob_key, blake3, stored_size FROM files", |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        });
    let (id, key, blake3, stored_size) = row[0].clone();
    let blob = files_under(&app.data_dir.join("blobs"))
        .into_iter()
        .find(|p| p.ends_with(&key))
        .unwrap();
    let original = std::fs::read(&blob).unwrap();

    // One flipped byte: reported with the file, the blob and both hashes.
    let mut flipped = original.clone();
    flipped[1000] ^= 0x20;
    std::fs::write(&blob, &flipped).unwrap();
    let (ok, text) = doctor(home.path(), &config, true);
    assert!(!ok, "{text}");
    let actual = blake3::hash(&flipped).to_hex();
    assert!(
        text.contains(&format!(
            "PROBLEM  scrub: file {id}: blob {key} has BLAKE3 {actual}, expected {blake3}"
        )),
        "{text}"
    );
    assert!(text.contains("1 problem(s) found"), "{text}");
    // Reading every blob back is what --scrub adds; doctor alone does not notice.
    let (ok, text) = doctor(home.path(), &config, false);
    assert!(ok, "{text}");

    // A truncated blob.
    std::fs::write(&blob, &original[..original.len() - 1]).unwrap();
    let (ok, text) = doctor(home.path(), &config, true);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "file {id}: blob {key} has {} bytes, expected {stored_size}",
            stored_size - 1
        )),
        "{text}"
    );

    // Orphans: a file in a blob shard and an upload part that nothing refers to. The blob
    // store's write area is not looked at.
    std::fs::write(&blob, &original).unwrap();
    let stray = blob.with_file_name("file-0000000000000000000000000000dead");
    std::fs::write(&stray, b"0123456789").unwrap();
    let part = app
        .data_dir
        .join(format!("uploads/{}.part", sealbox::ids::FileId::new()));
    std::fs::write(&part, [0u8; 64]).unwrap();
    std::fs::write(app.data_dir.join("blobs/.tmp/interrupted"), b"x").unwrap();
    let (ok, text) = doctor(home.path(), &config, true);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("orphan blob {} (10 bytes)", stray.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("orphan upload part {} (64 bytes)", part.display())),
        "{text}"
    );
    assert!(!text.contains("interrupted"), "{text}");
    assert!(text.contains("2 problem(s) found"), "{text}");
}
