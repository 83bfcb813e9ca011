//! The invocation queue in SQLite: one row per accepted invocation, dead
//! letters included (`dead` says why). Every write goes through one
//! batching thread (`crate::batching`, `group_commit.rs`) on a connection of
//! its own with `synchronous = FULL`: each commit is synced before its
//! callers hear of it, whatever the record tables' setting, and the writes
//! that arrive together share one sync. Reads go to the store's reader.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cloudlet_core::{Attempt, EnvId, FunctionName, RequestId, VersionId};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{DbContext, SqliteStore};
use crate::invocation_queue::{
    Enqueued, EventKind, FunctionKey, FunctionQueueStats, InvocationQueue, Lease, NewQueued,
    QueueKey, Queued,
};
use crate::{Result, StoreError};

/// A write to the queue, as its batching thread applies it.
pub(super) enum QueueWrite {
    Enqueue(NewQueued),
    Lease {
        now: i64,
        max: usize,
        lease_ms: i64,
        token: u64,
        /// The functions to skip, as a JSON array of "env/function".
        skip: String,
    },
    Extend {
        key: QueueKey,
        token: u64,
        until: i64,
    },
    Release {
        key: QueueKey,
        token: u64,
    },
    Finish {
        key: QueueKey,
        token: u64,
    },
    Retry {
        key: QueueKey,
        token: u64,
        due_at: i64,
        history: Vec<Attempt>,
    },
    DeadLetter {
        key: QueueKey,
        token: u64,
        reason: String,
        history: Vec<Attempt>,
    },
    Expire {
        now: i64,
    },
    Cancel {
        key: QueueKey,
        now: i64,
    },
    Redrive {
        key: QueueKey,
        due_at: i64,
    },
    Purge {
        env: EnvId,
    },
}

/// What a [`QueueWrite`] answers.
pub(super) enum QueueAnswer {
    /// Boxed: the other answers are a word or two.
    Enqueued(Box<Enqueued>),
    Taken(Vec<Queued>),
    Changed(bool),
    Removed(u64),
}

/// Applies one write inside its batch's transaction.
pub(super) fn apply(conn: &Connection, write: QueueWrite) -> Result<QueueAnswer> {
    use QueueAnswer::{Changed, Removed, Taken};
    Ok(match write {
        QueueWrite::Enqueue(new) => QueueAnswer::Enqueued(Box::new(enqueue(conn, new)?)),
        QueueWrite::Lease {
            now,
            max,
            lease_ms,
            token,
            skip,
        } => Taken(lease(conn, now, max, lease_ms, token, &skip)?),
        QueueWrite::Extend { key, token, until } => Changed(extend(conn, &key, token, until)?),
        QueueWrite::Release { key, token } => Changed(release(conn, &key, token)?),
        QueueWrite::Finish { key, token } => Changed(finish(conn, &key, token)?),
        QueueWrite::Retry {
            key,
            token,
            due_at,
            history,
        } => Changed(retry(conn, &key, token, due_at, &history)?),
        QueueWrite::DeadLetter {
            key,
            token,
            reason,
            history,
        } => Changed(dead_letter(conn, &key, token, &reason, &history)?),
        QueueWrite::Expire { now } => Taken(expire(conn, now)?),
        QueueWrite::Cancel { key, now } => Changed(cancel(conn, &key, now)?),
        QueueWrite::Redrive { key, due_at } => Changed(redrive(conn, &key, due_at)?),
        QueueWrite::Purge { env } => Removed(purge_dead_letters(conn, &env)?),
    })
}

impl SqliteStore {
    async fn changed(&self, write: QueueWrite) -> Result<bool> {
        match self.queue_writes.write(write).await? {
            QueueAnswer::Changed(changed) => Ok(changed),
            _ => Err(mismatched()),
        }
    }

    async fn taken(&self, write: QueueWrite) -> Result<Vec<Queued>> {
        match self.queue_writes.write(write).await? {
            QueueAnswer::Taken(taken) => Ok(taken),
            _ => Err(mismatched()),
        }
    }

    /// Runs `f` on the reader connection, on the blocking pool.
    async fn with_reader<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || f(&shared.reader.lock()))
            .await
            .ctx("a store task failed")?
    }
}

fn mismatched() -> StoreError {
    StoreError("the queue's writer answered another kind of write".into())
}

#[async_trait]
impl InvocationQueue for SqliteStore {
    async fn enqueue(&self, new: NewQueued) -> Result<Enqueued> {
        match self.queue_writes.write(QueueWrite::Enqueue(new)).await? {
            QueueAnswer::Enqueued(enqueued) => Ok(*enqueued),
            _ => Err(mismatched()),
        }
    }

    async fn lease(
        &self,
        now: i64,
        max: usize,
        lease_ms: i64,
        skip: &[FunctionKey],
    ) -> Result<Vec<Queued>> {
        // Names have no '/', so "env/function" names a function exactly.
        let skip: Vec<String> = skip
            .iter()
            .map(|(env, function)| format!("{env}/{function}"))
            .collect();
        let skip = serde_json::to_string(&skip).unwrap_or_else(|_| "[]".to_owned());
        let token = rand::random::<u64>();
        self.taken(QueueWrite::Lease {
            now,
            max,
            lease_ms,
            token,
            skip,
        })
        .await
    }

    async fn extend(&self, key: &QueueKey, token: u64, until: i64) -> Result<bool> {
        let key = key.clone();
        self.changed(QueueWrite::Extend { key, token, until }).await
    }

    async fn release(&self, key: &QueueKey, token: u64) -> Result<bool> {
        let key = key.clone();
        self.changed(QueueWrite::Release { key, token }).await
    }

    async fn finish(&self, key: &QueueKey, token: u64) -> Result<bool> {
        let key = key.clone();
        self.changed(QueueWrite::Finish { key, token }).await
    }

    async fn retry(
        &self,
        key: &QueueKey,
        token: u64,
        due_at: i64,
        history: &[Attempt],
    ) -> Result<bool> {
        let (key, history) = (key.clone(), history.to_vec());
        self.changed(QueueWrite::Retry {
            key,
            token,
            due_at,
            history,
        })
        .await
    }

    async fn dead_letter(
        &self,
        key: &QueueKey,
        token: u64,
        reason: &str,
        history: &[Attempt],
    ) -> Result<bool> {
        let (key, reason, history) = (key.clone(), reason.to_owned(), history.to_vec());
        self.changed(QueueWrite::DeadLetter {
            key,
            token,
            reason,
            history,
        })
        .await
    }

    async fn expire(&self, now: i64) -> Result<Vec<Queued>> {
        self.taken(QueueWrite::Expire { now }).await
    }

    async fn cancel(&self, key: &QueueKey, now: i64) -> Result<bool> {
        let key = key.clone();
        self.changed(QueueWrite::Cancel { key, now }).await
    }

    async fn queued(&self, key: &QueueKey) -> Result<Option<Queued>> {
        let key = key.clone();
        self.with_reader(move |conn| queued(conn, &key)).await
    }

    async fn dead_letters(&self, env: &EnvId) -> Result<Vec<Queued>> {
        let env = env.clone();
        self.with_reader(move |conn| dead_letters(conn, &env)).await
    }

    async fn redrive(&self, key: &QueueKey, due_at: i64) -> Result<bool> {
        let key = key.clone();
        self.changed(QueueWrite::Redrive { key, due_at }).await
    }

    async fn purge_dead_letters(&self, env: &EnvId) -> Result<u64> {
        let env = env.clone();
        match self.queue_writes.write(QueueWrite::Purge { env }).await? {
            QueueAnswer::Removed(removed) => Ok(removed),
            _ => Err(mismatched()),
        }
    }

    async fn stats(&self, env: &EnvId, now: i64) -> Result<Vec<FunctionQueueStats>> {
        let env = env.clone();
        self.with_reader(move |conn| stats(conn, &env, now)).await
    }

    async fn depths(&self) -> Result<Vec<(EnvId, u64)>> {
        self.with_reader(depths).await
    }
}

const COLUMNS: &str = "env, request_id, function, version, event, trigger, enqueued_at, due_at, \
     expires_at, attempts, lease_token, lease_until, dead, history, event_kind, origin";

fn enqueue(conn: &Connection, new: NewQueued) -> Result<Enqueued> {
    let added = conn
        .prepare_cached(
            "INSERT INTO invocation_queue (env, request_id, function, version, event, trigger, \
             enqueued_at, due_at, expires_at, event_kind, origin) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (env, request_id) DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                new.key.env.as_str(),
                new.key.request_id.as_str(),
                new.function.as_str(),
                new.version.as_str(),
                new.event.as_ref(),
                new.trigger,
                new.enqueued_at,
                new.due_at,
                new.expires_at,
                new.event_kind.as_str(),
                new.origin,
            ])
        })
        .ctx("cannot queue the invocation")?;
    if added == 1 {
        return Ok(Enqueued::New(Queued {
            invocation: new,
            attempts: 0,
            lease: None,
            history: Vec::new(),
            dead: None,
        }));
    }
    match queued(conn, &new.key)? {
        Some(existing) => Ok(Enqueued::Existing(existing)),
        None => Err(StoreError(
            "the queued invocation vanished while it was queued again".into(),
        )),
    }
}

/// Takes the soonest due invocations. Read in the order of the due index,
/// which the statement names: left to itself, the planner may read the
/// expiry index instead (every waiting invocation expires later) and sort
/// the whole queue for each lease.
fn lease(
    conn: &Connection,
    now: i64,
    max: usize,
    lease_ms: i64,
    token: u64,
    skip: &str,
) -> Result<Vec<Queued>> {
    let sql = format!(
        "UPDATE invocation_queue SET lease_token = ?1, lease_until = ?2, attempts = attempts + 1 \
         WHERE rowid IN (SELECT rowid FROM invocation_queue INDEXED BY invocation_queue_due \
         WHERE dead IS NULL AND due_at <= ?3 \
         AND expires_at > ?3 AND (lease_until IS NULL OR lease_until <= ?3) \
         AND env || '/' || function NOT IN (SELECT value FROM json_each(?5)) \
         ORDER BY due_at LIMIT ?4) RETURNING {COLUMNS}"
    );
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let mut leased = many(
        conn,
        &sql,
        params![as_i64(token), now + lease_ms, now, limit, skip],
        "cannot lease invocations",
    )?;
    // RETURNING promises no order.
    leased.sort_by_key(|queued| queued.invocation.due_at);
    Ok(leased)
}

fn extend(conn: &Connection, key: &QueueKey, token: u64, until: i64) -> Result<bool> {
    changed_one(
        conn,
        "UPDATE invocation_queue SET lease_until = ?4 WHERE env = ?1 AND request_id = ?2 \
             AND lease_token = ?3 AND dead IS NULL",
        params![
            key.env.as_str(),
            key.request_id.as_str(),
            as_i64(token),
            until
        ],
        "cannot extend the lease",
    )
}

fn release(conn: &Connection, key: &QueueKey, token: u64) -> Result<bool> {
    changed_one(
        conn,
        "UPDATE invocation_queue SET lease_token = NULL, lease_until = NULL, \
             attempts = attempts - 1 \
             WHERE env = ?1 AND request_id = ?2 AND lease_token = ?3 AND dead IS NULL",
        params![key.env.as_str(), key.request_id.as_str(), as_i64(token)],
        "cannot give the lease back",
    )
}

fn finish(conn: &Connection, key: &QueueKey, token: u64) -> Result<bool> {
    changed_one(
        conn,
        "DELETE FROM invocation_queue WHERE env = ?1 AND request_id = ?2 \
             AND lease_token = ?3 AND dead IS NULL",
        params![key.env.as_str(), key.request_id.as_str(), as_i64(token)],
        "cannot finish the queued invocation",
    )
}

fn retry(
    conn: &Connection,
    key: &QueueKey,
    token: u64,
    due_at: i64,
    history: &[Attempt],
) -> Result<bool> {
    let what = "cannot queue the invocation again";
    give_back(conn, key, token, "due_at", &due_at, history, what)
}

fn dead_letter(
    conn: &Connection,
    key: &QueueKey,
    token: u64,
    reason: &str,
    history: &[Attempt],
) -> Result<bool> {
    let what = "cannot make the invocation a dead letter";
    give_back(conn, key, token, "dead", &reason, history, what)
}

/// Ends the lease `token` holds, keeping the attempts so far and setting
/// `column` (when it is due again, or why it is dead) to `value`.
fn give_back(
    conn: &Connection,
    key: &QueueKey,
    token: u64,
    column: &str,
    value: &dyn rusqlite::ToSql,
    history: &[Attempt],
    what: &str,
) -> Result<bool> {
    let sql = format!(
        "UPDATE invocation_queue SET {column} = ?4, history = ?5, \
         lease_token = NULL, lease_until = NULL \
         WHERE env = ?1 AND request_id = ?2 AND lease_token = ?3 AND dead IS NULL"
    );
    changed_one(
        conn,
        &sql,
        params![
            key.env.as_str(),
            key.request_id.as_str(),
            as_i64(token),
            value,
            super::attempts_json(history),
        ],
        what,
    )
}

fn expire(conn: &Connection, now: i64) -> Result<Vec<Queued>> {
    let sql = format!(
        "UPDATE invocation_queue SET dead = 'expired', lease_token = NULL, lease_until = NULL \
         WHERE dead IS NULL AND expires_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
         RETURNING {COLUMNS}"
    );
    many(conn, &sql, params![now], "cannot expire invocations")
}

fn cancel(conn: &Connection, key: &QueueKey, now: i64) -> Result<bool> {
    changed_one(
        conn,
        "DELETE FROM invocation_queue WHERE env = ?1 AND request_id = ?2 AND dead IS NULL \
             AND (lease_until IS NULL OR lease_until <= ?3)",
        params![key.env.as_str(), key.request_id.as_str(), now],
        "cannot cancel the invocation",
    )
}

fn queued(conn: &Connection, key: &QueueKey) -> Result<Option<Queued>> {
    let sql = format!("SELECT {COLUMNS} FROM invocation_queue WHERE env = ?1 AND request_id = ?2");
    conn.query_row(
        &sql,
        params![key.env.as_str(), key.request_id.as_str()],
        |row| Ok(read(row)),
    )
    .optional()
    .ctx("cannot read the queued invocation")?
    .transpose()
}

fn dead_letters(conn: &Connection, env: &EnvId) -> Result<Vec<Queued>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM invocation_queue WHERE env = ?1 AND dead IS NOT NULL \
         ORDER BY enqueued_at"
    );
    many(
        conn,
        &sql,
        params![env.as_str()],
        "cannot list dead letters",
    )
}

/// Queues a dead letter again; its age counts from `due_at`, as long as it
/// was given when it was accepted.
fn redrive(conn: &Connection, key: &QueueKey, due_at: i64) -> Result<bool> {
    changed_one(
        conn,
        "UPDATE invocation_queue SET dead = NULL, attempts = 0, history = NULL, \
             due_at = ?3, expires_at = ?3 + (expires_at - enqueued_at) \
             WHERE env = ?1 AND request_id = ?2 AND dead IS NOT NULL",
        params![key.env.as_str(), key.request_id.as_str(), due_at],
        "cannot re-drive the dead letter",
    )
}

fn purge_dead_letters(conn: &Connection, env: &EnvId) -> Result<u64> {
    let removed = conn
        .execute(
            "DELETE FROM invocation_queue WHERE env = ?1 AND dead IS NOT NULL",
            params![env.as_str()],
        )
        .ctx("cannot purge dead letters")?;
    Ok(removed as u64)
}

fn stats(conn: &Connection, env: &EnvId, now: i64) -> Result<Vec<FunctionQueueStats>> {
    let what = "cannot count queued invocations";
    // A comparison with a NULL `lease_until` is NULL: coalesced, or a sum
    // over invocations none of which is leased would be NULL too.
    let mut statement = conn
        .prepare_cached(
            "SELECT function, \
             sum(dead IS NULL AND attempts = 0 AND (lease_until IS NULL OR lease_until <= ?2)), \
             sum(dead IS NULL AND coalesce(lease_until > ?2, 0)), \
             sum(dead IS NULL AND attempts > 0 AND (lease_until IS NULL OR lease_until <= ?2)), \
             sum(dead IS NOT NULL), \
             min(CASE WHEN dead IS NULL THEN enqueued_at END) \
             FROM invocation_queue WHERE env = ?1 GROUP BY function ORDER BY function",
        )
        .ctx(what)?;
    let rows = statement
        .query_map(params![env.as_str(), now], |row| {
            let count = |i: usize| -> rusqlite::Result<u64> {
                Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
            };
            Ok((
                row.get::<_, String>(0)?,
                [count(1)?, count(2)?, count(3)?, count(4)?],
                row.get::<_, Option<i64>>(5)?,
            ))
        })
        .ctx(what)?;
    rows.map(|row| {
        let (function, [queued, running, retrying, dead_letters], oldest) = row.ctx(what)?;
        Ok(FunctionQueueStats {
            function: FunctionName::parse(function)
                .map_err(|e| StoreError(format!("corrupt queued function name: {e}")))?,
            queued,
            running,
            retrying,
            dead_letters,
            oldest_enqueued_at: oldest,
        })
    })
    .collect()
}

fn depths(conn: &Connection) -> Result<Vec<(EnvId, u64)>> {
    let what = "cannot count queued invocations";
    let mut statement = conn
        .prepare_cached(
            "SELECT env, count(*) FROM invocation_queue WHERE dead IS NULL GROUP BY env",
        )
        .ctx(what)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .ctx(what)?;
    rows.map(|row| {
        let (env, count) = row.ctx(what)?;
        let env = EnvId::parse(env).map_err(|e| StoreError(format!("corrupt queued env: {e}")))?;
        Ok((env, u64::try_from(count).unwrap_or(0)))
    })
    .collect()
}

/// Runs a statement meant to change one row; whether it did.
fn changed_one(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
) -> Result<bool> {
    // Cached: these run for every invocation, and parsing a statement costs
    // more than running it.
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .ctx(what)?;
    Ok(changed == 1)
}

fn many(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<Queued>> {
    let mut statement = conn.prepare_cached(sql).ctx(what)?;
    let rows = statement.query_map(params, |row| Ok(read(row))).ctx(what)?;
    rows.map(|row| row.ctx(what)?).collect()
}

/// Tokens are random 64-bit numbers; SQLite keeps them as signed integers.
fn as_i64(token: u64) -> i64 {
    i64::from_ne_bytes(token.to_ne_bytes())
}

/// A row as a queued invocation; a row this build cannot read is corruption.
fn read(row: &Row<'_>) -> Result<Queued> {
    let what = "cannot read a queued invocation";
    let corrupt = |column: &str, why: String| {
        StoreError(format!("corrupt queued invocation {column}: {why}"))
    };
    let env: String = row.get(0).ctx(what)?;
    let request_id: String = row.get(1).ctx(what)?;
    let function: String = row.get(2).ctx(what)?;
    let version: String = row.get(3).ctx(what)?;
    let event: Vec<u8> = row.get(4).ctx(what)?;
    let token: Option<i64> = row.get(10).ctx(what)?;
    let until: Option<i64> = row.get(11).ctx(what)?;
    let attempts: i64 = row.get(9).ctx(what)?;
    Ok(Queued {
        invocation: NewQueued {
            key: QueueKey {
                env: EnvId::parse(env).map_err(|e| corrupt("env", e.to_string()))?,
                request_id: RequestId::parse(&request_id)
                    .map_err(|e| corrupt("request ID", e.to_string()))?,
            },
            function: FunctionName::parse(function)
                .map_err(|e| corrupt("function", e.to_string()))?,
            version: VersionId::parse(&version).map_err(|e| corrupt("version", e.to_string()))?,
            event: Bytes::from(event),
            event_kind: EventKind::parse(&row.get::<_, String>(14).ctx(what)?)
                .ok_or_else(|| corrupt("event kind", "unknown".to_owned()))?,
            origin: row.get(15).ctx(what)?,
            trigger: row.get(5).ctx(what)?,
            enqueued_at: row.get(6).ctx(what)?,
            due_at: row.get(7).ctx(what)?,
            expires_at: row.get(8).ctx(what)?,
        },
        attempts: u32::try_from(attempts).map_err(|e| corrupt("attempts", e.to_string()))?,
        lease: match (token, until) {
            (Some(token), Some(until)) => Some(Lease {
                token: u64::from_ne_bytes(token.to_ne_bytes()),
                until,
            }),
            _ => None,
        },
        dead: row.get(12).ctx(what)?,
        history: super::attempts_of(row.get::<_, Option<String>>(13).ctx(what)?.as_deref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::sqlite::{schema, SqliteOptions};

    #[test]
    fn the_queues_connection_syncs_each_commit_and_the_records_do_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).expect("open");
        let synchronous = |conn: &rusqlite::Connection| -> i64 {
            conn.pragma_query_value(None, "synchronous", |row| row.get(0))
                .expect("pragma")
        };
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;
        let path = dir.path().join("cloudlet.db");
        let timeout = SqliteOptions::default().busy_timeout;
        // What the queue's batching thread is opened with (`SqliteStore::open`).
        let queue_conn = schema::connect_durable(&path, timeout).expect("connect");
        assert_eq!(synchronous(&queue_conn), FULL);
        assert_eq!(synchronous(&store.shared.meta.lock()), NORMAL);
    }
}
