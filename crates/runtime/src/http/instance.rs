//! One running instance of an HTTP function: the bootstrap's process group,
//! the port its server listens on, the requests in flight on it.

use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::output::Output;

/// Where an instance is in its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Readiness {
    Starting,
    /// Its server accepts connections.
    Ready,
    /// It will never serve: why, with its last output.
    Failed(String),
}

/// Why the engine killed an instance, for the requests that were in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Killed {
    /// Not killed: it is alive, or it exited by itself.
    No = 0,
    /// Its processes held more than the function's `memorySize`.
    Memory = 1,
    /// Idle, replaced by a new version, or the server stopping.
    Stopped = 2,
}

pub(super) struct Instance {
    /// The port its server listens on (the bind shim's and `PORT`).
    pub(super) port: u16,
    pub(super) output: Arc<Output>,
    /// The bootstrap's process ID, which is also its process group's: every
    /// process the bootstrap starts is killed with it. 0 until it runs.
    group: AtomicI32,
    in_flight: AtomicUsize,
    last_used: Mutex<Instant>,
    ready: watch::Sender<Readiness>,
    /// Cancelled when the bootstrap process has exited.
    exited: CancellationToken,
    /// How it exited, once it has.
    exit_status: Mutex<Option<String>>,
    killed: AtomicU8,
}

impl Instance {
    pub(super) fn new(port: u16, log_cap: usize) -> Self {
        Self {
            port,
            output: Arc::new(Output::new(log_cap)),
            group: AtomicI32::new(0),
            in_flight: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            ready: watch::channel(Readiness::Starting).0,
            exited: CancellationToken::new(),
            exit_status: Mutex::new(None),
            killed: AtomicU8::new(Killed::No as u8),
        }
    }

    /// The process group, 0 before the bootstrap runs.
    pub(super) fn group(&self) -> i32 {
        self.group.load(Ordering::Acquire)
    }

    pub(super) fn set_group(&self, pid: u32) {
        self.group.store(pid as i32, Ordering::Release);
    }

    pub(super) fn set_ready(&self, readiness: Readiness) {
        self.ready.send_replace(readiness);
    }

    /// Waits until the instance serves or failed to start; `None` when
    /// `until` came first.
    pub(super) async fn wait_ready(&self, until: Instant) -> Option<Readiness> {
        let mut ready = self.ready.subscribe();
        let settled = async {
            ready
                .wait_for(|r| *r != Readiness::Starting)
                .await
                .map(|readiness| readiness.clone())
        };
        match tokio::time::timeout_at(until.into(), settled).await {
            Ok(Ok(readiness)) => Some(readiness),
            Ok(Err(_)) => Some(Readiness::Failed("the instance was dropped".into())),
            Err(_) => None,
        }
    }

    pub(super) fn is_ready(&self) -> bool {
        *self.ready.borrow() == Readiness::Ready
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(super) fn take_slot(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Gives a slot back; the number still in flight.
    pub(super) fn release_slot(&self) -> usize {
        *self.last_used.lock() = Instant::now();
        self.in_flight.fetch_sub(1, Ordering::AcqRel) - 1
    }

    pub(super) fn idle_for(&self) -> Option<Duration> {
        (self.in_flight() == 0).then(|| self.last_used.lock().elapsed())
    }

    pub(super) fn has_exited(&self) -> bool {
        self.exited.is_cancelled()
    }

    /// Whether it will serve no more requests: it exited, or was killed and
    /// is exiting.
    pub(super) fn is_gone(&self) -> bool {
        self.has_exited() || self.killed() != Killed::No
    }

    /// Resolves once the bootstrap process has exited.
    pub(super) async fn exited(&self) {
        self.exited.cancelled().await
    }

    pub(super) fn set_exited(&self, status: String) {
        *self.exit_status.lock() = Some(status);
        self.exited.cancel();
    }

    pub(super) fn exit_status(&self) -> Option<String> {
        self.exit_status.lock().clone()
    }

    pub(super) fn killed(&self) -> Killed {
        match self.killed.load(Ordering::Acquire) {
            1 => Killed::Memory,
            2 => Killed::Stopped,
            _ => Killed::No,
        }
    }

    /// Kills the whole process group at once.
    pub(super) fn kill(&self, why: Killed) {
        self.mark_killed(why);
        self.signal(libc::SIGKILL);
    }

    /// Keeps the first reason the engine ended the instance for.
    fn mark_killed(&self, why: Killed) {
        let _ = self.killed.compare_exchange(
            Killed::No as u8,
            why as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Asks the processes to end (SIGTERM), and kills them if they have not
    /// within `grace`.
    pub(super) async fn stop(self: Arc<Self>, grace: Duration) {
        self.mark_killed(Killed::Stopped);
        self.signal(libc::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            tracing::debug!(
                port = self.port,
                "an HTTP function's instance ignored SIGTERM"
            );
        }
        // Its children may outlive the bootstrap: the group goes either way.
        self.signal(libc::SIGKILL);
    }

    fn signal(&self, signal: libc::c_int) {
        let group = self.group.load(Ordering::Acquire);
        if group > 0 {
            // SAFETY: kill(2) with a negative PID signals that process group;
            // it touches no memory of ours.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(-group, signal);
            }
        }
    }
}

/// A dropped instance leaves no process behind.
impl Drop for Instance {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}
