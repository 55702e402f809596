//! `/v1/chats`: create (one-to-one or group), list (last message time, unread count),
//! fetch (participants and their current device ids), add and remove participants,
//! leave; and `/v1/chats/{id}/messages`, the chat's messages newest first.

use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::device_header;
use super::messages::MessageView;
use crate::http::error::ApiError;
use crate::http::json_body::JsonBody;
use crate::http::pagination::next_link;
use crate::http::{ApiTags, authn::Authenticated, path_id, request_context};
use crate::service::messaging::MessagingService;
use crate::service::messaging::chats::{ChatRecord, NewChat};
use crate::service::page::PageRequest;
use crate::store::messaging::chats::{Chat, ChatSummary};

pub struct ChatsApi {
    pub messaging: MessagingService,
}

/// A chat to create.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateChatRequest {
    /// `direct` (one-to-one: exactly one other user; the default) or `group`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A group's name (required for a group; stored as sent, not end-to-end encrypted).
    pub name: Option<String>,
    /// The other participants' user ids: active members of the same organization.
    pub member_ids: Vec<String>,
}

/// A participant to add.
#[derive(Debug, Object, Deserialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct AddMemberRequest {
    pub user_id: String,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ParticipantView {
    pub user_id: String,
    pub display_name: String,
    /// `owner` (a group's creator) or `member`.
    pub role: String,
    pub joined_at: String,
    /// The participant's current devices: a message needs an envelope for each.
    pub device_ids: Vec<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ChatView {
    pub id: String,
    pub organization_id: String,
    /// `direct` or `group`.
    #[oai(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub last_message_at: Option<String>,
    /// Messages from others since the caller last read the newest page (listings).
    pub unread_count: Option<i64>,
    /// Participants with their device ids (single-chat answers).
    pub participants: Option<Vec<ParticipantView>>,
}

impl ChatView {
    /// The chat's own fields; listings add the unread count, single-chat answers the
    /// participants.
    fn of(chat: Chat) -> Self {
        Self {
            id: chat.id.to_string(),
            organization_id: chat.org_id.to_string(),
            kind: chat.kind,
            name: chat.name,
            created_by: chat.created_by.to_string(),
            created_at: chat.created_at,
            last_message_at: chat.last_message_at,
            unread_count: None,
            participants: None,
        }
    }
}

impl From<ChatRecord> for ChatView {
    fn from(r: ChatRecord) -> Self {
        let participants = r
            .participants
            .into_iter()
            .map(|(m, devices)| ParticipantView {
                user_id: m.user_id.to_string(),
                display_name: m.display_name,
                role: m.role,
                joined_at: m.joined_at,
                device_ids: devices.into_iter().map(|d| d.to_string()).collect(),
            })
            .collect();
        Self {
            participants: Some(participants),
            ..Self::of(r.chat)
        }
    }
}

impl From<ChatSummary> for ChatView {
    fn from(s: ChatSummary) -> Self {
        Self {
            unread_count: Some(s.unread),
            ..Self::of(s.chat)
        }
    }
}

#[derive(ApiResponse)]
pub enum CreateChatResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<ChatView>),
    /// The one-to-one chat with this user already exists: here it is.
    #[oai(status = 200)]
    Existing(Json<ChatView>),
}

#[derive(ApiResponse)]
pub enum ChatsResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<ChatView>>),
}

#[derive(ApiResponse)]
pub enum ChatResponse {
    #[oai(status = 200)]
    Ok(Json<ChatView>),
}

#[derive(ApiResponse)]
pub enum MemberRemovedResponse {
    /// Removed (or left).
    #[oai(status = 204)]
    Removed,
}

#[derive(ApiResponse)]
pub enum MessagesResponse {
    /// Newest first; `Link` points at the next (older) page when there is one.
    #[oai(status = 200)]
    Ok(
        Json<Vec<MessageView>>,
        #[oai(header = "Link")] Option<String>,
    ),
}

#[OpenApi(tag = "ApiTags::Messaging")]
impl ChatsApi {
    /// Create a one-to-one or group chat
    #[oai(path = "/v1/chats", method = "post", operation_id = "createChat")]
    async fn create(
        &self,
        req: &Request,
        auth: Authenticated,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        body: JsonBody<CreateChatRequest>,
    ) -> Result<CreateChatResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let body = body.0;
        let input = NewChat {
            kind: body.kind.unwrap_or_else(|| "direct".to_owned()),
            name: body.name,
            member_ids: body.member_ids,
        };
        let (chat, created) = self
            .messaging
            .create_chat(&auth.0, device, input, request_context(req))
            .await?;
        Ok(if created {
            CreateChatResponse::Created(Json(chat.into()))
        } else {
            CreateChatResponse::Existing(Json(chat.into()))
        })
    }

    /// List chats you participate in
    ///
    /// Most recently active first, each with its last message time and unread count.
    #[oai(path = "/v1/chats", method = "get", operation_id = "listChats")]
    async fn list(
        &self,
        auth: Authenticated,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
    ) -> Result<ChatsResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let chats = self.messaging.list_chats(&auth.0, device).await?;
        Ok(ChatsResponse::Ok(Json(
            chats.into_iter().map(Into::into).collect(),
        )))
    }

    /// Fetch a single chat and its participants
    #[oai(path = "/v1/chats/:id", method = "get", operation_id = "getChat")]
    async fn get(
        &self,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
    ) -> Result<ChatResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "chat")?;
        let chat = self.messaging.get_chat(&auth.0, device, id).await?;
        Ok(ChatResponse::Ok(Json(chat.into())))
    }

    /// Add a participant to a group chat
    #[oai(
        path = "/v1/chats/:id/members",
        method = "post",
        operation_id = "addChatMember"
    )]
    async fn add_member(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        body: JsonBody<AddMemberRequest>,
    ) -> Result<ChatResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "chat")?;
        let user = body.0.user_id.parse().map_err(|_| {
            ApiError::validation("the request is invalid")
                .with_detail("userId", "must be a user id")
        })?;
        let chat = self
            .messaging
            .add_member(&auth.0, device, id, user, request_context(req))
            .await?;
        Ok(ChatResponse::Ok(Json(chat.into())))
    }

    /// Remove a participant, or leave (your own user id)
    ///
    /// A group's owner removes others; anyone may leave.
    #[oai(
        path = "/v1/chats/:id/members/:userId",
        method = "delete",
        operation_id = "removeChatMember"
    )]
    async fn remove_member(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        #[oai(name = "userId")] user_id: Path<String>,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
    ) -> Result<MemberRemovedResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "chat")?;
        let user = path_id(&user_id.0, "participant")?;
        self.messaging
            .remove_member(&auth.0, device, id, user, request_context(req))
            .await?;
        Ok(MemberRemovedResponse::Removed)
    }

    /// List messages (?limit=&before= cursor)
    ///
    /// Newest first, each with only the calling device's envelope. Reading the newest
    /// page marks the chat read.
    #[oai(
        path = "/v1/chats/:id/messages",
        method = "get",
        operation_id = "listMessages"
    )]
    async fn messages(
        &self,
        req: &Request,
        auth: Authenticated,
        id: Path<String>,
        /// The device this call acts as.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        /// Page size: 1 to 200, default 50.
        limit: Query<Option<i64>>,
        /// The id of the oldest message seen: continue with older ones.
        before: Query<Option<String>>,
    ) -> Result<MessagesResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let id = path_id(&id.0, "chat")?;
        let page = PageRequest::parse(limit.0, before.0, None)?;
        let page = self
            .messaging
            .list_messages(&auth.0, device, id, page)
            .await?;
        let link = next_link(req, page.next.as_ref());
        Ok(MessagesResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }
}
