//! One invocation on a Node.js worker: the messages exchanged, raced against
//! the deadline, the memory limit and shutdown, and turned into the outcome
//! the engines share (the same codes, result rules and records as the js
//! engine's).

use std::path::Path;
use std::time::{Duration, Instant};

use cloudlet_core::{ErrorCode, FunctionError, LogLevel, LogLine};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::protocol::{invoke_message, Dropped, FromWorker, LoopTime, ThrownError};
use super::sdk_env::SdkValues;
use super::worker::Worker;
use crate::sse::SseChannel;
use crate::{DeployedFunction, EngineLimits, InvocationOutcome, InvocationRequest, Output};

/// How often a running worker's resident memory is checked.
const MEMORY_CHECK: Duration = Duration::from_millis(100);

/// One invocation of `function` on a worker.
pub(super) struct Invocation<'a> {
    function: &'a DeployedFunction,
    request: &'a InvocationRequest,
    limits: &'a EngineLimits,
    shutdown: &'a CancellationToken,
    logs: Logs,
    /// How the worker's event loop spent the invocation, from its answer.
    busy: Option<LoopTime>,
    /// Where the function's `context.sse()` writes, when the caller takes events.
    sse: Option<SseChannel>,
    /// Whether an event was refused already (said once in the logs).
    sse_refused: bool,
}

/// How a turn with the worker ended: its answer, or the worker's end.
enum Ended {
    Answered(Result<String, FunctionError>),
    /// The worker is gone or must go: the invocation fails with this.
    Lost(FunctionError),
}

impl<'a> Invocation<'a> {
    pub(super) fn new(
        function: &'a DeployedFunction,
        request: &'a InvocationRequest,
        limits: &'a EngineLimits,
        shutdown: &'a CancellationToken,
        sse: Option<SseChannel>,
    ) -> Self {
        Self {
            function,
            request,
            limits,
            shutdown,
            logs: Logs::new(limits.max_log_bytes_per_invocation),
            busy: None,
            sse,
            sse_refused: false,
        }
    }

    /// Notes, for an event stream's head, how the invocation started.
    pub(super) fn started(&self, init: Option<Duration>) {
        if let Some(sse) = &self.sse {
            sse.started(init.is_some(), init);
        }
    }

    /// Specialises a generic worker for the function: its folder, handler and
    /// environment. What the module prints while loading is in this
    /// invocation's logs. On failure the outcome to report is returned.
    pub(super) async fn load(
        &mut self,
        mut worker: Worker,
        dir: &Path,
    ) -> Result<Worker, FunctionError> {
        let message = self.load_message(dir);
        if worker.send(message.to_string().as_bytes()).await.is_err() {
            return Err(self.lost(&mut worker).await);
        }
        match self.turn(&mut worker, u64::MAX).await {
            Ended::Answered(Ok(_)) => Ok(worker),
            Ended::Answered(Err(error)) | Ended::Lost(error) => {
                worker.kill();
                Err(error)
            }
        }
    }

    /// Runs the invocation; the worker comes back, with what the invocation
    /// took, if it may serve again.
    pub(super) async fn invoke(
        mut self,
        mut worker: Worker,
        rss_limit: u64,
    ) -> (InvocationOutcome, Option<(Worker, Option<LoopTime>)>) {
        drop(worker.take_output());
        let remaining = self
            .request
            .deadline
            .saturating_duration_since(Instant::now());
        let deadline_ms = cloudlet_core::now_unix_ms() + remaining.as_millis() as i64;
        let sdk_env = SdkValues::of(self.request);
        let message = invoke_message(
            self.request.request_id.as_str(),
            deadline_ms,
            sdk_env.changed_since(&worker.sdk_env),
            self.request.origin.invoker_context.as_deref(),
            self.sse.is_some(),
            &self.request.event,
        );
        worker.sdk_env = sdk_env;
        let ended = match worker.send(&message).await {
            Ok(()) => self.turn(&mut worker, rss_limit).await,
            Err(_) => Ended::Lost(self.lost(&mut worker).await),
        };
        let (result, keep) = match ended {
            Ended::Answered(result) => (self.held_to_the_result_limit(result), true),
            Ended::Lost(error) => {
                worker.kill();
                (Err(error), false)
            }
        };
        self.logs.extend(worker.take_output());
        let (logs, logs_truncated) = self.logs.finish();
        let outcome = InvocationOutcome {
            result: result.map(Output::Json),
            logs,
            logs_truncated,
            cold: false,
            init: None,
        };
        (outcome, keep.then_some((worker, self.busy)))
    }

    /// The outcome of a cold start whose load failed.
    pub(super) fn failed_cold(mut self, error: FunctionError, init: Duration) -> InvocationOutcome {
        let (logs, logs_truncated) = self.logs.finish();
        InvocationOutcome {
            result: Err(error),
            logs,
            logs_truncated,
            cold: true,
            init: Some(init),
        }
    }

    fn load_message(&self, dir: &Path) -> serde_json::Value {
        let function = self.function;
        let config = &function.config;
        let env = super::sdk_env::function_environment(function);
        let environment = serde_json::Value::Object(env.clone()).to_string();
        json!({
            "t": "load",
            "dir": dir,
            "module": config.handler.module,
            "export": config.handler.export,
            "env": env,
            "logCap": self.limits.max_log_bytes_per_invocation,
            "meta": {
                "functionName": function.name.as_str(),
                "functionVersion": function.version.short(),
                "namespace": function.env.as_str(),
                "memoryLimitInMb": config.memory_size,
                "timeLimitInMs": config.timeout * 1000,
                "environment": environment,
            },
        })
    }

    /// Reads the worker's messages until it answers, or the deadline, the
    /// memory limit or shutdown ends it, or it ends itself.
    async fn turn(&mut self, worker: &mut Worker, rss_limit: u64) -> Ended {
        // The first check after one period: most invocations end sooner
        // and never pay for reading `/proc` (V8's heap limit holds meanwhile).
        let mut memory_check =
            tokio::time::interval_at(tokio::time::Instant::now() + MEMORY_CHECK, MEMORY_CHECK);
        loop {
            tokio::select! {
                message = worker.next_message() => match message {
                    Some(message) => {
                        if let Some(ended) = self.on_message(message) {
                            return ended;
                        }
                    }
                    None => return Ended::Lost(self.lost(worker).await),
                },
                () = tokio::time::sleep_until(self.request.deadline.into()) => {
                    return Ended::Lost(self.stopped(ErrorCode::FunctionTimeLimitExceeded));
                }
                _ = memory_check.tick() => {
                    if worker.rss_bytes().is_some_and(|rss| rss > rss_limit) {
                        return Ended::Lost(self.stopped(ErrorCode::FunctionMemoryLimitExceeded));
                    }
                }
                () = self.shutdown.cancelled() => {
                    return Ended::Lost(self.stopped(ErrorCode::FunctionTerminatedByShutdown));
                }
            }
        }
    }

    fn on_message(&mut self, message: FromWorker) -> Option<Ended> {
        match message {
            FromWorker::Log { level, msg } => {
                self.logs
                    .push(LogLevel::parse(&level).unwrap_or(LogLevel::Info), msg);
                None
            }
            FromWorker::Loaded => Some(Ended::Answered(Ok(String::new()))),
            FromWorker::LoadFailed { error } => Some(Ended::Answered(Err(thrown(error)))),
            FromWorker::Result {
                json,
                dropped,
                busy,
            } => {
                self.logs.dropped(dropped);
                self.busy = busy;
                Some(Ended::Answered(Ok(json)))
            }
            FromWorker::Failed {
                error,
                unserialisable,
                dropped,
                busy,
            } => {
                self.logs.dropped(dropped);
                self.busy = busy;
                let error = thrown(error);
                Some(Ended::Answered(Err(if unserialisable {
                    failed(
                        error.code,
                        format!(
                            "the function's result cannot be turned into JSON: {}",
                            error.summary()
                        ),
                    )
                } else {
                    error
                })))
            }
            FromWorker::Crash {
                kind,
                error,
                dropped,
            } => {
                self.logs.dropped(dropped);
                // What ended the process is the platform's to word; the
                // error's name stays in the message, as Node prints it.
                let error = thrown(error);
                Some(Ended::Lost(FunctionError {
                    stack: error.stack.clone(),
                    ..failed(error.code, format!("{kind}: {}", error.summary()))
                }))
            }
            FromWorker::SseOpen => {
                if let Some(sse) = &self.sse {
                    sse.open();
                }
                None
            }
            FromWorker::SseSend { msg } => {
                self.sse_send(&msg);
                None
            }
            FromWorker::SseEnd => {
                if let Some(sse) = &self.sse {
                    sse.end();
                }
                None
            }
            FromWorker::Ready { .. } => Some(Ended::Lost(failed(
                ErrorCode::SysErr,
                "the Node.js worker spoke out of turn".to_owned(),
            ))),
        }
    }

    /// Passes an event on. The worker does not wait for an answer, so a
    /// refused event is dropped, and said so once in the logs.
    fn sse_send(&mut self, message: &str) {
        let Some(sse) = &self.sse else { return };
        if let Err(refused) = sse.send(message) {
            if !std::mem::replace(&mut self.sse_refused, true) {
                self.logs.push(
                    LogLevel::Warn,
                    format!("[cloudlet] events dropped: {refused}"),
                );
            }
        }
    }

    /// The error of a limit the engine enforced by killing the worker.
    fn stopped(&self, code: ErrorCode) -> FunctionError {
        let config = &self.function.config;
        let message = match code {
            ErrorCode::FunctionTimeLimitExceeded => format!(
                "the function ran longer than its timeout of {} s and was stopped",
                config.timeout
            ),
            ErrorCode::FunctionMemoryLimitExceeded => format!(
                "the function used more than its memory limit of {} MB and was stopped",
                config.memory_size
            ),
            _ => "the server shut down before the function finished, after waiting for it as long as its grace period allows".to_owned(),
        };
        failed(code, message)
    }

    /// The error of a worker that ended by itself: `process.exit`, a crash,
    /// V8's heap limit.
    async fn lost(&mut self, worker: &mut Worker) -> FunctionError {
        let how = worker.exit_status().await;
        let last = worker.last_output();
        if last.contains("heap out of memory") {
            return self.stopped(ErrorCode::FunctionMemoryLimitExceeded);
        }
        let mut message =
            format!("the function's Node.js process ended during the invocation: {how}");
        if !last.is_empty() {
            message.push_str("; its last output: ");
            message.push_str(&last);
        }
        failed(ErrorCode::FunctionInvocationFailed, message)
    }

    fn held_to_the_result_limit(
        &self,
        result: Result<String, FunctionError>,
    ) -> Result<String, FunctionError> {
        match result {
            Ok(json) if json.len() > self.limits.max_result_bytes => Err(failed(
                ErrorCode::ExceedMaxResponseSize,
                format!(
                    "the function returned {} bytes of JSON, more than the limit of {} bytes",
                    json.len(),
                    self.limits.max_result_bytes
                ),
            )),
            other => other,
        }
    }
}

fn failed(code: ErrorCode, message: String) -> FunctionError {
    FunctionError::new(code, message)
}

/// The function's error as the js engine gives it: its name apart from its message.
fn thrown(error: ThrownError) -> FunctionError {
    FunctionError {
        code: ErrorCode::FunctionInvocationFailed,
        error_type: error.name,
        message: error.message,
        stack: error.stack.map(|s| s.trim_end().to_owned()),
    }
}

/// The invocation's log lines, held to the per-invocation cap.
struct Logs {
    lines: Vec<LogLine>,
    bytes: usize,
    cap: usize,
    cut_bytes: usize,
    dropped_lines: usize,
}

impl Logs {
    fn new(cap: usize) -> Self {
        Self {
            lines: Vec::new(),
            bytes: 0,
            cap,
            cut_bytes: 0,
            dropped_lines: 0,
        }
    }

    fn push(&mut self, level: LogLevel, mut message: String) {
        let room = self.cap.saturating_sub(self.bytes);
        if message.len() > room {
            let mut cut = room;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            self.cut_bytes += message.len() - cut;
            message.truncate(cut);
            if message.is_empty() {
                self.dropped_lines += 1;
                return;
            }
        }
        self.bytes += message.len();
        self.lines.push(LogLine {
            timestamp: cloudlet_core::now_unix_ms(),
            level,
            message,
        });
    }

    fn extend(&mut self, lines: Vec<LogLine>) {
        for line in lines {
            self.push(line.level, line.message);
        }
    }

    fn dropped(&mut self, dropped: Dropped) {
        self.cut_bytes += dropped.bytes;
        self.dropped_lines += dropped.lines;
    }

    /// The lines, and whether output was dropped past the cap; a final marker
    /// line says how much, as the js engine's does.
    fn finish(&mut self) -> (Vec<LogLine>, bool) {
        let mut lines = std::mem::take(&mut self.lines);
        let truncated = self.cut_bytes > 0 || self.dropped_lines > 0;
        if truncated {
            lines.push(LogLine {
                timestamp: cloudlet_core::now_unix_ms(),
                level: LogLevel::Warn,
                message: format!(
                    "[cloudlet] log output truncated at its limit of {} bytes per invocation: \
                     {} bytes cut from the last line kept, {} later line{} dropped",
                    self.cap,
                    self.cut_bytes,
                    self.dropped_lines,
                    if self.dropped_lines == 1 { "" } else { "s" }
                ),
            });
        }
        (lines, truncated)
    }
}
