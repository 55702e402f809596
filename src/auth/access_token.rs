//! Access tokens: JWTs signed with HS256 under a key derived from the master key
//! (context `sealbox/v1/jwt`), valid for 15 minutes, bound to a session (`sid`).
//!
//! Header: `alg: HS256`, `typ: at+jwt` (RFC 9068), `kid` naming the signing key so a
//! rotated master key can be told apart. Claims: `iss`, `aud`, `sub` (user id), `sid`
//! (session id), `iat`, `exp`. A valid signature is necessary but not sufficient: the
//! session and user are checked against the database on every request.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::ids::{SessionId, UserId};

/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
const ISSUER: &str = "sealbox";
const AUDIENCE: &str = "sealbox-api";
const TYPE: &str = "at+jwt";
const KEY_CONTEXT: &str = "sealbox/v1/jwt";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

impl AccessClaims {
    pub fn user_id(&self) -> Option<UserId> {
        self.sub.parse().ok()
    }
    pub fn session_id(&self) -> Option<SessionId> {
        self.sid.parse().ok()
    }
}

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct AccessTokens {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    pub fn new(master_key: &MasterKey) -> Self {
        let key = master_key.derive(KEY_CONTEXT);
        Self {
            kid: format!("{}-jwt", master_key.id()),
            encoding: EncodingKey::from_secret(key.as_ref()),
            decoding: DecodingKey::from_secret(key.as_ref()),
        }
    }

    /// A signed token for `user` in `session`, and its lifetime in seconds.
    pub fn issue(&self, user: UserId, session: SessionId) -> (String, u64) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user.to_string(),
            sid: session.to_string(),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL.as_secs(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TYPE.into());
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail");
        (token, ACCESS_TOKEN_TTL.as_secs())
    }

    /// Verifies signature, algorithm, key id, type, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.kid.as_deref() != Some(self.kid.as_str()) || header.typ.as_deref() != Some(TYPE) {
            return None;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_under_their_own_key() {
        let tokens = AccessTokens::new(&MasterKey::generate());
        let (user, session) = (UserId::new(), SessionId::new());
        let (token, ttl) = tokens.issue(user, session);
        assert_eq!(ttl, 900);
        let claims = tokens.verify(&token).expect("valid");
        assert_eq!(claims.user_id(), Some(user));
        assert_eq!(claims.session_id(), Some(session));

        let other = AccessTokens::new(&MasterKey::generate());
        assert!(other.verify(&token).is_none());
        assert!(tokens.verify("garbage").is_none());
        let mut tampered = token.clone();
        tampered.push('x');
        assert!(tokens.verify(&tampered).is_none());
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let tokens = AccessTokens::new(&MasterKey::generate());
        let (token, _) = tokens.issue(UserId::new(), SessionId::new());
        let payload = token.split('.').nth(1).unwrap();
        let forged = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"at+jwt"}"#));
        assert!(tokens.verify(&forged).is_none());
    }
}
