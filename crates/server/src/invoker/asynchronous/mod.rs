//! Asynchronous invocations: accepted onto the durable queue
//! (`cloudlet_store::invocation_queue`), then run by the queue's worker.
//!
//! [`Invoker::enqueue`] checks what a synchronous invocation would (the
//! function exists, the event is well formed, the size limit), stores the
//! invocation for the version that is current now, with who it acts for
//! (`origin.rs`), and returns once the queue synced it: the caller's 202 is
//! a promise that survives a crash. Its record says `enqueued` from then on.
//! Each env's queue is bounded (`backpressure.rs`). The worker
//! (`worker.rs`) leases what is due and runs each through the same
//! invocation service as a synchronous one, under its limits, and settles
//! it by the retry rules (`retry_policy.rs`).

mod attempt;
mod backpressure;
mod destination;
mod origin;
mod retry_policy;
mod settings;
mod worker;

use std::sync::Arc;

use bytes::Bytes;
use cloudlet_core::{now_unix_ms, ErrorCode, FunctionKind, InvocationStatus, RequestId};
use cloudlet_runtime::Event;
use cloudlet_store::invocation_queue::{Enqueued, EventKind, InvocationQueue, NewQueued, QueueKey};

use super::record::queued_record;
use super::{InvokeContext, InvokeError, Invoker, Target};
pub use backpressure::AsyncLimits;
pub(crate) use settings::{AppliedSettings, OwnSettings};
pub(crate) use worker::run_queue;

/// Where asynchronous invocations wait, under which limits.
pub(crate) struct Queue {
    pub(crate) store: Arc<dyn InvocationQueue>,
    limits: AsyncLimits,
    depth: backpressure::QueueDepth,
}

impl Queue {
    pub(crate) fn new(store: Arc<dyn InvocationQueue>, limits: AsyncLimits) -> Self {
        Self {
            store,
            limits,
            depth: backpressure::QueueDepth::default(),
        }
    }

    /// The most invocations one env may have queued.
    pub(crate) fn max_queued(&self) -> u64 {
        self.limits.max_queued_per_env
    }

    /// The most attempts of one function in flight, given its own limit.
    pub(crate) fn per_function(&self, own: Option<u32>) -> u32 {
        let most = self.limits.max_per_function.max(1);
        own.map_or(most, |own| own.min(most))
    }

    /// How long a lease holds, in ms.
    pub(crate) fn lease_ms(&self) -> i64 {
        i64::try_from(self.limits.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// One invocation of `env` left the queue (it finished, became a dead
    /// letter, expired, or was cancelled).
    pub(crate) fn left(&self, env: &cloudlet_core::EnvId) {
        self.depth.left(env);
    }
}

impl Invoker {
    /// Accepts `event` for `target`, to run in the background; returns its
    /// request ID, and whether it was new (an ID accepted before stands).
    pub(crate) async fn enqueue(
        &self,
        target: Target,
        event: Event,
        context: &InvokeContext,
    ) -> Result<(RequestId, bool), InvokeError> {
        let (event, event_kind) = self.checked_event(event)?;
        self.enqueue_checked(target, event, event_kind, context)
            .await
    }

    /// `event` as the queue keeps it, once it passed the checks of a
    /// client's event: the size limit, and well-formed JSON.
    pub(super) fn checked_event(&self, event: Event) -> Result<(Bytes, EventKind), InvokeError> {
        let (event, event_kind) = queued_event(event)?;
        let max = self.queue()?.limits.max_event_bytes;
        if event.len() > max {
            return Err(InvokeError::new(
                ErrorCode::ExceedRequestSizeLimit,
                format!("an asynchronous event may be at most {max} bytes"),
            ));
        }
        let event = match event_kind {
            EventKind::Json => super::event::checked_json(event)?,
            EventKind::Text | EventKind::Binary => event,
        };
        Ok((event, event_kind))
    }

    /// [`Invoker::enqueue`] for an event Cloudlet wrote itself (a
    /// destination's), which the size limit for clients' events does not
    /// bound.
    async fn enqueue_unbounded(
        &self,
        target: Target,
        event: Event,
        context: &InvokeContext,
    ) -> Result<(RequestId, bool), InvokeError> {
        let (event, event_kind) = queued_event(event)?;
        self.enqueue_checked(target, event, event_kind, context)
            .await
    }

    /// Queues an event [`Invoker::checked_event`] (or Cloudlet) made.
    pub(super) async fn enqueue_checked(
        &self,
        target: Target,
        event: Bytes,
        event_kind: EventKind,
        context: &InvokeContext,
    ) -> Result<(RequestId, bool), InvokeError> {
        let queue = self.queue()?;
        self.refuse_if_stopping()?;
        let installed = self.resolve(&target).await?;
        let function = &installed.function;
        if function.config.kind == FunctionKind::Http {
            return Err(not_for_http());
        }
        let env = target.access.env();
        let settings = self
            .async_settings(env, &target.name, &function.config.async_defaults())
            .await?;
        let now = now_unix_ms();
        let new = NewQueued {
            key: QueueKey {
                env: env.clone(),
                request_id: context.request_id.clone(),
            },
            function: target.name,
            version: function.version.clone(),
            event,
            event_kind,
            origin: origin::written(&context.origin),
            trigger: context.trigger.clone(),
            enqueued_at: now,
            due_at: now,
            expires_at: now + settings.max_event_age_ms(),
        };
        let max_queued = queue.limits.max_queued_per_env;
        queue
            .depth
            .admit(queue.store.as_ref(), env, max_queued)
            .await?;
        let enqueued = match queue.store.enqueue(new).await {
            Ok(enqueued) => enqueued,
            Err(error) => {
                queue.left(env);
                return Err(InvokeError::storage(error));
            }
        };
        self.wake_queue();
        Ok(match enqueued {
            Enqueued::New(queued) => {
                let record = queued_record(&queued, InvocationStatus::Enqueued, Vec::new(), None);
                self.records.submit(record);
                (queued.invocation.key.request_id, true)
            }
            Enqueued::Existing(queued) => {
                queue.left(env);
                (queued.invocation.key.request_id, false)
            }
        })
    }
}

impl Invoker {
    /// Cancels an invocation that waits to run (enqueued, or retrying
    /// between attempts): it will not run, and its record says
    /// `cancelled`. One running now, a dead letter, or an unknown one is
    /// refused, saying which.
    pub(crate) async fn cancel(&self, key: &QueueKey) -> Result<(), InvokeError> {
        let queue = self.queue()?;
        let queued = queue
            .store
            .queued(key)
            .await
            .map_err(InvokeError::storage)?;
        let not_waiting = |why: &str| {
            InvokeError::new(
                ErrorCode::InvocationNotCancellable,
                format!(
                    "invocation {} {why}; only one that waits to run can be cancelled",
                    key.request_id
                ),
            )
        };
        let Some(queued) = queued else {
            return Err(InvokeError::new(
                ErrorCode::ResourceNotFound,
                format!("no queued invocation {} in env {}", key.request_id, key.env),
            ));
        };
        if queued.dead.is_some() {
            return Err(not_waiting("is a dead letter"));
        }
        let cancelled = queue
            .store
            .cancel(key, now_unix_ms())
            .await
            .map_err(InvokeError::storage)?;
        if !cancelled {
            return Err(not_waiting("is running"));
        }
        queue.left(&key.env);
        let record = queued_record(
            &queued,
            InvocationStatus::Cancelled,
            queued.history.clone(),
            None,
        );
        self.records.submit(record);
        Ok(())
    }
}

impl Invoker {
    /// The queue, or why there is none.
    pub(crate) fn queue(&self) -> Result<&Queue, InvokeError> {
        self.async_queue.get().ok_or_else(|| {
            InvokeError::new(
                ErrorCode::ResourceNotFound,
                "this server runs no asynchronous invocations",
            )
        })
    }
}

/// The event as the queue keeps it: JSON, text or bytes.
fn queued_event(event: Event) -> Result<(Bytes, EventKind), InvokeError> {
    match event {
        Event::Json(bytes) => Ok((bytes, EventKind::Json)),
        Event::Text(text) => Ok((Bytes::from(text), EventKind::Text)),
        Event::Binary(bytes) => Ok((bytes, EventKind::Binary)),
        Event::Http(_) => Err(not_for_http()),
    }
}

/// The event the queue kept, as the handler takes it.
fn event_of(kind: EventKind, bytes: Bytes) -> Event {
    match kind {
        EventKind::Json => Event::Json(bytes),
        EventKind::Text => Event::Text(String::from_utf8_lossy(&bytes).into_owned()),
        EventKind::Binary => Event::Binary(bytes),
    }
}

fn not_for_http() -> InvokeError {
    InvokeError::new(
        ErrorCode::InvalidFunctionType,
        "an HTTP function answers requests as they come; only an event function can be invoked \
         asynchronously",
    )
}
