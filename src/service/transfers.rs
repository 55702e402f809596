//! Transfers (SPEC §6): a named bundle of files sent to organization users, email
//! addresses or anyone holding the link, with a message, an expiry, a download limit and
//! an optional password. The sender's side (create, list, read, finalize, revoke) and
//! the public side for link holders (view, unlock, download).
//!
//! Two modes, labelled as what they are:
//! - **server-sealed**: sealbox encrypts the files (SBX1) under one DEK per transfer. The
//!   DEK is sealed by the master key, or, with a password, by an Argon2id KEK of the
//!   password once the transfer is finalized (a stolen disk does not open it). The server
//!   can read these files while it serves them.
//! - **end-to-end** (`e2e`): the client uploads SBX1 ciphertext and encrypted names; the
//!   key lives only in the link's fragment (`/t/{id}#k=...`). The server stores bytes it
//!   cannot read. A password, if set, only gates the download.
//!
//! Files go up through the files machinery: the upload token returned at creation
//! authorizes tus creations for this transfer (`POST /v1/transfer-uploads/{token}`), whose
//! uploads are then written like any other. Finalize turns every upload into a file.
//!
//! Counting (`maxDownloads`): a download of the whole transfer counts once. A download is
//! a download session: the token `unlock` issues (to anyone, when there is no password).
//! The first file response from byte 0 under a token counts the transfer's download, in
//! one transaction with a conditional UPDATE, so the limit is exact under concurrency;
//! the token's other files, re-fetches and ranged requests are free, and keep working
//! after the limit was reached by others. A file response from byte 0 without a token
//! (a passwordless transfer fetched file by file) counts one download by itself.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zeroize::Zeroizing;

use super::files::{CreatedUpload, Download, FileService, NewUpload};
use super::login_throttle::LoginThrottle;
use super::page::{Cursor, Page, PageRequest};
use super::plans::Feature;
use super::{
    FieldError, Journal, RequestContext, ServiceError, access, invalid_if_any, read, write,
};
use crate::auth::{Permission, Principal, opaque};
use crate::crypto::download_token::DownloadToken;
use crate::crypto::transfer_e2e::{MAX_SEALED_MESSAGE_CHARS, is_sealed_shape};
use crate::crypto::{
    Argon2Params, Dek, KEK_SALT_LEN, MasterKey, SealedValue, ValueContext, derive_kek, open_value,
    seal_value,
};
use crate::ids::{FileId, OrgId, TransferId, UserId, format_rfc3339, now_rfc3339};
use crate::mail::Mailer;
use crate::store::Store;
use crate::store::download_tokens;
use crate::store::files::{Encryption, File};
use crate::store::notifications::{self, Notification};
use crate::store::transfers::{self, ListCursor, Mode, PasswordGate, Recipient, Status, Transfer};

/// Expiry of a transfer created without one, in hours (a week).
pub const DEFAULT_EXPIRES_HOURS: i64 = 168;
/// Recipients one transfer may name.
pub const MAX_RECIPIENTS: usize = 50;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// How long a download token from `unlock` works.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Files one transfer may hold.
pub const MAX_FILES: usize = 1000;

const DEK_AAD: &[u8] = b"sealbox/v1/transfer-dek\0";
const MESSAGE_AAD: &[u8] = b"sealbox/v1/transfer-message\0";
const LINK_SECRET_AAD: &[u8] = b"sealbox/v1/transfer-link-secret\0";
const GATE_KIND: &str = "transfer-password-gate";
/// A message of a transfer with a password is a sealed value under the key the password
/// opens (kind `transfer-message`), stored as this prefix and its base64; without one,
/// it is sealed by the master key (`v1:<key id>:...`).
const GATE_MESSAGE_PREFIX: &str = "g1:";
/// An end-to-end transfer's message, sealed by the client under the transfer key (which
/// the server never has), is stored as this prefix and the text the client sent.
const E2E_MESSAGE_PREFIX: &str = "e1:";
const MESSAGE_KIND: &str = "transfer-message";

/// Limits of transfers (config `[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct TransferLimits {
    /// Longest expiry, in hours (`limits.transfer_max_hours`).
    pub max_hours: i64,
}

/// One recipient as asked for.
#[derive(Debug, Clone)]
pub enum RecipientInput {
    Email(String),
    User(String),
}

/// What a sender asks for. `Debug` hides the password.
#[derive(Clone, Default)]
pub struct NewTransfer {
    pub name: String,
    pub message: Option<String>,
    pub recipients: Vec<RecipientInput>,
    pub expires_in_hours: Option<i64>,
    pub max_downloads: Option<i64>,
    pub password: Option<Zeroizing<String>>,
    pub e2e: bool,
}

impl std::fmt::Debug for NewTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTransfer")
            .field("name", &self.name)
            .field("recipients", &self.recipients)
            .field("expires_in_hours", &self.expires_in_hours)
            .field("max_downloads", &self.max_downloads)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("e2e", &self.e2e)
            .finish_non_exhaustive()
    }
}

/// A link holder's file download: the file, and the download session (from the download
/// token) it belongs to, if a token was given.
pub struct PublicDownload {
    pub download: Download,
    pub session: Option<[u8; 16]>,
}

/// What a valid download token grants.
struct Access {
    /// One download of the transfer (the token's id): counted once, by its first
    /// response from byte 0.
    session: [u8; 16],
    /// With a password: the key it opened (server mode: the DEK; e2e: the gate's key,
    /// which seals the message).
    key: Option<Zeroizing<[u8; 32]>>,
}

/// A link holder let in: the transfer, and the download token's grant if one was valid.
struct Admitted {
    transfer: Transfer,
    access: Option<Access>,
    /// A token was given and it is invalid or expired.
    bad_token: bool,
}

/// One file of a transfer as shown.
#[derive(Debug, Clone)]
pub struct TransferFile {
    pub id: FileId,
    /// The name: decrypted (server mode, when the DEK is at hand), or as the client sent
    /// it (e2e: its encrypted form).
    pub name: Option<String>,
    pub size: i64,
    pub content_type: String,
    /// False while its upload is still running.
    pub uploaded: bool,
}

/// A transfer with what is shown of it.
#[derive(Debug, Clone)]
pub struct TransferView {
    pub transfer: Transfer,
    pub message: Option<String>,
    /// An end-to-end transfer's message, sealed under the transfer key, as the client
    /// sent it (base64url of a sealed value, `docs/crypto.md`); the server cannot open it.
    pub sealed_message: Option<String>,
    pub recipients: Vec<Recipient>,
    pub files: Vec<TransferFile>,
}

impl TransferView {
    pub fn remaining_downloads(&self) -> Option<i64> {
        self.transfer
            .max_downloads
            .map(|max| (max - self.transfer.downloads).max(0))
    }
}

/// A created transfer and its upload token (shown once; `Debug` hides it).
pub struct CreatedTransfer {
    pub view: TransferView,
    pub upload_token: Zeroizing<String>,
}

impl std::fmt::Debug for CreatedTransfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTransfer")
            .field("view", &self.view)
            .field("upload_token", &"[redacted]")
            .finish()
    }
}

/// A finalized transfer: whether its link was mailed to the recipients with an email.
#[derive(Debug, Clone)]
pub struct FinalizedTransfer {
    pub view: TransferView,
    pub mailed: bool,
}

/// What link holders see of a transfer.
#[derive(Debug, Clone)]
pub struct PublicView {
    pub view: TransferView,
    pub password_required: bool,
}

#[derive(Clone)]
pub struct TransferService {
    store: Store,
    files: FileService,
    master_key: MasterKey,
    mailer: Option<Mailer>,
    public_url: String,
    limits: TransferLimits,
    throttle: Arc<LoginThrottle>,
    argon2: Argon2Params,
    /// How long a download token works (`limits.download_token_ttl_secs`).
    token_ttl: Duration,
    /// The organization's plan: transfers per day, the `e2e_transfers` feature.
    plans: super::plans::PlanRules,
}

impl TransferService {
    pub fn new(
        store: Store,
        files: FileService,
        master_key: MasterKey,
        mailer: Option<Mailer>,
        limits: TransferLimits,
    ) -> Self {
        Self {
            store,
            files,
            master_key,
            mailer,
            public_url: String::new(),
            limits,
            throttle: Arc::default(),
            argon2: Argon2Params::default(),
            token_ttl: ACCESS_TTL,
            plans: super::plans::PlanRules::default(),
        }
    }

    /// Checks new transfers against the organization's plan.
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    /// With the public base URL that links (and mails) are built on.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.public_url = public_url.trim_end_matches('/').to_owned();
        self
    }

    /// The link of a transfer: `/t/{id}#s=<link secret>` (a transfer created before link
    /// secrets: `/t/{id}`); in e2e mode the client appends `&k=...` (or `#k=...`).
    /// 400 when the row no longer matches its seal (see [`TransferService::open_link_secret`]).
    pub fn link(&self, transfer: &Transfer) -> Result<String, ServiceError> {
        let secret = self.open_link_secret(transfer)?;
        Ok(link_of(
            &self.public_url,
            transfer.id,
            secret.as_ref().map(|s| s.as_str()),
        ))
    }

    /// Opens the master-key copy of the link secret. Its associated data binds what
    /// identifies the transfer to people (its organization, sender and name), so a row
    /// whose name was swapped with another's, or moved to another organization, fails to
    /// open: 400, and it is never shown or served under the wrong name. A transfer from
    /// before link secrets has nothing to check (`None`).
    fn open_link_secret(
        &self,
        transfer: &Transfer,
    ) -> Result<Option<Zeroizing<String>>, ServiceError> {
        let Some(sealed) = transfer.sealed_link_secret.as_deref() else {
            return Ok(None);
        };
        self.master_key
            .open(&link_secret_aad(transfer), sealed)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .map(|secret| Some(Zeroizing::new(secret)))
            .ok_or_else(|| {
                ServiceError::BadRequest(
                    "the transfer's stored record does not match its seal (tampered)".to_owned(),
                )
            })
    }

    /// Creates a pending transfer and its upload token.
    pub async fn create(
        &self,
        principal: &Principal,
        input: NewTransfer,
        ctx: RequestContext,
    ) -> Result<CreatedTransfer, ServiceError> {
        let checked = Checked::new(&input, self.limits)?;
        // Refuse a caller without the permission (or the plan) before spending an Argon2id
        // run.
        let lookup = principal.clone();
        let plans = self.plans.clone();
        let e2e = input.e2e;
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::TransfersWrite)?;
            if e2e {
                plans.require_feature_in(conn, access.org_id, Feature::E2eTransfers)?;
            }
            Ok(())
        })
        .await?;
        let id = TransferId::new();
        let mode = if input.e2e { Mode::E2e } else { Mode::Server };
        let dek = (mode == Mode::Server).then(Dek::generate);
        // With a password, the key it opens: the DEK (server mode) or a random one (e2e).
        let gate_key = input.password.as_ref().map(|_| match &dek {
            Some(dek) => Zeroizing::new(*dek.expose_bytes()),
            None => Zeroizing::new(*Dek::generate().expose_bytes()),
        });
        let password = match (input.password.as_ref(), gate_key.clone()) {
            (Some(password), Some(key)) => {
                let (argon2, password) = (self.argon2, password.clone());
                Some(
                    super::argon2_pool::run(move || seal_gate(id, &password, &key, argon2))
                        .await??,
                )
            }
            _ => None,
        };
        let now = time::OffsetDateTime::now_utc();
        let sealed_message = input
            .message
            .as_deref()
            .map(|m| self.seal_message(id, gate_key.as_deref(), m));
        let link_secret = opaque::generate();
        let link_secret_hash = link_secret.hash.to_vec();
        let master_sealed_dek = dek.as_ref().map(|dek| {
            self.master_key
                .seal(&bound(DEK_AAD, id), dek.expose_bytes())
        });
        let sender_id = principal.user_id;
        let max_downloads = input.max_downloads;
        let master_key = self.master_key.clone();
        // The organization is known once the transaction has checked the caller's access;
        // the link secret's seal binds it, the sender and the name.
        let draft = move |org_id| Transfer {
            sealed_link_secret: Some(master_key.seal(
                &link_secret_context(id, org_id, sender_id, &checked.name),
                link_secret.value.as_bytes(),
            )),
            id,
            org_id,
            sender_id,
            name: checked.name,
            sealed_message,
            mode,
            status: Status::Pending,
            expires_at: format_rfc3339(now + time::Duration::hours(checked.expires_in_hours)),
            max_downloads,
            downloads: 0,
            master_sealed_dek,
            password,
            created_at: format_rfc3339(now),
            updated_at: format_rfc3339(now),
            link_secret_hash: Some(link_secret_hash),
        };
        let token = opaque::generate();
        let token_hash = token.hash;
        let principal = principal.clone();
        let raw_recipients = checked.recipients;
        let plans = self.plans.clone();
        let (transfer, recipients) = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::TransfersWrite)?;
            if mode == Mode::E2e {
                plans.require_feature_in(tx, access.org_id, Feature::E2eTransfers)?;
            }
            plans.take_transfer_in(tx, access.org_id)?;
            let recipients = resolve_recipients(tx, access.org_id, raw_recipients)?;
            let transfer = draft(access.org_id);
            transfers::insert(tx, &transfer, &token_hash, &recipients)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                "transfer.created",
                "transfer",
                transfer.id,
                json!({"mode": transfer.mode.as_str(), "recipients": recipients.len(),
                       "expiresAt": transfer.expires_at, "maxDownloads": transfer.max_downloads,
                       "password": transfer.password.is_some()}),
            )?;
            journal.event(
                "transfer.created",
                json!({"transferId": transfer.id, "name": transfer.name,
                       "senderUserId": transfer.sender_id,
                       "recipients": recipients_json(&recipients),
                       "e2e": transfer.mode == Mode::E2e, "expiresAt": transfer.expires_at,
                       "maxDownloads": transfer.max_downloads}),
            )?;
            Ok((transfer, recipients))
        })
        .await?;
        let message = input.message;
        Ok(CreatedTransfer {
            view: TransferView {
                transfer,
                message,
                sealed_message: None,
                recipients,
                files: Vec::new(),
            },
            upload_token: token.value,
        })
    }

    /// A page of the organization's transfers, newest first, optionally in one status.
    pub async fn list(
        &self,
        principal: &Principal,
        status: Option<Status>,
        page: PageRequest,
    ) -> Result<Page<TransferView>, ServiceError> {
        let principal = principal.clone();
        let items = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::TransfersRead)?;
            let org = access.org_id;
            let cursor = match &page.cursor {
                Cursor::Start => ListCursor::Start,
                Cursor::Before(raw) | Cursor::After(raw) => {
                    let at = match raw.parse::<TransferId>() {
                        Ok(at) if transfers::find_for_org(conn, org, at)?.is_some() => at,
                        _ => return Err(page.unknown_cursor()),
                    };
                    match page.cursor {
                        Cursor::After(_) => ListCursor::After(at),
                        _ => ListCursor::Before(at),
                    }
                }
            };
            let items = transfers::list_for_org(conn, org, status, cursor, page.limit + 1)?;
            Ok(page.finish(items, |t| t.id.to_string()))
        })
        .await?;
        let mut views = Vec::with_capacity(items.items.len());
        for transfer in items.items {
            views.push(self.sender_view(transfer).await?);
        }
        Ok(Page {
            items: views,
            next: items.next,
        })
    }

    /// One transfer of the organization.
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<TransferView, ServiceError> {
        let transfer = self
            .find_for(principal, id, Permission::TransfersRead)
            .await?;
        self.sender_view(transfer).await
    }

    /// The sender's view: server-mode names are shown while the server holds the DEK
    /// (no password); with a password only the link holders' unlock opens them.
    async fn sender_view(&self, transfer: Transfer) -> Result<TransferView, ServiceError> {
        let key = match (transfer.mode, &transfer.master_sealed_dek) {
            (Mode::Server, Some(_)) => self
                .master_dek(&transfer)
                .ok()
                .map(|dek| Zeroizing::new(*dek.expose_bytes())),
            _ => None,
        };
        self.view_of(transfer, key.as_deref()).await
    }

    /// Creates an upload of one file of the pending transfer whose upload token is
    /// `token`: encrypted under the transfer's DEK (server mode) or stored as sent (e2e).
    pub async fn create_upload(
        &self,
        token: &str,
        input: NewUpload,
        ctx: RequestContext,
    ) -> Result<CreatedUpload, ServiceError> {
        let hash = opaque::hash(token);
        let transfer = read(&self.store, move |conn| {
            let transfer = transfers::find_by_upload_token(conn, &hash)?
                .ok_or(ServiceError::NotFound("transfer upload"))?;
            // A suspended organization, or a sender who may no longer act in it, stops
            // the token at once.
            access::issuer_in_good_standing(
                conn,
                transfer.org_id,
                transfer.sender_id,
                "transfer upload",
            )?;
            Ok(transfer)
        })
        .await?;
        let dek = match transfer.mode {
            Mode::Server => Some(self.master_dek(&transfer)?),
            Mode::E2e => None,
        };
        let (id, org, sender) = (transfer.id, transfer.org_id, transfer.sender_id);
        self.files
            .create_transfer_upload(
                transfer.org_id,
                transfer.sender_id,
                dek.as_ref(),
                input,
                transfer.expires_at.clone(),
                ctx,
                move |tx, file| {
                    // The transfer may have been finalized or revoked meanwhile.
                    let live =
                        transfers::find_by_id(tx, id)?.is_some_and(|t| t.status == Status::Pending);
                    if !live {
                        return Err(ServiceError::NotFound("transfer upload"));
                    }
                    access::issuer_in_good_standing(tx, org, sender, "transfer upload")?;
                    if transfers::file_ids(tx, id)?.len() >= MAX_FILES {
                        return Err(ServiceError::Conflict(format!(
                            "a transfer holds at most {MAX_FILES} files"
                        )));
                    }
                    Ok(transfers::attach_file(tx, id, file)?)
                },
            )
            .await
    }

    /// Sets the message of a pending end-to-end transfer, sealed by the client under the
    /// transfer key (`docs/crypto.md`, kind `transfer-e2e-message`, bound to the transfer's
    /// id, which is why it comes after creation). Stored and returned as sent; the server
    /// only checks that it has the shape of a sealed value and its length. 422 for a
    /// server-sealed transfer (whose message is `message` at creation), 409 once the
    /// transfer is no longer pending. Setting it again replaces it.
    pub async fn set_sealed_message(
        &self,
        principal: &Principal,
        id: &str,
        sealed: String,
        ctx: RequestContext,
    ) -> Result<TransferView, ServiceError> {
        let transfer = self
            .find_for(principal, id, Permission::TransfersWrite)
            .await?;
        if transfer.mode != Mode::E2e {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "sealedMessage",
                "only an end-to-end transfer takes a sealed message; a server-sealed \
                 transfer takes its message as `message` when it is created",
            )]));
        }
        if !is_sealed_shape(&sealed, MAX_SEALED_MESSAGE_CHARS) {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "sealedMessage",
                format!(
                    "must be a sealed value under the transfer key, base64url without \
                     padding, at most {MAX_SEALED_MESSAGE_CHARS} characters"
                ),
            )]));
        }
        let tid = transfer.id;
        let principal = principal.clone();
        let stored = format!("{E2E_MESSAGE_PREFIX}{sealed}");
        let transfer = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::TransfersWrite)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            if !transfers::set_pending_message(tx, tid, &stored, journal.now())? {
                return Err(ServiceError::Conflict(
                    "the transfer is no longer pending: its message can no longer change"
                        .to_owned(),
                ));
            }
            journal.audit(
                "transfer.message_set",
                "transfer",
                tid,
                json!({"sealedLength": stored.len() - E2E_MESSAGE_PREFIX.len()}),
            )?;
            transfers::find_for_org(tx, access.org_id, tid)?
                .ok_or(ServiceError::NotFound("transfer"))
        })
        .await?;
        self.sender_view(transfer).await
    }

    /// Makes a pending transfer ready: every upload must be complete (409 otherwise) and
    /// there must be at least one. With a password, the master-key copy of the DEK is
    /// dropped. Recipients with an email are mailed the link (server mode, mail on).
    pub async fn finalize(
        &self,
        principal: &Principal,
        id: &str,
        ctx: RequestContext,
    ) -> Result<FinalizedTransfer, ServiceError> {
        let transfer = self
            .find_for(principal, id, Permission::TransfersWrite)
            .await?;
        if transfer.status != Status::Pending {
            return Err(ServiceError::Conflict(format!(
                "the transfer is {}, not pending",
                transfer.status.as_str()
            )));
        }
        let tid = transfer.id;
        let ids = read(&self.store, move |conn| Ok(transfers::file_ids(conn, tid)?)).await?;
        if ids.is_empty() {
            return Err(ServiceError::Conflict(
                "the transfer has no files; upload at least one, then finalize".to_owned(),
            ));
        }
        let mut files = Vec::with_capacity(ids.len());
        let mut vanished = Vec::new();
        for file in ids {
            match self.files.file_by_id(file).await? {
                Some(done) => files.push(done),
                None => match self.files.finalize_transfer_upload(file).await {
                    Ok(done) => files.push(done),
                    // Terminated by its client (tus DELETE): not part of the transfer.
                    Err(ServiceError::NotFound(_)) => vanished.push(file),
                    Err(e) => return Err(e),
                },
            }
        }
        if files.is_empty() {
            return Err(ServiceError::Conflict(
                "the transfer has no files; upload at least one, then finalize".to_owned(),
            ));
        }
        let drop_master = transfer.password.is_some();
        let principal = principal.clone();
        let link = self.link(&transfer)?;
        let (count, total) = (files.len(), files.iter().map(|f| f.size).sum::<i64>());
        let transfer = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::TransfersWrite)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            for file in &vanished {
                transfers::detach_file(tx, tid, *file)?;
            }
            // An upload created while this finalize ran is not among `files`: finalizing
            // now would leave it out of the ready transfer.
            if transfers::has_unfinished_files(tx, tid)? {
                return Err(ServiceError::Conflict(
                    "a file was added while finalizing; finish its upload, then finalize again"
                        .to_owned(),
                ));
            }
            if !transfers::mark_ready(tx, tid, drop_master, journal.now())? {
                return Err(ServiceError::Conflict(
                    "the transfer is no longer pending, or has expired".to_owned(),
                ));
            }
            let transfer = transfers::find_for_org(tx, access.org_id, tid)?
                .ok_or(ServiceError::NotFound("transfer"))?;
            journal.audit(
                "transfer.ready",
                "transfer",
                tid,
                json!({"fileCount": count, "totalSize": total}),
            )?;
            journal.event(
                "transfer.ready",
                json!({"transferId": tid, "senderUserId": transfer.sender_id,
                       "fileCount": count, "totalSize": total,
                       "expiresAt": transfer.expires_at}),
            )?;
            // Recipients in the organization hear of it in the app (with the link; in
            // e2e mode the sender passes the key on).
            for recipient in transfers::recipients(tx, tid)? {
                let Recipient::User(user) = recipient else {
                    continue;
                };
                notifications::insert(
                    tx,
                    &Notification {
                        id: crate::ids::NotificationId::new(),
                        org_id: transfer.org_id,
                        user_id: user,
                        kind: "transfer.received".to_owned(),
                        title: "Files were sent to you".to_owned(),
                        body: format!("\"{}\" is ready to download.", transfer.name),
                        data: json!({"transferId": tid, "link": link}).to_string(),
                        read_at: None,
                        created_at: journal.now().to_owned(),
                    },
                )?;
            }
            Ok(transfer)
        })
        .await?;
        let view = self.sender_view(transfer).await?;
        let mailed = self.mail_recipients(&view);
        Ok(FinalizedTransfer { view, mailed })
    }

    /// Revokes a transfer: its links answer 410 from now on and its bytes are deleted.
    pub async fn revoke(
        &self,
        principal: &Principal,
        id: &str,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let transfer = self
            .find_for(principal, id, Permission::TransfersWrite)
            .await?;
        let tid = transfer.id;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::TransfersWrite)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            if !transfers::end(tx, tid, Status::Revoked, journal.now())? {
                return Err(ServiceError::Gone(format!(
                    "the transfer is already {}",
                    transfer.status.as_str()
                )));
            }
            journal.audit("transfer.revoked", "transfer", tid, json!({}))?;
            journal.event(
                "transfer.revoked",
                json!({"transferId": tid, "senderUserId": transfer.sender_id,
                       "revokedAt": journal.now()}),
            )?;
            Ok(())
        })
        .await?;
        self.delete_bytes(tid).await
    }

    /// Ends every live transfer past its expiry and deletes its bytes. Returns how many.
    pub async fn sweep_expired(&self) -> Result<usize, ServiceError> {
        let due = read(&self.store, |conn| {
            Ok(transfers::due_to_expire(conn, &now_rfc3339())?)
        })
        .await?;
        let mut ended = 0;
        for (id, org) in due {
            let ctx = RequestContext::default();
            let expired = write(&self.store, move |tx| {
                let journal = Journal::new(tx, &ctx, None, Some(org.to_string()));
                let Some(transfer) = transfers::find_for_org(tx, org, id)? else {
                    return Ok(false);
                };
                if !transfers::end(tx, id, Status::Expired, journal.now())? {
                    return Ok(false);
                }
                journal.audit("transfer.expired", "transfer", id, json!({}))?;
                journal.event(
                    "transfer.expired",
                    json!({"transferId": id, "senderUserId": transfer.sender_id,
                           "expiredAt": transfer.expires_at}),
                )?;
                Ok(true)
            })
            .await?;
            if expired {
                ended += 1;
            }
            self.delete_bytes(id).await?;
        }
        // Ended transfers whose bytes a failure left behind (a crash between the status
        // change and the deletion) are cleaned up here too.
        let leftovers = read(&self.store, |conn| Ok(transfers::ended_with_bytes(conn)?)).await?;
        for id in leftovers {
            self.delete_bytes(id).await?;
        }
        // Download sessions whose tokens have expired can never be used again, and the
        // expired tokens' rows (with the only copies of the keys they granted) go.
        let before = format_rfc3339(time::OffsetDateTime::now_utc() - self.token_ttl);
        write(&self.store, move |tx| {
            transfers::prune_download_sessions(tx, &before)?;
            Ok(download_tokens::delete_expired(tx, &now_rfc3339())?)
        })
        .await?;
        Ok(ended)
    }

    /// What link holders see. Names of a server-sealed transfer are shown when the DEK is
    /// at hand: without a password, or with a download token from `unlock`. With a
    /// password, the message is shown only with a download token too.
    pub async fn public_view(
        &self,
        id: &str,
        secret: Option<&str>,
        token: Option<&str>,
    ) -> Result<PublicView, ServiceError> {
        let Admitted {
            transfer, access, ..
        } = self.admit(id, secret, token).await?;
        // A download already counted may still list its files.
        self.refuse_new_download_if_exhausted(&transfer, access.as_ref().map(|a| a.session))
            .await?;
        let unlocked = transfer.password.is_none() || access.is_some();
        let key = match (transfer.mode, &transfer.password, access) {
            (Mode::Server, None, _) => {
                Some(Zeroizing::new(*self.master_dek(&transfer)?.expose_bytes()))
            }
            (_, _, access) => access.and_then(|access| access.key),
        };
        let password_required = transfer.password.is_some();
        let mut view = self.view_of(transfer, key.as_deref()).await?;
        if !unlocked {
            view.message = None;
            view.sealed_message = None;
        }
        Ok(PublicView {
            view,
            password_required,
        })
    }

    /// Checks a transfer's password and issues a short-lived download token. Wrong: 401;
    /// after repeated failures (per transfer and per client IP) 429 with the wait. A
    /// transfer without a password issues a token to anyone holding the link.
    pub async fn unlock(
        &self,
        id: &str,
        secret: Option<&str>,
        password: &str,
        ctx: RequestContext,
    ) -> Result<(Zeroizing<String>, Duration), ServiceError> {
        let transfer = self.admit(id, secret, None).await?.transfer;
        refuse_if_exhausted(&transfer)?;
        let Some(gate) = transfer.password.clone() else {
            return self.access_token(&transfer, None).await;
        };
        // The guess is reserved before the password is checked, so parallel guesses
        // cannot all pass a check made before any of them failed.
        let attempt = self
            .throttle
            .begin_transfer_password(&transfer.id.to_string(), ctx.ip.as_deref().unwrap_or("-"))
            .map_err(|retry_after| ServiceError::TooManyAttempts { retry_after })?;
        let password = Zeroizing::new(password.to_owned());
        let tid = transfer.id;
        let opened = super::argon2_pool::run(move || open_gate(tid, &password, &gate)).await??;
        let Some(key) = opened else {
            attempt.failed();
            let org = transfer.org_id;
            write(&self.store, move |tx| {
                let journal = Journal::new(tx, &ctx, None, Some(org.to_string()));
                journal.audit("transfer.unlock_failed", "transfer", tid, json!({}))?;
                Ok(())
            })
            .await?;
            return Err(ServiceError::Unauthorized("wrong password"));
        };
        attempt.succeeded();
        self.access_token(&transfer, Some(&key)).await
    }

    /// Opens one file of a live transfer for a link holder: 404 if unknown (or without
    /// the link's secret and without a download token), 410 if the transfer ended or
    /// expired, 401 without a needed download token or with an invalid one. Once the
    /// downloads are used up, only the sessions already counted go on.
    pub async fn open_public_file(
        &self,
        id: &str,
        file: &str,
        secret: Option<&str>,
        token: Option<&str>,
    ) -> Result<PublicDownload, ServiceError> {
        let Admitted {
            transfer,
            access,
            bad_token,
        } = self.admit(id, secret, token).await?;
        let file_id: FileId = file.parse().map_err(|_| ServiceError::NotFound("file"))?;
        if bad_token {
            return Err(ServiceError::Unauthorized(
                "the download token is invalid or expired",
            ));
        }
        if access.is_none() && transfer.password.is_some() {
            return Err(ServiceError::Unauthorized(
                "this transfer has a password: unlock it for a download token",
            ));
        }
        let session = access.as_ref().map(|access| access.session);
        let tid = transfer.id;
        let listed = read(&self.store, move |conn| {
            Ok(transfers::has_file(conn, tid, file_id)?)
        })
        .await?;
        if !listed {
            return Err(ServiceError::NotFound("file"));
        }
        self.refuse_new_download_if_exhausted(&transfer, session)
            .await?;
        let dek = match transfer.mode {
            Mode::E2e => None,
            Mode::Server => match access.and_then(|access| access.key) {
                Some(key) => Some(Dek::from_bytes(*key)),
                None if transfer.password.is_none() => Some(self.master_dek(&transfer)?),
                None => return Err(ServiceError::Unauthorized("the download token is invalid")),
            },
        };
        let file = self
            .files
            .file_by_id(file_id)
            .await?
            .ok_or(ServiceError::NotFound("file"))?;
        // A name that does not open means a tampered row: refuse, as a file link does.
        let name = match (&dek, &file.sealed_name) {
            (Some(dek), Some(sealed)) => Some(super::files::open_name(dek, &file, sealed)?),
            _ => file.client_name.clone(),
        };
        Ok(PublicDownload {
            download: Download { file, name, dek },
            session,
        })
    }

    /// Counts the download that a response from byte 0 of `file` belongs to, exactly:
    /// once per download session (and once per response without one), refused with 410
    /// once the limit is reached or the transfer ended. Emits `transfer.downloaded`, and
    /// `transfer.download_limit_reached` on the last one; notifies the sender in the app
    /// on the first.
    pub async fn count_download(
        &self,
        transfer: &str,
        file: &File,
        session: Option<[u8; 16]>,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let tid: TransferId = transfer
            .parse()
            .map_err(|_| ServiceError::NotFound("transfer"))?;
        let (fid, org) = (file.id, file.org_id);
        write(&self.store, move |tx| {
            let journal = Journal::new(tx, &ctx, None, Some(org.to_string()));
            if let Some(session) = &session
                && !transfers::start_download_session(tx, tid, session, journal.now())?
            {
                // This download was counted by an earlier file of the session.
                return Ok(());
            }
            // Refused: the write rolls back, so a refused session is not recorded.
            let Some(count) = transfers::count_download(tx, tid, journal.now())? else {
                return Err(ServiceError::Gone(
                    "the transfer's downloads are used up, or it ended".to_owned(),
                ));
            };
            let transfer =
                transfers::find_for_org(tx, org, tid)?.ok_or(ServiceError::NotFound("transfer"))?;
            journal.audit(
                "transfer.downloaded",
                "transfer",
                tid,
                json!({"fileId": fid, "downloadCount": count}),
            )?;
            journal.event(
                "transfer.downloaded",
                json!({"transferId": tid, "fileId": fid, "downloadCount": count,
                       "maxDownloads": transfer.max_downloads, "ip": ctx.ip}),
            )?;
            if transfer.max_downloads == Some(count) {
                journal.event(
                    "transfer.download_limit_reached",
                    json!({"transferId": tid, "senderUserId": transfer.sender_id,
                           "maxDownloads": count}),
                )?;
            }
            if count == 1 {
                notifications::insert(
                    tx,
                    &Notification {
                        id: crate::ids::NotificationId::new(),
                        org_id: org,
                        user_id: transfer.sender_id,
                        kind: "transfer.downloaded".to_owned(),
                        title: "Your transfer was downloaded".to_owned(),
                        body: format!("\"{}\" was downloaded for the first time.", transfer.name),
                        data: json!({"transferId": tid}).to_string(),
                        read_at: None,
                        created_at: journal.now().to_owned(),
                    },
                )?;
            }
            Ok(())
        })
        .await
    }

    // Helpers.

    /// 410 once the transfer's downloads are used up, unless `session` is a download
    /// that was already counted: it may finish (and list its files).
    async fn refuse_new_download_if_exhausted(
        &self,
        transfer: &Transfer,
        session: Option<[u8; 16]>,
    ) -> Result<(), ServiceError> {
        if !is_exhausted(transfer) {
            return Ok(());
        }
        let tid = transfer.id;
        let counted = match session {
            Some(session) => {
                read(&self.store, move |conn| {
                    Ok(transfers::download_session_counted(conn, tid, &session)?)
                })
                .await?
            }
            None => false,
        };
        if counted {
            Ok(())
        } else {
            refuse_if_exhausted(transfer)
        }
    }

    async fn find_for(
        &self,
        principal: &Principal,
        id: &str,
        permission: Permission,
    ) -> Result<Transfer, ServiceError> {
        let id: TransferId = id.parse().map_err(|_| ServiceError::NotFound("transfer"))?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(permission)?;
            transfers::find_for_org(conn, access.org_id, id)?
                .ok_or(ServiceError::NotFound("transfer"))
        })
        .await
    }

    /// Lets a link holder in: the transfer, if the request holds its link's secret
    /// (`X-Transfer-Secret`; not needed for a transfer created before link secrets) or a
    /// valid download token of it; 404 otherwise, as for an unknown transfer, so the
    /// answer tells nothing about a transfer whose secret the caller lacks. Then: 404 not
    /// yet ready, 410 ended or expired, 403 `ORG_SUSPENDED` when its organization is
    /// suspended, 404 when its sender may no longer act in it. Whether its downloads are
    /// used up is the caller's question ([`Self::refuse_new_download_if_exhausted`]): a
    /// counted session may finish.
    async fn admit(
        &self,
        id: &str,
        secret: Option<&str>,
        token: Option<&str>,
    ) -> Result<Admitted, ServiceError> {
        let id: TransferId = id.parse().map_err(|_| ServiceError::NotFound("transfer"))?;
        let token = token.map(DownloadToken::decode);
        let (transfer, stored, token, standing) = read(&self.store, move |conn| {
            let transfer =
                transfers::find_by_id(conn, id)?.ok_or(ServiceError::NotFound("transfer"))?;
            let stored = match token.as_ref() {
                Some(Some(token)) => super::files::find_token(conn, token)?,
                _ => None,
            };
            let standing = access::issuer_in_good_standing(
                conn,
                transfer.org_id,
                transfer.sender_id,
                "transfer",
            );
            Ok((transfer, stored, token, standing))
        })
        .await?;
        let bad_token = token.is_some();
        let access = match (token.flatten(), stored) {
            (Some(token), Some(stored))
                if stored.grant == download_tokens::Grant::Transfer(transfer.id) =>
            {
                match &stored.sealed_key {
                    None => Some(Access {
                        session: token.id(),
                        key: None,
                    }),
                    Some(sealed) => token.open_key(sealed).map(|key| Access {
                        session: token.id(),
                        key: Some(key),
                    }),
                }
            }
            _ => None,
        };
        let bad_token = bad_token && access.is_none();
        if access.is_none() && !secret_matches(&transfer, secret) {
            return Err(ServiceError::NotFound("transfer"));
        }
        // A row that no longer matches its seal is never shown or served.
        self.open_link_secret(&transfer)?;
        match transfer.status {
            Status::Pending => return Err(ServiceError::NotFound("transfer")),
            Status::Expired => {
                return Err(ServiceError::Gone("the transfer has expired".to_owned()));
            }
            Status::Revoked => {
                return Err(ServiceError::Gone("the transfer was revoked".to_owned()));
            }
            Status::Ready if transfer.expires_at <= now_rfc3339() => {
                return Err(ServiceError::Gone("the transfer has expired".to_owned()));
            }
            Status::Ready => {}
        }
        standing?;
        Ok(Admitted {
            transfer,
            access,
            bad_token,
        })
    }

    /// The view of a transfer with what `key` opens: with a password, the key it opens
    /// (server mode: the DEK, which also opens the names; e2e: the gate's key); without
    /// one, the DEK (server mode) or nothing.
    async fn view_of(
        &self,
        transfer: Transfer,
        key: Option<&[u8; 32]>,
    ) -> Result<TransferView, ServiceError> {
        let tid = transfer.id;
        let dek = match transfer.mode {
            Mode::Server => key.map(|key| Dek::from_bytes(*key)),
            Mode::E2e => None,
        };
        let dek = dek.as_ref();
        let (ids, recipients) = read(&self.store, move |conn| {
            Ok((
                transfers::file_ids(conn, tid)?,
                transfers::recipients(conn, tid)?,
            ))
        })
        .await?;
        let mut files = Vec::with_capacity(ids.len());
        for id in ids {
            match self.files.file_by_id(id).await? {
                Some(file) => {
                    let name = match (dek, &file.sealed_name, file.encryption) {
                        (Some(dek), Some(sealed), Encryption::Server) => {
                            super::files::open_name(dek, &file, sealed).ok()
                        }
                        (_, _, Encryption::Client) => file.client_name.clone(),
                        _ => None,
                    };
                    files.push(TransferFile {
                        id,
                        name,
                        size: file.size,
                        content_type: file.content_type,
                        uploaded: true,
                    });
                }
                None => {
                    let upload = self.files.upload_by_id(id).await?;
                    if let Some(upload) = upload {
                        files.push(TransferFile {
                            id,
                            name: upload.client_name,
                            size: upload.declared_size,
                            content_type: upload.content_type,
                            uploaded: false,
                        });
                    }
                }
            }
        }
        let (message, sealed_message) = match transfer.sealed_message.as_deref() {
            Some(stored) => match stored.strip_prefix(E2E_MESSAGE_PREFIX) {
                Some(client_sealed) => (None, Some(client_sealed.to_owned())),
                None => (self.open_message(tid, key, stored), None),
            },
            None => (None, None),
        };
        Ok(TransferView {
            transfer,
            message,
            sealed_message,
            recipients,
            files,
        })
    }

    fn master_dek(&self, transfer: &Transfer) -> Result<Dek, ServiceError> {
        let sealed = transfer
            .master_sealed_dek
            .as_deref()
            .ok_or(ServiceError::Unauthorized(
                "this transfer has a password: unlock it for a download token",
            ))?;
        let bytes = self
            .master_key
            .open(&bound(DEK_AAD, transfer.id), sealed)
            .map_err(|_| damaged())?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| damaged())?;
        Ok(Dek::from_bytes(bytes))
    }

    /// A download token of `transfer` (`crypto::download_token`): its id is the download
    /// session; its row keeps `key` (what the password opened) sealed under a key only
    /// the token's secret derives, until it expires. It stands for one successful
    /// unlock.
    async fn access_token(
        &self,
        transfer: &Transfer,
        key: Option<&[u8; 32]>,
    ) -> Result<(Zeroizing<String>, Duration), ServiceError> {
        let grant = download_tokens::Grant::Transfer(transfer.id);
        let key = key.map(|key| Zeroizing::new(*key));
        let org = transfer.org_id;
        let ttl = self.token_ttl;
        let token = write(&self.store, move |tx| {
            super::files::issue_token(tx, org, grant, key.as_deref(), ttl)
        })
        .await?;
        Ok((token, ttl))
    }

    /// A message as stored: sealed under the password's key (`g1:`) or by the master key.
    fn seal_message(&self, id: TransferId, key: Option<&[u8; 32]>, message: &str) -> String {
        use base64::Engine as _;
        match key {
            Some(key) => {
                let sealed = seal_value(
                    &Dek::from_bytes(*key),
                    &message_context(id),
                    message.as_bytes(),
                );
                format!(
                    "{GATE_MESSAGE_PREFIX}{}",
                    base64::engine::general_purpose::STANDARD.encode(sealed.as_bytes())
                )
            }
            None => self
                .master_key
                .seal(&bound(MESSAGE_AAD, id), message.as_bytes()),
        }
    }

    /// Opens a stored message: one sealed under the password's key needs `key`.
    fn open_message(&self, id: TransferId, key: Option<&[u8; 32]>, sealed: &str) -> Option<String> {
        use base64::Engine as _;
        let bytes = match sealed.strip_prefix(GATE_MESSAGE_PREFIX) {
            Some(encoded) => {
                let sealed = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()?;
                open_value(
                    &Dek::from_bytes(*key?),
                    &message_context(id),
                    &SealedValue::from_bytes(sealed),
                )
                .ok()?
            }
            None => self.master_key.open(&bound(MESSAGE_AAD, id), sealed).ok()?,
        };
        String::from_utf8(bytes.to_vec()).ok()
    }

    async fn delete_bytes(&self, id: TransferId) -> Result<(), ServiceError> {
        let ids = read(&self.store, move |conn| Ok(transfers::file_ids(conn, id)?)).await?;
        self.files.delete_transfer_bytes(ids).await
    }

    /// Mails the link to recipients with an email, when mail is on and the transfer is
    /// server-sealed (an e2e link needs its key, which the server never has: the sender
    /// passes it on). Returns whether mails were sent off.
    fn mail_recipients(&self, view: &TransferView) -> bool {
        let Some(mailer) = self.mailer.clone() else {
            return false;
        };
        if view.transfer.mode == Mode::E2e {
            return false;
        }
        let emails: Vec<String> = view
            .recipients
            .iter()
            .filter_map(|r| match r {
                Recipient::Email(email) => Some(email.clone()),
                Recipient::User(_) => None,
            })
            .collect();
        if emails.is_empty() {
            return false;
        }
        let Ok(link) = self.link(&view.transfer) else {
            return false;
        };
        let (id, name, expires) = (
            view.transfer.id,
            view.transfer.name.clone(),
            view.transfer.expires_at.clone(),
        );
        let password = view.transfer.password.is_some();
        tokio::spawn(async move {
            let subject = format!("Files for you: {name}");
            let mut body = format!(
                "Files were sent to you with sealbox: \"{name}\".\n\nDownload them here until {expires}:\n{link}\n"
            );
            if password {
                body.push_str("\nThe sender set a password; ask them for it.\n");
            }
            for to in emails {
                match mailer.send(&to, &subject, body.clone()).await {
                    Ok(()) => tracing::info!(transfer = %id, "transfer link mailed"),
                    Err(e) => {
                        tracing::warn!(transfer = %id, error = %e, "could not mail a transfer link")
                    }
                }
            }
        });
        true
    }
}

/// Input checked before anything is stored.
struct Checked {
    name: String,
    expires_in_hours: i64,
    recipients: Vec<RecipientInput>,
}

impl Checked {
    fn new(input: &NewTransfer, limits: TransferLimits) -> Result<Self, ServiceError> {
        let mut problems = Vec::new();
        let name = input.name.trim().to_owned();
        if name.is_empty() {
            problems.push(FieldError::new("name", "must not be empty"));
        } else if name.chars().count() > MAX_NAME_CHARS {
            problems.push(FieldError::new(
                "name",
                format!("must be at most {MAX_NAME_CHARS} characters"),
            ));
        } else if name.chars().any(char::is_control) {
            problems.push(FieldError::new(
                "name",
                "must not contain control characters",
            ));
        }
        if input.e2e && input.message.is_some() {
            // A plaintext message under the end-to-end label would be readable by the
            // server: the client seals it under the transfer key instead.
            problems.push(FieldError::new(
                "message",
                "an end-to-end transfer's message must be sealed by the client under the \
                 transfer key: leave `message` out and set `sealedMessage` with \
                 PUT /v1/transfers/{id}/sealed-message",
            ));
        } else if input
            .message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS)
        {
            problems.push(FieldError::new(
                "message",
                format!("must be at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        let expires_in_hours = input.expires_in_hours.unwrap_or(DEFAULT_EXPIRES_HOURS);
        if !(1..=limits.max_hours).contains(&expires_in_hours) {
            problems.push(FieldError::new(
                "expiresInHours",
                format!("must be between 1 and {}", limits.max_hours),
            ));
        }
        if input.max_downloads.is_some_and(|n| n < 1) {
            problems.push(FieldError::new("maxDownloads", "must be at least 1"));
        }
        if input.recipients.len() > MAX_RECIPIENTS {
            problems.push(FieldError::new(
                "recipients",
                format!("at most {MAX_RECIPIENTS} recipients"),
            ));
        }
        for (index, recipient) in input.recipients.iter().enumerate() {
            match recipient {
                RecipientInput::Email(email) => super::identity::check_email(
                    email,
                    &format!("recipients[{index}].email"),
                    &mut problems,
                ),
                RecipientInput::User(user) => {
                    if user.parse::<UserId>().is_err() {
                        problems.push(FieldError::new(
                            format!("recipients[{index}].userId"),
                            "must be a user id (a UUID)",
                        ));
                    }
                }
            }
        }
        if let Some(password) = &input.password {
            if password.chars().count() < MIN_PASSWORD_CHARS {
                problems.push(FieldError::new(
                    "password",
                    format!("must be at least {MIN_PASSWORD_CHARS} characters"),
                ));
            } else if password.len() > MAX_PASSWORD_BYTES {
                problems.push(FieldError::new(
                    "password",
                    format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
                ));
            }
        }
        invalid_if_any(problems)?;
        Ok(Self {
            name,
            expires_in_hours,
            recipients: input.recipients.clone(),
        })
    }
}

/// Recipients as stored: emails trimmed, user ids checked to be members of `org` (422
/// otherwise, without saying whether the user exists elsewhere).
fn resolve_recipients(
    conn: &rusqlite::Connection,
    org: crate::ids::OrgId,
    input: Vec<RecipientInput>,
) -> Result<Vec<Recipient>, ServiceError> {
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(input.len());
    for (index, recipient) in input.into_iter().enumerate() {
        match recipient {
            RecipientInput::Email(email) => out.push(Recipient::Email(email.trim().to_owned())),
            RecipientInput::User(raw) => match raw.parse::<UserId>() {
                Ok(user)
                    if crate::store::organizations::find_member(conn, org, user)?
                        .is_some_and(|m| m.status == "active") =>
                {
                    out.push(Recipient::User(user));
                }
                _ => problems.push(FieldError::new(
                    format!("recipients[{index}].userId"),
                    "must be an active member of the organization",
                )),
            },
        }
    }
    invalid_if_any(problems)?;
    Ok(out)
}

fn recipients_json(recipients: &[Recipient]) -> serde_json::Value {
    recipients
        .iter()
        .map(|r| match r {
            Recipient::Email(email) => json!(email),
            Recipient::User(user) => json!({"userId": user}),
        })
        .collect()
}

fn link_of(public_url: &str, id: TransferId, secret: Option<&str>) -> String {
    match secret {
        Some(secret) => format!("{public_url}/t/{id}#s={secret}"),
        None => format!("{public_url}/t/{id}"),
    }
}

/// Whether `presented` is the transfer's link secret (constant time); a transfer created
/// before link secrets has none and needs none.
fn secret_matches(transfer: &Transfer, presented: Option<&str>) -> bool {
    match (&transfer.link_secret_hash, presented) {
        (None, _) => true,
        (Some(stored), Some(presented)) => opaque::hashes_equal(&opaque::hash(presented), stored),
        (Some(_), None) => false,
    }
}

fn message_context(id: TransferId) -> ValueContext {
    ValueContext {
        kind: MESSAGE_KIND,
        object_id: id.as_uuid(),
        version: 1,
    }
}

/// AAD binding a sealed value to its transfer.
/// `"sealbox/v1/transfer-link-secret\0" || transfer id || organization id || sender id
/// || name (UTF-8)`: ids are 16 bytes each, so the name, last, needs no length.
fn link_secret_context(id: TransferId, org: OrgId, sender: UserId, name: &str) -> Vec<u8> {
    let mut aad = bound(LINK_SECRET_AAD, id);
    aad.extend_from_slice(org.as_uuid().as_bytes());
    aad.extend_from_slice(sender.as_uuid().as_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn link_secret_aad(transfer: &Transfer) -> Vec<u8> {
    link_secret_context(
        transfer.id,
        transfer.org_id,
        transfer.sender_id,
        &transfer.name,
    )
}

fn bound(label: &[u8], id: TransferId) -> Vec<u8> {
    let mut aad = label.to_vec();
    aad.extend_from_slice(id.as_uuid().as_bytes());
    aad
}

fn gate_context(id: TransferId) -> ValueContext {
    ValueContext {
        kind: GATE_KIND,
        object_id: id.as_uuid(),
        version: 1,
    }
}

/// Seals `key` under an Argon2id KEK of the password (CPU-heavy: run off the runtime).
fn seal_gate(
    id: TransferId,
    password: &str,
    key: &[u8; 32],
    params: Argon2Params,
) -> Result<PasswordGate, ServiceError> {
    let salt: [u8; KEK_SALT_LEN] = crate::crypto::random_bytes();
    let kek = derive_kek(password.as_bytes(), &salt, &params).map_err(|_| damaged())?;
    let kek = Dek::from_bytes(*kek.expose_bytes());
    let sealed = seal_value(&kek, &gate_context(id), key);
    use base64::Engine as _;
    Ok(PasswordGate {
        salt: salt.to_vec(),
        params: serde_json::to_string(&params).map_err(|_| damaged())?,
        sealed_key: base64::engine::general_purpose::STANDARD.encode(sealed.as_bytes()),
    })
}

/// Opens the gate with `password`: `Some(key)` if it is right, `None` if wrong.
fn open_gate(
    id: TransferId,
    password: &str,
    gate: &PasswordGate,
) -> Result<Option<Zeroizing<[u8; 32]>>, ServiceError> {
    use base64::Engine as _;
    let params: Argon2Params = serde_json::from_str(&gate.params).map_err(|_| damaged())?;
    let salt: [u8; KEK_SALT_LEN] = gate.salt.as_slice().try_into().map_err(|_| damaged())?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&gate.sealed_key)
        .map_err(|_| damaged())?;
    let kek = derive_kek(password.as_bytes(), &salt, &params).map_err(|_| damaged())?;
    let kek = Dek::from_bytes(*kek.expose_bytes());
    match open_value(&kek, &gate_context(id), &SealedValue::from_bytes(sealed)) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| damaged())?;
            Ok(Some(Zeroizing::new(key)))
        }
        Err(_) => Ok(None),
    }
}

/// Whether a transfer's downloads are used up.
fn is_exhausted(transfer: &Transfer) -> bool {
    transfer
        .max_downloads
        .is_some_and(|max| transfer.downloads >= max)
}

/// 410 once a transfer's downloads are used up.
fn refuse_if_exhausted(transfer: &Transfer) -> Result<(), ServiceError> {
    if is_exhausted(transfer) {
        return Err(ServiceError::Gone(
            "the transfer's downloads are used up".to_owned(),
        ));
    }
    Ok(())
}

fn damaged() -> ServiceError {
    ServiceError::Store(crate::store::StoreError::Task(
        "a transfer's stored key material is damaged".to_owned(),
    ))
}

// Renewing download tokens lives in its own file; as a child module it reuses the
// admission checks above (`admit`) instead of copying them.
#[path = "transfer_tokens.rs"]
mod transfer_tokens;

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn the_password_gate_opens_with_the_password_only_and_on_its_transfer_only() {
        let id = TransferId::new();
        let key = [7u8; 32];
        let gate = seal_gate(id, "correct horse", &key, FAST).unwrap();
        let opened = open_gate(id, "correct horse", &gate).unwrap().unwrap();
        assert_eq!(*opened, key);
        assert!(open_gate(id, "wrong horse", &gate).unwrap().is_none());
        assert!(
            open_gate(TransferId::new(), "correct horse", &gate)
                .unwrap()
                .is_none(),
            "a gate copied onto another transfer does not open"
        );
        assert_eq!(format!("{gate:?}"), "PasswordGate([redacted])");
    }

    #[test]
    fn debug_never_prints_the_password() {
        let input = NewTransfer {
            name: "x".to_owned(),
            password: Some(Zeroizing::new("hunter2-hunter2".to_owned())),
            ..NewTransfer::default()
        };
        let printed = format!("{input:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }

    #[test]
    fn input_limits_are_checked_together() {
        let limits = TransferLimits { max_hours: 720 };
        let input = NewTransfer {
            name: String::new(),
            expires_in_hours: Some(721),
            max_downloads: Some(0),
            recipients: vec![RecipientInput::Email("nope".to_owned())],
            password: Some(Zeroizing::new("short".to_owned())),
            ..NewTransfer::default()
        };
        let Err(ServiceError::Invalid(problems)) = Checked::new(&input, limits) else {
            panic!("invalid input was accepted");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "name",
                "expiresInHours",
                "maxDownloads",
                "recipients[0].email",
                "password"
            ]
        );
    }
}
