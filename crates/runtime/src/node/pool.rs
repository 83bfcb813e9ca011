//! The specialised workers of one function version: the idle ones, and the
//! invocations waiting for a busy one to come back.
//!
//! A worker runs one invocation at a time, so a function with more
//! invocations in flight than workers needs more workers, or a wait. For a
//! function that waits on I/O (a database, another service), another worker
//! serves at once, as on Lambda. For one bound by the CPU, once it has a
//! worker per core, another worker would only share the cores with the
//! others, after a cold start that costs more CPU than many calls: its
//! invocations wait for a busy worker instead, up to [`CPU_BOUND_WAIT`] (and
//! while one of its workers is still starting: in a burst of calls on a busy
//! machine a cold start takes longer than the wait, which would otherwise
//! start a worker for every call of the burst). Which kind a function is, its
//! workers say: how long their event loop ran and how long it waited for I/O
//! or timers during each invocation (unlike CPU against wall time, this does
//! not count the time a worker waited for a core). A worker that comes back
//! goes to the invocation that waited longest: with the worker simply put
//! back on the idle list, the invocation that returned it would take it again
//! at once, and the waiting ones would all run out of time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::protocol::LoopTime;
use super::worker::Worker;

/// How long an invocation of a function bound by the CPU waits for a busy
/// worker before starting another one: hundreds of short calls, and about
/// what a cold start costs that finds no pre-warmed worker.
const CPU_BOUND_WAIT: Duration = Duration::from_millis(100);

/// How often a waiting invocation looks again whether it should go on.
const RECHECK: Duration = Duration::from_millis(20);

/// A function whose workers' event loops run for more than this share of
/// its invocations is bound by the CPU.
const CPU_BOUND_SHARE: f64 = 0.5;

/// Generic over the worker only so that its hand-offs can be tested
/// without Node.js processes.
pub(super) struct Pool<W = Worker> {
    state: Mutex<State<W>>,
    /// One permit per worker alive, busy or idle: the instance limit.
    slots: Arc<Semaphore>,
    max: usize,
    /// Workers in their cold start.
    starting: AtomicUsize,
    retired: AtomicBool,
}

struct State<W> {
    idle: Vec<W>,
    /// Oldest first; a sender whose invocation stopped waiting is skipped.
    waiting: VecDeque<oneshot::Sender<W>>,
    /// The share of its invocations the workers' event loops ran, a moving
    /// average; unknown until an invocation has ended.
    loop_share: Option<f64>,
}

impl<W> State<W> {
    fn cpu_bound(&self) -> bool {
        self.loop_share.is_none_or(|share| share > CPU_BOUND_SHARE)
    }

    fn count(&mut self, busy: LoopTime) {
        let total = busy.active_us + busy.idle_us;
        let share = if total == 0 {
            1.0
        } else {
            busy.active_us as f64 / total as f64
        };
        // A few invocations' worth of memory: a function changes its ways
        // (a cache warms up) without one odd call flipping the decision.
        self.loop_share = Some(
            self.loop_share
                .map_or(share, |old| 0.75 * old + 0.25 * share),
        );
    }
}

impl<W> Pool<W> {
    /// An empty pool of at most `max` workers.
    pub(super) fn new(max: usize) -> Self {
        Self {
            state: Mutex::new(State {
                idle: Vec::new(),
                waiting: VecDeque::new(),
                loop_share: None,
            }),
            slots: Arc::new(Semaphore::new(max)),
            max,
            starting: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// The workers alive, busy or idle.
    pub(super) fn live(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// A place for one more worker, unless the pool is at its limit.
    pub(super) fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// A warm worker for the next invocation: an idle one, or, for a
    /// function bound by the CPU that has `cores` workers, a busy one that
    /// comes back within [`CPU_BOUND_WAIT`] or after the cold start of one
    /// starting meanwhile. `None`: start another worker.
    pub(super) async fn warm_worker(&self, cores: usize) -> Option<W> {
        let receiver = {
            let mut state = self.state.lock();
            if let Some(worker) = state.idle.pop() {
                return Some(worker);
            }
            if self.live() < cores || !state.cpu_bound() || self.retired.load(Ordering::Acquire) {
                return None;
            }
            let (sender, receiver) = oneshot::channel();
            state.waiting.push_back(sender);
            receiver
        };
        let mut waiting = Waiting {
            pool: self,
            handed: receiver,
        };
        let began = tokio::time::Instant::now();
        loop {
            if let Ok(handed) = tokio::time::timeout(RECHECK, &mut waiting.handed).await {
                return handed.ok();
            }
            let starting = self.starting.load(Ordering::Acquire) > 0;
            let worth_it = self.state.lock().cpu_bound() && began.elapsed() < CPU_BOUND_WAIT;
            if !starting && !worth_it {
                // A worker sent just as the wait ran out is still ours.
                waiting.handed.close();
                return waiting.handed.try_recv().ok();
            }
        }
    }

    /// Counts a worker of this pool as starting until the guard is dropped.
    pub(super) fn starting(&self) -> Starting<'_> {
        self.starting.fetch_add(1, Ordering::AcqRel);
        Starting(&self.starting)
    }

    /// Takes a worker back after its invocation, with how its event loop
    /// spent it: to the invocation that waited longest, else onto the idle
    /// list. A retired pool's workers end.
    pub(super) fn check_in(&self, mut worker: W, busy: Option<LoopTime>) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock();
        if let Some(busy) = busy {
            state.count(busy);
        }
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

/// An invocation's wait for a worker. Dropped while waiting (the invocation
/// was cancelled: its client went away), it puts a worker handed to it
/// meanwhile back into the pool, instead of ending it.
struct Waiting<'a, W> {
    pool: &'a Pool<W>,
    handed: oneshot::Receiver<W>,
}

impl<W> Drop for Waiting<'_, W> {
    fn drop(&mut self) {
        self.handed.close();
        if let Ok(worker) = self.handed.try_recv() {
            self.pool.check_in(worker, None);
        }
    }
}

/// A worker's cold start, counted while it lasts (see [`Pool::starting`]).
pub(super) struct Starting<'a>(&'a AtomicUsize);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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

    const CPU_BOUND: Option<LoopTime> = Some(LoopTime {
        active_us: 900,
        idle_us: 100,
    });
    const WAITS_ON_IO: Option<LoopTime> = Some(LoopTime {
        active_us: 50,
        idle_us: 20_000,
    });

    /// A pool of numbered stand-in workers with `alive` of them busy.
    fn pool_with_busy(alive: u32) -> Arc<Pool<u32>> {
        let pool = Arc::new(Pool::new(MAX));
        pool.slots.forget_permits(alive as usize);
        pool
    }

    /// A pool whose function has shown how it spends its invocations.
    async fn pool_of(kind: Option<LoopTime>) -> Arc<Pool<u32>> {
        let pool = pool_with_busy(2);
        pool.check_in(0, kind);
        assert_eq!(pool.warm_worker(CORES).await, Some(0));
        pool
    }

    fn waiter(pool: &Arc<Pool<u32>>) -> tokio::task::JoinHandle<Option<u32>> {
        let pool = pool.clone();
        tokio::spawn(async move { pool.warm_worker(CORES).await })
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_is_taken_at_once() {
        let pool = pool_with_busy(3);
        pool.check_in(7, None);
        assert_eq!(pool.warm_worker(CORES).await, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn below_a_worker_per_core_an_invocation_starts_one_without_waiting() {
        let pool = pool_with_busy(1);
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(CORES).await, None);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_function_waiting_on_io_gets_another_worker_without_waiting() {
        let pool = pool_of(WAITS_ON_IO).await;
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(CORES).await, None);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_function_bound_by_the_cpu_waits_for_a_busy_worker_up_to_its_limit() {
        let pool = pool_of(CPU_BOUND).await;
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(CORES).await, None);
        let waited = started.elapsed();
        assert!(
            waited >= CPU_BOUND_WAIT && waited <= CPU_BOUND_WAIT + RECHECK,
            "{waited:?}"
        );
        pool.check_in(5, CPU_BOUND);
        assert_eq!(pool.take_idle(), vec![5], "the late worker stays idle");
    }

    #[tokio::test(start_paused = true)]
    async fn a_returning_worker_goes_to_the_invocation_that_waited_longest() {
        let pool = pool_of(CPU_BOUND).await;
        let first = waiter(&pool);
        tokio::task::yield_now().await;
        let second = waiter(&pool);
        tokio::task::yield_now().await;
        pool.check_in(1, CPU_BOUND);
        pool.check_in(2, CPU_BOUND);
        assert_eq!(first.await.ok().flatten(), Some(1));
        assert_eq!(second.await.ok().flatten(), Some(2));
        assert!(pool.take_idle().is_empty(), "both were handed over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_handed_to_a_cancelled_invocation_goes_back_to_the_pool() {
        let pool = pool_of(CPU_BOUND).await;
        let waiting = waiter(&pool);
        tokio::task::yield_now().await;
        // Handed over, but the waiting invocation is cancelled before it runs.
        pool.check_in(6, CPU_BOUND);
        waiting.abort();
        assert!(waiting.await.is_err(), "cancelled");
        assert_eq!(pool.take_idle(), vec![6]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_goes_on_while_a_worker_of_the_function_is_starting() {
        let pool = pool_of(CPU_BOUND).await;
        let starting = pool.starting();
        let waiting = waiter(&pool);
        tokio::time::sleep(CPU_BOUND_WAIT * 3).await;
        assert!(
            !waiting.is_finished(),
            "still waiting for the starting worker"
        );
        drop(starting);
        pool.check_in(3, CPU_BOUND);
        assert_eq!(waiting.await.ok().flatten(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn once_no_worker_is_starting_a_long_wait_runs_out() {
        let pool = pool_of(CPU_BOUND).await;
        let starting = pool.starting();
        let waiting = waiter(&pool);
        tokio::time::sleep(CPU_BOUND_WAIT * 3).await;
        drop(starting);
        assert_eq!(waiting.await.ok().flatten(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_stops_once_the_function_shows_it_waits_on_io() {
        let pool = pool_with_busy(2);
        let waiting = waiter(&pool);
        tokio::task::yield_now().await;
        // Another invocation's worker came back after waiting on I/O, and was
        // handed to the waiter: the next waiter learns from it.
        pool.check_in(4, WAITS_ON_IO);
        assert_eq!(waiting.await.ok().flatten(), Some(4));
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(CORES).await, None);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_pool_ends_returning_workers_and_nobody_waits_on_it() {
        let pool = pool_with_busy(2);
        pool.check_in(1, None);
        assert_eq!(pool.retire(), vec![1]);
        pool.check_in(2, None);
        assert!(pool.take_idle().is_empty());
        let started = tokio::time::Instant::now();
        assert_eq!(pool.warm_worker(CORES).await, None);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
