//! `/v1/transfers` (the sender's side) and `/v1/public/transfers` (link holders, no
//! account). The bytes go through `uploads.rs`: tus creation at the transfer's upload URL,
//! then the usual upload URL; downloads stream from
//! `/v1/public/transfers/{id}/files/{fileId}` (also in `uploads.rs`).
//!
//! Two modes, labelled as what they are: server-sealed (sealbox encrypts, and can read
//! the files while serving them) and end-to-end (`e2e: true`: the client encrypts, the key
//! stays in the link's fragment, sealbox stores bytes it cannot read).

use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::pagination::next_link;
use super::{ApiTags, request_context};
use crate::service::ServiceError;
use crate::service::page::PageRequest;
use crate::service::transfers::{
    CreatedTransfer, NewTransfer, PublicView, RecipientInput, TransferService, TransferView,
};
use crate::store::transfers::{Mode, Recipient, Status};

/// Where a transfer's upload token creates uploads (tus creation; outside the JSON API).
pub const TRANSFER_UPLOADS_PATH: &str = "/v1/transfer-uploads";
/// The header that carries a transfer link's secret (its `#s=` part) on the public routes.
pub const TRANSFER_SECRET_HEADER: &str = "X-Transfer-Secret";
/// Where link holders download a transfer's files.
pub const PUBLIC_TRANSFERS_PATH: &str = "/v1/public/transfers";

pub struct TransfersApi {
    pub transfers: TransferService,
    /// The public base URL links are built on.
    pub public_url: String,
}

/// One recipient: an email address or a user of the organization (exactly one).
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
#[serde(rename_all = "camelCase")]
pub struct RecipientView {
    pub email: Option<String>,
    #[serde(alias = "user_id")]
    pub user_id: Option<String>,
}

impl From<Recipient> for RecipientView {
    fn from(r: Recipient) -> Self {
        match r {
            Recipient::Email(email) => Self {
                email: Some(email),
                user_id: None,
            },
            Recipient::User(user) => Self {
                email: None,
                user_id: Some(user.to_string()),
            },
        }
    }
}

#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateTransferRequest {
    pub name: String,
    /// Server-sealed transfers only: shown to link holders (with a password, only once
    /// they unlock); stored sealed by the master key, or with a password sealed under the
    /// key the password opens. An end-to-end transfer refuses it (422): its client seals
    /// the message under the transfer key and sets it as `sealedMessage` with
    /// `PUT /v1/transfers/{id}/sealed-message`.
    pub message: Option<String>,
    #[serde(default)]
    pub recipients: Option<Vec<RecipientView>>,
    /// Hours until the transfer expires: 1 to `limits.transfer_max_hours` (default 720);
    /// 168 when left out.
    #[serde(alias = "expires_in_hours")]
    pub expires_in_hours: Option<i64>,
    /// Whole-transfer downloads allowed (1 or more; unlimited when left out). A download
    /// is the files fetched under one download token from unlock, counted once by its
    /// first response from byte 0; without a token each response from byte 0 counts.
    #[serde(alias = "max_downloads")]
    pub max_downloads: Option<i64>,
    /// Gates the download (8 characters or more). Server mode: the file key is then
    /// sealed by an Argon2id key of the password, not by the server's master key.
    pub password: Option<String>,
    /// End-to-end: the client uploads SBX1 ciphertext and encrypted names (tus
    /// `encryption client`) and keeps the key in the link's fragment. Default false:
    /// server-sealed.
    pub e2e: Option<bool>,
}

/// A transfer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum TransferState {
    Pending,
    Ready,
    Expired,
    Revoked,
}

impl From<TransferState> for Status {
    fn from(s: TransferState) -> Self {
        match s {
            TransferState::Pending => Status::Pending,
            TransferState::Ready => Status::Ready,
            TransferState::Expired => Status::Expired,
            TransferState::Revoked => Status::Revoked,
        }
    }
}

impl From<Status> for TransferState {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => TransferState::Pending,
            Status::Ready => TransferState::Ready,
            Status::Expired => TransferState::Expired,
            Status::Revoked => TransferState::Revoked,
        }
    }
}

/// One file of a transfer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TransferFileView {
    pub id: String,
    /// Server mode: the name, when the key is at hand (no password, or a link holder's
    /// download token; absent otherwise). E2e: the encrypted name as the client sent it.
    pub name: Option<String>,
    /// Bytes as stored by the client in e2e mode (ciphertext); plaintext bytes otherwise.
    pub size: i64,
    pub content_type: String,
    /// False while its upload is still running.
    pub uploaded: bool,
}

/// A transfer as its sender sees it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TransferDetail {
    pub id: String,
    pub organization_id: String,
    pub sender_user_id: String,
    pub name: String,
    /// A server-sealed transfer's message.
    pub message: Option<String>,
    /// An end-to-end transfer's message, sealed by its client under the transfer key
    /// (base64url without padding of a sealed value, kind `transfer-e2e-message`,
    /// `docs/crypto.md`), exactly as the client set it; the server cannot read it.
    pub sealed_message: Option<String>,
    /// `server` (server-sealed: sealbox encrypts and can read the files while serving
    /// them) or `e2e` (end-to-end: sealbox stores ciphertext it cannot read).
    pub mode: String,
    pub e2e: bool,
    pub status: TransferState,
    pub expires_at: String,
    pub max_downloads: Option<i64>,
    pub downloads: i64,
    pub remaining_downloads: Option<i64>,
    pub password_required: bool,
    pub recipients: Vec<RecipientView>,
    pub files: Vec<TransferFileView>,
    /// The link for recipients, `/t/{id}#s=<link secret>` (the secret is what link
    /// holders send as `X-Transfer-Secret`); in e2e mode append `&k=<key>` yourself.
    pub link: String,
    pub created_at: String,
    pub updated_at: String,
}

fn detail(view: TransferView, link: String) -> TransferDetail {
    let remaining = view.remaining_downloads();
    let t = view.transfer;
    TransferDetail {
        id: t.id.to_string(),
        organization_id: t.org_id.to_string(),
        sender_user_id: t.sender_id.to_string(),
        name: t.name,
        message: view.message,
        sealed_message: view.sealed_message,
        mode: t.mode.as_str().to_owned(),
        e2e: t.mode == Mode::E2e,
        status: t.status.into(),
        expires_at: t.expires_at,
        max_downloads: t.max_downloads,
        downloads: t.downloads,
        remaining_downloads: remaining,
        password_required: t.password.is_some(),
        recipients: view.recipients.into_iter().map(Into::into).collect(),
        files: view
            .files
            .into_iter()
            .map(|f| TransferFileView {
                id: f.id.to_string(),
                name: f.name,
                size: f.size,
                content_type: f.content_type,
                uploaded: f.uploaded,
            })
            .collect(),
        link,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

/// A created transfer with its upload capability (shown once).
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatedTransferView {
    #[oai(flatten)]
    pub transfer: TransferDetail,
    /// Authorizes uploads of files to this transfer until it is finalized.
    pub upload_token: String,
    /// tus creation endpoint for this transfer (`POST` with `Upload-Length` and
    /// `Upload-Metadata: filename ..., encryption server|client`); each upload then
    /// continues at the `Location` it answers, like any other upload.
    pub upload_url: String,
}

impl std::fmt::Debug for CreatedTransferView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTransferView")
            .field("transfer", &self.transfer)
            .field("upload_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A finalized transfer.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct FinalizedTransferView {
    #[oai(flatten)]
    pub transfer: TransferDetail,
    /// Whether the link was mailed to the recipients with an email (server mode with
    /// mail configured). When false, pass `link` on yourself.
    pub mailed: bool,
}

/// What a link holder sees.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PublicTransferView {
    pub id: String,
    pub name: String,
    /// A server-sealed transfer's message (with a password, once unlocked).
    pub message: Option<String>,
    /// An end-to-end transfer's message as its client sealed it under the key in the
    /// link's fragment (with a password, once unlocked): open it with that key.
    pub sealed_message: Option<String>,
    pub e2e: bool,
    pub expires_at: String,
    pub remaining_downloads: Option<i64>,
    /// Unlock with the password for a download token first.
    pub password_required: bool,
    pub files: Vec<TransferFileView>,
}

impl From<PublicView> for PublicTransferView {
    fn from(p: PublicView) -> Self {
        let remaining = p.view.remaining_downloads();
        let t = p.view.transfer;
        Self {
            id: t.id.to_string(),
            name: t.name,
            message: p.view.message,
            sealed_message: p.view.sealed_message,
            e2e: t.mode == Mode::E2e,
            expires_at: t.expires_at,
            remaining_downloads: remaining,
            password_required: p.password_required,
            files: p
                .view
                .files
                .into_iter()
                .filter(|f| f.uploaded)
                .map(|f| TransferFileView {
                    id: f.id.to_string(),
                    name: f.name,
                    size: f.size,
                    content_type: f.content_type,
                    uploaded: f.uploaded,
                })
                .collect(),
        }
    }
}

/// The message of an end-to-end transfer, sealed by its client.
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SealedMessageRequest {
    /// base64url without padding of a sealed value under the transfer key: kind
    /// `transfer-e2e-message`, object id = this transfer's id, version 1, plaintext the
    /// UTF-8 message (`docs/crypto.md`, End-to-end transfers). At most 53,372 characters
    /// (a message of up to 40,000 UTF-8 bytes).
    #[oai(validator(max_length = 53372))]
    pub sealed_message: String,
}

#[derive(Object, Deserialize)]
pub struct UnlockRequest {
    pub password: String,
}

/// A short-lived download token.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UnlockedView {
    /// Send as `?token=` to the file URLs (and to the transfer view, for the names).
    pub download_token: String,
    /// Seconds the token works.
    pub expires_in: u64,
}

impl std::fmt::Debug for UnlockedView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockedView([redacted])")
    }
}

#[derive(ApiResponse)]
pub enum CreatedTransferResponse {
    /// Created, pending its files. `uploadToken` is shown this once.
    #[oai(status = 201)]
    Created(Json<CreatedTransferView>),
}

#[derive(ApiResponse)]
pub enum TransferResponse {
    #[oai(status = 200)]
    Ok(Json<TransferDetail>),
}

#[derive(ApiResponse)]
pub enum TransfersResponse {
    /// Newest first. `Link` points at the next (older) page when there is one.
    #[oai(status = 200)]
    Ok(
        Json<Vec<TransferDetail>>,
        #[oai(header = "Link")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum FinalizedTransferResponse {
    /// Ready: its links work.
    #[oai(status = 200)]
    Ok(Json<FinalizedTransferView>),
}

#[derive(ApiResponse)]
pub enum RevokedTransferResponse {
    /// Revoked: its bytes are deleted and its links answer 410.
    #[oai(status = 204)]
    Revoked,
}

#[derive(ApiResponse)]
pub enum PublicTransferResponse {
    #[oai(status = 200)]
    Ok(Json<PublicTransferView>),
}

#[derive(ApiResponse)]
pub enum UnlockResponse {
    #[oai(status = 200)]
    Ok(Json<UnlockedView>),
}

#[OpenApi(tag = "ApiTags::Transfers")]
impl TransfersApi {
    /// Create a transfer
    ///
    /// Returns the pending transfer and its upload token and URL. Upload each file with
    /// tus at `uploadUrl`, then finalize. Server-sealed by default (sealbox encrypts the
    /// files under a per-transfer key sealed by its master key, or by an Argon2id key of
    /// the password); `e2e: true` for end-to-end (the client encrypts; sealbox never sees
    /// the key).
    #[oai(
        path = "/v1/transfers",
        method = "post",
        operation_id = "createTransfer"
    )]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        body: JsonBody<CreateTransferRequest>,
    ) -> Result<CreatedTransferResponse, ApiError> {
        let body = body.0;
        let mut recipients = Vec::new();
        for (index, r) in body.recipients.unwrap_or_default().into_iter().enumerate() {
            recipients.push(match (r.email, r.user_id) {
                (Some(email), None) => RecipientInput::Email(email),
                (None, Some(user)) => RecipientInput::User(user),
                _ => {
                    return Err(ApiError::validation("the request is invalid").with_detail(
                        format!("recipients[{index}]"),
                        "give exactly one of email and userId",
                    ));
                }
            });
        }
        let input = NewTransfer {
            name: body.name,
            message: body.message,
            recipients,
            expires_in_hours: body.expires_in_hours,
            max_downloads: body.max_downloads,
            password: body.password.map(Zeroizing::new),
            e2e: body.e2e.unwrap_or(false),
        };
        let CreatedTransfer { view, upload_token } = self
            .transfers
            .create(&auth.0, input, request_context(req))
            .await?;
        let link = self.transfers.link(&view.transfer)?;
        Ok(CreatedTransferResponse::Created(Json(
            CreatedTransferView {
                transfer: detail(view, link),
                upload_url: format!(
                    "{}{TRANSFER_UPLOADS_PATH}/{}",
                    self.public_url,
                    upload_token.as_str()
                ),
                upload_token: upload_token.as_str().to_owned(),
            },
        )))
    }

    /// List the organization's transfers
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/v1/transfers", method = "get", operation_id = "listTransfers")]
    async fn list(
        &self,
        req: &Request,
        auth: Authenticated,
        /// Only transfers in this state.
        status: Query<Option<TransferState>>,
        /// Page size: 1 to 200, default 50.
        limit: Query<Option<i64>>,
        /// The id of the last transfer seen: continue with older ones.
        before: Query<Option<String>>,
        /// A transfer id: list transfers newer than it.
        after: Query<Option<String>>,
    ) -> Result<TransfersResponse, ApiError> {
        let page = PageRequest::parse(limit.0, before.0, after.0)?;
        let page = self
            .transfers
            .list(&auth.0, status.0.map(Into::into), page)
            .await?;
        let link = next_link(req, page.next.as_ref());
        Ok(TransfersResponse::Ok(
            Json(
                page.items
                    .into_iter()
                    .map(|v| {
                        let link = self.transfers.link(&v.transfer)?;
                        Ok(detail(v, link))
                    })
                    .collect::<Result<_, ServiceError>>()?,
            ),
            link,
        ))
    }

    /// Get a transfer
    #[oai(
        path = "/v1/transfers/:id",
        method = "get",
        operation_id = "getTransfer"
    )]
    async fn get(
        &self,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<TransferResponse, ApiError> {
        let view = self.transfers.get(&auth.0, &id.0).await?;
        let link = self.transfers.link(&view.transfer)?;
        Ok(TransferResponse::Ok(Json(detail(view, link))))
    }

    /// Revoke a transfer
    ///
    /// Deletes its bytes; its links answer 410 `GONE` from now on.
    #[oai(
        path = "/v1/transfers/:id",
        method = "delete",
        operation_id = "revokeTransfer"
    )]
    async fn revoke(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<RevokedTransferResponse, ApiError> {
        self.transfers
            .revoke(&auth.0, &id.0, request_context(req))
            .await?;
        Ok(RevokedTransferResponse::Revoked)
    }

    /// Set an end-to-end transfer's sealed message
    ///
    /// While the transfer is pending, its client sets the message it sealed under the
    /// transfer key (bound to this transfer's id, so it comes after creation); setting it
    /// again replaces it. Stored and returned as sent. 422 for a server-sealed transfer
    /// or a value that is not a sealed value; 409 once the transfer is no longer pending.
    #[oai(
        path = "/v1/transfers/:id/sealed-message",
        method = "put",
        operation_id = "setTransferSealedMessage"
    )]
    async fn set_sealed_message(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        body: JsonBody<SealedMessageRequest>,
    ) -> Result<TransferResponse, ApiError> {
        let view = self
            .transfers
            .set_sealed_message(&auth.0, &id.0, body.0.sealed_message, request_context(req))
            .await?;
        let link = self.transfers.link(&view.transfer)?;
        Ok(TransferResponse::Ok(Json(detail(view, link))))
    }

    /// Finalize a transfer
    ///
    /// Every upload must be complete (409 otherwise). The transfer becomes `ready`, the
    /// upload token stops working, and recipients with an email are mailed the link
    /// (server mode, when mail is configured).
    #[oai(
        path = "/v1/transfers/:id/finalize",
        method = "post",
        operation_id = "finalizeTransfer"
    )]
    async fn finalize(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
    ) -> Result<FinalizedTransferResponse, ApiError> {
        let done = self
            .transfers
            .finalize(&auth.0, &id.0, request_context(req))
            .await?;
        let link = self.transfers.link(&done.view.transfer)?;
        Ok(FinalizedTransferResponse::Ok(Json(FinalizedTransferView {
            transfer: detail(done.view, link),
            mailed: done.mailed,
        })))
    }

    /// View a transfer as a link holder (no account)
    ///
    /// Name, files with sizes (in e2e mode their encrypted names), expiry, remaining
    /// downloads and whether a password is needed. 404 unknown or not ready; 410 revoked,
    /// expired or used up.
    #[oai(
        path = "/v1/public/transfers/:id",
        method = "get",
        operation_id = "getPublicTransfer"
    )]
    async fn public_view(
        &self,
        id: Path<String>,
        /// The link's secret (its `#s=` part). Without it (or a download token) the
        /// answer is 404, as for an unknown transfer.
        #[oai(name = "X-Transfer-Secret")]
        secret: Header<Option<String>>,
        /// A download token from unlock: server-mode names are then shown (and, with a
        /// password, the message).
        token: Query<Option<String>>,
    ) -> Result<PublicTransferResponse, ApiError> {
        let view = self
            .transfers
            .public_view(&id.0, secret.0.as_deref(), token.0.as_deref())
            .await?;
        Ok(PublicTransferResponse::Ok(Json(view.into())))
    }

    /// Unlock a transfer with its password
    ///
    /// Returns a short-lived download token (also without a password, with any password
    /// given): the files fetched under one token are one download for `maxDownloads`. A
    /// wrong password is 401; repeated failures (per transfer and per client address)
    /// answer 429 with `Retry-After`; 410 once the downloads are used up.
    #[oai(
        path = "/v1/public/transfers/:id/unlock",
        method = "post",
        operation_id = "unlockTransfer"
    )]
    async fn unlock(
        &self,
        req: &Request,
        id: Path<String>,
        /// The link's secret (its `#s=` part); without it the answer is 404.
        #[oai(name = "X-Transfer-Secret")]
        secret: Header<Option<String>>,
        body: JsonBody<UnlockRequest>,
    ) -> Result<UnlockResponse, ApiError> {
        let password = Zeroizing::new(body.0.password);
        let (token, ttl) = self
            .transfers
            .unlock(&id.0, secret.0.as_deref(), &password, request_context(req))
            .await?;
        Ok(UnlockResponse::Ok(Json(UnlockedView {
            download_token: token.as_str().to_owned(),
            expires_in: ttl.as_secs(),
        })))
    }

    /// Renew a download token
    ///
    /// Exchanges a live download token for a new one of the same download session (not
    /// counted again for `maxDownloads`), valid for the full lifetime again, without the
    /// password: a long download of many files outlives one token this way. The presented
    /// token stops working (a response it is streaming goes on); a session renews for at
    /// most 24 hours after its unlock. Needs the link's secret too: 404 without it; 401
    /// for a token that is invalid, expired or already renewed; 410 once the transfer
    /// ended or expired.
    #[oai(
        path = "/v1/public/transfers/:id/renew",
        method = "post",
        operation_id = "renewTransferToken"
    )]
    async fn renew(
        &self,
        id: Path<String>,
        /// The link's secret (its `#s=` part); without it the answer is 404.
        #[oai(name = "X-Transfer-Secret")]
        secret: Header<Option<String>>,
        body: JsonBody<RenewRequest>,
    ) -> Result<UnlockResponse, ApiError> {
        let presented = Zeroizing::new(body.0.download_token);
        let (token, ttl) = self
            .transfers
            .renew_download_token(&id.0, secret.0.as_deref(), &presented)
            .await?;
        Ok(UnlockResponse::Ok(Json(UnlockedView {
            download_token: token.as_str().to_owned(),
            expires_in: ttl.as_secs(),
        })))
    }
}

/// The download token to renew (in the body, so it stays out of URLs and access logs).
#[derive(Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RenewRequest {
    pub download_token: String,
}

impl std::fmt::Debug for RenewRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenewRequest([redacted])")
    }
}
