//! Backpressure on asynchronous invocations: each env's queue is bounded,
//! so that a client that enqueues faster than the functions run fills its
//! env's share of the disk no further, and hears so at once (`429
//! EXCEED_ASYNC_QUEUE_LIMIT` with `Retry-After`) rather than finding its
//! invocations expired hours later.
//!
//! Counting an env's queue in the store on every enqueue would cost a scan
//! per invocation, so the depth is counted here: read from the store on
//! first use (what a previous run left), then raised on every enqueue and
//! lowered whenever an invocation leaves the queue. A count that drifts
//! (two servers on one store) errs by what the other added, and is read
//! afresh at the next start.

use std::collections::HashMap;
use std::time::Duration;

use cloudlet_core::{EnvId, ErrorCode};
use cloudlet_store::invocation_queue::InvocationQueue;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::invoker::InvokeError;

/// The limits on asynchronous invocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncLimits {
    /// Largest event of an asynchronous invocation, as the clouds limit
    /// theirs (Lambda: 256 KiB; 413 past it).
    pub max_event_bytes: usize,
    /// Most invocations one env may have queued (dead letters aside).
    pub max_queued_per_env: u64,
    /// Most asynchronous invocations of one function that run at once
    /// unless its `maxConcurrency` says fewer: as many as it may have
    /// instances, so that the worker does not start attempts its engine
    /// would refuse.
    pub max_per_function: u32,
    /// How long a worker's lease holds an invocation unless renewed (it is
    /// renewed every third of it while the invocation runs): how soon work
    /// whose server died is taken again.
    pub lease: Duration,
}

impl Default for AsyncLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: 256 * 1024,
            max_queued_per_env: 100_000,
            max_per_function: 64,
            lease: Duration::from_secs(30),
        }
    }
}

/// Each env's queued invocations. See the module documentation.
#[derive(Default)]
pub(crate) struct QueueDepth {
    depths: OnceCell<Mutex<HashMap<EnvId, u64>>>,
}

impl QueueDepth {
    /// Counts one more invocation for `env`, unless its queue is full.
    pub(crate) async fn admit(
        &self,
        queue: &dyn InvocationQueue,
        env: &EnvId,
        max: u64,
    ) -> Result<(), InvokeError> {
        let depths = self.depths(queue).await?;
        let mut depths = depths.lock();
        let depth = depths.entry(env.clone()).or_default();
        if *depth >= max {
            return Err(InvokeError::new(
                ErrorCode::ExceedAsyncQueueLimit,
                format!(
                    "env {env} already has {depth} asynchronous invocations queued, its limit; \
                     try again once they have run"
                ),
            ));
        }
        *depth += 1;
        Ok(())
    }

    /// One invocation of `env` left the queue (it finished, or became a
    /// dead letter, or was cancelled), or was never added (an ID accepted
    /// before).
    pub(crate) fn left(&self, env: &EnvId) {
        if let Some(depths) = self.depths.get() {
            if let Some(depth) = depths.lock().get_mut(env) {
                *depth = depth.saturating_sub(1);
            }
        }
    }

    async fn depths(
        &self,
        queue: &dyn InvocationQueue,
    ) -> Result<&Mutex<HashMap<EnvId, u64>>, InvokeError> {
        self.depths
            .get_or_try_init(|| async {
                let stored = queue.depths().await.map_err(InvokeError::storage)?;
                Ok(Mutex::new(stored.into_iter().collect()))
            })
            .await
    }
}
