//! One JS instance: a QuickJS runtime and context with the function's module
//! loaded, serving one invocation at a time.
//!
//! Each instance has its own QuickJS `Runtime`, because the memory limit and
//! the interrupt handler are per runtime: contexts sharing a runtime would
//! share one limit and could starve each other.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::{ErrorCode, FunctionError};
use rquickjs::context::intrinsic;
use rquickjs::promise::PromiseState;
use rquickjs::{
    Atom, CatchResultExt, CaughtError, Context, Ctx, Function, JsLifetime, Object, Promise,
    Runtime, TypedArray, Value,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::allocator::{InstanceMemory, MeteredAllocator};
use super::budget::{Charge, MemoryBudget};
use super::calls::{self, Answered, HostCalls, InFlight};
use super::fetch;
use super::host::{self, LogSink, SseSlot};
use super::lane::LongRunningLane;
use super::watchdog::{Stop, Watchdog};
use crate::heap_meter::Window;
use crate::sse::SseChannel;
use crate::{DeployedFunction, EngineLimits, Event, InvocationRequest};

/// The standard built-ins of an instance: all of QuickJS's except its
/// `performance` (the bootstrap installs one on the engine's clock) and its
/// DOMException (LLRT's module installs its own), which every instance would
/// otherwise build and drop.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
    intrinsic::BigInt,
    intrinsic::WeakRef,
);

/// Native stack QuickJS may use. Instances run on tokio worker threads (2 MiB
/// stacks by default), and the server's own frames sit below the JS ones.
const MAX_STACK_BYTES: usize = 512 * 1024;

/// An instance whose heap is this full after a failed invocation is discarded rather
/// than reused: the next invocation would most likely fail on its first allocation.
const HEAP_RECYCLE_FRACTION: f64 = 0.8;

/// Promise jobs run between two questions to the watchdog. A chain of jobs
/// that queue more jobs never ends by itself, and the interrupt handler only
/// stops the job it interrupts: the drain must stop too.
const JOBS_PER_CHECK: usize = 64;

/// What an instance needs from its engine, beyond the function.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) limits: EngineLimits,
    pub(crate) lane: Arc<LongRunningLane>,
    pub(crate) budget: Arc<MemoryBudget>,
    /// Cancelled when the server ends the invocations still running at shutdown.
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn new(limits: EngineLimits) -> Self {
        let shutdown = CancellationToken::new();
        Self {
            lane: LongRunningLane::new(limits.long_running_threads, shutdown.clone()),
            budget: MemoryBudget::new(limits.memory_budget_bytes),
            limits,
            shutdown,
        }
    }
}

/// The bootstrap's driver API and the property names the event loop reads,
/// kept in the runtime's userdata: every invocation reaches them without a
/// global lookup or building an atom from a Rust string, and function code
/// cannot reach or replace them (they are on no global).
#[derive(JsLifetime)]
struct Driver<'js> {
    invoke: Function<'js>,
    run_due_timers: Function<'js>,
    ms_until_next_timer: Function<'js>,
    settle_idle: Function<'js>,
    /// The driver's `state`: what the handler produced, read after every turn.
    state: Object<'js>,
    settled: Atom<'js>,
    failed: Atom<'js>,
    promise: Atom<'js>,
    value: Atom<'js>,
    error: Atom<'js>,
}

impl<'js> Driver<'js> {
    fn from_api(ctx: &Ctx<'js>, api: &Object<'js>) -> rquickjs::Result<Self> {
        let atom = |name: &str| Atom::from_str(ctx.clone(), name);
        Ok(Self {
            invoke: api.get("invoke")?,
            run_due_timers: api.get("runDueTimers")?,
            ms_until_next_timer: api.get("msUntilNextTimer")?,
            settle_idle: api.get("settleIdle")?,
            state: api.get("state")?,
            settled: atom("settled")?,
            failed: atom("failed")?,
            promise: atom("promise")?,
            value: atom("value")?,
            error: atom("error")?,
        })
    }

    /// The installed driver. A shared handle rather than the userdata borrow
    /// itself, because function code runs while the driver is in use, and a
    /// borrow held across it would make any userdata a module stores meanwhile
    /// fail. (`Rc`: it is only ever touched inside the runtime's lock.)
    fn get(ctx: &Ctx<'js>) -> rquickjs::Result<Rc<Self>> {
        ctx.userdata::<Rc<Driver>>()
            .map(|driver| Rc::clone(&driver))
            .ok_or_else(|| {
                rquickjs::Error::new_from_js_message(
                    "instance",
                    "driver",
                    "the driver is not installed",
                )
            })
    }
}

/// How an instance's invocation ended.
pub(crate) struct Finished {
    pub result: Result<String, FunctionError>,
    /// False when the instance must not serve again.
    pub reusable: bool,
}

pub(crate) struct Instance {
    context: Context,
    runtime: Runtime,
    watchdog: Arc<Watchdog>,
    /// What the instance's QuickJS heap holds (its allocator's count).
    memory: Arc<InstanceMemory>,
    /// What it held outside QuickJS's heap (Buffers) when last measured.
    external_bytes: usize,
    /// Its share of the engine's memory budget.
    charge: Charge,
    /// The heap meter's count for the invocation in progress.
    heap_count: Cell<isize>,
    /// What the heap meter counted over the invocations since the instance's
    /// memory was last measured.
    growth_since_measured: isize,
    logs: Arc<LogSink>,
    /// The calls to other functions the invocation in progress makes.
    calls: Arc<HostCalls>,
    /// The event stream of the invocation in progress, when its caller takes one.
    sse: Arc<SseSlot>,
    memory_limit: usize,
    max_result_bytes: usize,
    pub(crate) last_used: Instant,
    /// The thread that last ran this instance: its heap is warm in that core's cache.
    pub(crate) last_thread: std::thread::ThreadId,
    /// Its slot in its pool's instance count.
    _slot: OwnedSemaphorePermit,
}

/// The calling thread's id. `std::thread::current()` clones the thread's handle
/// (an atomic increment and decrement) on every call; this reads a thread-local.
pub(crate) fn this_thread() -> std::thread::ThreadId {
    thread_local! {
        static ID: std::thread::ThreadId = std::thread::current().id();
    }
    ID.with(|id| *id)
}

/// What one turn of the event loop found.
enum Turn {
    Done(Result<String, FunctionError>),
    /// Nothing to do until the next timer, in this many ms, or (`None`: no
    /// timer is set) until a call to another function answers.
    Wait(Option<u64>),
    /// No timer or job is left and a promise handler's promise never settled.
    Stuck,
}

fn failed(code: ErrorCode, message: impl Into<String>) -> FunctionError {
    FunctionError::new(code, message)
}

fn timed_out(function: &DeployedFunction) -> FunctionError {
    failed(
        ErrorCode::FunctionTimeLimitExceeded,
        format!(
            "the function ran longer than its timeout of {} s and was stopped",
            function.config.timeout
        ),
    )
}

fn out_of_memory(function: &DeployedFunction) -> FunctionError {
    failed(
        ErrorCode::FunctionMemoryLimitExceeded,
        format!(
            "the function used more than its memory limit of {} MB and was stopped",
            function.config.memory_size
        ),
    )
}

fn ended_by_shutdown() -> FunctionError {
    failed(
        ErrorCode::FunctionTerminatedByShutdown,
        "the server shut down before the function finished, after waiting for it as long as its grace period allows",
    )
}

/// The error an invocation reports once a limit stopped its instance, whatever
/// the function's code made of the exception.
fn stopped_by(stop: Stop, function: &DeployedFunction) -> FunctionError {
    match stop {
        Stop::Deadline => timed_out(function),
        Stop::Memory => out_of_memory(function),
        Stop::Shutdown => ended_by_shutdown(),
    }
}

impl Instance {
    /// Creates an instance and loads the function's module. On failure the
    /// error is the function's (a syntax error, a throw at load time, a missing
    /// export) and the logs it printed while loading are in `logs`.
    pub(crate) fn create(
        function: &DeployedFunction,
        shared: &Shared,
        slot: OwnedSemaphorePermit,
        deadline: Instant,
    ) -> Result<Self, (FunctionError, Arc<LogSink>)> {
        let logs = LogSink::new(shared.limits.max_log_bytes_per_invocation);
        let sys = |e: rquickjs::Error| {
            (
                failed(
                    ErrorCode::SysErr,
                    format!("cannot create a js instance: {e}"),
                ),
                logs.clone(),
            )
        };
        let memory_limit = function.config.memory_limit_bytes();
        let watchdog = Watchdog::new(shared.lane.clone(), shared.shutdown.clone());
        let memory = Arc::new(InstanceMemory::default());
        let allocator = MeteredAllocator::new(memory_limit, memory.clone(), watchdog.clone());
        let runtime = Runtime::new_with_alloc(allocator).map_err(sys)?;
        runtime.set_max_stack_size(MAX_STACK_BYTES);
        let handler_watchdog = watchdog.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            handler_watchdog.on_interrupt_check()
        })));
        let context = Context::custom::<Intrinsics>(&runtime).map_err(sys)?;

        let instance = Self {
            context,
            runtime,
            watchdog,
            memory,
            external_bytes: 0,
            charge: Charge::new(&shared.budget),
            heap_count: Cell::new(0),
            growth_since_measured: 0,
            logs: logs.clone(),
            calls: Arc::default(),
            sse: Arc::default(),
            memory_limit,
            max_result_bytes: shared.limits.max_result_bytes,
            last_used: Instant::now(),
            last_thread: this_thread(),
            _slot: slot,
        };
        instance.watchdog.arm(deadline);
        let loaded = instance.with_js(|ctx| -> Result<(), FunctionError> {
            instance
                .install(&ctx, function)
                .map_err(|e| instance.describe(e, function))
        });
        instance.watchdog.disarm();
        match loaded {
            Ok(()) => {
                let mut instance = instance;
                instance.update_charge();
                Ok(instance)
            }
            Err(error) => Err((error, logs)),
        }
    }

    /// Charges the memory budget with what this instance holds now: its
    /// QuickJS heap, and what it kept outside it (Buffers) when it was last
    /// measured.
    fn update_charge(&mut self) {
        let held = self.memory.held().saturating_add(self.external_bytes);
        self.charge.set(held);
    }

    fn install<'js>(
        &self,
        ctx: &Ctx<'js>,
        function: &DeployedFunction,
    ) -> Result<(), CaughtError<'js>> {
        use {
            llrt_abort as abort, llrt_buffer as buffer, llrt_events as events,
            llrt_exceptions as exceptions, llrt_url as url, llrt_util as util,
        };
        (|| -> rquickjs::Result<()> {
            buffer::init(ctx)?;
            events::init(ctx)?;
            url::init(ctx)?;
            util::init(ctx)?;
            abort::init(ctx)?;
            exceptions::init(ctx)?;
            Ok(())
        })()
        .catch(ctx)?;

        let mut env: Vec<(String, String)> = function
            .config
            .env_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, value) in function.scf_variables() {
            if !function.config.env_variables.contains_key(key) {
                env.push((key.to_owned(), value.to_owned()));
            }
        }
        let environment = serde_json::to_string(
            &env.iter()
                .cloned()
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .unwrap_or_else(|_| "{}".to_owned());

        let host = host::host_object(
            ctx,
            &function.package,
            &env,
            &self.watchdog,
            &self.logs,
            &self.calls,
            &self.sse,
        )
        .catch(ctx)?;
        let api = host::run_bootstrap(ctx, host).catch(ctx)?;
        let driver = Driver::from_api(ctx, &api).catch(ctx)?;
        if ctx.store_userdata(Rc::new(driver)).is_err() {
            return Err(CaughtError::Error(rquickjs::Error::new_from_js_message(
                "instance",
                "driver",
                "the driver is already installed",
            )));
        }

        let meta = Object::new(ctx.clone()).catch(ctx)?;
        (|| -> rquickjs::Result<()> {
            meta.set("functionName", function.name.as_str())?;
            meta.set("functionVersion", function.version.short())?;
            meta.set("namespace", function.env.as_str())?;
            meta.set("memoryLimitInMb", function.config.memory_size)?;
            meta.set("memoryLimitInMB", function.config.memory_size.to_string())?;
            meta.set("timeLimitInMs", function.config.timeout * 1000)?;
            meta.set("environment", environment)?;
            Ok(())
        })()
        .catch(ctx)?;
        let load: Function = api.get("load").catch(ctx)?;
        load.call::<_, ()>((
            function.config.handler.module.as_str(),
            function.config.handler.export.as_str(),
            meta,
        ))
        .catch(ctx)?;
        drop(api);
        Ok(())
    }

    /// Runs one invocation to its end: result, error, deadline, memory limit
    /// or shutdown. With `sse`, the function's `context.sse()` writes into it.
    pub(crate) async fn invoke(
        &mut self,
        function: &DeployedFunction,
        request: &InvocationRequest,
        sse: Option<SseChannel>,
    ) -> Finished {
        if sse.is_some() {
            *self.sse.lock() = sse;
        }
        self.watchdog.arm(request.deadline);
        self.heap_count.set(0);
        self.calls.begin(request, function.env.as_str());
        let mut in_flight = InFlight::default();
        let deadline_ms = cloudlet_core::now_unix_ms()
            + request
                .deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as i64;
        let mut turn = self.with_js(|ctx| {
            self.start(&ctx, function, request, deadline_ms)
                .unwrap_or_else(|e| Turn::Done(Err(e)))
        });
        let finished = loop {
            match turn {
                Turn::Done(result) => break self.finish(function, result),
                Turn::Stuck => {
                    let error = failed(
                        ErrorCode::FunctionInvocationFailed,
                        "the handler's promise never settled, and no timer is left that could settle it",
                    );
                    break self.finish(function, Err(error));
                }
                Turn::Wait(ms) => {
                    let answer = self.wait(ms, request.deadline, &mut in_flight).await;
                    if Instant::now() >= request.deadline {
                        self.watchdog.stop(Stop::Deadline);
                    }
                    if let Some(stop) = self.watchdog.stopped() {
                        break Finished {
                            result: Err(self.explain_stop(stop, function)),
                            reusable: false,
                        };
                    }
                    turn = self.with_js(|ctx| {
                        self.resume(&ctx, function, answer)
                            .unwrap_or_else(|e| Turn::Done(Err(e)))
                    });
                }
            }
        };
        self.watchdog.disarm();
        self.calls.end();
        if let Some(sse) = self.sse.lock().take() {
            sse.end();
        }
        self.last_used = Instant::now();
        self.last_thread = this_thread();
        let finished = self.hold_to_memory_limit(function, finished);
        self.update_charge();
        finished
    }

    /// Waits for the next timer (due in `ms`), an answer to a call the
    /// function made, the deadline or shutdown; returns the answer, if that
    /// is what came.
    async fn wait(
        &mut self,
        ms: Option<u64>,
        deadline: Instant,
        in_flight: &mut InFlight,
    ) -> Option<Answered> {
        self.calls.take_started(in_flight);
        // A call to a js function usually answers the first time it is
        // polled (the callee runs inline): then there is nothing to wait for.
        if let Some(answer) = in_flight.answered_now() {
            return Some(answer);
        }
        // What the function holds while it waits counts against the budget now.
        self.update_charge();
        let wake = ms.map_or(deadline, |ms| {
            (Instant::now() + Duration::from_millis(ms)).min(deadline)
        });
        match until_woken(wake, self.watchdog.shutdown(), in_flight).await {
            Woken::Shutdown => {
                self.watchdog.stop(Stop::Shutdown);
                None
            }
            Woken::Due => None,
            Woken::Answered(answer) => Some(answer),
        }
    }

    /// The error of an invocation a limit stopped while it waited on a timer.
    fn explain_stop(&self, stop: Stop, function: &DeployedFunction) -> FunctionError {
        let mut error = stopped_by(stop, function);
        if stop == Stop::Deadline && self.callback_was_waiting() {
            error.message.push_str(
                "; it had called its callback, but timers it started were still pending \
                 (set context.callbackWaitsForEmptyEventLoop = false to answer without waiting for them)",
            );
        }
        error
    }

    /// The heap meter bounds what one invocation grows; memory kept from one
    /// invocation to the next (a module-level array of Buffers) is bounded
    /// here. Once the instance may have grown by a quarter of its limit since
    /// it was last measured, its live memory, external buffers included, is
    /// measured (a walk of its heap, so not after every invocation). An
    /// instance over its limit is discarded: the invocation has finished and
    /// keeps its result (reporting a failure after its effects happened would
    /// invite a retry), and the next one starts on a fresh instance.
    fn hold_to_memory_limit(
        &mut self,
        function: &DeployedFunction,
        finished: Finished,
    ) -> Finished {
        self.growth_since_measured = self
            .growth_since_measured
            .saturating_add(self.heap_count.get().max(0));
        if !finished.reusable || self.growth_since_measured <= (self.memory_limit / 4) as isize {
            return finished;
        }
        self.growth_since_measured = 0;
        let used = self.runtime.memory_usage().memory_used_size.max(0) as usize;
        self.external_bytes = used.saturating_sub(self.memory.held());
        if used <= self.memory_limit {
            return finished;
        }
        tracing::warn!(
            env = %function.env,
            function = %function.name,
            used,
            limit = self.memory_limit,
            "an instance keeps more memory than its function's limit between invocations; it is discarded"
        );
        Finished {
            reusable: false,
            ..finished
        }
    }

    /// Runs a stretch of this instance's JavaScript, with its allocations on
    /// the heap meter. The stretch starts with a full slice on this thread; if
    /// it moved to the long-running lane meanwhile, its seat is given back
    /// when it returns.
    fn with_js<R>(&self, f: impl FnOnce(Ctx<'_>) -> R) -> R {
        let _window = Window::open(&self.heap_count, self.memory_limit);
        let _stretch = self.watchdog.stretch();
        self.context.with(f)
    }

    /// Whether a callback handler's result is held until its pending timers end.
    fn callback_was_waiting(&self) -> bool {
        self.context.with(|ctx| {
            Driver::get(&ctx)
                .and_then(|driver| driver.state.get::<_, Option<Object>>("deferred"))
                .is_ok_and(|deferred| deferred.is_some())
        })
    }

    /// Logs captured since the last call.
    pub(crate) fn take_logs(&self) -> (Vec<cloudlet_core::LogLine>, bool) {
        self.logs.take()
    }

    fn start<'js>(
        &self,
        ctx: &Ctx<'js>,
        function: &DeployedFunction,
        request: &InvocationRequest,
        deadline_ms: i64,
    ) -> Result<Turn, FunctionError> {
        self.call_then_settle(ctx, function, |driver| {
            let event = match &request.event {
                Event::Json(json) => ctx.json_parse(json.as_ref())?,
                Event::Text(text) => rquickjs::String::from_str(ctx.clone(), text)?.into_value(),
                // The bootstrap makes a Buffer of it.
                Event::Binary(bytes) => {
                    TypedArray::<u8>::new(ctx.clone(), bytes.as_ref())?.into_value()
                }
                // Refused by `JsEngine::invoke` (`events_only`).
                Event::Http(_) => rquickjs::Value::new_undefined(ctx.clone()),
            };
            calls::forget_earlier_calls(ctx)?;
            fetch::forget_earlier_fetches(ctx)?;
            let invoker_context = request.origin.invoker_context.as_deref();
            driver.invoke.call((
                event,
                request.request_id.as_str(),
                deadline_ms as f64,
                invoker_context,
            ))
        })
    }

    /// Runs what woke the invocation: a call's answer, handed to the SDK
    /// waiting for it, or the timers that are due. (A timer that fell due
    /// meanwhile runs on the next turn, whose wait ends at once.)
    fn resume<'js>(
        &self,
        ctx: &Ctx<'js>,
        function: &DeployedFunction,
        answer: Option<Answered>,
    ) -> Result<Turn, FunctionError> {
        // An exception escaping a timer callback would crash a Node process;
        // here it fails the invocation.
        self.call_then_settle(ctx, function, |driver| match answer {
            Some(answer) => {
                self.calls.answered();
                match answer {
                    Answered::Call(answer) => calls::settle(ctx, answer),
                    Answered::Fetch { id, fetched } => fetch::settle(ctx, id, fetched),
                }
            }
            None => driver.run_due_timers.call(()),
        })
    }

    /// Calls into the bootstrap's API, then drains the job queue and reads the state.
    fn call_then_settle<'js>(
        &self,
        ctx: &Ctx<'js>,
        function: &DeployedFunction,
        call: impl FnOnce(&Driver<'js>) -> rquickjs::Result<()>,
    ) -> Result<Turn, FunctionError> {
        let driver = Driver::get(ctx)
            .and_then(|driver| call(&driver).map(|()| driver))
            .catch(ctx)
            .map_err(|e| self.describe(e, function))?;
        self.settle_turn(ctx, &driver, function)
    }

    /// Runs the promise jobs the function queued, in order, until none is
    /// left or a limit stops the instance (returned).
    fn drain_jobs(&self, ctx: &Ctx<'_>) -> Option<Stop> {
        loop {
            for _ in 0..JOBS_PER_CHECK {
                if !ctx.execute_pending_job() {
                    return self.watchdog.stopped();
                }
            }
            if self.watchdog.should_stop() {
                return self.watchdog.stopped();
            }
        }
    }

    /// Drains the job queue, then reports whether the handler has settled.
    fn settle_turn<'js>(
        &self,
        ctx: &Ctx<'js>,
        driver: &Driver<'js>,
        function: &DeployedFunction,
    ) -> Result<Turn, FunctionError> {
        if let Some(stop) = self.drain_jobs(ctx) {
            return Err(stopped_by(stop, function));
        }
        let read = (|| -> rquickjs::Result<Turn> {
            let state = &driver.state;
            if !state.get::<_, bool>(driver.settled.clone())? {
                if let Some(promise) = state.get::<_, Option<Promise>>(driver.promise.clone())? {
                    match promise.state() {
                        PromiseState::Pending => {}
                        settled => {
                            // Marked so that a later callback is reported as a second result.
                            state.set(driver.settled.clone(), true)?;
                            let value: Value = promise
                                .result::<Value>()
                                .unwrap_or_else(|| Ok(Value::new_undefined(ctx.clone())))
                                .or_else(|e| match e {
                                    rquickjs::Error::Exception => Ok(ctx.catch()),
                                    other => Err(other),
                                })?;
                            if settled == PromiseState::Rejected {
                                return Ok(Turn::Done(Err(self.describe_failure(value, function))));
                            }
                            return self.serialize(ctx, value);
                        }
                    }
                }
                let ms: f64 = driver.ms_until_next_timer.call(())?;
                if ms >= 0.0 {
                    return Ok(Turn::Wait(Some(ms as u64)));
                }
                if self.calls.outstanding() {
                    return Ok(Turn::Wait(None));
                }
                if !driver.settle_idle.call::<_, bool>(())? {
                    return Ok(Turn::Stuck);
                }
            }
            if state.get::<_, bool>(driver.failed.clone())? {
                let error: Value = state.get(driver.error.clone())?;
                return Ok(Turn::Done(Err(self.describe_failure(error, function))));
            }
            let value: Value = state.get(driver.value.clone())?;
            self.serialize(ctx, value)
        })()
        .catch(ctx);
        read.map_err(|e| self.describe(e, function))
    }

    /// The result as JSON text; `undefined` (and functions) become `null`.
    fn serialize<'js>(&self, ctx: &Ctx<'js>, value: Value<'js>) -> rquickjs::Result<Turn> {
        // Small integers, booleans and nothing are common results whose JSON
        // text is known without a round trip through JSON.stringify.
        if let Some(int) = value.as_int() {
            return Ok(Turn::Done(Ok(int.to_string())));
        }
        if let Some(flag) = value.as_bool() {
            return Ok(Turn::Done(Ok(flag.to_string())));
        }
        if value.is_null() || value.is_undefined() {
            return Ok(Turn::Done(Ok("null".to_owned())));
        }
        let json = match ctx.json_stringify(value) {
            Ok(Some(s)) => s.to_string()?,
            Ok(None) => "null".to_owned(),
            Err(rquickjs::Error::Exception) => {
                let error = self.describe_value(ctx.catch());
                return Ok(Turn::Done(Err(failed(
                    error.code,
                    format!(
                        "the function's result cannot be turned into JSON: {}",
                        error.summary()
                    ),
                ))));
            }
            Err(e) => return Err(e),
        };
        Ok(Turn::Done(Ok(json)))
    }

    /// Classifies a caught error: a limit that stopped the instance takes
    /// precedence over whatever exception it surfaced as.
    /// Always called inside `with_js`, where the heap meter's state is this instance's.
    fn describe(&self, error: CaughtError<'_>, function: &DeployedFunction) -> FunctionError {
        if self.watchdog.should_stop() {
            if let Some(stop) = self.watchdog.stopped() {
                return stopped_by(stop, function);
            }
        }
        match error {
            CaughtError::Exception(e) => self.describe_value(e.into_value()),
            CaughtError::Value(v) => self.describe_value(v),
            CaughtError::Error(rquickjs::Error::Allocation) => out_of_memory(function),
            CaughtError::Error(e) => failed(ErrorCode::FunctionInvocationFailed, e.to_string()),
        }
    }

    /// A rejection or a failure the handler reported: a limit that stopped
    /// the instance takes precedence, as in `describe` (code past its memory
    /// limit fails with whatever it can still make, often `null`).
    fn describe_failure(&self, value: Value<'_>, function: &DeployedFunction) -> FunctionError {
        match self.watchdog.stopped() {
            Some(stop) => stopped_by(stop, function),
            None => self.describe_value(value),
        }
    }

    /// Reads name, message and stack off a thrown value without running the
    /// function's code where avoidable (it may be out of memory or time).
    fn describe_value(&self, value: Value<'_>) -> FunctionError {
        let (error_type, message, stack) = if let Some(object) = value.as_object() {
            let name = object
                .get::<_, Option<String>>("name")
                .ok()
                .flatten()
                .unwrap_or_else(|| "Error".to_owned());
            let message = object.get::<_, Option<String>>("message").ok().flatten();
            let stack = object
                .get::<_, Option<String>>("stack")
                .ok()
                .flatten()
                .filter(|s| !s.is_empty());
            match message {
                Some(m) => {
                    let header = if name == "Error" {
                        format!("Error: {m}")
                    } else {
                        format!("{name}: {m}")
                    };
                    let stack = stack.map(|stack| with_header(stack, &header));
                    (Some(name), m, stack)
                }
                None => (
                    None,
                    json_text(&value).unwrap_or_else(|| "[object]".to_owned()),
                    stack,
                ),
            }
        } else if let Some(s) = value.as_string() {
            (None, s.to_string().unwrap_or_default(), None)
        } else {
            (
                None,
                json_text(&value).unwrap_or_else(|| format!("{value:?}")),
                None,
            )
        };
        FunctionError {
            code: ErrorCode::FunctionInvocationFailed,
            error_type,
            message,
            stack: stack.map(|s| s.trim_end().to_owned()),
        }
    }

    /// The invocation's outcome, and whether the instance may serve again.
    /// An instance a limit stopped never does, and the invocation reports
    /// the limit even if the function caught the error and returned a value.
    fn finish(
        &self,
        function: &DeployedFunction,
        result: Result<String, FunctionError>,
    ) -> Finished {
        if let Some(stop) = self.watchdog.stopped() {
            return Finished {
                result: Err(stopped_by(stop, function)),
                reusable: false,
            };
        }
        let result = match result {
            Ok(json) if json.len() > self.max_result_bytes => Err(failed(
                ErrorCode::ExceedMaxResponseSize,
                format!(
                    "the function returned {} bytes of JSON, more than the limit of {} bytes",
                    json.len(),
                    self.max_result_bytes
                ),
            )),
            other => other,
        };
        // A heap left nearly full by a failure (code that caught an error
        // near its limit) would fail the next invocation on its first allocation.
        let nearly_full =
            self.memory.held() as f64 > self.memory_limit as f64 * HEAP_RECYCLE_FRACTION;
        Finished {
            reusable: !(result.is_err() && nearly_full),
            result,
        }
    }
}

/// What ended a wait of the event loop.
enum Woken {
    /// The next timer (or the deadline) is due.
    Due,
    /// The server ends running invocations.
    Shutdown,
    /// A call to another function answered.
    Answered(Answered),
}

/// Sleeps until `wake`, a call in flight answers, or the server ends running
/// invocations. Boxed: its timer and waits would otherwise grow every
/// invocation's future, which is moved on each call, though most never wait.
fn until_woken<'a>(
    wake: Instant,
    shutdown: &'a CancellationToken,
    in_flight: &'a mut InFlight,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Woken> + Send + 'a>> {
    Box::pin(async move {
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => Woken::Due,
            () = shutdown.cancelled() => Woken::Shutdown,
            answer = in_flight.next() => Woken::Answered(answer),
        }
    })
}

/// The stack with `header` as its first line. The stack's own first line was
/// written when the error was made (Error.prepareStackTrace), before a
/// subclass's constructor could set its name.
fn with_header(stack: String, header: &str) -> String {
    match stack.split_once('\n') {
        Some((first, rest)) if !first.starts_with("    at ") => format!("{header}\n{rest}"),
        None if !stack.starts_with("    at ") => header.to_owned(),
        _ => format!("{header}\n{stack}"),
    }
}

/// A readable rendering of a thrown non-Error value (`throw 42`, `throw {a: 1}`).
fn json_text(value: &Value<'_>) -> Option<String> {
    let ctx = value.ctx();
    ctx.json_stringify(value.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
}
