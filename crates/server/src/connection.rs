//! One connection: the router served on it with hyper's HTTP/1 connection,
//! held to the limits on what a client can make the server hold without
//! asking for any work: a buffer of unfinished headers (`max_header_bytes`,
//! `header_read_timeout`), a request body that stopped coming
//! (`body_read_timeout`, `body_timeout.rs`), or an idle keep-alive connection
//! (`keep_alive_timeout`).
//!
//! The two timeouts between requests are kept by a watcher task per
//! connection rather than by hyper's own header read timeout, which arms a
//! timer for every request; at tens of thousands of requests a second that
//! timer was a measurable share of an invocation's cost. The watcher looks a
//! few times per timeout at two counters the connection bumps without reading
//! a clock: requests started and ended, and bytes received.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::convert::Infallible;

use axum::extract::Request;
use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::body_timeout::IdleTimeoutBody;
use crate::ServerLimits;

/// The watcher looks this many times per timeout, so a timeout is kept to
/// within a quarter of itself.
const LOOKS_PER_TIMEOUT: u32 = 4;

/// Serves one connection until the client closes it, a timeout between
/// requests ends it, or the server shuts down (the request in progress
/// finishes). `slot` is its share of `max_connections`.
/// What a connection serves: the API's stack of layers and routes.
pub(crate) trait HttpService<B>:
    tower::Service<Request, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: tower::Service<Request, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static
{
}

/// What its responses carry.
pub(crate) trait ResponseBody:
    http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn serve_connection<S, B>(
    stream: TcpStream,
    service: S,
    limits: &ServerLimits,
    closing: &CancellationToken,
    slot: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static
where
    S: HttpService<B>,
    S::Future: Send + 'static,
    B: ResponseBody,
{
    let activity = Arc::new(Activity::default());
    let counted = Arc::clone(&activity);
    let body_read_timeout = limits.body_read_timeout;
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let in_progress = counted.begin();
        // A client that stops sending its body mid-way would otherwise hold
        // the request (and what of the body arrived) for ever: 408 instead.
        let request = request
            .map(|body| axum::body::Body::new(IdleTimeoutBody::new(body, body_read_timeout)));
        let response = service.clone().oneshot(request);
        async move {
            let response = response.await;
            response.map(|response| {
                response.map(|body| UntilSent {
                    body,
                    _in_progress: in_progress,
                })
            })
        }
    });
    let io = CountedIo {
        stream,
        activity: Arc::clone(&activity),
    };
    // With upgrades: an HTTP function's WebSocket takes the connection over.
    let connection = http1::Builder::new()
        .max_buf_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let timeouts = Timeouts {
        header_read: limits.header_read_timeout,
        keep_alive: limits.keep_alive_timeout,
    };
    let closing = closing.clone();
    async move {
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
            }
            // Nothing in progress: the connection is dropped, and closed.
            () = activity.between_requests_past(timeouts) => {}
            () = closing.cancelled() => {
                connection.as_mut().graceful_shutdown();
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended with an error at shutdown");
                }
            }
        }
        drop(slot);
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    header_read: Duration,
    keep_alive: Duration,
}

/// What a connection has done, as two counters only the connection writes.
#[derive(Default)]
struct Activity {
    /// Bumped when a request starts and when it ends (HTTP/1 serves one at a
    /// time on a connection): odd while one is in progress.
    bumps: AtomicU64,
    /// Bytes read from the client.
    received: AtomicU64,
    /// `received` when the last request ended: more since means the next
    /// request's head is arriving.
    received_at_rest: AtomicU64,
    /// Bytes written to the client: a response still being written to a
    /// slow reader keeps the connection busy after its request ended.
    sent: AtomicU64,
}

/// A request in progress on a connection.
struct InProgress(Arc<Activity>);

impl Activity {
    fn begin(self: &Arc<Self>) -> InProgress {
        self.bumps.fetch_add(1, Ordering::AcqRel);
        InProgress(Arc::clone(self))
    }

    /// Resolves once no request has been in progress, nor a response been
    /// written, for the keep-alive timeout while the client sent nothing, or
    /// for the header read timeout since it started sending the next request's head.
    async fn between_requests_past(&self, timeouts: Timeouts) {
        let look = timeouts.header_read.min(timeouts.keep_alive) / LOOKS_PER_TIMEOUT;
        // A new connection starts between requests, with nothing received.
        let mut between = Some(Between {
            bumps: 0,
            sent: 0,
            since: Instant::now(),
            received: 0,
            head_started: None,
        });
        loop {
            tokio::time::sleep(look).await;
            let bumps = self.bumps.load(Ordering::Acquire);
            let received = self.received.load(Ordering::Acquire);
            let now = Instant::now();
            if bumps % 2 == 1 {
                between = None;
                continue;
            }
            let sent = self.sent.load(Ordering::Acquire);
            let state = match &mut between {
                Some(state) if state.bumps == bumps && state.sent == sent => state,
                _ => {
                    between = Some(Between {
                        bumps,
                        sent,
                        since: now,
                        received: self.received_at_rest.load(Ordering::Acquire),
                        head_started: None,
                    });
                    continue;
                }
            };
            if received > state.received {
                let started = *state.head_started.get_or_insert(now);
                if now.duration_since(started) >= timeouts.header_read {
                    return;
                }
            } else if now.duration_since(state.since) >= timeouts.keep_alive {
                return;
            }
        }
    }
}

/// A stretch without a request in progress, as the watcher saw it.
struct Between {
    /// The request counter when it started.
    bumps: u64,
    /// Bytes sent when it started (or last moved on).
    sent: u64,
    since: Instant,
    /// Bytes received when it started: more means a request's head is arriving.
    received: u64,
    head_started: Option<Instant>,
}

pin_project_lite::pin_project! {
    /// A response's body, which keeps its request in progress until it has
    /// been sent or dropped: a streamed response that pauses longer than the
    /// keep-alive timeout is not an idle connection.
    struct UntilSent<B> {
        #[pin]
        body: B,
        _in_progress: InProgress,
    }
}

impl<B: http_body::Body> http_body::Body for UntilSent<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let activity = &self.0;
        let received = activity.received.load(Ordering::Acquire);
        activity.received_at_rest.store(received, Ordering::Release);
        activity.bumps.fetch_add(1, Ordering::AcqRel);
    }
}

/// The client's socket, counting the bytes read from it.
struct CountedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for CountedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            // Only this connection's task writes the counter.
            let received = &self.activity.received;
            received.store(
                received.load(Ordering::Relaxed) + read as u64,
                Ordering::Release,
            );
        }
        polled
    }
}

impl CountedIo {
    fn count_sent(&self, polled: &Poll<std::io::Result<usize>>) {
        if let Poll::Ready(Ok(written)) = polled {
            // Only this connection's task writes the counter.
            let sent = &self.activity.sent;
            sent.store(
                sent.load(Ordering::Relaxed) + *written as u64,
                Ordering::Release,
            );
        }
    }
}

impl AsyncWrite for CountedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.count_sent(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.count_sent(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
