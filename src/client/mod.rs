//! The client side of sealbox: what `sealbox login`, `send` and `receive` use to talk to a
//! server over its public API (`docs/cli.md`).
//!
//! - [`http`]: the HTTPS client (native roots, or a pinned leaf certificate) and the API's
//!   error answers turned into messages a person can act on.
//! - [`credentials`]: `credentials.toml` in the user's config directory.
//! - [`link`]: transfer links and their `#k=` fragment.
//! - [`tus`]: resumable uploads that encrypt as they send.
//! - [`download`]: downloads decrypted as they arrive, into a temporary file.
//! - [`progress`]: progress bars on stderr.

pub mod credentials;
pub mod download;
pub mod http;
pub mod link;
pub mod progress;
pub mod tus;

/// Why a client command failed: each variant prints a message that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server's certificate is not trusted by the system (typically self-signed).
    #[error(
        "the certificate of {server} is not trusted ({detail}). If it is a sealbox with a \
         self-signed certificate, get its SHA-256 fingerprint (`sealbox serve` prints it as \
         \"TLS SHA-256\" at start; `sealbox doctor` on the server shows it too), compare it \
         out of band, and pass it with --pin <FINGERPRINT>"
    )]
    UntrustedCertificate { server: String, detail: String },
    /// The server's certificate is not the pinned one.
    #[error(
        "the certificate of {server} does not match the --pin fingerprint: refusing to talk \
         to it (the server's certificate changed, or someone is in between)"
    )]
    PinMismatch { server: String },
    /// The connection failed (DNS, refused, reset, timeout).
    #[error("cannot reach {server}: {detail}")]
    Connection { server: String, detail: String },
    /// The server answered with an error.
    #[error("{0}")]
    Api(String),
    /// A local problem: a file, a directory, the terminal.
    #[error("{0}")]
    Local(String),
    /// The user's input is not usable.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    pub fn local(context: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::Local(format!("{context}: {err}"))
    }
}
