//! In-app notifications (the communication reference's Notifications section): a member's
//! messages in the organization the call acts in, newest first, and marking them read.
//! Other features write them inside their own transactions through
//! [`notify_org_admins`], so a notification exists exactly when its cause committed.

use rusqlite::Connection;

use super::page::{Cursor, Page, PageRequest};
use super::{FieldError, ServiceError, access, invalid_if_any, read, write};
use crate::auth::Principal;
use crate::ids::{NotificationId, OrgId, now_rfc3339};
use crate::store::notifications::{self, Notification};
use crate::store::{Store, StoreError, organizations};

/// Most ids one `POST /v1/notifications/read` may name.
pub const MAX_IDS: usize = 200;

/// Which notifications to mark read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkRead {
    /// These ids, as sent.
    Ids(Vec<String>),
    /// Every unread one.
    All,
}

#[derive(Clone)]
pub struct NotificationService {
    store: Store,
}

impl std::fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationService")
            .finish_non_exhaustive()
    }
}

impl NotificationService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// A page of the caller's notifications in the organization they act in, newest
    /// first; with `unread_only`, only those not yet read.
    pub async fn list(
        &self,
        principal: &Principal,
        unread_only: bool,
        page: PageRequest,
    ) -> Result<Page<Notification>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            let (org, user) = (access.org_id, access.user_id);
            let cursor = match &page.cursor {
                Cursor::Start => notifications::Cursor::Start,
                Cursor::Before(raw) | Cursor::After(raw) => {
                    let id = match raw.parse::<NotificationId>() {
                        Ok(id) if notifications::exists(conn, org, user, id)? => id,
                        _ => return Err(page.unknown_cursor()),
                    };
                    match page.cursor {
                        Cursor::After(_) => notifications::Cursor::After(id),
                        _ => notifications::Cursor::Before(id),
                    }
                }
            };
            let items = notifications::list(conn, org, user, unread_only, cursor, page.limit + 1)?;
            Ok(page.finish(items, |n| n.id.to_string()))
        })
        .await
    }

    /// Marks the caller's notifications read: the ones named, or all. Ids that name no
    /// unread notification of the caller change nothing. Returns how many changed.
    pub async fn mark_read(
        &self,
        principal: &Principal,
        which: MarkRead,
    ) -> Result<usize, ServiceError> {
        let ids = match which {
            MarkRead::All => None,
            MarkRead::Ids(raw) => Some(parse_ids(&raw)?),
        };
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            let now = now_rfc3339();
            Ok(match ids {
                None => notifications::mark_all_read(tx, access.org_id, access.user_id, &now)?,
                Some(ids) => {
                    notifications::mark_read(tx, access.org_id, access.user_id, &ids, &now)?
                }
            })
        })
        .await
    }
}

fn parse_ids(raw: &[String]) -> Result<Vec<NotificationId>, ServiceError> {
    let mut problems = Vec::new();
    if raw.is_empty() {
        problems.push(FieldError::new(
            "ids",
            "name at least one notification, or send {\"all\": true}",
        ));
    }
    if raw.len() > MAX_IDS {
        problems.push(FieldError::new("ids", format!("at most {MAX_IDS} ids")));
    }
    let mut ids = Vec::with_capacity(raw.len());
    for (index, id) in raw.iter().enumerate() {
        match id.trim().parse::<NotificationId>() {
            Ok(id) => ids.push(id),
            Err(_) => problems.push(FieldError::new(
                format!("ids[{index}]"),
                "must be a notification id (a UUID)",
            )),
        }
    }
    invalid_if_any(problems)?;
    Ok(ids)
}

/// Notifies every active owner and admin of `org`, inside the caller's transaction (the
/// delivery worker calls it when it disables a webhook). `data` should carry the ids a
/// client needs to link to the subject. Returns how many were notified.
pub fn notify_org_admins(
    conn: &Connection,
    org: OrgId,
    kind: &str,
    title: &str,
    body: &str,
    data: &serde_json::Value,
) -> Result<usize, StoreError> {
    let now = now_rfc3339();
    let admins = organizations::admin_ids(conn, org)?;
    for user_id in &admins {
        notifications::insert(
            conn,
            &Notification {
                id: NotificationId::new(),
                org_id: org,
                user_id: *user_id,
                kind: kind.to_owned(),
                title: title.to_owned(),
                body: body.to_owned(),
                data: data.to_string(),
                read_at: None,
                created_at: now.clone(),
            },
        )?;
    }
    Ok(admins.len())
}
