//! `GET /v1/stream`: the calling device's events as Server-Sent Events. Each event's
//! `id` is the device's event sequence number; reconnecting with `Last-Event-ID` (or
//! `?lastEventId=`) resumes right after it, losing and repeating nothing.

use std::time::Duration;

use futures_util::StreamExt as _;
use poem::web::sse::Event;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::device_header;
use crate::http::error::ApiError;
use crate::http::{ApiTags, authn::Authenticated};
use crate::service::messaging::{MessagingService, StreamEvent};

/// A comment line this often keeps idle connections (and proxies) open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub struct StreamApi {
    pub messaging: MessagingService,
}

/// One event of a device's stream. On the wire: `id: <seq>`, `event: <type>`,
/// `data: <the data object as JSON>`.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct StreamEventView {
    /// The device's event sequence number (the SSE `id`).
    pub id: i64,
    /// `message.created`, `message.updated`, `message.deleted` (reason `deleted` or
    /// `expired`), `message.reaction`, `chat.created`, `chat.member_added`,
    /// `chat.member_removed`, `device.registered`, `device.removed`.
    #[oai(rename = "type")]
    pub event_type: String,
    /// Ids of the subject; message events also carry `message`, its current state with
    /// this device's envelope (or `gone: true` once it is deleted or expired).
    pub data: serde_json::Value,
}

type BoxedEvents = futures_util::stream::BoxStream<'static, StreamEventView>;

#[derive(ApiResponse)]
pub enum StreamResponse {
    /// `text/event-stream`, open until the client leaves, the device is removed or the
    /// caller loses the right to read.
    #[oai(status = 200)]
    Ok(EventStream<BoxedEvents>),
}

#[OpenApi(tag = "ApiTags::Messaging")]
impl StreamApi {
    /// The calling device's real-time events (Server-Sent Events)
    #[oai(path = "/v1/stream", method = "get", operation_id = "streamEvents")]
    async fn stream(
        &self,
        auth: Authenticated,
        /// The device whose events to stream.
        #[oai(name = "X-Device-Id")]
        device: Header<Option<String>>,
        /// The id of the last event received: resume after it (0: from the first event
        /// kept). Without it, the stream starts with the next new event.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// The same as `Last-Event-ID`, for clients that cannot set headers.
        #[oai(name = "lastEventId")]
        last_event_id_query: Query<Option<String>>,
    ) -> Result<StreamResponse, ApiError> {
        let device = device_header(device.0.as_deref())?;
        let last = match last_event_id.0.or(last_event_id_query.0) {
            None => None,
            Some(raw) => Some(raw.trim().parse::<i64>().map_err(|_| {
                ApiError::validation("the request is invalid")
                    .with_detail("Last-Event-ID", "must be an event id (a whole number)")
            })?),
        };
        let events = self.messaging.open_stream(&auth.0, device, last).await?;
        let events: BoxedEvents = events
            .map(|e: StreamEvent| StreamEventView {
                id: e.seq,
                event_type: e.event_type,
                data: e.data,
            })
            .boxed();
        Ok(StreamResponse::Ok(
            EventStream::new(events)
                .keep_alive(KEEP_ALIVE)
                .to_event(|e| {
                    Event::message(e.data.to_string())
                        .event_type(e.event_type)
                        .id(e.id.to_string())
                }),
        ))
    }
}
