//! The queue's worker: leases what is due and starts an attempt of each
//! (`attempt.rs`) in a task of its own.
//!
//! It holds the line on two limits. It leases no more than it may run:
//! one permit per attempt in flight, as many as the server runs
//! invocations, so that a deep queue is not leased all at once only to be
//! refused by the server's limit. And each function runs no more of its
//! asynchronous invocations at once than its `maxConcurrency` (and than it
//! may have instances): the lease
//! skips a function at its limit, and a lease taken past it (a batch with
//! several of one function) is given back without counting an attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::now_unix_ms;
use cloudlet_store::invocation_queue::{FunctionKey, InvocationQueue, Queued};
use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::attempt::{run_one, settings_of, settle_expired};
use crate::invoker::Invoker;

/// Invocations leased at a time, at most.
const LEASE_BATCH: usize = 64;
/// How often the worker looks for due invocations (retries, and leases that
/// ran out) when no invocation accepted here woke it: an idle server asks
/// its store once a second, not more.
const POLL: Duration = Duration::from_secs(1);
/// The longest pause between two leases that skipped functions.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// The queue's worker: leases what is due and runs each in a task of its
/// own, until `shutdown`.
pub(crate) async fn run_queue(invoker: Arc<Invoker>, shutdown: CancellationToken) {
    let Ok((queue, lease_ms)) = invoker
        .queue()
        .map(|queue| (Arc::clone(&queue.store), queue.lease_ms()))
    else {
        return;
    };
    // `lease_ms` is how long a lease holds (`AsyncLimits::lease`): work
    // whose server died is taken again this soon after.
    let in_flight = Arc::new(InFlight::new(invoker.running().1));
    loop {
        let now = now_unix_ms();
        expire(&invoker, queue.as_ref(), now).await;
        let room = in_flight.permits.available_permits().min(LEASE_BATCH);
        if room == 0 {
            // Every permit is out: wait for an attempt to end.
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = in_flight.permits.acquire() => continue,
            }
        }
        let skip = in_flight.saturated();
        let leasing = Instant::now();
        let leased = match queue.lease(now, room, lease_ms, &skip).await {
            Ok(leased) => leased,
            Err(error) => {
                tracing::error!(%error, "cannot lease queued invocations");
                Vec::new()
            }
        };
        let full = leased.len() == room;
        for queued in leased {
            start(&invoker, &queue, &in_flight, queued).await;
        }
        if full {
            continue;
        }
        // A lease that skipped functions at their limit may have read past
        // all of their due invocations to find none: with a deep backlog of
        // one, that read is long, so the next waits ten times as long
        // before it runs, whatever wakes the worker, and the queue's writer
        // stays free for enqueues.
        let pause = if skip.is_empty() {
            Duration::ZERO
        } else {
            (leasing.elapsed() * 10).min(MAX_PAUSE)
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = invoker.queued_work.notified() => tokio::time::sleep(pause).await,
            () = in_flight.freed.notified() => tokio::time::sleep(pause).await,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Dead-letters the invocations whose age ran out, and settles each.
async fn expire(invoker: &Arc<Invoker>, queue: &dyn InvocationQueue, now: i64) {
    match queue.expire(now).await {
        Ok(expired) => {
            for queued in expired {
                tokio::spawn(settle_expired(Arc::clone(invoker), queued));
            }
        }
        Err(error) => tracing::error!(%error, "cannot expire queued invocations"),
    }
}

/// Starts an attempt of `queued`, or gives its lease back when its function
/// runs as many as it may.
async fn start(
    invoker: &Arc<Invoker>,
    queue: &Arc<dyn InvocationQueue>,
    in_flight: &Arc<InFlight>,
    queued: Queued,
) {
    let settings = settings_of(invoker, &queued).await;
    let invocation = &queued.invocation;
    let function = (invocation.key.env.clone(), invocation.function.clone());
    let limit = invoker.queue().map_or(settings.max_concurrency, |q| {
        Some(q.per_function(settings.max_concurrency))
    });
    match in_flight.try_start(function, limit) {
        Some(running) => {
            let (invoker, queue) = (Arc::clone(invoker), Arc::clone(queue));
            tokio::spawn(run_one(invoker, queue, queued, settings, running));
        }
        None => {
            let Some(lease) = queued.lease else { return };
            if let Err(error) = queue.release(&invocation.key, lease.token).await {
                tracing::error!(%error, "cannot give a lease back");
            }
        }
    }
}

/// The attempts in flight: permits against the server's limit, and a count
/// per function against its own.
struct InFlight {
    permits: Arc<Semaphore>,
    /// Running attempts and the limit, per function with any running.
    per_function: Mutex<HashMap<FunctionKey, (u32, Option<u32>)>>,
    /// Wakes the worker when a function at its limit ends an attempt: the
    /// lease skipped its waiting invocations, and no enqueue need come to
    /// say that they may run now.
    freed: Notify,
}

impl InFlight {
    fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            per_function: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        }
    }

    /// The functions that run as many as they may: the next lease skips them.
    fn saturated(&self) -> Vec<FunctionKey> {
        self.per_function
            .lock()
            .iter()
            .filter(|(_, (running, limit))| limit.is_some_and(|limit| *running >= limit))
            .map(|(function, _)| function.clone())
            .collect()
    }

    /// Counts one more attempt of `function`, whose limit is `limit`, if it
    /// may run one more and a permit is free.
    fn try_start(self: &Arc<Self>, function: FunctionKey, limit: Option<u32>) -> Option<Running> {
        let mut per_function = self.per_function.lock();
        let (running, known_limit) = per_function.entry(function.clone()).or_insert((0, limit));
        *known_limit = limit;
        if limit.is_some_and(|limit| *running >= limit) {
            return None;
        }
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok()?;
        *running += 1;
        Some(Running {
            in_flight: Arc::clone(self),
            function,
            _permit: permit,
        })
    }
}

/// One attempt in flight; it stops counting when dropped.
pub(super) struct Running {
    in_flight: Arc<InFlight>,
    function: FunctionKey,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut per_function = self.in_flight.per_function.lock();
        if let Some((running, limit)) = per_function.get_mut(&self.function) {
            if limit.is_some_and(|limit| *running >= limit) {
                self.in_flight.freed.notify_one();
            }
            *running = running.saturating_sub(1);
            if *running == 0 {
                per_function.remove(&self.function);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cloudlet_core::{EnvId, FunctionName};

    use super::InFlight;

    fn function(name: &str) -> (EnvId, FunctionName) {
        (
            EnvId::default_env(),
            FunctionName::parse(name).expect("a name"),
        )
    }

    #[test]
    fn a_function_at_its_limit_is_skipped_until_one_of_its_attempts_ends() {
        let in_flight = Arc::new(InFlight::new(10));
        let first = in_flight.try_start(function("one"), Some(1));
        assert!(first.is_some());
        assert!(in_flight.try_start(function("one"), Some(1)).is_none());
        assert_eq!(in_flight.saturated(), [function("one")]);
        assert!(in_flight.try_start(function("other"), None).is_some());
        drop(first);
        assert!(in_flight.saturated().is_empty());
        assert!(in_flight.try_start(function("one"), Some(1)).is_some());
    }

    #[test]
    fn no_more_attempts_start_than_there_are_permits() {
        let in_flight = Arc::new(InFlight::new(2));
        let held: Vec<_> = (0..3)
            .filter_map(|_| in_flight.try_start(function("f"), None))
            .collect();
        assert_eq!(held.len(), 2);
    }
}
