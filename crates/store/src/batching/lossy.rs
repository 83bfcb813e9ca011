//! Lossy batching: the hand-off between a request path that must never wait
//! for the disk and the one thread that writes what it hands over in
//! batches (for SQLite, `sqlite/writer.rs` and the invocation records).
//!
//! A bounded `VecDeque` under a `parking_lot` mutex: `submit` holds the lock
//! for a push (and, when full, a pop of the oldest, which is dropped and
//! counted), and wakes the writer. Every item carries a sequence number so
//! `flush` can wait for "everything up to here" without the writer knowing
//! about flushes beyond resolving their targets. The writer publishes the
//! batch it is writing as `in_flight` so lookups still find an item between
//! leaving the queue and its commit becoming visible. Bounded twice: by
//! count, and by weight ([`Weighed`]), since one item may be large.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// What an item weighs, in memory and once written, for the queue's bound
/// in bytes.
pub trait Weighed {
    fn weight(&self) -> usize;
}

/// An item and its submission number (1, 2, …).
pub type Numbered<T> = (u64, T);

/// At most one drop warning per this interval, so an overloaded server does
/// not also flood its log.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(1);

pub struct Lossy<T> {
    pub state: Mutex<LossyState<T>>,
    /// Wakes the writer: new items, close, unpause.
    pub wake: Condvar,
    pub dropped: AtomicU64,
    /// What the items are, for the log (`invocation records`).
    what: &'static str,
    capacity: usize,
    /// Most bytes of items waiting ([`Weighed`]): an item can be large
    /// (a record with a megabyte of logs), so a count alone would not bound
    /// memory.
    capacity_bytes: usize,
    /// A queue this long is a full batch: the writer is woken at once.
    batch_max: usize,
}

pub struct LossyState<T> {
    pub pending: VecDeque<Numbered<T>>,
    /// The weight of the items in `pending`.
    pub pending_bytes: usize,
    /// The batch being written, until its transaction has committed.
    pub in_flight: Option<Arc<Vec<Numbered<T>>>>,
    /// Sequence number of the last submitted item.
    submitted: u64,
    waiters: Vec<FlushWaiter>,
    /// Batches that could not be written, and the last reason.
    pub failures: u64,
    pub last_failure: Option<String>,
    /// Set by close: the writer drains the queue and exits; submits are refused.
    pub closing: bool,
    pub writer_alive: bool,
    /// Test hook: the writer takes no batch while set (unless closing).
    pub paused: bool,
    last_drop_warning: Option<Instant>,
}

struct FlushWaiter {
    /// Resolved once every item numbered up to this one is written or dropped.
    target: u64,
    /// `failures` when the flush started; more by the end means an error.
    failures: u64,
    done: oneshot::Sender<Result<()>>,
}

impl<T: Weighed> Lossy<T> {
    /// A queue of at most `capacity` items weighing `capacity_bytes`, whose
    /// writer takes batches of `batch_max`; `what` names the items in logs.
    pub fn new(
        what: &'static str,
        capacity: usize,
        capacity_bytes: usize,
        batch_max: usize,
    ) -> Self {
        Self {
            state: Mutex::new(LossyState {
                pending: VecDeque::with_capacity(capacity.min(4096)),
                pending_bytes: 0,
                in_flight: None,
                submitted: 0,
                waiters: Vec::new(),
                failures: 0,
                last_failure: None,
                closing: false,
                writer_alive: true,
                paused: false,
                last_drop_warning: None,
            }),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            what,
            capacity,
            capacity_bytes,
            batch_max,
        }
    }

    /// Queues `item` for the writer; when the queue is full, the oldest
    /// items are dropped and counted to make room.
    pub fn submit(&self, item: T) {
        let mut evicted = Vec::new();
        let mut warn = false;
        let refused;
        let wake;
        let bytes = item.weight();
        {
            let mut state = self.state.lock();
            refused = state.closing || !state.writer_alive;
            if refused {
                evicted.push(item);
            } else {
                while !state.pending.is_empty()
                    && (state.pending.len() >= self.capacity
                        || state.pending_bytes + bytes > self.capacity_bytes)
                {
                    if let Some(oldest) = state.pop_front() {
                        evicted.push(oldest.1);
                    }
                }
                state.submitted += 1;
                let seq = state.submitted;
                state.pending.push_back((seq, item));
                state.pending_bytes += bytes;
            }
            // Waking the writer for every item would cost a context switch per
            // invocation. It is woken when the queue stops being empty (it then
            // lingers to gather a batch, see Writer::wait_for_work) and when a
            // full batch is waiting.
            let len = state.pending.len();
            wake = len == 1 || len >= self.batch_max;
            if !evicted.is_empty() {
                self.dropped
                    .fetch_add(evicted.len() as u64, Ordering::Relaxed);
                warn = state.drop_warning_due();
            }
        }
        if !refused && wake {
            self.wake.notify_one();
        }
        // Freed outside the lock: an item can own much (a record, its logs).
        drop(evicted);
        if warn {
            let dropped = self.dropped.load(Ordering::Relaxed);
            if refused {
                tracing::warn!(dropped, "{} dropped: the store is closed", self.what);
            } else {
                tracing::warn!(
                    dropped,
                    capacity = self.capacity,
                    "{} dropped: their writer is behind and the queue is full",
                    self.what
                );
            }
        }
    }

    /// The newest item not yet committed that `matches` picks, if any.
    pub fn find_newest(&self, matches: impl Fn(&T) -> bool) -> Option<T>
    where
        T: Clone,
    {
        let in_flight = {
            let state = self.state.lock();
            // Newest first: a caller usually asks right after it submitted,
            // and of two items for one key the newest is the one that wins.
            if let Some((_, item)) = state.pending.iter().rev().find(|(_, i)| matches(i)) {
                return Some(item.clone());
            }
            state.in_flight.clone()
        };
        in_flight?
            .iter()
            .rev()
            .find(|(_, i)| matches(i))
            .map(|(_, i)| i.clone())
    }

    /// What `pick` makes of each item not yet committed, oldest first.
    pub fn collect<R>(&self, pick: impl FnMut(&T) -> Option<R>) -> Vec<R> {
        let state = self.state.lock();
        let in_flight = state.in_flight.iter().flat_map(|batch| batch.iter());
        in_flight
            .chain(state.pending.iter())
            .map(|(_, item)| item)
            .filter_map(pick)
            .collect()
    }

    /// Waits until every item submitted so far is written or dropped.
    pub async fn flush(&self) -> Result<()> {
        let done = {
            let mut state = self.state.lock();
            let target = state.submitted;
            if state.next_unresolved() > target {
                return Ok(());
            }
            if !state.writer_alive {
                return Err(StoreError(format!(
                    "the writer of {} has stopped",
                    self.what
                )));
            }
            let (done, wait) = oneshot::channel();
            let failures = state.failures;
            state.waiters.push(FlushWaiter {
                target,
                failures,
                done,
            });
            wait
        };
        self.wake.notify_one();
        done.await
            .map_err(|_| StoreError(format!("the writer of {} has stopped", self.what)))?
    }
}

impl<T: Weighed> LossyState<T> {
    /// Takes the oldest pending item, keeping `pending_bytes` in step.
    pub fn pop_front(&mut self) -> Option<Numbered<T>> {
        let numbered = self.pending.pop_front()?;
        self.pending_bytes = self.pending_bytes.saturating_sub(numbered.1.weight());
        Some(numbered)
    }

    /// True while a flush is waiting for items to be written.
    pub fn has_waiters(&self) -> bool {
        !self.waiters.is_empty()
    }

    /// The smallest sequence number not yet written or dropped. Batches and
    /// drops both take from the front, and the in-flight batch is older than
    /// anything pending.
    fn next_unresolved(&self) -> u64 {
        if let Some((seq, _)) = self.in_flight.as_ref().and_then(|batch| batch.first()) {
            return *seq;
        }
        match self.pending.front() {
            Some((seq, _)) => *seq,
            None => self.submitted + 1,
        }
    }

    /// Completes the flushes whose items are all resolved.
    pub fn resolve_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let next = self.next_unresolved();
        let mut i = 0;
        while i < self.waiters.len() {
            if self.waiters[i].target < next {
                let waiter = self.waiters.swap_remove(i);
                let result = if self.failures > waiter.failures {
                    Err(StoreError(format!(
                        "could not be written: {}",
                        self.last_failure.as_deref().unwrap_or("unknown error")
                    )))
                } else {
                    Ok(())
                };
                let _ = waiter.done.send(result);
            } else {
                i += 1;
            }
        }
    }

    /// Called when the writer thread ends, normally or not: nothing will be
    /// written any more, so pending items are counted as dropped and every
    /// flush learns the outcome now instead of waiting forever.
    pub fn writer_stopped(&mut self, dropped: &AtomicU64) -> VecDeque<Numbered<T>> {
        self.writer_alive = false;
        self.in_flight = None;
        let lost = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        if !lost.is_empty() {
            dropped.fetch_add(lost.len() as u64, Ordering::Relaxed);
            self.failures += 1;
            self.last_failure = Some(format!("the writer stopped with {} unwritten", lost.len()));
        }
        for waiter in self.waiters.drain(..) {
            let result = if lost.is_empty() && self.failures == waiter.failures {
                Ok(())
            } else {
                Err(StoreError(format!(
                    "could not be written: {}",
                    self.last_failure.as_deref().unwrap_or("the writer stopped")
                )))
            };
            let _ = waiter.done.send(result);
        }
        lost
    }

    fn drop_warning_due(&mut self) -> bool {
        let now = Instant::now();
        match self.last_drop_warning {
            Some(last) if now.duration_since(last) < DROP_WARNING_INTERVAL => false,
            _ => {
                self.last_drop_warning = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Lossy, Weighed};

    /// An item weighing its own value.
    #[derive(Debug, Clone, PartialEq)]
    struct Item(usize);

    impl Weighed for Item {
        fn weight(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_items_and_counts_them() {
        let queue = Lossy::new("items", 3, 1000, 100);
        for n in 1..=5 {
            queue.submit(Item(n));
        }
        assert_eq!(queue.collect(|item| Some(item.0)), [3, 4, 5]);
        assert_eq!(queue.dropped.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn the_weight_bound_drops_as_the_count_bound_does() {
        let queue = Lossy::new("items", 100, 10, 100);
        for n in [4, 4, 4] {
            queue.submit(Item(n));
        }
        assert_eq!(
            queue.collect(|item| Some(item.0)).len(),
            2,
            "12 would pass 10"
        );
    }

    #[test]
    fn the_newest_matching_item_is_found_before_it_is_written() {
        let queue = Lossy::new("items", 10, 1000, 100);
        queue.submit(Item(7));
        queue.submit(Item(8));
        assert_eq!(queue.find_newest(|item| item.0 > 5), Some(Item(8)));
        assert_eq!(queue.find_newest(|item| item.0 > 8), None);
    }
}
