//! Cloudlet's HTTP gateway.
//!
//! [`router`] builds the native API (see `docs/api.md`) over an [`App`]: the
//! stores, the engine, the auth policy and the limits. The request path of an
//! invocation is `invoke::invoke_in_env`: auth → body limit and JSON check →
//! [`registry`] lookup of the current version → `Engine::invoke` → record
//! submitted to the batched record store → response. Errors of every route
//! become responses in one place, [`error::ApiError`].

mod auth;
mod body_timeout;
mod connection;
mod error;
mod invoke;
mod listener;
mod manage;
mod registry;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use cloudlet_core::ErrorCode;
use cloudlet_runtime::Engine;
use cloudlet_store::{FunctionStore, RecordStore};

pub use auth::AuthPolicy;
pub use error::ApiError;

/// Limits the gateway enforces.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Largest invoke body.
    pub max_body_bytes: usize,
    /// Largest deploy body (a package archive).
    pub max_package_bytes: usize,
    /// Most invocations running at once across the server; past it, 429.
    pub max_concurrent_invocations: usize,
    /// Most connections open at once; past it, 503 `EXCEED_CONNECTION_LIMIT`.
    pub max_connections: usize,
    /// Time a client has to send a request's line and headers, counted from
    /// when the connection starts waiting for it; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Longest pause between two parts of a request body; then 408.
    pub body_read_timeout: Duration,
    /// How long a connection without a request in progress stays open.
    pub keep_alive_timeout: Duration,
    /// Most bytes of a request's line and headers; past it, 431. At least 8192.
    pub max_header_bytes: usize,
    /// How long running invocations may finish at shutdown before they are ended.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 6 * 1024 * 1024,
            max_package_bytes: 64 * 1024 * 1024,
            max_concurrent_invocations: 1024,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Everything the handlers share.
pub struct App {
    pub(crate) functions: Arc<dyn FunctionStore>,
    pub(crate) records: Arc<dyn RecordStore>,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) auth: AuthPolicy,
    pub(crate) limits: ServerLimits,
    pub(crate) registry: registry::Registry,
    pub(crate) in_flight: AtomicUsize,
    /// Echo each invocation's console output to this server's log (`cloudlet dev`).
    pub(crate) print_function_logs: bool,
    /// Set once the server shuts down: new invocations and deploys are refused.
    stopping: AtomicBool,
}

impl App {
    pub fn new(
        functions: Arc<dyn FunctionStore>,
        records: Arc<dyn RecordStore>,
        engine: Arc<dyn Engine>,
        auth: AuthPolicy,
        limits: ServerLimits,
        print_function_logs: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            functions,
            records,
            engine,
            auth,
            limits,
            registry: registry::Registry::default(),
            in_flight: AtomicUsize::new(0),
            print_function_logs,
            stopping: AtomicBool::new(false),
        })
    }

    pub(crate) fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Refuses new work once the server shuts down (503 with `Retry-After`:
    /// a client retrying against a restarted server will succeed).
    pub(crate) fn refuse_if_stopping(&self) -> Result<(), ApiError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "the server is shutting down",
            ));
        }
        Ok(())
    }
}

/// The native API.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.limits.max_body_bytes;
    let max_package = app.limits.max_package_bytes;
    let invoke_routes = Router::new()
        .route(
            "/v1/envs/{env}/functions/{name}",
            post(invoke::invoke_in_env),
        )
        .route("/v1/functions/{name}", post(invoke::invoke_default_env))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |request, next| {
            refuse_declared_oversize(max_body, request, next)
        }));
    let manage_routes = Router::new()
        .route(
            "/v1/envs/{env}/functions/{name}",
            get(manage::show_function)
                .put(manage::deploy)
                .delete(manage::remove_function),
        )
        .layer(DefaultBodyLimit::max(max_package))
        .layer(axum::middleware::from_fn(move |request, next| {
            refuse_declared_oversize(max_package, request, next)
        }))
        .route("/v1/envs/{env}/functions", get(manage::list_functions))
        .route("/v1/envs/{env}/invocations/{id}", get(manage::show_record))
        .route("/v1/invocations/{id}", get(manage::show_record_default_env))
        .route("/v1/envs", get(manage::list_envs))
        .route("/v1/envs/{env}/keys", post(manage::issue_env_key))
        .route("/v1/status", get(manage::status))
        .route("/healthz", get(manage::health));
    invoke_routes
        .merge(manage_routes)
        .fallback(|| async { ApiError::new(ErrorCode::ResourceNotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::InvalidAction,
                "this route does not accept that method",
            )
        })
        // A panic in a handler answers SYS_ERR rather than dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        // Any answer can be quoted in a report by its request ID.
        .layer(axum::middleware::map_response(ensure_request_id))
        .with_state(app)
}

/// Refuses a request whose declared `Content-Length` is over `limit` before its
/// body is read: a client that waits on `Expect: 100-continue` gets its answer
/// without uploading, and one that declares more than it sends is not waited for.
async fn refuse_declared_oversize(
    limit: usize,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::new(
            ErrorCode::ExceedRequestSizeLimit,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Gives every response an `X-Request-Id`: invocations and errors set their
/// own; reads and deploys get a fresh one, so any answer can be quoted in a report.
async fn ensure_request_id(mut response: axum::response::Response) -> axum::response::Response {
    if !response.headers().contains_key(error::REQUEST_ID_HEADER) {
        let id = cloudlet_core::RequestId::generate();
        if let Ok(value) = axum::http::HeaderValue::from_str(id.as_str()) {
            response
                .headers_mut()
                .insert(error::REQUEST_ID_HEADER, value);
        }
    }
    response
}

/// Serves the API on `listener` until `shutdown` resolves, then stops
/// accepting, lets running invocations finish for up to
/// [`ServerLimits::shutdown_grace`], ends the rest (their records say
/// `FUNCTION_TERMINATED_BY_SHUTDOWN`) and flushes the records.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let engine = app.engine.clone();
    let reaper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            engine.reap_idle();
        }
    });
    listener::serve(listener, app.clone(), router(app.clone()), shutdown).await;
    reaper.abort();
    if let Err(error) = app.records.flush().await {
        tracing::error!(%error, "could not flush invocation records at shutdown");
    }
    Ok(())
}
