//! The vault's test vectors open in an independent implementation: `tests/vectors/decode.py`
//! (Python `cryptography` and `kyber-py`, written from `docs/crypto.md` alone) checks the
//! X-Wing draft's vectors and derives, opens and reseals everything in `vault.json`,
//! `master.json`, `tokens.json`, `transfer_e2e.json` and `sbx1.json`.
//! The Rust side of the same vectors is `crypto::vectors` in the library's unit tests.

use std::process::Command;

const DECODER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/decode.py");

#[test]
fn an_independent_python_implementation_opens_every_vector() {
    let output = Command::new(crate::support::venv_python())
        .arg(DECODER)
        .output()
        .expect("the venv's python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "decode.py found a mismatch:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("ok: 3 X-Wing draft vectors"), "{stdout}");
    assert!(
        stdout.contains("2 end-to-end names and 2 messages"),
        "{stdout}"
    );
}
