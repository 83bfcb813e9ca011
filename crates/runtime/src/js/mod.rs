//! The `js` engine: CommonJS functions on QuickJS, inside this process.
//!
//! Node-compatible globals (`Buffer`, `URL`, `TextEncoder`, `EventTarget`,
//! `AbortController`, …) and the built-in modules `util`, `path`, `buffer`,
//! `url` and `string_decoder` come from LLRT's module crates, with the
//! behaviour where they differ from Node patched in `buffer.js` and
//! `extras.js`; `console`,
//! timers, `process`, `require`, `events` (`events.js`) and most of `crypto`
//! (`crypto.js`, `ciphers.rs`, `signatures.rs`) are Cloudlet's (see `host.rs`
//! and `bootstrap.js` for why). Function code gets no file system, process or
//! socket access.

mod allocator;
mod budget;
mod calls;
mod ciphers;
mod discard;
mod fetch;
mod host;
mod instance;
mod lane;
mod pool;
pub mod priority;
mod signatures;
mod stop;
mod watchdog;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloudlet_core::{EnvId, ErrorCode, FunctionName, VersionId};
use parking_lot::RwLock;

use self::instance::{Instance, Shared};
use self::pool::Pool;
use crate::sse::SseChannel;
use crate::{
    DeployedFunction, Engine, EngineError, EngineLimits, EngineUsage, InvocationOutcome,
    InvocationRequest, Output,
};

type PoolKey = (EnvId, FunctionName, VersionId);

/// Room a new instance needs in the memory budget: a warm instance of a small
/// function holds about 250 KiB, and its first invocation grows it.
const NEW_INSTANCE_BYTES: usize = 1 << 20;

/// How long an invocation waits for room in the memory budget, once idle
/// instances are evicted, before it is refused: running invocations that end
/// meanwhile free theirs.
const BUDGET_WAIT: Duration = Duration::from_millis(100);

/// The in-process JavaScript engine.
pub struct JsEngine {
    shared: Shared,
    pools: RwLock<HashMap<PoolKey, Arc<Pool>>>,
}

impl JsEngine {
    pub fn new(limits: EngineLimits) -> Self {
        Self {
            shared: Shared::new(limits),
            pools: RwLock::new(HashMap::new()),
        }
    }

    fn pool(&self, function: &DeployedFunction) -> Arc<Pool> {
        let key = (
            function.env.clone(),
            function.name.clone(),
            function.version.clone(),
        );
        if let Some(pool) = self.pools.read().get(&key) {
            return pool.clone();
        }
        self.pools
            .write()
            .entry(key)
            .or_insert_with(|| Arc::new(Pool::new(self.shared.limits.max_instances_per_function)))
            .clone()
    }

    /// Number of pools, for tests and metrics.
    pub fn pool_count(&self) -> usize {
        self.pools.read().len()
    }

    /// Waits until `extra` bytes more fit in the memory budget: idle instances
    /// are evicted first, least recently used first, then the invocation waits
    /// up to [`BUDGET_WAIT`] (never past its deadline) for running ones to end.
    async fn admit(&self, extra: usize, deadline: Instant) -> Result<(), EngineError> {
        if self.shared.budget.has_room(extra) {
            return Ok(());
        }
        // Boxed: its timer would otherwise grow every invocation's future,
        // which is moved on each call, for a wait that is rare.
        Box::pin(self.wait_for_room(extra, deadline)).await
    }

    async fn wait_for_room(&self, extra: usize, deadline: Instant) -> Result<(), EngineError> {
        let budget = &self.shared.budget;
        let give_up = deadline.min(Instant::now() + BUDGET_WAIT);
        loop {
            while !budget.has_room(extra) && self.evict_least_recently_used() {}
            if budget.has_room(extra) {
                return Ok(());
            }
            if Instant::now() >= give_up {
                return Err(EngineError {
                    code: ErrorCode::ExceedMemoryBudget,
                    message: format!(
                        "function instances hold {} bytes, the server's memory budget of {} bytes; try again shortly",
                        budget.held(),
                        budget.limit()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Drops the idle instance unused for longest, of any function. False
    /// when no instance is idle.
    fn evict_least_recently_used(&self) -> bool {
        let oldest = self
            .pools
            .read()
            .values()
            .filter_map(|pool| pool.least_recently_used().map(|at| (at, pool.clone())))
            .min_by_key(|(at, _)| *at);
        match oldest.and_then(|(_, pool)| pool.evict_least_recently_used()) {
            Some(instance) => {
                discard::discard(instance);
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl Engine for JsEngine {
    fn name(&self) -> &'static str {
        "js"
    }

    async fn invoke(
        &self,
        function: &Arc<DeployedFunction>,
        request: InvocationRequest,
    ) -> Result<InvocationOutcome, EngineError> {
        crate::events_only(&request)?;
        let pool = self.pool(function);
        let warm = pool.checkout();
        let extra = if warm.is_some() {
            0
        } else {
            NEW_INSTANCE_BYTES
        };
        if let Err(refused) = self.admit(extra, request.deadline).await {
            if let Some(instance) = warm {
                pool.checkin(instance);
            }
            return Err(refused);
        }
        let (instance, init) = match warm {
            Some(instance) => (instance, None),
            None => {
                let max = self.shared.limits.max_instances_per_function;
                let Some(slot) = pool.reserve() else {
                    return Err(EngineError {
                        code: ErrorCode::FunctionExceedResourceLimit,
                        message: format!(
                            "function {} already runs {} instances, its limit",
                            function.name, max
                        ),
                    });
                };
                let started = Instant::now();
                match Instance::create(function, &self.shared, slot, request.deadline) {
                    Ok(instance) => (instance, Some(started.elapsed())),
                    Err((error, logs)) => {
                        let (logs, logs_truncated) = logs.take();
                        return Ok(InvocationOutcome {
                            result: Err(error),
                            logs,
                            logs_truncated,
                            cold: true,
                            init: Some(started.elapsed()),
                        });
                    }
                }
            }
        };
        if request.accepts_event_stream {
            let channel = SseChannel::default();
            channel.started(init.is_some(), init);
            let function = Arc::clone(function);
            let sse = Some(channel.clone());
            let run =
                async move { Ok(run_on(&pool, instance, &function, &request, init, sse).await) };
            return crate::sse::answer(run, channel).await;
        }
        Ok(run_on(&pool, instance, function, &request, init, None).await)
    }

    fn retire(&self, env: &EnvId, name: &FunctionName, keep: Option<&VersionId>) {
        let retired: Vec<Arc<Pool>> = {
            let mut pools = self.pools.write();
            let doomed: Vec<PoolKey> = pools
                .keys()
                .filter(|(e, n, v)| e == env && n == name && Some(v) != keep)
                .cloned()
                .collect();
            doomed.iter().filter_map(|k| pools.remove(k)).collect()
        };
        for pool in retired {
            pool.retire();
        }
    }

    fn usage(&self) -> EngineUsage {
        let budget = &self.shared.budget;
        EngineUsage {
            instances: self.pools.read().values().map(|pool| pool.live()).sum(),
            memory_held_bytes: budget.held(),
            memory_budget_bytes: budget.limit(),
        }
    }

    fn end_running(&self) {
        self.shared.shutdown.cancel();
    }

    async fn background(&self) {
        crate::reap_forever(self.shared.limits.idle_instance_ttl, || self.reap_idle()).await;
    }
}

/// Runs the invocation on `instance`, then returns the instance to `pool`
/// (or discards it, when it must not serve again).
async fn run_on(
    pool: &Pool,
    mut instance: Instance,
    function: &DeployedFunction,
    request: &InvocationRequest,
    init: Option<Duration>,
    sse: Option<SseChannel>,
) -> InvocationOutcome {
    let finished = instance.invoke(function, request, sse).await;
    let (logs, logs_truncated) = instance.take_logs();
    if finished.reusable {
        pool.checkin(instance);
    } else {
        discard::discard(instance);
    }
    InvocationOutcome {
        result: finished.result.map(Output::Json),
        logs,
        logs_truncated,
        cold: init.is_some(),
        init,
    }
}

impl JsEngine {
    /// Discards the instances idle for longer than the TTL, and the pools left empty.
    fn reap_idle(&self) {
        let pools: Vec<(PoolKey, Arc<Pool>)> = self
            .pools
            .read()
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        for (key, pool) in pools {
            pool.reap(self.shared.limits.idle_instance_ttl);
            if pool.is_empty() {
                let mut map = self.pools.write();
                // Removed only if still empty and still the same pool.
                if map
                    .get(&key)
                    .is_some_and(|p| Arc::ptr_eq(p, &pool) && p.is_empty())
                {
                    map.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
