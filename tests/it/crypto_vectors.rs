//! The vault's test vectors open in an independent implementation: `tests/vectors/decode.py`
//! (Python `cryptography` and `kyber-py`, written from `docs/crypto.md` alone) checks the
//! X-Wing draft's vectors and derives, opens and reseals everything in `vault.json`.
//! The Rust side of the same vectors is `crypto::vectors` in the library's unit tests.

use std::path::PathBuf;
use std::process::Command;

const DECODER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/decode.py");

#[test]
fn an_independent_python_implementation_opens_every_vector() {
    let venv = std::env::var("SBX_TEST_VENV").unwrap_or_else(|_| {
        panic!(
            "SBX_TEST_VENV is not set: run the tests through scripts/test, which creates the venv"
        )
    });
    let output = Command::new(PathBuf::from(venv).join("bin/python"))
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
}
