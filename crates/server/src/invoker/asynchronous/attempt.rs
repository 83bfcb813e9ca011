//! One attempt of a queued invocation, and what becomes of it.
//!
//! The record moves with the invocation: `running` when its attempt starts;
//! the attempt's own record (with every attempt so far) when it ends;
//! `retrying` with the next attempt's due time, or `failed` / `expired`
//! when it will not run again, and then its destination, if it has one.
//! The queue keeps the attempts too, so that the record of the next attempt
//! lists them whatever became of the records; an attempt whose server died
//! under it is listed as lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::{
    now_unix_ms, AsyncConfig, Attempt, ErrorCode, FunctionError, InvocationRecord, InvocationStatus,
};
use cloudlet_store::invocation_queue::{InvocationQueue, Lease, NewQueued, Queued};

use super::destination::Condition;
use super::retry_policy::{jittered, next_step, Next};
use super::worker::Running;
use super::{event_of, origin};
use crate::auth::Access;
use crate::invoker::record::queued_record;
use crate::invoker::{Invocation, InvokeContext, InvokeError, Invoker, Qualifier, Target};

/// One attempt; then the queue learns whether it is done, due again, or dead.
/// `settings` are the function's; `running` counts the attempt against
/// the worker's limits until it is settled.
pub(super) async fn run_one(
    invoker: Arc<Invoker>,
    queue: Arc<dyn InvocationQueue>,
    queued: Queued,
    settings: AsyncConfig,
    running: Running,
) {
    let Some(lease) = queued.lease else {
        return;
    };
    let earlier = with_lost_attempts(queued.history.clone(), queued.attempts);
    let running_record = queued_record(&queued, InvocationStatus::Running, earlier.clone(), None);
    invoker.records.submit(running_record);
    let started_at = now_unix_ms();
    let started = Instant::now();
    // The function's error, if it failed, or the service's refusal: a
    // result was recorded, and nothing else of it is needed here.
    let outcome = attempt(&invoker, queue.as_ref(), &queued, lease, earlier.clone())
        .await
        .map(|invocation| invocation.result.err());
    // The attempt is over: the worker may start another in its place.
    drop(running);
    let next = next_step(
        outcome.as_ref().map(Option::as_ref),
        queued.attempts,
        settings.max_retries(),
    );
    let ended = Ended {
        invoker: &invoker,
        queue: queue.as_ref(),
        queued: &queued,
        lease,
        earlier,
        outcome,
        started_at,
        started,
    };
    let settled = match next {
        Next::Done => ended.done(&settings).await,
        Next::Retry { after_ms } => ended.again(after_ms).await,
        Next::Dead(why) => ended.dead(&settings, &why).await,
    };
    if let Err(error) = settled {
        let request_id = &queued.invocation.key.request_id;
        tracing::error!(%error, %request_id, "cannot settle a queued invocation");
    }
}

/// An attempt that ended, to be settled.
struct Ended<'a> {
    invoker: &'a Invoker,
    queue: &'a dyn InvocationQueue,
    queued: &'a Queued,
    lease: Lease,
    earlier: Vec<Attempt>,
    outcome: Result<Option<FunctionError>, InvokeError>,
    started_at: i64,
    started: Instant,
}

impl Ended<'_> {
    /// It succeeded: to its success destination, then off the queue.
    async fn done(self, settings: &AsyncConfig) -> cloudlet_store::Result<bool> {
        let key = &self.queued.invocation.key;
        if let Some(destination) = &settings.on_success {
            if let Ok(Some(record)) = self.invoker.records.record(&key.env, &key.request_id).await {
                self.invoker
                    .send_to_destination(destination, Condition::Success, self.queued, &record)
                    .await;
            }
        }
        persist_records(self.invoker).await;
        let settled = self.queue.finish(key, self.lease.token).await;
        left(self.invoker, self.queued);
        settled
    }

    /// It runs again in about `after_ms`; its record says `retrying`.
    async fn again(self, after_ms: i64) -> cloudlet_store::Result<bool> {
        let due = now_unix_ms() + jittered(after_ms);
        let (invoker, queue, key, token) = (
            self.invoker,
            self.queue,
            &self.queued.invocation.key,
            self.lease.token,
        );
        let mut record = self.record().await;
        record.status = InvocationStatus::Retrying;
        record.next_attempt_at = Some(due);
        let history = record.attempts.clone();
        invoker.records.submit(record);
        persist_records(invoker).await;
        queue.retry(key, token, due, &history).await
    }

    /// It will not run again: to its failure destination and the dead letters.
    async fn dead(self, settings: &AsyncConfig, why: &str) -> cloudlet_store::Result<bool> {
        let (invoker, queue, queued, token) =
            (self.invoker, self.queue, self.queued, self.lease.token);
        let mut record = self.record().await;
        record.status = InvocationStatus::Failed;
        if let Some(destination) = &settings.on_failure {
            invoker
                .send_to_destination(destination, Condition::RetriesExhausted, queued, &record)
                .await;
        }
        let history = record.attempts.clone();
        invoker.records.submit(record);
        persist_records(invoker).await;
        let key = &queued.invocation.key;
        let settled = queue.dead_letter(key, token, why, &history).await;
        left(invoker, queued);
        settled
    }

    /// The record that lists this attempt: its own, when it ran and its
    /// record is at hand; else one made from the queue entry, for an attempt
    /// the service refused (which has no record of its own).
    async fn record(self) -> InvocationRecord {
        let key = &self.queued.invocation.key;
        if self.outcome.is_ok() {
            match self.invoker.records.record(&key.env, &key.request_id).await {
                Ok(Some(record)) if record.attempts.len() == self.earlier.len() + 1 => {
                    return record
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot read an attempt's record"),
            }
        }
        let error = match self.outcome {
            Ok(error) => error,
            Err(refused) => Some(FunctionError::new(refused.code, refused.message)),
        };
        let mut attempts = self.earlier;
        attempts.push(Attempt {
            number: attempts.len() as u32 + 1,
            started_at: Some(self.started_at),
            duration_us: Some(self.started.elapsed().as_micros() as u64),
            status: InvocationStatus::Failed,
            error: error.clone(),
        });
        queued_record(self.queued, InvocationStatus::Failed, attempts, error)
    }
}

/// The settings that apply to the invocation: its function's own over its
/// version's `config.json` defaults (the built-in ones if the version is
/// gone).
pub(super) async fn settings_of(invoker: &Invoker, queued: &Queued) -> AsyncConfig {
    let invocation = &queued.invocation;
    let defaults = match invoker.resolve(&target_of(invocation)).await {
        Ok(installed) => installed.function.config.async_defaults(),
        Err(_) => AsyncConfig::default(),
    };
    let env = &invocation.key.env;
    invoker
        .async_settings(env, &invocation.function, &defaults)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(code = %error.code, message = %error.message,
                "cannot read a function's asynchronous settings; the defaults apply");
            defaults.effective()
        })
}

/// The function and version an invocation was accepted for.
fn target_of(invocation: &NewQueued) -> Target {
    Target {
        access: Access::for_caller(invocation.key.env.clone()),
        name: invocation.function.clone(),
        qualifier: Qualifier::Version(invocation.version.as_str().to_owned()),
    }
}

/// Waits until the attempt's record is written, before the queue hears of
/// the outcome: the queue's synced commit then syncs the record with it (one
/// write-ahead log), so that an invocation the queue no longer holds always
/// has its record, whenever the server dies. A record that cannot be written
/// is logged by the store; the outcome is settled anyway.
async fn persist_records(invoker: &Invoker) {
    if let Err(error) = invoker.records.flush().await {
        tracing::warn!(%error, "an asynchronous invocation's record may be lost");
    }
}

/// Runs the attempt through the invocation service, renewing the lease
/// while it runs.
async fn attempt(
    invoker: &Invoker,
    queue: &dyn InvocationQueue,
    queued: &Queued,
    lease: Lease,
    earlier: Vec<Attempt>,
) -> Result<Invocation, InvokeError> {
    let invocation = &queued.invocation;
    let key = &invocation.key;
    let target = target_of(invocation);
    let mut context = InvokeContext::new(key.request_id.clone(), invocation.trigger.clone());
    context.origin = origin::read(invocation.origin.as_deref());
    context.earlier_attempts = Some(earlier);
    let event = event_of(invocation.event_kind, invocation.event.clone());
    // Renewed every third of its length: two renewals may fail before it
    // runs out under a running attempt.
    let lease_ms = invoker.queue()?.lease_ms();
    let invoke = invoker.invoke(target, event, context);
    tokio::pin!(invoke);
    let renew_every = Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(1).max(1));
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    loop {
        tokio::select! {
            outcome = &mut invoke => return outcome,
            _ = renew.tick() => {
                let until = now_unix_ms() + lease_ms;
                if let Err(error) = queue.extend(key, lease.token, until).await {
                    tracing::warn!(%error, "cannot renew a queued invocation's lease");
                }
            }
        }
    }
}

/// `history` with an entry for each attempt that started and never ended
/// (its server died; its lease ran out), up to the one starting now, which
/// is attempt `attempts`.
fn with_lost_attempts(mut history: Vec<Attempt>, attempts: u32) -> Vec<Attempt> {
    for number in history.len() as u32 + 1..attempts {
        history.push(Attempt {
            number,
            started_at: None,
            duration_us: None,
            status: InvocationStatus::Failed,
            error: Some(FunctionError::new(
                ErrorCode::SysErr,
                "the server stopped while this attempt ran; the invocation ran again once its \
                 lease ran out",
            )),
        });
    }
    history
}

/// The invocation left the queue: its env's queue has room for one more.
fn left(invoker: &Invoker, queued: &Queued) {
    if let Ok(queue) = invoker.queue() {
        queue.left(&queued.invocation.key.env);
    }
}

/// Records an invocation whose age ran out as `expired`, and sends it to
/// its failure destination.
pub(super) async fn settle_expired(invoker: Arc<Invoker>, queued: Queued) {
    left(&invoker, &queued);
    let attempts = with_lost_attempts(queued.history.clone(), queued.attempts + 1);
    let error = FunctionError::new(
        ErrorCode::EventAgeExceeded,
        format!(
            "its age ran out after {} attempts{}",
            queued.attempts,
            queued
                .last_error()
                .as_deref()
                .map(|last| format!("; the last failed with: {last}"))
                .unwrap_or_default()
        ),
    );
    let record = queued_record(&queued, InvocationStatus::Expired, attempts, Some(error));
    if let Some(destination) = &settings_of(&invoker, &queued).await.on_failure {
        invoker
            .send_to_destination(destination, Condition::EventAgeExceeded, &queued, &record)
            .await;
    }
    invoker.records.submit(record);
}

#[cfg(test)]
mod tests {
    use super::with_lost_attempts;

    #[test]
    fn attempts_that_never_ended_are_listed_as_lost() {
        let history = with_lost_attempts(Vec::new(), 3);
        let numbers: Vec<u32> = history.iter().map(|a| a.number).collect();
        assert_eq!(numbers, [1, 2], "attempt 3 is the one starting now");
        assert!(history.iter().all(|a| a.started_at.is_none()));
        assert!(with_lost_attempts(Vec::new(), 1).is_empty());
    }
}
