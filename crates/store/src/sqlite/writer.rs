//! The record writer: one thread, one connection, one transaction per batch.
//!
//! SQLite allows one writer at a time, and a commit is the expensive part of an
//! insert, so a single thread that takes whatever has queued up (up to
//! `record_batch_max`) and commits it at once turns a burst of invocations into
//! a few large transactions. Under light load batches are small and records
//! reach the disk within a commit's time; under heavy load batches grow, which
//! is what keeps the writer ahead. The same thread prunes old records, in
//! chunks interleaved with batches so pruning never stalls the queue for long.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::InvocationRecord;
use rusqlite::{params, Connection, TransactionBehavior};

use super::queue::{Queued, RecordQueue};

/// Rows deleted per pruning transaction.
const PRUNE_CHUNK: usize = 5_000;

/// How long the writer waits for a partial batch to fill. Records stay
/// readable from the queue meanwhile, so this only delays the disk write.
const BATCH_LINGER: Duration = Duration::from_millis(10);

const INSERT_RECORD: &str = "INSERT INTO invocations (env, request_id, function, version, status, \
     started_at, duration_us, init_us, cold, trigger, result, error_code, error_message, \
     error_stack, logs_truncated) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (env, request_id) DO NOTHING";
const DELETE_RECORD: &str = "DELETE FROM invocations WHERE env = ?1 AND request_id = ?2";
const INSERT_LOG: &str = "INSERT INTO invocation_logs (env, request_id, seq, ts, level, message) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const DELETE_LOGS: &str = "DELETE FROM invocation_logs WHERE env = ?1 AND request_id = ?2";

pub(super) struct PrunePolicy {
    pub(super) retention: Option<Duration>,
    pub(super) max_rows: Option<u64>,
    pub(super) interval: Duration,
}

pub(super) struct Writer {
    conn: Connection,
    batch_max: usize,
    /// The previous batch's vector, kept to avoid reallocating per batch.
    spare: Vec<Queued>,
    prune: PrunePolicy,
    next_prune: Option<Instant>,
}

/// Marks the writer as gone however its thread ends, so flushes and closes
/// never wait on a thread that no longer exists.
struct ExitGuard(Arc<RecordQueue>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the record writer panicked; invocation records are no longer saved");
        }
        let lost = self.0.state.lock().writer_stopped(&self.0.dropped);
        drop(lost);
    }
}

enum Work {
    Batch,
    Prune,
    Exit,
}

impl Writer {
    pub(super) fn new(conn: Connection, batch_max: usize, prune: PrunePolicy) -> Self {
        conn.set_prepared_statement_cache_capacity(16);
        let next_prune = (prune.retention.is_some() || prune.max_rows.is_some()).then(Instant::now);
        Self {
            conn,
            batch_max,
            spare: Vec::with_capacity(batch_max),
            prune,
            next_prune,
        }
    }

    pub(super) fn run(mut self, queue: Arc<RecordQueue>) {
        let _exit = ExitGuard(Arc::clone(&queue));
        loop {
            match self.wait_for_work(&queue) {
                Work::Batch => {
                    self.write_batch(&queue);
                    // Under constant load the queue is never empty, so pruning
                    // must also get its turn between batches.
                    if self.prune_due(Instant::now()) {
                        self.prune(&queue);
                    }
                }
                Work::Prune => self.prune(&queue),
                Work::Exit => return,
            }
        }
    }

    fn prune_due(&self, now: Instant) -> bool {
        self.next_prune.is_some_and(|at| at <= now)
    }

    fn wait_for_work(&self, queue: &RecordQueue) -> Work {
        let mut state = queue.state.lock();
        let mut lingered = false;
        loop {
            if !state.pending.is_empty() && (!state.paused || state.closing) {
                // Fewer records than a batch: wait a moment for more, so a busy
                // server writes one transaction per batch instead of one per
                // record. A flush or a close does not wait.
                let urgent = state.closing || state.has_waiters();
                if lingered || urgent || state.pending.len() >= self.batch_max {
                    return Work::Batch;
                }
                lingered = true;
                queue
                    .wake
                    .wait_until(&mut state, Instant::now() + BATCH_LINGER);
                continue;
            }
            // Drops may have resolved a flush without any batch being written.
            state.resolve_waiters();
            if state.closing {
                return Work::Exit;
            }
            match self.next_prune {
                Some(at) => {
                    if at <= Instant::now() {
                        return Work::Prune;
                    }
                    queue.wake.wait_until(&mut state, at);
                }
                None => queue.wake.wait(&mut state),
            }
        }
    }

    /// Writes one batch if there is one. Returns false when there was nothing to write.
    fn write_batch(&mut self, queue: &RecordQueue) -> bool {
        let batch = {
            let mut state = queue.state.lock();
            if state.pending.is_empty() || (state.paused && !state.closing) {
                return false;
            }
            let n = state.pending.len().min(self.batch_max);
            let mut batch = std::mem::take(&mut self.spare);
            batch.extend(state.pending.drain(..n));
            let batch = Arc::new(batch);
            state.in_flight = Some(Arc::clone(&batch));
            batch
        };

        let result = insert_batch(&mut self.conn, &batch);

        {
            let mut state = queue.state.lock();
            state.in_flight = None;
            if let Err(error) = &result {
                state.failures += 1;
                state.last_failure = Some(error.to_string());
            }
            state.resolve_waiters();
        }
        if let Err(error) = result {
            let total = queue
                .dropped
                .fetch_add(batch.len() as u64, Ordering::Relaxed)
                + batch.len() as u64;
            tracing::error!(
                %error,
                records = batch.len(),
                dropped = total,
                "cannot write invocation records; the batch is dropped"
            );
        }
        // A lookup may still hold the batch; then the next batch gets a new vector.
        if let Ok(mut batch) = Arc::try_unwrap(batch) {
            batch.clear();
            self.spare = batch;
        }
        true
    }

    fn prune(&mut self, queue: &RecordQueue) {
        self.next_prune = Some(Instant::now() + self.prune.interval);
        match self.prune_records(queue) {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "pruned old invocation records"),
            Err(error) => tracing::warn!(%error, "cannot prune invocation records"),
        }
    }

    fn prune_records(&mut self, queue: &RecordQueue) -> rusqlite::Result<usize> {
        let mut deleted = 0;
        if let Some(retention) = self.prune.retention {
            let age = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            let cutoff = cloudlet_core::now_unix_ms().saturating_sub(age);
            loop {
                let n = delete_oldest(&mut self.conn, Some(cutoff), PRUNE_CHUNK)?;
                deleted += n;
                if n < PRUNE_CHUNK {
                    break;
                }
                self.write_batch(queue);
            }
        }
        if let Some(max_rows) = self.prune.max_rows {
            let count: i64 =
                self.conn
                    .query_row("SELECT count(*) FROM invocations", [], |row| row.get(0))?;
            let mut excess = u64::try_from(count).unwrap_or(0).saturating_sub(max_rows);
            while excess > 0 {
                let chunk = usize::try_from(excess)
                    .unwrap_or(usize::MAX)
                    .min(PRUNE_CHUNK);
                let n = delete_oldest(&mut self.conn, None, chunk)?;
                if n == 0 {
                    break;
                }
                deleted += n;
                excess = excess.saturating_sub(n as u64);
                self.write_batch(queue);
            }
        }
        Ok(deleted)
    }
}

fn insert_batch(conn: &mut Connection, batch: &[Queued]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(INSERT_RECORD)?;
        let mut insert_log = tx.prepare_cached(INSERT_LOG)?;
        for (_, record) in batch {
            if insert_record(&mut insert, record)? == 0 {
                // A client reused its X-Request-Id: the newest record wins, as
                // it does for lookups of records still in the queue.
                let key = params![record.env.as_str(), record.request_id.as_str()];
                tx.prepare_cached(DELETE_RECORD)?.execute(key)?;
                tx.prepare_cached(DELETE_LOGS)?.execute(key)?;
                insert_record(&mut insert, record)?;
            }
            for (seq, line) in record.logs.iter().enumerate() {
                insert_log.execute(params![
                    record.env.as_str(),
                    record.request_id.as_str(),
                    seq as i64,
                    line.timestamp,
                    line.level.as_str(),
                    line.message,
                ])?;
            }
        }
    }
    tx.commit()
}

fn insert_record(
    insert: &mut rusqlite::CachedStatement<'_>,
    r: &InvocationRecord,
) -> rusqlite::Result<usize> {
    let error = r.error.as_ref();
    insert.execute(params![
        r.env.as_str(),
        r.request_id.as_str(),
        r.function.as_str(),
        r.version.as_str(),
        r.status.as_str(),
        r.started_at,
        i64::try_from(r.duration_us).unwrap_or(i64::MAX),
        r.init_us.map(|us| i64::try_from(us).unwrap_or(i64::MAX)),
        r.cold,
        r.trigger,
        r.result,
        error.map(|e| e.code.as_str()),
        error.map(|e| e.message.as_str()),
        error.and_then(|e| e.stack.as_deref()),
        r.logs_truncated,
    ])
}

/// Deletes up to `limit` of the oldest records (started before `before`, if
/// given) with their logs, in one transaction. Returns how many went.
fn delete_oldest(
    conn: &mut Connection,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let keys: Vec<(String, String)> = {
        let mut select = tx.prepare_cached(
            "SELECT env, request_id FROM invocations WHERE started_at < ?1 \
             ORDER BY started_at LIMIT ?2",
        )?;
        let rows = select.query_map(params![before.unwrap_or(i64::MAX), limit], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    {
        let mut delete_logs = tx.prepare_cached(DELETE_LOGS)?;
        let mut delete_record = tx.prepare_cached(DELETE_RECORD)?;
        for (env, request_id) in &keys {
            delete_logs.execute(params![env, request_id])?;
            delete_record.execute(params![env, request_id])?;
        }
    }
    tx.commit()?;
    Ok(keys.len())
}
