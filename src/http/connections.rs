//! Serving accepted connections: HTTP/1.1 and HTTP/2 by hyper, requests handed to the
//! poem endpoint, with the limits that keep idle or slow clients from holding the server.
//!
//! poem's own `Server` runs hyper without a timer, so a half-sent request line or header
//! block stays open forever, and it accepts without bound. This loop is the same
//! conversion (hyper request in, poem response out) with:
//! - `server.header_read_timeout_secs`: hyper's header read timeout, measured from the
//!   moment the connection waits for a request head until the whole head has arrived. It
//!   also closes a keep-alive connection that sends no next request in that time. Before
//!   hyper knows whether a connection speaks HTTP/1 or HTTP/2 it reads up to 24 bytes
//!   with no timeout of its own; [`FirstBytesDeadline`] gives those bytes the same time;
//! - `server.max_connections`: a semaphore around accepted connections. At the limit the
//!   loop stops accepting, so new connections wait in the kernel's backlog until one
//!   closes, instead of each taking memory and a task;
//! - graceful shutdown: stop accepting, let connections finish their requests within
//!   `server.shutdown_timeout_secs`, then close the rest. A request whose body is still
//!   arriving near the end of that time (a large upload) is not simply dropped: its body
//!   fails with [`SHUTDOWN_CUT`] first, [`settle_time`] before the timeout, so the upload
//!   handler takes its "client went away" path, makes what arrived durable and records
//!   the offset the client resumes from after the restart. Only what is still running
//!   at the timeout is dropped (an upload then resumes from its last checkpoint).
//!
//! Body reads are bounded separately, per request, by `middleware::BodyIdleTimeout`.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::http::uri::Scheme;
use poem::listener::{Acceptor, BoxAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// The message of the error a request body fails with when the server cuts it off at
/// shutdown; upload handlers pass it on to the client.
pub const SHUTDOWN_CUT: &str =
    "the server is shutting down: what arrived is kept, resume the upload once it is back";

/// The body type poem converts its responses into.
type ResponseBody = http_body_util::combinators::BoxBody<Bytes, io::Error>;
type SharedEndpoint = Arc<poem::endpoint::BoxEndpoint<'static, Response>>;

/// What bounds each connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a complete request head (and how long an idle
    /// keep-alive connection waits for the next one).
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

/// Serves `endpoint` on the connections `acceptor` yields until `shutdown` resolves,
/// then lets open connections finish within `grace` and closes what is left.
pub async fn serve<E>(
    mut acceptor: BoxAcceptor,
    endpoint: E,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()>
where
    E: IntoEndpoint,
    E::Endpoint: 'static,
{
    let endpoint: SharedEndpoint = Arc::new(endpoint.into_endpoint().map_to_response().boxed());
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let (cut, cutting) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    for addr in acceptor.local_addr() {
        tracing::info!(addr = %addr, "listening");
    }
    loop {
        // A free slot first: at the limit nothing more is accepted.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((io, local, remote, scheme)) => {
                connections.spawn(serve_connection(
                    io,
                    Peer {
                        local,
                        remote,
                        scheme,
                    },
                    endpoint.clone(),
                    limits,
                    stopping.clone(),
                    cutting.clone(),
                    permit,
                ));
            }
            Err(e) => {
                // Out of file descriptors and similar: give the system a moment rather
                // than spinning on the error.
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(acceptor);
    let _ = stop.send(true);
    tracing::info!(
        open = connections.len(),
        "stopped accepting; waiting for open connections"
    );
    let settle = settle_time(grace);
    let drained = tokio::time::timeout(grace - settle, drain(&mut connections)).await;
    if drained.is_err() {
        // Bodies still arriving end now, so their handlers record what is durable.
        tracing::info!(
            open = connections.len(),
            "cutting off request bodies still arriving; uploads keep what is durable"
        );
        let _ = cut.send(true);
        let settled = tokio::time::timeout(settle, drain(&mut connections)).await;
        if settled.is_err() {
            tracing::info!(
                open = connections.len(),
                "closing connections still open after the shutdown timeout"
            );
            connections.abort_all();
            drain(&mut connections).await;
        }
    }
    Ok(())
}

async fn drain(connections: &mut JoinSet<()>) {
    while connections.join_next().await.is_some() {}
}

/// The part of the shutdown timeout left to handlers whose request bodies were cut off:
/// a fifth of it, at most 5 s, enough to fsync what an upload wrote since its last
/// checkpoint and record its offset. The rest of the timeout is for finishing normally.
pub fn settle_time(grace: Duration) -> Duration {
    (grace / 5).min(Duration::from_secs(5))
}

/// The addresses of an accepted connection, as poem's requests carry them.
struct Peer {
    local: LocalAddr,
    remote: RemoteAddr,
    scheme: Scheme,
}

async fn serve_connection<Io>(
    io: Io,
    peer: Peer,
    endpoint: SharedEndpoint,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
    cutting: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) where
    Io: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let peer = Arc::new(peer);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (endpoint, peer, cutting) = (endpoint.clone(), peer.clone(), cutting.clone());
        async move {
            let has_body = !hyper::body::Body::is_end_stream(req.body());
            let mut req = poem::Request::from((
                req,
                peer.local.clone(),
                peer.remote.clone(),
                peer.scheme.clone(),
            ));
            if has_body {
                let body = CutOnShutdown::new(req.take_body().into(), cutting);
                req.set_body(poem::Body::from(ResponseBody::new(body)));
            }
            let response = endpoint.get_response(req).await;
            Ok::<_, Infallible>(hyper::Response::<ResponseBody>::from(response))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    // As poem configured HTTP/2.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_pending_accept_reset_streams(20)
        .max_header_list_size(16 * 1024);
    let io = FirstBytesDeadline::new(io, limits.header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    // Finish the request in progress (if any), then close.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// A request body that fails with [`SHUTDOWN_CUT`] once the server cuts bodies off at
/// shutdown, instead of being dropped mid-read with its handler.
struct CutOnShutdown {
    inner: ResponseBody,
    /// Resolves when bodies are cut. In a `Mutex` only to make the body `Sync` (poem's
    /// body type requires it); it is reached through `get_mut`, never locked.
    cut: Option<std::sync::Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    failed: bool,
}

impl CutOnShutdown {
    fn new(inner: ResponseBody, mut cutting: watch::Receiver<bool>) -> Self {
        let cut: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            // A closed channel means the server loop is gone: cut as well.
            let _ = cutting.wait_for(|cut| *cut).await;
        });
        Self {
            inner,
            cut: Some(std::sync::Mutex::new(cut)),
            failed: false,
        }
    }
}

impl hyper::body::Body for CutOnShutdown {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        if let Some(cut) = this.cut.as_mut() {
            let cut = cut
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if cut.as_mut().poll(cx).is_ready() {
                this.cut = None;
                this.failed = true;
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    SHUTDOWN_CUT,
                ))));
            }
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            // The whole body arrived: nothing left to cut.
            this.cut = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.failed {
            hyper::body::SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}

/// The length of the HTTP/2 preface: what hyper reads to tell the protocols apart.
const SNIFFED_BYTES: usize = 24;

/// An accepted connection that fails its reads with `TimedOut` if its first
/// [`SNIFFED_BYTES`] have not arrived within the deadline (counted from acceptance), so a
/// client that connects and sends nothing, or a few bytes, is let go. After those bytes
/// hyper's own header read timeout applies.
struct FirstBytesDeadline<Io> {
    inner: Io,
    seen: usize,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<Io> FirstBytesDeadline<Io> {
    fn new(inner: Io, timeout: Duration) -> Self {
        Self {
            inner,
            seen: 0,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for FirstBytesDeadline<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.seen += buf.filled().len() - before;
                if this.seen >= SNIFFED_BYTES {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent no request in time",
                    )));
                }
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for FirstBytesDeadline<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
