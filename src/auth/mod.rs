//! Who is calling and what they may do: passwords, access tokens, opaque tokens and the
//! `Principal` that authentication resolves a request to.

pub mod access_token;
pub mod api_key;
pub mod opaque;
pub mod password;
pub mod permission;
pub mod principal;

pub use access_token::{AccessClaims, AccessTokens};
pub use permission::{ADMIN_SCOPE, BuiltinRole, Permission, PermissionSet};
pub use principal::{Credential, KeyGrant, Principal};
