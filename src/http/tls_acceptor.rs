//! The HTTPS acceptor: TCP connections wrapped in rustls, with the server configuration
//! held in a `watch` channel so a SIGHUP reload swaps certificates without a restart.
//!
//! sealbox owns this rather than using poem's rustls listener, which loads its first
//! configuration in a `select!` race with the first `accept` (a connection that arrives at
//! start-up can be dropped) and panics if its configuration stream ever ends.
//!
//! The handshake runs lazily on the connection's own task (the first read or write), so a
//! slow client never stalls the accept loop, and it is bounded by [`HANDSHAKE_TIMEOUT`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Wraps a TCP acceptor; every accepted connection is served over TLS with the
/// configuration current at the time it was accepted.
pub struct TlsAcceptor<A> {
    inner: A,
    config: watch::Receiver<Arc<ServerConfig>>,
}

impl<A> TlsAcceptor<A> {
    pub fn new(inner: A, config: watch::Receiver<Arc<ServerConfig>>) -> Self {
        Self { inner, config }
    }
}

impl<A: Acceptor<Io = TcpStream>> Acceptor for TlsAcceptor<A> {
    type Io = LazyTlsStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, _) = self.inner.accept().await?;
        let config = self.config.borrow().clone();
        let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
        let stream = LazyTlsStream::Handshaking(Box::pin(tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            handshake,
        )));
        Ok((stream, local, remote, Scheme::HTTPS))
    }
}

type Handshake = Pin<Box<tokio::time::Timeout<tokio_rustls::Accept<TcpStream>>>>;

/// A TLS connection whose handshake completes on first use.
pub enum LazyTlsStream {
    Handshaking(Handshake),
    Ready(Box<TlsStream<TcpStream>>),
    Failed,
}

impl LazyTlsStream {
    /// Drives the handshake; `Ready(Ok)` once the TLS stream is usable.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut TlsStream<TcpStream>>> {
        if let LazyTlsStream::Handshaking(handshake) = self {
            match ready!(handshake.as_mut().poll(cx)) {
                Ok(Ok(stream)) => *self = LazyTlsStream::Ready(Box::new(stream)),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "TLS handshake failed");
                    *self = LazyTlsStream::Failed;
                    return Poll::Ready(Err(err));
                }
                Err(_elapsed) => {
                    *self = LazyTlsStream::Failed;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake timed out",
                    )));
                }
            }
        }
        match self {
            LazyTlsStream::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake failed",
            ))),
        }
    }
}

impl AsyncRead for LazyTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LazyTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().poll_ready(cx))?;
        Pin::new(stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LazyTlsStream::Ready(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            // Nothing was established: there is nothing to close gracefully.
            _ => Poll::Ready(Ok(())),
        }
    }
}
