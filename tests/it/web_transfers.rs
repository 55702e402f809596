//! Transfers in the browser: the web UI's format modules (`web/assets/js/sbx1.js`,
//! `transfer-e2e.js`, `transfer-link.js`) against the committed vectors and the Rust code,
//! and the pages that send and receive, all in a real headless Chromium
//! (`tests/browser/drive.py`) against the real server.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sealbox::crypto::Dek;
use sealbox::crypto::sbx1::{decrypt_stream, encrypt_stream};
use sealbox::crypto::transfer_e2e::{encode_key, new_file_id, open_name, seal_name};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;
use crate::web_ui::browse_with_timeout;

const VECTORS: &str = include_str!("../vectors/sbx1.json");
const FORMATS_JS: &str = include_str!("../browser/formats.js");

/// Bytes that differ at every offset (a pattern SBX1 segment boundaries do not line up with).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 253) as u8 ^ seed.wrapping_mul((i / 253) as u8))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_formats_match_the_vectors_and_the_rust_code() {
    let app = TestApp::spawn().await;

    // What the Rust code writes, for the browser to open: a file of 3 full 64 KiB
    // segments and a short one, and a sealed name.
    let dek = Dek::generate();
    let file_id = new_file_id();
    let plaintext = pattern(3 * 65536 + 1234, 7);
    let mut ciphertext = Vec::new();
    encrypt_stream(plaintext.as_slice(), &mut ciphertext, &dek, file_id).unwrap();
    let transfer_id = Uuid::now_v7();
    let name_file_id = new_file_id();
    let name = "Q3 report — final (v2).pdf";
    let sealed = seal_name(&dek, transfer_id, name_file_id, name);

    let browser_plaintext = "written in the browser, ".repeat(5000);
    let browser_name = "Ünïcode résumé.txt";
    let input = json!({
        "sbx1": serde_json::from_str::<Value>(VECTORS).unwrap(),
        "rustFile": {
            "dek": STANDARD.encode(dek.expose_bytes()),
            "fileId": file_id.to_string(),
            "ciphertext": STANDARD.encode(&ciphertext),
            "plaintext": STANDARD.encode(&plaintext),
        },
        "rustName": {
            "key": encode_key(&dek),
            "transferId": transfer_id.to_string(),
            "fileId": name_file_id.to_string(),
            "name": name,
            "sealed": sealed,
        },
        "browserPlaintext": browser_plaintext,
        "browserName": browser_name,
    });
    let expression = format!("(async () => {{ {FORMATS_JS}\nreturn await run({input}); }})()");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("browser.json");
    browse_with_timeout(
        json!([
            ["open", app.url("/")],
            ["save", expression, out.to_str().unwrap()],
        ]),
        60,
    )
    .await;

    // What the browser wrote opens with the Rust code.
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let file = &written["browserFile"];
    let key: [u8; 32] = STANDARD
        .decode(file["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = Dek::from_bytes(key);
    let browser_id = Uuid::parse_str(file["fileId"].as_str().unwrap()).unwrap();
    assert_eq!(browser_id.get_version_num(), 4);
    let browser_cipher = STANDARD
        .decode(file["ciphertext"].as_str().unwrap())
        .unwrap();
    let mut opened = Vec::new();
    decrypt_stream(browser_cipher.as_slice(), &mut opened, &key, browser_id).unwrap();
    assert_eq!(opened, browser_plaintext.as_bytes());
    // One byte flipped anywhere, and the Rust reader refuses it too.
    let mut flipped = browser_cipher.clone();
    flipped[browser_cipher.len() / 2] ^= 1;
    assert!(decrypt_stream(flipped.as_slice(), &mut Vec::new(), &key, browser_id).is_err());

    let browser_sealed = written["browserName"].as_str().unwrap();
    assert_eq!(
        open_name(&dek, transfer_id, browser_sealed).unwrap(),
        (browser_id, browser_name.to_owned())
    );
    assert!(open_name(&dek, Uuid::now_v7(), browser_sealed).is_err());
}
