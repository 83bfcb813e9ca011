//! The invocation service: one path from every front door to a function.
//!
//! A protocol router (the native API now; the TCB admin protocol, HTTP
//! functions, Lambda and FC next) parses its request into a [`Target`], an
//! event and an [`InvokeContext`], calls [`Invoker::invoke`], and renders the
//! [`Invocation`] or the [`InvokeError`] in its own wire form. Everything in
//! between happens here, whatever the protocol: the auth decision on the
//! credential the router extracted ([`Invoker::authorize`], whose [`Access`]
//! `invoke` requires), resolving the version to run, the event's
//! checks, the server-wide concurrency limit, the deadline, the engine call
//! and the record.

mod asynchronous;
mod chain;
mod event;
mod outbound;
mod publish;
mod record;
mod stream;
mod temporary;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use cloudlet_core::{
    EnvId, ErrorCode, FunctionError, FunctionName, InvocationRef, LogLine, RequestId, VersionId,
};
use cloudlet_core::{FunctionInfo, FunctionKind, RouteAuth};
use cloudlet_runtime::{
    DeployedFunction, Engine, Event, FunctionCalls, InvocationOutcome, InvocationRequest, Origin,
    Output, ResponseStream,
};
use cloudlet_store::invocation_queue::InvocationQueue;
use cloudlet_store::tmp::TmpObjects;
use cloudlet_store::{FunctionStore, RecordStore, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::auth::{Access, AuthPolicy, Credential};
use crate::engines::Engines;
use crate::registry::{Installed, Registry};
use record::{Abandoned, Accepted, Ran};

pub use asynchronous::AsyncLimits;
pub(crate) use asynchronous::{run_queue, AppliedSettings};
pub use chain::CallPolicy;
pub(crate) use chain::{is_invocation_credential, ChainLink, Credentials};
pub use outbound::FetchPolicy;

/// Why the service refused or could not run an invocation: a stable code
/// (which each protocol maps to its wire form) and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    pub code: ErrorCode,
    pub message: String,
}

impl InvokeError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A storage fault: logged in full, reported as `SYS_ERR`.
    pub fn storage(error: StoreError) -> Self {
        tracing::error!(%error, "storage failure");
        Self::new(ErrorCode::SysErr, "the store failed; see the server log")
    }
}

/// An engine's refusal reaches the caller as it is.
impl From<cloudlet_runtime::EngineError> for InvokeError {
    fn from(error: cloudlet_runtime::EngineError) -> Self {
        Self::new(error.code, error.message)
    }
}

/// The function an invocation is for, in an env the caller may use.
#[derive(Debug, Clone)]
pub struct Target {
    pub access: Access,
    pub name: FunctionName,
    pub qualifier: Qualifier,
}

/// Which version of the function runs (CloudBase's `X-Qualifier`, Lambda's
/// `Qualifier`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Qualifier {
    /// The current version.
    #[default]
    Latest,
    /// A version the function has had, by full or 12-character ID.
    Version(String),
}

impl Qualifier {
    /// `$LATEST` (the clouds' word) or nothing is the current version;
    /// anything else names a version.
    pub fn parse(qualifier: &str) -> Self {
        match qualifier.trim() {
            "" | "$LATEST" => Self::Latest,
            version => Self::Version(version.to_owned()),
        }
    }
}

/// What the front door knows of the invocation beyond its target and event.
#[derive(Debug, Clone)]
pub struct InvokeContext {
    pub request_id: RequestId,
    /// What started it, as the record names it (`http`, `cli`, `call`, …).
    pub trigger: String,
    /// Who it acts for, and the invocation that made it when a function
    /// called it.
    pub origin: Origin,
    /// An instant it must end by even if its function's timeout is later:
    /// its caller's deadline, when a function waits for it.
    pub deadline: Option<Instant>,
    /// The caller takes server-sent events (`Accept: text/event-stream`),
    /// so the function's `context.sse()` may answer with them.
    pub accepts_event_stream: bool,
    /// The event is JSON Cloudlet wrote itself (the access service's
    /// integration request), which the service need not check again.
    pub event_written_by_cloudlet: bool,
    /// For an attempt of an asynchronous invocation, the attempts before
    /// it, which its record lists with it.
    pub(crate) earlier_attempts: Option<Vec<cloudlet_core::Attempt>>,
}

impl InvokeContext {
    /// An invocation from outside any chain, for no one in particular.
    pub fn new(request_id: RequestId, trigger: impl Into<String>) -> Self {
        Self {
            request_id,
            trigger: trigger.into(),
            origin: Origin::default(),
            deadline: None,
            accepts_event_stream: false,
            event_written_by_cloudlet: false,
            earlier_attempts: None,
        }
    }
}

/// An answered invocation: the function's output or its error.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: RequestId,
    /// The version that ran.
    pub version: VersionId,
    /// The result as JSON text, a response that is still streaming, or the
    /// function's error.
    pub result: Result<Output, FunctionError>,
}

/// The invocation service. See the module documentation.
pub struct Invoker {
    /// Itself, for the calls its invocations make (`chain.rs`), which must
    /// not keep it alive.
    me: Weak<Invoker>,
    functions: Arc<dyn FunctionStore>,
    records: Arc<dyn RecordStore>,
    engines: Engines,
    auth: AuthPolicy,
    registry: Registry,
    /// One permit per invocation running; past them, 429.
    running: Arc<Semaphore>,
    max_running: usize,
    /// Echo each invocation's console output to this server's log (`cloudlet dev`).
    print_function_logs: bool,
    /// Set once the server shuts down: new invocations are refused.
    stopping: AtomicBool,
    /// How deep chains of calls go, and which envs may call which.
    calls: CallPolicy,
    /// The credentials of running invocations, for SDKs calling over HTTP.
    credentials: Credentials,
    /// Where SDKs in function processes reach this server, once it listens.
    endpoint: OnceLock<String>,
    /// Temporary objects (`cloud.CDN()` fields), when the server keeps them:
    /// the js engine's `fetch` reads them here.
    tmp: OnceLock<Arc<TmpObjects>>,
    /// The origins the js engine's `fetch` may reach, when the server
    /// allows any.
    outbound: OnceLock<outbound::Outbound>,
    /// Where asynchronous invocations wait, when the server runs them.
    async_queue: OnceLock<asynchronous::Queue>,
    /// Wakes the queue's worker when an invocation was accepted.
    queued_work: tokio::sync::Notify,
    /// Functions' own asynchronous settings, as the store keeps them.
    own_async_settings: asynchronous::OwnSettings,
    /// Each env's subscribers to published messages.
    subscriptions: publish::Subscriptions,
    /// Tells the timers (`timers.rs`) that a deploy or a removal may have
    /// changed their schedule.
    pub(crate) timers_changed: tokio::sync::Notify,
}

impl Invoker {
    pub fn new(
        functions: Arc<dyn FunctionStore>,
        records: Arc<dyn RecordStore>,
        engines: Engines,
        auth: AuthPolicy,
        max_running: usize,
        print_function_logs: bool,
        calls: CallPolicy,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            functions,
            records,
            engines,
            auth,
            registry: Registry::default(),
            running: Arc::new(Semaphore::new(max_running)),
            max_running,
            print_function_logs,
            stopping: AtomicBool::new(false),
            calls,
            credentials: Credentials::default(),
            endpoint: OnceLock::new(),
            tmp: OnceLock::new(),
            outbound: OnceLock::new(),
            async_queue: OnceLock::new(),
            queued_work: tokio::sync::Notify::new(),
            own_async_settings: asynchronous::OwnSettings::default(),
            subscriptions: publish::Subscriptions::default(),
            timers_changed: tokio::sync::Notify::new(),
        })
    }

    /// Runs asynchronous invocations through `queue` under `limits` (set
    /// once, before serving).
    pub(crate) fn keep_invocation_queue(
        &self,
        queue: Arc<dyn InvocationQueue>,
        limits: AsyncLimits,
    ) {
        let _ = self
            .async_queue
            .set(asynchronous::Queue::new(queue, limits));
    }

    /// Tells the queue's worker that invocations are due.
    pub(crate) fn wake_queue(&self) {
        self.queued_work.notify_one();
    }

    /// Keeps temporary objects in `objects` (set once, before serving).
    pub(crate) fn keep_tmp_objects(&self, objects: Arc<TmpObjects>) {
        let _ = self.tmp.set(objects);
    }

    /// Lets the js engine's `fetch` reach the origins `policy` allows (set
    /// once, before serving).
    pub(crate) fn allow_js_fetch(&self, policy: FetchPolicy) {
        let _ = self.outbound.set(outbound::Outbound::new(policy));
    }

    /// Where temporary objects are kept, if this server keeps them.
    pub(crate) fn tmp_objects(&self) -> Option<&Arc<TmpObjects>> {
        self.tmp.get()
    }

    /// Tells the service where this server listens, for the SDKs in function
    /// processes (`TCB_CONTEXT_CNFG`): a wildcard address is reached on loopback.
    pub(crate) fn set_endpoint(&self, addr: std::net::SocketAddr) {
        let ip = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
            ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let _ = self.endpoint.set(format!(
            "http://{}",
            std::net::SocketAddr::new(ip, addr.port())
        ));
    }

    /// The running invocation a credential was issued to.
    pub(crate) fn caller_of(&self, credential: &str) -> Option<Arc<ChainLink>> {
        self.credentials.resolve(credential)
    }

    /// Whether `env` exists.
    async fn env_exists(&self, env: &EnvId) -> Result<bool, InvokeError> {
        let found = self
            .functions
            .env(env)
            .await
            .map_err(InvokeError::storage)?;
        Ok(found.is_some())
    }

    /// The function and engine a target names, or why there is none.
    async fn resolve(&self, target: &Target) -> Result<Installed, InvokeError> {
        self.registry
            .get(
                self.functions.as_ref(),
                &self.engines,
                target.access.env(),
                &target.name,
                &target.qualifier,
            )
            .await
    }

    pub(crate) fn auth(&self) -> &AuthPolicy {
        &self.auth
    }

    pub(crate) fn engines(&self) -> &Engines {
        &self.engines
    }

    /// Fills in which engine runs the function on this server, and why not
    /// the one its runtime names, if not.
    pub(crate) fn describe(&self, info: &mut FunctionInfo) {
        match self.engines.for_config(&info.current.config) {
            Ok(choice) => {
                info.engine = Some(choice.engine.name().to_owned());
                info.engine_note = choice.note;
            }
            Err(why) => info.engine_note = Some(why),
        }
    }

    /// Makes `function` the current version of its function: invocations from
    /// now on run it, and the idle instances of other versions are retired
    /// (busy ones finish their invocation first).
    pub(crate) fn install(&self, function: Arc<DeployedFunction>, engine: Arc<dyn Engine>) {
        let (env, name, version) = (
            function.env.clone(),
            function.name.clone(),
            function.version.clone(),
        );
        self.registry.install(Installed { function, engine });
        self.subscriptions.changed(&env);
        self.timers_changed.notify_one();
        // The engine may have changed with the version: every engine retires.
        for engine in self.engines.all() {
            engine.retire(&env, &name, Some(&version));
        }
    }

    /// Readies a newly deployed function on the engine that will run it (the
    /// node engine installs its dependencies), which it returns for
    /// [`Invoker::install`]; a failure refuses the deploy.
    pub(crate) async fn prepare(
        &self,
        function: &Arc<DeployedFunction>,
    ) -> Result<Arc<dyn Engine>, InvokeError> {
        let choice = self
            .engines
            .for_config(&function.config)
            .map_err(|why| InvokeError::new(ErrorCode::InvalidFunctionPackage, why))?;
        choice.engine.prepare(function).await?;
        Ok(choice.engine)
    }

    /// Forgets a removed function and retires its instances.
    pub(crate) fn remove(&self, env: &EnvId, name: &FunctionName) {
        self.registry.remove(env, name);
        self.own_async_settings.forget(env, name);
        self.subscriptions.changed(env);
        self.timers_changed.notify_one();
        for engine in self.engines.all() {
            engine.retire(env, name, None);
        }
    }

    /// Invocations running now, and the most that may.
    pub(crate) fn running(&self) -> (usize, usize) {
        let free = self.running.available_permits();
        (self.max_running.saturating_sub(free), self.max_running)
    }

    /// Whether `credential` may use `env`: the admin key, or the env's own.
    pub async fn authorize(
        &self,
        env: &EnvId,
        credential: &Credential,
    ) -> Result<Access, InvokeError> {
        self.auth
            .authorize(self.functions.as_ref(), env, credential)
            .await
    }

    /// Whether a request on an access-service route with `auth` may use
    /// `env`: anyone on a public route, the env's key (or the admin key) on
    /// one that requires a key.
    pub(crate) async fn authorize_route(
        &self,
        env: &EnvId,
        auth: RouteAuth,
        credential: &Credential,
    ) -> Result<Access, InvokeError> {
        match auth {
            RouteAuth::Public => Ok(Access::for_public_route(env.clone())),
            RouteAuth::Key => {
                self.auth
                    .authorize_key(self.functions.as_ref(), env, credential)
                    .await
            }
        }
    }

    /// Whether the target is an HTTP function, which takes requests as they
    /// come, or an event function.
    pub(crate) async fn kind_of(&self, target: &Target) -> Result<FunctionKind, InvokeError> {
        Ok(self.resolve(target).await?.function.config.kind)
    }

    pub(crate) fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Refuses new work once the server shuts down (a client retrying against
    /// a restarted server will succeed).
    pub(crate) fn refuse_if_stopping(&self) -> Result<(), InvokeError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(InvokeError::new(
                ErrorCode::ServiceUnavailable,
                "the server is shutting down",
            ));
        }
        Ok(())
    }

    /// Runs the target's version (the current one unless it names another) on
    /// `event` and records the invocation; a streamed response is recorded
    /// when its stream ends.
    pub async fn invoke(
        &self,
        target: Target,
        event: Event,
        context: InvokeContext,
    ) -> Result<Invocation, InvokeError> {
        let started = Instant::now();
        let started_at = cloudlet_core::now_unix_ms();
        self.refuse_if_stopping()?;
        let event = if context.event_written_by_cloudlet {
            event
        } else {
            event::checked(event)?
        };
        let event = event::with_user_info(event, &context.origin.identity);
        let env = target.access.env();
        let Installed { function, engine } = self.resolve(&target).await?;
        event::fits(&event, &function, env)?;
        let running = self.admit()?;
        let InvokeContext {
            request_id,
            trigger,
            origin,
            deadline,
            accepts_event_stream,
            earlier_attempts,
            ..
        } = context;
        let span = tracing::debug_span!("invoke", request_id = %request_id, env = %env, function = %target.name);
        let own_deadline = started + function.config.timeout();
        let deadline = deadline.map_or(own_deadline, |cap| cap.min(own_deadline));
        let caller = origin.caller.as_ref();
        let accepted = Accepted {
            function: Arc::clone(&function),
            request_id: request_id.clone(),
            trigger,
            started_at,
            started,
            caller: caller.map(|c| c.invocation.clone()),
            root: caller.map(|c| c.root.clone()),
            earlier_attempts,
        };
        let me = InvocationRef {
            env: env.clone(),
            request_id: request_id.clone(),
        };
        let link = ChainLink::new(self.me.clone(), me, origin.clone(), deadline);
        let request = InvocationRequest {
            request_id,
            event,
            origin,
            calls: Some(Arc::clone(&link) as Arc<dyn FunctionCalls>),
            deadline,
            accepts_event_stream,
        };
        let abandoned = Abandoned::arm(self.records.as_ref(), &accepted);
        let outcome = engine.invoke(&function, request).instrument(span).await;
        // The credential ends with the invocation (a stream's included: its
        // code has answered, and calls after the answer are refused).
        link.revoke(&self.credentials);
        abandoned.disarm();
        // A refusal (the engine never ran the code) has no record.
        let mut outcome = outcome?;
        if deadline < own_deadline {
            outcome.result = outcome
                .result
                .map_err(|error| stopped_for_caller(error, deadline - started, &function));
        }
        let request_id = accepted.request_id.clone();
        let result = self.record(accepted, outcome, running);
        Ok(Invocation {
            request_id,
            version: function.version.clone(),
            result,
        })
    }

    /// A permit of the server-wide limit of running invocations, or 429.
    fn admit(&self) -> Result<OwnedSemaphorePermit, InvokeError> {
        Arc::clone(&self.running).try_acquire_owned().map_err(|_| {
            InvokeError::new(
                ErrorCode::ExceedConcurrentRequestLimit,
                format!(
                    "the server already runs {} invocations, its limit",
                    self.max_running
                ),
            )
        })
    }

    /// Submits the record of an ended invocation, or arranges it for when
    /// its stream ends, which is also when it stops counting as running.
    fn record(
        &self,
        accepted: Accepted,
        outcome: InvocationOutcome,
        running: OwnedSemaphorePermit,
    ) -> Result<Output, FunctionError> {
        let echo = self.print_function_logs;
        echo_logs(echo, &accepted, &outcome.logs);
        let ran = Ran {
            logs: outcome.logs,
            logs_truncated: outcome.logs_truncated,
            cold: outcome.cold,
            init_us: outcome.init.map(|d| d.as_micros() as u64),
            http: None,
        };
        match outcome.result {
            Ok(Output::Json(json)) => {
                self.records
                    .submit(accepted.record(Ok(Some(json.clone())), ran));
                Ok(Output::Json(json))
            }
            Ok(Output::Stream(stream)) => {
                let records = Arc::clone(&self.records);
                let on_end: stream::OnEnd = Box::new(move |end, http| {
                    drop(running);
                    echo_logs(echo, &accepted, &end.logs);
                    let mut ran = ran;
                    ran.logs.extend(end.logs);
                    ran.logs_truncated |= end.logs_truncated;
                    ran.http = Some(http);
                    records.submit(accepted.record(end.result.map(|()| None), ran));
                });
                let status = stream.status.as_u16();
                Ok(Output::Stream(ResponseStream {
                    body: Box::new(stream::Recorded::new(stream.body, status, on_end)),
                    ..stream
                }))
            }
            Err(error) => {
                self.records
                    .submit(accepted.record(Err(error.clone()), ran));
                Err(error)
            }
        }
    }
}

/// A callee stopped at its caller's deadline says so, rather than naming its
/// own timeout, which it did not reach.
fn stopped_for_caller(
    mut error: FunctionError,
    allowed: std::time::Duration,
    function: &DeployedFunction,
) -> FunctionError {
    if error.code == ErrorCode::FunctionTimeLimitExceeded {
        error.message = format!(
            "the function was stopped at its caller's deadline, {} ms after it started, \
             before its own timeout of {} s",
            allowed.as_millis(),
            function.config.timeout
        );
    }
    error
}

/// Echoes an invocation's console output to this server's log (`cloudlet dev`).
fn echo_logs(echo: bool, accepted: &Accepted, logs: &[LogLine]) {
    if !echo {
        return;
    }
    for line in logs {
        tracing::info!(
            target: "cloudlet::function",
            request_id = %accepted.request_id,
            function = %accepted.function.name,
            level = line.level.as_str(),
            "{}",
            line.message
        );
    }
}

#[cfg(test)]
mod tests;
