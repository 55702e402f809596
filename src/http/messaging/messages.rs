//! `/v1/messages`: send, edit, delete (tombstone), and reactions. Bodies are stored
//! verbatim: ciphertext, one envelope per recipient device, and the ids of the files the
//! message names (`attachments`).

use poem::Request;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::device_header;
use crate::http::error::ApiError;
use crate::http::json_body::JsonBody;
use crate::http::{ApiTags, authn::Authenticated, path_id, request_context};
use crate::service::messaging::MessagingService;
use crate::service::messaging::messages::{Content, MessageRecord, ReactionRecord};

pub struct MessagesApi {
    pub messaging: MessagingService,
}

/// The message key sealed to one device.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub device_id: String,
    /// Standard base64, at most 4096 bytes decoded.
    pub header: String,
}

/// A message to send.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SendMessageRequest {
    pub chat_id: String,
    /// Such as `text/plain` (stored as sent; it is metadata the server sees).
    pub content_type: String,
    /// Standard base64, at most 65536 bytes decoded.
    pub ciphertext: String,
    /// One per current device of the chat's participants (the sending device's own is
    /// optional).
    pub envelopes: Vec<Envelope>,
    /// When the message self-destructs (RFC 3339, in the future, at most 365 days).
    pub expires_at: Option<String>,
    /// Up to 10 ids of client-encrypted files you can read (presign with
    /// `"encryption": "client"`): every participant who can see the message may then
    /// download them through `GET /v1/files/{id}/download` while the message lives.
    pub attachments: Option<Vec<String>>,
}

/// A message's new content.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct EditMessageRequest {
    /// Defaults to the message's current content type.
    pub content_type: Option<String>,
    pub ciphertext: String,
    pub envelopes: Vec<Envelope>,
    /// Replaces the message's attachments (the same rules as sending); absent keeps them.
    pub attachments: Option<Vec<String>>,
}

#[derive(Debug, Object, Deserialize)]
pub struct ReactionRequest {
    /// An opaque short string (at most 32 bytes), such as an emoji. Sending your current
    /// reaction again removes it.
    pub emoji: String,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ReactionView {
    pub emoji: String,
    pub count: i64,
    /// Whether it is the caller's.
    pub mine: bool,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ReactionsView {
    pub message_id: String,
    pub reactions: Vec<ReactionView>,
}

/// A message as the calling device sees it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageView {
    pub id: String,
    pub chat_id: String,
    pub sender_user_id: String,
    pub sender_device_id: String,
    /// Absent once deleted.
    pub content_type: Option<String>,
    /// Absent once deleted.
    pub ciphertext: Option<String>,
    /// Only the calling device's envelope (empty when it has none, or once deleted).
    pub envelopes: Vec<Envelope>,
    /// The ids of the files the message names (empty once deleted): download each with
    /// `GET /v1/files/{id}/download`.
    pub attachments: Vec<String>,
    pub reactions: Vec<ReactionView>,
    /// A tombstone: deleted for everyone.
    pub deleted: bool,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted_at: Option<String>,
    pub expires_at: Option<String>,
}

fn reaction(r: ReactionRecord) -> ReactionView {
    ReactionView {
        emoji: r.emoji,
        count: r.count,
        mine: r.mine,
    }
}

impl From<MessageRecord> for MessageView {
    fn from(m: MessageRecord) -> Self {
        Self {
            id: m.id,
            chat_id: m.chat_id,
            sender_user_id: m.sender_user_id,
            sender_device_id: m.sender_device_id,
            content_type: m.content_type,
            ciphertext: m.ciphertext,
            envelopes: m
                .envelopes
                .into_iter()
                .map(|e| Envelope {
                    device_id: e.device_id,
                    header: e.header,
                })
                .collect(),
            attachments: m.attachments,
            reactions: m.reactions.into_iter().map(reaction).collect(),
            deleted: m.deleted,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            expires_at: m.expires_at,
        }
    }
}

#[derive(ApiResponse)]
pub enum SentResponse {
    /// Stored and routed.
    #[oai(status = 201)]
    Created(Json<MessageView>),
}

#[derive(ApiResponse)]
pub enum EditedResponse {
    #[oai(status = 200)]
    Ok(Json<MessageView>),
}

#[derive(ApiResponse)]
pub enum DeletedResponse {
    /// Deleted for every participant; a tombstone stays in the chat.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum ReactedResponse {
    #[oai(status = 200)]
    Ok(Json<ReactionsView>),
}

/// A message's content as the service takes it, from a send or an edit.
fn content(
    content_type: String,
    ciphertext: String,
    envelopes: Vec<Envelope>,
    attachments: Option<Vec<String>>,
) -> Content {
    Content {
        content_type,
        ciphertext,
        envelopes: envelopes
            .into_iter()
            .map(|e| (e.device_id, e.header))
            .collect(),
        attachments,
    }
}

#[OpenApi(tag = "ApiTags::Messaging")]
impl MessagesApi {
    /// Send a message: { chatId, contentType, ciphertext, envelopes[], expiresAt? }
    ///
    /// 409 when the envelopes do not cover exactly the participants' current devices:
    /// `details` lists each missing device id (path `missing`) and each extra one (path
    /// `extra`). Honours `Idempotency-Key`.
    #[oai(path = "/v1/messages", method = "post", operation_id = "sendMessage")]
    async fn send(
        &self,
        req: &Request,
        auth: Authenticated,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        body: JsonBody<SendMessageRequest>,
    ) -> Result<SentResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let body = body.0;
        let content = content(
            body.content_type,
            body.ciphertext,
            body.envelopes,
            body.attachments,
        );
        let message = self
            .messaging
            .send(
                &auth.0,
                device,
                &body.chat_id,
                content,
                body.expires_at,
                request_context(req),
            )
            .await?;
        Ok(SentResponse::Created(Json(message.into())))
    }

    /// Edit a message (replaces ciphertext and envelopes)
    ///
    /// The sender only (403 otherwise); the same envelope rule as sending.
    #[oai(
        path = "/v1/messages/:id",
        method = "patch",
        operation_id = "editMessage"
    )]
    async fn edit(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        body: JsonBody<EditMessageRequest>,
    ) -> Result<EditedResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "message")?;
        let body = body.0;
        let content = content(
            body.content_type.unwrap_or_default(),
            body.ciphertext,
            body.envelopes,
            body.attachments,
        );
        let message = self
            .messaging
            .edit(&auth.0, device, id, content, request_context(req))
            .await?;
        Ok(EditedResponse::Ok(Json(message.into())))
    }

    /// Delete a message for all participants
    ///
    /// The sender only (403 otherwise). Ciphertext and envelopes are gone; a tombstone
    /// stays.
    #[oai(
        path = "/v1/messages/:id",
        method = "delete",
        operation_id = "deleteMessage"
    )]
    async fn delete(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
    ) -> Result<DeletedResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "message")?;
        self.messaging
            .delete(&auth.0, device, id, request_context(req))
            .await?;
        Ok(DeletedResponse::Deleted)
    }

    /// Add or toggle a reaction on a message
    ///
    /// One reaction per user: a new one replaces yours, the same one again removes it.
    /// Reactions are visible to the server (they are not end-to-end encrypted).
    #[oai(
        path = "/v1/messages/:id/reactions",
        method = "post",
        operation_id = "reactToMessage"
    )]
    async fn react(
        &self,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        body: JsonBody<ReactionRequest>,
    ) -> Result<ReactedResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "message")?;
        let reactions = self
            .messaging
            .react(&auth.0, device, id, body.0.emoji)
            .await?;
        Ok(ReactedResponse::Ok(Json(ReactionsView {
            message_id: id.to_string(),
            reactions: reactions.into_iter().map(reaction).collect(),
        })))
    }
}
