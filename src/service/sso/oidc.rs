//! OpenID Connect providers (`[[auth.oidc]]` and Google) with the `openidconnect` crate:
//! discovery, the authorization request (code flow, PKCE S256, state, nonce) and the code
//! exchange with every ID token check (signature, issuer, audience, expiry, nonce).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use zeroize::Zeroizing;

use super::{ExternalAccount, Refusal, SsoService};
use crate::config::SsoProvider;
use crate::service::ServiceError;

/// How long a discovery document and its keys are trusted before they are read again
/// (providers rotate signing keys; an unknown `kid` also triggers a re-read).
const METADATA_TTL: Duration = Duration::from_secs(60 * 60);
/// The signature algorithms accepted on ID tokens: asymmetric ones only (no `none`, no
/// HMAC with the client secret).
const ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// A discovered provider: its metadata with the signing keys.
pub(super) type Metadata = Arc<CoreProviderMetadata>;

/// The authorization request's URL and the secrets the callback checks.
pub(super) struct Authorization {
    pub url: String,
    pub state: Zeroizing<String>,
    pub nonce: Zeroizing<String>,
    pub verifier: Zeroizing<String>,
}

impl SsoService {
    /// The provider's metadata and keys, from the cache or read now. `fresh` reads them
    /// again whatever the cache holds.
    pub(super) async fn metadata(
        &self,
        provider: &SsoProvider,
        issuer: &str,
        fresh: bool,
    ) -> Result<Metadata, ServiceError> {
        if !fresh {
            let cache = self.inner.discovered.lock().expect("discovery cache");
            if let Some((read_at, metadata)) = cache.get(&provider.id)
                && read_at.elapsed() < METADATA_TTL
            {
                return Ok(metadata.clone());
            }
        }
        let metadata = Arc::new(self.discover(issuer).await.map_err(|why| {
            tracing::warn!(provider = %provider.id, issuer, "OpenID Connect discovery failed: {why}");
            ServiceError::Unavailable("the identity provider could not be reached; try again later")
        })?);
        self.inner
            .discovered
            .lock()
            .expect("discovery cache")
            .insert(provider.id.clone(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// OpenID Connect Discovery 1.0 §4: the document is at the issuer with any trailing
    /// slash removed, then `/.well-known/openid-configuration`. Its `issuer` must be the
    /// configured one; a difference of only a trailing slash is tolerated (operators copy
    /// either spelling), and the document's exact value is then what ID tokens must carry.
    async fn discover(&self, issuer: &str) -> Result<CoreProviderMetadata, String> {
        let base = issuer.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let metadata: CoreProviderMetadata = self.get_json(&url, None).await?;
        let found = metadata.issuer().as_str();
        if found.trim_end_matches('/') != base {
            return Err(format!(
                "the discovery document at {url} names the issuer `{found}`, not `{issuer}`"
            ));
        }
        let keys: CoreJsonWebKeySet = self
            .get_json(metadata.jwks_uri().url().as_str(), None)
            .await?;
        Ok(metadata.set_jwks(keys))
    }

    fn client(
        &self,
        provider: &SsoProvider,
        metadata: &Metadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ServiceError,
    > {
        let secret = (!provider.client_secret.is_empty())
            .then(|| ClientSecret::new(provider.client_secret.expose().to_owned()));
        let redirect = RedirectUrl::new(self.redirect_uri(&provider.id))
            .map_err(|_| ServiceError::Unavailable("the server's public URL is not a URL"))?;
        // client_secret_basic unless the provider offers only client_secret_post.
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|methods| {
                methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                    && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
            });
        let client = CoreClient::from_provider_metadata(
            (**metadata).clone(),
            ClientId::new(provider.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect);
        Ok(if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        })
    }

    /// The URL that sends the browser to the provider, with a fresh state, nonce and PKCE
    /// S256 challenge.
    pub(super) async fn authorize_oidc(
        &self,
        provider: &SsoProvider,
        issuer: &str,
        scopes: &[String],
    ) -> Result<Authorization, ServiceError> {
        let metadata = self.metadata(provider, issuer, false).await?;
        let client = self.client(provider, &metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        // The crate always asks for `openid`.
        for scope in scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: Zeroizing::new(state.into_secret()),
            nonce: Zeroizing::new(nonce.secret().clone()),
            verifier: Zeroizing::new(verifier.into_secret()),
        })
    }

    /// Exchanges the code (with the PKCE verifier) and checks the ID token.
    pub(super) async fn exchange_oidc(
        &self,
        provider: &SsoProvider,
        issuer: &str,
        group_claim: &str,
        code: String,
        verifier: &str,
        nonce: &str,
    ) -> Result<ExternalAccount, Refusal> {
        let metadata = self
            .metadata(provider, issuer, false)
            .await
            .map_err(|_| Refusal::unavailable(provider))?;
        let client = self
            .client(provider, &metadata)
            .map_err(|_| Refusal::unavailable(provider))?;
        let request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| Refusal::unavailable(provider))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
        let response = request.request_async(&self.inner.http).await.map_err(|e| {
            tracing::info!(provider = %provider.id, "code exchange refused: {e}");
            Refusal::new(
                "SSO_CODE_REFUSED",
                format!(
                    "{} refused the sign-in code: it was already used, expired, or was not issued \
                     for this sign-in. Start again.",
                    provider.display_name
                ),
            )
        })?;
        let id_token = response.id_token().ok_or_else(|| {
            Refusal::new(
                "SSO_ID_TOKEN_INVALID",
                format!("{} sent no ID token", provider.display_name),
            )
        })?;
        let nonce = Nonce::new(nonce.to_owned());
        let mut checked = {
            let verifier = client.id_token_verifier().set_allowed_algs(ALGORITHMS);
            id_token
                .claims(&verifier, &nonce)
                .cloned()
                .map_err(|e| e.to_string_and_kind())
        };
        if let Err((_, ClaimsKind::Signature)) = &checked {
            // Perhaps the provider rotated its keys: read them again, check once more.
            let metadata = self
                .metadata(provider, issuer, true)
                .await
                .map_err(|_| Refusal::unavailable(provider))?;
            let client = self
                .client(provider, &metadata)
                .map_err(|_| Refusal::unavailable(provider))?;
            let verifier = client.id_token_verifier().set_allowed_algs(ALGORITHMS);
            checked = id_token
                .claims(&verifier, &nonce)
                .cloned()
                .map_err(|e| e.to_string_and_kind());
        }
        let claims = checked.map_err(|(detail, kind)| {
            tracing::info!(provider = %provider.id, "ID token refused: {detail}");
            kind.refusal(provider)
        })?;
        let groups = if group_claim.is_empty() {
            Vec::new()
        } else {
            groups_of(&id_token.to_string(), group_claim)
        };
        Ok(ExternalAccount {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            groups,
        })
    }
}

/// Which ID token check failed, for the message the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimsKind {
    Expired,
    Audience,
    Issuer,
    Nonce,
    Signature,
    Other,
}

impl ClaimsKind {
    fn refusal(self, provider: &SsoProvider) -> Refusal {
        let name = &provider.display_name;
        let (code, message) = match self {
            ClaimsKind::Expired => (
                "SSO_ID_TOKEN_EXPIRED",
                format!("the ID token from {name} has expired; start again"),
            ),
            ClaimsKind::Audience => (
                "SSO_ID_TOKEN_AUDIENCE",
                format!("the ID token from {name} was issued for another application"),
            ),
            ClaimsKind::Issuer => (
                "SSO_ID_TOKEN_ISSUER",
                format!("the ID token did not come from {name}'s issuer"),
            ),
            ClaimsKind::Nonce => (
                "SSO_ID_TOKEN_NONCE",
                format!("the ID token from {name} does not belong to this sign-in (nonce)"),
            ),
            ClaimsKind::Signature => (
                "SSO_ID_TOKEN_SIGNATURE",
                format!("the ID token's signature does not verify with {name}'s keys"),
            ),
            ClaimsKind::Other => (
                "SSO_ID_TOKEN_INVALID",
                format!("the ID token from {name} is not valid"),
            ),
        };
        Refusal::new(code, message)
    }
}

trait KindOf {
    fn to_string_and_kind(&self) -> (String, ClaimsKind);
}

impl KindOf for ClaimsVerificationError {
    fn to_string_and_kind(&self) -> (String, ClaimsKind) {
        let kind = match self {
            ClaimsVerificationError::Expired(_) => ClaimsKind::Expired,
            ClaimsVerificationError::InvalidAudience(_) => ClaimsKind::Audience,
            ClaimsVerificationError::InvalidIssuer(_) => ClaimsKind::Issuer,
            ClaimsVerificationError::InvalidNonce(_) => ClaimsKind::Nonce,
            ClaimsVerificationError::SignatureVerification(_) => ClaimsKind::Signature,
            _ => ClaimsKind::Other,
        };
        (self.to_string(), kind)
    }
}

/// The strings of `claim` in a verified ID token's payload (a list, or one string).
fn groups_of(id_token: &str, claim: &str) -> Vec<String> {
    let payload = id_token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    match payload.as_ref().and_then(|p| p.get(claim)) {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}
