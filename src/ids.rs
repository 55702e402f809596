//! Typed identifiers: UUIDv7 on the wire and in the database, distinct types in Rust so a
//! `SessionId` can never be passed where a `UserId` is expected.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.0.to_string()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                Uuid::parse_str(text).map(Self).map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// An organization (tenant).
    OrgId
);
id_type!(
    /// A session: one refresh-token family.
    SessionId
);
id_type!(
    /// A custom role of one organization.
    RoleId
);
id_type!(
    /// A team or a department of one organization.
    GroupId
);
id_type!(
    /// An invitation into an organization.
    InviteId
);
id_type!(
    /// An API key.
    ApiKeyId
);
id_type!(
    /// A KV secret (bound into its envelopes and sealed value).
    KvEntryId
);
id_type!(
    /// A stored file (and the upload that creates it).
    FileId
);
id_type!(
    /// A read-only share of a KV secret or a file with one recipient.
    ShareId
);
id_type!(
    /// A link between a local user and an account at an identity provider.
    IdentityId
);
id_type!(
    /// A webhook: an endpoint an organization subscribed to events.
    WebhookId
);
id_type!(
    /// One delivery of one message to one webhook (a replay is a new delivery).
    DeliveryId
);
id_type!(
    /// A file conversion job.
    ConversionId
);
id_type!(
    /// A transfer: a bundle of files sent to people, possibly without an account.
    TransferId
);
id_type!(
    /// An in-app notification of one user.
    NotificationId
);
id_type!(
    /// A messaging device of one user in one organization (its public key bundle).
    DeviceId
);
id_type!(
    /// A chat: one-to-one or a group.
    ChatId
);
id_type!(
    /// A message of a chat.
    MessageId
);

/// The current time as stored and sent: RFC 3339 UTC with millisecond precision, so
/// stored timestamps sort as text.
pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

pub fn format_rfc3339(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("formatting a UTC time cannot fail")
}
