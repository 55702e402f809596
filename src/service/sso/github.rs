//! GitHub (`[auth.github]`): OAuth 2, not OpenID Connect. The authorization request
//! carries a state and a PKCE S256 challenge; the code is exchanged at
//! `<web_url>/login/oauth/access_token`, and the account is `GET <api_url>/user` (its
//! numeric `id` is the subject) with the e-mail address from `GET <api_url>/user/emails`:
//! the primary address, and only when GitHub has verified it.

use openidconnect::{CsrfToken, PkceCodeChallenge};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{ExternalAccount, Refusal, SsoService};
use crate::config::SsoProvider;

/// What sealbox reads: the profile and the e-mail addresses.
const SCOPES: &str = "read:user user:email";

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

impl SsoService {
    pub(super) fn authorize_github(
        &self,
        provider: &SsoProvider,
        web_url: &str,
    ) -> (String, Zeroizing<String>, Zeroizing<String>) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random();
        let mut url = url::Url::parse(&format!(
            "{}/login/oauth/authorize",
            web_url.trim_end_matches('/')
        ))
        .expect("checked at start-up");
        url.query_pairs_mut()
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &self.redirect_uri(&provider.id))
            .append_pair("scope", SCOPES)
            .append_pair("state", state.secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "false");
        (
            url.to_string(),
            Zeroizing::new(state.into_secret()),
            Zeroizing::new(verifier.into_secret()),
        )
    }

    pub(super) async fn exchange_github(
        &self,
        provider: &SsoProvider,
        (web_url, api_url): (&str, &str),
        code: String,
        verifier: &str,
    ) -> Result<ExternalAccount, Refusal> {
        let unavailable = |why: String| {
            tracing::warn!(provider = %provider.id, "GitHub sign-in failed: {why}");
            Refusal::unavailable(provider)
        };
        let token_url = format!("{}/login/oauth/access_token", web_url.trim_end_matches('/'));
        let redirect = self.redirect_uri(&provider.id);
        let form = [
            ("client_id", provider.client_id.as_str()),
            ("client_secret", provider.client_secret.expose()),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier),
        ];
        let response = self
            .inner
            .http
            .post(&token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        let answer: TokenAnswer = read_json(response)
            .await
            .map_err(|e| unavailable(format!("token answer ({status}): {e}")))?;
        // GitHub answers a bad code with 200 and an `error`.
        let Some(access_token) = answer.access_token.filter(|_| status.is_success()) else {
            tracing::info!(provider = %provider.id, error = ?answer.error, "code exchange refused");
            return Err(Refusal::new(
                "SSO_CODE_REFUSED",
                format!(
                    "{} refused the sign-in code: it was already used, expired, or was not issued \
                     for this sign-in. Start again.",
                    provider.display_name
                ),
            ));
        };
        let access_token = Zeroizing::new(access_token);
        let api = api_url.trim_end_matches('/');
        let user: GithubUser = self
            .github_get(&format!("{api}/user"), &access_token)
            .await
            .map_err(unavailable)?;
        let emails: Vec<GithubEmail> = self
            .github_get(&format!("{api}/user/emails"), &access_token)
            .await
            .map_err(unavailable)?;
        let primary = emails.into_iter().find(|e| e.primary);
        Ok(ExternalAccount {
            subject: user.id.to_string(),
            email_verified: primary.as_ref().is_some_and(|e| e.verified),
            email: primary.map(|e| e.email),
            name: user
                .name
                .filter(|n| !n.trim().is_empty())
                .or(Some(user.login)),
            groups: Vec::new(),
        })
    }

    async fn github_get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        token: &str,
    ) -> Result<T, String> {
        let response = self
            .inner
            .http
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        read_json(response).await
    }
}

/// A JSON body of at most 1 MiB.
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, String> {
    const MAX: usize = 1024 * 1024;
    if response.content_length().is_some_and(|n| n > MAX as u64) {
        return Err("the answer is too large".into());
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX {
            return Err("the answer is too large".into());
        }
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}
