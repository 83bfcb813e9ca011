//! The long-running lane: where JavaScript goes on running once it has held a
//! request-serving worker for a slice.
//!
//! Function code runs inline on the tokio worker that took the request,
//! because handing a warm invocation of a few microseconds to another thread
//! would cost more than the invocation. A function that computes for long
//! would then hold that worker, and everything queued on it would wait. A
//! running QuickJS call cannot move to another thread, so instead the worker
//! moves: [`LongRunningLane::enter`] calls `block_in_place`, which hands the
//! worker's scheduler to a fresh thread and leaves this one to the function.
//!
//! The lane bounds how many such threads run JavaScript at once (a
//! `tokio::sync::Semaphore`, fair, so waiters are served in turn); the rest
//! wait, blocked, for a seat, until their deadline. A seated thread is put
//! under `SCHED_IDLE` (`priority.rs`), so the OS runs the request-serving
//! workers before it whenever they have work. Once its stretch of JS
//! returns, the seat is given back and the thread's normal policy restored,
//! since tokio may later make it a worker again. Where the process may not
//! restore a thread's policy, priorities are left alone, and the lane has one
//! seat fewer than the machine has cores, so that one is always left to the
//! workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::priority;
use super::stop::Stop;

#[derive(Debug)]
pub(crate) struct LongRunningLane {
    seats: Arc<Semaphore>,
    /// Stretches of JS waiting for a seat: a seated one gives its seat up
    /// after a quantum only when someone waits.
    waiting: AtomicUsize,
    /// Whether seated threads run under `SCHED_IDLE` (see [`priority`]).
    lower_priority: bool,
    shutdown: CancellationToken,
}

/// A seat in the lane, held by the thread running a long stretch of JS.
/// Dropping it gives the seat back and restores the thread's priority.
#[derive(Debug)]
pub(crate) struct LaneSeat {
    lane: Arc<LongRunningLane>,
    permit: Option<OwnedSemaphorePermit>,
    lowered: bool,
}

impl LongRunningLane {
    /// A lane of `threads` seats, or by default one per core (one fewer
    /// where seated threads keep their normal priority). Waits report
    /// [`Stop::Shutdown`] once `shutdown` is cancelled.
    pub(crate) fn new(threads: Option<usize>, shutdown: CancellationToken) -> Arc<Self> {
        let lower_priority = priority::can_lower_and_restore();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let seats = threads.unwrap_or(if lower_priority { cores } else { cores - 1 });
        if !lower_priority {
            tracing::info!(
                seats,
                "long-running functions keep their threads' normal priority: this process may \
                 not restore a thread's scheduling policy (CAP_SYS_NICE or RLIMIT_NICE 20)"
            );
        }
        Arc::new(Self {
            seats: Arc::new(Semaphore::new(seats.max(1))),
            waiting: AtomicUsize::new(0),
            lower_priority,
            shutdown,
        })
    }

    /// Moves the calling stretch of JS off its worker and waits for a seat.
    /// `Ok(None)` when it cannot move: outside a multi-thread tokio runtime
    /// there is no worker to hand over, and the stretch stays where it is.
    pub(crate) fn enter(self: &Arc<Self>, deadline: Instant) -> Result<Option<LaneSeat>, Stop> {
        let on_multi_thread = Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
        if !on_multi_thread {
            return Ok(None);
        }
        // Never let a panic unwind into QuickJS, which called us.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(|| {
                let permit = self.wait_for_seat(deadline)?;
                let lowered = self.lower_priority && priority::lower();
                self.wait_for_the_worker_to_move(deadline);
                Ok(Some(LaneSeat {
                    lane: Arc::clone(self),
                    permit: Some(permit),
                    lowered,
                }))
            })
        }))
        .unwrap_or(Ok(None))
    }

    /// Blocks this thread (already off the workers) until a seat is free, the
    /// deadline passes, or the server ends the invocation.
    fn wait_for_seat(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, Stop> {
        if let Ok(permit) = Arc::clone(&self.seats).try_acquire_owned() {
            return Ok(permit);
        }
        let _waiting = Waiting::count(&self.waiting);
        Handle::current().block_on(async {
            tokio::select! {
                permit = Arc::clone(&self.seats).acquire_owned() => permit.map_err(|_| Stop::Shutdown),
                () = tokio::time::sleep_until(deadline.into()) => Err(Stop::Deadline),
                () = self.shutdown.cancelled() => Err(Stop::Shutdown),
            }
        })
    }

    /// `block_in_place` gives the worker's scheduler back to this thread when
    /// its closure returns, unless the replacement thread has taken it by
    /// then; a JavaScript loop that got it back would hold a worker again. The
    /// replacement is a job queued on tokio's blocking pool, which runs its
    /// jobs in order, so once a no-op queued after it has run, the replacement
    /// has started; it takes the scheduler as its first step, and this thread,
    /// now under `SCHED_IDLE` where allowed, yields to it. (Should it still
    /// lose the race, the next quantum's `take_turn` hands the worker over again.)
    fn wait_for_the_worker_to_move(&self, deadline: Instant) {
        let handle = Handle::current();
        let marker = handle.spawn_blocking(|| ());
        handle.block_on(async {
            tokio::select! {
                _ = tokio::time::timeout_at(deadline.into(), marker) => {}
                () = self.shutdown.cancelled() => {}
            }
        });
        std::thread::yield_now();
    }
}

/// One stretch waiting for a seat, counted for as long as it waits (also
/// when the wait ends in a panic, at runtime shutdown).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LaneSeat {
    /// After a quantum in the lane: hands the worker over again if this
    /// thread got it back, and when other stretches wait for a seat, gives
    /// this one up and queues behind them.
    pub(crate) fn take_turn(&mut self, deadline: Instant) -> Result<(), Stop> {
        let lane = Arc::clone(&self.lane);
        let others_wait = lane.waiting.load(Ordering::Acquire) > 0;
        if others_wait {
            drop(self.permit.take());
        }
        // Still under SCHED_IDLE while waiting: it computes nothing meanwhile.
        let permit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(|| {
                let permit = others_wait
                    .then(|| lane.wait_for_seat(deadline))
                    .transpose()?;
                lane.wait_for_the_worker_to_move(deadline);
                Ok(permit)
            })
        }))
        .unwrap_or(Err(Stop::Shutdown))?;
        if let Some(permit) = permit {
            self.permit = Some(permit);
        }
        Ok(())
    }
}

impl Drop for LaneSeat {
    fn drop(&mut self) {
        if self.lowered {
            priority::restore();
        }
    }
}
