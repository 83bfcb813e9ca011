//! Asynchronous invocations: accepted onto the durable queue
//! (`cloudlet_store::invocation_queue`), then run by the queue's worker.
//!
//! [`Invoker::enqueue`] checks what a synchronous invocation would (the
//! function exists, the event is JSON, the size limit), stores the
//! invocation for the version that is current now, and returns once the
//! queue synced it: the caller's 202 is a promise that survives a crash.
//! [`run_queue`] leases what is due and runs each through the same
//! invocation service as a synchronous one, under its limits and with a
//! record per attempt under the invocation's request ID. A function error is
//! retried [`MAX_RETRIES`] times with exponential backoff; a refusal of the
//! platform's (a concurrency limit, the memory budget) is retried until the
//! invocation's age runs out; what will not run again becomes a dead letter.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloudlet_core::{now_unix_ms, ErrorCode, RequestId};
use cloudlet_runtime::Event;
use cloudlet_store::invocation_queue::{Enqueued, InvocationQueue, NewQueued, QueueKey, Queued};
use tokio_util::sync::CancellationToken;

use super::{InvokeContext, InvokeError, Invoker, Qualifier, Target};
use crate::auth::Access;

/// The largest asynchronous event, as the clouds limit theirs (FC: 128 KiB,
/// Lambda: 256 KiB).
pub(crate) const MAX_ASYNC_EVENT_BYTES: usize = 256 * 1024;
/// How long an accepted invocation may wait to run (Lambda's default).
const MAX_EVENT_AGE_MS: i64 = 6 * 3600 * 1000;
/// How many times a function error is retried (FC's and Lambda's default).
pub(crate) const MAX_RETRIES: u32 = 2;
/// The first retry's delay after a function error; each next one doubles it.
const RETRY_BASE_MS: i64 = 1000;
/// The first retry's delay after a refusal; doubled up to [`REFUSED_MAX_MS`].
const REFUSED_BASE_MS: i64 = 100;
const REFUSED_MAX_MS: i64 = 5000;
/// How long a lease holds an invocation unless renewed: the worker renews
/// it every [`RENEW_EVERY`] while the invocation runs, so a worker that died
/// loses its hold this soon after.
const LEASE_MS: i64 = 30_000;
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Invocations leased at a time.
const LEASE_BATCH: usize = 64;
/// How often the worker looks for due invocations (retries, and leases that
/// ran out) when no invocation accepted here woke it: an idle server asks
/// its store once a second, not more.
const POLL: Duration = Duration::from_secs(1);

impl Invoker {
    /// Accepts `event` for `target`, to run in the background; returns its
    /// request ID, and whether it was new (an ID accepted before stands).
    pub(crate) async fn enqueue(
        &self,
        target: Target,
        event: Bytes,
        context: &InvokeContext,
    ) -> Result<(RequestId, bool), InvokeError> {
        let queue = self.invocation_queue().ok_or_else(|| {
            InvokeError::new(
                ErrorCode::InvalidParam,
                "this server runs no asynchronous invocations",
            )
        })?;
        if event.len() > MAX_ASYNC_EVENT_BYTES {
            return Err(InvokeError::new(
                ErrorCode::ExceedRequestSizeLimit,
                format!("an asynchronous event may be at most {MAX_ASYNC_EVENT_BYTES} bytes"),
            ));
        }
        let event = super::event::checked_json(event)?;
        self.refuse_if_stopping()?;
        let installed = self.resolve(&target).await?;
        let now = now_unix_ms();
        let new = NewQueued {
            key: QueueKey {
                env: target.access.env().clone(),
                request_id: context.request_id.clone(),
            },
            function: target.name,
            version: installed.function.version.clone(),
            event,
            trigger: context.trigger.clone(),
            enqueued_at: now,
            due_at: now,
            expires_at: now + MAX_EVENT_AGE_MS,
        };
        let enqueued = queue.enqueue(new).await.map_err(InvokeError::storage)?;
        self.wake_queue();
        Ok(match enqueued {
            Enqueued::New(queued) => (queued.invocation.key.request_id, true),
            Enqueued::Existing(queued) => (queued.invocation.key.request_id, false),
        })
    }
}

/// The queue's worker: leases what is due and runs each in a task of its
/// own, until `shutdown`.
pub(crate) async fn run_queue(invoker: Arc<Invoker>, shutdown: CancellationToken) {
    let Some(queue) = invoker.invocation_queue().cloned() else {
        return;
    };
    loop {
        let now = now_unix_ms();
        if let Err(error) = queue.expire(now).await {
            tracing::error!(%error, "cannot expire queued invocations");
        }
        let leased = match queue.lease(now, LEASE_BATCH, LEASE_MS).await {
            Ok(leased) => leased,
            Err(error) => {
                tracing::error!(%error, "cannot lease queued invocations");
                Vec::new()
            }
        };
        let full = leased.len() == LEASE_BATCH;
        for queued in leased {
            tokio::spawn(run_one(Arc::clone(&invoker), Arc::clone(&queue), queued));
        }
        if full {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = invoker.queued_work.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One attempt; then the queue learns whether it is done, due again, or dead.
async fn run_one(invoker: Arc<Invoker>, queue: Arc<dyn InvocationQueue>, queued: Queued) {
    let Some(lease) = queued.lease else {
        return;
    };
    let invocation = queued.invocation;
    let key = invocation.key.clone();
    let target = Target {
        access: Access::for_caller(key.env.clone()),
        name: invocation.function,
        qualifier: Qualifier::Version(invocation.version.as_str().to_owned()),
    };
    let context = InvokeContext::new(key.request_id.clone(), invocation.trigger);
    let invoke = invoker.invoke(target, Event::Json(invocation.event), context);
    tokio::pin!(invoke);
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
    let outcome = loop {
        tokio::select! {
            outcome = &mut invoke => break outcome,
            _ = renew.tick() => {
                let until = now_unix_ms() + LEASE_MS;
                if let Err(error) = queue.extend(&key, lease.token, until).await {
                    tracing::warn!(%error, "cannot renew a queued invocation's lease");
                }
            }
        }
    };
    let next = next_step(outcome.map(|done| done.result.err()), queued.attempts);
    let settled = match next {
        Next::Done => queue.finish(&key, lease.token).await,
        Next::Retry { after_ms, why } => {
            let due = now_unix_ms() + after_ms;
            queue.retry(&key, lease.token, due, &why).await
        }
        Next::Dead(why) => queue.dead_letter(&key, lease.token, &why).await,
    };
    if let Err(error) = settled {
        tracing::error!(%error, request_id = %key.request_id, "cannot settle a queued invocation");
    }
}

/// What becomes of an invocation after an attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Done,
    Retry { after_ms: i64, why: String },
    Dead(String),
}

/// The rules of the module documentation: `outcome` is the attempt's
/// function error (`Ok(None)` for success) or the service's refusal;
/// `attempts` counts this one.
fn next_step(
    outcome: Result<Option<cloudlet_core::FunctionError>, InvokeError>,
    attempts: u32,
) -> Next {
    match outcome {
        Ok(None) => Next::Done,
        Ok(Some(error)) if attempts > MAX_RETRIES => Next::Dead(format!(
            "failed {attempts} times; the last: {}",
            error.summary()
        )),
        Ok(Some(error)) => Next::Retry {
            after_ms: RETRY_BASE_MS << (attempts.saturating_sub(1)).min(16),
            why: error.summary(),
        },
        Err(refused) if refused.code.is_retryable() => Next::Retry {
            after_ms: (REFUSED_BASE_MS << (attempts.saturating_sub(1)).min(16)).min(REFUSED_MAX_MS),
            why: format!("{}: {}", refused.code, refused.message),
        },
        Err(refused) => Next::Dead(format!("{}: {}", refused.code, refused.message)),
    }
}

#[cfg(test)]
mod tests {
    use cloudlet_core::{ErrorCode, FunctionError};

    use super::{next_step, InvokeError, Next, MAX_RETRIES};

    fn failed() -> Result<Option<FunctionError>, InvokeError> {
        Ok(Some(FunctionError::new(
            ErrorCode::FunctionInvocationFailed,
            "boom",
        )))
    }

    #[test]
    fn a_success_is_done() {
        assert_eq!(next_step(Ok(None), 1), Next::Done);
    }

    #[test]
    fn a_function_error_is_retried_with_doubling_delays_then_dead() {
        let delays: Vec<Next> = (1..=MAX_RETRIES).map(|n| next_step(failed(), n)).collect();
        assert_eq!(
            delays,
            [
                Next::Retry {
                    after_ms: 1000,
                    why: "boom".into()
                },
                Next::Retry {
                    after_ms: 2000,
                    why: "boom".into()
                },
            ]
        );
        assert_eq!(
            next_step(failed(), MAX_RETRIES + 1),
            Next::Dead("failed 3 times; the last: boom".into())
        );
    }

    #[test]
    fn a_refusal_of_the_platforms_is_retried_and_any_other_is_dead() {
        let busy = InvokeError::new(ErrorCode::ExceedConcurrentRequestLimit, "busy");
        assert!(matches!(
            next_step(Err(busy), 9),
            Next::Retry { after_ms: 5000, .. }
        ));
        let gone = InvokeError::new(ErrorCode::FunctionNotFound, "gone");
        assert_eq!(
            next_step(Err(gone), 1),
            Next::Dead("FUNCTION_NOT_FOUND: gone".into())
        );
    }
}
