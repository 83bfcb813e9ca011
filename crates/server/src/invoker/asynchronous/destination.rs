//! Destinations: an asynchronous invocation's outcome, sent on to another
//! function of its env (`onSuccess`, `onFailure`), as Lambda's destinations
//! and FC's async destinations send theirs.
//!
//! The destination is itself an asynchronous invocation, queued durably
//! with the event below, under a request ID derived from the original's
//! (`{id}:onSuccess`), so that an outcome settled twice (a worker that died
//! between queuing it and finishing) is queued once. It runs as a call made
//! by the original invocation, one level deeper, so that destinations that
//! send to each other stop at the call depth limit.
//!
//! ```json
//! {"version": "1.0", "timestamp": 1765000000000,
//!  "requestContext": {"requestId", "env", "functionName", "condition", "approximateInvokeCount"},
//!  "requestPayload": <the original event>,
//!  "responsePayload": <the result> | {"errorCode", "errorMessage", "errorType"},
//!  "record": <the original's record, without its logs>}
//! ```

use bytes::Bytes;
use cloudlet_core::{now_unix_ms, FunctionName, InvocationRecord, RequestId};
use cloudlet_runtime::{Caller, Event, Origin};
use cloudlet_store::invocation_queue::{EventKind, Queued};
use serde_json::{json, Value};

use super::origin;
use crate::auth::Access;
use crate::invoker::{InvokeContext, Invoker, Qualifier, Target};

/// Why the outcome goes to a destination (Lambda's `condition`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::RetriesExhausted => "RetriesExhausted",
            Self::EventAgeExceeded => "EventAgeExceeded",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Success => "onSuccess",
            Self::RetriesExhausted | Self::EventAgeExceeded => "onFailure",
        }
    }
}

impl Invoker {
    /// Queues `record`'s outcome for `destination`; a failure to queue it
    /// is logged, since the original invocation is settled either way.
    pub(super) async fn send_to_destination(
        &self,
        destination: &FunctionName,
        condition: Condition,
        queued: &Queued,
        record: &InvocationRecord,
    ) {
        let original = &queued.invocation;
        let env = &original.key.env;
        let target = Target {
            access: Access::for_caller(env.clone()),
            name: destination.clone(),
            qualifier: Qualifier::Latest,
        };
        let id = format!("{}:{}", original.key.request_id, condition.suffix());
        let request_id = RequestId::derived(condition.suffix(), &id);
        let mut context = InvokeContext::new(request_id, "destination");
        context.origin = called_by(queued, record);
        if context
            .origin
            .caller
            .as_ref()
            .is_some_and(|caller| caller.depth > self.calls.max_depth)
        {
            tracing::warn!(request_id = %original.key.request_id, %destination,
                "not sent to its destination: the chain of destinations passed the call depth limit");
            return;
        }
        let event = Event::Json(Bytes::from(event(condition, queued, record).to_string()));
        if let Err(error) = self.enqueue_unbounded(target, event, &context).await {
            tracing::warn!(code = %error.code, message = %error.message,
                request_id = %original.key.request_id, %destination,
                "cannot queue an invocation's outcome for its destination");
        }
    }
}

/// The destination's origin: the original invocation as its caller, the
/// same end user.
fn called_by(queued: &Queued, record: &InvocationRecord) -> Origin {
    let original = origin::read(queued.invocation.origin.as_deref());
    let me = cloudlet_core::InvocationRef {
        env: record.env.clone(),
        request_id: record.request_id.clone(),
    };
    let parent = original.caller.as_ref();
    Origin {
        caller: Some(Caller {
            invocation: me.clone(),
            root: parent.map_or(me, |p| p.root.clone()),
            depth: parent.map_or(0, |p| p.depth) + 1,
        }),
        ..original
    }
}

fn event(condition: Condition, queued: &Queued, record: &InvocationRecord) -> Value {
    let original = &queued.invocation;
    let response = match (&record.result, &record.error) {
        (Some(result), _) => serde_json::from_str(result).unwrap_or(Value::Null),
        (None, Some(error)) => json!({
            "errorCode": error.code,
            "errorMessage": error.message,
            "errorType": error.error_type,
        }),
        (None, None) => Value::Null,
    };
    let mut shown = record.clone();
    shown.logs = Vec::new();
    json!({
        "version": "1.0",
        "timestamp": now_unix_ms(),
        "requestContext": {
            "requestId": original.key.request_id,
            "env": original.key.env,
            "functionName": original.function,
            "condition": condition.as_str(),
            "approximateInvokeCount": queued.attempts,
        },
        "requestPayload": payload(original.event_kind, &original.event),
        "responsePayload": response,
        "record": shown,
    })
}

/// The original event as JSON: itself, a string, or seed 000's form of
/// bytes (`{"type": "Buffer", "data": […]}`).
fn payload(kind: EventKind, event: &[u8]) -> Value {
    match kind {
        EventKind::Json => serde_json::from_slice(event).unwrap_or(Value::Null),
        EventKind::Text => Value::String(String::from_utf8_lossy(event).into_owned()),
        EventKind::Binary => json!({"type": "Buffer", "data": event}),
    }
}
