//! Messaging storage (issue 19): devices and their key bundles, chats and their members,
//! messages with per-device envelopes and reactions, and the per-device event log of the
//! real-time stream. Every query takes the organization, the chat or the device it is
//! scoped to; nothing here decrypts anything.

pub mod chats;
pub mod devices;
pub mod events;
pub mod messages;
