//! `/v1/notifications`: the caller's in-app notifications in the organization the call
//! acts in (the communication reference's Notifications section), newest first, and
//! marking them read.

use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::authn::Authenticated;
use super::error::ApiError;
use super::json_body::JsonBody;
use super::pagination::next_link;
use crate::service::notifications::{MAX_IDS, MarkRead, NotificationService};
use crate::service::page::PageRequest;
use crate::store::notifications::Notification;

pub struct NotificationsApi {
    pub notifications: NotificationService,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct NotificationView {
    pub id: String,
    pub organization_id: String,
    /// What it is about, such as `webhook.disabled`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// The ids of the subject (such as `webhookId`).
    pub data: serde_json::Value,
    pub read: bool,
    pub read_at: Option<String>,
    pub created_at: String,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            data: serde_json::from_str(&n.data).unwrap_or(serde_json::Value::Null),
            id: n.id.to_string(),
            organization_id: n.org_id.to_string(),
            kind: n.kind,
            title: n.title,
            body: n.body,
            read: n.read_at.is_some(),
            read_at: n.read_at,
            created_at: n.created_at,
        }
    }
}

/// Which notifications to mark read: `ids`, or `all: true`.
#[derive(Object, Deserialize)]
pub struct MarkReadRequest {
    #[oai(validator(min_items = 1, max_items = 200))]
    pub ids: Option<Vec<String>>,
    /// Mark every unread notification read.
    pub all: Option<bool>,
}

#[derive(Debug, Object)]
pub struct MarkedRead {
    /// How many notifications were unread and now are read.
    pub updated: u64,
}

#[derive(ApiResponse)]
pub enum NotificationsResponse {
    /// Newest first. `Link` points at the next (older) page when there is one.
    #[oai(status = 200)]
    Ok(
        Json<Vec<NotificationView>>,
        #[oai(header = "Link")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum MarkedReadResponse {
    #[oai(status = 200)]
    Ok(Json<MarkedRead>),
}

#[OpenApi(tag = "ApiTags::Notifications")]
impl NotificationsApi {
    /// List notifications, newest first
    ///
    /// The caller's notifications in the organization the call acts in.
    #[oai(
        path = "/v1/notifications",
        method = "get",
        operation_id = "listNotifications"
    )]
    async fn list(
        &self,
        req: &Request,
        auth: Authenticated,
        /// Only notifications not read yet.
        unread: Query<Option<bool>>,
        /// Page size: 1 to 200, default 50.
        limit: Query<Option<i64>>,
        /// The id of the last notification seen: continue with older ones.
        before: Query<Option<String>>,
        /// A notification id: list newer ones.
        after: Query<Option<String>>,
    ) -> Result<NotificationsResponse, ApiError> {
        let page = PageRequest::parse(limit.0, before.0, after.0)?;
        let page = self
            .notifications
            .list(&auth.0, unread.0.unwrap_or(false), page)
            .await?;
        let link = next_link(req, page.next.as_ref());
        Ok(NotificationsResponse::Ok(
            Json(page.items.into_iter().map(Into::into).collect()),
            link,
        ))
    }

    /// Mark notifications as read by id, or all
    #[oai(
        path = "/v1/notifications/read",
        method = "post",
        operation_id = "markNotificationsRead"
    )]
    async fn mark_read(
        &self,
        auth: Authenticated,
        body: JsonBody<MarkReadRequest>,
    ) -> Result<MarkedReadResponse, ApiError> {
        let which = match (body.0.ids, body.0.all.unwrap_or(false)) {
            (Some(_), true) => {
                return Err(ApiError::validation("the request is invalid")
                    .with_detail("all", "send either ids or all, not both"));
            }
            (Some(ids), false) => MarkRead::Ids(ids),
            (None, true) => MarkRead::All,
            (None, false) => {
                return Err(ApiError::validation("the request is invalid").with_detail(
                    "ids",
                    format!("name up to {MAX_IDS} notifications, or send {{\"all\": true}}"),
                ));
            }
        };
        let updated = self.notifications.mark_read(&auth.0, which).await?;
        Ok(MarkedReadResponse::Ok(Json(MarkedRead {
            updated: updated as u64,
        })))
    }
}
