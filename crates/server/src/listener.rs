//! The listener: accepts connections up to `max_connections` (derived from
//! the file-descriptor limit), answers those past it with a refusal, hands
//! each accepted one to `connection.rs`, and shuts down in order.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use cloudlet_core::ErrorCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{serve_connection, HttpService, ResponseBody};
use crate::{ApiError, App};

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
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    app: Arc<App>,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: HttpService<B>,
    S::Future: Send + 'static,
    B: ResponseBody,
{
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
                let connection = serve_connection(stream, service.clone(), &limits, &closing, slot);
                connections.spawn(connection);
            }
            Err(_) => refuse(stream, &refusals, limits.max_connections),
        }
    }
    drop(listener);
    app.invoker.begin_shutdown();
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
        for engine in app.invoker.engines().all() {
            engine.end_running();
        }
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
