//! The HTTPS client and the API's answers.
//!
//! Without a pin, certificates are verified as usual against the system's roots. With
//! `--pin`, exactly one leaf certificate is accepted, the one whose SHA-256 is the pin (the
//! fingerprint `sealbox serve` prints as "TLS SHA-256"); the handshake signatures are still
//! verified with ring, so the server must hold that certificate's private key. Verification
//! is never switched off.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use super::ClientError;
use super::credentials::ApiKey;

/// The SHA-256 of a server's leaf certificate (DER), as given to `--pin`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin([u8; 32]);

impl Pin {
    /// Accepts the form sealbox prints (`AB:CD:...`, as browsers and `openssl x509
    /// -fingerprint -sha256` show it), plain hex, either case, and an optional `sha256:`
    /// or `SHA256 Fingerprint=` prefix.
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let trimmed = text.trim();
        let trimmed = trimmed
            .rsplit_once('=')
            .map_or(trimmed, |(_, fingerprint)| fingerprint);
        let trimmed = trimmed
            .strip_prefix("sha256:")
            .or_else(|| trimmed.strip_prefix("SHA256:"))
            .unwrap_or(trimmed);
        let hex: String = trimmed
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let bad = || {
            ClientError::Usage(format!(
                "--pin {text:?} is not a SHA-256 fingerprint: expected 64 hex digits, \
                 with or without colons (AB:CD:...)"
            ))
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }

    /// The form sealbox prints: colon-separated uppercase hex.
    pub fn to_colon_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pin({})", self.to_colon_hex())
    }
}

/// Accepts exactly the pinned leaf certificate, whatever its issuer, names or dates (a
/// self-signed appliance certificate has no chain to check); handshake signatures are
/// verified as always.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Pin,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(digest.ct_eq(&self.pin.0)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A reqwest client: system roots, or only the pinned certificate.
pub fn build_client(pin: Option<Pin>) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("sealbox-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(300))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pin) = pin {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::local("TLS setup", e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pin, provider }))
            .with_no_client_auth();
        builder = builder.use_preconfigured_tls(config);
    }
    builder
        .build()
        .map_err(|e| ClientError::local("HTTP client setup", e))
}

/// The messages of `err` and its sources, without the URL (upload and download URLs
/// carry tokens).
pub fn error_chain(err: reqwest::Error) -> Vec<String> {
    let err = err.without_url();
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(&err);
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    chain
}

/// Turns a failed request into a message: certificate problems get their own advice.
pub fn transport_error(server: &Url, pinned: bool, err: reqwest::Error) -> ClientError {
    let chain = error_chain(err);
    let server = origin(server);
    if let Some(detail) = chain
        .iter()
        .find(|m| m.contains("invalid peer certificate"))
    {
        let detail = detail.clone();
        return if pinned {
            ClientError::PinMismatch { server }
        } else {
            ClientError::UntrustedCertificate { server, detail }
        };
    }
    ClientError::Connection {
        server,
        detail: chain.join(": "),
    }
}

/// `scheme://host[:port]` of a URL, for messages.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// A server's API, reached with one client, optionally as an API key.
#[derive(Debug, Clone)]
pub struct Api {
    pub client: reqwest::Client,
    /// The server's base URL (scheme, host, port and any path prefix, ending in `/`).
    pub base: Url,
    /// The pinned certificate, if any.
    pub pin: Option<Pin>,
    pub key: Option<ApiKey>,
}

impl Api {
    pub fn new(base: Url, pin: Option<Pin>, key: Option<ApiKey>) -> Result<Self, ClientError> {
        Ok(Self {
            client: build_client(pin)?,
            base,
            pin,
            key,
        })
    }

    /// `path` (relative, such as `v1/transfers`, or absolute from the server) resolved
    /// against the base URL.
    pub fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path)
            .map_err(|e| ClientError::Api(format!("the server sent a bad URL {path:?}: {e}")))
    }

    /// A request to `url`, with the API key when there is one.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.client.request(method, url);
        match &self.key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// Sends `request`, mapping transport failures to messages.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        request
            .send()
            .await
            .map_err(|e| transport_error(&self.base, self.pin.is_some(), e))
    }
}

/// The server's error message (`error.message` of the SPEC §3 envelope), or the status.
pub async fn error_message(response: Response) -> String {
    let status = response.status();
    let body: Option<serde_json::Value> = response.json().await.ok();
    match body
        .as_ref()
        .and_then(|b| b["error"]["message"].as_str())
        .filter(|m| !m.is_empty())
    {
        Some(message) => format!("{message} (HTTP {})", status.as_u16()),
        None => format!("HTTP {status}"),
    }
}

/// Reads a JSON body from a response that must have `expected` status; anything else
/// becomes `ClientError::Api` with `what` and the server's message.
pub async fn expect_json(
    response: Response,
    expected: StatusCode,
    what: &str,
) -> Result<serde_json::Value, ClientError> {
    if response.status() != expected {
        return Err(ClientError::Api(format!(
            "{what} failed: {}",
            error_message(response).await
        )));
    }
    response
        .json()
        .await
        .map_err(|e| ClientError::Api(format!("{what}: the server's answer is not JSON: {e}")))
}

/// Parses a server URL given by the user: `https://host[:port][/prefix]`.
pub fn parse_server(text: &str) -> Result<Url, ClientError> {
    let with_slash = if text.ends_with('/') {
        text.to_owned()
    } else {
        format!("{text}/")
    };
    let url = Url::parse(&with_slash)
        .map_err(|e| ClientError::Usage(format!("server URL {text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(ClientError::Usage(format!(
            "server URL {text:?} must be https://HOST[:PORT]"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_the_printed_form_and_as_plain_hex() {
        let colon = "AB:".repeat(31) + "CD";
        let pin = Pin::parse(&colon).unwrap();
        assert_eq!(pin.to_colon_hex(), colon);
        assert_eq!(Pin::parse(&colon.replace(':', "")).unwrap(), pin);
        assert_eq!(Pin::parse(&colon.to_lowercase()).unwrap(), pin);
        assert_eq!(
            Pin::parse(&format!("sha256 Fingerprint={colon}")).unwrap(),
            pin
        );
        for bad in ["", "AB:CD", &"ZZ".repeat(32), &"AB".repeat(33)] {
            assert!(Pin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_urls_get_a_trailing_slash_and_need_a_host() {
        assert_eq!(
            parse_server("https://box.lan:8443").unwrap().as_str(),
            "https://box.lan:8443/"
        );
        assert_eq!(
            parse_server("https://box.lan/sealbox")
                .unwrap()
                .join("v1/transfers")
                .unwrap()
                .as_str(),
            "https://box.lan/sealbox/v1/transfers"
        );
        assert!(parse_server("box.lan").is_err());
        assert!(parse_server("ftp://box.lan").is_err());
    }
}
