//! Business rules, one module per feature. Services call `store`, `blob`, `crypto` and
//! `auth`, never HTTP; the `http` layer maps their outcomes to responses.

pub mod system;

use crate::store::StoreError;

pub use system::SystemService;

/// Failures a service reports; `http::error` maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A dependency did not answer in time; the client may retry.
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}
