//! Messages: ciphertext plus one envelope per recipient device, stored verbatim. A
//! message is refused (409, naming the missing and the extra device ids) unless its
//! envelopes cover exactly the current devices of the chat's participants, the sender's
//! other devices included; an envelope for the sending device itself is optional. Edits
//! follow the same rule; a delete leaves a tombstone; reactions are one short opaque
//! string per user. A message may name files (`attachments`, see `attachments`).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use super::attachments;
use super::chats::find_chat;
use super::limits;
use super::stream::{self, Batch, StreamEvent};
use super::{Actor, MessagingService, acting, chat_devices, notify_devices, unknown_device};
use crate::auth::{Permission, Principal};
use crate::ids::{ChatId, DeviceId, FileId, MessageId, NotificationId, UserId, format_rfc3339};
use crate::service::access;
use crate::service::page::{Cursor, Page, PageRequest};
use crate::service::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read};
use crate::store::messaging::attachments as attachment_store;
use crate::store::messaging::chats as chat_store;
use crate::store::messaging::devices as device_store;
use crate::store::messaging::events;
use crate::store::messaging::messages::{self as message_store, Message};
use crate::store::notifications::{self, Notification};

/// The notification kind of a message for a user with no stream open.
pub const MESSAGE_NOTIFICATION: &str = "message.created";

/// A message's new content: `POST /v1/messages` and `PATCH /v1/messages/{id}`.
#[derive(Debug, Clone)]
pub struct Content {
    pub content_type: String,
    pub ciphertext: String,
    pub envelopes: Vec<(String, String)>,
    /// File ids the message names. On an edit, `None` keeps the message's.
    pub attachments: Option<Vec<String>>,
}

/// One envelope as the caller's device sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeRecord {
    pub device_id: String,
    pub header: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionRecord {
    pub emoji: String,
    pub count: i64,
    /// Whether the caller chose it.
    pub mine: bool,
}

/// A message as one device sees it (also the data of its stream events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    pub id: String,
    pub chat_id: String,
    pub sender_user_id: String,
    pub sender_device_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    /// Only the caller's device's envelope (none for a tombstone).
    pub envelopes: Vec<EnvelopeRecord>,
    /// The file ids the message names (none for a tombstone).
    pub attachments: Vec<String>,
    pub reactions: Vec<ReactionRecord>,
    pub deleted: bool,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Why the envelopes do not match the chat's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub missing: Vec<DeviceId>,
    pub extra: Vec<String>,
}

impl Content {
    /// Shape and size checks (422), before any lookup. An edit may leave the content
    /// type empty: it keeps the message's. Returns the attachments' file ids.
    fn check(&self, problems: &mut Vec<FieldError>, editing: bool) -> Option<Vec<FileId>> {
        let attachments = self
            .attachments
            .as_deref()
            .map(|raw| attachments::parse(raw, problems));
        if !(editing && self.content_type.is_empty()) {
            limits::check_content_type(&self.content_type, problems);
        }
        limits::check_b64(
            &self.ciphertext,
            limits::MAX_CIPHERTEXT_BYTES,
            "ciphertext",
            problems,
        );
        if self.envelopes.is_empty() || self.envelopes.len() > limits::MAX_ENVELOPES {
            problems.push(FieldError::new(
                "envelopes",
                format!(
                    "1 to {} envelopes, one per recipient device",
                    limits::MAX_ENVELOPES
                ),
            ));
            return attachments;
        }
        let mut seen = BTreeSet::new();
        for (i, (device, header)) in self.envelopes.iter().enumerate() {
            if device.parse::<DeviceId>().is_err() {
                problems.push(FieldError::new(
                    format!("envelopes[{i}].deviceId"),
                    "must be a device id",
                ));
            } else if !seen.insert(device.as_str()) {
                problems.push(FieldError::new(
                    format!("envelopes[{i}].deviceId"),
                    "is listed twice",
                ));
            }
            limits::check_b64(
                header,
                limits::MAX_HEADER_BYTES,
                &format!("envelopes[{i}].header"),
                problems,
            );
        }
        attachments
    }

    /// The envelope rule against the chat's current devices: every device but the
    /// sending one needs an envelope, the sending one may have one, nothing else may.
    fn coverage(
        &self,
        devices: &[(DeviceId, UserId)],
        sending: DeviceId,
    ) -> Result<Vec<(DeviceId, String)>, ServiceError> {
        let current: BTreeSet<DeviceId> = devices.iter().map(|(d, _)| *d).collect();
        let mut matched = Vec::new();
        let mut extra = Vec::new();
        for (raw, header) in &self.envelopes {
            match raw.parse::<DeviceId>() {
                Ok(id) if current.contains(&id) => matched.push((id, header.clone())),
                _ => extra.push(raw.clone()),
            }
        }
        let covered: BTreeSet<DeviceId> = matched.iter().map(|(d, _)| *d).collect();
        let missing: Vec<DeviceId> = current
            .iter()
            .filter(|d| **d != sending && !covered.contains(d))
            .copied()
            .collect();
        if missing.is_empty() && extra.is_empty() {
            Ok(matched)
        } else {
            Err(ServiceError::EnvelopeMismatch(Coverage { missing, extra }))
        }
    }
}

/// `expiresAt`: RFC 3339, in the future, at most [`limits::MAX_EXPIRY_DAYS`] ahead.
fn parse_expiry(raw: Option<&str>, problems: &mut Vec<FieldError>) -> Option<String> {
    let raw = raw?;
    let now = time::OffsetDateTime::now_utc();
    match time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        Ok(at) if at <= now => {
            problems.push(FieldError::new("expiresAt", "must be in the future"));
            None
        }
        Ok(at) if at > now + time::Duration::days(limits::MAX_EXPIRY_DAYS) => {
            problems.push(FieldError::new(
                "expiresAt",
                format!("at most {} days ahead", limits::MAX_EXPIRY_DAYS),
            ));
            None
        }
        Ok(at) => Some(format_rfc3339(at)),
        Err(_) => {
            problems.push(FieldError::new("expiresAt", "must be an RFC 3339 time"));
            None
        }
    }
}

impl MessagingService {
    /// Sends a message into a chat the caller is in.
    pub async fn send(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        chat_id: &str,
        content: Content,
        expires_at: Option<String>,
        ctx: RequestContext,
    ) -> Result<MessageRecord, ServiceError> {
        let mut problems = Vec::new();
        let chat_id = match chat_id.parse::<ChatId>() {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(FieldError::new("chatId", "must be a chat id"));
                None
            }
        };
        let files = content.check(&mut problems, false).unwrap_or_default();
        let expires_at = parse_expiry(expires_at.as_deref(), &mut problems);
        invalid_if_any(problems)?;
        let chat_id = chat_id.expect("checked above");
        let principal = principal.clone();
        let hub = self.hub.clone();
        self.write_and_wake(move |tx, woken| {
            let actor = acting(tx, &principal, device, Permission::MessagesWrite)?;
            let chat = find_chat(tx, &actor, chat_id)?;
            let devices = chat_devices(tx, &actor.access, chat.id)?;
            let envelopes = content.coverage(&devices, actor.device)?;
            attachments::check_attachable(tx, &actor.access, &files)?;
            let journal = Journal::new(tx, &ctx, actor.access.actor(), actor.access.org());
            let now = journal.now().to_owned();
            let message = Message {
                id: MessageId::new(),
                chat_id: chat.id,
                sender_user_id: actor.user(),
                sender_device_id: actor.device,
                content_type: Some(content.content_type),
                ciphertext: Some(content.ciphertext),
                created_at: now.clone(),
                edited_at: None,
                deleted_at: None,
                expires_at,
            };
            message_store::insert(tx, &message)?;
            message_store::insert_envelopes(tx, message.id, &envelopes)?;
            attachment_store::insert(tx, message.id, &files)?;
            chat_store::set_last_message(tx, chat.id, &now)?;
            device_store::touch(tx, actor.device, &now)?;
            let ids = json!({"messageId": message.id, "chatId": chat.id});
            journal.event(
                "message.created",
                json!({"messageId": message.id, "chatId": chat.id,
                       "senderUserId": actor.user(), "senderDeviceId": actor.device}),
            )?;
            let targets: Vec<DeviceId> = devices.iter().map(|(d, _)| *d).collect();
            notify_devices(tx, woken, &targets, "message.created", &ids, &now)?;
            // Notifications for the participants with no stream open: one unread one
            // per chat at most, with ids only.
            let mut recipients: Vec<UserId> = devices.iter().map(|(_, u)| *u).collect();
            recipients.extend(
                chat_store::members(tx, chat.id)?
                    .into_iter()
                    .map(|m| m.user_id),
            );
            recipients.sort();
            recipients.dedup();
            for user in recipients {
                if user == actor.user()
                    || hub.user_streaming(actor.access.org_id, user)
                    || chat_store::has_unread_notification(
                        tx,
                        actor.access.org_id,
                        user,
                        MESSAGE_NOTIFICATION,
                        chat.id,
                    )?
                {
                    continue;
                }
                notifications::insert(
                    tx,
                    &Notification {
                        id: NotificationId::new(),
                        org_id: actor.access.org_id,
                        user_id: user,
                        kind: MESSAGE_NOTIFICATION.to_owned(),
                        title: "New message".to_owned(),
                        body: "You have a new message in a chat.".to_owned(),
                        data: ids.to_string(),
                        read_at: None,
                        created_at: now.clone(),
                    },
                )?;
            }
            view(tx, &actor, message)
        })
        .await
    }

    /// A page of a chat's messages, newest first, each with only the caller's device's
    /// envelope. Reading the newest page marks the chat read for the caller.
    pub async fn list_messages(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        chat: ChatId,
        page: PageRequest,
    ) -> Result<Page<MessageRecord>, ServiceError> {
        if matches!(page.cursor, Cursor::After(_)) {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "after",
                "messages page backwards only: use before",
            )]));
        }
        let principal = principal.clone();
        crate::service::write(&self.store, move |tx| {
            let actor = acting(tx, &principal, device, Permission::MessagesRead)?;
            let chat = find_chat(tx, &actor, chat)?;
            let before = match &page.cursor {
                Cursor::Before(raw) => match raw.parse::<MessageId>() {
                    Ok(id) if message_store::in_chat(tx, chat.id, id)? => Some(id),
                    _ => return Err(page.unknown_cursor()),
                },
                _ => None,
            };
            let me = chat_store::member(tx, chat.id, actor.user())?
                .ok_or(ServiceError::NotFound("chat"))?;
            let device_row =
                device_store::find_for_user(tx, actor.access.org_id, actor.user(), actor.device)?
                    .ok_or_else(unknown_device)?;
            let visible_from = std::cmp::max(me.joined_at, device_row.created_at);
            let now = crate::ids::now_rfc3339();
            let rows = message_store::list_for_device(
                tx,
                chat.id,
                actor.device,
                &visible_from,
                before,
                page.limit + 1,
                &now,
            )?;
            if before.is_none() {
                chat_store::mark_read(tx, chat.id, actor.user(), &now)?;
            }
            let items = rows
                .into_iter()
                .map(|(m, header)| record(tx, &actor, m, header))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(page.finish(items, |m| m.id.clone()))
        })
        .await
    }

    /// Replaces a message's ciphertext and envelopes (its sender only; the same envelope
    /// rule as sending).
    pub async fn edit(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        id: MessageId,
        content: Content,
        ctx: RequestContext,
    ) -> Result<MessageRecord, ServiceError> {
        let mut problems = Vec::new();
        let files = content.check(&mut problems, true);
        invalid_if_any(problems)?;
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let actor = acting(tx, &principal, device, Permission::MessagesWrite)?;
            let message = own_message(tx, &actor, id)?;
            let devices = chat_devices(tx, &actor.access, message.chat_id)?;
            let envelopes = content.coverage(&devices, actor.device)?;
            if let Some(files) = &files {
                attachments::check_attachable(tx, &actor.access, files)?;
            }
            let journal = Journal::new(tx, &ctx, actor.access.actor(), actor.access.org());
            let now = journal.now().to_owned();
            let content_type = if content.content_type.is_empty() {
                message.content_type.clone().unwrap_or_default()
            } else {
                content.content_type.clone()
            };
            message_store::replace_content(tx, id, &content_type, &content.ciphertext, &now)?;
            message_store::delete_envelopes(tx, id)?;
            message_store::insert_envelopes(tx, id, &envelopes)?;
            if let Some(files) = &files {
                attachment_store::delete_for_message(tx, id)?;
                attachment_store::insert(tx, id, files)?;
            }
            journal.event(
                "message.updated",
                json!({"messageId": id, "chatId": message.chat_id, "senderUserId": actor.user()}),
            )?;
            let targets: Vec<DeviceId> = devices.iter().map(|(d, _)| *d).collect();
            let ids = json!({"messageId": id, "chatId": message.chat_id});
            notify_devices(tx, woken, &targets, "message.updated", &ids, &now)?;
            let message = message_store::find_in_org(tx, actor.access.org_id, id)?
                .ok_or(ServiceError::NotFound("message"))?;
            view(tx, &actor, message)
        })
        .await
    }

    /// Deletes a message for every participant (its sender only): ciphertext and
    /// envelopes go, a tombstone stays.
    pub async fn delete(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        id: MessageId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let actor = acting(tx, &principal, device, Permission::MessagesWrite)?;
            let message = own_message(tx, &actor, id)?;
            let journal = Journal::new(tx, &ctx, actor.access.actor(), actor.access.org());
            let now = journal.now().to_owned();
            message_store::tombstone(tx, id, &now)?;
            let data = json!({"messageId": id, "chatId": message.chat_id, "reason": "deleted"});
            journal.event("message.deleted", data.clone())?;
            let targets: Vec<DeviceId> = chat_devices(tx, &actor.access, message.chat_id)?
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            notify_devices(tx, woken, &targets, "message.deleted", &data, &now)?;
            Ok(())
        })
        .await
    }

    /// Sets the caller's reaction; the same one again removes it (a toggle). Returns the
    /// message's reactions with counts.
    pub async fn react(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        id: MessageId,
        emoji: String,
    ) -> Result<Vec<ReactionRecord>, ServiceError> {
        if emoji.is_empty()
            || emoji.len() > limits::MAX_REACTION_BYTES
            || emoji.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "emoji",
                format!(
                    "1 to {} bytes, no spaces or control characters",
                    limits::MAX_REACTION_BYTES
                ),
            )]));
        }
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let actor = acting(tx, &principal, device, Permission::MessagesWrite)?;
            let message = visible_message(tx, &actor, id)?;
            if message.deleted_at.is_some() {
                return Err(ServiceError::Conflict("the message was deleted".into()));
            }
            let now = crate::ids::now_rfc3339();
            let current = message_store::reaction_of(tx, id, actor.user())?;
            let action = if current.as_deref() == Some(emoji.as_str()) {
                message_store::remove_reaction(tx, id, actor.user())?;
                "removed"
            } else {
                message_store::set_reaction(tx, id, actor.user(), &emoji, &now)?;
                "added"
            };
            let targets: Vec<DeviceId> = chat_devices(tx, &actor.access, message.chat_id)?
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            let data = json!({"messageId": id, "chatId": message.chat_id,
                              "userId": actor.user(), "emoji": emoji, "action": action});
            notify_devices(tx, woken, &targets, "message.reaction", &data, &now)?;
            reactions(tx, &actor, id)
        })
        .await
    }

    /// Opens the event stream of the caller's device, after `last_event_id` (the SSE
    /// `Last-Event-ID`) or, without one, after its newest event.
    pub async fn open_stream(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        last_event_id: Option<i64>,
    ) -> Result<impl futures_util::Stream<Item = StreamEvent> + Send + 'static, ServiceError> {
        let principal = principal.clone();
        let (actor, newest) = read(&self.store, {
            let principal = principal.clone();
            move |conn| {
                let actor = acting(conn, &principal, device, Permission::MessagesRead)?;
                let newest = events::last_seq(conn, actor.device)?.unwrap_or(0);
                Ok((actor, newest))
            }
        })
        .await?;
        let start = match last_event_id {
            Some(id) if id < 0 || id > newest => {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    "Last-Event-ID",
                    format!("must be an event id this device was sent (0 to {newest})"),
                )]));
            }
            Some(id) => id,
            None => newest,
        };
        let slot = self
            .hub
            .open(actor.access.org_id, actor.user(), actor.device)
            .map_err(|refused| match refused {
                stream::OpenRefused::ShuttingDown => {
                    ServiceError::Unavailable("the server is shutting down")
                }
                _ => ServiceError::BudgetSpent {
                    what: "the open event streams of this device or user",
                    retry_after: std::time::Duration::from_secs(5),
                },
            })?;
        let store = self.store.clone();
        let device = actor.device;
        Ok(stream::device_stream(slot, start, move |seq| {
            let store = store.clone();
            let principal = principal.clone();
            async move {
                let batch = read(&store, move |conn| {
                    // Re-checked on every read: a revoked session or key, a disabled
                    // account, a removed device, a lost membership or permission, a
                    // suspended organization end the stream.
                    if !access::credential_still_valid(conn, &principal)? {
                        return Ok(Batch::End);
                    }
                    let actor =
                        match acting(conn, &principal, Some(device), Permission::MessagesRead) {
                            Ok(actor) => actor,
                            Err(_) => return Ok(Batch::End),
                        };
                    let stored = events::after(conn, device, seq, stream::BATCH)?;
                    let mut out = Vec::with_capacity(stored.len());
                    for event in stored {
                        out.push(render(conn, &actor, event)?);
                    }
                    Ok(Batch::Events(out))
                })
                .await;
                batch.unwrap_or(Batch::End)
            }
        }))
    }
}

/// A stored event as the stream sends it: message events carry the message's current
/// state with this device's envelope (or, once it is deleted or expired, only its ids).
fn render(
    conn: &rusqlite::Connection,
    actor: &Actor,
    event: events::DeviceEvent,
) -> Result<StreamEvent, ServiceError> {
    let mut data: serde_json::Value =
        serde_json::from_str(&event.data).unwrap_or_else(|_| json!({}));
    if matches!(
        event.event_type.as_str(),
        "message.created" | "message.updated" | "message.reaction"
    ) {
        let id = data["messageId"]
            .as_str()
            .and_then(|s| s.parse::<MessageId>().ok());
        let now = crate::ids::now_rfc3339();
        if let Some(id) = id
            && let Some(message) = message_store::find_in_org(conn, actor.access.org_id, id)?
            && message
                .expires_at
                .as_deref()
                .is_none_or(|at| at > now.as_str())
        {
            let header = message_store::envelope_for(conn, id, actor.device)?;
            let view = record(conn, actor, message, header)?;
            data["message"] = serde_json::to_value(view).unwrap_or_default();
        } else {
            data["gone"] = json!(true);
        }
    }
    Ok(StreamEvent {
        seq: event.seq,
        event_type: event.event_type,
        data,
    })
}

/// A message of a chat the caller is in; otherwise 404.
fn visible_message(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: MessageId,
) -> Result<Message, ServiceError> {
    let message = message_store::find_in_org(conn, actor.access.org_id, id)?
        .ok_or(ServiceError::NotFound("message"))?;
    find_chat(conn, actor, message.chat_id).map_err(|_| ServiceError::NotFound("message"))?;
    Ok(message)
}

/// A message the caller may change: visible (else 404), sent by the caller (else 403),
/// not deleted (else 409).
fn own_message(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: MessageId,
) -> Result<Message, ServiceError> {
    let message = visible_message(conn, actor, id)?;
    if message.sender_user_id != actor.user() {
        return Err(ServiceError::Forbidden(
            "only the sender edits or deletes a message".into(),
        ));
    }
    if message.deleted_at.is_some() {
        return Err(ServiceError::Conflict("the message was deleted".into()));
    }
    Ok(message)
}

fn reactions(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: MessageId,
) -> Result<Vec<ReactionRecord>, ServiceError> {
    Ok(message_store::reactions(conn, id, actor.user())?
        .into_iter()
        .map(|(emoji, count, mine)| ReactionRecord { emoji, count, mine })
        .collect())
}

fn view(
    conn: &rusqlite::Connection,
    actor: &Actor,
    message: Message,
) -> Result<MessageRecord, ServiceError> {
    let header = message_store::envelope_for(conn, message.id, actor.device)?;
    record(conn, actor, message, header)
}

fn record(
    conn: &rusqlite::Connection,
    actor: &Actor,
    m: Message,
    header: Option<String>,
) -> Result<MessageRecord, ServiceError> {
    Ok(MessageRecord {
        reactions: reactions(conn, actor, m.id)?,
        attachments: attachment_store::of_message(conn, m.id)?
            .into_iter()
            .map(|f| f.to_string())
            .collect(),
        envelopes: header
            .map(|header| EnvelopeRecord {
                device_id: actor.device.to_string(),
                header,
            })
            .into_iter()
            .collect(),
        id: m.id.to_string(),
        chat_id: m.chat_id.to_string(),
        sender_user_id: m.sender_user_id.to_string(),
        sender_device_id: m.sender_device_id.to_string(),
        content_type: m.content_type,
        ciphertext: m.ciphertext,
        deleted: m.deleted_at.is_some(),
        created_at: m.created_at,
        edited_at: m.edited_at,
        deleted_at: m.deleted_at,
        expires_at: m.expires_at,
    })
}
