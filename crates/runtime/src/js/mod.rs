//! The `js` engine: CommonJS functions on QuickJS, inside this process.
//!
//! Node-compatible globals (`Buffer`, `URL`, `TextEncoder`, `EventTarget`,
//! `AbortController`, …) and the built-in modules `util`, `path`, `buffer`,
//! `url` and `string_decoder` come from LLRT's module crates, with the
//! behaviour where they differ from Node patched in `buffer.js` and
//! `builtins.js`; `console`,
//! timers, `process`, `require`, `events` (`events.js`) and most of `crypto`
//! (`crypto.js`, `ciphers.rs`, `signatures.rs`) are Cloudlet's (see `host.rs`
//! and `bootstrap.js` for why). Function code gets no file system, process or
//! socket access.

mod ciphers;
mod host;
mod instance;
mod pool;
mod signatures;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use cloudlet_core::{EnvId, ErrorCode, FunctionName, VersionId};
use parking_lot::RwLock;

use self::instance::Instance;
use self::pool::Pool;
use crate::{
    DeployedFunction, Engine, EngineError, EngineLimits, InvocationOutcome, InvocationRequest,
};

type PoolKey = (EnvId, FunctionName, VersionId);

/// The in-process JavaScript engine.
pub struct JsEngine {
    limits: EngineLimits,
    pools: RwLock<HashMap<PoolKey, Arc<Pool>>>,
}

impl JsEngine {
    pub fn new(limits: EngineLimits) -> Self {
        Self {
            limits,
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
            .or_insert_with(|| Arc::new(Pool::new()))
            .clone()
    }

    /// Number of pools, for tests and metrics.
    pub fn pool_count(&self) -> usize {
        self.pools.read().len()
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
        let pool = self.pool(function);
        let (mut instance, init) = match pool.checkout() {
            Some(instance) => (instance, None),
            None => {
                let Some(live) = pool.reserve(self.limits.max_instances_per_function) else {
                    return Err(EngineError {
                        code: ErrorCode::FunctionExceedResourceLimit,
                        message: format!(
                            "function {} already runs {} instances, its limit",
                            function.name, self.limits.max_instances_per_function
                        ),
                    });
                };
                let started = Instant::now();
                match Instance::create(function, &self.limits, live, request.deadline) {
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
        let finished = instance.invoke(function, &request).await;
        let (logs, logs_truncated) = instance.take_logs();
        if finished.reusable {
            pool.checkin(instance);
        }
        Ok(InvocationOutcome {
            result: finished.result,
            logs,
            logs_truncated,
            cold: init.is_some(),
            init,
        })
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

    fn reap_idle(&self) {
        let pools: Vec<(PoolKey, Arc<Pool>)> = self
            .pools
            .read()
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        for (key, pool) in pools {
            pool.reap(self.limits.idle_instance_ttl);
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
