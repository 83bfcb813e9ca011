//! Functions calling functions: what an engine offers function code (the
//! vendors' SDKs: `cloud.callFunction`, `FCClient.invokeFunction`) to call
//! another function on behalf of the invocation it runs.
//!
//! The invocation service hands each invocation a [`FunctionCalls`] bound to
//! it: calls made through it carry the chain (caller, root, depth, the end
//! user), are held to the caller's deadline and env, and are recorded. The js
//! engine calls it in process; the node engine's SDKs reach it over HTTP with
//! the invocation's [`FunctionCalls::credential`].

use async_trait::async_trait;
use base64::prelude::{Engine as _, BASE64_STANDARD};
use bytes::Bytes;
use cloudlet_core::{ErrorCode, FunctionError, RequestId};
use serde::Deserialize;

use crate::Event;

/// How the calling code asks for one call.
#[derive(Debug)]
pub struct FunctionCall {
    /// Which env the callee is in.
    pub env: EnvChoice,
    pub name: String,
    pub event: Event,
    pub mode: CallMode,
    /// The version to run (`$LATEST` or a version ID); `None` is the current one.
    pub qualifier: Option<String>,
    /// Link IoT Edge's `invokerContext`, decoded: JSON text the callee gets as
    /// `context.invokerContext`.
    pub invoker_context: Option<String>,
}

/// The env a call names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChoice {
    /// The caller's own env.
    Own,
    /// This env, which must exist (CloudBase's `config.env`).
    Named(String),
    /// This env when one of that name exists, else the caller's own (Link
    /// IoT Edge's `serviceName`, which names an FC service that a Cloudlet
    /// deployment need not have).
    NamedOrOwn(String),
}

/// Whether the caller waits for the callee's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    /// The callee's result comes back; its deadline is no later than the caller's.
    Sync,
    /// The callee runs in the background with its own deadline; only its
    /// request ID comes back.
    Async,
}

/// The answer to a call the service accepted.
#[derive(Debug, Clone)]
pub struct CallAnswer {
    /// The callee's request ID, for its record and logs.
    pub request_id: RequestId,
    /// The callee's JSON result, or its error; `Ok(None)` for an `Async`
    /// call, whose result goes to its record.
    pub result: Result<Option<String>, FunctionError>,
}

/// A call the service refused before the callee ran: an unknown function, a
/// chain too deep, an env the caller may not use, a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRefused {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for CallRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The calls one invocation may make. See the module documentation.
#[async_trait]
pub trait FunctionCalls: Send + Sync + 'static {
    /// Runs the call on behalf of the invocation.
    async fn call(&self, call: FunctionCall) -> Result<CallAnswer, CallRefused>;

    /// A credential that identifies this invocation alone to the server's
    /// TCB admin route, for SDKs that call over HTTP; it stops working when
    /// the invocation ends.
    fn credential(&self) -> String;

    /// The base URL (`http://127.0.0.1:PORT`) where SDKs in other processes
    /// reach this server, when it listens on one.
    fn endpoint(&self) -> Option<String>;

    /// Publishes a message to its topic in the invocation's env (Link IoT
    /// Edge's `IoTData.publish`): each subscriber's delivery is queued, as
    /// a call one level deeper than this invocation, and none is awaited.
    async fn publish(&self, message: Publication) -> Result<Published, CallRefused>;

    /// Makes the js engine's `fetch`: reads the temporary object a
    /// `cloud.CDN()` field's URL names, or, where the server allows the
    /// URL's origin, sends the request there. Refused for any other URL.
    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, CallRefused>;
}

/// A message a function publishes.
#[derive(Debug)]
pub struct Publication {
    pub topic: String,
    /// The message, as each subscriber's event.
    pub event: Event,
}

/// A published message: its ID, and how many subscribers' deliveries were
/// queued (none when nobody subscribes to its topic).
#[derive(Debug, Clone)]
pub struct Published {
    pub message_id: RequestId,
    pub deliveries: usize,
}

/// A request of the js engine's `fetch`.
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    /// Upper case, as `fetch` normalizes it.
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// An answer as `fetch` gets it.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub status: u16,
    /// Lower-case names, in the order the answer had them.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// A call as the SDKs describe it: the fields of TCB's
/// `functions.invokeFunction` body that say what to call (clients.md §1.1),
/// and Cloudlet's own for Link IoT Edge's `FCClient` (`serviceName`,
/// `invocationType`, `invokerContext`, `payloadType`) and for its
/// `IoTData.publish` (Cloudlet's `messages.publish` action: `topic`, with
/// the message in `request_data` and `payloadType`). The TCB admin route
/// reads it from HTTP; the js engine's SDKs hand it over in process.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallRequest {
    pub function_name: Option<String>,
    /// The event: JSON text (`""` is `{}`), or per `payloadType` a string
    /// (`text`) or bytes in base64 (`binary`).
    pub request_data: Option<String>,
    #[serde(rename = "envName")]
    pub env_name: Option<String>,
    pub qualifier: Option<String>,
    /// Link IoT Edge's service: an env of that name if there is one, else
    /// the caller's own.
    #[serde(rename = "serviceName")]
    pub service_name: Option<String>,
    #[serde(rename = "invocationType")]
    pub invocation_type: Option<String>,
    /// Base64 of JSON text.
    #[serde(rename = "invokerContext")]
    pub invoker_context: Option<String>,
    #[serde(rename = "payloadType")]
    pub payload_type: Option<String>,
    /// The topic a message is published to.
    pub topic: Option<String>,
}

impl CallRequest {
    /// The call it asks for; `env` is the env the request names elsewhere
    /// (the TCB route's `?env=`) when its body names none.
    pub fn into_call(self, env: Option<String>) -> Result<FunctionCall, CallRefused> {
        let event = self.event()?;
        let mode = mode(self.invocation_type.as_deref())?;
        let invoker_context = invoker_context(self.invoker_context.as_deref())?;
        let name = self
            .function_name
            .filter(|name| !name.is_empty())
            .ok_or_else(|| invalid("function_name is missing"))?;
        let env = match (self.service_name, self.env_name.or(env)) {
            (Some(service), _) => EnvChoice::NamedOrOwn(service),
            (None, Some(env)) => EnvChoice::Named(env),
            (None, None) => EnvChoice::Own,
        };
        Ok(FunctionCall {
            env,
            name,
            event,
            mode,
            qualifier: self.qualifier,
            invoker_context,
        })
    }

    /// The message it asks to publish.
    pub fn into_publication(self) -> Result<Publication, CallRefused> {
        let event = self.event()?;
        let topic = self
            .topic
            .filter(|topic| !topic.is_empty())
            .ok_or_else(|| invalid(r#"Can't find required parameter "topic"."#))?;
        Ok(Publication { topic, event })
    }

    fn event(&self) -> Result<Event, CallRefused> {
        let data = self.request_data.clone().unwrap_or_default();
        match self.payload_type.as_deref() {
            None | Some("json") => {
                if !data.trim().is_empty() {
                    serde_json::from_str::<serde::de::IgnoredAny>(&data)
                        .map_err(|e| invalid(format!("request_data is not JSON text: {e}")))?;
                }
                Ok(Event::Json(Bytes::from(data)))
            }
            Some("text") => Ok(Event::Text(data)),
            Some("binary") => BASE64_STANDARD
                .decode(data.as_bytes())
                .map(|bytes| Event::Binary(Bytes::from(bytes)))
                .map_err(|_| invalid("request_data is not base64")),
            Some(other) => Err(invalid(format!(
                "payloadType {other:?} is not one of json, text, binary"
            ))),
        }
    }
}

fn invalid(message: impl Into<String>) -> CallRefused {
    CallRefused {
        code: ErrorCode::InvalidParam,
        message: message.into(),
    }
}

/// `Sync` (the default) or `Async`, as Link IoT Edge names them.
fn mode(invocation_type: Option<&str>) -> Result<CallMode, CallRefused> {
    match invocation_type {
        None | Some("Sync") => Ok(CallMode::Sync),
        Some("Async") => Ok(CallMode::Async),
        Some(other) => Err(invalid(format!(
            "Incorrect invocationType {other}. It should be \"Sync\" or \"Async\"."
        ))),
    }
}

/// Link IoT Edge's `invokerContext` (base64 of JSON text) as JSON text.
fn invoker_context(base64: Option<&str>) -> Result<Option<String>, CallRefused> {
    let Some(base64) = base64.filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let refused = || {
        invalid(
            "invokerContext must be base64 of JSON text, as \
             Buffer.from(JSON.stringify(ctx)).toString('base64') makes it",
        )
    };
    let bytes = BASE64_STANDARD
        .decode(base64.trim())
        .map_err(|_| refused())?;
    let text = String::from_utf8(bytes).map_err(|_| refused())?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|_| refused())?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> Result<FunctionCall, CallRefused> {
        serde_json::from_str::<CallRequest>(json)
            .expect("a call request")
            .into_call(None)
    }

    #[test]
    fn a_tcb_body_is_a_synchronous_call_with_a_json_event() {
        let call = parsed(r#"{"function_name":"add","request_data":"{\"x\":1}","envName":"prod"}"#)
            .expect("a call");
        assert_eq!(call.name, "add");
        assert_eq!(call.env, EnvChoice::Named("prod".into()));
        assert_eq!(call.mode, CallMode::Sync);
        assert!(matches!(&call.event, Event::Json(json) if json == &br#"{"x":1}"#[..]));
    }

    #[test]
    fn a_service_name_names_an_env_or_the_callers_own() {
        let call = parsed(r#"{"function_name":"f","serviceName":"EdgeFC","envName":"x"}"#)
            .expect("a call");
        assert_eq!(call.env, EnvChoice::NamedOrOwn("EdgeFC".into()));
        assert_eq!(
            parsed(r#"{"function_name":"f"}"#).expect("a call").env,
            EnvChoice::Own
        );
    }

    #[test]
    fn link_iot_edge_payloads_are_text_or_bytes_and_its_context_is_decoded() {
        let text = parsed(r#"{"function_name":"f","payloadType":"text","request_data":"hi","invocationType":"Async","invokerContext":"eyJhIjoxfQ=="}"#)
            .expect("a call");
        assert!(matches!(&text.event, Event::Text(t) if t == "hi"));
        assert_eq!(text.mode, CallMode::Async);
        assert_eq!(text.invoker_context.as_deref(), Some(r#"{"a":1}"#));
        let binary =
            parsed(r#"{"function_name":"f","payloadType":"binary","request_data":"AP8="}"#)
                .expect("a call");
        assert!(matches!(&binary.event, Event::Binary(b) if b == &[0u8, 255][..]));
    }

    #[test]
    fn bad_calls_are_refused_with_what_is_wrong() {
        let refused = |json: &str| parsed(json).expect_err("refused").message;
        assert!(refused(r#"{"request_data":"{}"}"#).contains("function_name"));
        assert!(refused(r#"{"function_name":"f","request_data":"{oops"}"#).contains("not JSON"));
        assert!(refused(r#"{"function_name":"f","invocationType":"Later"}"#)
            .contains("Incorrect invocationType Later"));
        assert!(refused(r#"{"function_name":"f","invokerContext":"%%%"}"#).contains("base64"));
        assert!(refused(r#"{"function_name":"f","payloadType":"xml"}"#).contains("payloadType"));
    }

    #[test]
    fn a_publish_names_its_topic_and_carries_its_message_as_an_event() {
        let request = |json: &str| serde_json::from_str::<CallRequest>(json).expect("a request");
        let message = request(r#"{"topic":"a/b","payloadType":"text","request_data":"hi"}"#)
            .into_publication()
            .expect("a message");
        assert_eq!(message.topic, "a/b");
        assert!(matches!(&message.event, Event::Text(t) if t == "hi"));
        let refused = request(r#"{"request_data":"{}"}"#)
            .into_publication()
            .expect_err("no topic");
        assert!(refused.message.contains("topic"), "{refused}");
    }
}
