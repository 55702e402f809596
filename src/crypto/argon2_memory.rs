//! Argon2id with working memory that goes back to the operating system when it is freed.
//!
//! argon2 takes its blocks (19 MiB for passwords and user secrets) from the global
//! allocator. glibc's malloc maps such a block, but when it is freed it raises its mmap
//! threshold to the block's size, so the next block comes from a per-thread arena and
//! stays resident after it is freed. With logins and unlocks landing on several threads,
//! an idle server kept tens of MiB it no longer used. An allocation above glibc's ceiling
//! for that threshold (32 MiB on 64-bit) is always mapped and unmapped and never moves the
//! threshold; reserving at least that much keeps Argon2's memory out of the arenas, and
//! only the pages Argon2 touches ever become resident. Other allocators simply map and
//! unmap such a block.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Reserved at least, so glibc maps the block (see the module documentation).
const MAPPED_FLOOR_BYTES: usize = 33 * 1024 * 1024;

/// [`Argon2::hash_password_into`], with the working memory described above.
pub fn hash_into(
    argon2: &Argon2<'_>,
    secret: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let needed = argon2.params().block_count();
    let floor = MAPPED_FLOOR_BYTES / std::mem::size_of::<Block>();
    let mut blocks = Vec::with_capacity(needed.max(floor));
    blocks.resize(needed, Block::default());
    argon2.hash_password_into_with_memory(secret, salt, out, &mut blocks)
}

/// The PHC string of Argon2id (version 0x13) over `password` with `params` and `salt`:
/// the same string `PasswordHasher::hash_password` produces.
pub fn phc_hash(
    password: &[u8],
    salt: &[u8],
    params: Params,
) -> Result<String, argon2::password_hash::Error> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let output_len = argon2
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(output_len, |out| {
        Ok(hash_into(&argon2, password, salt, out)?)
    })?;
    let salt = SaltString::encode_b64(salt)?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// Whether `password` matches the Argon2 PHC string `phc`, the way
/// `PasswordVerifier::verify_password` decides it (the outputs compared in constant time).
pub fn phc_verify(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    Output::init_with(expected.len(), |out| {
        Ok(hash_into(&argon2, password, salt, out)?)
    })
    // `Output`'s equality is constant-time.
    .is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    fn small() -> Params {
        Params::new(256, 2, 1, None).unwrap()
    }

    #[test]
    fn hashes_like_argon2_itself() {
        let salt = [7u8; 16];
        let ours = phc_hash(b"correct horse", &salt, small()).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, small())
            .hash_password(b"correct horse", &SaltString::encode_b64(&salt).unwrap())
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
        assert!(ours.starts_with("$argon2id$v=19$m=256,t=2,p=1$"));
    }

    #[test]
    fn verifies_like_argon2_itself() {
        let phc = phc_hash(b"correct horse", &[9u8; 16], small()).unwrap();
        assert!(phc_verify(b"correct horse", &phc));
        assert!(!phc_verify(b"correct horsf", &phc));
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // Argon2i and other versions and lengths verify too, as argon2 would.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(128, 1, 1, Some(48)).unwrap(),
        )
        .hash_password(b"pw", &SaltString::encode_b64(&[1u8; 16]).unwrap())
        .unwrap()
        .to_string();
        assert!(phc_verify(b"pw", &other));
        assert!(!phc_verify(b"pv", &other));
    }

    #[test]
    fn garbage_does_not_verify() {
        for phc in [
            "",
            "$argon2id$",
            "$md5$abc",
            "$argon2id$v=19$m=256,t=2,p=1$c2FsdA$",
        ] {
            assert!(!phc_verify(b"anything", phc), "{phc}");
        }
    }

    #[test]
    fn raw_output_matches_argon2_itself() {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, small());
        let (mut ours, mut theirs) = ([0u8; 32], [0u8; 32]);
        hash_into(&argon2, b"secret", &[3u8; 16], &mut ours).unwrap();
        argon2
            .hash_password_into(b"secret", &[3u8; 16], &mut theirs)
            .unwrap();
        assert_eq!(ours, theirs);
    }
}
