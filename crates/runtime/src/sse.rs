//! `context.sse()`: server-sent events from an event function, as
//! CloudBase's functions framework offers them.
//!
//! When the caller accepts `text/event-stream`, an engine gives the
//! invocation an [`SseChannel`]; the function's `context.sse()` opens it and
//! gets an object whose `send(message)` and `end(message?)` write events into
//! it (without such a caller, `context.sse()` is `null` and the return value
//! answers as usual). [`answer`] runs the invocation until it opens the
//! channel or ends: once open, the answer is a `200 text/event-stream`
//! whose body drives the rest of the invocation, so each event goes out as
//! it is sent, and the body ends when the function does. The invocation's
//! result is then its record's; an error after the head is sent as a last
//! `event: error`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cloudlet_core::{FunctionError, LogLevel, LogLine};
use parking_lot::Mutex;
use serde_json::Value;

use crate::{
    BodyEnd, BoxError, EngineError, InvocationOutcome, Output, ResponseBody, ResponseStream,
    StreamEnd,
};

/// Events a function may have sent and the client not yet taken: a function
/// that writes faster than its client reads is stopped here, not by memory.
const MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;

/// Why an event was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendRefused {
    #[error("the event stream has ended (sse.end() was called)")]
    Ended,
    #[error(
        "the client reads the event stream slower than the function writes it: \
         more than {MAX_BUFFERED_BYTES} bytes wait to be sent"
    )]
    Full,
}

/// One invocation's event stream, written by the function's side of the
/// engine and read by the response body.
#[derive(Clone, Default)]
pub(crate) struct SseChannel {
    inner: Arc<Mutex<Channel>>,
}

#[derive(Default)]
struct Channel {
    opened: bool,
    ended: bool,
    events: VecDeque<Bytes>,
    buffered: usize,
    /// Whether the invocation created its instance, and how long that took.
    start: Option<(bool, Option<Duration>)>,
}

impl SseChannel {
    /// Notes how the invocation started, for the stream's outcome.
    pub(crate) fn started(&self, cold: bool, init: Option<Duration>) {
        self.inner.lock().start = Some((cold, init));
    }

    /// The function's `context.sse()`: from now on the answer is the stream.
    pub(crate) fn open(&self) {
        self.inner.lock().opened = true;
    }

    /// The function's `send(message)`, `message` as JSON text.
    pub(crate) fn send(&self, message: &str) -> Result<(), SendRefused> {
        let event = event_text(&serde_json::from_str(message).unwrap_or(Value::Null));
        let mut channel = self.inner.lock();
        if channel.ended {
            return Err(SendRefused::Ended);
        }
        if channel.buffered + event.len() > MAX_BUFFERED_BYTES {
            return Err(SendRefused::Full);
        }
        channel.buffered += event.len();
        channel.events.push_back(Bytes::from(event));
        Ok(())
    }

    /// The function's `end()`: no event after it.
    pub(crate) fn end(&self) {
        self.inner.lock().ended = true;
    }

    fn is_open(&self) -> bool {
        self.inner.lock().opened
    }

    fn next_event(&self) -> Option<Bytes> {
        let mut channel = self.inner.lock();
        let event = channel.events.pop_front()?;
        channel.buffered -= event.len();
        Some(event)
    }

    /// An event of the platform's own, past any limit.
    fn push(&self, event: String) {
        let mut channel = self.inner.lock();
        channel.buffered += event.len();
        channel.events.push_back(Bytes::from(event));
    }
}

/// One event's text. A string is the data; an object with `data`, `event`,
/// `id` or `retry` names those fields (data that is not a string goes as
/// JSON); anything else is sent as JSON data. Data spanning lines takes one
/// `data:` line each, as the format requires; a line break in `event` or
/// `id` would end the field, so it becomes a space.
pub(crate) fn event_text(message: &Value) -> String {
    let mut text = String::new();
    let field = |text: &mut String, name: &str, value: &str| {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(&value.replace(['\r', '\n'], " "));
        text.push('\n');
    };
    let data = match message {
        Value::Object(object)
            if ["data", "event", "id", "retry"]
                .iter()
                .any(|key| object.contains_key(*key)) =>
        {
            if let Some(Value::String(event)) = object.get("event") {
                field(&mut text, "event", event);
            }
            match object.get("id") {
                Some(Value::String(id)) => field(&mut text, "id", id),
                Some(id @ Value::Number(_)) => field(&mut text, "id", &id.to_string()),
                _ => {}
            }
            if let Some(retry) = object.get("retry").and_then(Value::as_u64) {
                field(&mut text, "retry", &retry.to_string());
            }
            match object.get("data") {
                None => None,
                Some(Value::String(data)) => Some(data.clone()),
                Some(data) => Some(data.to_string()),
            }
        }
        Value::String(data) => Some(data.clone()),
        other => Some(other.to_string()),
    };
    if let Some(data) = data {
        for line in data.split('\n') {
            text.push_str("data: ");
            text.push_str(line.strip_suffix('\r').unwrap_or(line));
            text.push('\n');
        }
    }
    text.push('\n');
    text
}

type Run = Pin<Box<dyn Future<Output = Result<InvocationOutcome, EngineError>> + Send>>;

/// Runs the invocation `run` until its function opens `channel` (the answer
/// is then the event stream, whose body runs the rest) or it ends without
/// doing so (its outcome, as usual).
pub(crate) async fn answer<F>(run: F, channel: SseChannel) -> Result<InvocationOutcome, EngineError>
where
    F: Future<Output = Result<InvocationOutcome, EngineError>> + Send + 'static,
{
    let mut run: Run = Box::pin(run);
    let first = std::future::poll_fn(|cx| match run.as_mut().poll(cx) {
        Poll::Ready(outcome) => Poll::Ready(Some(outcome)),
        Poll::Pending if channel.is_open() => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await;
    let (run, finished) = match first {
        Some(Err(refused)) => return Err(refused),
        Some(Ok(outcome)) if !channel.is_open() => return Ok(outcome),
        Some(Ok(outcome)) => (None, Some(outcome)),
        None => (Some(run), None),
    };
    let (cold, init) = channel.inner.lock().start.unwrap_or((false, None));
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    let mut body = Events {
        run,
        channel,
        result: None,
        logs: Vec::new(),
        logs_truncated: false,
    };
    if let Some(outcome) = finished {
        body.finish(Ok(outcome));
    }
    Ok(InvocationOutcome {
        result: Ok(Output::Stream(ResponseStream {
            status: http::StatusCode::OK,
            headers,
            body: Box::new(body),
        })),
        logs: Vec::new(),
        logs_truncated: false,
        cold,
        init,
    })
}

/// The event stream's body: the events as the function sends them, while
/// polling it drives the rest of the invocation.
struct Events {
    /// The invocation, until it ends.
    run: Option<Run>,
    channel: SseChannel,
    /// How it ended, once it has.
    result: Option<Result<(), FunctionError>>,
    logs: Vec<LogLine>,
    logs_truncated: bool,
}

impl Events {
    fn finish(&mut self, outcome: Result<InvocationOutcome, EngineError>) {
        self.run = None;
        let result = match outcome {
            Ok(outcome) => {
                self.logs = outcome.logs;
                self.logs_truncated = outcome.logs_truncated;
                outcome.result.map(drop)
            }
            Err(refused) => Err(FunctionError::new(refused.code, refused.message)),
        };
        if let Err(error) = &result {
            // The head went out as a success: the client learns of the error
            // from a last event.
            let data = serde_json::json!({"code": error.code, "message": error.summary()});
            self.channel.push(event_text(
                &serde_json::json!({"event": "error", "data": data}),
            ));
        }
        self.result = Some(result);
    }
}

impl http_body::Body for Events {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(event) = self.channel.next_event() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(event))));
            }
            let Some(run) = self.run.as_mut() else {
                return Poll::Ready(None);
            };
            match run.as_mut().poll(cx) {
                Poll::Ready(outcome) => self.finish(outcome),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl ResponseBody for Events {
    fn end(&mut self, _: BodyEnd) -> StreamEnd {
        let mut logs = std::mem::take(&mut self.logs);
        if self.run.take().is_some() {
            // Dropping the invocation stops it; its instance goes with it.
            logs.push(LogLine {
                timestamp: cloudlet_core::now_unix_ms(),
                level: LogLevel::Warn,
                message: "[cloudlet] the client went away before the event stream ended; \
                          the function was stopped"
                    .to_owned(),
            });
        }
        StreamEnd {
            result: self.result.take().unwrap_or(Ok(())),
            logs,
            logs_truncated: self.logs_truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudlet_core::ErrorCode;
    use http_body_util::BodyExt;
    use serde_json::json;

    #[test]
    fn strings_are_data_and_multiline_data_takes_a_line_each() {
        assert_eq!(event_text(&json!("hi")), "data: hi\n\n");
        assert_eq!(event_text(&json!("a\nb")), "data: a\ndata: b\n\n");
    }

    #[test]
    fn an_event_object_names_its_fields() {
        let text = event_text(&json!({"event": "tick", "id": 7, "retry": 1000, "data": {"n": 1}}));
        assert_eq!(text, "event: tick\nid: 7\nretry: 1000\ndata: {\"n\":1}\n\n");
        assert_eq!(
            event_text(&json!({"event": "a\nb", "data": "x"})),
            "event: a b\ndata: x\n\n"
        );
    }

    #[test]
    fn other_values_are_sent_as_json_data() {
        assert_eq!(event_text(&json!({"n": 1})), "data: {\"n\":1}\n\n");
        assert_eq!(event_text(&json!(3)), "data: 3\n\n");
    }

    #[test]
    fn nothing_is_taken_after_end_or_past_the_buffer() {
        let channel = SseChannel::default();
        let big = serde_json::to_string(&"x".repeat(MAX_BUFFERED_BYTES)).unwrap();
        assert_eq!(channel.send(&big), Err(SendRefused::Full));
        channel.send("\"a\"").unwrap();
        channel.end();
        assert_eq!(channel.send("\"b\""), Err(SendRefused::Ended));
        assert_eq!(channel.next_event().as_deref(), Some(&b"data: a\n\n"[..]));
    }

    fn outcome(result: Result<Output, FunctionError>) -> InvocationOutcome {
        InvocationOutcome {
            result,
            logs: Vec::new(),
            logs_truncated: false,
            cold: false,
            init: None,
        }
    }

    #[tokio::test]
    async fn an_invocation_that_never_opens_the_stream_answers_as_usual() {
        let channel = SseChannel::default();
        let answered = answer(async { Ok(outcome(Ok(Output::Json("1".into())))) }, channel)
            .await
            .unwrap();
        assert_eq!(answered.result.unwrap().json(), Some("1"));
    }

    #[tokio::test]
    async fn events_sent_after_the_head_arrive_in_order_then_the_error() {
        let channel = SseChannel::default();
        let function_side = channel.clone();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let run = async move {
            function_side.open();
            function_side.send("\"first\"").unwrap();
            let _ = wait.await;
            function_side.send("\"second\"").unwrap();
            Ok(outcome(Err(FunctionError::new(
                ErrorCode::FunctionInvocationFailed,
                "boom",
            ))))
        };
        let answered = answer(run, channel).await.unwrap();
        let Ok(Output::Stream(stream)) = answered.result else {
            panic!("a stream");
        };
        assert_eq!(
            stream.headers["content-type"],
            "text/event-stream; charset=utf-8"
        );
        let mut body = stream.body;
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "data: first\n\n");
        go.send(()).unwrap();
        let mut rest = String::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            rest.push_str(std::str::from_utf8(&data).unwrap());
        }
        assert!(rest.starts_with("data: second\n\nevent: error\n"), "{rest}");
        let end = body.end(BodyEnd::Complete);
        assert_eq!(
            end.result.unwrap_err().code,
            ErrorCode::FunctionInvocationFailed
        );
    }
}
