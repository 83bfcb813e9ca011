//! Calls from an instance's JavaScript to other functions: what the
//! built-in `wx-server-sdk`, `@cloudbase/node-sdk` and `linkedge-core-sdk`
//! (`sdks.js`, `runtimes/sdk/`) do, in process, without HTTP or a socket.
//!
//! The SDK hands `host.callFunction` the call as the TCB body's fields (the
//! same parser as the TCB admin route's, [`CallRequest`]); the call starts
//! as a future of the invocation's [`FunctionCalls`], and the SDK gets an ID
//! to wait on. The instance's event loop (`instance.rs`) polls the calls in
//! flight beside its timers, and hands each answer back to the SDK, which
//! settles its promise. Calls still in flight when the invocation ends are
//! dropped with it, which cancels them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use serde_json::json;

use crate::{CallAnswer, CallRefused, CallRequest, FunctionCalls, InvocationRequest};

type CallFuture = Pin<Box<dyn Future<Output = (u32, String)> + Send>>;

/// The calls of the invocation in progress, shared with the host functions
/// the SDKs call.
#[derive(Default)]
pub(crate) struct HostCalls {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    calls: Option<Arc<dyn FunctionCalls>>,
    /// `cloud.getWXContext()`'s answer for this invocation, as JSON text.
    wx_context: String,
    next_id: u32,
    /// Calls started and not yet answered to the SDK.
    outstanding: usize,
    /// Started since the event loop last took them.
    started: Vec<CallFuture>,
}

impl HostCalls {
    /// Makes `request`'s calls and end user the ones the SDKs see.
    pub(crate) fn begin(&self, request: &InvocationRequest, env: &str) {
        let origin = &request.origin;
        let mut state = self.state.lock();
        state.calls = request.calls.clone();
        state.wx_context = json!({
            "OPENID": origin.identity.openid,
            "APPID": origin.identity.appid,
            "UNIONID": origin.identity.unionid,
            "ENV": env,
            "SOURCE": origin.source,
        })
        .to_string();
    }

    /// Forgets the invocation's calls; those not taken yet are dropped.
    pub(crate) fn end(&self) {
        let mut state = self.state.lock();
        state.calls = None;
        state.started.clear();
        state.outstanding = 0;
    }

    /// Whether calls are started and not yet answered: the invocation waits
    /// for them as for a timer.
    pub(crate) fn outstanding(&self) -> bool {
        self.state.lock().outstanding > 0
    }

    /// One answer was handed back to the SDK.
    pub(crate) fn answered(&self) {
        let mut state = self.state.lock();
        state.outstanding = state.outstanding.saturating_sub(1);
    }

    /// Starts the call `body` describes (TCB's `functions.invokeFunction`
    /// fields) and returns the ID its answer will come back with. A call
    /// that cannot be made is answered as refused, never thrown: the SDKs
    /// report it through their callbacks and promises.
    pub(crate) fn start(&self, body: &str) -> u32 {
        let mut state = self.state.lock();
        state.next_id = state.next_id.wrapping_add(1);
        let id = state.next_id;
        let call = serde_json::from_str::<CallRequest>(body)
            .map_err(|e| CallRefused {
                code: cloudlet_core::ErrorCode::InvalidParam,
                message: format!("the call is not valid: {e}"),
            })
            .and_then(|request| request.into_call(None));
        let future: CallFuture = match (call, state.calls.clone()) {
            (Ok(call), Some(calls)) => {
                Box::pin(async move { (id, answer_json(calls.call(call).await)) })
            }
            (Err(refused), _) => Box::pin(std::future::ready((id, answer_json(Err(refused))))),
            (Ok(_), None) => {
                let refused = CallRefused {
                    code: cloudlet_core::ErrorCode::SysErr,
                    message: "functions cannot be called from here: no invocation is running"
                        .to_owned(),
                };
                Box::pin(std::future::ready((id, answer_json(Err(refused)))))
            }
        };
        state.started.push(future);
        state.outstanding += 1;
        id
    }

    pub(crate) fn wx_context(&self) -> String {
        self.state.lock().wx_context.clone()
    }

    /// Moves the calls started since the last time into `in_flight`.
    pub(crate) fn take_started(&self, in_flight: &mut InFlight) {
        for call in self.state.lock().started.drain(..) {
            in_flight.calls.push(call);
        }
    }
}

/// The calls an invocation waits on, polled by its event loop.
#[derive(Default)]
pub(crate) struct InFlight {
    calls: FuturesUnordered<CallFuture>,
}

impl InFlight {
    /// The next answer: `(id, answer as JSON text)`. Pending forever when no
    /// call is in flight, so that it can stand in a `select!` beside timers.
    pub(crate) async fn next(&mut self) -> (u32, String) {
        match self.calls.next().await {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }

}

/// An answer as the SDKs read it: `{requestId, result}` (the callee's JSON
/// text, null for an Async call), `{requestId, error}` when the callee
/// failed, or `{refused}` when it never ran.
fn answer_json(answer: Result<CallAnswer, CallRefused>) -> String {
    match answer {
        Ok(CallAnswer {
            request_id,
            result: Ok(result),
        }) => json!({"requestId": request_id.as_str(), "result": result}),
        Ok(CallAnswer {
            request_id,
            result: Err(error),
        }) => json!({
            "requestId": request_id.as_str(),
            "error": {
                "code": error.code.as_str(),
                "cloudbaseCode": error.code.cloudbase(),
                "message": error.summary(),
                "errorType": error.error_type,
                "stack": error.stack,
            },
        }),
        Err(refused) => json!({
            "refused": {
                "code": refused.code.as_str(),
                "cloudbaseCode": refused.code.cloudbase(),
                "message": refused.message,
            },
        }),
    }
    .to_string()
}
