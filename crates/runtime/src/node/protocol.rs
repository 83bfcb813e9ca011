//! The messages between the node engine and its workers
//! (`runtimes/node/worker.js`): JSON, each framed by its length as a 4-byte
//! big-endian integer.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Event;

/// The largest message a worker may send: a result is at most the server's
/// result limit, and a log line at most the log cap, both far below this.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What a worker says.
#[derive(Debug, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum FromWorker {
    /// Connected and waiting for a function.
    Ready {
        pid: u32,
    },
    /// The function's module loaded; invocations may follow.
    Loaded,
    LoadFailed {
        error: ThrownError,
    },
    /// A line of the invocation in progress.
    Log {
        level: String,
        msg: String,
    },
    Result {
        json: String,
        #[serde(default)]
        dropped: Dropped,
        #[serde(default)]
        busy: Option<LoopTime>,
    },
    Failed {
        error: ThrownError,
        #[serde(default)]
        unserialisable: bool,
        #[serde(default)]
        dropped: Dropped,
        #[serde(default)]
        busy: Option<LoopTime>,
    },
    /// The function called `context.sse()`: its answer is an event stream.
    SseOpen,
    /// An event, as the JSON text of what the function passed to `send`.
    SseSend {
        msg: String,
    },
    /// The function called the stream's `end()`.
    SseEnd,
    /// An exception or a rejection nothing handled; the worker is ending.
    Crash {
        kind: String,
        error: ThrownError,
        #[serde(default)]
        dropped: Dropped,
    },
}

/// How the worker's event loop spent an invocation: running, or waiting for
/// I/O and timers.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LoopTime {
    pub(super) active_us: u64,
    pub(super) idle_us: u64,
}

/// What the function threw, as the worker read it off the value.
#[derive(Debug, Deserialize)]
pub(super) struct ThrownError {
    /// The error's name (`TypeError`), when it was an Error.
    pub(super) name: Option<String>,
    pub(super) message: String,
    pub(super) stack: Option<String>,
}

/// Output the worker dropped past the log cap.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Dropped {
    pub(super) bytes: usize,
    pub(super) lines: usize,
}

pub(super) async fn write_message(
    writer: &mut (impl AsyncWrite + Unpin),
    body: &[u8],
) -> std::io::Result<()> {
    let length = u32::try_from(body.len())
        .map_err(|_| std::io::Error::other("a message too large for its frame"))?;
    writer.write_all(&length.to_be_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

pub(super) async fn read_message(
    reader: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<FromWorker> {
    let mut header = [0u8; 4];
    reader.read_exact(&mut header).await?;
    let length = u32::from_be_bytes(header) as usize;
    if length > MAX_MESSAGE_BYTES {
        return Err(std::io::Error::other(format!(
            "the worker sent a message of {length} bytes"
        )));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// The `invoke` message: the environment variables that changed since the
/// worker's last invocation (`sdk_env.rs`), Link IoT Edge's `invokerContext`
/// as JSON text, whether the caller takes server-sent events, and the event. A JSON event is text the service has checked, put
/// in as it is; text goes as a JSON string, and bytes as base64 with
/// `"binary": true`, for the worker to make a `Buffer` of.
pub(super) fn invoke_message(
    request_id: &str,
    deadline_unix_ms: i64,
    env: Option<serde_json::Map<String, serde_json::Value>>,
    invoker_context: Option<&str>,
    sse: bool,
    event: &Event,
) -> Vec<u8> {
    let mut head =
        serde_json::json!({"t": "invoke", "id": request_id, "deadline": deadline_unix_ms});
    if let Some(env) = env {
        head["env"] = env.into();
    }
    if let Some(context) = invoker_context {
        head["invokerContext"] = context.into();
    }
    if sse {
        head["sse"] = true.into();
    }
    let raw: Vec<u8> = match event {
        Event::Json(json) => json.to_vec(),
        Event::Text(text) => serde_json::Value::from(text.as_str())
            .to_string()
            .into_bytes(),
        Event::Binary(bytes) => {
            head["binary"] = true.into();
            serde_json::Value::from(BASE64_STANDARD.encode(bytes))
                .to_string()
                .into_bytes()
        }
        // Refused by `NodeEngine::invoke` (`events_only`).
        Event::Http(_) => b"null".to_vec(),
    };
    let mut message = head.to_string();
    message.pop(); // the closing brace, reopened for the event
    let mut body = message.into_bytes();
    body.extend_from_slice(b",\"event\":");
    body.extend_from_slice(&raw);
    body.push(b'}');
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn the_invoke_message_embeds_the_event_as_it_is() {
        let event = Event::Json(Bytes::from_static(b"{\n \"x\": 1\n}"));
        let body = invoke_message("r1", 42, None, Some("{\"a\":1}"), false, &event);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["t"], "invoke");
        assert_eq!(value["id"], "r1");
        assert_eq!(value["deadline"], 42);
        assert_eq!(value["event"]["x"], 1);
        assert_eq!(value["invokerContext"], "{\"a\":1}");
    }

    #[test]
    fn text_and_binary_events_travel_as_json_strings() {
        let text = invoke_message(
            "r1",
            42,
            None,
            None,
            false,
            &Event::Text("a \"quoted\" line".into()),
        );
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(value["event"], "a \"quoted\" line");
        assert!(value.get("binary").is_none());
        let binary = invoke_message(
            "r1",
            42,
            None,
            None,
            false,
            &Event::Binary(Bytes::from_static(&[0, 255, 1])),
        );
        let value: serde_json::Value = serde_json::from_slice(&binary).unwrap();
        assert_eq!(value["event"], "AP8B");
        assert_eq!(value["binary"], true);
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_message(&mut a, br#"{"t":"log","level":"info","msg":"hi"}"#)
            .await
            .unwrap();
        match read_message(&mut b).await.unwrap() {
            FromWorker::Log { level, msg } => {
                assert_eq!((level.as_str(), msg.as_str()), ("info", "hi"))
            }
            other => panic!("{other:?}"),
        }
    }
}
