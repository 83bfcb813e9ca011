//! The hand-off between the request path and the record writer.
//!
//! A bounded `VecDeque` under a `parking_lot` mutex: `submit` holds the lock for
//! a push (and, when full, a pop), and wakes the writer. Every record carries a
//! sequence number so `flush` can wait for "everything up to here" without the
//! writer knowing about flushes beyond resolving their targets. The writer
//! publishes the batch it is writing as `in_flight` so lookups still find a
//! record between leaving the queue and its commit becoming visible.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::{EnvId, InvocationRecord, InvocationRef, InvocationSummary, RequestId};
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::{InvocationQuery, Result, StoreError};

/// A record and its submission number (1, 2, …).
pub(super) type Queued = (u64, InvocationRecord);

/// At most one drop warning per this interval, so an overloaded server does
/// not also flood its log.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct RecordQueue {
    pub(super) state: Mutex<QueueState>,
    /// Wakes the writer: new records, close, unpause.
    pub(super) wake: Condvar,
    pub(super) dropped: AtomicU64,
    capacity: usize,
    /// Most bytes of records waiting (see [`record_bytes`]): a record can
    /// carry a megabyte of logs, so a count alone would not bound memory.
    capacity_bytes: usize,
    /// A queue this long is a full batch: the writer is woken at once.
    batch_max: usize,
}

/// What a record weighs beyond its texts: its other fields and keys.
pub(super) const PER_RECORD_BYTES: usize = 256;
/// What a log line weighs beyond its message: its row's keys and fields.
pub(super) const PER_LOG_LINE_BYTES: usize = 64;

/// What a record weighs, in memory and in the database: its texts, plus a
/// fixed share for its other fields and for each log line's row.
pub(super) fn record_bytes(record: &InvocationRecord) -> usize {
    let error = record.error.as_ref().map_or(0, |e| {
        e.message.len()
            + e.stack.as_deref().map_or(0, str::len)
            + e.error_type.as_deref().map_or(0, str::len)
    });
    let logs: usize = record
        .logs
        .iter()
        .map(|line| line.message.len() + PER_LOG_LINE_BYTES)
        .sum();
    PER_RECORD_BYTES + record.result.as_deref().map_or(0, str::len) + error + logs
}

pub(super) struct QueueState {
    pub(super) pending: VecDeque<Queued>,
    /// The bytes of the records in `pending`.
    pub(super) pending_bytes: usize,
    /// The batch being written, until its transaction has committed.
    pub(super) in_flight: Option<Arc<Vec<Queued>>>,
    /// Sequence number of the last submitted record.
    submitted: u64,
    waiters: Vec<FlushWaiter>,
    /// Batches that could not be written, and the last reason.
    pub(super) failures: u64,
    pub(super) last_failure: Option<String>,
    /// Set by close: the writer drains the queue and exits; submits are refused.
    pub(super) closing: bool,
    pub(super) writer_alive: bool,
    /// Test hook: the writer takes no batch while set (unless closing).
    pub(super) paused: bool,
    last_drop_warning: Option<Instant>,
}

struct FlushWaiter {
    /// Resolved once every record numbered up to this one is written or dropped.
    target: u64,
    /// `failures` when the flush started; more by the end means an error.
    failures: u64,
    done: oneshot::Sender<Result<()>>,
}

impl RecordQueue {
    pub(super) fn new(capacity: usize, capacity_bytes: usize, batch_max: usize) -> Self {
        Self {
            state: Mutex::new(QueueState {
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
            capacity,
            capacity_bytes,
            batch_max,
        }
    }

    pub(super) fn submit(&self, record: InvocationRecord) {
        let mut evicted = Vec::new();
        let mut warn = false;
        let refused;
        let wake;
        let bytes = record_bytes(&record);
        {
            let mut state = self.state.lock();
            refused = state.closing || !state.writer_alive;
            if refused {
                evicted.push(record);
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
                state.pending.push_back((seq, record));
                state.pending_bytes += bytes;
            }
            // Waking the writer for every record would cost a context switch per
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
        // Freed outside the lock: a record can own many log lines.
        drop(evicted);
        if warn {
            let dropped = self.dropped.load(Ordering::Relaxed);
            if refused {
                tracing::warn!(
                    dropped,
                    "invocation record dropped: the record store is closed"
                );
            } else {
                tracing::warn!(
                    dropped,
                    capacity = self.capacity,
                    "invocation records dropped: the record writer is behind and the queue is full"
                );
            }
        }
    }

    /// A submitted record that is not yet committed, if any.
    pub(super) fn find(&self, env: &EnvId, request_id: &RequestId) -> Option<InvocationRecord> {
        let matches = |(_, r): &&Queued| r.request_id == *request_id && r.env == *env;
        let in_flight = {
            let state = self.state.lock();
            // Newest first: the caller usually asks right after its invocation,
            // and a repeated request ID's newest record is the one that wins.
            if let Some((_, record)) = state.pending.iter().rev().find(matches) {
                return Some(record.clone());
            }
            state.in_flight.clone()
        };
        in_flight?
            .iter()
            .rev()
            .find(matches)
            .map(|(_, r)| r.clone())
    }

    /// The summaries of submitted, not yet committed records that `caller` made.
    pub(super) fn children(&self, caller: &InvocationRef) -> Vec<InvocationSummary> {
        let made_by = |(_, r): &&Queued| r.caller.as_ref() == Some(caller);
        let state = self.state.lock();
        let in_flight = state.in_flight.iter().flat_map(|batch| batch.iter());
        in_flight
            .chain(state.pending.iter())
            .filter(made_by)
            .map(|(_, r)| r.summary())
            .collect()
    }

    /// The summaries of the records of `env` waiting here that `query`
    /// matches.
    pub(super) fn matching(&self, env: &EnvId, query: &InvocationQuery) -> Vec<InvocationSummary> {
        let state = self.state.lock();
        let in_flight = state.in_flight.iter().flat_map(|batch| batch.iter());
        in_flight
            .chain(state.pending.iter())
            .filter(|(_, r)| r.env == *env)
            .map(|(_, r)| r.summary())
            .filter(|summary| query.matches(summary))
            .collect()
    }

    /// Waits until every record submitted so far is written or dropped.
    pub(super) async fn flush(&self) -> Result<()> {
        let done = {
            let mut state = self.state.lock();
            let target = state.submitted;
            if state.next_unresolved() > target {
                return Ok(());
            }
            if !state.writer_alive {
                return Err(StoreError("the record writer has stopped".into()));
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
            .map_err(|_| StoreError("the record writer has stopped".into()))?
    }
}

impl QueueState {
    /// Takes the oldest pending record, keeping `pending_bytes` in step.
    pub(super) fn pop_front(&mut self) -> Option<Queued> {
        let queued = self.pending.pop_front()?;
        self.pending_bytes = self.pending_bytes.saturating_sub(record_bytes(&queued.1));
        Some(queued)
    }

    /// True while a flush is waiting for records to be written.
    pub(super) fn has_waiters(&self) -> bool {
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

    /// Completes the flushes whose records are all resolved.
    pub(super) fn resolve_waiters(&mut self) {
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
                        "invocation records could not be written: {}",
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
    /// written any more, so pending records are counted as dropped and every
    /// flush learns the outcome now instead of waiting forever.
    pub(super) fn writer_stopped(&mut self, dropped: &AtomicU64) -> VecDeque<Queued> {
        self.writer_alive = false;
        self.in_flight = None;
        let lost = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        if !lost.is_empty() {
            dropped.fetch_add(lost.len() as u64, Ordering::Relaxed);
            self.failures += 1;
            self.last_failure = Some(format!(
                "the record writer stopped with {} records unwritten",
                lost.len()
            ));
        }
        for waiter in self.waiters.drain(..) {
            let result = if lost.is_empty() && self.failures == waiter.failures {
                Ok(())
            } else {
                Err(StoreError(format!(
                    "invocation records could not be written: {}",
                    self.last_failure
                        .as_deref()
                        .unwrap_or("the record writer stopped")
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
