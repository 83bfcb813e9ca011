//! The instances of one function version, and the leases requests hold on
//! them: an instance serves up to the function's `instanceConcurrency`
//! requests at once; past that on every instance, another one starts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::{ErrorCode, FunctionError, LogLine, RequestId};
use parking_lot::Mutex;

use super::instance::{Instance, Killed, Readiness};
use super::{launch, refused, Shared};
use crate::{DeployedFunction, EngineError};

pub(super) struct Pool {
    /// The version's folder on disk, once written: looked up once per
    /// pool, not per request.
    folder: tokio::sync::OnceCell<PathBuf>,
    concurrency: usize,
    memory_limit_mb: u64,
    instances: Mutex<Vec<Arc<Instance>>>,
    /// `instances.len()`, readable without the lock (the instance limit
    /// counts across a function's versions).
    live: AtomicUsize,
    /// Set when a newer version replaced this one: its instances stop once idle.
    retired: AtomicBool,
}

/// A leased slot, the instance it is on, and how long the request waited for
/// the instance to start (`None` when it was serving already).
pub(super) type Leased = (Lease, bool, Option<Duration>);

/// Why a lease did not get a serving instance: the function's failure, with
/// the lease whose logs explain it.
pub(super) type NotServing = (FunctionError, Option<Lease>);

impl Pool {
    pub(super) fn new(function: &DeployedFunction) -> Self {
        Self {
            folder: tokio::sync::OnceCell::new(),
            concurrency: function.config.instance_concurrency as usize,
            memory_limit_mb: u64::from(function.config.memory_size),
            instances: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// The version's folder, written on the pool's first request.
    pub(super) async fn folder(
        &self,
        shared: &Arc<Shared>,
        function: &Arc<DeployedFunction>,
    ) -> Result<&Path, String> {
        self.folder
            .get_or_try_init(|| super::folder::ready(shared, function))
            .await
            .map(PathBuf::as_path)
    }

    /// The function's `memorySize`, which each instance's processes share.
    pub(super) fn memory_limit_mb(&self) -> u64 {
        self.memory_limit_mb
    }

    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// A slot on an instance that serves, starting one if none has room.
    pub(super) async fn lease(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        function: &Arc<DeployedFunction>,
        folder: &Path,
        request: &RequestId,
        deadline: Instant,
    ) -> Result<Result<Leased, NotServing>, EngineError> {
        let instance = match self.slot_on_existing() {
            Some(instance) => instance,
            None => self.start(shared, function, folder)?,
        };
        let waiting = !instance.is_ready();
        let lease = Lease::new(Arc::clone(self), instance, request);
        if !waiting {
            return Ok(Ok((lease, false, None)));
        }
        let started = Instant::now();
        Ok(match lease.instance.wait_ready(deadline).await {
            Some(Readiness::Ready) => Ok((lease, true, Some(started.elapsed()))),
            Some(Readiness::Failed(why)) => Err((
                FunctionError::new(ErrorCode::FunctionStatusAbnormal, why),
                Some(lease),
            )),
            Some(Readiness::Starting) | None => Err((
                FunctionError::new(
                    ErrorCode::FunctionTimeLimitExceeded,
                    format!(
                        "the function's server had not started when its timeout of {} s passed",
                        function.config.timeout
                    ),
                ),
                Some(lease),
            )),
        })
    }

    /// A slot on the fullest instance that has room, so requests share
    /// instances up to their concurrency before more start.
    fn slot_on_existing(&self) -> Option<Arc<Instance>> {
        let mut instances = self.instances.lock();
        instances.retain(|instance| !instance.is_gone());
        self.live.store(instances.len(), Ordering::Release);
        let instance = instances
            .iter()
            .filter(|instance| instance.in_flight() < self.concurrency)
            .max_by_key(|instance| instance.in_flight())?;
        instance.take_slot();
        Some(Arc::clone(instance))
    }

    /// A new instance, with a slot taken, starting in a task of its own (a
    /// request that gives up waiting does not stop the start others wait on).
    fn start(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        function: &Arc<DeployedFunction>,
        folder: &Path,
    ) -> Result<Arc<Instance>, EngineError> {
        let max = shared.limits.max_instances_per_function;
        if shared.instances_of(&function.env, &function.name) >= max {
            return Err(refused(
                ErrorCode::FunctionExceedResourceLimit,
                format!(
                    "{} already runs {max} instances, each serving {} requests, its limit",
                    function.name, self.concurrency
                ),
            ));
        }
        let port = launch::free_port()
            .map_err(|e| refused(ErrorCode::SysErr, format!("no port for an instance: {e}")))?;
        let instance = Arc::new(Instance::new(
            port,
            shared.limits.max_log_bytes_per_invocation,
        ));
        instance.take_slot();
        {
            let mut instances = self.instances.lock();
            instances.push(Arc::clone(&instance));
            self.live.store(instances.len(), Ordering::Release);
        }
        tokio::spawn(launch::launch(
            Arc::clone(shared),
            Arc::clone(function),
            folder.to_owned(),
            Arc::clone(&instance),
        ));
        Ok(instance)
    }

    /// Takes `instance` out of the pool.
    fn remove(&self, instance: &Arc<Instance>) {
        let mut instances = self.instances.lock();
        instances.retain(|i| !Arc::ptr_eq(i, instance));
        self.live.store(instances.len(), Ordering::Release);
    }

    /// Stops the instances idle for longer than `ttl`, and forgets dead ones.
    pub(super) fn reap(&self, ttl: Duration) {
        let retired = self.retired.load(Ordering::Acquire);
        self.stop_where(|instance| {
            instance.is_gone()
                || instance
                    .idle_for()
                    .is_some_and(|idle| retired || idle > ttl)
        });
    }

    /// Marks the pool replaced: idle instances stop now, busy ones when
    /// their last request ends.
    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.stop_where(|instance| instance.idle_for().is_some());
    }

    /// Takes every instance out, for the server's shutdown.
    pub(super) fn stop_all(&self) -> Vec<Arc<Instance>> {
        let mut instances = self.instances.lock();
        self.live.store(0, Ordering::Release);
        std::mem::take(&mut *instances)
    }

    fn stop_where(&self, stop: impl Fn(&Instance) -> bool) {
        let stopped: Vec<Arc<Instance>> = {
            let mut instances = self.instances.lock();
            let (stopped, kept) = std::mem::take(&mut *instances)
                .into_iter()
                .partition(|instance| stop(instance));
            *instances = kept;
            self.live.store(instances.len(), Ordering::Release);
            stopped
        };
        for instance in stopped {
            tokio::spawn(instance.stop(launch::STOP_GRACE));
        }
    }

    /// The instances that are alive, for the memory watch.
    pub(super) fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances.lock().clone()
    }
}

/// A request's slot on an instance, given back when dropped.
pub(super) struct Lease {
    pool: Arc<Pool>,
    pub(super) instance: Arc<Instance>,
    request: RequestId,
    logs_taken: bool,
}

impl Lease {
    fn new(pool: Arc<Pool>, instance: Arc<Instance>, request: &RequestId) -> Self {
        instance.output.begin(request);
        Self {
            pool,
            instance,
            request: request.clone(),
            logs_taken: false,
        }
    }

    /// Ends the lease with what the instance printed for the request.
    pub(super) fn take_logs(mut self) -> (Vec<LogLine>, bool) {
        self.logs_taken = true;
        // Only the one request in flight gets the lines printed before it
        // ended; with others in flight they go to the backlog either way.
        if self.instance.in_flight() == 1 {
            self.instance.output.drain();
        }
        self.instance.output.end(&self.request)
    }

    /// Why the instance stopped serving this request, with its last output.
    pub(super) fn failure(&self, what: &str) -> FunctionError {
        match self.instance.killed() {
            Killed::Memory => FunctionError::new(
                ErrorCode::FunctionMemoryLimitExceeded,
                "the function's processes held more than its memorySize and were killed",
            ),
            Killed::Stopped | Killed::No => FunctionError::new(
                ErrorCode::FunctionStatusAbnormal,
                launch::explained(&self.instance, what),
            ),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.logs_taken {
            drop(self.instance.output.end(&self.request));
        }
        let still = self.instance.release_slot();
        if still == 0 && self.pool.retired.load(Ordering::Acquire) {
            self.pool.remove(&self.instance);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(Arc::clone(&self.instance).stop(launch::STOP_GRACE));
            }
        }
    }
}
