//! Outgoing mail over SMTP (`[smtp]` in the configuration), used for password-reset
//! links. Mail is optional: with `smtp.host` empty there is no [`Mailer`] and callers
//! fall back to what an admin can do by hand.
//!
//! TLS is rustls on ring with the system's CA store; there is no OpenSSL in the binary.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpSecurity};

/// Why mail could not be set up or sent. Messages name the server, never a message body.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("smtp.from `{0}` is not a valid mailbox")]
    From(String),
    #[error("TLS setup for SMTP server {host}: {source}")]
    Tls {
        host: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("the recipient address is not a valid mailbox")]
    Recipient,
    #[error("the message could not be built: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP server {host}:{port}: {source}")]
    Send {
        host: String,
        port: u16,
        source: lettre::transport::smtp::Error,
    },
}

/// Sends plain-text mail through the configured SMTP server. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    port: u16,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the SMTP credentials: show where mail goes, nothing more.
        f.debug_struct("Mailer")
            .field("host", &self.inner.host)
            .field("port", &self.inner.port)
            .field("from", &self.inner.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer for `config`, or `None` when mail is off (`smtp.host` empty). Nothing
    /// connects yet: a wrong host or password shows on the first send.
    pub fn from_config(config: &SmtpConfig) -> Result<Option<Self>, MailError> {
        if !config.enabled() {
            return Ok(None);
        }
        let host = config.host.trim().to_owned();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailError::From(config.from.clone()))?;
        let tls = |wrap: fn(TlsParameters) -> Tls| {
            TlsParameters::new(host.clone())
                .map(wrap)
                .map_err(|source| MailError::Tls {
                    host: host.clone(),
                    source,
                })
        };
        let tls = match config.security {
            SmtpSecurity::Starttls => tls(Tls::Required)?,
            SmtpSecurity::Tls => tls(Tls::Wrapper)?,
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(config.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_secs)));
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.expose().to_owned(),
            ));
        }
        Ok(Some(Self {
            inner: Arc::new(Inner {
                transport: builder.build(),
                from,
                host,
                port: config.port,
            }),
        }))
    }

    /// Sends one plain-text message to `to` and waits for the server to accept it.
    pub async fn send(&self, to: &str, subject: &str, text_body: String) -> Result<(), MailError> {
        let to: Mailbox = to.trim().parse().map_err(|_| MailError::Recipient)?;
        let message = Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text_body)?;
        self.inner
            .transport
            .send(message)
            .await
            .map_err(|source| MailError::Send {
                host: self.inner.host.clone(),
                port: self.inner.port,
                source,
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn no_host_means_no_mailer_and_debug_hides_the_credentials() {
        assert!(
            Mailer::from_config(&SmtpConfig::default())
                .unwrap()
                .is_none()
        );
        let config = SmtpConfig {
            host: "mail.example.com".into(),
            username: "sealbox".into(),
            password: Secret::new("smtp-secret-value"),
            ..SmtpConfig::default()
        };
        let mailer = Mailer::from_config(&config).unwrap().expect("a mailer");
        let shown = format!("{mailer:?}");
        assert!(shown.contains("mail.example.com"), "{shown}");
        assert!(!shown.contains("smtp-secret-value"), "{shown}");
    }
}
