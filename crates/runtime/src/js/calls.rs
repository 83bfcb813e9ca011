//! Calls from an instance's JavaScript to other functions: what the
//! built-in `wx-server-sdk`, `@cloudbase/node-sdk` and `linkedge-core-sdk`
//! (`sdks.js`, `runtimes/sdk/`) do, in process, without HTTP or a socket.
//!
//! The SDK hands `host.callFunction` the call as an object with the TCB
//! body's fields (read into a [`CallRequest`], as the TCB admin route reads
//! its body, without a trip through JSON text); the call starts as a future
//! of the invocation's [`FunctionCalls`], and the SDK gets an ID to wait on.
//! The instance's event loop (`instance.rs`) polls the calls in flight
//! beside its timers, and hands each answer back to the SDK, which
//! settles its promise. Calls still in flight when the invocation ends are
//! dropped with it, which cancels them. `IoTData.publish` starts its
//! message here the same way (`host.publish`), and the engine's `fetch`
//! (`fetch.rs`) its reads, so that one event loop waits on all of them.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use cloudlet_core::ErrorCode;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use parking_lot::Mutex;
use rquickjs::function::Func;
use rquickjs::{Ctx, Function, JsLifetime, Object, Value};
use serde_json::json;

use super::host::{compile_commonjs, SDKS};
use crate::{
    CallAnswer, CallRefused, CallRequest, FetchRequest, FetchResponse, FunctionCalls, Identity,
    InvocationRequest,
};

/// The SDKs' sources: CommonJS modules exporting a factory over a transport
/// (`sdks.js` gives them the in-process one). Link IoT Edge's is shared with
/// the node engine, which gives it one over HTTP.
const SDK_SOURCES: &[(&str, &str)] = &[
    (
        "wx-server-sdk",
        include_str!("../../../../runtimes/sdk/wx-server-sdk.js"),
    ),
    (
        "@cloudbase/node-sdk",
        include_str!("../../../../runtimes/sdk/cloudbase-node-sdk.js"),
    ),
    (
        "linkedge-core-sdk",
        include_str!("../../../../runtimes/sdk/linkedge-core-sdk.js"),
    ),
];

/// Whether `name` is one of the SDKs the engine builds in.
pub(crate) fn is_sdk(name: &str) -> bool {
    SDK_SOURCES.iter().any(|(sdk, _)| *sdk == name)
}

/// The SDKs' transport in an instance (`sdks.js`), made on the first
/// `require` of an SDK and kept in the runtime's userdata, so that instances
/// that call no function carry none of it.
#[derive(JsLifetime)]
struct Transport<'js> {
    make: Function<'js>,
    settle: Function<'js>,
    reset: Function<'js>,
}

impl<'js> Transport<'js> {
    /// The instance's transport, if an SDK was loaded. A shared handle, not
    /// the userdata borrow, since JS runs while it is used.
    fn get(ctx: &Ctx<'js>) -> Option<Rc<Self>> {
        ctx.userdata::<Rc<Transport>>().map(|t| Rc::clone(&t))
    }

    fn get_or_make(ctx: &Ctx<'js>, calls: &Arc<HostCalls>) -> rquickjs::Result<Rc<Self>> {
        if let Some(transport) = Self::get(ctx) {
            return Ok(transport);
        }
        let starter = Arc::clone(calls);
        let call = Func::from(move |body: Object<'js>| starter.start(call_request(&body)));
        let publisher = Arc::clone(calls);
        let publish =
            Func::from(move |body: Object<'js>| publisher.start_publish(call_request(&body)));
        let reader = Arc::clone(calls);
        let wx_context = Func::from(move || reader.wx_context());
        let api: Object = SDKS
            .default_export(ctx)?
            .call((call, publish, wx_context))?;
        let transport = Rc::new(Transport {
            make: api.get("make")?,
            settle: api.get("settle")?,
            reset: api.get("reset")?,
        });
        if ctx.store_userdata(Rc::clone(&transport)).is_err() {
            return Err(rquickjs::Error::new_from_js_message(
                "instance",
                "sdks",
                "the SDKs' transport is already installed",
            ));
        }
        Ok(transport)
    }
}

/// The built-in module `name` (one of [`SDK_SOURCES`]): its factory,
/// compiled as CommonJS, given the instance's transport.
pub(crate) fn sdk_module<'js>(
    ctx: &Ctx<'js>,
    calls: &Arc<HostCalls>,
    name: &str,
) -> rquickjs::Result<Value<'js>> {
    let Some((_, source)) = SDK_SOURCES.iter().find(|(sdk, _)| *sdk == name) else {
        return Err(rquickjs::Exception::throw_message(
            ctx,
            &format!("no SDK {name}"),
        ));
    };
    let transport = Transport::get_or_make(ctx, calls)?;
    let wrapper = compile_commonjs(ctx, source, format!("cloudlet:{name}"))?;
    let module = Object::new(ctx.clone())?;
    module.set("exports", Object::new(ctx.clone())?)?;
    let exports: Value = module.get("exports")?;
    wrapper.call::<_, ()>((exports, Value::new_undefined(ctx.clone()), module.clone()))?;
    let factory: Function = module.get("exports")?;
    transport.make.call((factory,))
}

/// Hands a call's answer to the SDK waiting for it.
pub(crate) fn settle(ctx: &Ctx<'_>, answer: CallAnswered) -> rquickjs::Result<()> {
    let Some(transport) = Transport::get(ctx) else {
        return Ok(());
    };
    transport.settle.call((
        answer.id,
        answer.request_id,
        answer.result,
        answer.failure,
        answer.refused,
    ))
}

/// Forgets the calls of an earlier invocation, which will never be answered.
pub(crate) fn forget_earlier_calls(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    match Transport::get(ctx) {
        Some(transport) => transport.reset.call(()),
        None => Ok(()),
    }
}

/// The call an SDK describes with TCB's field names, read off its object.
fn call_request(body: &Object<'_>) -> Result<CallRequest, CallRefused> {
    let field = |name: &str| -> Result<Option<String>, CallRefused> {
        body.get::<_, Option<String>>(name)
            .map_err(|_| CallRefused {
                code: ErrorCode::InvalidParam,
                message: format!("the call's {name} must be a string"),
            })
    };
    Ok(CallRequest {
        function_name: field("function_name")?,
        request_data: field("request_data")?,
        env_name: field("envName")?,
        qualifier: field("qualifier")?,
        service_name: field("serviceName")?,
        invocation_type: field("invocationType")?,
        invoker_context: field("invokerContext")?,
        payload_type: field("payloadType")?,
        topic: field("topic")?,
    })
}

type CallFuture = Pin<Box<dyn Future<Output = Answered> + Send>>;

/// What the event loop hands back to the function: an SDK call's answer, or
/// a `fetch`'s response (or why there is none).
pub(crate) enum Answered {
    Call(CallAnswered),
    Fetch {
        id: u32,
        fetched: Result<FetchResponse, CallRefused>,
    },
}

/// A call's answer as the transport's `settle` takes it: the callee's
/// request ID and JSON result, or a failure as JSON text: the callee's
/// error (`{code, cloudbaseCode, message, errorType, stack}`), or with
/// `refused` the service's refusal (`{code, cloudbaseCode, message}`).
/// Plain strings, so that the common answer needs no JSON beyond the result.
pub(crate) struct CallAnswered {
    pub(crate) id: u32,
    pub(crate) request_id: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) failure: Option<String>,
    pub(crate) refused: bool,
}

/// The calls of the invocation in progress, shared with the host functions
/// the SDKs call.
#[derive(Default)]
pub(crate) struct HostCalls {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    calls: Option<Arc<dyn FunctionCalls>>,
    /// The end user and source of the invocation, for `cloud.getWXContext()`.
    identity: Identity,
    source: Option<String>,
    env: String,
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
        // Copies of nothing, for most invocations: no user, no source.
        state.identity.clone_from(&origin.identity);
        state.source.clone_from(&origin.source);
        if state.env != env {
            state.env = env.to_owned();
        }
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

    /// Starts the call `request` describes (TCB's `functions.invokeFunction`
    /// fields) and returns the ID its answer will come back with. A call
    /// that cannot be made is answered as refused, never thrown: the SDKs
    /// report it through their callbacks and promises.
    pub(crate) fn start(&self, request: Result<CallRequest, CallRefused>) -> u32 {
        let call = request.and_then(|request| request.into_call(None));
        self.push(move |calls| async move { calls.call(call?).await })
    }

    /// Starts publishing the message `request` describes (`topic`, and the
    /// message as a call's payload); its answer comes back as a call's, with
    /// the message ID for the request ID and the count of deliveries for
    /// the result.
    pub(crate) fn start_publish(&self, request: Result<CallRequest, CallRefused>) -> u32 {
        let message = request.and_then(CallRequest::into_publication);
        self.push(move |calls| async move {
            let published = calls.publish(message?).await?;
            Ok(CallAnswer {
                request_id: published.message_id,
                result: Ok(Some(published.deliveries.to_string())),
            })
        })
    }

    /// Starts `fetch`'s `request`; returns the ID its answer will come back
    /// with. Like a call, it is answered, never thrown, and dropped if the
    /// invocation ends first, so its deadline bounds it.
    pub(crate) fn start_fetch(&self, request: FetchRequest) -> u32 {
        let mut state = self.state.lock();
        state.next_id = state.next_id.wrapping_add(1);
        let id = state.next_id;
        let future: CallFuture = match state.calls.clone() {
            Some(calls) => Box::pin(async move {
                let fetched = calls.fetch(request).await;
                Answered::Fetch { id, fetched }
            }),
            None => {
                let fetched = Err(CallRefused {
                    code: ErrorCode::SysErr,
                    message: "nothing can be fetched from here: no invocation is running"
                        .to_owned(),
                });
                Box::pin(std::future::ready(Answered::Fetch { id, fetched }))
            }
        };
        state.started.push(future);
        state.outstanding += 1;
        id
    }

    /// Starts the future `start` makes of the invocation's calls, under a
    /// new ID its answer will come back with. With no invocation running,
    /// it is answered as refused.
    fn push<Start, Answer>(&self, start: Start) -> u32
    where
        Start: FnOnce(Arc<dyn FunctionCalls>) -> Answer,
        Answer: Future<Output = Result<CallAnswer, CallRefused>> + Send + 'static,
    {
        let mut state = self.state.lock();
        state.next_id = state.next_id.wrapping_add(1);
        let id = state.next_id;
        let future: CallFuture = match state.calls.clone() {
            Some(calls) => {
                let answer = start(calls);
                Box::pin(async move { answered(id, answer.await) })
            }
            None => {
                let refused = CallRefused {
                    code: ErrorCode::SysErr,
                    message: "functions cannot be called from here: no invocation is running"
                        .to_owned(),
                };
                Box::pin(std::future::ready(answered(id, Err(refused))))
            }
        };
        state.started.push(future);
        state.outstanding += 1;
        id
    }

    /// `cloud.getWXContext()`'s fields for this invocation, as JSON text.
    pub(crate) fn wx_context(&self) -> String {
        let state = self.state.lock();
        json!({
            "OPENID": state.identity.openid,
            "APPID": state.identity.appid,
            "UNIONID": state.identity.unionid,
            "ENV": state.env,
            "SOURCE": state.source,
        })
        .to_string()
    }

    /// Moves the calls started since the last time into `in_flight`.
    pub(crate) fn take_started(&self, in_flight: &mut InFlight) {
        let mut state = self.state.lock();
        if state.started.is_empty() {
            return;
        }
        let calls = in_flight.calls.get_or_insert_with(FuturesUnordered::new);
        for call in state.started.drain(..) {
            calls.push(call);
        }
    }
}

/// The calls an invocation waits on, polled by its event loop. Made on the
/// first call: most invocations make none, and an empty set allocates.
#[derive(Default)]
pub(crate) struct InFlight {
    calls: Option<FuturesUnordered<CallFuture>>,
}

impl InFlight {
    /// An answer that is there without waiting, if any.
    pub(crate) fn answered_now(&mut self) -> Option<Answered> {
        self.next().now_or_never()
    }

    /// The next answer. Pending forever when no call is in flight, so that it
    /// can stand in a `select!` beside timers.
    pub(crate) async fn next(&mut self) -> Answered {
        let next = match self.calls.as_mut() {
            Some(calls) => calls.next().await,
            None => None,
        };
        match next {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

fn answered(id: u32, answer: Result<CallAnswer, CallRefused>) -> Answered {
    match answer {
        Ok(CallAnswer {
            request_id,
            result: Ok(result),
        }) => Answered::Call(CallAnswered {
            id,
            request_id: Some(request_id.to_string()),
            result,
            failure: None,
            refused: false,
        }),
        Ok(CallAnswer {
            request_id,
            result: Err(error),
        }) => Answered::Call(CallAnswered {
            id,
            request_id: Some(request_id.to_string()),
            result: None,
            failure: Some(
                json!({
                    "code": error.code.as_str(),
                    "cloudbaseCode": error.code.cloudbase(),
                    "message": error.summary(),
                    "errorType": error.error_type,
                    "stack": error.stack,
                })
                .to_string(),
            ),
            refused: false,
        }),
        Err(refused) => Answered::Call(CallAnswered {
            id,
            request_id: None,
            result: None,
            failure: Some(
                json!({
                    "code": refused.code.as_str(),
                    "cloudbaseCode": refused.code.cloudbase(),
                    "message": refused.message,
                })
                .to_string(),
            ),
            refused: true,
        }),
    }
}
