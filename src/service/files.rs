//! Encrypted files (SPEC §5, §6): presigned, resumable uploads that are encrypted as the
//! bytes arrive (SBX1) or stored as the client encrypted them, finalized into blob
//! storage; short-lived download links that decrypt with `Range`; and the small JSON
//! routes of the proxy reference.
//!
//! An upload is reached through a capability token (its URL); only the token's SHA-256
//! is stored. Bytes go to `<data>/uploads/<file id>.part`. With server-side encryption
//! only whole sealed segments are ever written: plaintext of a partial segment stays in
//! memory, so after a crash the upload resumes at the last durable segment. While the
//! upload runs, the file's DEK is sealed by the master key (the owner's secret is not
//! needed to store); finalizing drops that copy and keeps only the envelope sealed to the
//! owner.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use zeroize::Zeroizing;

use super::keys::{KeyService, UserSecret, no_key_material};
use super::messaging::attachments;
use super::{FieldError, Journal, RequestContext, ServiceError, access, read, write};
use crate::auth::{Permission, Principal, opaque};
use crate::blob::{BlobError, BlobKey, BlobStore};
use crate::crypto::download_token::DownloadToken;
use crate::crypto::sbx1::{Header, SegmentEncryptor};
use crate::crypto::{
    Binding, Dek, Envelope, EnvelopeContext, MasterKey, SealedValue, UserKeyPair, ValueContext,
    open_bound_value, open_dek, seal_bound_value, seal_dek,
};
use crate::ids::{FileId, OrgId, UserId, format_rfc3339, now_rfc3339};
use crate::store::download_tokens;
use crate::store::files::{self, Encryption, File, Upload};
use crate::store::{Store, StoreError, user_keys};

const ENVELOPE_KIND: &str = "file";
const NAME_KIND: &str = "file-name";
const UPLOAD_DEK_AAD: &[u8] = b"sealbox/v1/upload-dek\0";
/// An upload's bytes are `<data>/uploads/<file id>.part`.
pub const PART_SUFFIX: &str = ".part";
/// How long an upload URL stays usable.
pub const UPLOAD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a download URL stays usable.
pub const DOWNLOAD_TTL: Duration = Duration::from_secs(15 * 60);
/// Durable progress is recorded at least this often during one long request.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
const MAX_NAME_CHARS: usize = 255;
/// A client-encrypted file's name is ciphertext (base64 of a sealed value holding the
/// name and more), so it may be longer than a plain name.
const MAX_ENCRYPTED_NAME_CHARS: usize = 1024;

/// Size limits of files (config `[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    pub max_file_bytes: u64,
    /// 0: no quota.
    pub org_quota_bytes: u64,
    pub json_file_bytes: u64,
}

/// What a client asks to upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub filename: String,
    pub content_type: Option<String>,
    pub size: u64,
    pub encryption: Encryption,
    pub metadata: Option<String>,
}

/// A created upload: its file id and the token of its URL (shown once; `Debug` hides it).
pub struct CreatedUpload {
    pub file_id: FileId,
    pub token: Zeroizing<String>,
    pub expires_in: Duration,
}

impl std::fmt::Debug for CreatedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUpload")
            .field("file_id", &self.file_id)
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Where an upload stands, for `HEAD` and after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub offset: u64,
    pub length: u64,
    pub complete: bool,
    /// When the unfinished upload expires (tus `Upload-Expires`).
    pub expires: Option<time::OffsetDateTime>,
}

/// How a write continues an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The whole body, from the first byte (a PUT): earlier progress is discarded.
    Replace,
    /// More bytes from `offset`, which must be where the upload stands (tus `PATCH`).
    Append { offset: u64 },
}

/// A file's metadata as its owner sees it.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub file: File,
    /// The decrypted name (server-side encryption), or the name the client sent.
    pub name: String,
}

/// A download the HTTP layer streams: the file and, when sealbox encrypted it, its DEK.
pub struct Download {
    pub file: File,
    pub name: Option<String>,
    pub dek: Option<Dek>,
}

#[derive(Clone)]
pub struct FileService {
    store: Store,
    blobs: Arc<dyn BlobStore>,
    staging: PathBuf,
    master_key: MasterKey,
    keys: KeyService,
    limits: FileLimits,
    /// Uploads being written right now: one writer per upload.
    busy: Arc<Mutex<std::collections::HashSet<FileId>>>,
    /// Running BLAKE3 digests of staged uploads (see [`StagedDigest`]).
    digests: Arc<Mutex<std::collections::HashMap<FileId, StagedDigest>>>,
    /// The organization upload budget (rate limit), checked when an upload is created.
    upload_budget: Arc<dyn Fn(OrgId) -> Result<(), Duration> + Send + Sync>,
    /// The organization's budget of media uploads (`POST /v1/upload-media`).
    media_budget: Arc<dyn Fn(OrgId) -> Result<(), Duration> + Send + Sync>,
    /// The organization's plan: its largest file and its storage (docs/billing.md).
    plans: super::plans::PlanRules,
}

impl FileService {
    pub fn new(
        store: Store,
        blobs: Arc<dyn BlobStore>,
        staging: PathBuf,
        master_key: MasterKey,
        keys: KeyService,
        limits: FileLimits,
    ) -> Self {
        Self {
            store,
            blobs,
            staging,
            master_key,
            keys,
            limits,
            busy: Arc::default(),
            digests: Arc::default(),
            upload_budget: Arc::new(|_| Ok(())),
            media_budget: Arc::new(|_| Ok(())),
            plans: super::plans::PlanRules::default(),
        }
    }

    /// Checks new uploads against the organization's plan.
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    /// Counts upload creations against an organization budget; `Err(wait)` refuses.
    pub fn with_upload_budget(
        mut self,
        budget: impl Fn(OrgId) -> Result<(), Duration> + Send + Sync + 'static,
    ) -> Self {
        self.upload_budget = Arc::new(budget);
        self
    }

    /// Counts media uploads (`upload_media`) against an organization budget of their own.
    pub fn with_media_budget(
        mut self,
        budget: impl Fn(OrgId) -> Result<(), Duration> + Send + Sync + 'static,
    ) -> Self {
        self.media_budget = Arc::new(budget);
        self
    }

    pub fn limits(&self) -> FileLimits {
        self.limits
    }

    fn staged_path(&self, id: FileId) -> PathBuf {
        self.staging.join(format!("{id}{PART_SUFFIX}"))
    }

    /// Creates an upload: checks the declared size against the limits and the quota before
    /// any byte is sent, and prepares its encryption.
    pub async fn create_upload(
        &self,
        principal: &Principal,
        input: NewUpload,
        ctx: RequestContext,
    ) -> Result<CreatedUpload, ServiceError> {
        self.create_upload_counted(principal, input, ctx, false)
            .await
    }

    /// [`FileService::create_upload`], counted against the media budget (`media`) or the
    /// upload budget.
    async fn create_upload_counted(
        &self,
        principal: &Principal,
        input: NewUpload,
        ctx: RequestContext,
        media: bool,
    ) -> Result<CreatedUpload, ServiceError> {
        let (name, content_type, size) = self.check_new_upload(&input)?;
        let id = FileId::new();
        let lookup = principal.clone();
        let owner_key = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::FilesWrite)?;
            Ok((access.org_id, user_keys::find(conn, lookup.user_id)?))
        })
        .await?;
        let (org, keys_row) = owner_key;
        if media {
            (self.media_budget)(org).map_err(|retry_after| ServiceError::BudgetSpent {
                what: "the organization's budget of media uploads an hour",
                retry_after,
            })?;
        } else {
            self.spend_upload_budget(org)?;
        }
        let mut upload = new_upload_row(id, org, principal.user_id, input, content_type, size);
        match upload.encryption {
            Encryption::Server => {
                let keys_row = keys_row.ok_or_else(no_key_material)?;
                let owner_key = crate::crypto::UserPublicKey::from_bytes(&keys_row.public_key)
                    .map_err(|_| {
                        ServiceError::BadRequest("the stored public key is invalid".to_owned())
                    })?;
                let dek = Dek::generate();
                upload.owner_envelope = Some(
                    seal_dek(&owner_key, &envelope_context(id, principal.user_id), &dek)
                        .as_bytes()
                        .to_vec(),
                );
                self.seal_upload_with(&mut upload, &dek, &name);
            }
            Encryption::Client => upload.client_name = Some(name),
        }
        let principal = principal.clone();
        self.insert_upload(upload, ctx, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::FilesWrite)?;
            Ok((access.actor(), access.org()))
        })
        .await
    }

    /// Creates an upload that belongs to a transfer (its files are the transfer's, not
    /// their sender's, so there is no owner envelope): encrypted under the transfer's
    /// `dek` (server mode) or stored as the client encrypted it (`dek` is `None`, e2e).
    /// `attach` runs in the transaction that stores the upload and links it. The upload
    /// lives as long as the transfer (`expires_at`), not the usual 24 hours: a sender may
    /// upload on Monday and finalize on Wednesday.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create_transfer_upload(
        &self,
        org: OrgId,
        sender: UserId,
        dek: Option<&Dek>,
        input: NewUpload,
        expires_at: String,
        ctx: RequestContext,
        attach: impl FnOnce(&rusqlite::Connection, FileId) -> Result<(), ServiceError> + Send + 'static,
    ) -> Result<CreatedUpload, ServiceError> {
        let (name, content_type, size) = self.check_new_upload(&input)?;
        self.spend_upload_budget(org)?;
        let id = FileId::new();
        let mut upload = new_upload_row(id, org, sender, input, content_type, size);
        upload.expires_at = expires_at;
        match (upload.encryption, dek) {
            (Encryption::Server, Some(dek)) => self.seal_upload_with(&mut upload, dek, &name),
            (Encryption::Client, None) => upload.client_name = Some(name),
            (Encryption::Server, None) => {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    "encryption",
                    "an end-to-end transfer takes only client-encrypted uploads (encryption client)",
                )]));
            }
            (Encryption::Client, Some(_)) => {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    "encryption",
                    "a server-sealed transfer takes only uploads the server encrypts (encryption server)",
                )]));
            }
        }
        self.insert_upload(upload, ctx, move |tx| {
            attach(tx, id)?;
            Ok((Some(sender.to_string()), Some(org.to_string())))
        })
        .await
    }

    fn check_new_upload(&self, input: &NewUpload) -> Result<(String, String, i64), ServiceError> {
        let name = check_file_name(&input.filename, input.encryption)?;
        let content_type = content_type_or_default(input.content_type.as_deref())?;
        if input.size > self.limits.max_file_bytes {
            return Err(ServiceError::TooLarge(self.limits.max_file_bytes));
        }
        let size = i64::try_from(input.size)
            .map_err(|_| ServiceError::TooLarge(self.limits.max_file_bytes))?;
        Ok((name, content_type, size))
    }

    fn spend_upload_budget(&self, org: OrgId) -> Result<(), ServiceError> {
        (self.upload_budget)(org).map_err(|retry_after| ServiceError::BudgetSpent {
            what: "the organization's budget of uploads an hour",
            retry_after,
        })
    }

    /// Prepares server-side encryption of `upload` under `dek`: its sealed name, its SBX1
    /// header, and the DEK sealed by the master key while the upload runs.
    fn seal_upload_with(&self, upload: &mut Upload, dek: &Dek, name: &str) {
        let binding = name_binding(upload.org_id, upload.owner_id, &upload.content_type);
        upload.sealed_name = Some(
            seal_bound_value(dek, &name_context(upload.id), &binding, name.as_bytes())
                .as_bytes()
                .to_vec(),
        );
        upload.sbx1_header = Some(Header::generate().to_bytes().to_vec());
        upload.master_sealed_dek = Some(
            self.master_key
                .seal(&upload_dek_aad(upload.id), dek.expose_bytes()),
        );
    }

    /// Stores `upload` after the quota check, with its audit entry; `authorize` runs first
    /// in the transaction and names the actor and the organization of the entry.
    async fn insert_upload(
        &self,
        upload: Upload,
        ctx: RequestContext,
        authorize: impl FnOnce(
            &rusqlite::Connection,
        ) -> Result<(Option<String>, Option<String>), ServiceError>
        + Send
        + 'static,
    ) -> Result<CreatedUpload, ServiceError> {
        let token = opaque::generate();
        let token_hash = token.hash;
        let limits = self.limits;
        let plans = self.plans.clone();
        let id = upload.id;
        write(&self.store, move |tx| {
            let (actor, org) = authorize(tx)?;
            let used = files::org_usage(tx, upload.org_id)?;
            plans.check_upload_in(
                tx,
                upload.org_id,
                upload.declared_size.max(0) as u64,
                used.max(0) as u64,
            )?;
            let quota = limits.org_quota_bytes;
            if quota > 0 && used.saturating_add(upload.declared_size) as u64 > quota {
                return Err(ServiceError::QuotaExceeded(format!(
                    "the organization's storage quota ({} bytes) leaves {} bytes; this file has {}",
                    limits.org_quota_bytes,
                    limits.org_quota_bytes.saturating_sub(used as u64),
                    upload.declared_size
                )));
            }
            files::insert_upload(tx, &upload, &token_hash)?;
            let journal = Journal::new(tx, &ctx, actor, org);
            journal.audit(
                "file.upload_created",
                "file",
                upload.id,
                json!({"size": upload.declared_size, "encryption": upload.encryption.as_str()}),
            )?;
            Ok(())
        })
        .await?;
        Ok(CreatedUpload {
            file_id: id,
            token: token.value,
            expires_in: UPLOAD_TTL,
        })
    }

    /// The unexpired upload a token opens (404 otherwise), complete or not, while its
    /// uploader may still act in its organization: 403 `ORG_SUSPENDED` once it is
    /// suspended, 404 once the uploader is disabled or no longer a member.
    async fn upload_for(&self, token: &str) -> Result<Upload, ServiceError> {
        let hash = opaque::hash(token);
        read(&self.store, move |conn| {
            let upload = files::find_upload_by_token(conn, &hash, &now_rfc3339())?
                .ok_or(ServiceError::NotFound("upload"))?;
            access::issuer_in_good_standing(conn, upload.org_id, upload.owner_id, "upload")?;
            Ok(upload)
        })
        .await
    }

    /// Where the upload stands.
    pub async fn progress(&self, token: &str) -> Result<(Progress, Option<String>), ServiceError> {
        let upload = self.upload_for(token).await?;
        Ok((progress_of(&upload), upload.metadata))
    }

    /// Writes `body` to the upload. Returns where it stands afterwards: with server-side
    /// encryption only whole segments count until the last byte arrives.
    pub async fn write(
        &self,
        token: &str,
        mode: WriteMode,
        mut body: impl tokio::io::AsyncRead + Unpin + Send,
        checksum: Option<[u8; 32]>,
    ) -> Result<Progress, ServiceError> {
        let upload = self.upload_for(token).await?;
        if upload.complete {
            return Err(ServiceError::NotFound("upload"));
        }
        let _writer = WriterGuard::claim(&self.busy, upload.id)?;
        let start = match mode {
            WriteMode::Replace => 0,
            WriteMode::Append { offset } => {
                if offset != upload.received as u64 {
                    return Err(ServiceError::Conflict(format!(
                        "Upload-Offset {offset} does not match the upload's offset {}",
                        upload.received
                    )));
                }
                offset
            }
        };
        let declared = upload.declared_size as u64;
        let path = self.staged_path(upload.id);
        let mut upload = upload;
        if mode == WriteMode::Replace && upload.received != 0 {
            // Starting over: a new SBX1 header (salt and nonce prefix), so no segment is
            // ever sealed twice under the same nonce with different bytes.
            let header = upload
                .sbx1_header
                .as_ref()
                .map(|_| Header::generate().to_bytes().to_vec());
            let (id, from) = (upload.id, upload.received);
            let fresh = header.clone();
            let reset = write(&self.store, move |tx| {
                Ok(files::restart_upload(
                    tx,
                    id,
                    from,
                    fresh.as_deref(),
                    &now_rfc3339(),
                )?)
            })
            .await?;
            if !reset {
                return Err(ServiceError::Conflict(
                    "the upload moved on meanwhile".to_owned(),
                ));
            }
            upload.received = 0;
            upload.sbx1_header = header;
        }
        let mut file = open_part(&path).await.map_err(io_error)?;
        // Resuming needs the bytes already written; if they are gone, so is the upload's
        // progress: the client must start over.
        let on_disk = file.metadata().await.map_err(io_error)?.len();
        let needed = match (upload.encryption, upload.sbx1_header.as_deref()) {
            (Encryption::Server, Some(bytes)) if start > 0 => {
                let header = Header::parse(bytes).map_err(|_| damaged_upload())?;
                let segments = start / header.segment_size() as u64;
                header.segment_offset(u32::try_from(segments).unwrap_or(u32::MAX))
            }
            _ => start,
        };
        if on_disk < needed {
            return Err(ServiceError::Conflict(
                "the upload's stored bytes are missing; send the whole body again with PUT"
                    .to_owned(),
            ));
        }
        let mut hasher = checksum.map(|_| <sha2::Sha256 as sha2::Digest>::new());
        // Server-side encryption: the header and encryptor to continue with, and where the
        // file resumes (whole segments durably written; progress is always a multiple of
        // them until the upload completes). Client-encrypted bytes go to disk as they are.
        let sealing = match upload.encryption {
            Encryption::Client => None,
            Encryption::Server => {
                let header = Header::parse(upload.sbx1_header.as_deref().unwrap_or_default())
                    .map_err(|_| damaged_upload())?;
                let dek = self.upload_dek(&upload)?;
                let first_segment = u32::try_from(start / header.segment_size() as u64)
                    .map_err(|_| too_long(declared))?;
                let encryptor =
                    SegmentEncryptor::resume(&dek, upload.id.as_uuid(), &header, first_segment);
                Some((header, encryptor))
            }
        };
        let file_offset = match &sealing {
            None => start,
            Some(_) if start == 0 => 0,
            Some((header, encryptor)) => header.segment_offset(encryptor.segments_sealed()),
        };
        file.set_len(file_offset).await.map_err(io_error)?;
        file.seek(std::io::SeekFrom::Start(file_offset))
            .await
            .map_err(io_error)?;
        let mut digest = self.resume_digest(upload.id, file_offset);
        if let Some((header, _)) = &sealing
            && start == 0
        {
            file.write_all(&header.to_bytes()).await.map_err(io_error)?;
            digest.update(&header.to_bytes());
        }
        file.flush().await.map_err(io_error)?;
        let header = sealing.as_ref().map(|(header, _)| *header);
        let mut stage = Staging {
            file: file.into_std().await,
            digest,
            encryptor: sealing.map(|(_, encryptor)| encryptor),
            sealed: Vec::new(),
        };
        // Progress and file length that are durable and recorded; a failure cuts the file
        // back to them.
        let mut recorded = start;
        let mut recorded_file_len = file_offset;
        let mut received = start;
        let mut syncing = BackgroundSync::default();
        let mut buf = vec![0u8; BATCH_BYTES];
        let mut spare = vec![0u8; BATCH_BYTES];
        let (mut read, mut broken) = fill(&mut body, &mut buf).await;
        loop {
            if read > 0 {
                if received + read as u64 > declared {
                    let stage = stage.cut_back(recorded_file_len).await?;
                    drop(stage);
                    return Err(too_long(declared));
                }
                if let Some(h) = hasher.as_mut() {
                    sha2::Digest::update(h, &buf[..read]);
                }
                received += read as u64;
                // Short of the declared length, a full segment is not the last: seal it
                // now, so its bytes count even if this request ends here.
                let more = received < declared;
                // Encrypted, hashed and written on a blocking thread while the next batch
                // arrives: the network and the disk work at once, on both cores.
                let task = tokio::task::spawn_blocking(move || {
                    let result = stage.write(&buf[..read], more);
                    (stage, buf, result)
                });
                let next = if broken.is_none() {
                    fill(&mut body, &mut spare).await
                } else {
                    (0, None)
                };
                let (back, used, result) = task.await.map_err(|e| {
                    ServiceError::Store(StoreError::Task(format!("upload write: {e}")))
                })?;
                stage = back;
                buf = std::mem::replace(&mut spare, used);
                if let Err(e) = result {
                    let _ = stage.cut_back(recorded_file_len).await;
                    return Err(match e {
                        StageError::TooLarge => too_long(declared),
                        StageError::Io(e) => io_error(e),
                    });
                }
                if let Some((offset, file_len)) = syncing.finished().await? {
                    self.record(upload.id, recorded, offset, false).await?;
                    recorded = offset;
                    recorded_file_len = file_len;
                }
                let (durable, file_len) = stage.durable(header.as_ref(), received);
                if checksum.is_none() && syncing.idle() && durable - recorded >= CHECKPOINT_BYTES {
                    syncing.start(&stage.file, durable, file_len)?;
                }
                if broken.is_none() {
                    (read, broken) = next;
                    continue;
                }
            }
            let Some(broken) = broken else { break };
            // The client went away: what is durable stays, so it resumes there (unless a
            // checksum must vouch for the whole chunk first).
            if checksum.is_none() {
                let (durable, _) = stage.durable(header.as_ref(), received);
                stage.sync().await?;
                self.record(upload.id, recorded, durable, false).await?;
            } else {
                stage.cut_back(recorded_file_len).await?;
            }
            return Err(broken);
        }
        if let (Some(expected), Some(h)) = (checksum, hasher)
            && sha2::Digest::finalize(h).as_slice() != expected
        {
            stage.cut_back(recorded_file_len).await?;
            return Err(ServiceError::ChecksumMismatch);
        }
        let complete = received == declared;
        let (offset, _) = if complete {
            (declared, 0)
        } else {
            stage.durable(header.as_ref(), received)
        };
        let (stage, stored) = stage.finish(complete).await?;
        self.record(upload.id, recorded, offset, complete).await?;
        self.keep_digest(upload.id, stage.digest, stored);
        Ok(Progress {
            offset,
            length: declared,
            complete,
            expires: expiry_of(&upload),
        })
    }

    /// The running digest to continue at `file_offset`: a fresh one from the start of the
    /// file, the kept one if it covers exactly the bytes before `file_offset`, else none.
    fn resume_digest(&self, id: FileId, file_offset: u64) -> StagedDigest {
        let kept = self.digests.lock().expect("digests lock").remove(&id);
        match kept {
            _ if file_offset == 0 => StagedDigest::fresh(),
            Some(digest) if digest.covers(file_offset) => digest,
            _ => StagedDigest::Lost,
        }
    }

    /// Keeps the digest for the next request or finalize, if it covers the `stored` bytes.
    fn keep_digest(&self, id: FileId, digest: StagedDigest, stored: u64) {
        if digest.covers(stored) {
            self.digests
                .lock()
                .expect("digests lock")
                .insert(id, digest);
        }
    }

    fn forget_digest(&self, id: FileId) {
        self.digests.lock().expect("digests lock").remove(&id);
    }

    async fn record(
        &self,
        id: FileId,
        from: u64,
        to: u64,
        complete: bool,
    ) -> Result<(), ServiceError> {
        if from == to && !complete {
            return Ok(());
        }
        let moved = write(&self.store, move |tx| {
            Ok(files::advance_upload(
                tx,
                id,
                from as i64,
                to as i64,
                complete,
                &now_rfc3339(),
            )?)
        })
        .await?;
        if moved {
            Ok(())
        } else {
            Err(ServiceError::Conflict(
                "the upload moved on meanwhile".to_owned(),
            ))
        }
    }

    fn upload_dek(&self, upload: &Upload) -> Result<Dek, ServiceError> {
        let sealed = upload
            .master_sealed_dek
            .as_deref()
            .ok_or_else(damaged_upload)?;
        let bytes = self
            .master_key
            .open(&upload_dek_aad(upload.id), sealed)
            .map_err(|_| damaged_upload())?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| damaged_upload())?;
        Ok(Dek::from_bytes(bytes))
    }

    /// Discards an upload and its bytes (tus termination).
    pub async fn terminate(&self, token: &str) -> Result<(), ServiceError> {
        let upload = self.upload_for(token).await?;
        let _writer = WriterGuard::claim(&self.busy, upload.id)?;
        let id = upload.id;
        write(&self.store, move |tx| Ok(files::delete_upload(tx, id)?)).await?;
        self.forget_digest(id);
        remove_quietly(&self.staged_path(id)).await;
        Ok(())
    }

    /// Seals the file into place: BLAKE3 of the stored bytes, the blob moved into storage,
    /// then the file row committed. An upload whose size does not match is discarded (400).
    pub async fn finalize(
        &self,
        principal: &Principal,
        id: &str,
        ctx: RequestContext,
    ) -> Result<File, ServiceError> {
        let id: FileId = id.parse().map_err(|_| ServiceError::NotFound("file"))?;
        let lookup = principal.clone();
        let upload = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::FilesWrite)?;
            files::find_upload_for_owner(conn, access.org_id, lookup.user_id, id, &now_rfc3339())?
                .ok_or(ServiceError::NotFound("upload"))
        })
        .await?;
        let _writer = WriterGuard::claim(&self.busy, upload.id)?;
        if !upload.complete {
            let path = self.staged_path(upload.id);
            write(&self.store, move |tx| Ok(files::delete_upload(tx, id)?)).await?;
            self.forget_digest(id);
            remove_quietly(&path).await;
            return Err(ServiceError::BadRequest(format!(
                "the upload has {} of its {} declared bytes; it was discarded",
                upload.received, upload.declared_size
            )));
        }
        let (key, info) = self.move_into_storage(&upload).await?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            // Checked again where the file row commits: a role or key change while the
            // bytes were being moved must not let this finalize through.
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::FilesWrite)?;
            if access.org_id != upload.org_id {
                return Err(ServiceError::NotFound("upload"));
            }
            let file = file_of(upload, &key, info);
            files::delete_upload(tx, file.id)?;
            files::insert(tx, &file)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "file.uploaded",
                "file",
                file.id,
                json!({"size": file.size, "encryption": file.encryption.as_str()}),
            )?;
            journal.event(
                "file.uploaded",
                json!({"fileId": file.id, "ownerUserId": file.owner_id, "size": file.size,
                       "contentType": file.content_type}),
            )?;
            Ok(file)
        })
        .await
    }

    /// Moves a complete upload's bytes into blob storage (with their BLAKE3).
    async fn move_into_storage(
        &self,
        upload: &Upload,
    ) -> Result<(BlobKey, crate::blob::BlobInfo), ServiceError> {
        let key = BlobKey::new(blob_key_of(upload.id)).expect("file blob keys are valid");
        // The digest kept while the bytes were written spares reading them all again.
        let known = self
            .digests
            .lock()
            .expect("digests lock")
            .remove(&upload.id)
            .and_then(StagedDigest::into_info);
        let staged = self.staged_path(upload.id);
        if !tokio::fs::try_exists(&staged).await.map_err(io_error)? {
            // Moved already by a finalize cut short before its rows were committed (a
            // crash, a full disk): `put_file` moves only a whole staged file, atomically,
            // so the blob is the upload's bytes; finish with it.
            return match self.blob_info(&key).await {
                Ok(info) => Ok((key, info)),
                Err(_) => Err(ServiceError::Conflict(format!(
                    "upload {}'s bytes are gone; upload the file again",
                    upload.id
                ))),
            };
        }
        let info = self
            .blobs
            .put_file(&key, &staged, known)
            .await
            .map_err(blob_error)?;
        Ok((key, info))
    }

    /// Size and BLAKE3 of a stored blob, read through.
    async fn blob_info(&self, key: &BlobKey) -> Result<crate::blob::BlobInfo, ServiceError> {
        let mut reader = self.blobs.open(key, 0).await.map_err(blob_error)?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).await.map_err(io_error)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(crate::blob::BlobInfo {
            size,
            blake3: hasher.finalize().to_hex().to_string(),
        })
    }

    /// Turns a transfer's complete upload into its file (the transfer's finalize does this
    /// for each of its uploads). An incomplete upload is a conflict: it stays, so the
    /// client may finish it and finalize again.
    pub(crate) async fn finalize_transfer_upload(&self, id: FileId) -> Result<File, ServiceError> {
        let upload = read(&self.store, move |conn| Ok(files::find_upload(conn, id)?))
            .await?
            .ok_or(ServiceError::NotFound("upload"))?;
        let _writer = WriterGuard::claim(&self.busy, upload.id)?;
        if !upload.complete {
            return Err(ServiceError::Conflict(format!(
                "upload {} has {} of its {} declared bytes; finish it, then finalize",
                upload.id, upload.received, upload.declared_size
            )));
        }
        let (key, info) = self.move_into_storage(&upload).await?;
        write(&self.store, move |tx| {
            // A concurrent finalize of the same transfer may have committed it first.
            if let Some(done) = files::find_by_id(tx, upload.id)? {
                return Ok(done);
            }
            let file = file_of(upload, &key, info);
            files::delete_upload(tx, file.id)?;
            files::insert(tx, &file)?;
            Ok(file)
        })
        .await
    }

    /// Deletes the bytes, then the rows, of a transfer's uploads and files (revocation,
    /// expiry). Bytes go first so that a deletion cut short (a crash, a failing disk)
    /// leaves rows behind, which the next sweep finds and finishes; a file whose blob
    /// could not be deleted keeps its row for that retry.
    pub(crate) async fn delete_transfer_bytes(&self, ids: Vec<FileId>) -> Result<(), ServiceError> {
        let listed = ids.clone();
        let stored = read(&self.store, move |conn| {
            let mut blobs = Vec::new();
            for id in listed {
                if let Some(file) = files::find_by_id(conn, id)? {
                    blobs.push((id, file.blob_key));
                }
            }
            Ok(blobs)
        })
        .await?;
        for id in &ids {
            self.forget_digest(*id);
            remove_quietly(&self.staged_path(*id)).await;
        }
        let mut kept = Vec::new();
        for (id, blob) in stored {
            if let Ok(key) = BlobKey::new(blob)
                && let Err(e) = self.blobs.delete(&key).await
            {
                tracing::warn!(error = %e, blob = %key, "could not delete a transfer's blob; the next sweep retries");
                kept.push(id);
            }
        }
        write(&self.store, move |tx| {
            for id in ids {
                files::delete_upload(tx, id)?;
                if !kept.contains(&id) {
                    files::delete(tx, id)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// An upload by id, for a transfer that lists it (the caller checked that).
    pub(crate) async fn upload_by_id(&self, id: FileId) -> Result<Option<Upload>, ServiceError> {
        read(&self.store, move |conn| Ok(files::find_upload(conn, id)?)).await
    }

    /// A stored file by id, for a transfer that lists it (the caller checked that).
    pub(crate) async fn file_by_id(&self, id: FileId) -> Result<Option<File>, ServiceError> {
        read(&self.store, move |conn| Ok(files::find_by_id(conn, id)?)).await
    }

    /// A short-lived capability for downloading one of the caller's files, or a
    /// client-encrypted file attached to a message the caller can see in one of its chats
    /// (`messaging::attachments`). For a file sealbox encrypted, `secret` unlocks the DEK,
    /// which the link's row keeps sealed under a key derived from the link's own secret
    /// until it expires.
    pub async fn download_link(
        &self,
        principal: &Principal,
        id: &str,
        secret: Option<&UserSecret>,
    ) -> Result<(Zeroizing<String>, Duration), ServiceError> {
        let (file, keys_row) = self.readable_file(principal, id).await?;
        let dek = match file.encryption {
            Encryption::Server => {
                let secret = secret.ok_or(ServiceError::Unauthorized(
                    "the X-User-Secret header is required for this file",
                ))?;
                let pair = self
                    .keys
                    .unlock_row(keys_row.ok_or_else(no_key_material)?, secret)
                    .await?;
                Some(open_file_dek(&pair, &file)?)
            }
            Encryption::Client => None,
        };
        self.issue_link(&file, principal.user_id, dek.as_ref())
            .await
    }

    /// A download link of `file` for `user` (its owner, or a share's recipient): a
    /// download token (`crypto::download_token`) whose row holds the file's DEK (when
    /// sealbox encrypted it) sealed under a key only the token's secret derives. The
    /// owner's links and a share recipient's are the same kind of token.
    pub(crate) async fn issue_link(
        &self,
        file: &File,
        user: UserId,
        dek: Option<&Dek>,
    ) -> Result<(Zeroizing<String>, Duration), ServiceError> {
        let grant = download_tokens::Grant::File {
            file: file.id,
            user,
        };
        let key = dek.map(|dek| Zeroizing::new(*dek.expose_bytes()));
        let org = file.org_id;
        let token = write(&self.store, move |tx| {
            issue_token(tx, org, grant, key.as_deref(), DOWNLOAD_TTL)
        })
        .await?;
        Ok((token, DOWNLOAD_TTL))
    }

    /// Opens a download link: the file and its DEK, and the link's id (its download
    /// session); 404 once expired or gone, or when the user it was issued to may no
    /// longer act in the organization (403 `ORG_SUSPENDED` for a suspended one).
    pub async fn open_link(&self, token: &str) -> Result<(Download, [u8; 16]), ServiceError> {
        let gone = || ServiceError::NotFound("download");
        let token = DownloadToken::decode(token).ok_or_else(gone)?;
        let id = token.id();
        let (token, row, file) = read(&self.store, move |conn| {
            let row = find_token(conn, &token)?.ok_or_else(gone)?;
            let download_tokens::Grant::File { file, user } = row.grant else {
                return Err(gone());
            };
            access::issuer_in_good_standing(conn, row.org_id, user, "download")?;
            let file = files::find_by_id(conn, file)?
                .filter(|f| f.org_id == row.org_id)
                .ok_or_else(gone)?;
            // Someone else's link stands only while what let them have it does: a chat
            // participant's while a message naming the file does and they are still in
            // that chat; a share recipient's while the share is neither revoked nor
            // expired.
            let stands = if file.encryption == Encryption::Client {
                attachments::link_still_good(conn, row.org_id, user, &file)?
            } else {
                user == file.owner_id || share_stands(conn, &file, user)?
            };
            if !stands {
                return Err(gone());
            }
            Ok((token, row, file))
        })
        .await?;
        let dek = match &row.sealed_key {
            Some(sealed) => Some(Dek::from_bytes(*token.open_key(sealed).ok_or_else(gone)?)),
            None => None,
        };
        // A name that does not open means the row was tampered with (its content type
        // changed, say): refuse rather than serve the bytes under it.
        let name = match (&dek, &file.sealed_name) {
            (Some(dek), Some(sealed)) => Some(open_name(dek, &file, sealed)?),
            _ => file.client_name.clone(),
        };
        Ok((Download { file, name, dek }, id))
    }

    /// Records a download through a link: once per link (its first response with a
    /// body), however many requests and ranges the download takes.
    pub async fn record_download(
        &self,
        file: &File,
        link: [u8; 16],
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let (id, org, owner) = (file.id, file.org_id, file.owner_id);
        write(&self.store, move |tx| {
            let journal = Journal::new(tx, &ctx, None, Some(org.to_string()));
            if !download_tokens::mark_counted(tx, &link, journal.now())? {
                return Ok(());
            }
            journal.audit(
                "file.downloaded",
                "file",
                id,
                json!({"via": "download_link"}),
            )?;
            journal.event(
                "file.downloaded",
                json!({"fileId": id, "ownerUserId": owner}),
            )?;
            Ok(())
        })
        .await
    }

    /// `len` stored bytes of the file from `offset` (a ranged read), passed through `then`
    /// on the thread that read them (see [`BlobStore::read_at`]).
    pub async fn read_blob_at(
        &self,
        file: &File,
        offset: u64,
        len: usize,
        then: crate::blob::ReadThen,
    ) -> Result<bytes::Bytes, ServiceError> {
        let key = BlobKey::new(file.blob_key.clone()).map_err(|_| damaged_upload())?;
        self.blobs
            .read_at(&key, offset, len, then)
            .await
            .map_err(blob_error)
    }

    /// A reader of the stored file positioned at `offset`.
    pub async fn open_blob(
        &self,
        file: &File,
        offset: u64,
    ) -> Result<crate::blob::BlobReader, ServiceError> {
        let key = BlobKey::new(file.blob_key.clone()).map_err(|_| damaged_upload())?;
        self.blobs.open(&key, offset).await.map_err(blob_error)
    }

    /// The caller's files with their names (decrypted with `secret` where sealbox
    /// encrypted them; files the caller's keys cannot open are left out).
    pub async fn list(
        &self,
        principal: &Principal,
        secret: &UserSecret,
    ) -> Result<Vec<FileInfo>, ServiceError> {
        let lookup = principal.clone();
        let (files, keys_row) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::FilesRead)?;
            Ok((
                files::list_for_owner(conn, access.org_id, lookup.user_id)?,
                user_keys::find(conn, lookup.user_id)?,
            ))
        })
        .await?;
        let pair = match keys_row {
            Some(row) => Some(self.keys.unlock_row(row, secret).await?),
            None => None,
        };
        Ok(files
            .into_iter()
            .filter_map(|file| {
                let name = match file.encryption {
                    Encryption::Client => file.client_name.clone().unwrap_or_default(),
                    Encryption::Server => {
                        let dek = open_file_dek(pair.as_ref()?, &file).ok()?;
                        open_name(&dek, &file, file.sealed_name.as_ref()?).ok()?
                    }
                };
                Some(FileInfo { file, name })
            })
            .collect())
    }

    /// One of the caller's files, decrypted whole (the proxy route for small files).
    pub async fn read_whole(
        &self,
        principal: &Principal,
        id: &str,
        secret: &UserSecret,
    ) -> Result<(FileInfo, Zeroizing<Vec<u8>>), ServiceError> {
        let (file, keys_row) = self
            .owned_file(principal, id, Permission::FilesRead)
            .await?;
        if file.size as u64 > self.limits.json_file_bytes {
            return Err(ServiceError::TooLarge(self.limits.json_file_bytes));
        }
        let stored = self.stored_bytes(&file).await?;
        match file.encryption {
            Encryption::Client => {
                let name = file.client_name.clone().unwrap_or_default();
                Ok((FileInfo { file, name }, Zeroizing::new(stored)))
            }
            Encryption::Server => {
                let pair = self
                    .keys
                    .unlock_row(keys_row.ok_or_else(no_key_material)?, secret)
                    .await?;
                let dek = open_file_dek(&pair, &file)?;
                let name = open_name(&dek, &file, file.sealed_name.as_ref().ok_or_else(tampered)?)?;
                let plain = decrypt_stored(&file, &dek, &stored)?;
                Ok((FileInfo { file, name }, plain))
            }
        }
    }

    /// A stored file's bytes, whole, as stored (encrypted).
    pub(crate) async fn stored_bytes(&self, file: &File) -> Result<Vec<u8>, ServiceError> {
        let mut stored = Vec::with_capacity(file.stored_size as usize);
        self.open_blob(file, 0)
            .await?
            .read_to_end(&mut stored)
            .await
            .map_err(io_error)?;
        Ok(stored)
    }

    /// Stores a small file sent whole (the proxy route): encrypted under a fresh DEK sealed
    /// to the caller.
    pub async fn store_whole(
        &self,
        principal: &Principal,
        filename: String,
        content_type: Option<String>,
        content: Zeroizing<Vec<u8>>,
        ctx: RequestContext,
    ) -> Result<FileInfo, ServiceError> {
        if content.len() as u64 > self.limits.json_file_bytes {
            return Err(ServiceError::TooLarge(self.limits.json_file_bytes));
        }
        let name = filename.clone();
        let created = self
            .create_upload(
                principal,
                NewUpload {
                    filename,
                    content_type,
                    size: content.len() as u64,
                    encryption: Encryption::Server,
                    metadata: None,
                },
                ctx.clone(),
            )
            .await?;
        self.write(&created.token, WriteMode::Replace, &content[..], None)
            .await?;
        let file = self
            .finalize(principal, &created.file_id.to_string(), ctx)
            .await?;
        Ok(FileInfo { file, name })
    }

    /// One request's media upload (`POST /v1/upload-media`): an upload created, written
    /// from `body` (exactly `size` bytes, encrypted as they arrive) and finalized, with
    /// the checks, encryption and limits of a presigned upload, counted against the
    /// organization's media uploads an hour. A body that ends short discards the upload.
    pub async fn upload_media(
        &self,
        principal: &Principal,
        filename: String,
        content_type: Option<String>,
        size: u64,
        body: impl tokio::io::AsyncRead + Send + Unpin,
        ctx: RequestContext,
    ) -> Result<FileInfo, ServiceError> {
        let name = filename.clone();
        let created = self
            .create_upload_counted(
                principal,
                NewUpload {
                    filename,
                    content_type,
                    size,
                    encryption: Encryption::Server,
                    metadata: None,
                },
                ctx.clone(),
                true,
            )
            .await?;
        let written = self
            .write(&created.token, WriteMode::Replace, body, None)
            .await;
        if let Err(e) = written {
            // Nothing of a failed media upload is kept (there is no URL to resume it at).
            let _ = self.terminate(&created.token).await;
            return Err(e);
        }
        let file = self
            .finalize(principal, &created.file_id.to_string(), ctx)
            .await?;
        Ok(FileInfo { file, name })
    }

    /// Deletes one of the caller's files: the row (and its shares), then the blob.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: &str,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let id: FileId = id.parse().map_err(|_| ServiceError::NotFound("file"))?;
        let principal = principal.clone();
        let file = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::FilesDelete)?;
            let file = files::find_for_owner(tx, access.org_id, principal.user_id, id)?
                .ok_or(ServiceError::NotFound("file"))?;
            files::delete(tx, file.id)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit("file.deleted", "file", file.id, json!({"size": file.size}))?;
            journal.event(
                "file.deleted",
                json!({"fileId": file.id, "ownerUserId": file.owner_id}),
            )?;
            Ok(file)
        })
        .await?;
        if let Ok(key) = BlobKey::new(file.blob_key)
            && let Err(e) = self.blobs.delete(&key).await
        {
            tracing::warn!(error = %e, blob = %key, "could not delete a deleted file's blob; it is left orphaned");
        }
        Ok(())
    }

    /// A file the server makes for `owner` (a conversion's result): `plain` encrypted
    /// (SBX1) under a fresh DEK sealed to the owner's public key, with its sealed name,
    /// and its bytes put in blob storage. Its row is not inserted: the caller does that
    /// with [`FileService::insert_made_in`] in the transaction that records why the file
    /// exists, or drops the bytes with [`FileService::discard_made`].
    pub(crate) async fn store_made(
        &self,
        org: OrgId,
        owner: UserId,
        name: &str,
        content_type: &str,
        plain: Zeroizing<Vec<u8>>,
    ) -> Result<File, ServiceError> {
        if plain.len() as u64 > self.limits.max_file_bytes {
            return Err(ServiceError::TooLarge(self.limits.max_file_bytes));
        }
        let keys_row = read(&self.store, move |conn| Ok(user_keys::find(conn, owner)?))
            .await?
            .ok_or_else(no_key_material)?;
        let owner_key = crate::crypto::UserPublicKey::from_bytes(&keys_row.public_key)
            .map_err(|_| ServiceError::BadRequest("the stored public key is invalid".to_owned()))?;
        let id = FileId::new();
        let dek = Dek::generate();
        let envelope = seal_dek(&owner_key, &envelope_context(id, owner), &dek)
            .as_bytes()
            .to_vec();
        let sealed_name = seal_bound_value(
            &dek,
            &name_context(id),
            &name_binding(org, owner, content_type),
            name.as_bytes(),
        )
        .as_bytes()
        .to_vec();
        let size = plain.len() as i64;
        let stored = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(plain.len() + plain.len() / 64 + 128);
            crate::crypto::sbx1::encrypt_stream(&plain[..], &mut out, &dek, id.as_uuid())
                .map(|_| out)
        })
        .await
        .map_err(|e| ServiceError::Store(StoreError::Task(e.to_string())))?
        .map_err(|e| ServiceError::Store(StoreError::Task(format!("sealing a made file: {e}"))))?;
        let key = BlobKey::new(blob_key_of(id)).expect("file blob keys are valid");
        let info = self
            .blobs
            .put(&key, &mut &stored[..])
            .await
            .map_err(blob_error)?;
        let now = now_rfc3339();
        Ok(File {
            id,
            org_id: org,
            owner_id: owner,
            encryption: Encryption::Server,
            sealed_name: Some(sealed_name),
            client_name: None,
            content_type: content_type.to_owned(),
            size,
            stored_size: info.size as i64,
            blake3: info.blake3,
            owner_envelope: Some(envelope),
            dek_generation: 1,
            blob_key: key.as_str().to_owned(),
            created_at: now.clone(),
            updated_at: now,
        })
    }

    /// Inserts a file [`FileService::store_made`] made, after the same storage checks an
    /// upload passes (the plan's largest file and storage, the organization's quota).
    pub(crate) fn insert_made_in(
        &self,
        tx: &rusqlite::Connection,
        file: &File,
    ) -> Result<(), ServiceError> {
        let used = files::org_usage(tx, file.org_id)?;
        self.plans
            .check_upload_in(tx, file.org_id, file.size.max(0) as u64, used.max(0) as u64)?;
        let quota = self.limits.org_quota_bytes;
        if quota > 0 && used.saturating_add(file.size) as u64 > quota {
            return Err(ServiceError::QuotaExceeded(format!(
                "the organization's storage quota ({quota} bytes) leaves {} bytes; this file has {}",
                quota.saturating_sub(used as u64),
                file.size
            )));
        }
        files::insert(tx, file)?;
        Ok(())
    }

    /// Deletes the bytes of a made file whose row was never inserted.
    pub(crate) async fn discard_made(&self, file: &File) {
        if let Ok(key) = BlobKey::new(file.blob_key.clone())
            && let Err(e) = self.blobs.delete(&key).await
        {
            tracing::warn!(error = %e, blob = %key, "could not delete an unused made file's blob; it is left orphaned");
        }
    }

    /// The plaintext and name of one of `owner`'s server-encrypted files in `org`, opened
    /// with its DEK (a conversion's source). 404 when the file is gone or not theirs.
    pub(crate) async fn open_with_dek(
        &self,
        org: OrgId,
        owner: UserId,
        id: FileId,
        dek: &Dek,
    ) -> Result<(File, String, Zeroizing<Vec<u8>>), ServiceError> {
        let file = read(&self.store, move |conn| {
            Ok(files::find_for_owner(conn, org, owner, id)?)
        })
        .await?
        .ok_or(ServiceError::NotFound("file"))?;
        let name = open_name(dek, &file, file.sealed_name.as_ref().ok_or_else(tampered)?)?;
        let stored = self.stored_bytes(&file).await?;
        let (dek, f) = (Dek::from_bytes(*dek.expose_bytes()), file.clone());
        let plain = tokio::task::spawn_blocking(move || decrypt_stored(&f, &dek, &stored))
            .await
            .map_err(|e| ServiceError::Store(StoreError::Task(e.to_string())))??;
        Ok((file, name, plain))
    }

    /// Removes uploads past their expiry and their partial bytes.
    pub async fn sweep_uploads(&self) -> Result<usize, ServiceError> {
        let expired = read(&self.store, |conn| {
            Ok(files::expired_uploads(conn, &now_rfc3339())?)
        })
        .await?;
        let mut removed = 0;
        for id in expired {
            let Ok(_writer) = WriterGuard::claim(&self.busy, id) else {
                continue;
            };
            if write(&self.store, move |tx| Ok(files::delete_upload(tx, id)?)).await? {
                removed += 1;
            }
            self.forget_digest(id);
            remove_quietly(&self.staged_path(id)).await;
        }
        Ok(removed)
    }

    /// The file `id` as the caller may download it (`messaging::attachments::
    /// readable_file`: its own, or one attached in its chats), with the caller's key row.
    async fn readable_file(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(File, Option<user_keys::UserKeys>), ServiceError> {
        let id: FileId = id.parse().map_err(|_| ServiceError::NotFound("file"))?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            let file = attachments::readable_file(conn, &access, id)?
                .ok_or(ServiceError::NotFound("file"))?;
            Ok((file, user_keys::find(conn, principal.user_id)?))
        })
        .await
    }

    async fn owned_file(
        &self,
        principal: &Principal,
        id: &str,
        permission: Permission,
    ) -> Result<(File, Option<user_keys::UserKeys>), ServiceError> {
        let id: FileId = id.parse().map_err(|_| ServiceError::NotFound("file"))?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(permission)?;
            let file = files::find_for_owner(conn, access.org_id, principal.user_id, id)?
                .ok_or(ServiceError::NotFound("file"))?;
            Ok((file, user_keys::find(conn, principal.user_id)?))
        })
        .await
    }
}

/// Stores a new download token granting `grant` (and `key`, sealed under a key its
/// secret derives) until `ttl` from now, in `tx`; returns the token to hand out.
pub(crate) fn issue_token(
    tx: &rusqlite::Connection,
    org: OrgId,
    grant: download_tokens::Grant,
    key: Option<&[u8; 32]>,
    ttl: Duration,
) -> Result<Zeroizing<String>, ServiceError> {
    let token = DownloadToken::generate();
    let now = time::OffsetDateTime::now_utc();
    let stored = download_tokens::StoredToken {
        id: token.id(),
        org_id: org,
        grant,
        verifier: token.verifier().to_vec(),
        sealed_key: key.map(|key| token.seal_key(key).as_bytes().to_vec()),
        expires_at: format_rfc3339(now + ttl),
    };
    download_tokens::insert(tx, &stored, &format_rfc3339(now))?;
    Ok(token.encode())
}

/// The unexpired stored token that `token` is (its secret verified in constant time).
pub(crate) fn find_token(
    conn: &rusqlite::Connection,
    token: &DownloadToken,
) -> Result<Option<download_tokens::StoredToken>, ServiceError> {
    Ok(
        download_tokens::find_live(conn, &token.id(), &now_rfc3339())?
            .filter(|stored| token.verifies(&stored.verifier)),
    )
}

/// The file a complete upload becomes once its bytes are in blob storage under `key`.
fn file_of(upload: Upload, key: &BlobKey, info: crate::blob::BlobInfo) -> File {
    let now = now_rfc3339();
    File {
        id: upload.id,
        org_id: upload.org_id,
        owner_id: upload.owner_id,
        encryption: upload.encryption,
        sealed_name: upload.sealed_name,
        client_name: upload.client_name,
        content_type: upload.content_type,
        size: upload.declared_size,
        stored_size: info.size as i64,
        blake3: info.blake3,
        owner_envelope: upload.owner_envelope,
        dek_generation: 1,
        blob_key: key.as_str().to_owned(),
        created_at: now.clone(),
        updated_at: now,
    }
}

/// A new upload's row, before its encryption is prepared.
fn new_upload_row(
    id: FileId,
    org: OrgId,
    owner: UserId,
    input: NewUpload,
    content_type: String,
    size: i64,
) -> Upload {
    Upload {
        id,
        org_id: org,
        owner_id: owner,
        encryption: input.encryption,
        sealed_name: None,
        client_name: None,
        content_type,
        declared_size: size,
        received: 0,
        sbx1_header: None,
        master_sealed_dek: None,
        owner_envelope: None,
        metadata: input.metadata,
        complete: false,
        expires_at: format_rfc3339(time::OffsetDateTime::now_utc() + UPLOAD_TTL),
        created_at: now_rfc3339(),
    }
}

fn progress_of(upload: &Upload) -> Progress {
    Progress {
        offset: upload.received as u64,
        length: upload.declared_size as u64,
        complete: upload.complete,
        expires: expiry_of(upload),
    }
}

fn expiry_of(upload: &Upload) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(
        &upload.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
}

/// What a file's DEK is sealed to: the file and one user (its owner, or a share's
/// recipient).
pub(crate) fn envelope_context(id: FileId, recipient: crate::ids::UserId) -> EnvelopeContext {
    EnvelopeContext {
        kind: ENVELOPE_KIND,
        object_id: id.as_uuid(),
        recipient_id: recipient,
    }
}

/// The blob key of file `id`'s bytes.
pub(super) fn blob_key_of(id: FileId) -> String {
    format!("file-{}", id.as_uuid().simple())
}

pub(super) fn name_context(id: FileId) -> ValueContext {
    ValueContext {
        kind: NAME_KIND,
        object_id: id.as_uuid(),
        version: 0,
    }
}

/// What a file's sealed name is bound to besides the file: the organization, the owner
/// (a transfer's sender) and the content type, which are stored in the clear beside it.
pub(super) fn name_binding(org: OrgId, owner: UserId, content_type: &str) -> Binding {
    Binding::new()
        .id(org.as_uuid())
        .id(owner.as_uuid())
        .text(content_type)
}

fn upload_dek_aad(id: FileId) -> Vec<u8> {
    [UPLOAD_DEK_AAD, id.as_uuid().as_bytes()].concat()
}

pub(crate) fn open_file_dek(pair: &UserKeyPair, file: &File) -> Result<Dek, ServiceError> {
    let envelope = file.owner_envelope.clone().ok_or_else(tampered)?;
    open_dek(
        pair,
        &envelope_context(file.id, file.owner_id),
        &Envelope::from_bytes(envelope),
    )
    .map_err(|_| {
        ServiceError::BadRequest(
            "the stored key envelope is tampered or does not match your keys".to_owned(),
        )
    })
}

pub(crate) fn open_name(dek: &Dek, file: &File, sealed: &[u8]) -> Result<String, ServiceError> {
    let bytes = open_bound_value(
        dek,
        &name_context(file.id),
        &name_binding(file.org_id, file.owner_id, &file.content_type),
        &SealedValue::from_bytes(sealed.to_vec()),
    )
    .map_err(|_| tampered())?;
    String::from_utf8(bytes.to_vec()).map_err(|_| tampered())
}

/// The plaintext of a file sealbox encrypted (SBX1), from its stored bytes.
pub(crate) fn decrypt_stored(
    file: &File,
    dek: &Dek,
    stored: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let mut plain = Zeroizing::new(Vec::with_capacity(file.size as usize));
    crate::crypto::sbx1::decrypt_stream(stored, &mut *plain, dek, file.id.as_uuid())
        .map_err(|_| tampered())?;
    Ok(plain)
}

pub(crate) fn tampered() -> ServiceError {
    ServiceError::BadRequest("the stored ciphertext is invalid or tampered".to_owned())
}

fn damaged_upload() -> ServiceError {
    ServiceError::Store(StoreError::Task(
        "an upload's stored encryption state is damaged".to_owned(),
    ))
}

fn too_long(declared: u64) -> ServiceError {
    ServiceError::BadRequest(format!(
        "the body is longer than the declared size of {declared} bytes; the extra bytes were refused"
    ))
}

fn io_error(e: std::io::Error) -> ServiceError {
    if matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) {
        // ENOSPC or EDQUOT. Callers leave nothing half-written behind: an upload is cut
        // back to its durable length, a blob's temporary file is removed.
        ServiceError::DiskFull
    } else {
        ServiceError::Store(StoreError::Task(format!("upload I/O: {e}")))
    }
}

/// The BLAKE3 of an upload's staged bytes, updated as they are written, so finalize need
/// not read a large file again to hash it. It is only good while it covers exactly the
/// bytes on disk: a request that fails, is cut back or restarts elsewhere loses it, and a
/// server restart forgets them all; finalize then hashes the file itself.
enum StagedDigest {
    Running {
        hasher: Box<blake3::Hasher>,
        len: u64,
    },
    Lost,
}

impl StagedDigest {
    fn fresh() -> Self {
        Self::Running {
            hasher: Box::default(),
            len: 0,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        if let Self::Running { hasher, len } = self {
            hasher.update(bytes);
            *len += bytes.len() as u64;
        }
    }

    fn covers(&self, stored: u64) -> bool {
        matches!(self, Self::Running { len, .. } if *len == stored)
    }

    fn into_info(self) -> Option<crate::blob::BlobInfo> {
        match self {
            Self::Running { hasher, len } => Some(crate::blob::BlobInfo {
                size: len,
                blake3: hasher.finalize().to_hex().to_string(),
            }),
            Self::Lost => None,
        }
    }
}

/// An `fdatasync` of an upload's file running on a blocking thread while more bytes
/// arrive, so that making progress durable does not stall the upload: the disk writes
/// back what came before while the network delivers what comes next. The progress it
/// covers is recorded once it is done. A request that ends first does its own final sync
/// and lets a running one finish unobserved.
#[derive(Default)]
struct BackgroundSync {
    /// The sync, and the (offset, file length) it makes durable.
    running: Option<(tokio::task::JoinHandle<std::io::Result<()>>, u64, u64)>,
}

impl BackgroundSync {
    fn idle(&self) -> bool {
        self.running.is_none()
    }

    /// Starts syncing everything written to `file` so far, which holds `offset` bytes of
    /// progress in `file_len` bytes.
    fn start(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        file_len: u64,
    ) -> Result<(), ServiceError> {
        let handle = file.try_clone().map_err(io_error)?;
        let task = tokio::task::spawn_blocking(move || handle.sync_data());
        self.running = Some((task, offset, file_len));
        Ok(())
    }

    /// The (offset, file length) a sync made durable, once it has finished.
    async fn finished(&mut self) -> Result<Option<(u64, u64)>, ServiceError> {
        if !self
            .running
            .as_ref()
            .is_some_and(|(task, ..)| task.is_finished())
        {
            return Ok(None);
        }
        let Some((task, offset, file_len)) = self.running.take() else {
            return Ok(None);
        };
        task.await
            .map_err(|e| ServiceError::Store(StoreError::Task(format!("upload sync: {e}"))))?
            .map_err(io_error)?;
        Ok(Some((offset, file_len)))
    }
}

/// Request body bytes handed to the blocking thread at once: 16 segments of 64 KiB. Two
/// such buffers are in use per upload (one arriving, one being written).
const BATCH_BYTES: usize = 1 << 20;

/// An upload's part file with what is computed over the bytes written to it, moved to a
/// blocking thread for each batch and back.
struct Staging {
    file: std::fs::File,
    digest: StagedDigest,
    /// Server-side encryption; `None` for client-encrypted bytes, written as they are.
    encryptor: Option<SegmentEncryptor>,
    /// The sealed bytes of the batch being written (reused).
    sealed: Vec<u8>,
}

enum StageError {
    TooLarge,
    Io(std::io::Error),
}

impl Staging {
    /// Writes `batch` (encrypted first, if sealbox encrypts) and adds it to the digest.
    /// With `more` (the declared length is not reached), a held-back full segment is
    /// sealed as a middle one and written too.
    fn write(&mut self, batch: &[u8], more: bool) -> Result<(), StageError> {
        use std::io::Write as _;
        let bytes = match self.encryptor.as_mut() {
            None => batch,
            Some(encryptor) => {
                self.sealed.clear();
                encryptor
                    .push(batch, &mut self.sealed)
                    .map_err(|_| StageError::TooLarge)?;
                if more {
                    encryptor.seal_full_segment(&mut self.sealed);
                }
                &self.sealed
            }
        };
        self.file.write_all(bytes).map_err(StageError::Io)?;
        self.digest.update(bytes);
        Ok(())
    }

    /// The progress (plaintext offset) written so far that a sync makes durable, and the
    /// file length that holds it: with server-side encryption whole segments only.
    fn durable(&self, header: Option<&Header>, received: u64) -> (u64, u64) {
        match (&self.encryptor, header) {
            (Some(encryptor), Some(header)) => {
                let segments = encryptor.segments_sealed();
                (
                    u64::from(segments) * header.segment_size() as u64,
                    header.segment_offset(segments),
                )
            }
            _ => (received, received),
        }
    }

    /// Makes everything written durable.
    async fn sync(self) -> Result<Self, ServiceError> {
        self.blocking(|stage| stage.file.sync_data().map_err(io_error))
            .await
    }

    /// Cuts the file back to `len` bytes (the recorded progress).
    async fn cut_back(self, len: u64) -> Result<Self, ServiceError> {
        self.blocking(move |stage| stage.file.set_len(len).map_err(io_error))
            .await
    }

    /// Ends the request: a complete upload's last segment sealed and written; an
    /// incomplete one cut back to its whole segments (the held-back plaintext was never
    /// written); then synced. Returns the stored length.
    async fn finish(self, complete: bool) -> Result<(Self, u64), ServiceError> {
        let mut stage = self
            .blocking(move |stage| {
                use std::io::Write as _;
                if let Some(encryptor) = stage.encryptor.take() {
                    if complete {
                        stage.sealed.clear();
                        encryptor
                            .finish(&mut stage.sealed)
                            .map_err(|_| damaged_upload())?;
                        stage.file.write_all(&stage.sealed).map_err(io_error)?;
                        let Staging { digest, sealed, .. } = stage;
                        digest.update(sealed);
                    } else {
                        let end = encryptor
                            .header()
                            .segment_offset(encryptor.segments_sealed());
                        stage.file.set_len(end).map_err(io_error)?;
                    }
                }
                stage.file.sync_data().map_err(io_error)
            })
            .await?;
        let stored = stage.file.metadata().map_err(io_error)?.len();
        stage.sealed = Vec::new();
        Ok((stage, stored))
    }

    async fn blocking(
        mut self,
        op: impl FnOnce(&mut Self) -> Result<(), ServiceError> + Send + 'static,
    ) -> Result<Self, ServiceError> {
        let (stage, result) = tokio::task::spawn_blocking(move || {
            let result = op(&mut self);
            (self, result)
        })
        .await
        .map_err(|e| ServiceError::Store(StoreError::Task(format!("upload I/O: {e}"))))?;
        result.map(|()| stage)
    }
}

/// Reads the body into `buf` until it is full or the body ends. A body that breaks off
/// returns what arrived before, with the error.
async fn fill(
    body: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut [u8],
) -> (usize, Option<ServiceError>) {
    let mut filled = 0;
    while filled < buf.len() {
        match read_some(body, &mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

/// Blob storage failures: a full disk is the operator's to fix (507); the rest is internal.
fn blob_error(e: BlobError) -> ServiceError {
    match e {
        BlobError::Io(e) => io_error(e),
        other => ServiceError::Store(StoreError::Task(other.to_string())),
    }
}

async fn read_some(
    body: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut [u8],
) -> Result<usize, ServiceError> {
    body.read(buf)
        .await
        .map_err(|e| ServiceError::BadRequest(format!("the upload body could not be read: {e}")))
}

/// Opens an upload's `.part` file for writing, creating it if needed. A new one's entry in
/// `uploads/` is made durable (directory fsync) before any progress is recorded for it:
/// otherwise a crash could forget the file while the database says its bytes are there.
async fn open_part(path: &std::path::Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.read(true).write(true);
    match options.clone().create_new(true).open(path).await {
        Ok(file) => {
            let dir = path
                .parent()
                .expect("a part file lives in the uploads directory")
                .to_owned();
            tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
                .await
                .map_err(std::io::Error::other)??;
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => options.open(path).await,
        Err(e) => Err(e),
    }
}

async fn remove_quietly(path: &std::path::Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %path.display(), "could not remove an upload's bytes");
    }
}

/// File names: 1 to 255 characters (1,024 when the client encrypted them), no control
/// characters.
fn check_file_name(name: &str, encryption: Encryption) -> Result<String, ServiceError> {
    let max = match encryption {
        Encryption::Server => MAX_NAME_CHARS,
        Encryption::Client => MAX_ENCRYPTED_NAME_CHARS,
    };
    let chars = name.chars().count();
    if chars == 0 || chars > max || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(vec![FieldError::new(
            "filename",
            format!("1 to {max} characters, no control characters"),
        )]));
    }
    Ok(name.to_owned())
}

/// Longest content type accepted, in bytes: it is bound into the sealed name.
const MAX_CONTENT_TYPE_BYTES: usize = 1024;

fn content_type_or_default(value: Option<&str>) -> Result<String, ServiceError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok("application/octet-stream".to_owned()),
        Some(v) if v.len() > MAX_CONTENT_TYPE_BYTES => {
            Err(ServiceError::Invalid(vec![FieldError::new(
                "contentType",
                format!("at most {MAX_CONTENT_TYPE_BYTES} bytes"),
            )]))
        }
        Some(v) => v.parse::<mime::Mime>().map(|m| m.to_string()).map_err(|_| {
            ServiceError::Invalid(vec![FieldError::new("contentType", "not a media type")])
        }),
    }
}

/// Marks an upload as being written; a second writer is refused (409) until it ends.
struct WriterGuard {
    busy: Arc<Mutex<std::collections::HashSet<FileId>>>,
    id: FileId,
}

impl WriterGuard {
    fn claim(
        busy: &Arc<Mutex<std::collections::HashSet<FileId>>>,
        id: FileId,
    ) -> Result<Self, ServiceError> {
        if busy.lock().expect("never poisoned").insert(id) {
            Ok(Self {
                busy: busy.clone(),
                id,
            })
        } else {
            Err(ServiceError::Conflict(
                "another request is writing this upload".to_owned(),
            ))
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.busy.lock().expect("never poisoned").remove(&self.id);
    }
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("file", &self.file.id)
            .finish_non_exhaustive()
    }
}

/// Whether `user` still holds an active share of `file` (for the download links of
/// shared files).
fn share_stands(
    conn: &rusqlite::Connection,
    file: &File,
    user: UserId,
) -> Result<bool, ServiceError> {
    let now = now_rfc3339();
    Ok(crate::store::shares::unrevoked_for(
        conn,
        crate::store::shares::ObjectKind::File,
        &file.id.to_string(),
        user,
    )?
    .is_some_and(|share| {
        share
            .expires_at
            .as_deref()
            .is_none_or(|at| at > now.as_str())
    }))
}
