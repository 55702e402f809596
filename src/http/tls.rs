//! TLS material for the listener: a self-signed certificate generated once and kept in
//! `<data>/tls/`, or operator-provided PEM files; plus the checks `sealbox doctor` shares.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::data_dir::{DataDir, SECRET_FILE_MODE, write_atomic};

/// Lifetime of a generated certificate.
const SELF_SIGNED_VALIDITY_DAYS: i64 = 825;
/// A kept self-signed certificate closer than this to expiry is replaced at start.
pub const RENEW_BEFORE_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no usable PEM private key")]
    NoKey { path: PathBuf },
    #[error("{path}: certificate cannot be parsed: {message}")]
    BadCertificate { path: PathBuf, message: String },
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

/// A certificate chain and its private key, ready for the listener.
pub struct TlsMaterial {
    pub cert_pem: Vec<u8>,
    pub key_pem: Zeroizing<Vec<u8>>,
    pub summary: CertSummary,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("summary", &self.summary)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// What an operator needs to know about the leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// SHA-256 of the DER certificate, as colon-separated uppercase hex (the form browsers
    /// and `openssl x509 -fingerprint -sha256` show).
    pub fingerprint: String,
    pub not_after: OffsetDateTime,
    /// DNS names and IP addresses the certificate is valid for.
    pub names: Vec<String>,
}

impl TlsMaterial {
    /// The rustls server configuration: ring provider, TLS 1.2 and 1.3, HTTP/2 and 1.1.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Config(e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Loads the kept self-signed certificate, or generates one when it is missing, does not
/// cover `hostnames`, or expires within [`RENEW_BEFORE_DAYS`]. The second value says
/// whether a new certificate was generated.
pub fn ensure_self_signed(
    data: &DataDir,
    hostnames: &[String],
) -> Result<(TlsMaterial, bool), TlsError> {
    let (cert_path, key_path) = (data.self_signed_cert(), data.self_signed_key());
    if cert_path.exists() && key_path.exists() {
        match load_files(&cert_path, &key_path) {
            Ok(material) => {
                let renew_at = OffsetDateTime::now_utc() + time::Duration::days(RENEW_BEFORE_DAYS);
                let covers = hostnames.iter().all(|h| material.summary.names.contains(h));
                if covers && material.summary.not_after > renew_at {
                    return Ok((material, false));
                }
                tracing::info!(
                    "replacing the self-signed certificate (expiring, or host names changed)"
                );
            }
            Err(err) => {
                tracing::warn!(error = %err, "replacing unreadable self-signed certificate")
            }
        }
    }

    let key_pair = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(hostnames.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sealbox self-signed");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_VALIDITY_DAYS);
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| TlsError::Generate(e.to_string()))?;

    let cert_pem = cert.pem().into_bytes();
    let key_pem = Zeroizing::new(key_pair.serialize_pem().into_bytes());
    write_atomic(&key_path, &key_pem, SECRET_FILE_MODE).map_err(|source| TlsError::Write {
        path: key_path.clone(),
        source,
    })?;
    write_atomic(&cert_path, &cert_pem, 0o644).map_err(|source| TlsError::Write {
        path: cert_path.clone(),
        source,
    })?;
    let summary = summarize(&cert_path, cert.der())?;
    Ok((
        TlsMaterial {
            cert_pem,
            key_pem,
            summary,
        },
        true,
    ))
}

/// Loads and checks a PEM certificate chain and private key: both parse, and the key is
/// the certificate's.
pub fn load_files(cert_path: &Path, key_path: &Path) -> Result<TlsMaterial, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = Zeroizing::new(read(key_path)?);

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: cert_path.to_owned(),
        })?;
    let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate {
        path: cert_path.to_owned(),
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key_path.to_owned(),
    })?;
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| TlsError::NoKey {
            path: key_path.to_owned(),
        })?;
    let summary = summarize(cert_path, leaf)?;
    rustls::sign::CertifiedKey::new(chain, signing_key)
        .keys_match()
        .map_err(|_| TlsError::KeyMismatch)?;
    Ok(TlsMaterial {
        cert_pem,
        key_pem,
        summary,
    })
}

/// Fingerprint, expiry and names of a DER certificate.
pub fn summarize(path: &Path, der: &[u8]) -> Result<CertSummary, TlsError> {
    use x509_parser::extensions::GeneralName;

    let bad = |message: String| TlsError::BadCertificate {
        path: path.to_owned(),
        message,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(e.to_string()))?;
    let not_after = cert.validity().not_after.to_datetime();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(std::net::IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertSummary {
        fingerprint: fingerprint(der),
        not_after,
        names,
    })
}

/// SHA-256 of `der` as `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
