//! Renewing a transfer's download token, so that a long "Download all" (many big files,
//! one after another) outlives the token's lifetime without asking for the password again
//! and without counting a second download (`docs/transfers.md`, "Renewing a download
//! token").
//!
//! A renewal keeps the token's id, which is its download session (what `maxDownloads`
//! counts), and replaces its secret: the row gets the new secret's verifier, the key the
//! password opened re-sealed under the new secret, and a fresh expiry. The presented token
//! stops working at once (a response it is already streaming goes on), so a token is
//! renewed once; of two renewals racing on one token, exactly one wins (the update is
//! conditional on the old verifier). A renewal needs the link's secret as well as a live
//! token, so a token seen alone (a `?token=` URL in a log) cannot be kept alive, and a
//! session can be renewed for at most [`MAX_SESSION`] after its unlock.
//!
//! This file is a child module of `transfers.rs`, so it uses the same admission checks.

use std::time::Duration;

use zeroize::Zeroizing;

use super::{Admitted, ServiceError, TransferService, secret_matches, write};
use crate::crypto::download_token::DownloadToken;
use crate::ids::format_rfc3339;
use crate::store::download_tokens::{self, Renewal};

/// The longest a download session lasts through renewals, from its unlock. Past it the
/// recipient unlocks again (with the password, if one is set).
pub const MAX_SESSION: Duration = Duration::from_secs(24 * 60 * 60);

const STALE: &str =
    "the download token is invalid or expired: unlock the transfer again for a new one";

impl TransferService {
    /// With download tokens that work for `ttl` (`limits.download_token_ttl_secs`).
    pub fn with_download_token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Renews a live download token of transfer `id` for a holder of its link's secret:
    /// the same download session under a new token, valid for the full lifetime again.
    /// 404 without the link's secret (as for an unknown transfer), 410 once the transfer
    /// ended or expired, 401 when the token is invalid, expired, already renewed, or its
    /// session is older than [`MAX_SESSION`].
    pub async fn renew_download_token(
        &self,
        id: &str,
        secret: Option<&str>,
        token: &str,
    ) -> Result<(Zeroizing<String>, Duration), ServiceError> {
        let Admitted {
            transfer, access, ..
        } = self.admit(id, secret, Some(token)).await?;
        // `admit` lets a valid token stand for the secret; a renewal needs both.
        if !secret_matches(&transfer, secret) {
            return Err(ServiceError::NotFound("transfer"));
        }
        let (Some(access), Some(presented)) = (access, DownloadToken::decode(token)) else {
            return Err(ServiceError::Unauthorized(STALE));
        };
        let renewed = DownloadToken::from_parts(access.session, crate::crypto::random_bytes());
        let sealed_key = access
            .key
            .as_ref()
            .map(|key| renewed.seal_key(key).as_bytes().to_vec());
        let now = time::OffsetDateTime::now_utc();
        let ttl = self.token_ttl;
        let (old_verifier, verifier) = (presented.verifier(), renewed.verifier());
        let transfer_id = transfer.id;
        let done = write(&self.store, move |tx| {
            let renewal = Renewal {
                id: &access.session,
                transfer: transfer_id,
                old_verifier: &old_verifier,
                verifier: &verifier,
                sealed_key: sealed_key.as_deref(),
                expires_at: &format_rfc3339(now + ttl),
                issued_after: &format_rfc3339(now - MAX_SESSION),
            };
            Ok(download_tokens::renew(tx, &renewal, &format_rfc3339(now))?)
        })
        .await?;
        if !done {
            return Err(ServiceError::Unauthorized(STALE));
        }
        Ok((renewed.encode(), ttl))
    }
}
