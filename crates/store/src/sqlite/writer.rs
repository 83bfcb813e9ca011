//! The record writer: one thread, one connection, one transaction per batch.
//!
//! SQLite allows one writer at a time, and a commit is the expensive part of an
//! insert, so a single thread that takes whatever has queued up (up to
//! `record_batch_max`) and commits it at once turns a burst of invocations into
//! a few large transactions. Under light load batches are small and records
//! reach the disk within a commit's time; under heavy load batches grow, which
//! is what keeps the writer ahead. The same thread prunes records: by age,
//! in chunks interleaved with batches so pruning never stalls the queue for
//! long; and by size, before each batch, so that the database and its WAL
//! stay within their limit even while a function floods its logs. Freed
//! pages are given back to the file system (incremental vacuum).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::InvocationRecord;
use rusqlite::{params, Connection, TransactionBehavior};

use super::queue::{record_bytes, Queued, RecordQueue};
use super::space::{
    delete_older_than, give_back_space, SizeLimit, CHUNK, DELETE_LOGS, DELETE_RECORD,
};

/// How long the writer waits for a partial batch to fill. Records stay
/// readable from the queue meanwhile, so this only delays the disk write.
const BATCH_LINGER: Duration = Duration::from_millis(10);

const INSERT_RECORD: &str = "INSERT INTO invocations (env, request_id, function, version, status, \
     started_at, duration_us, init_us, cold, trigger, result, error_code, error_message, \
     error_stack, logs_truncated, error_type, caller_env, caller_request_id, root_env, \
     root_request_id, http_status, http_bytes, attempts, next_attempt_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20, ?21, ?22, ?23, ?24) \
     ON CONFLICT (env, request_id) DO NOTHING";
const INSERT_LOG: &str = "INSERT INTO invocation_logs (env, request_id, seq, ts, level, message) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub(super) struct PrunePolicy {
    pub(super) retention: Option<Duration>,
    /// What the database and its WAL may take on disk.
    pub(super) size_limit: Option<SizeLimit>,
    pub(super) interval: Duration,
}

pub(super) struct Writer {
    conn: Connection,
    batch_max: usize,
    /// Most bytes of records (see `record_bytes`) in one batch, so that one
    /// transaction cannot carry the store far past its size limit.
    batch_max_bytes: usize,
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
    pub(super) fn new(
        conn: Connection,
        batch_max: usize,
        batch_max_bytes: usize,
        prune: PrunePolicy,
    ) -> Self {
        conn.set_prepared_statement_cache_capacity(16);
        let mut batch_max_bytes = batch_max_bytes;
        if let Some(limit) = &prune.size_limit {
            limit.keep_the_wal_small(&conn);
            batch_max_bytes = limit.batch_bytes(batch_max_bytes);
        }
        let next_prune = prune.retention.is_some().then(Instant::now);
        Self {
            conn,
            batch_max,
            batch_max_bytes,
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
        let (batch, bytes) = {
            let mut state = queue.state.lock();
            if state.pending.is_empty() || (state.paused && !state.closing) {
                return false;
            }
            let mut batch = std::mem::take(&mut self.spare);
            let mut bytes = 0;
            while batch.len() < self.batch_max && (batch.is_empty() || bytes < self.batch_max_bytes)
            {
                let Some(queued) = state.pop_front() else {
                    break;
                };
                bytes += record_bytes(&queued.1);
                batch.push(queued);
            }
            let batch = Arc::new(batch);
            state.in_flight = Some(Arc::clone(&batch));
            (batch, bytes)
        };

        if let Some(limit) = &self.prune.size_limit {
            // A failure here costs space, not records: the batch is written anyway.
            if let Err(error) = limit.make_room(&mut self.conn, bytes as u64) {
                tracing::warn!(%error, "cannot prune invocation records to the size limit");
            }
        }
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
                let n = delete_older_than(&mut self.conn, cutoff, CHUNK)?;
                deleted += n;
                if n < CHUNK {
                    break;
                }
                self.write_batch(queue);
            }
        }
        if deleted > 0 {
            give_back_space(&self.conn)?;
        }
        Ok(deleted)
    }
}

fn insert_batch(conn: &mut Connection, batch: &[Queued]) -> rusqlite::Result<()> {
    let newest = newest_of_each_invocation(batch);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(INSERT_RECORD)?;
        let mut insert_log = tx.prepare_cached(INSERT_LOG)?;
        let records = batch
            .iter()
            .zip(newest)
            .filter_map(|((_, r), newest)| newest.then_some(r));
        for record in records {
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

/// For each record of `batch`, whether it is the newest of its invocation
/// in the batch. An asynchronous invocation often has its `enqueued`,
/// `running` and final records in one batch: only the last is written, as
/// it would replace the others anyway, at the cost of a delete and an insert
/// each.
fn newest_of_each_invocation(batch: &[Queued]) -> Vec<bool> {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut newest: Vec<bool> = batch
        .iter()
        .rev()
        .map(|(_, r)| seen.insert((r.env.as_str(), r.request_id.as_str())))
        .collect();
    newest.reverse();
    newest
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
        error.and_then(|e| e.error_type.as_deref()),
        r.caller.as_ref().map(|c| c.env.as_str()),
        r.caller.as_ref().map(|c| c.request_id.as_str()),
        r.root.as_ref().map(|c| c.env.as_str()),
        r.root.as_ref().map(|c| c.request_id.as_str()),
        r.http.map(|http| http.status),
        r.http
            .map(|http| i64::try_from(http.bytes).unwrap_or(i64::MAX)),
        super::attempts_json(&r.attempts),
        r.next_attempt_at,
    ])
}
