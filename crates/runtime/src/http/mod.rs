//! The HTTP engine: functions that are web servers (CloudBase's HTTP
//! functions), started by their package's `scf_bootstrap` and proxied.
//!
//! An invocation is one HTTP exchange. The engine leases a slot on an
//! instance of the function's version (`pool.rs`: an instance serves up to
//! the function's `instanceConcurrency` requests at once, and more instances
//! start past it, up to the instance limit), starting one when none has room
//! (`launch.rs`: the bootstrap in its own process group, with the bind shim
//! preloaded, then a wait until the server accepts connections). The request
//! goes to the instance with hyper's pooled client and the response comes
//! back as a stream that the server sends on chunk by chunk (`proxy.rs`);
//! what the processes print becomes the records' logs (`output.rs`).
//!
//! Instances are killed when they have been idle for the idle TTL, when a
//! new version replaces theirs, when they pass their memory limit
//! (`memory.rs`), and when the server stops.

mod folder;
mod instance;
mod interpreters;
mod launch;
mod memory;
mod output;
mod pool;
mod proxy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cloudlet_core::{EnvId, ErrorCode, FunctionError, FunctionName, VersionId};
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use crate::node::NodeBinary;
use crate::{
    DeployedFunction, Engine, EngineError, EngineLimits, EngineUsage, Event, InvocationOutcome,
    InvocationRequest,
};
use launch::Spawner;
use pool::{Lease, Pool};

/// How the HTTP engine starts functions' servers.
#[derive(Debug, Clone)]
pub struct HttpEngineOptions {
    /// How long a new instance's server may take to accept connections.
    pub startup_timeout: Duration,
    /// The `node` whose `npm` installs a `package.json`'s dependencies at
    /// deploy, and which CloudBase's Node.js paths name; none without Node.js.
    pub node: Option<NodeBinary>,
}

impl Default for HttpEngineOptions {
    fn default() -> Self {
        Self {
            startup_timeout: Duration::from_secs(10),
            node: None,
        }
    }
}

type PoolKey = (EnvId, FunctionName, VersionId);

/// The HTTP engine. See the module documentation.
pub struct HttpEngine {
    shared: Arc<Shared>,
}

/// What the engine's invocations and background work share.
struct Shared {
    dirs: Dirs,
    limits: EngineLimits,
    options: HttpEngineOptions,
    pools: RwLock<HashMap<PoolKey, Arc<Pool>>>,
    /// Pools a newer version replaced, kept (with their folders) until
    /// their last instance has stopped.
    retired: parking_lot::Mutex<Vec<(VersionId, Arc<Pool>)>>,
    client: proxy::Client,
    spawner: Spawner,
    /// Cancelled when the server ends running invocations: streams end and
    /// instances are killed.
    shutdown: CancellationToken,
}

/// Where the engine keeps its files.
struct Dirs {
    /// Functions' folders, by version.
    packages: PathBuf,
    /// Installed dependencies, by the hash of `package.json` and its lockfile.
    modules: PathBuf,
    /// What CloudBase's `/var/lang/...` interpreter paths lead to here.
    lang: PathBuf,
    /// The bind shim (`runtimes/http/bind_shim.c`), preloaded into instances.
    shim: PathBuf,
}

impl HttpEngine {
    /// An engine keeping its files (functions' folders, the interpreter
    /// paths, the bind shim) under `dir`.
    pub fn new(
        dir: &Path,
        limits: EngineLimits,
        options: HttpEngineOptions,
    ) -> std::io::Result<Self> {
        let dir = std::path::absolute(dir)?;
        let dirs = Dirs {
            packages: dir.join("packages"),
            modules: dir.join("modules"),
            lang: dir.join("lang"),
            shim: dir.join("libcloudlet_bind_shim.so"),
        };
        // Folders an earlier run wrote are written again on first use.
        let _ = std::fs::remove_dir_all(&dirs.packages);
        crate::node::install::remove_unused(&dirs.modules);
        for folder in [&dirs.packages, &dirs.modules] {
            std::fs::create_dir_all(folder)?;
        }
        launch::write_shim(&dirs.shim)?;
        interpreters::link(&dirs.lang, options.node.as_ref())?;
        Ok(Self {
            shared: Arc::new(Shared {
                dirs,
                limits,
                options,
                pools: RwLock::new(HashMap::new()),
                retired: parking_lot::Mutex::new(Vec::new()),
                client: proxy::client(),
                spawner: Spawner::start()?,
                shutdown: CancellationToken::new(),
            }),
        })
    }
}

impl Shared {
    fn pool(&self, function: &DeployedFunction) -> Arc<Pool> {
        let key = (
            function.env.clone(),
            function.name.clone(),
            function.version.clone(),
        );
        if let Some(pool) = self.pools.read().get(&key) {
            return Arc::clone(pool);
        }
        Arc::clone(
            self.pools
                .write()
                .entry(key)
                .or_insert_with(|| Arc::new(Pool::new(function))),
        )
    }

    /// Instances of every version of one function, against its instance limit.
    fn instances_of(&self, env: &EnvId, name: &FunctionName) -> usize {
        self.pools
            .read()
            .iter()
            .filter(|((e, n, _), _)| e == env && n == name)
            .map(|(_, pool)| pool.live())
            .sum()
    }

    /// Every pool with instances, the retired ones included.
    fn all_pools(&self) -> Vec<Arc<Pool>> {
        let mut pools: Vec<Arc<Pool>> = self.pools.read().values().cloned().collect();
        pools.extend(self.retired.lock().iter().map(|(_, pool)| Arc::clone(pool)));
        pools
    }
}

/// A platform-side refusal with its code.
fn refused(code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError {
        code,
        message: message.into(),
    }
}

/// An invocation that ended before its function's server answered.
fn failed(error: FunctionError, lease: Option<Lease>, cold: bool) -> InvocationOutcome {
    let (logs, logs_truncated) = lease.map(Lease::take_logs).unwrap_or_default();
    InvocationOutcome {
        result: Err(error),
        logs,
        logs_truncated,
        cold,
        init: None,
    }
}

#[async_trait]
impl Engine for HttpEngine {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn invoke(
        &self,
        function: &Arc<DeployedFunction>,
        request: InvocationRequest,
    ) -> Result<InvocationOutcome, EngineError> {
        let InvocationRequest {
            request_id,
            event,
            deadline,
            ..
        } = request;
        let Event::Http(http) = event else {
            return Err(refused(
                ErrorCode::InvalidFunctionType,
                format!(
                    "{} is an HTTP function: call it on a web path, not with an event",
                    function.name
                ),
            ));
        };
        if self.shared.shutdown.is_cancelled() {
            return Err(refused(
                ErrorCode::FunctionTerminatedByShutdown,
                "the server is shutting down",
            ));
        }
        let pool = self.shared.pool(function);
        let folder = pool
            .folder(&self.shared, function)
            .await
            .map_err(|message| refused(ErrorCode::SysErr, message))?;
        let leased = pool
            .lease(&self.shared, function, folder, &request_id, deadline)
            .await?;
        let (lease, cold, init) = match leased {
            Ok(leased) => leased,
            Err((error, lease)) => return Ok(failed(error, lease, true)),
        };
        let outcome =
            proxy::forward(&self.shared, function, lease, *http, &request_id, deadline).await;
        Ok(match outcome {
            Ok(stream) => InvocationOutcome {
                result: Ok(crate::Output::Stream(stream)),
                logs: Vec::new(),
                logs_truncated: false,
                cold,
                init,
            },
            Err((error, lease)) => InvocationOutcome {
                init,
                ..failed(error, Some(lease), cold)
            },
        })
    }

    async fn prepare(&self, function: &Arc<DeployedFunction>) -> Result<(), EngineError> {
        folder::install_dependencies(&self.shared, function)
            .await
            .map(drop)
            .map_err(|message| refused(ErrorCode::InvalidFunctionPackage, message))
    }

    fn retire(&self, env: &EnvId, name: &FunctionName, keep: Option<&VersionId>) {
        let mut retired = self.shared.retired.lock();
        self.shared.pools.write().retain(|(e, n, version), pool| {
            let retire = e == env && n == name && Some(version) != keep;
            if retire {
                pool.retire();
                retired.push((version.clone(), Arc::clone(pool)));
            }
            !retire
        });
    }

    async fn background(&self) {
        let shared = &self.shared;
        let memory = memory::watch(shared);
        let reap = crate::reap_forever(shared.limits.idle_instance_ttl, || {
            let ttl = shared.limits.idle_instance_ttl;
            for pool in shared.all_pools() {
                pool.reap(ttl);
            }
            shared.retired.lock().retain(|(_, pool)| pool.live() > 0);
            shared
                .pools
                .write()
                .retain(|_, pool| pool.live() > 0 || Arc::strong_count(pool) > 1);
            folder::forget_unused(shared);
        });
        tokio::join!(memory, reap);
    }

    fn usage(&self) -> EngineUsage {
        EngineUsage {
            instances: self.shared.all_pools().iter().map(|pool| pool.live()).sum(),
            memory_held_bytes: 0,
            memory_budget_bytes: 0,
        }
    }

    fn end_running(&self) {
        self.shared.shutdown.cancel();
    }

    async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let pools = self.shared.all_pools();
        let stopping = pools.iter().flat_map(|pool| pool.stop_all());
        futures_util::future::join_all(
            stopping.map(|instance| async move { instance.stop(launch::STOP_GRACE).await }),
        )
        .await;
    }
}
