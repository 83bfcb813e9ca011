//! The deadline watchdog: what QuickJS's interrupt handler asks every few
//! thousand bytecode instructions (and between promise jobs), and the one
//! place that decides an instance must stop.
//!
//! Returning true from the interrupt handler throws an exception JavaScript
//! cannot catch, which is how limits hold even for `while (true) {}` inside
//! `try`. Once a limit has stopped an instance, the watchdog remembers why
//! ([`Stop`]) and keeps answering true: whatever the function does next
//! (catch the error, loop in a `finally`, run a getter while its result is
//! serialised) is interrupted too, and the invocation reports the limit,
//! never a caught error or a result.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::lane::{LaneSeat, LongRunningLane};
pub(crate) use super::stop::Stop;
use crate::heap_meter;

/// After this long in one uninterrupted stretch of JS on a request-serving
/// worker, the stretch continues in the [`LongRunningLane`].
const SLICE: Duration = Duration::from_millis(10);

/// How long a stretch of JS keeps its seat in the lane while other
/// invocations wait for one; then it queues again behind them, so that
/// several long-running functions share the lane's threads in turn.
const QUANTUM: Duration = Duration::from_millis(50);

fn now_ns() -> u64 {
    super::host::monotonic_ns() as u64
}

#[derive(Debug)]
pub(crate) struct Watchdog {
    deadline_ns: AtomicU64,
    /// When the current stretch of JS started (on a worker) or took its lane seat.
    slice_start_ns: AtomicU64,
    /// 0 while running, else a [`Stop`].
    stopped: AtomicU8,
    /// The lane seat of the stretch of JS in progress, once it has left the worker.
    seat: Mutex<Option<LaneSeat>>,
    /// Whether `seat` holds one: most stretches never take a seat, and their
    /// end need not take the lock.
    seated: AtomicBool,
    lane: Arc<LongRunningLane>,
    /// Cancelled when the server ends the invocations still running at shutdown.
    shutdown: CancellationToken,
}

impl Watchdog {
    pub(crate) fn new(lane: Arc<LongRunningLane>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            deadline_ns: AtomicU64::new(u64::MAX),
            slice_start_ns: AtomicU64::new(0),
            stopped: AtomicU8::new(0),
            seat: Mutex::new(None),
            seated: AtomicBool::new(false),
            lane,
            shutdown,
        })
    }

    /// Starts watching an invocation (or an instance's creation) that must end by `deadline`.
    pub(crate) fn arm(&self, deadline: Instant) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.deadline_ns.store(
            now_ns().saturating_add(remaining.as_nanos() as u64),
            Ordering::Relaxed,
        );
        self.restart_slice();
    }

    pub(crate) fn disarm(&self) {
        self.deadline_ns.store(u64::MAX, Ordering::Relaxed);
    }

    /// A stretch of JS starts on this thread with a full slice; when the
    /// returned guard drops, the stretch has returned to Rust, and its lane
    /// seat, if it took one, goes to the next waiting invocation and this
    /// thread gets its normal priority back.
    pub(crate) fn stretch(&self) -> Stretch<'_> {
        self.restart_slice();
        Stretch(self)
    }

    fn restart_slice(&self) {
        self.slice_start_ns.store(now_ns(), Ordering::Relaxed);
    }

    /// Why the instance was stopped, if a limit stopped it.
    pub(crate) fn stopped(&self) -> Option<Stop> {
        Stop::from_u8(self.stopped.load(Ordering::Relaxed))
    }

    /// Records why the instance must stop; the first reason stands.
    pub(crate) fn stop(&self, why: Stop) {
        let _ = self
            .stopped
            .compare_exchange(0, why as u8, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The token the server cancels to end running invocations.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// True once the instance must stop: a limit stopped it, its deadline
    /// passed, or the server ended it.
    pub(crate) fn should_stop(&self) -> bool {
        self.check() || self.stopped().is_some()
    }

    /// Checks the deadline, the memory meter and shutdown, recording the
    /// first that applies. True when the instance must stop.
    fn check(&self) -> bool {
        if self.stopped.load(Ordering::Relaxed) != 0 {
            return true;
        }
        // Memory QuickJS does not count (see `crate::heap_meter`) past the limit.
        if heap_meter::over_budget() {
            heap_meter::trip();
            self.stop(Stop::Memory);
            return true;
        }
        if self.shutdown.is_cancelled() {
            self.stop(Stop::Shutdown);
            return true;
        }
        if now_ns() >= self.deadline_ns.load(Ordering::Relaxed) {
            self.stop(Stop::Deadline);
            return true;
        }
        false
    }

    /// The interrupt handler (and the question long native work, such as
    /// PBKDF2, asks between its steps): true stops the JavaScript running now.
    ///
    /// A stretch of JS that outruns its slice on a request-serving worker
    /// moves on to the long-running lane (which hands the worker's
    /// scheduler to another thread and lowers this one's priority); one that
    /// has held a lane seat for a quantum makes sure it is still off the
    /// workers, and queues again when others wait.
    pub(crate) fn on_interrupt_check(&self) -> bool {
        if self.check() {
            return true;
        }
        let ran = now_ns().saturating_sub(self.slice_start_ns.load(Ordering::Relaxed));
        let due = match self.seated.load(Ordering::Relaxed) {
            false => ran > SLICE.as_nanos() as u64,
            true => ran > QUANTUM.as_nanos() as u64,
        };
        if !due {
            return false;
        }
        // Taken out of the lock before blocking in the lane: only this thread
        // uses the seat, but no lock is held across a wait.
        let taken = self.seat.lock().take();
        let moved = match taken {
            None => self.lane.enter(self.deadline()),
            Some(mut held) => held.take_turn(self.deadline()).map(|()| Some(held)),
        }
        .map(|seat| {
            self.seated.store(seat.is_some(), Ordering::Relaxed);
            *self.seat.lock() = seat;
        })
        .inspect_err(|_| self.seated.store(false, Ordering::Relaxed));
        // Timed afresh: a stretch that could not leave its thread (no lane on
        // a current-thread runtime) asks again only after another slice.
        self.restart_slice();
        match moved {
            Ok(()) => false,
            Err(why) => {
                self.stop(why);
                true
            }
        }
    }

    /// The deadline as an `Instant`, for waits in the lane.
    fn deadline(&self) -> Instant {
        let left = self
            .deadline_ns
            .load(Ordering::Relaxed)
            .saturating_sub(now_ns());
        Instant::now() + Duration::from_nanos(left.min(u64::from(u32::MAX) * 1_000))
    }
}

/// A stretch of JavaScript in progress; see [`Watchdog::stretch`].
pub(crate) struct Stretch<'a>(&'a Watchdog);

impl Drop for Stretch<'_> {
    fn drop(&mut self) {
        if self.0.seated.swap(false, Ordering::Relaxed) {
            let seat = self.0.seat.lock().take();
            drop(seat);
        }
    }
}
