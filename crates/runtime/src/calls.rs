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
use cloudlet_core::{ErrorCode, FunctionError, RequestId};

use crate::Event;

/// How the calling code asks for one call.
#[derive(Debug, Clone)]
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
}
