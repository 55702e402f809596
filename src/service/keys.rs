//! Users' key pairs (SPEC §5): generating one (its private seed sealed under a KEK from
//! the user secret), its status, rekeying (re-sealing the seed under a new secret), and
//! unlocking it for a request that sent the secret, through the unlock cache.

use std::sync::Arc;

use serde_json::json;
use zeroize::Zeroizing;

use super::login_throttle::{Attempt, LoginThrottle};
use super::unlock_cache::UnlockCache;
use super::{Journal, RequestContext, ServiceError, access, read, write};
use crate::auth::{Permission, Principal};
use crate::crypto::{
    self, Argon2Params, KEK_SALT_LEN, SealedSeed, UnlockError, UserKeyPair, UserPublicKey,
    UserSeed, derive_kek, open_seed, seal_seed,
};
use crate::ids::{UserId, now_rfc3339};
use crate::store::user_keys::{self, UserKeys};
use crate::store::{Store, StoreError};

/// A user secret from `X-User-Secret`. Zeroized on drop; `Debug` prints `[redacted]`.
pub struct UserSecret {
    bytes: Zeroizing<Vec<u8>>,
    /// A digest of the credential the request presented, which wrong guesses are counted
    /// against (with the user); not secret.
    credential: Option<String>,
}

impl UserSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
            credential: None,
        }
    }

    /// A secret sent with a request that presented `credential` (a digest of it).
    pub fn presented(bytes: Vec<u8>, credential: Option<String>) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
            credential,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn credential(&self) -> &str {
        self.credential.as_deref().unwrap_or("-")
    }
}

impl std::fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserSecret([redacted])")
    }
}

/// Shortest secret accepted for new key material, in bytes.
pub const MIN_SECRET_LEN: usize = 8;

/// The refusal for a user without key material (the reference's 400).
pub fn no_key_material() -> ServiceError {
    ServiceError::BadRequest(
        "no key material: generate keys first (POST /v1/keys/generate)".to_owned(),
    )
}

fn wrong_secret() -> ServiceError {
    ServiceError::Unauthorized("the user secret is wrong")
}

fn damaged() -> ServiceError {
    ServiceError::BadRequest("the stored key material is damaged".to_owned())
}

/// A user's key status, for `GET /v1/keys/status` and user discovery.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub public_key: Option<UserPublicKey>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// A recovery restored the seed; the next rekey must use the recovery secret.
    pub requires_rekey: bool,
    /// The Argon2id salt and costs of the current seal: what a client needs to seal a
    /// seed for recovery exactly as the server will open it.
    pub kek_salt: Option<Vec<u8>>,
    pub kek_params: Option<Argon2Params>,
}

impl KeyStatus {
    pub fn of(row: Option<&UserKeys>) -> Self {
        Self {
            public_key: row.and_then(|r| UserPublicKey::from_bytes(&r.public_key).ok()),
            created_at: row.map(|r| r.created_at.clone()),
            updated_at: row.map(|r| r.updated_at.clone()),
            requires_rekey: row.is_some_and(|r| r.restored_seed.is_some()),
            kek_salt: row.map(|r| r.kek_salt.clone()),
            kek_params: row.and_then(|r| serde_json::from_str(&r.kek_params).ok()),
        }
    }
}

#[derive(Clone)]
pub struct KeyService {
    store: Store,
    cache: UnlockCache,
    params: Argon2Params,
    /// Growing delays after wrong secrets, per user and credential and per user.
    throttle: Arc<LoginThrottle>,
}

impl KeyService {
    pub fn new(store: Store, cache: UnlockCache) -> Self {
        Self {
            store,
            cache,
            params: Argon2Params::default(),
            throttle: Arc::default(),
        }
    }

    /// Reserves a guess of `user`'s secret (429 with the wait when delayed); resolve it
    /// with [`judge`].
    fn begin_guess(&self, user: UserId, secret: &UserSecret) -> Result<Attempt, ServiceError> {
        self.throttle
            .begin_user_secret(&user.to_string(), secret.credential())
            .map_err(|retry_after| ServiceError::TooManyAttempts { retry_after })
    }

    /// With other Argon2 costs for new seals (tests use small ones).
    pub fn with_params(mut self, params: Argon2Params) -> Self {
        self.params = params;
        self
    }

    pub fn cache(&self) -> &UnlockCache {
        &self.cache
    }

    /// Creates the caller's key pair, sealed under `secret`; 409 if one exists.
    pub async fn generate(
        &self,
        principal: &Principal,
        secret: UserSecret,
        ctx: RequestContext,
    ) -> Result<UserPublicKey, ServiceError> {
        check_new_secret(&secret, "X-User-Secret")?;
        let user = principal.user_id;
        let params = self.params;
        let (pair, sealed, salt) = blocking(move || {
            let pair = UserKeyPair::generate();
            let salt: [u8; KEK_SALT_LEN] = crypto::random_bytes();
            let kek = derive_kek(secret.as_bytes(), &salt, &params).map_err(|_| damaged())?;
            let sealed = seal_seed(&kek, user, pair.seed());
            Ok((pair, sealed, salt))
        })
        .await?;
        let public = pair.public_key().clone();
        let row_public = public.clone();
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::KeysWrite)?;
            let now = now_rfc3339();
            user_keys::insert(
                tx,
                &UserKeys {
                    user_id: user,
                    public_key: row_public.as_bytes().to_vec(),
                    fingerprint: row_public.fingerprint(),
                    sealed_seed: sealed.as_bytes().to_vec(),
                    kek_salt: salt.to_vec(),
                    kek_params: params_json(&params),
                    generation: 1,
                    restored_seed: None,
                    created_at: now.clone(),
                    updated_at: now,
                },
            )
            .map_err(|e| match e {
                StoreError::Conflict => ServiceError::Conflict(
                    "key material already exists; change the secret with POST /v1/keys/rekey"
                        .to_owned(),
                ),
                other => other.into(),
            })?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let fingerprint = row_public.fingerprint();
            journal.audit(
                "keys.generated",
                "user",
                user,
                json!({"fingerprint": fingerprint}),
            )?;
            journal.event(
                "keys.generated",
                json!({"userId": user, "fingerprint": fingerprint}),
            )?;
            Ok(())
        })
        .await?;
        Ok(public)
    }

    /// The caller's key status.
    pub async fn status(&self, principal: &Principal) -> Result<KeyStatus, ServiceError> {
        let user = principal.user_id;
        let row = read(&self.store, move |conn| Ok(user_keys::find(conn, user)?)).await?;
        Ok(KeyStatus::of(row.as_ref()))
    }

    /// Re-seals the caller's seed under `new`: the old secret stops working at once. After
    /// a recovery, `old` is the recovery secret that opens the restored seed.
    pub async fn rekey(
        &self,
        principal: &Principal,
        old: UserSecret,
        new: UserSecret,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        check_new_secret(&new, "X-New-User-Secret")?;
        let user = principal.user_id;
        let row = read(&self.store, move |conn| Ok(user_keys::find(conn, user)?))
            .await?
            .ok_or_else(no_key_material)?;
        let params = self.params;
        let generation = row.generation;
        let guess = self.begin_guess(user, &old)?;
        let (sealed, salt, restored) = judge(
            guess,
            blocking(move || {
                let (seed, restored) = open_any_seal(&row, &old)?;
                let salt: [u8; KEK_SALT_LEN] = crypto::random_bytes();
                let kek = derive_kek(new.as_bytes(), &salt, &params).map_err(|_| damaged())?;
                Ok((seal_seed(&kek, user, &seed), salt, restored))
            })
            .await,
        )?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::KeysWrite)?;
            let now = now_rfc3339();
            let replaced = user_keys::reseal(
                tx,
                user,
                generation,
                sealed.as_bytes(),
                &salt,
                &params_json(&params),
                &now,
            )?;
            if !replaced {
                return Err(ServiceError::Conflict(
                    "the keys changed while rekeying; try again".to_owned(),
                ));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "keys.rekeyed",
                "user",
                user,
                json!({"fromRecovery": restored}),
            )?;
            journal.event(
                "keys.rekeyed",
                json!({"userId": user, "fromRecovery": restored}),
            )?;
            Ok(())
        })
        .await?;
        self.cache.forget_user(user);
        Ok(())
    }

    /// The caller's unlocked key pair: 400 without key material, 401 for a wrong secret.
    pub async fn unlock(
        &self,
        user: UserId,
        secret: &UserSecret,
    ) -> Result<Arc<UserKeyPair>, ServiceError> {
        let row = read(&self.store, move |conn| Ok(user_keys::find(conn, user)?))
            .await?
            .ok_or_else(no_key_material)?;
        self.unlock_row(row, secret).await
    }

    /// Unlocks a key row already read (saving a query on hot paths).
    pub async fn unlock_row(
        &self,
        row: UserKeys,
        secret: &UserSecret,
    ) -> Result<Arc<UserKeyPair>, ServiceError> {
        if let Some(keys) = self
            .cache
            .get(row.user_id, secret.as_bytes(), row.generation)
        {
            return Ok(keys);
        }
        let (user, generation) = (row.user_id, row.generation);
        // A cached unlock needed the right secret; anything else is a guess to count.
        let guess = self.begin_guess(user, secret)?;
        let copy = UserSecret::new(secret.as_bytes().to_vec());
        let keys = judge(
            guess,
            blocking(move || {
                let seed = open_current_seal(&row, &copy)?;
                let pair = UserKeyPair::from_seed(seed);
                if pair.public_key().as_bytes().as_slice() != row.public_key.as_slice() {
                    return Err(damaged());
                }
                Ok(Arc::new(pair))
            })
            .await,
        )?;
        self.cache
            .insert(user, secret.as_bytes(), generation, keys.clone());
        Ok(keys)
    }

    /// Records a seed handed back through recovery (sealed under a recovery secret) for
    /// the next rekey; drops cached unlocks. Runs in the caller's transaction.
    pub(crate) fn restore_in(
        &self,
        tx: &rusqlite::Connection,
        user: UserId,
        sealed: &[u8],
        now: &str,
    ) -> Result<(), ServiceError> {
        if !user_keys::set_restored_seed(tx, user, sealed, now)? {
            return Err(no_key_material());
        }
        self.cache.forget_user(user);
        Ok(())
    }
}

fn check_new_secret(secret: &UserSecret, header: &str) -> Result<(), ServiceError> {
    if secret.as_bytes().len() < MIN_SECRET_LEN {
        return Err(ServiceError::BadRequest(format!(
            "{header} must be at least {MIN_SECRET_LEN} bytes"
        )));
    }
    Ok(())
}

pub(super) fn params_json(params: &Argon2Params) -> String {
    serde_json::to_string(params).expect("Argon2 parameters serialize")
}

fn stored_params(row: &UserKeys) -> Result<(Argon2Params, [u8; KEK_SALT_LEN]), ServiceError> {
    let params: Argon2Params = serde_json::from_str(&row.kek_params).map_err(|_| damaged())?;
    let salt: [u8; KEK_SALT_LEN] = row.kek_salt.as_slice().try_into().map_err(|_| damaged())?;
    Ok((params, salt))
}

/// Opens the current seal with `secret`.
fn open_current_seal(row: &UserKeys, secret: &UserSecret) -> Result<UserSeed, ServiceError> {
    let (params, salt) = stored_params(row)?;
    let kek = derive_kek(secret.as_bytes(), &salt, &params).map_err(|_| damaged())?;
    open_seed(
        &kek,
        row.user_id,
        &SealedSeed::from_bytes(row.sealed_seed.clone()),
    )
    .map_err(unlock_error)
}

/// Opens the current seal, or else a restored one (which must match the public key).
/// Returns the seed and whether it came from the restore.
fn open_any_seal(row: &UserKeys, secret: &UserSecret) -> Result<(UserSeed, bool), ServiceError> {
    let (params, salt) = stored_params(row)?;
    let kek = derive_kek(secret.as_bytes(), &salt, &params).map_err(|_| damaged())?;
    let current = open_seed(
        &kek,
        row.user_id,
        &SealedSeed::from_bytes(row.sealed_seed.clone()),
    );
    match (current, &row.restored_seed) {
        (Ok(seed), _) => Ok((seed, false)),
        (Err(UnlockError::WrongSecret), Some(restored)) => {
            let seed = open_seed(&kek, row.user_id, &SealedSeed::from_bytes(restored.clone()))
                .map_err(unlock_error)?;
            let pair = UserKeyPair::from_seed(UserSeed::from_bytes(*seed.expose_bytes()));
            if pair.public_key().as_bytes().as_slice() != row.public_key.as_slice() {
                return Err(ServiceError::BadRequest(
                    "the restored key material does not match your public key".to_owned(),
                ));
            }
            Ok((seed, true))
        }
        (Err(e), _) => Err(unlock_error(e)),
    }
}

fn unlock_error(e: UnlockError) -> ServiceError {
    match e {
        UnlockError::WrongSecret => wrong_secret(),
        UnlockError::Malformed | UnlockError::UnsupportedVersion(_) => damaged(),
    }
}

/// Resolves a reserved guess by what opening the seal said: a wrong secret counts as a
/// failure, an opened seal as a success; any other failure (damaged material, a full
/// Argon2id queue) was no guess and counts as nothing.
fn judge<T>(guess: Attempt, outcome: Result<T, ServiceError>) -> Result<T, ServiceError> {
    match &outcome {
        Ok(_) => guess.succeeded(),
        Err(ServiceError::Unauthorized(_)) => guess.failed(),
        Err(_) => drop(guess),
    }
    outcome
}

/// Runs CPU-heavy key work (Argon2id, key generation) off the async runtime and off the
/// database threads, in a slot of the process's Argon2id pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    super::argon2_pool::run(work).await?
}
