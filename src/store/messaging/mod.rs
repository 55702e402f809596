//! Messaging storage (issue 19): devices and their key bundles, chats and their members,
//! messages with per-device envelopes, reactions and attachments (the files they name),
//! and the per-device event log of the real-time stream. Every query takes the
//! organization, the chat or the device it is scoped to; nothing here decrypts anything.

pub mod attachments;
pub mod chats;
pub mod devices;
pub mod events;
pub mod messages;
