//! Instance pools: one per deployed version of a function.
//!
//! Warm instances wait in a LIFO stack (the most recently used one is the
//! most likely to be hot in cache), and a checkout prefers one that last ran
//! on the calling thread, whose core's cache holds it. A pool holds one
//! semaphore permit per live instance, busy or idle, so that a function
//! cannot grow past its instance limit; each instance carries its permit, so
//! every way an instance can end (discarded after a fatal error, reaped when
//! idle, dropped with a retired pool) gives its slot back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::instance::{this_thread, Instance};

pub(crate) struct Pool {
    idle: Mutex<Vec<Instance>>,
    /// One permit per live instance.
    slots: Arc<Semaphore>,
    max: usize,
    retired: AtomicBool,
}

impl Pool {
    /// A pool of at most `max` instances.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(max)),
            max,
            retired: AtomicBool::new(false),
        }
    }

    /// The most recently used idle instance that last ran on this thread, else
    /// the most recently used one. Under load every worker thread takes turns
    /// on a function's few instances; keeping each on one thread spares moving
    /// its QuickJS heap between cores' caches. Only the top few are looked at,
    /// so a checkout stays O(1).
    pub(crate) fn checkout(&self) -> Option<Instance> {
        const LOOK_AT: usize = 4;
        let here = this_thread();
        let mut idle = self.idle.lock();
        let top = idle.len();
        let same_thread = idle
            .iter()
            .rev()
            .take(LOOK_AT)
            .position(|i| i.last_thread == here);
        match same_thread {
            Some(offset) => Some(idle.remove(top - 1 - offset)),
            None => idle.pop(),
        }
    }

    /// Reserves a slot for a new instance, or `None` when the pool is full.
    pub(crate) fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Returns an instance for reuse; a retired pool drops it instead.
    pub(crate) fn checkin(&self, instance: Instance) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.idle.lock();
        // Checked again under the lock so a concurrent retire cannot miss it.
        if !self.retired.load(Ordering::Acquire) {
            idle.push(instance);
        }
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let drained = std::mem::take(&mut *self.idle.lock());
        // Instances are dropped outside the lock: freeing a QuickJS heap takes time.
        drop(drained);
    }

    /// Drops instances idle for longer than `ttl`.
    pub(crate) fn reap(&self, ttl: Duration) {
        let now = Instant::now();
        let expired: Vec<Instance> = {
            let mut idle = self.idle.lock();
            let (keep, expired) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|i| now.duration_since(i.last_used) < ttl);
            *idle = keep;
            expired
        };
        drop(expired);
    }

    /// When the idle instance unused for longest was last used.
    pub(crate) fn least_recently_used(&self) -> Option<Instant> {
        self.idle.lock().first().map(|instance| instance.last_used)
    }

    /// Takes the idle instance unused for longest (the bottom of the stack).
    pub(crate) fn evict_least_recently_used(&self) -> Option<Instance> {
        let mut idle = self.idle.lock();
        (!idle.is_empty()).then(|| idle.remove(0))
    }

    /// Instances alive, busy or idle.
    pub(crate) fn live(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live() == 0
    }
}
