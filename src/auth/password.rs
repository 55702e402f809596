//! Password hashing (Argon2id, m = 19456 KiB, t = 2, p = 1, PHC strings) and the password
//! policy: at least 10 characters and not one of a built-in list of common passwords.

use std::sync::OnceLock;

use argon2::Params;

use crate::crypto::argon2_memory::{phc_hash, phc_verify};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in bytes: bounds the hashing work a request can cause.
pub const MAX_PASSWORD_BYTES: usize = 1024;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

fn params() -> Params {
    Params::new(19_456, 2, 1, None).expect("valid Argon2 parameters")
}

/// Hashes a password into a PHC string with a fresh random salt.
pub fn hash(password: &str) -> String {
    phc_hash(
        password.as_bytes(),
        &crate::crypto::random_bytes::<16>(),
        params(),
    )
    .expect("Argon2 hashing with valid parameters cannot fail")
}

/// Checks a password against a PHC string (constant-time comparison of the outputs).
pub fn verify(password: &str, phc: &str) -> bool {
    phc_verify(password.as_bytes(), phc)
}

/// Spends the same effort as [`verify`] when there is no account to check against, so an
/// unknown email and a wrong password take about the same time.
pub fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("sealbox timing equalizer"));
    let _ = verify(password, phc);
}

/// Why a new password is refused.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lowered) {
        return Err(
            "is too common; choose a password that is not on lists of leaked passwords".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_documented_parameters() {
        let phc = hash("correct horse battery staple");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        assert!(!verify("anything", "not a phc string"));
        assert_ne!(phc, hash("correct horse battery staple"), "salted");
    }

    #[test]
    fn policy_refuses_short_long_and_common_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("123456789").is_err());
        assert!(check_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(
            check_policy("Password123").is_err(),
            "common, case-insensitively"
        );
        assert!(check_policy("qwertyuiop").is_err());
        assert!(check_policy("violet-anchor-thirty").is_ok());
        // Characters, not bytes: ten multibyte characters are enough.
        assert!(check_policy("ééééééééé1").is_ok());
    }

    #[test]
    fn the_common_list_is_lowercase_and_policy_length() {
        for line in COMMON_PASSWORDS.lines() {
            assert_eq!(line, line.to_lowercase(), "{line}");
            assert!(
                line.chars().count() >= MIN_PASSWORD_CHARS,
                "{line} could never be chosen anyway"
            );
        }
    }
}
