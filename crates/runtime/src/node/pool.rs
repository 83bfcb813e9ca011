//! The specialised workers of one function version: the idle ones, and the
//! invocations waiting for a busy one to come back.
//!
//! A worker runs one invocation at a time, so a function with more
//! invocations in flight than workers needs more workers, or a wait. Where
//! the function's workers already number the machine's cores, another one
//! would only share the cores with them, after a cold start that costs more
//! CPU than many calls; so an invocation first waits a little for a busy
//! worker ([`WARM_WAIT`]), and one whose wait runs out (a function waiting
//! on I/O, not the CPU) grows the pool as before. A worker that comes back
//! goes to the invocation that waited longest: with the worker simply put
//! back on the idle list, the invocation that returned it would take it
//! again at once, and the waiting ones would all run out of time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Semaphore};

use super::worker::Worker;

/// How long an invocation waits for a busy worker of its function before
/// starting another one, once the function has a worker per core: many calls
/// of a function bound by the CPU, and less than a cold start that has no
/// pre-warmed worker to take.
const WARM_WAIT: Duration = Duration::from_millis(20);

/// Generic over the worker only so that its hand-offs can be tested
/// without Node.js processes.
pub(super) struct Pool<W = Worker> {
    state: Mutex<State<W>>,
    /// One permit per worker alive, busy or idle: the instance limit.
    slots: Arc<Semaphore>,
    retired: AtomicBool,
}

struct State<W> {
    idle: Vec<W>,
    /// Oldest first; a sender whose invocation stopped waiting is skipped.
    waiting: VecDeque<oneshot::Sender<W>>,
}

impl<W> Pool<W> {
    /// An empty pool of at most `max` workers.
    pub(super) fn new(max: usize) -> Self {
        Self {
            state: Mutex::new(State {
                idle: Vec::new(),
                waiting: VecDeque::new(),
            }),
            slots: Arc::new(Semaphore::new(max)),
            retired: AtomicBool::new(false),
        }
    }

    /// The permits of this pool's workers, one per worker alive.
    pub(super) fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }

    /// A warm worker for the next invocation: an idle one, or, once the
    /// function has `cores` workers, a busy one that comes back within
    /// [`WARM_WAIT`]. `None`: start another worker.
    pub(super) async fn warm_worker(&self, max: usize, cores: usize) -> Option<W> {
        let mut handed = {
            let mut state = self.state.lock();
            if let Some(worker) = state.idle.pop() {
                return Some(worker);
            }
            let alive = max - self.slots.available_permits();
            if alive < cores || self.retired.load(Ordering::Acquire) {
                return None;
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting.push_back(sender);
            receiver
        };
        match tokio::time::timeout(WARM_WAIT, &mut handed).await {
            Ok(handed) => handed.ok(),
            Err(_) => {
                // A worker sent just as the wait ran out is still ours.
                handed.close();
                handed.try_recv().ok()
            }
        }
    }

    /// Takes a worker back after its invocation: to the invocation that
    /// waited longest, else onto the idle list. A retired pool's workers end.
    pub(super) fn check_in(&self, mut worker: W) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock();
        while let Some(waiter) = state.waiting.pop_front() {
            match waiter.send(worker) {
                Ok(()) => return,
                Err(back) => worker = back,
            }
        }
        state.idle.push(worker);
    }

    /// Marks the pool retired (its version is no longer deployed) and hands
    /// over its idle workers to end; waiting invocations start their own.
    pub(super) fn retire(&self) -> Vec<W> {
        self.retired.store(true, Ordering::Release);
        self.take_idle()
    }

    /// All idle workers, for shutdown.
    pub(super) fn take_idle(&self) -> Vec<W> {
        let mut state = self.state.lock();
        state.waiting.clear();
        std::mem::take(&mut state.idle)
    }
}

impl Pool<Worker> {
    /// The idle workers unused for `ttl`, taken out of the pool.
    pub(super) fn take_expired(&self, ttl: Duration) -> Vec<Worker> {
        let mut state = self.state.lock();
        let (keep, expired) = std::mem::take(&mut state.idle)
            .into_iter()
            .partition(|worker| worker.last_used.elapsed() < ttl);
        state.idle = keep;
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 8;
    const CORES: usize = 2;

    /// A pool of numbered stand-in workers with `alive` of them busy.
    fn pool_with_busy(alive: u32) -> Arc<Pool<u32>> {
        let pool = Arc::new(Pool::new(MAX));
        pool.slots().forget_permits(alive as usize);
        pool
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_is_taken_at_once() {
        let pool = pool_with_busy(3);
        pool.check_in(7);
        assert_eq!(pool.warm_worker(MAX, CORES).await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn below_a_worker_per_core_an_invocation_starts_one_without_waiting() {
        let pool = pool_with_busy(1);
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(MAX, CORES).await, None);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_returning_worker_goes_to_the_invocation_that_waited_longest() {
        let pool = pool_with_busy(2);
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.warm_worker(MAX, CORES).await }
        });
        tokio::task::yield_now().await;
        let second = tokio::spawn({
            let pool = pool.clone();
            async move { pool.warm_worker(MAX, CORES).await }
        });
        tokio::task::yield_now().await;
        pool.check_in(1);
        pool.check_in(2);
        assert_eq!(first.await.ok().flatten(), Some(1));
        assert_eq!(second.await.ok().flatten(), Some(2));
        assert!(pool.take_idle().is_empty(), "both were handed over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_runs_out_starts_a_worker_and_the_late_one_stays_idle() {
        let pool = pool_with_busy(2);
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(MAX, CORES).await, None);
        assert_eq!(started.elapsed(), WARM_WAIT);
        pool.check_in(5);
        assert_eq!(pool.take_idle(), vec![5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_pool_ends_returning_workers_and_nobody_waits_on_it() {
        let pool = pool_with_busy(2);
        pool.check_in(1);
        assert_eq!(pool.retire(), vec![1]);
        pool.check_in(2);
        assert!(pool.take_idle().is_empty());
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(MAX, CORES).await, None);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
