//! `cloudlet serve`: the composition root, the one place that chooses the
//! backends (SQLite store, in-process js engine) and wires them into the gateway.
//!
//! Configuration comes from flags, each with a `CLOUDLET_*` environment
//! variable, over the settings of an optional `--config` file
//! (`config_file.rs`), and is validated before any port is opened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use cloudlet_core::EnvId;
use cloudlet_runtime::http::{HttpEngine, HttpEngineOptions};
use cloudlet_runtime::node::{NodeBinary, NodeEngine};
use cloudlet_runtime::{js::JsEngine, EngineLimits};
use cloudlet_server::{
    App, AsyncLimits, AuthPolicy, CallPolicy, Engines, FetchPolicy, NodeRuntimesOn, ServerLimits,
};
use cloudlet_store::tmp::{TmpLimits, TmpObjects};
use cloudlet_store::{sqlite::SqliteOptions, SqliteStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// TOML file of settings, keyed by these flags' long names (for example
    /// `max-body-bytes = 1048576`); flags and CLOUDLET_* variables override it.
    #[arg(long, env = "CLOUDLET_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on. Any address other than loopback needs --admin-key.
    #[arg(long, env = "CLOUDLET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// A second address that serves only the HTTP access service's routes
    /// (`cloudlet routes`), for a public port apart from the API's. The
    /// main listener serves them too.
    #[arg(long, env = "CLOUDLET_ACCESS_LISTEN", value_name = "ADDR")]
    pub access_listen: Option<String>,

    /// Seconds a temporary object (`POST /v1/envs/{env}/tmp`, the SDK's
    /// `cloud.CDN`) is served before it is removed.
    #[arg(long, env = "CLOUDLET_TMP_TTL_SECONDS", default_value_t = 7200)]
    pub tmp_ttl_seconds: u64,

    /// Largest temporary object, in bytes.
    #[arg(long, env = "CLOUDLET_TMP_MAX_OBJECT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub tmp_max_object_bytes: u64,

    /// What one env's temporary objects may hold together, in bytes; past
    /// it, uploads are refused with 507 EXCEED_STORAGE_QUOTA.
    #[arg(long, env = "CLOUDLET_TMP_ENV_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub tmp_env_quota_bytes: u64,

    /// Directory for the database and code packages (created if missing).
    #[arg(long, env = "CLOUDLET_DATA_DIR", default_value = ".cloudlet")]
    pub data_dir: PathBuf,

    /// Key that may deploy, remove and invoke everything (Authorization: Bearer).
    #[arg(long, env = "CLOUDLET_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// Largest invoke request body, in bytes.
    #[arg(long, env = "CLOUDLET_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest deploy body (a zip or tar.gz package), in bytes.
    #[arg(long, env = "CLOUDLET_MAX_PACKAGE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_package_bytes: usize,

    /// Largest function result, as JSON, in bytes.
    #[arg(long, env = "CLOUDLET_MAX_RESULT_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_result_bytes: usize,

    /// Most invocations running at once; past it, 429 EXCEED_CONCURRENT_REQUEST_LIMIT.
    #[arg(
        long,
        env = "CLOUDLET_MAX_CONCURRENT_INVOCATIONS",
        default_value_t = 1024
    )]
    pub max_concurrent_invocations: usize,

    /// Most connections open at once; past it, new ones are answered 503
    /// EXCEED_CONNECTION_LIMIT and closed (default: the file-descriptor limit,
    /// raised to its hard limit at start, less 256 kept for the server's own files).
    #[arg(long, env = "CLOUDLET_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Seconds a client has to send a request's line and headers, counted
    /// from when the connection starts waiting for it.
    #[arg(
        long,
        env = "CLOUDLET_HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10.0
    )]
    pub header_read_timeout_seconds: f64,

    /// Longest pause, in seconds, between two parts of a request body; then 408 REQUEST_TIMEOUT.
    #[arg(
        long,
        env = "CLOUDLET_BODY_READ_TIMEOUT_SECONDS",
        default_value_t = 10.0
    )]
    pub body_read_timeout_seconds: f64,

    /// Seconds a connection without a request in progress stays open.
    #[arg(
        long,
        env = "CLOUDLET_KEEP_ALIVE_TIMEOUT_SECONDS",
        default_value_t = 5.0
    )]
    pub keep_alive_timeout_seconds: f64,

    /// Most bytes of a request's line and headers (at least 8192); past it, 431.
    #[arg(long, env = "CLOUDLET_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Seconds running invocations may take to finish at shutdown (SIGTERM,
    /// Ctrl-C); then they are ended with FUNCTION_TERMINATED_BY_SHUTDOWN.
    #[arg(long, env = "CLOUDLET_SHUTDOWN_GRACE_SECONDS", default_value_t = 10.0)]
    pub shutdown_grace_seconds: f64,

    /// How many calls deep a chain of functions calling functions may go;
    /// the call past it fails with EXCEED_CALL_DEPTH_LIMIT before it runs.
    #[arg(long, env = "CLOUDLET_MAX_CALL_DEPTH", default_value_t = 32)]
    pub max_call_depth: u32,

    /// Lets the functions of an env call functions of other envs, which they
    /// otherwise may not: `ENV=OTHER,OTHER2`, several separated by ';' or
    /// given as repeated flags (`--env-calls prod=shared;edge=EdgeFC`).
    #[arg(long, env = "CLOUDLET_ENV_CALLS", value_delimiter = ';')]
    pub env_calls: Vec<String>,

    /// Largest event of an asynchronous invocation, in bytes; past it, 413.
    #[arg(long, env = "CLOUDLET_MAX_ASYNC_EVENT_BYTES", default_value_t = 256 * 1024)]
    pub max_async_event_bytes: usize,

    /// Most asynchronous invocations one env may have queued; past it,
    /// enqueues are refused with 429 EXCEED_ASYNC_QUEUE_LIMIT.
    #[arg(long, env = "CLOUDLET_MAX_QUEUED_PER_ENV", default_value_t = 100_000)]
    pub max_queued_per_env: u64,

    /// Seconds a worker's lease holds an asynchronous invocation unless
    /// renewed (every third of it, while it runs): how soon the work of a
    /// server that died is taken again after a restart.
    #[arg(long, env = "CLOUDLET_ASYNC_LEASE_SECONDS", default_value_t = 30.0)]
    pub async_lease_seconds: f64,

    /// The zone timer triggers' cron expressions are read in, as an offset
    /// from UTC (`+08:00`, CloudBase's; `-05:00`; `Z` for UTC).
    #[arg(
        long,
        env = "CLOUDLET_TIMER_UTC_OFFSET",
        default_value = "+08:00",
        value_name = "OFFSET",
        allow_hyphen_values = true
    )]
    pub timer_utc_offset: String,

    /// Origins (`https://api.example.com`, `http://10.0.0.5:8080`, or `*`
    /// for any) that `fetch` in the js engine may reach, several separated
    /// by ',' or given as repeated flags. Without it, the js engine's
    /// `fetch` reads this server's temporary objects only.
    #[arg(
        long,
        env = "CLOUDLET_JS_FETCH_ALLOW",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub js_fetch_allow: Vec<String>,

    /// Most bytes of one answer's body that the js engine's `fetch` takes
    /// from an allowed origin; past it, the `fetch` fails.
    #[arg(
        long,
        env = "CLOUDLET_JS_FETCH_MAX_RESPONSE_BYTES",
        default_value_t = 16 * 1024 * 1024
    )]
    pub js_fetch_max_response_bytes: usize,

    /// Most instances (busy and idle) of one function version.
    #[arg(
        long,
        env = "CLOUDLET_MAX_INSTANCES_PER_FUNCTION",
        default_value_t = 64
    )]
    pub max_instances_per_function: usize,

    /// Console output kept per invocation, in bytes; the rest is dropped and marked.
    #[arg(long, env = "CLOUDLET_MAX_LOG_BYTES", default_value_t = 1024 * 1024)]
    pub max_log_bytes: usize,

    /// Seconds an idle instance is kept warm.
    #[arg(long, env = "CLOUDLET_IDLE_INSTANCE_SECONDS", default_value_t = 600)]
    pub idle_instance_seconds: u64,

    /// Days invocation records are kept.
    #[arg(long, env = "CLOUDLET_RECORD_RETENTION_DAYS", default_value_t = 7)]
    pub record_retention_days: u64,

    /// Most disk the invocation records may take (the database and its WAL),
    /// in bytes; past it the oldest records are deleted first, and the space
    /// given back to the file system. 0: no limit.
    #[arg(long, env = "CLOUDLET_RECORDS_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub records_max_bytes: u64,

    /// Function code that runs past 10 ms continues on a thread of its own
    /// below the request-serving workers' priority; at most this many run at
    /// once and the rest wait their turn (default: one per CPU, one fewer
    /// where the process may not lower a thread's priority and restore it).
    #[arg(long, env = "CLOUDLET_LONG_RUNNING_THREADS")]
    pub long_running_threads: Option<usize>,

    /// Bytes all function instances together may hold, as their heaps are
    /// counted (default: half the machine's or the cgroup's memory). Past it,
    /// idle instances are evicted, then new invocations wait briefly and are
    /// refused with 503 EXCEED_MEMORY_BUDGET.
    #[arg(long, env = "CLOUDLET_MEMORY_BUDGET_BYTES")]
    pub memory_budget_bytes: Option<usize>,

    /// Where functions whose runtime names Node.js (`Nodejs18.15`, `nodejs20.x`)
    /// run: `node`, real Node.js processes where `node` is found (else the js
    /// engine, with a warning); `js`, the in-process js engine, on purpose.
    #[arg(long, env = "CLOUDLET_NODE_RUNTIMES_ON", value_enum, default_value_t = NodeRuntimes::Node)]
    pub node_runtimes_on: NodeRuntimes,

    /// The `node` the node engine runs (default: `node` on PATH; Node.js 18
    /// or later). Without one, functions with Node runtimes run on the js engine.
    #[arg(long, env = "CLOUDLET_NODE", value_name = "PATH")]
    pub node: Option<PathBuf>,

    /// Seconds an HTTP function's server (started by its scf_bootstrap) has to
    /// accept connections; then FUNCTION_STATUS_ABNORMAL with its last output.
    #[arg(
        long,
        env = "CLOUDLET_HTTP_STARTUP_TIMEOUT_SECONDS",
        default_value_t = 10.0
    )]
    pub http_startup_timeout_seconds: f64,

    /// Tokio worker threads (default: one per CPU).
    #[arg(long, env = "CLOUDLET_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// Echo every invocation's console output to this server's log.
    #[arg(long, env = "CLOUDLET_PRINT_FUNCTION_LOGS")]
    pub print_function_logs: bool,
}

/// The `node` of `--node` or `PATH`, if it is recent enough; without one the
/// server says so.
async fn find_node(args: &ServeArgs) -> Option<NodeBinary> {
    match NodeBinary::find(args.node.as_deref()).await {
        Ok(node) => Some(node),
        Err(reason) => {
            tracing::warn!(
                "no node engine: {reason}; functions with Node.js runtimes run on the js engine"
            );
            None
        }
    }
}

/// The node engine, where a `node` was found: its workers live under the
/// data dir, and a few start warm at once. Without one, Node runtimes run on
/// the js engine.
async fn node_engine(
    args: &ServeArgs,
    node: Option<NodeBinary>,
    limits: &EngineLimits,
) -> Option<Arc<dyn cloudlet_runtime::Engine>> {
    let node = node?;
    let engine = match NodeEngine::new(node.clone(), &args.data_dir.join("node"), limits.clone()) {
        Ok(engine) => Arc::new(engine),
        Err(error) => {
            tracing::warn!(%error, "no node engine: cannot prepare its directory");
            return None;
        }
    };
    tracing::info!(node = %node.path.display(), version = %node.version, "node engine");
    let warming = engine.clone();
    tokio::spawn(async move { warming.prewarm().await });
    Some(engine)
}

/// `--node-runtimes-on`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRuntimes {
    Node,
    Js,
}

/// A server that is listening.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    store: Arc<SqliteStore>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until Ctrl-C or SIGTERM, then shuts down gracefully.
    pub async fn wait(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }

    /// Stops accepting, lets in-flight requests finish, and flushes records.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("the server task failed")??;
        let store = self.store;
        tokio::task::spawn_blocking(move || store.close())
            .await
            .context("closing the store failed")??;
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// A duration flag given in seconds: positive and finite.
fn seconds(flag: &str, value: f64) -> anyhow::Result<std::time::Duration> {
    anyhow::ensure!(
        value.is_finite() && value > 0.0 && value <= 86_400.0,
        "{flag} must be a number of seconds above 0 and at most 86400"
    );
    Ok(std::time::Duration::from_secs_f64(value))
}

/// File descriptors the server keeps for itself beyond connections: the
/// database and its WAL, packages being read, the runtime's own.
const RESERVED_FILES: u64 = 256;

/// `--timer-utc-offset` in seconds east of UTC: `Z`, or `±HH:MM` up to 14 hours.
fn utc_offset(text: &str) -> Result<i64, String> {
    let bad = || format!("--timer-utc-offset {text:?}: an offset is Z or ±HH:MM, such as +08:00");
    if text.eq_ignore_ascii_case("z") {
        return Ok(0);
    }
    let (sign, rest) = match text.split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err(bad()),
    };
    let (hours, minutes) = rest.split_once(':').ok_or_else(bad)?;
    let hours: i64 = hours.parse().map_err(|_| bad())?;
    let minutes: i64 = minutes.parse().map_err(|_| bad())?;
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

/// `--env-calls` as the envs each env's functions may call.
fn cross_env_calls(entries: &[String]) -> Result<HashMap<EnvId, Vec<EnvId>>, String> {
    let mut allowed: HashMap<EnvId, Vec<EnvId>> = HashMap::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let (from, to) = entry
            .split_once('=')
            .ok_or_else(|| format!("--env-calls {entry:?}: expected ENV=OTHER[,OTHER…]"))?;
        let env = |name: &str| {
            EnvId::parse(name.trim()).map_err(|e| format!("--env-calls {entry:?}: {e}"))
        };
        let targets = to.split(',').map(env).collect::<Result<Vec<_>, _>>()?;
        allowed.entry(env(from)?).or_default().extend(targets);
    }
    Ok(allowed)
}

/// Raises the soft limit on open files to the hard limit (the default soft
/// limit of 1024 would run out long before memory does) and derives the
/// connection limit from it.
fn connections_for_open_files() -> usize {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => files,
        Err(error) => {
            tracing::warn!(%error, "cannot raise the limit on open files");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let connections = files.saturating_sub(RESERVED_FILES).max(64);
    usize::try_from(connections).unwrap_or(usize::MAX)
}

/// Binds `--access-listen` and says where on stdout, after the API's line.
async fn bind_access(access: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = resolve("--access-listen", access).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "cloudlet access service on http://{addr}")?;
    stdout.flush()?;
    Ok(listener)
}

/// The address a listening flag names.
async fn resolve(flag: &str, listen: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(listen)
        .await
        .with_context(|| format!("{flag} {listen:?} is not an address"))?
        .next()
        .with_context(|| format!("{flag} {listen:?} resolves to no address"))
}

/// Validates the configuration, opens the store, binds the listener, prints
/// `cloudlet listening on http://ADDR` on stdout, and starts serving.
pub async fn start(args: ServeArgs) -> anyhow::Result<RunningServer> {
    if let Some(config) = &args.config {
        tracing::info!(config = %config.display(), "settings read from a config file");
    }
    let addr = resolve("--listen", &args.listen).await?;
    let auth =
        AuthPolicy::for_listener(addr, args.admin_key.as_deref()).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        args.max_instances_per_function > 0,
        "--max-instances-per-function must be at least 1"
    );
    anyhow::ensure!(
        args.max_concurrent_invocations > 0,
        "--max-concurrent-invocations must be at least 1"
    );
    anyhow::ensure!(
        args.max_header_bytes >= 8192,
        "--max-header-bytes must be at least 8192"
    );
    anyhow::ensure!(
        args.max_connections != Some(0),
        "--max-connections must be at least 1"
    );
    anyhow::ensure!(
        args.long_running_threads != Some(0),
        "--long-running-threads must be at least 1"
    );
    let js_fetch = FetchPolicy::parse(&args.js_fetch_allow, args.js_fetch_max_response_bytes)
        .map_err(anyhow::Error::msg)?;

    let data_dir = args.data_dir.clone();
    let retention = std::time::Duration::from_secs(args.record_retention_days * 86_400);
    let records_max_bytes = args.records_max_bytes;
    let store = tokio::task::spawn_blocking(move || {
        let options = SqliteOptions {
            record_retention: Some(retention),
            record_max_bytes: (records_max_bytes > 0).then_some(records_max_bytes),
            ..SqliteOptions::default()
        };
        SqliteStore::open(&data_dir, options)
    })
    .await
    .context("opening the store failed")?
    .with_context(|| format!("cannot open the data dir {}", args.data_dir.display()))?;
    let store = Arc::new(store);

    let limits_for_engines = EngineLimits {
        max_instances_per_function: args.max_instances_per_function,
        max_log_bytes_per_invocation: args.max_log_bytes,
        max_result_bytes: args.max_result_bytes,
        idle_instance_ttl: std::time::Duration::from_secs(args.idle_instance_seconds),
        long_running_threads: args.long_running_threads,
        memory_budget_bytes: args
            .memory_budget_bytes
            .unwrap_or_else(cloudlet_runtime::default_memory_budget),
    };
    let engine = Arc::new(JsEngine::new(limits_for_engines.clone()));
    let limits = ServerLimits {
        max_body_bytes: args.max_body_bytes,
        max_package_bytes: args.max_package_bytes,
        max_concurrent_invocations: args.max_concurrent_invocations,
        max_connections: args
            .max_connections
            .unwrap_or_else(connections_for_open_files),
        header_read_timeout: seconds(
            "--header-read-timeout-seconds",
            args.header_read_timeout_seconds,
        )?,
        body_read_timeout: seconds(
            "--body-read-timeout-seconds",
            args.body_read_timeout_seconds,
        )?,
        keep_alive_timeout: seconds(
            "--keep-alive-timeout-seconds",
            args.keep_alive_timeout_seconds,
        )?,
        max_header_bytes: args.max_header_bytes,
        shutdown_grace: seconds("--shutdown-grace-seconds", args.shutdown_grace_seconds)?,
        calls: CallPolicy {
            max_depth: args.max_call_depth,
            cross_env: cross_env_calls(&args.env_calls).map_err(anyhow::Error::msg)?,
        },
        tmp: TmpLimits {
            max_object_bytes: args.tmp_max_object_bytes,
            env_quota_bytes: args.tmp_env_quota_bytes,
            ttl: std::time::Duration::from_secs(args.tmp_ttl_seconds.max(1)),
        },
        timer_utc_offset_seconds: utc_offset(&args.timer_utc_offset).map_err(anyhow::Error::msg)?,
        asynchronous: AsyncLimits {
            max_event_bytes: args.max_async_event_bytes,
            max_queued_per_env: args.max_queued_per_env,
            max_per_function: u32::try_from(args.max_instances_per_function).unwrap_or(u32::MAX),
            lease: seconds("--async-lease-seconds", args.async_lease_seconds)?,
        },
    };
    let node_runtimes_on = match args.node_runtimes_on {
        NodeRuntimes::Node => NodeRuntimesOn::Node,
        NodeRuntimes::Js => NodeRuntimesOn::Js,
    };
    let node = find_node(&args).await;
    let http = HttpEngine::new(
        &args.data_dir.join("http"),
        limits_for_engines.clone(),
        HttpEngineOptions {
            startup_timeout: seconds(
                "--http-startup-timeout-seconds",
                args.http_startup_timeout_seconds,
            )?,
            node: node.clone(),
        },
    )
    .context("cannot prepare the HTTP engine's directory")?;
    let node = node_engine(&args, node, &limits_for_engines).await;
    let engines = Engines::new(engine, node, node_runtimes_on).with_http(Arc::new(http));
    tracing::info!(engines = ?engines.names(), "engines");
    let app = App::new(
        store.clone(),
        store.clone(),
        engines,
        auth,
        limits,
        args.print_function_logs,
    );
    let tmp = args.data_dir.join("tmp");
    let objects = tokio::task::spawn_blocking(move || TmpObjects::open(&tmp))
        .await
        .context("opening temporary storage failed")?
        .context("cannot open the temporary objects' folder")?;
    app.keep_tmp_objects(objects);
    if !args.js_fetch_allow.is_empty() {
        app.allow_js_fetch(js_fetch);
    }
    app.keep_invocation_queue(store.clone());

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "cloudlet listening on http://{addr}")?;
        stdout.flush()?;
    }
    let access = match &args.access_listen {
        Some(access) => Some(bind_access(access).await?),
        None => None,
    };
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "serving");
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(cloudlet_server::serve_with_access(
        listener,
        access,
        app,
        async {
            let _ = signal.await;
        },
    ));
    Ok(RunningServer {
        addr,
        shutdown,
        task,
        store,
    })
}

#[cfg(test)]
mod tests {
    use super::utc_offset;

    #[test]
    fn an_offset_reads_as_seconds_east_of_utc() {
        assert_eq!(utc_offset("+08:00"), Ok(8 * 3600));
        assert_eq!(utc_offset("-05:30"), Ok(-(5 * 3600 + 30 * 60)));
        assert_eq!(utc_offset("Z"), Ok(0));
        for bad in ["8", "+8", "+15:00", "+08:60", "UTC+8"] {
            assert!(utc_offset(bad).is_err(), "{bad}");
        }
    }
}
