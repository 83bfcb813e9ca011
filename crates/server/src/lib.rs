//! Cloudlet's HTTP gateway.
//!
//! The request path: [`serve`] runs the listener (`listener.rs`, each
//! connection in `connection.rs`) → `service()`, the routers with their
//! layers → the protocol router, which only parses and renders
//! (`api/native/`, `api/tcb/`, the access service's `api/access/`) → the invocation service ([`Invoker`], `invoker/`), which
//! resolves the function, holds the limits, calls the engine and writes the
//! record. Errors become the native API's wire form in one place,
//! `api/native/error.rs`.

mod api;
mod auth;
mod body_timeout;
mod connection;
mod engines;
mod invoker;
mod listener;
mod registry;
mod timers;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::Response;
use bytes::Bytes;
use cloudlet_store::invocation_queue::InvocationQueue;
use cloudlet_store::tmp::{TmpLimits, TmpObjects};
use cloudlet_store::{FunctionStore, RecordStore};

pub use api::native::error::ApiError;
pub use auth::{AuthPolicy, Credential};
pub use engines::{Engines, NodeRuntimesOn};
pub use invoker::{
    AsyncLimits, CallPolicy, FetchPolicy, Invocation, InvokeContext, InvokeError, Invoker, Target,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    /// How deep chains of functions calling functions go, and which envs'
    /// functions may call which other envs'.
    pub calls: CallPolicy,
    /// Temporary objects' size, per-env quota and lifetime.
    pub tmp: TmpLimits,
    /// Asynchronous events' size and each env's queue.
    pub asynchronous: AsyncLimits,
    /// The zone timer triggers' cron expressions are read in, in seconds
    /// east of UTC (CloudBase's: UTC+8).
    pub timer_utc_offset_seconds: i64,
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
            calls: CallPolicy::default(),
            tmp: TmpLimits::default(),
            asynchronous: AsyncLimits::default(),
            timer_utc_offset_seconds: 8 * 3600,
        }
    }
}

/// Everything the handlers share: the invocation service, the stores the
/// management routes read, and the limits.
pub struct App {
    pub(crate) invoker: Arc<Invoker>,
    pub(crate) functions: Arc<dyn FunctionStore>,
    pub(crate) records: Arc<dyn RecordStore>,
    pub(crate) limits: ServerLimits,
    /// Each env's CORS settings, as the invoke routes apply them.
    pub(crate) cors: api::native::cors::CorsPolicies,
    /// The access service's routes, loaded from the store when serving starts.
    pub(crate) routes: api::access::RouteTable,
}

impl App {
    pub fn new(
        functions: Arc<dyn FunctionStore>,
        records: Arc<dyn RecordStore>,
        engines: Engines,
        auth: AuthPolicy,
        limits: ServerLimits,
        print_function_logs: bool,
    ) -> Arc<Self> {
        let invoker = Invoker::new(
            functions.clone(),
            records.clone(),
            engines,
            auth,
            limits.max_concurrent_invocations,
            print_function_logs,
            limits.calls.clone(),
        );
        Arc::new(Self {
            invoker,
            functions,
            records,
            limits,
            cors: Default::default(),
            routes: Default::default(),
        })
    }

    /// Runs asynchronous invocations through `queue` (set once, before
    /// serving); without it they are refused.
    pub fn keep_invocation_queue(&self, queue: Arc<dyn InvocationQueue>) {
        let limits = self.limits.asynchronous.clone();
        self.invoker.keep_invocation_queue(queue, limits);
    }

    /// Keeps temporary objects in `objects` (set once, before serving);
    /// without it the temporary-storage routes answer 404.
    pub fn keep_tmp_objects(&self, objects: TmpObjects) {
        self.invoker.keep_tmp_objects(Arc::new(objects));
    }

    /// Lets the js engine's `fetch` reach the origins `policy` allows (set
    /// once, before serving); without it, `fetch` reads temporary objects
    /// only.
    pub fn allow_js_fetch(&self, policy: FetchPolicy) {
        self.invoker.allow_js_fetch(policy);
    }
}

/// A listener's router (the native API, the TCB admin protocol and the
/// access service's routes, `api::router`; or the access service alone)
/// with the layers every request passes, one per line, outermost first.
/// Layered around the whole router rather than with `Router::layer`, which
/// wraps (and clones, per request) every route.
fn service<S>(
    inner: S,
) -> impl tower::Service<
    Request,
    Response = Response<
        impl http_body::Body<Data = Bytes, Error = impl Into<BoxError>> + Send + 'static,
    >,
    Error = Infallible,
    Future = impl Future + Send + 'static,
> + Clone
       + Send
       + 'static
where
    S: tower::Service<Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
    let request_id = api::native::error::REQUEST_ID_HEADER;
    tower::ServiceBuilder::new()
        // A request without an ID gets a time-ordered one, so that any answer,
        // and its log lines, can be quoted in a report.
        .layer(SetRequestIdLayer::new(
            request_id.clone(),
            api::MakeRequestId,
        ))
        // A span per request names its ID in the server's log (the
        // invocation service logs what happens; nothing more per response).
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(api::request_span)
                .on_request(())
                .on_response(())
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        // Every answer carries the ID it was given.
        .layer(PropagateRequestIdLayer::new(request_id))
        // A panic in a handler answers SYS_ERR rather than dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            api::native::error::panic_response,
        ))
        .service(inner)
}

/// How often expired temporary objects are removed.
const TMP_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Removes expired temporary objects every [`TMP_SWEEP_INTERVAL`], while serving.
async fn sweep_tmp_objects(objects: Arc<TmpObjects>) {
    let mut tick = tokio::time::interval(TMP_SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = objects.sweep().await {
            tracing::warn!(%error, "cannot sweep temporary objects");
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves; see [`serve_with_access`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_access(listener, None, app, shutdown).await
}

/// Serves the API (and the access service's routes) on `listener`, and the
/// access service alone on `access` (`--access-listen`), until `shutdown`
/// resolves; then stops accepting, lets running invocations finish for up
/// to [`ServerLimits::shutdown_grace`], ends the rest (their records say
/// `FUNCTION_TERMINATED_BY_SHUTDOWN`) and flushes the records.
pub async fn serve_with_access(
    listener: tokio::net::TcpListener,
    access: Option<tokio::net::TcpListener>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    app.routes
        .load(app.functions.as_ref())
        .await
        .map_err(std::io::Error::other)?;
    let mut background: Vec<_> = app
        .invoker
        .engines()
        .all()
        .cloned()
        .map(|engine| tokio::spawn(async move { engine.background().await }))
        .collect();
    if let Some(objects) = app.invoker.tmp_objects() {
        background.push(tokio::spawn(sweep_tmp_objects(Arc::clone(objects))));
    }
    if let Ok(addr) = listener.local_addr() {
        app.invoker.set_endpoint(addr);
    }
    // One shutdown for both listeners and the queue's worker.
    let stop = tokio_util::sync::CancellationToken::new();
    background.push(tokio::spawn(invoker::run_queue(
        Arc::clone(&app.invoker),
        stop.clone(),
    )));
    background.push(tokio::spawn(timers::run_timers(
        Arc::clone(&app.invoker),
        Arc::clone(&app.functions),
        app.limits.timer_utc_offset_seconds,
        stop.clone(),
    )));
    let stopping = stop.clone();
    let signal = tokio::spawn(async move {
        shutdown.await;
        stopping.cancel();
    });
    let api = listener::serve(
        listener,
        app.clone(),
        service(api::router(app.clone())),
        stop.clone().cancelled_owned(),
    );
    let access = async {
        if let Some(access) = access {
            let routes = service(api::access::router(app.clone()));
            listener::serve(access, app.clone(), routes, stop.clone().cancelled_owned()).await;
        }
    };
    tokio::join!(api, access);
    signal.abort();
    for task in background {
        task.abort();
    }
    for engine in app.invoker.engines().all() {
        engine.shutdown().await;
    }
    if let Err(error) = app.records.flush().await {
        tracing::error!(%error, "could not flush invocation records at shutdown");
    }
    Ok(())
}
