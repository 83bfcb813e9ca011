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

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudlet_core::InvocationRecord;
use rusqlite::{params, Connection, TransactionBehavior};

use super::queue::{record_bytes, Queued, RecordQueue};

/// Rows deleted per pruning transaction.
const PRUNE_CHUNK: usize = 5_000;

/// Pages on disk per byte of record text, about: SQLite's pages are not
/// full, and the primary keys and the index repeat the keys. A batch is
/// counted at this many bytes per byte of its records when making room.
const STORAGE_FACTOR: u64 = 2;

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
    /// The most the database and its WAL may take on disk.
    pub(super) max_bytes: Option<u64>,
    pub(super) interval: Duration,
}

pub(super) struct Writer {
    conn: Connection,
    /// The database's WAL file, whose size counts toward `max_bytes`.
    wal: PathBuf,
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
        wal: PathBuf,
        batch_max: usize,
        batch_max_bytes: usize,
        prune: PrunePolicy,
    ) -> Self {
        conn.set_prepared_statement_cache_capacity(16);
        if let Some(max) = prune.max_bytes {
            keep_the_wal_small(&conn, max);
        }
        let next_prune = prune.retention.is_some().then(Instant::now);
        Self {
            conn,
            wal,
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

        let result = self
            .make_room(bytes as u64)
            .and_then(|()| insert_batch(&mut self.conn, &batch));

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
                let n = delete_older_than(&mut self.conn, cutoff, PRUNE_CHUNK)?;
                deleted += n;
                if n < PRUNE_CHUNK {
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

    /// What the database and its WAL take on disk now: the database's pages
    /// in use (freed ones are given back by `give_back_space`) and the WAL file.
    fn stored_bytes(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))?;
        let page_size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let wal = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        Ok(u64::try_from(pages.saturating_mul(page_size)).unwrap_or(0) + wal)
    }

    /// Before a batch of `incoming` bytes of records: when the store would
    /// pass its size limit, deletes the oldest records until it is back to
    /// nine tenths of the limit with the batch counted in, and gives the
    /// space back. Checked before every batch, so a log flood cannot carry
    /// the store past its limit by more than a batch and the WAL.
    fn make_room(&mut self, incoming: u64) -> rusqlite::Result<()> {
        let Some(max) = self.prune.max_bytes else {
            return Ok(());
        };
        let incoming = incoming.saturating_mul(STORAGE_FACTOR);
        let stored = self.stored_bytes()?;
        if stored.saturating_add(incoming) <= max {
            return Ok(());
        }
        let target = (max - max / 10).saturating_sub(incoming);
        let mut excess = stored.saturating_sub(target);
        let mut deleted = 0;
        while excess > 0 {
            let (n, freed) = delete_oldest_bytes(&mut self.conn, excess)?;
            if n == 0 {
                break;
            }
            deleted += n;
            excess = excess.saturating_sub(freed.saturating_mul(STORAGE_FACTOR));
        }
        if deleted > 0 {
            tracing::debug!(
                deleted,
                stored,
                max,
                "pruned the oldest invocation records to stay within the size limit"
            );
            give_back_space(&self.conn)?;
        }
        Ok(())
    }
}

/// The WAL counts toward the size limit, so under a small limit it is
/// checkpointed (this connection writes nearly all records) and cut back
/// sooner than SQLite's defaults (1000 pages, and the store's 16 MiB): at a
/// sixteenth of the limit.
fn keep_the_wal_small(conn: &Connection, max_bytes: u64) {
    const DEFAULT_CHECKPOINT_PAGES: u64 = 1000;
    const PAGE: u64 = 4096;
    let share = max_bytes / 16;
    let pages = (share / PAGE).clamp(16, DEFAULT_CHECKPOINT_PAGES);
    let limit = share.clamp(64 * 1024, 16 * 1024 * 1024);
    let set = conn
        .pragma_update(None, "wal_autocheckpoint", pages as i64)
        .and_then(|()| conn.pragma_update(None, "journal_size_limit", limit as i64));
    if let Err(error) = set {
        tracing::warn!(%error, "cannot bound the record database's WAL");
    }
}

/// Returns the database's free pages to the file system and moves what the
/// WAL holds into the database, so the files shrink (with `auto_vacuum =
/// INCREMENTAL`; the WAL file is cut back to `journal_size_limit`).
fn give_back_space(conn: &Connection) -> rusqlite::Result<()> {
    // The pragma frees one page per step: it must be stepped to the end.
    let mut vacuum = conn.prepare_cached("PRAGMA incremental_vacuum")?;
    let mut steps = vacuum.query([])?;
    while steps.next()?.is_some() {}
    drop(steps);
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Deletes the oldest records, with their logs, until about `wanted` bytes
/// of record text (see `record_bytes`) are gone or no record is left, in one
/// transaction of at most [`PRUNE_CHUNK`] records. Returns how many records
/// went and their bytes.
fn delete_oldest_bytes(conn: &mut Connection, wanted: u64) -> rusqlite::Result<(usize, u64)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut doomed: Vec<(String, String)> = Vec::new();
    let mut freed: u64 = 0;
    {
        let mut oldest = tx.prepare_cached(
            "SELECT env, request_id, 256 + length(coalesce(result, '')) \
             + length(coalesce(error_message, '')) + length(coalesce(error_stack, '')) \
             FROM invocations ORDER BY started_at LIMIT ?1",
        )?;
        let mut log_bytes = tx.prepare_cached(
            "SELECT coalesce(sum(length(message) + 64), 0) FROM invocation_logs \
             WHERE env = ?1 AND request_id = ?2",
        )?;
        let mut rows = oldest.query(params![PRUNE_CHUNK as i64])?;
        while let Some(row) = rows.next()? {
            let (env, request_id, bytes): (String, String, i64) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            let logs: i64 = log_bytes.query_row(params![env, request_id], |r| r.get(0))?;
            freed += u64::try_from(bytes.saturating_add(logs)).unwrap_or(0);
            doomed.push((env, request_id));
            if freed >= wanted {
                break;
            }
        }
    }
    {
        let mut delete_logs = tx.prepare_cached(DELETE_LOGS)?;
        let mut delete_record = tx.prepare_cached(DELETE_RECORD)?;
        for (env, request_id) in &doomed {
            delete_logs.execute(params![env, request_id])?;
            delete_record.execute(params![env, request_id])?;
        }
    }
    tx.commit()?;
    Ok((doomed.len(), freed))
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

/// Deletes up to `limit` of the oldest records started before `before`, with
/// their logs, in one transaction. Returns how many went.
fn delete_older_than(conn: &mut Connection, before: i64, limit: usize) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let keys: Vec<(String, String)> = {
        let mut select = tx.prepare_cached(
            "SELECT env, request_id FROM invocations WHERE started_at < ?1 \
             ORDER BY started_at LIMIT ?2",
        )?;
        let rows =
            select.query_map(params![before, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
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
