//! The listener: accepts connections, holds each one to the connection
//! limits, serves the router on it with hyper's HTTP/1 connection, and shuts
//! down in order.
//!
//! Every limit here is about what a client can make the server hold without
//! asking for any work: a socket (`max_connections`, derived from the
//! file-descriptor limit), a buffer of unfinished headers
//! (`max_header_bytes`, `header_read_timeout`), a request body that stopped
//! coming (`body_read_timeout`, in `router()`), or an idle keep-alive
//! connection (`keep_alive_timeout`).

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use cloudlet_core::ErrorCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::{ApiError, App, ServerLimits};

/// Connections past `max_connections` that are answered at once (a 503 with
/// `Retry-After`); past these too, a new connection is closed unanswered.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a refused connection has to send its request's headers.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long connections get to finish once running invocations were ended
/// at the end of the grace period (they answer at once then).
const AFTER_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets requests in progress finish for up to
/// `limits.shutdown_grace`, ends the invocations still running (their
/// records say so), and returns once every connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = app.limits.clone();
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    pause_after_accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Nagle's algorithm would hold small responses back for up to 40 ms.
        let _ = stream.set_nodelay(true);
        match Arc::clone(&open).try_acquire_owned() {
            Ok(slot) => {
                let connection = serve_connection(stream, router.clone(), &limits, &closing, slot);
                connections.spawn(connection);
            }
            Err(_) => refuse(stream, &refusals, limits.max_connections),
        }
    }
    drop(listener);
    app.begin_shutdown();
    closing.cancel();
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?limits.shutdown_grace,
            "invocations still running at the end of the shutdown grace period are ended"
        );
        app.engine.end_running();
        if tokio::time::timeout(AFTER_GRACE, connections.wait())
            .await
            .is_err()
        {
            tracing::error!(
                "connections still open after their invocations were ended are dropped"
            );
        }
    }
}

/// Accepting fails when the process is out of file descriptors (or the
/// kernel of memory); trying again at once would spin.
async fn pause_after_accept_error(error: std::io::Error) {
    tracing::warn!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Serves one connection until the client closes it, it stays idle past the
/// keep-alive timeout, or the server shuts down (requests in progress finish).
fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: &ServerLimits,
    closing: &CancellationToken,
    slot: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static {
    let activity = Arc::new(Activity::new());
    let counted = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let in_progress = counted.begin();
        let response = router.clone().oneshot(request.map(axum::body::Body::new));
        async move {
            let response = response.await;
            drop(in_progress);
            response
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(stream), service);
    let keep_alive = limits.keep_alive_timeout;
    let closing = closing.clone();
    async move {
        tokio::pin!(connection);
        let mut ending = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                () = activity.idle_for(keep_alive), if !ending => {
                    connection.as_mut().graceful_shutdown();
                    ending = true;
                }
                () = closing.cancelled(), if !ending => {
                    connection.as_mut().graceful_shutdown();
                    ending = true;
                }
            }
        }
        drop(slot);
    }
}

/// Answers a connection past the limit with 503 `EXCEED_CONNECTION_LIMIT`
/// and closes it, so the client learns why (and when to retry) instead of
/// waiting in the backlog; past [`REFUSALS_AT_ONCE`] it is closed unanswered.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, max_connections: usize) {
    let Ok(refusal) = Arc::clone(refusals).try_acquire_owned() else {
        return;
    };
    let service = hyper::service::service_fn(move |_request: Request<hyper::body::Incoming>| {
        let refused = ApiError::new(
            ErrorCode::ExceedConnectionLimit,
            format!("the server already holds {max_connections} connections, its limit"),
        );
        std::future::ready(Ok::<Response, Infallible>(refused.into_response()))
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, connection).await;
        drop(refusal);
    });
}

/// Whether a connection has a request in progress, and since when it has had none.
struct Activity {
    started: Instant,
    in_progress: AtomicUsize,
    /// Milliseconds from `started` to the end of the last request.
    idle_since_ms: AtomicU64,
}

/// A request in progress on a connection; its end makes the connection idle.
struct InProgress(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_progress: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        InProgress(Arc::clone(self))
    }

    /// Resolves once the connection has had no request in progress for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let idle_since =
                self.started + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
            let until = idle_since + timeout;
            if self.in_progress.load(Ordering::Acquire) == 0 && Instant::now() >= until {
                return;
            }
            // A request in progress: look again a timeout later.
            let wake = if self.in_progress.load(Ordering::Acquire) == 0 {
                until
            } else {
                Instant::now() + timeout
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let activity = &self.0;
        let now = activity.started.elapsed().as_millis() as u64;
        activity.idle_since_ms.store(now, Ordering::Release);
        activity.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}
