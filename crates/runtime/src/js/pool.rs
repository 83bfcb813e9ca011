//! Instance pools: one per deployed version of a function.
//!
//! Warm instances wait in a LIFO stack (the most recently used one is the
//! most likely to be hot in cache). A pool counts its live instances, busy or
//! idle, so that a function cannot grow past its instance limit; the count is
//! a token each instance carries, so every way an instance can end (discarded
//! after a fatal error, reaped when idle, dropped with a retired pool) gives
//! its slot back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::instance::Instance;

/// A slot in a pool's instance count, released on drop.
#[derive(Debug)]
pub(crate) struct LiveToken(Arc<AtomicUsize>);

impl Drop for LiveToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) struct Pool {
    idle: Mutex<Vec<Instance>>,
    live: Arc<AtomicUsize>,
    retired: AtomicBool,
}

impl Pool {
    pub(crate) fn new() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            live: Arc::new(AtomicUsize::new(0)),
            retired: AtomicBool::new(false),
        }
    }

    pub(crate) fn checkout(&self) -> Option<Instance> {
        self.idle.lock().pop()
    }

    /// Reserves a slot for a new instance, or `None` when the pool is full.
    pub(crate) fn reserve(&self, max: usize) -> Option<LiveToken> {
        let mut current = self.live.load(Ordering::Acquire);
        loop {
            if current >= max {
                return None;
            }
            match self.live.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(LiveToken(self.live.clone())),
                Err(actual) => current = actual,
            }
        }
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

    pub(crate) fn is_empty(&self) -> bool {
        self.live.load(Ordering::Acquire) == 0
    }
}
