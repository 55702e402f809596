//! Rows exactly as the services write them, built in bulk: what `examples/scale_fixtures.rs`
//! fills a database with for `bench/scale.py` (how cost grows with 100,000 users). The
//! server never calls this module.
//!
//! Each builder uses the contexts, bindings and envelopes of the code path it names, so
//! the rows unlock, open, list and verify like rows made through the API; only the costly
//! per-user Argon2id runs are shared (one KEK seals every fixture user's seed, as one
//! password hash serves every fixture user's login).

use super::keys::params_json;
use crate::crypto::sbx1::encrypt_stream;
use crate::crypto::{
    Argon2Params, Dek, KEK_SALT_LEN, Kek, UserKeyPair, UserPublicKey, derive_kek, seal_bound_value,
    seal_dek, seal_seed,
};
use crate::ids::{FileId, KvEntryId, OrgId, UserId};
use crate::store::files::{Encryption, File};
use crate::store::kv::KvEntry;
use crate::store::user_keys::UserKeys;

/// The KEK every fixture user's seed is sealed under: their common user secret, one salt
/// and the default Argon2id parameters, derived once.
pub struct SharedKek {
    kek: Kek,
    salt: [u8; KEK_SALT_LEN],
    params: Argon2Params,
}

impl SharedKek {
    /// Derives the KEK of `secret` (what `X-User-Secret` carries) under a fresh salt.
    pub fn derive(secret: &[u8]) -> Self {
        let params = Argon2Params::default();
        let salt: [u8; KEK_SALT_LEN] = crate::crypto::random_bytes();
        let kek = derive_kek(secret, &salt, &params).expect("the default parameters are valid");
        Self { kek, salt, params }
    }
}

/// A user's key pair row, as `KeyService::generate` stores it; and the public key, to seal
/// the user's objects to.
pub fn user_keys(kek: &SharedKek, user: UserId, now: &str) -> (UserKeys, UserPublicKey) {
    let pair = UserKeyPair::generate();
    let public = pair.public_key().clone();
    let sealed = seal_seed(&kek.kek, user, pair.seed());
    let row = UserKeys {
        user_id: user,
        public_key: public.as_bytes().to_vec(),
        fingerprint: public.fingerprint(),
        sealed_seed: sealed.as_bytes().to_vec(),
        kek_salt: kek.salt.to_vec(),
        kek_params: params_json(&kek.params),
        generation: 1,
        restored_seed: None,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    };
    (row, public)
}

/// A KV secret's first version, as `KvService::put` stores a new name: a fresh DEK sealed
/// to the owner, the value sealed under it.
pub fn kv_entry(
    org: OrgId,
    owner: UserId,
    owner_key: &UserPublicKey,
    name: &str,
    value: &[u8],
    now: &str,
) -> KvEntry {
    let id = KvEntryId::new();
    let dek = Dek::generate();
    let version = 1;
    let sealed = seal_bound_value(
        &dek,
        &super::kv::value_context(id, version),
        &super::kv::value_binding(org, owner, name),
        value,
    );
    KvEntry {
        id,
        org_id: org,
        owner_id: owner,
        name: name.to_owned(),
        version,
        dek_generation: 1,
        sealed_value: sealed.as_bytes().to_vec(),
        owner_envelope: seal_dek(owner_key, &super::kv::envelope_context(id, owner), &dek)
            .as_bytes()
            .to_vec(),
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    }
}

/// A small server-encrypted file as `FileService::store_whole` leaves it once finalized:
/// the row (name sealed under the file's DEK, the DEK sealed to the owner) and the SBX1
/// bytes its blob holds under the row's `blob_key`.
pub fn server_file(
    org: OrgId,
    owner: UserId,
    owner_key: &UserPublicKey,
    name: &str,
    content_type: &str,
    content: &[u8],
    now: &str,
) -> (File, Vec<u8>) {
    let id = FileId::new();
    let dek = Dek::generate();
    let sealed_name = seal_bound_value(
        &dek,
        &super::files::name_context(id),
        &super::files::name_binding(org, owner, content_type),
        name.as_bytes(),
    );
    let mut stored = Vec::with_capacity(content.len() + 128);
    encrypt_stream(content, &mut stored, &dek, id.as_uuid())
        .expect("encrypting into memory does not fail");
    let envelope = seal_dek(owner_key, &super::files::envelope_context(id, owner), &dek);
    let file = File {
        id,
        org_id: org,
        owner_id: owner,
        encryption: Encryption::Server,
        sealed_name: Some(sealed_name.as_bytes().to_vec()),
        client_name: None,
        content_type: content_type.to_owned(),
        size: content.len() as i64,
        stored_size: stored.len() as i64,
        blake3: blake3::hash(&stored).to_hex().to_string(),
        owner_envelope: Some(envelope.as_bytes().to_vec()),
        dek_generation: 1,
        blob_key: super::files::blob_key_of(id),
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    };
    (file, stored)
}
