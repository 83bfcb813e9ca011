//! The `node` engine: functions in real Node.js worker processes, for the
//! runtimes CloudBase, SCF and Lambda name `Nodejs*`, so that code written
//! for them runs with all of Node's API.
//!
//! A few generic workers are kept warm (`runtimes/node/worker.js`, started
//! with the default heap limit); the first invocation of a function version
//! takes one and specialises it (its folder, handler and environment), so a
//! cold start costs loading the function's code, not starting Node. A worker
//! runs one invocation at a time: SDKs read identity from `process.env` when
//! they are called. Each version has a pool of specialised workers, growing
//! with concurrency up to the instance limit (past a worker per core only
//! for functions that wait on I/O, see `pool.rs`); idle ones are reaped.
//!
//! Limits: the deadline kills the worker (Node cannot be interrupted);
//! memory is held by V8's heap limit (`--max-old-space-size`, the function's
//! `memorySize`) and by the worker's resident memory, checked while it runs;
//! an exit, a crash, an exception or a rejection nothing handled fails only
//! that invocation, with the process's last output, and the next invocation
//! gets a fresh worker.
//!
//! Isolation: a worker's working directory is its function's folder, written
//! under the engine's directory on first use and removed once no worker runs
//! that version, and its `TMPDIR` and `HOME` a temp dir of its own, removed
//! with it; it runs as the server's user, with the server's file system and
//! network, and no sandbox beyond that (README, "Engines").

pub(crate) mod install;
mod outcome;
mod pool;
mod protocol;
mod sdk_env;
mod worker;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Instant;

use async_trait::async_trait;

use crate::sse::SseChannel;
use cloudlet_core::{EnvId, ErrorCode, FunctionName, VersionId};
use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use self::outcome::Invocation;
use self::pool::Pool;
use self::worker::{Spawn, Worker};
use crate::{
    DeployedFunction, Engine, EngineError, EngineLimits, EngineUsage, InvocationOutcome,
    InvocationRequest,
};

/// The worker bootstrap, written to the engine's directory at start.
const WORKER_SCRIPT: &str = include_str!("../../../../runtimes/node/worker.js");

/// Modules the platform provides, written to the engine's directory at
/// start and found through `NODE_PATH`, which Node searches after the
/// function's own `node_modules`: Link IoT Edge's SDK, which is part of the
/// edge runtime and not on npm.
const PLATFORM_MODULES: &[(&str, &str)] = &[
    (
        "linkedge-core-sdk/index.js",
        include_str!("../../../../runtimes/node/modules/linkedge-core-sdk/index.js"),
    ),
    (
        "linkedge-core-sdk/sdk.js",
        include_str!("../../../../runtimes/sdk/linkedge-core-sdk.js"),
    ),
];

/// The oldest Node.js the worker bootstrap runs on.
const MIN_NODE_MAJOR: u32 = 18;

/// Generic workers kept warm for cold starts.
const PREWARMED: usize = 2;

/// The heap limit of the generic workers: the default `memorySize`.
const DEFAULT_HEAP_MB: u32 = cloudlet_core::FunctionConfig::DEFAULT_MEMORY_MB;

/// Node's own resident memory before any function: a worker is held to its
/// function's `memorySize`, but never to less than this.
const MIN_RSS_LIMIT_MB: u64 = 128;

type PoolKey = (EnvId, FunctionName, VersionId);

/// A `node` found for the engine, and its version.
#[derive(Debug, Clone)]
pub struct NodeBinary {
    pub path: PathBuf,
    pub version: String,
}

impl NodeBinary {
    /// The `npm` that came with it (beside it), else the one on PATH.
    pub(crate) fn npm(&self) -> PathBuf {
        self.path
            .parent()
            .map(|dir| dir.join("npm"))
            .filter(|npm| npm.exists())
            .unwrap_or_else(|| PathBuf::from("npm"))
    }
}

impl NodeBinary {
    /// `node` at `path` (or on `PATH`), if it runs and is new enough.
    pub async fn find(path: Option<&Path>) -> Result<NodeBinary, String> {
        let path = path.map_or_else(|| PathBuf::from("node"), Path::to_owned);
        let output = tokio::process::Command::new(&path)
            .arg("--version")
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .ok_or_else(|| format!("{} --version printed {version:?}", path.display()))?;
        if major < MIN_NODE_MAJOR {
            return Err(format!(
                "{} is Node.js {version}; the node engine needs {MIN_NODE_MAJOR} or later",
                path.display()
            ));
        }
        Ok(NodeBinary { path, version })
    }
}

/// The Node.js engine. See the module documentation.
pub struct NodeEngine {
    shared: Arc<Shared>,
}

/// The engine's state, shared with the tasks that keep its warm pool full.
struct Shared {
    node: NodeBinary,
    dir: Dirs,
    limits: EngineLimits,
    pools: RwLock<HashMap<PoolKey, Arc<Pool>>>,
    /// The cores this process may use: a function gets this many workers
    /// before an invocation waits a little for a busy one (see `pool`).
    cores: usize,
    /// Pools retired while invocations may still run on them: their
    /// versions' folders stay until those end.
    retired: Mutex<Vec<(VersionId, Weak<Pool>)>>,
    /// Generic workers, started and waiting for a function.
    warm: Mutex<Vec<Worker>>,
    shutdown: CancellationToken,
}

/// Where the engine keeps its files.
struct Dirs {
    script: PathBuf,
    /// The platform's modules (`NODE_PATH`).
    platform_modules: PathBuf,
    sockets: PathBuf,
    packages: PathBuf,
    /// Installed dependencies, by the hash of `package.json` and its lockfile.
    modules: PathBuf,
    temp: PathBuf,
}

impl NodeEngine {
    /// An engine running `node`, keeping its files (the worker bootstrap,
    /// functions' folders, sockets, temp dirs) under `dir`.
    pub fn new(node: NodeBinary, dir: &Path, limits: EngineLimits) -> std::io::Result<Self> {
        Ok(Self {
            shared: Arc::new(Shared::new(node, dir, limits)?),
        })
    }

    /// Starts the generic workers that wait for functions' cold starts.
    pub async fn prewarm(&self) {
        self.shared.prewarm().await
    }
}

impl Shared {
    fn new(node: NodeBinary, dir: &Path, limits: EngineLimits) -> std::io::Result<Self> {
        // Absolute: a worker runs in a folder of its own, and finds its
        // socket and the platform's modules by these paths.
        let dir = std::path::absolute(dir)?;
        let dir = Dirs {
            script: dir.join("worker.js"),
            platform_modules: dir.join("platform_modules"),
            sockets: dir.join("sockets"),
            packages: dir.join("packages"),
            modules: dir.join("modules"),
            temp: dir.join("tmp"),
        };
        // What an earlier run left (it may have been killed) is of no use:
        // functions' folders are written again from their packages on first use.
        for leftovers in [&dir.sockets, &dir.packages, &dir.temp] {
            let _ = std::fs::remove_dir_all(leftovers);
        }
        install::remove_unused(&dir.modules);
        for folder in [&dir.sockets, &dir.packages, &dir.modules, &dir.temp] {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&dir.script, WORKER_SCRIPT)?;
        for (path, source) in PLATFORM_MODULES {
            let file = dir.platform_modules.join(path);
            if let Some(folder) = file.parent() {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(file, source)?;
        }
        Ok(Self {
            node,
            dir,
            limits,
            pools: RwLock::new(HashMap::new()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            retired: Mutex::new(Vec::new()),
            warm: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
        })
    }

    /// Runs one invocation on a worker of the function's pool (a warm one,
    /// or one started and loaded now); with `sse`, its `context.sse()`
    /// writes into it.
    async fn invoke(
        self: &Arc<Self>,
        function: &DeployedFunction,
        request: &InvocationRequest,
        sse: Option<SseChannel>,
    ) -> Result<InvocationOutcome, EngineError> {
        if self.shutdown.is_cancelled() {
            return Err(refused(
                ErrorCode::FunctionTerminatedByShutdown,
                "the server is shutting down",
            ));
        }
        let pool = self.pool(function);
        let mut run = Invocation::new(function, request, &self.limits, &self.shutdown, sse);
        let warm = pool.warm_worker(self.cores).await;
        let (worker, init) = match warm {
            Some(worker) => (worker, None),
            None => {
                let Some(slot) = pool.reserve() else {
                    return Err(refused(
                        ErrorCode::FunctionExceedResourceLimit,
                        format!(
                            "function {} already runs {} instances, its limit",
                            function.name, self.limits.max_instances_per_function
                        ),
                    ));
                };
                let started = Instant::now();
                let _starting = pool.starting();
                let mut worker = self.worker_for(function).await.map_err(|e| {
                    refused(
                        ErrorCode::SysErr,
                        format!("cannot start a Node.js worker: {e}"),
                    )
                })?;
                worker.slot = Some(slot);
                let dir = self.package_dir(function).await.map_err(|e| {
                    refused(
                        ErrorCode::SysErr,
                        format!("cannot write the function's folder: {e}"),
                    )
                })?;
                match run.load(worker, &dir).await {
                    Ok(worker) => (worker, Some(started.elapsed())),
                    Err(error) => return Ok(run.failed_cold(error, started.elapsed())),
                }
            }
        };
        run.started(init);
        let (outcome, worker) = run.invoke(worker, Shared::rss_limit(function)).await;
        if let Some((mut worker, busy)) = worker {
            worker.last_used = Instant::now();
            pool.check_in(worker, busy);
        }
        Ok(InvocationOutcome {
            cold: init.is_some(),
            init,
            ..outcome
        })
    }

    /// Starts generic workers until [`PREWARMED`] wait for a function.
    async fn prewarm(&self) {
        while self.warm.lock().len() < PREWARMED {
            match self.spawn(DEFAULT_HEAP_MB).await {
                Ok(worker) => self.warm.lock().push(worker),
                Err(error) => {
                    tracing::warn!(%error, "cannot start a Node.js worker");
                    return;
                }
            }
        }
    }

    async fn spawn(&self, heap_mb: u32) -> std::io::Result<Worker> {
        Worker::spawn(Spawn {
            node: &self.node.path,
            script: &self.dir.script,
            platform_modules: &self.dir.platform_modules,
            sockets: &self.dir.sockets,
            temp: &self.dir.temp,
            heap_mb,
        })
        .await
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
        let max = self.limits.max_instances_per_function;
        self.pools
            .write()
            .entry(key)
            .or_insert_with(|| Arc::new(Pool::new(max)))
            .clone()
    }

    /// A worker for a new instance of `function`: a warm generic one when its
    /// heap limit fits, else a fresh one; the warm pool is topped up behind it.
    async fn worker_for(self: &Arc<Self>, function: &DeployedFunction) -> std::io::Result<Worker> {
        let heap_mb = function.config.memory_size;
        let warm = {
            let mut warm = self.warm.lock();
            let at = warm.iter().position(|w| w.heap_mb == heap_mb);
            at.map(|at| warm.swap_remove(at))
        };
        let engine = Arc::clone(self);
        tokio::spawn(async move { engine.prewarm().await });
        match warm {
            Some(worker) => Ok(worker),
            None => self.spawn(heap_mb).await,
        }
    }

    /// The function's folder on disk, written on first use (to a temp folder
    /// renamed into place, so a half-written folder is never used), with its
    /// installed dependencies linked in as `node_modules`.
    async fn package_dir(&self, function: &DeployedFunction) -> Result<PathBuf, String> {
        let dir = self.dir.packages.join(function.version.as_str());
        if dir.exists() {
            return Ok(dir);
        }
        let modules = self.installed_modules(function).await?;
        let package = Arc::clone(&function.package);
        let target = dir.clone();
        tokio::task::spawn_blocking(move || {
            crate::folder::write_package(&package, modules.as_deref(), &target, |_, bytes| {
                bytes.clone()
            })
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot write the function's folder: {e}"))?;
        Ok(dir)
    }

    /// The function's installed dependencies, if it needs any: installed now
    /// unless an earlier deploy with the same `package.json` did.
    async fn installed_modules(
        &self,
        function: &DeployedFunction,
    ) -> Result<Option<PathBuf>, String> {
        let Some(hash) = install::needed(&function.package) else {
            return Ok(None);
        };
        install::install(
            &function.package,
            &hash,
            &self.dir.modules,
            &self.node.npm(),
        )
        .await
        .map(Some)
    }

    /// Removes the folders of the versions no pool runs any more; a version
    /// that runs again has its folder written again.
    fn forget_unused_packages(&self) -> Vec<PathBuf> {
        // Under the pools' lock: no invocation can start on a version between
        // the check and the move (one that starts after finds the folder
        // gone and writes it again).
        let pools = self.pools.read();
        let mut retired = self.retired.lock();
        retired.retain(|(_, pool)| pool.strong_count() > 0);
        let in_use: HashSet<&str> = pools
            .keys()
            .map(|(_, _, version)| version.as_str())
            .chain(retired.iter().map(|(version, _)| version.as_str()))
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.dir.packages) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let is_version = VersionId::parse(name.clone()).is_ok();
                (is_version && !in_use.contains(name.as_str())).then(|| entry.path())
            })
            .filter_map(|folder| {
                let gone = crate::folder::unique_sibling(&folder, "gone");
                std::fs::rename(&folder, &gone).ok().map(|()| gone)
            })
            .collect()
    }

    fn rss_limit(function: &DeployedFunction) -> u64 {
        u64::from(function.config.memory_size).max(MIN_RSS_LIMIT_MB) * 1024 * 1024
    }
}

fn refused(code: ErrorCode, message: impl Into<String>) -> EngineError {
    EngineError {
        code,
        message: message.into(),
    }
}

#[async_trait]
impl Engine for NodeEngine {
    fn name(&self) -> &'static str {
        "node"
    }

    async fn invoke(
        &self,
        function: &Arc<DeployedFunction>,
        request: InvocationRequest,
    ) -> Result<InvocationOutcome, EngineError> {
        crate::events_only(&request)?;
        if request.accepts_event_stream {
            let channel = SseChannel::default();
            let (shared, function) = (Arc::clone(&self.shared), Arc::clone(function));
            let sse = Some(channel.clone());
            let run = async move { shared.invoke(&function, &request, sse).await };
            return crate::sse::answer(run, channel).await;
        }
        self.shared.invoke(function, &request, None).await
    }

    async fn prepare(&self, function: &Arc<DeployedFunction>) -> Result<(), EngineError> {
        self.shared
            .installed_modules(function)
            .await
            .map(drop)
            .map_err(|e| {
                refused(
                    ErrorCode::InvalidFunctionPackage,
                    format!("the dependencies could not be installed: {e}"),
                )
            })
    }

    fn retire(&self, env: &EnvId, name: &FunctionName, keep: Option<&VersionId>) {
        let retired: Vec<(VersionId, Arc<Pool>)> = {
            let mut pools = self.shared.pools.write();
            let doomed: Vec<PoolKey> = pools
                .keys()
                .filter(|(e, n, v)| e == env && n == name && Some(v) != keep)
                .cloned()
                .collect();
            doomed
                .into_iter()
                .filter_map(|key| pools.remove(&key).map(|pool| (key.2, pool)))
                .collect()
        };
        for (version, pool) in retired {
            drop(pool.retire());
            self.shared
                .retired
                .lock()
                .push((version, Arc::downgrade(&pool)));
        }
    }

    async fn background(&self) {
        crate::reap_forever(self.shared.limits.idle_instance_ttl, || self.reap_idle()).await;
    }

    fn usage(&self) -> EngineUsage {
        let pools: Vec<Arc<Pool>> = self.shared.pools.read().values().cloned().collect();
        EngineUsage {
            instances: pools.iter().map(|pool| pool.live()).sum(),
            memory_held_bytes: 0,
            memory_budget_bytes: 0,
        }
    }

    fn end_running(&self) {
        self.shared.shutdown.cancel();
    }

    async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let idle: Vec<Worker> = self
            .shared
            .pools
            .write()
            .drain()
            .flat_map(|(_, pool)| pool.take_idle())
            .chain(std::mem::take(&mut *self.shared.warm.lock()))
            .collect();
        for mut worker in idle {
            worker.kill();
            let _ = worker.exit_status().await;
        }
    }
}

impl NodeEngine {
    /// Ends the workers idle for longer than the TTL, forgets the pools left
    /// empty, and removes the folders of versions nothing runs.
    fn reap_idle(&self) {
        let ttl = self.shared.limits.idle_instance_ttl;
        let pools: Vec<(PoolKey, Arc<Pool>)> = self
            .shared
            .pools
            .read()
            .iter()
            .map(|(key, pool)| (key.clone(), Arc::clone(pool)))
            .collect();
        for (key, pool) in pools {
            drop(pool.take_expired(ttl));
            let mut map = self.shared.pools.write();
            // Removed only if still unused and still the same pool; the
            // lookups of invocations hold their own Arc.
            let unused =
                |p: &Arc<Pool>| Arc::ptr_eq(p, &pool) && Arc::strong_count(p) == 2 && p.live() == 0;
            if map.get(&key).is_some_and(unused) {
                map.remove(&key);
            }
        }
        let gone = self.shared.forget_unused_packages();
        if !gone.is_empty() {
            // A function may have left many files: removed off the async workers.
            tokio::task::spawn_blocking(move || {
                for folder in gone {
                    let _ = std::fs::remove_dir_all(folder);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests;
