//! The download token of `sealbox receive`, kept alive for as long as the download runs.
//!
//! `unlock` gives a token that works for `expiresIn` seconds
//! (`limits.download_token_ttl_secs`, 15 minutes by default), and a transfer of many or big
//! files can take longer. A response already streaming is never cut by the expiry (the
//! server checks the token when a response starts), but the next file would be refused,
//! and unlocking again would be a new download that `maxDownloads` counts (and asks for the
//! password again). So the token is renewed (`POST /v1/public/transfers/{id}/renew`,
//! docs/transfers.md "Renewing a download token"): by a background task whenever half its
//! life is gone, while a file streams, and before a file starts if it is that old. A
//! renewal replaces the token at once (the old one stops working), so renewals take turns
//! behind one lock and a file takes the token only as it starts; a file answered `401`
//! anyway (renewed under its request) asks for a renewal once more.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;
use zeroize::Zeroizing;

use crate::client::ClientError;
use crate::client::http::{Api, error_message};

/// The header that carries the link's secret (the `s=` of its fragment).
pub const TRANSFER_SECRET_HEADER: &str = "X-Transfer-Secret";

/// How soon a failed background renewal is tried again (while the token still lives).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A transfer's live download token, renewed in the background until dropped.
pub struct DownloadToken {
    shared: Arc<Shared>,
    keeper: tokio::task::JoinHandle<()>,
}

struct Shared {
    api: Api,
    /// `v1/public/transfers/{id}/renew` of the transfer.
    renew_url: Url,
    secret: Option<Zeroizing<String>>,
    state: Mutex<State>,
}

struct State {
    token: Zeroizing<String>,
    /// How long a token works, as the server last said.
    life: Duration,
    expires_at: Instant,
}

impl State {
    fn new(token: Zeroizing<String>, expires_in_secs: u64) -> Self {
        let life = Duration::from_secs(expires_in_secs.max(1));
        Self {
            token,
            life,
            expires_at: Instant::now() + life,
        }
    }

    /// When half the token's life is gone: time to renew it.
    fn renew_at(&self) -> Instant {
        self.expires_at - self.life / 2
    }
}

impl DownloadToken {
    /// Keeps `token` (from unlock, working for `expires_in_secs`) alive; `renew_url` is the
    /// transfer's renew route, `secret` the link's. Needs a Tokio runtime.
    pub fn start(
        api: Api,
        renew_url: Url,
        secret: Option<Zeroizing<String>>,
        token: Zeroizing<String>,
        expires_in_secs: u64,
    ) -> Self {
        let shared = Arc::new(Shared {
            api,
            renew_url,
            secret,
            state: Mutex::new(State::new(token, expires_in_secs)),
        });
        let keeper = tokio::spawn(keep_fresh(shared.clone()));
        Self { shared, keeper }
    }

    /// The token to start a request with: renewed first if half its life is gone.
    pub async fn current(&self) -> Result<Zeroizing<String>, ClientError> {
        let mut state = self.shared.state.lock().await;
        if Instant::now() >= state.renew_at() {
            self.shared.renew(&mut state).await?;
        }
        Ok(state.token.clone())
    }

    /// A token renewed now (the server refused the one a request carried).
    pub async fn renewed(&self) -> Result<Zeroizing<String>, ClientError> {
        let mut state = self.shared.state.lock().await;
        self.shared.renew(&mut state).await?;
        Ok(state.token.clone())
    }
}

impl Drop for DownloadToken {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Renews the token whenever half its life is gone, until the token can no longer be
/// renewed (it expired: the next file's request says so).
async fn keep_fresh(shared: Arc<Shared>) {
    loop {
        let at = shared.state.lock().await.renew_at();
        tokio::time::sleep_until(at).await;
        let mut state = shared.state.lock().await;
        if Instant::now() < state.renew_at() {
            continue; // A file renewed it meanwhile.
        }
        if shared.renew(&mut state).await.is_err() {
            if Instant::now() + RETRY_AFTER >= state.expires_at {
                return;
            }
            drop(state);
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}

impl Shared {
    /// Exchanges the token in `state` for a new one of the same download session.
    async fn renew(&self, state: &mut State) -> Result<(), ClientError> {
        let mut request = self
            .api
            .request(Method::POST, self.renew_url.clone())
            .json(&json!({"downloadToken": state.token.as_str()}));
        if let Some(secret) = &self.secret {
            request = request.header(TRANSFER_SECRET_HEADER, secret.as_str());
        }
        let response = self.api.send(request).await?;
        if response.status() != StatusCode::OK {
            let why = match response.status() {
                StatusCode::UNAUTHORIZED => {
                    "the download token expired before it could be renewed (was the computer \
                     asleep?): run receive again"
                        .to_owned()
                }
                StatusCode::GONE => {
                    "the transfer is gone: it expired or was revoked during the download".into()
                }
                _ => error_message(response).await,
            };
            return Err(ClientError::Api(format!(
                "renewing the download token failed: {why}"
            )));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| ClientError::Api(format!("the renewal answer is not JSON: {e}")))?;
        let token = answer["downloadToken"]
            .as_str()
            .ok_or_else(|| ClientError::Api("the renewal answer has no downloadToken".into()))?;
        let expires_in = answer["expiresIn"].as_u64().unwrap_or(1);
        *state = State::new(Zeroizing::new(token.to_owned()), expires_in);
        Ok(())
    }
}
