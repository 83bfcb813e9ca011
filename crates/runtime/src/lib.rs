//! Engines: what runs function code.
//!
//! An [`Engine`] takes a [`DeployedFunction`] and an [`InvocationRequest`] and
//! returns an [`InvocationOutcome`]: the result (JSON, or a stream of chunks)
//! or the function's error, its captured logs, and whether it ran cold. How it runs the code is its own
//! business: the [`js::JsEngine`] runs CommonJS functions on QuickJS inside this
//! process, the [`node::NodeEngine`] in Node.js worker processes, and the
//! [`http::HttpEngine`] proxies HTTP functions' requests to the web servers
//! their `scf_bootstrap` starts.
//!
//! Engines own their instance pools and enforce the function's limits
//! (deadline, memory) whatever the code does. Platform-side refusals, such as a
//! function already running its maximum number of instances, are an
//! [`EngineError`]; everything the function's code or limits caused is in the
//! outcome.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cloudlet_core::{EnvId, ErrorCode, FunctionConfig, FunctionName, Package, VersionId};

mod calls;
mod folder;
mod heap_meter;
pub mod http;
mod invocation;
pub mod js;
mod machine;
pub mod node;
mod sse;

pub use calls::{
    CallAnswer, CallMode, CallRefused, CallRequest, EnvChoice, FetchRequest, FetchResponse,
    FunctionCall, FunctionCalls, Publication, Published,
};
pub use heap_meter::HeapMeter;
pub use invocation::{
    BodyEnd, BoxError, Caller, ClientBodyError, Event, HttpRequest, Identity, InvocationOutcome,
    InvocationRequest, Origin, Output, RequestBody, ResponseBody, ResponseStream, StreamEnd,
};
pub use machine::default_memory_budget;

/// One deployed version of one function, ready to run.
#[derive(Debug)]
pub struct DeployedFunction {
    pub env: EnvId,
    pub name: FunctionName,
    pub version: VersionId,
    pub config: FunctionConfig,
    pub package: Arc<Package>,
}

impl DeployedFunction {
    /// The variables SCF gives every function, in both engines: its env
    /// (`SCF_NAMESPACE`, and `TCB_ENV`, which the CloudBase SDKs read), its
    /// name and its version. The function's own `envVariables` win.
    pub fn scf_variables(&self) -> [(&'static str, &str); 4] {
        [
            ("SCF_NAMESPACE", self.env.as_str()),
            ("TCB_ENV", self.env.as_str()),
            ("SCF_FUNCTIONNAME", self.name.as_str()),
            ("SCF_FUNCTIONVERSION", self.version.short()),
        ]
    }

    pub fn new(env: EnvId, name: FunctionName, package: Arc<Package>) -> Self {
        Self {
            env,
            name,
            version: package.version().clone(),
            config: package.config().clone(),
            package,
        }
    }
}

/// A platform-side refusal: the function's code never ran.
#[derive(Debug, Clone)]
pub struct EngineError {
    pub code: ErrorCode,
    pub message: String,
}

/// Limits an engine applies to every function.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Most instances one function version may have at once (busy and idle).
    pub max_instances_per_function: usize,
    /// Bytes of `console` output kept per invocation; the rest is dropped and marked.
    pub max_log_bytes_per_invocation: usize,
    /// Largest result, as JSON text, a function may return.
    pub max_result_bytes: usize,
    /// An instance idle for this long is discarded.
    pub idle_instance_ttl: Duration,
    /// Threads that run long stretches of function code at once, below the
    /// request-serving workers' priority; other long stretches wait for one.
    /// `None`: one per core (one fewer where the process may not lower a
    /// thread's priority and restore it).
    pub long_running_threads: Option<usize>,
    /// What all instances together may hold (their heaps as counted, not
    /// their declared `memorySize`); past it, idle instances are evicted and
    /// new invocations wait briefly, then are refused.
    pub memory_budget_bytes: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_instances_per_function: 64,
            max_log_bytes_per_invocation: 1024 * 1024,
            max_result_bytes: 6 * 1024 * 1024,
            idle_instance_ttl: Duration::from_secs(600),
            long_running_threads: None,
            memory_budget_bytes: default_memory_budget(),
        }
    }
}

/// What an engine's instances hold, for `cloudlet status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineUsage {
    /// Instances alive, busy or idle.
    pub instances: usize,
    /// Bytes they hold together, as counted against the memory budget.
    pub memory_held_bytes: usize,
    /// The memory budget.
    pub memory_budget_bytes: usize,
}

/// Runs function code. One engine serves every function that names it.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A short name for records and logs (`js`).
    fn name(&self) -> &'static str;

    async fn invoke(
        &self,
        function: &Arc<DeployedFunction>,
        request: InvocationRequest,
    ) -> Result<InvocationOutcome, EngineError>;

    /// Makes a newly deployed function ready to run, before it becomes
    /// current (the node engine installs its npm dependencies). A refusal
    /// fails the deploy.
    async fn prepare(&self, _function: &Arc<DeployedFunction>) -> Result<(), EngineError> {
        Ok(())
    }

    /// Drops the idle instances of every version of `name` other than `keep`
    /// (all of them when `keep` is `None`); busy ones are dropped when they finish.
    fn retire(&self, env: &EnvId, name: &FunctionName, keep: Option<&VersionId>);

    /// The engine's own background work: discarding instances idle for
    /// longer than the idle TTL. The server runs it while it serves and drops
    /// it when it stops; it never returns.
    async fn background(&self);

    /// What the engine's instances hold now.
    fn usage(&self) -> EngineUsage;

    /// Ends every invocation still running, now: the server's shutdown grace
    /// period is over. They report `FUNCTION_TERMINATED_BY_SHUTDOWN`, and
    /// invocations started afterwards end at once the same way.
    fn end_running(&self);

    /// Stops whatever the engine runs outside this process (a process engine's
    /// children), once the server has finished serving: nothing it started
    /// is left running.
    async fn shutdown(&self) {}
}

/// Refuses an HTTP function's request in an engine that calls handlers with
/// events: the invocation service sends it only to the HTTP engine, so this
/// guards the engines' own callers (tests, benchmarks).
pub(crate) fn events_only(request: &InvocationRequest) -> Result<(), EngineError> {
    match request.event {
        Event::Http(_) => Err(EngineError {
            code: ErrorCode::InvalidFunctionType,
            message: "this engine calls handlers with events; HTTP requests go to HTTP functions"
                .to_owned(),
        }),
        _ => Ok(()),
    }
}

/// How often an engine looks for idle instances to discard: often enough that
/// none outlives its TTL by more than a tenth of it, within bounds.
pub(crate) fn reap_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Calls `reap` every [`reap_interval`], forever: an engine's `background`.
pub(crate) async fn reap_forever(ttl: Duration, reap: impl Fn()) {
    let mut tick = tokio::time::interval(reap_interval(ttl));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        reap();
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EngineError {}
