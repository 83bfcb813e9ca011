//! One call of a function as engines see it: what goes in (the event, who
//! called, the deadline) and what comes out (a JSON result or a stream of
//! chunks, the logs, whether it ran cold).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_core::{FunctionError, InvocationRef, LogLine, RequestId};
use tokio::sync::{mpsc, oneshot};

use crate::FunctionCalls;

/// One call of a function.
#[derive(Clone)]
pub struct InvocationRequest {
    pub request_id: RequestId,
    pub event: Event,
    /// Who the invocation acts for and who made it.
    pub origin: Origin,
    /// How its code calls other functions; `None` where nothing offers it
    /// (engine tests, benchmarks).
    pub calls: Option<Arc<dyn FunctionCalls>>,
    /// When the invocation must end; the engine stops the code at this instant.
    pub deadline: Instant,
}

impl std::fmt::Debug for InvocationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvocationRequest")
            .field("request_id", &self.request_id)
            .field("event", &self.event)
            .field("origin", &self.origin)
            .field("calls", &self.calls.is_some())
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Who an invocation acts for and how it was reached: what the vendors'
/// SDKs hand a function (`cloud.getWXContext()`, `context.invokerContext`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The invocation that made this one, when a function called it.
    pub caller: Option<Caller>,
    /// The end user the chain acts for, passed down it unchanged.
    pub identity: Identity,
    /// CloudBase's `SOURCE`: where the chain began, then `scf` for each
    /// function that called on (`wx_client`, `wx_client,scf`).
    pub source: Option<String>,
    /// Link IoT Edge's `invokerContext`, as JSON text.
    pub invoker_context: Option<String>,
}

/// What the handler is called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// JSON text, already checked by the invocation service; the handler
    /// gets the parsed value.
    Json(Bytes),
    /// Text the handler gets as a string: a Link IoT Edge payload that is
    /// not JSON.
    Text(String),
    /// Bytes the handler gets as a `Buffer`: a binary Link IoT Edge payload.
    Binary(Bytes),
}

/// Which invocation made this one, when a function called it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The calling invocation, which ties a chain's records together.
    pub invocation: InvocationRef,
    /// The chain's first invocation.
    pub root: InvocationRef,
    /// How many calls deep this one is: 1 when a function called from outside
    /// calls another. A limit on it stops runaway recursion.
    pub depth: u32,
}

/// The end user an invocation acts for, as CloudBase hands it to functions
/// (`cloud.getWXContext()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub openid: Option<String>,
    pub appid: Option<String>,
    pub unionid: Option<String>,
}

/// What an invocation produced.
#[derive(Debug)]
pub struct InvocationOutcome {
    /// The function's output, or its error.
    pub result: Result<Output, FunctionError>,
    /// Logs up to the result; a stream's later logs come with its end.
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
    /// True when this invocation had to create its instance.
    pub cold: bool,
    /// Instance creation and module load time, on a cold start.
    pub init: Option<Duration>,
}

/// A function's output.
#[derive(Debug)]
pub enum Output {
    /// The handler's return value as JSON text.
    Json(String),
    /// A response that arrives in chunks until the function ends it (HTTP
    /// functions, server-sent events); the invocation is over, and its
    /// record written, when the stream ends.
    Stream(ResponseStream),
}

impl Output {
    /// The JSON text of a result that is not a stream.
    pub fn json(&self) -> Option<&str> {
        match self {
            Output::Json(json) => Some(json),
            Output::Stream(_) => None,
        }
    }
}

/// A response streamed by the function: its head at once, then the body.
#[derive(Debug)]
pub struct ResponseStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body's chunks as the function writes them; bounded, so a slow
    /// client slows the function rather than filling memory.
    pub body: mpsc::Receiver<Bytes>,
    /// How the stream ended, sent once the body's last chunk is queued.
    pub ended: oneshot::Receiver<StreamEnd>,
}

/// How a streamed response ended: what its record needs.
#[derive(Debug)]
pub struct StreamEnd {
    /// `Err` when the function failed or hit a limit mid-stream.
    pub result: Result<(), FunctionError>,
    /// Logs written after the stream's head.
    pub logs: Vec<LogLine>,
    pub logs_truncated: bool,
}
