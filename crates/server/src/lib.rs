//! Cloudlet's HTTP gateway.
//!
//! [`router`] builds the native API (see `docs/api.md`) over an [`App`]: the
//! stores, the engine, the auth policy and the limits. The request path of an
//! invocation is `invoke::invoke_in_env`: auth → body limit and JSON check →
//! [`registry`] lookup of the current version → `Engine::invoke` → record
//! submitted to the batched record store → response. Errors of every route
//! become responses in one place, [`error::ApiError`].

mod auth;
mod error;
mod invoke;
mod manage;
mod registry;

use std::future::Future;
use std::sync::atomic::AtomicUsize;
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
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 6 * 1024 * 1024,
            max_package_bytes: 64 * 1024 * 1024,
            max_concurrent_invocations: 1024,
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
        })
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
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
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

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting,
/// lets in-flight requests finish and flushes the records.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let engine = app.engine.clone();
    let reaper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            engine.reap_idle();
        }
    });
    // Nagle's algorithm would hold small responses back for up to 40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    reaper.abort();
    if let Err(error) = app.records.flush().await {
        tracing::error!(%error, "could not flush invocation records at shutdown");
    }
    result
}
