//! One call of a function as engines see it: what goes in (the event or the
//! HTTP request, who called, the deadline) and what comes out (a JSON result
//! or a streamed response, the logs, whether it ran cold).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_core::{FunctionError, InvocationRef, LogLine, RequestId};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

use crate::FunctionCalls;

/// An error in a streamed body, of whatever kind its source has.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a request to an HTTP function, streamed as the client sends it.
///
/// It is `Sync` although the bodies it wraps are not (axum's): it is only
/// ever polled through `&mut`, which `SyncWrapper` makes sound, and engines'
/// futures hold an `&InvocationRequest` across awaits, which must be `Send`.
pub struct RequestBody {
    body: sync_wrapper::SyncWrapper<UnsyncBoxBody<Bytes, BoxError>>,
    /// Set when the body failed for a reason the client caused.
    failure: Arc<std::sync::OnceLock<ClientBodyError>>,
}

/// Why a client's body could not be read to its end (too large, stalled):
/// the request's fault, reported with its code rather than as the function's.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClientBodyError {
    pub code: cloudlet_core::ErrorCode,
    pub message: String,
}

impl RequestBody {
    /// A request body; an error of type [`ClientBodyError`] in its source
    /// chain is kept for [`RequestBody::failure`].
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            body: sync_wrapper::SyncWrapper::new(UnsyncBoxBody::new(body.map_err(Into::into))),
            failure: Arc::default(),
        }
    }

    /// Where the client's fault goes, if the body fails for one; read after
    /// the body is gone.
    pub fn failure(&self) -> Arc<std::sync::OnceLock<ClientBodyError>> {
        Arc::clone(&self.failure)
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(this.body.get_mut()).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Err(error))) = &polled {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
            while let Some(error) = source {
                if let Some(client) = error.downcast_ref::<ClientBodyError>() {
                    let _ = this.failure.set(client.clone());
                }
                source = error.source();
            }
        }
        polled
    }
}

/// One call of a function.
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
    /// The caller takes server-sent events (`Accept: text/event-stream`):
    /// the function's `context.sse()` may answer with them, as a stream.
    pub accepts_event_stream: bool,
}

impl std::fmt::Debug for InvocationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvocationRequest")
            .field("request_id", &self.request_id)
            .field("event", &self.event)
            .field("origin", &self.origin)
            .field("calls", &self.calls.is_some())
            .field("deadline", &self.deadline)
            .field("accepts_event_stream", &self.accepts_event_stream)
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

/// What the handler is called with, or, for an HTTP function, the request
/// its server answers.
#[derive(Debug)]
pub enum Event {
    /// JSON text, already checked by the invocation service; the handler
    /// gets the parsed value.
    Json(Bytes),
    /// Text the handler gets as a string: a Link IoT Edge payload that is
    /// not JSON.
    Text(String),
    /// Bytes the handler gets as a `Buffer`: a binary Link IoT Edge payload.
    Binary(Bytes),
    /// A request an HTTP function's own server answers, passed through.
    Http(Box<HttpRequest>),
}

/// A request for an HTTP function, as the client sent it.
pub struct HttpRequest {
    pub method: http::Method,
    /// The path and query the function's server sees (`/sse?since=1`).
    pub path_and_query: http::uri::PathAndQuery,
    /// The client's headers, less those that were meant for Cloudlet.
    pub headers: http::HeaderMap,
    pub body: RequestBody,
    /// The client's side of a protocol upgrade (WebSocket), when it asked
    /// for one and its connection can be taken over.
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path_and_query", &self.path_and_query)
            .field("headers", &self.headers.len())
            .field("upgrade", &self.upgrade.is_some())
            .finish()
    }
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
pub struct ResponseStream {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    /// The body as the function writes it, pulled by whoever sends it on: a
    /// slow client slows the function rather than filling memory.
    pub body: Box<dyn ResponseBody>,
}

impl std::fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// A streamed response's body, which also says how its invocation went once
/// it is over.
pub trait ResponseBody:
    http_body::Body<Data = Bytes, Error = BoxError> + Send + Unpin + 'static
{
    /// How the invocation ended, asked once: when the body has ended or
    /// failed, or when it is dropped before either (the client went away).
    fn end(&mut self, how: BodyEnd) -> StreamEnd;
}

/// What became of a streamed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// Its last chunk was sent.
    Complete,
    /// It failed midway; the client sees a cut-off body.
    Failed,
    /// It was dropped unfinished: the client disconnected.
    ClientGone,
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
