//! The disk the invocation records take: records deleted by age and, before
//! every batch of records is written, to hold the store to its size limit;
//! freed pages given back to the file system.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::queue::{PER_LOG_LINE_BYTES, PER_RECORD_BYTES};

/// Bytes on disk per byte of record text, about: SQLite's pages are not
/// full, and the primary keys and the index repeat the keys. A batch is
/// counted at this many bytes per byte of its records when making room.
const STORAGE_FACTOR: u64 = 2;

/// Records deleted per transaction.
pub(super) const CHUNK: usize = 5_000;

pub(super) const DELETE_RECORD: &str = "DELETE FROM invocations WHERE env = ?1 AND request_id = ?2";
pub(super) const DELETE_LOGS: &str =
    "DELETE FROM invocation_logs WHERE env = ?1 AND request_id = ?2";

/// Rounds of deleting and measuring again before one batch: each round
/// deletes what the last measurement asked for, so this only bounds how long
/// a batch waits when the estimate keeps missing (the next batch goes on).
const ROUNDS: usize = 4;

/// The database and its WAL, held to `max` bytes on disk.
pub(super) struct SizeLimit {
    max: u64,
    database: PathBuf,
}

impl SizeLimit {
    pub(super) fn new(max: u64, database: &Path) -> Self {
        Self {
            max,
            database: database.to_owned(),
        }
    }

    /// The most bytes of records one batch may carry under this limit: a
    /// batch lands whole, so it is kept to a small share of the limit.
    pub(super) fn batch_bytes(&self, wanted: usize) -> usize {
        let share = usize::try_from(self.max / 16).unwrap_or(usize::MAX);
        wanted.min(share).max(4096)
    }

    /// What the database and its WAL take on disk now.
    pub(super) fn stored_bytes(&self) -> u64 {
        stored_bytes(&self.database)
    }

    /// Before a batch of `incoming` bytes of records: when the store would
    /// pass its limit, deletes the oldest records until it is back to nine
    /// tenths of the limit with the batch counted in, giving the space back
    /// and measuring again after each round.
    pub(super) fn make_room(&self, conn: &mut Connection, incoming: u64) -> rusqlite::Result<()> {
        let incoming = incoming.saturating_mul(STORAGE_FACTOR);
        let mut stored = self.stored_bytes();
        if stored.saturating_add(incoming) <= self.max {
            return Ok(());
        }
        let target = (self.max - self.max / 10).saturating_sub(incoming);
        for _ in 0..ROUNDS {
            let excess = stored.saturating_sub(target);
            if excess == 0 {
                return Ok(());
            }
            let (deleted, _) = delete_oldest(conn, excess.div_ceil(STORAGE_FACTOR))?;
            if deleted == 0 {
                // Nothing left to delete: the rest is the schema and the WAL.
                return Ok(());
            }
            tracing::debug!(
                deleted,
                stored,
                max = self.max,
                "pruned the oldest invocation records to stay within the size limit"
            );
            give_back_space(conn)?;
            stored = self.stored_bytes();
        }
        Ok(())
    }

    /// The WAL counts toward the limit, so under a small limit it is
    /// checkpointed (the writer's connection writes nearly all records) and
    /// cut back sooner than SQLite's defaults (1000 pages, and the store's
    /// 16 MiB): at a sixteenth of the limit.
    pub(super) fn keep_the_wal_small(&self, conn: &Connection) {
        const DEFAULT_CHECKPOINT_PAGES: u64 = 1000;
        const PAGE: u64 = 4096;
        let share = self.max / 16;
        let pages = (share / PAGE).clamp(16, DEFAULT_CHECKPOINT_PAGES);
        let limit = share.clamp(64 * 1024, 16 * 1024 * 1024);
        let set = conn
            .pragma_update(None, "wal_autocheckpoint", pages as i64)
            .and_then(|()| conn.pragma_update(None, "journal_size_limit", limit as i64));
        if let Err(error) = set {
            tracing::warn!(%error, "cannot bound the record database's WAL");
        }
    }
}

/// The WAL file SQLite keeps beside `database`.
fn wal_of(database: &Path) -> PathBuf {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// The size on disk of the database file and its WAL (what `du` would count).
pub(super) fn stored_bytes(database: &Path) -> u64 {
    [database.to_owned(), wal_of(database)]
        .iter()
        .map(|file| std::fs::metadata(file).map_or(0, |m| m.len()))
        .sum()
}

/// Returns the database's free pages to the file system and moves what the
/// WAL holds into the database, so the files shrink (with `auto_vacuum =
/// INCREMENTAL`; the WAL file is cut back to `journal_size_limit`).
pub(super) fn give_back_space(conn: &Connection) -> rusqlite::Result<()> {
    // The pragma frees one page per step: it must be stepped to the end.
    let mut vacuum = conn.prepare_cached("PRAGMA incremental_vacuum")?;
    let mut steps = vacuum.query([])?;
    while steps.next()?.is_some() {}
    drop(steps);
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Deletes the oldest records, with their logs, until about `wanted` bytes
/// of record text are gone or no record is left, in one transaction of at
/// most [`CHUNK`] records. Returns how many records went and their bytes.
fn delete_oldest(conn: &mut Connection, wanted: u64) -> rusqlite::Result<(usize, u64)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut doomed: Vec<(String, String)> = Vec::new();
    let mut freed: u64 = 0;
    {
        let mut oldest = tx.prepare_cached(
            "SELECT env, request_id, ?2 + length(coalesce(result, '')) \
             + length(coalesce(error_message, '')) + length(coalesce(error_stack, '')) \
             + length(coalesce(error_type, '')) \
             FROM invocations ORDER BY started_at LIMIT ?1",
        )?;
        let mut log_bytes = tx.prepare_cached(
            "SELECT coalesce(sum(length(message) + ?3), 0) FROM invocation_logs \
             WHERE env = ?1 AND request_id = ?2",
        )?;
        let mut rows = oldest.query(params![CHUNK as i64, PER_RECORD_BYTES as i64])?;
        while let Some(row) = rows.next()? {
            let (env, request_id, bytes): (String, String, i64) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            let logs: i64 = log_bytes
                .query_row(params![env, request_id, PER_LOG_LINE_BYTES as i64], |r| {
                    r.get(0)
                })?;
            freed += u64::try_from(bytes.saturating_add(logs)).unwrap_or(0);
            doomed.push((env, request_id));
            if freed >= wanted {
                break;
            }
        }
    }
    delete_records(&tx, &doomed)?;
    tx.commit()?;
    Ok((doomed.len(), freed))
}

/// Deletes up to `limit` of the oldest records started before `before`, with
/// their logs, in one transaction. Returns how many went.
pub(super) fn delete_older_than(
    conn: &mut Connection,
    before: i64,
    limit: usize,
) -> rusqlite::Result<usize> {
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
    delete_records(&tx, &keys)?;
    tx.commit()?;
    Ok(keys.len())
}

/// Deletes the records named by (env, request ID), with their logs.
fn delete_records(tx: &Transaction<'_>, keys: &[(String, String)]) -> rusqlite::Result<()> {
    let mut delete_logs = tx.prepare_cached(DELETE_LOGS)?;
    let mut delete_record = tx.prepare_cached(DELETE_RECORD)?;
    for (env, request_id) in keys {
        delete_logs.execute(params![env, request_id])?;
        delete_record.execute(params![env, request_id])?;
    }
    Ok(())
}
