//! Chats: one-to-one (one per pair of users in an organization) and groups with a name;
//! members of the same organization only. Adding and removing participants and leaving
//! are audited and reach every participant's devices as stream events.

use serde_json::json;

use super::limits;
use super::{Actor, MessagingService, acting, chat_devices, notify_devices};
use crate::auth::{Permission, Principal};
use crate::ids::{ChatId, DeviceId, UserId};
use crate::service::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read};
use crate::store::messaging::chats::{self as chat_store, Chat, ChatSummary, Member};
use crate::store::messaging::devices as device_store;
use crate::store::organizations;

/// What `POST /v1/chats` asks for.
#[derive(Debug, Clone)]
pub struct NewChat {
    /// `direct` or `group`.
    pub kind: String,
    pub name: Option<String>,
    pub member_ids: Vec<String>,
}

/// A chat with its participants and each one's current device ids.
#[derive(Debug, Clone)]
pub struct ChatRecord {
    pub chat: Chat,
    pub participants: Vec<(Member, Vec<DeviceId>)>,
}

impl MessagingService {
    /// Creates a chat; for a one-to-one chat that already exists, returns it (`false`).
    pub async fn create_chat(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        input: NewChat,
        ctx: RequestContext,
    ) -> Result<(ChatRecord, bool), ServiceError> {
        let mut problems = Vec::new();
        let mut others = Vec::new();
        for (i, raw) in input.member_ids.iter().enumerate() {
            match raw.parse::<UserId>() {
                Ok(id) if !others.contains(&id) => others.push(id),
                Ok(_) => problems.push(FieldError::new(
                    format!("memberIds[{i}]"),
                    "is listed twice",
                )),
                Err(_) => problems.push(FieldError::new(
                    format!("memberIds[{i}]"),
                    "must be a user id",
                )),
            }
        }
        match input.kind.as_str() {
            "direct" => {
                if input.member_ids.len() != 1 {
                    problems.push(FieldError::new(
                        "memberIds",
                        "a one-to-one chat names exactly one other user",
                    ));
                }
                if input.name.is_some() {
                    problems.push(FieldError::new("name", "only a group chat has a name"));
                }
            }
            "group" => {
                match &input.name {
                    Some(name) => {
                        limits::check_text(name, limits::MAX_CHAT_NAME_CHARS, "name", &mut problems)
                    }
                    None => problems.push(FieldError::new("name", "a group chat needs a name")),
                }
                if input.member_ids.is_empty() || input.member_ids.len() >= limits::MAX_CHAT_MEMBERS
                {
                    problems.push(FieldError::new(
                        "memberIds",
                        format!("1 to {} other users", limits::MAX_CHAT_MEMBERS - 1),
                    ));
                }
            }
            _ => problems.push(FieldError::new("type", "must be direct or group")),
        }
        invalid_if_any(problems)?;
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let actor = acting(tx, &principal, device, Permission::MessagesWrite)?;
            let me = actor.user();
            if others.contains(&me) {
                return Err(ServiceError::Invalid(vec![FieldError::new(
                    "memberIds",
                    "name the other participants; the caller is one already",
                )]));
            }
            for user in &others {
                require_colleague(tx, &actor, *user)?;
            }
            let journal = Journal::new(tx, &ctx, actor.access.actor(), actor.access.org());
            let now = journal.now().to_owned();
            let direct_key = (input.kind == "direct").then(|| {
                let (a, b) = if me < others[0] {
                    (me, others[0])
                } else {
                    (others[0], me)
                };
                format!("{a}:{b}")
            });
            if let Some(key) = &direct_key
                && let Some(existing) = chat_store::find_direct(tx, actor.access.org_id, key)?
            {
                return Ok((record(tx, &actor, existing)?, false));
            }
            let chat = Chat {
                id: ChatId::new(),
                org_id: actor.access.org_id,
                kind: input.kind.clone(),
                name: input.name.map(|n| n.trim().to_owned()),
                direct_key,
                created_by: me,
                created_at: now.clone(),
                last_message_at: None,
            };
            chat_store::insert(tx, &chat)?;
            let owner_role = if chat.kind == "group" {
                "owner"
            } else {
                "member"
            };
            chat_store::add_member(tx, chat.id, me, owner_role, &now)?;
            for user in &others {
                chat_store::add_member(tx, chat.id, *user, "member", &now)?;
            }
            journal.audit(
                "chat.created",
                "chat",
                chat.id,
                json!({"type": chat.kind, "memberIds": others}),
            )?;
            let mut ids = vec![me];
            ids.extend(&others);
            let data = json!({"chatId": chat.id, "type": chat.kind, "memberIds": ids});
            journal.event("chat.created", data.clone())?;
            let devices = device_ids(chat_devices(tx, &actor.access, chat.id)?);
            notify_devices(tx, woken, &devices, "chat.created", &data, &now)?;
            Ok((record(tx, &actor, chat)?, true))
        })
        .await
    }

    /// The chats the caller is in, most recently active first, with unread counts.
    pub async fn list_chats(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
    ) -> Result<Vec<ChatSummary>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let actor = acting(conn, &principal, device, Permission::MessagesRead)?;
            Ok(chat_store::list_for_member(
                conn,
                actor.access.org_id,
                actor.user(),
            )?)
        })
        .await
    }

    /// One chat the caller is in, with its participants and their current devices.
    pub async fn get_chat(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        id: ChatId,
    ) -> Result<ChatRecord, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let actor = acting(conn, &principal, device, Permission::MessagesRead)?;
            let chat = find_chat(conn, &actor, id)?;
            record(conn, &actor, chat)
        })
        .await
    }

    /// Adds a colleague to a group chat the caller is in. Audited.
    pub async fn add_member(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        id: ChatId,
        user: UserId,
        ctx: RequestContext,
    ) -> Result<ChatRecord, ServiceError> {
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let actor = acting(tx, &principal, device, Permission::MessagesWrite)?;
            let chat = find_chat(tx, &actor, id)?;
            if chat.kind != "group" {
                return Err(ServiceError::Conflict(
                    "a one-to-one chat has exactly two participants; create a group".into(),
                ));
            }
            require_colleague(tx, &actor, user)?;
            if chat_store::members(tx, id)?.len() >= limits::MAX_CHAT_MEMBERS {
                return Err(ServiceError::Conflict(format!(
                    "a group has at most {} participants",
                    limits::MAX_CHAT_MEMBERS
                )));
            }
            let journal = Journal::new(tx, &ctx, actor.access.actor(), actor.access.org());
            if !chat_store::add_member(tx, id, user, "member", journal.now())? {
                return Err(ServiceError::Conflict(
                    "already a participant of this chat".into(),
                ));
            }
            journal.audit("chat.member_added", "chat", id, json!({"userId": user}))?;
            let data = json!({"chatId": id, "userId": user, "addedBy": actor.user()});
            journal.event("chat.member_added", data.clone())?;
            let devices = device_ids(chat_devices(tx, &actor.access, id)?);
            notify_devices(
                tx,
                woken,
                &devices,
                "chat.member_added",
                &data,
                journal.now(),
            )?;
            record(tx, &actor, chat)
        })
        .await
    }

    /// Removes a participant (the group's owner removes others; anyone leaves). Audited.
    /// The removed member's devices get the event, then nothing more of the chat.
    pub async fn remove_member(
        &self,
        principal: &Principal,
        device: Option<DeviceId>,
        id: ChatId,
        user: UserId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        self.write_and_wake(move |tx, woken| {
            let actor = acting(tx, &principal, device, Permission::MessagesWrite)?;
            let chat = find_chat(tx, &actor, id)?;
            let leaving = user == actor.user();
            if chat.kind != "group" {
                return Err(ServiceError::Conflict(
                    "a one-to-one chat keeps its two participants".into(),
                ));
            }
            if !leaving {
                let me = chat_store::member(tx, id, actor.user())?;
                if me.is_none_or(|m| m.role != "owner") {
                    return Err(ServiceError::Forbidden(
                        "only the group's owner removes other participants".into(),
                    ));
                }
            }
            let devices = device_ids(chat_devices(tx, &actor.access, id)?);
            if !chat_store::remove_member(tx, id, user)? {
                return Err(ServiceError::NotFound("participant"));
            }
            let reason = if leaving { "left" } else { "removed" };
            let journal = Journal::new(tx, &ctx, actor.access.actor(), actor.access.org());
            journal.audit(
                "chat.member_removed",
                "chat",
                id,
                json!({"userId": user, "reason": reason}),
            )?;
            let data =
                json!({"chatId": id, "userId": user, "removedBy": actor.user(), "reason": reason});
            journal.event("chat.member_removed", data.clone())?;
            notify_devices(
                tx,
                woken,
                &devices,
                "chat.member_removed",
                &data,
                journal.now(),
            )?;
            Ok(())
        })
        .await
    }
}

/// The chat if the caller is one of its participants; otherwise 404, as if missing.
pub(crate) fn find_chat(
    conn: &rusqlite::Connection,
    actor: &Actor,
    id: ChatId,
) -> Result<Chat, ServiceError> {
    chat_store::find_for_member(conn, actor.access.org_id, actor.user(), id)?
        .ok_or(ServiceError::NotFound("chat"))
}

/// A user the caller may talk to: an active member of the same organization. Anyone
/// else (another organization's user, a removed member) is 404.
fn require_colleague(
    conn: &rusqlite::Connection,
    actor: &Actor,
    user: UserId,
) -> Result<(), ServiceError> {
    let active = organizations::member_access(conn, actor.access.org_id, user)?
        .is_some_and(|m| m.membership_status == "active");
    if active {
        Ok(())
    } else {
        Err(ServiceError::NotFound("user"))
    }
}

fn device_ids(devices: Vec<(DeviceId, UserId)>) -> Vec<DeviceId> {
    devices.into_iter().map(|(d, _)| d).collect()
}

fn record(
    conn: &rusqlite::Connection,
    actor: &Actor,
    chat: Chat,
) -> Result<ChatRecord, ServiceError> {
    let members = chat_store::members(conn, chat.id)?;
    let mut participants = Vec::with_capacity(members.len());
    for member in members {
        let devices = device_store::list_for_user(conn, actor.access.org_id, member.user_id)?
            .into_iter()
            .map(|d| d.id)
            .collect();
        participants.push((member, devices));
    }
    Ok(ChatRecord { chat, participants })
}
