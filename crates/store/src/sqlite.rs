//! The embedded backend: one data directory holding `cloudlet.db` (SQLite in
//! WAL mode) and `packages/<version>.pkg` (package archives as files).
//!
//! # Threads and connections
//!
//! - **Metadata** (envs, functions, versions) goes through one connection
//!   behind a mutex, always on `spawn_blocking`, so a slow disk never stalls the
//!   async executor. Metadata changes are rare (deploys, keys) and the gateway
//!   caches what it reads, so one connection is plenty; it also serialises
//!   deploys and removals, which is what keeps a package file and its version
//!   row in step.
//! - **Invocation records** never cost the request a disk write:
//!   [`RecordStore::submit`] pushes onto a bounded in-memory queue and returns.
//!   One dedicated writer thread with its own connection drains the queue in
//!   batches of up to [`SqliteOptions::record_batch_max`], one transaction and
//!   cached prepared statements per batch. SQLite takes one writer at a time
//!   anyway, and batching turns thousands of tiny commits into a few large
//!   ones. When the writer falls behind and the queue is full, the oldest
//!   pending record is dropped and counted ([`RecordStore::dropped`]) rather
//!   than slowing invocations down.
//! - **Record lookups** look in the queue and the batch being written first,
//!   then read through a third connection (WAL readers do not wait for the
//!   writer), so a client asking for its record right after its invocation
//!   finds it even though it has not reached the disk yet.
//! - **The invocation queue** is the opposite trade: nothing may be lost, so
//!   every write to it waits for a synced commit, and one thread
//!   ([`crate::batching::Lossless`] over `group_commit.rs`) on a fourth
//!   connection (`synchronous = FULL`) gives the writes that arrive together
//!   one transaction and one sync. Its reads go through the reader. Records
//!   and the queue live in different tables: pruning records never touches
//!   queued, running or dead-lettered work.
//!
//! The writer also prunes records older than [`SqliteOptions::record_retention`],
//! at most once per [`SqliteOptions::prune_interval`], in chunks interleaved
//! with batches; and before every batch it keeps the database and its WAL
//! within [`SqliteOptions::record_max_bytes`], deleting the oldest records
//! first and giving the freed pages back to the file system.

mod group_commit;
mod invocation_queue;
mod packages;
mod queue;
mod routes;
mod schema;
mod space;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cloudlet_core::{
    now_unix_ms, AsyncConfig, Attempt, CorsSettings, EnvId, ErrorCode, FunctionConfig,
    FunctionError, FunctionInfo, FunctionName, HostPattern, HttpResponseSummary, IdError,
    InvocationRecord, InvocationRef, InvocationStatus, InvocationSummary, LogLevel, LogLine,
    PathPrefix, RequestId, Route, VersionId, VersionInfo,
};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::batching::Lossless;
use crate::{
    EnvInfo, FunctionStore, InvocationQuery, NewVersion, RecordStore, RecordUsage, Result,
    StoreError, TimerFiring,
};
use group_commit::SqliteCommitter;
use packages::PackageDir;
use queue::RecordQueue;
use space::SizeLimit;
use writer::{PrunePolicy, Writer};

/// Tuning of [`SqliteStore`]. `Default` suits a server; tests shrink the limits.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most records written in one transaction.
    pub record_batch_max: usize,
    /// Most bytes of records in one batch (their texts, see
    /// `queue::record_bytes`); a batch takes at least one record.
    pub record_batch_max_bytes: usize,
    /// Most records waiting for the writer; beyond it the oldest are dropped.
    pub record_queue_max: usize,
    /// Most bytes of records waiting for the writer; beyond it the oldest are dropped.
    pub record_queue_max_bytes: usize,
    /// Records older than this (by `started_at`) are deleted. `None` keeps them.
    pub record_retention: Option<Duration>,
    /// The most disk the database and its WAL may take; past it the oldest
    /// records are deleted, before each batch. `None`: no limit.
    pub record_max_bytes: Option<u64>,
    /// How often the writer prunes records.
    pub prune_interval: Duration,
    /// How long a statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            record_batch_max: 512,
            record_batch_max_bytes: 8 * 1024 * 1024,
            record_queue_max: 65_536,
            record_queue_max_bytes: 256 * 1024 * 1024,
            record_retention: Some(Duration::from_secs(7 * 24 * 60 * 60)),
            record_max_bytes: Some(1024 * 1024 * 1024),
            prune_interval: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The embedded store: SQLite for metadata and records, files for packages.
/// See the [module documentation](self) for how work is spread over threads.
pub struct SqliteStore {
    shared: Arc<Shared>,
    queue: Arc<RecordQueue>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Every write to the invocation queue, many to a synced commit.
    queue_writes: Lossless<QueueCommitter>,
}

/// The invocation queue's committer: its writes on a synced connection.
type QueueCommitter = SqliteCommitter<
    invocation_queue::QueueWrite,
    invocation_queue::QueueAnswer,
    fn(
        &rusqlite::Transaction<'_>,
        invocation_queue::QueueWrite,
    ) -> Result<invocation_queue::QueueAnswer>,
>;

/// Most queue writes one synced commit takes.
const QUEUE_BATCH_MAX: usize = 1024;

/// What the blocking tasks need, shared with them by `Arc`.
struct Shared {
    meta: Mutex<Connection>,
    reader: Mutex<Connection>,
    packages: PackageDir,
    /// The database file, for the size records take and for status queries
    /// on a connection of their own.
    database: std::path::PathBuf,
    busy_timeout: Duration,
    record_max_bytes: Option<u64>,
}

/// The two kinds of env key, each in a column of its own.
#[derive(Clone, Copy)]
enum KeyColumn {
    /// The env's key: invoke and read its records.
    Env,
    /// Its publishable key: invoke and upload only.
    Publishable,
}

impl KeyColumn {
    fn name(self) -> &'static str {
        match self {
            KeyColumn::Env => "key_hash",
            KeyColumn::Publishable => "publishable_key_hash",
        }
    }

    /// What keys of the kind start with, so that a key says what it is.
    fn prefix(self) -> &'static str {
        match self {
            KeyColumn::Env => "ck_",
            KeyColumn::Publishable => crate::PUBLISHABLE_KEY_PREFIX,
        }
    }
}

/// Adds what was being done to a low-level error.
pub(crate) trait DbContext<T> {
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T, E: std::fmt::Display> DbContext<T> for std::result::Result<T, E> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| StoreError(format!("{what}: {e}")))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, brings its schema up
    /// to date and starts the record writer. Blocking: call it before serving
    /// or on `spawn_blocking`.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        if options.record_batch_max == 0 || options.record_queue_max == 0 {
            return Err(StoreError(
                "record_batch_max and record_queue_max must be at least 1".into(),
            ));
        }
        std::fs::create_dir_all(data_dir).ctx(&format!(
            "cannot create the data dir {}",
            data_dir.display()
        ))?;
        let db_path = data_dir.join("cloudlet.db");
        let packages = PackageDir::open(data_dir.join("packages"))?;

        let mut meta = schema::connect(&db_path, options.busy_timeout)?;
        schema::convert_to_incremental_vacuum(&meta)?;
        schema::migrate(&mut meta, now_unix_ms())?;
        packages.sweep(|version| {
            meta.query_row(
                "SELECT 1 FROM versions WHERE id = ?1",
                [version],
                |_| Ok(()),
            )
            .optional()
            .map(|row| row.is_some())
            .ctx("cannot check a package against the versions")
        })?;
        let reader = schema::connect(&db_path, options.busy_timeout)?;
        let writer_conn = schema::connect(&db_path, options.busy_timeout)?;
        let apply: fn(&rusqlite::Transaction<'_>, _) -> Result<_> =
            |tx, write| invocation_queue::apply(tx, write);
        let queue_writes = Lossless::start(
            "cloudlet-queue",
            SqliteCommitter::new(
                schema::connect_durable(&db_path, options.busy_timeout)?,
                apply,
            ),
            QUEUE_BATCH_MAX,
        )?;

        let queue = Arc::new(RecordQueue::new(
            "invocation records",
            options.record_queue_max,
            options.record_queue_max_bytes,
            options.record_batch_max,
        ));
        let writer = Writer::new(
            writer_conn,
            options.record_batch_max,
            options.record_batch_max_bytes,
            PrunePolicy {
                retention: options.record_retention,
                size_limit: options
                    .record_max_bytes
                    .map(|max| SizeLimit::new(max, &db_path)),
                interval: options.prune_interval,
            },
        );
        let writer_queue = Arc::clone(&queue);
        let handle = std::thread::Builder::new()
            .name("cloudlet-records".into())
            .spawn(move || writer.run(writer_queue))
            .ctx("cannot start the record writer thread")?;

        Ok(SqliteStore {
            shared: Arc::new(Shared {
                meta: Mutex::new(meta),
                reader: Mutex::new(reader),
                packages,
                database: db_path.clone(),
                busy_timeout: options.busy_timeout,
                record_max_bytes: options.record_max_bytes,
            }),
            queue,
            writer: Mutex::new(Some(handle)),
            queue_writes,
        })
    }

    /// Writes every pending record and stops the record writer. Blocking: on
    /// an async runtime call it through `spawn_blocking`. Metadata calls keep
    /// working afterwards; records submitted after it are dropped and counted.
    /// Idempotent. Dropping the store closes it too, logging any error.
    pub fn close(&self) -> Result<()> {
        self.queue_writes.close()?;
        let failures_before = {
            let mut state = self.queue.state.lock();
            state.closing = true;
            state.failures
        };
        self.queue.wake.notify_all();
        let Some(handle) = self.writer.lock().take() else {
            return Ok(());
        };
        if handle.join().is_err() {
            return Err(StoreError(
                "the record writer panicked; pending invocation records were lost".into(),
            ));
        }
        let state = self.queue.state.lock();
        if state.failures > failures_before {
            return Err(StoreError(format!(
                "invocation records could not be written: {}",
                state.last_failure.as_deref().unwrap_or("unknown error")
            )));
        }
        Ok(())
    }

    /// Test hook: while paused the writer takes no new batch, so tests can fill
    /// the queue deterministically. `close` still drains it.
    #[doc(hidden)]
    pub fn pause_record_writer(&self, paused: bool) {
        self.queue.state.lock().paused = paused;
        self.queue.wake.notify_all();
    }

    /// A fresh key of the kind `column` keeps, of which only the SHA-256 is
    /// stored, creating the env if needed.
    async fn issue_key(&self, env: &EnvId, column: KeyColumn) -> Result<String> {
        let env = env.clone();
        let bytes: [u8; 32] = rand::random();
        let key = format!("{}{}", column.prefix(), hex::encode(bytes));
        let hash = key_hash(&key);
        let sql = format!(
            "INSERT INTO envs (name, {column}, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET {column} = excluded.{column}",
            column = column.name()
        );
        self.with_meta(move |_, conn| {
            conn.execute(&sql, params![env.as_str(), hash, now_unix_ms()])
                .ctx("cannot store the key")?;
            Ok(())
        })
        .await?;
        Ok(key)
    }

    /// Whether `key` is the env's current key of the kind `column` keeps,
    /// compared in constant time.
    async fn check_key(&self, env: &EnvId, column: KeyColumn, key: &str) -> Result<bool> {
        let env = env.clone();
        let presented = key_hash(key);
        let sql = format!("SELECT {} FROM envs WHERE name = ?1", column.name());
        let stored: Option<Option<String>> = self
            .with_meta(move |_, conn| {
                conn.query_row(&sql, [env.as_str()], |row| row.get(0))
                    .optional()
                    .ctx("cannot read the key")
            })
            .await?;
        Ok(match stored.flatten() {
            Some(stored) => constant_time_eq(stored.as_bytes(), presented.as_bytes()),
            None => false,
        })
    }

    /// Runs `f` with the metadata connection on the blocking pool.
    async fn with_meta<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            let mut conn = shared.meta.lock();
            f(&shared, &mut conn)
        })
        .await
        .ctx("a store task failed")?
    }

    /// Runs `f` on the blocking pool without taking the metadata connection.
    async fn on_blocking_pool<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .ctx("a store task failed")?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "closing the store");
        }
    }
}

#[async_trait]
impl FunctionStore for SqliteStore {
    async fn deploy(&self, new: NewVersion) -> Result<FunctionInfo> {
        self.on_blocking_pool(move |shared| deploy(shared, &new))
            .await
    }

    async fn function(&self, env: &EnvId, name: &FunctionName) -> Result<Option<FunctionInfo>> {
        let (env, name) = (env.clone(), name.clone());
        self.with_meta(move |_, conn| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN versions v ON v.id = f.version \
                     WHERE f.env = ?1 AND f.name = ?2"
                ))
                .and_then(|mut stmt| {
                    stmt.query_row(params![env.as_str(), name.as_str()], FunctionRow::read)
                        .optional()
                })
                .ctx("cannot read the function")?;
            row.map(|row| row.into_info(&env)).transpose()
        })
        .await
    }

    async fn version(
        &self,
        env: &EnvId,
        name: &FunctionName,
        version: &str,
    ) -> Result<Option<VersionInfo>> {
        let (env, name) = (env.clone(), name.clone());
        // A full ID, or the short form (its first 12 characters); nothing else
        // may reach LIKE.
        let short = VersionId::parse(version.to_owned())
            .map(|v| v.short().to_owned())
            .ok()
            .or_else(|| {
                (version.len() == 12 && version.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| version.to_ascii_lowercase())
            });
        let Some(short) = short else {
            return Ok(None);
        };
        self.with_meta(move |_, conn| {
            let rows: Vec<VersionRow> = {
                let mut select = conn
                    .prepare_cached(
                        "SELECT v.id, v.config_json, v.package_size, v.created_at \
                         FROM function_versions h JOIN versions v ON v.id = h.version \
                         WHERE h.env = ?1 AND h.name = ?2 AND h.version LIKE ?3 || '%'",
                    )
                    .ctx("cannot read the function's versions")?;
                let rows = select
                    .query_map(
                        params![env.as_str(), name.as_str(), short],
                        VersionRow::read,
                    )
                    .ctx("cannot read the function's versions")?;
                rows.collect::<rusqlite::Result<_>>()
                    .ctx("cannot read the function's versions")?
            };
            match rows.len() {
                1 => rows
                    .into_iter()
                    .next()
                    .map(VersionRow::into_info)
                    .transpose(),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn functions(&self, env: &EnvId) -> Result<Option<Vec<FunctionInfo>>> {
        let env = env.clone();
        self.with_meta(move |_, conn| {
            if !env_exists(conn, &env)? {
                return Ok(None);
            }
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN versions v ON v.id = f.version \
                     WHERE f.env = ?1 ORDER BY f.name"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map([env.as_str()], FunctionRow::read)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .ctx("cannot list the functions")?;
            rows.into_iter()
                .map(|row| row.into_info(&env))
                .collect::<Result<Vec<_>>>()
                .map(Some)
        })
        .await
    }

    async fn remove_function(&self, env: &EnvId, name: &FunctionName) -> Result<bool> {
        let (env, name) = (env.clone(), name.clone());
        self.with_meta(move |shared, conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("cannot start a transaction")?;
            let version: Option<String> = tx
                .query_row(
                    "SELECT version FROM functions WHERE env = ?1 AND name = ?2",
                    params![env.as_str(), name.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .ctx("cannot read the function")?;
            let Some(version) = version else {
                return Ok(false);
            };
            tx.execute(
                "DELETE FROM functions WHERE env = ?1 AND name = ?2",
                params![env.as_str(), name.as_str()],
            )
            .ctx("cannot delete the function")?;
            tx.execute(
                "DELETE FROM timer_firings WHERE env = ?1 AND function = ?2",
                params![env.as_str(), name.as_str()],
            )
            .ctx("cannot forget the function's timers")?;
            let history: Vec<String> = {
                let mut select = tx
                    .prepare("DELETE FROM function_versions WHERE env = ?1 AND name = ?2 RETURNING version")
                    .ctx("cannot forget the function's versions")?;
                let rows = select
                    .query_map(params![env.as_str(), name.as_str()], |row| row.get(0))
                    .ctx("cannot forget the function's versions")?;
                rows.collect::<rusqlite::Result<_>>()
                    .ctx("cannot forget the function's versions")?
            };
            let mut released = Vec::new();
            for old in history.iter().chain(std::iter::once(&version)) {
                released.extend(release_if_unused(&tx, old)?);
            }
            tx.commit().ctx("cannot commit the removal")?;
            // After the commit: a crash in between leaves a stray file, which
            // the next open sweeps, never a row without its package.
            for version in released {
                shared.packages.remove(&version);
            }
            Ok(true)
        })
        .await
    }

    async fn package(&self, version: &VersionId) -> Result<Option<Bytes>> {
        let version = version.clone();
        self.on_blocking_pool(move |shared| {
            if let Some(bytes) = shared.packages.read(&version)? {
                return Ok(Some(Bytes::from(bytes)));
            }
            let known = shared
                .reader
                .lock()
                .query_row(
                    "SELECT 1 FROM versions WHERE id = ?1",
                    [version.as_str()],
                    |_| Ok(()),
                )
                .optional()
                .ctx("cannot read the version")?
                .is_some();
            if known {
                // A deploy may have placed the file and committed its row
                // between the read above and the query.
                if let Some(bytes) = shared.packages.read(&version)? {
                    return Ok(Some(Bytes::from(bytes)));
                }
                return Err(StoreError(format!(
                    "the package file of version {version} is missing"
                )));
            }
            Ok(None)
        })
        .await
    }

    async fn env(&self, env: &EnvId) -> Result<Option<EnvInfo>> {
        let env = env.clone();
        self.with_meta(move |_, conn| {
            conn.prepare_cached(&format!("{ENV_SELECT} WHERE e.name = ?1"))
                .and_then(|mut stmt| stmt.query_row([env.as_str()], EnvRow::read).optional())
                .ctx("cannot read the env")?
                .map(EnvRow::into_info)
                .transpose()
        })
        .await
    }

    async fn envs(&self) -> Result<Vec<EnvInfo>> {
        self.with_meta(move |_, conn| {
            conn.prepare_cached(&format!("{ENV_SELECT} ORDER BY e.name"))
                .and_then(|mut stmt| {
                    stmt.query_map([], EnvRow::read)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .ctx("cannot list the envs")?
                .into_iter()
                .map(EnvRow::into_info)
                .collect()
        })
        .await
    }

    async fn issue_env_key(&self, env: &EnvId) -> Result<String> {
        self.issue_key(env, KeyColumn::Env).await
    }

    async fn check_env_key(&self, env: &EnvId, key: &str) -> Result<bool> {
        self.check_key(env, KeyColumn::Env, key).await
    }

    async fn issue_publishable_key(&self, env: &EnvId) -> Result<String> {
        self.issue_key(env, KeyColumn::Publishable).await
    }

    async fn check_publishable_key(&self, env: &EnvId, key: &str) -> Result<bool> {
        self.check_key(env, KeyColumn::Publishable, key).await
    }

    async fn async_config(&self, env: &EnvId, name: &FunctionName) -> Result<Option<AsyncConfig>> {
        let (env, name) = (env.clone(), name.clone());
        let stored: Option<Option<String>> = self
            .with_meta(move |_, conn| {
                conn.query_row(
                    "SELECT async_config FROM functions WHERE env = ?1 AND name = ?2",
                    params![env.as_str(), name.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .ctx("cannot read the function's asynchronous settings")
            })
            .await?;
        stored
            .flatten()
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| {
                    StoreError(format!(
                        "corrupt asynchronous settings in the database: {e}"
                    ))
                })
            })
            .transpose()
    }

    async fn set_async_config(
        &self,
        env: &EnvId,
        name: &FunctionName,
        config: Option<&AsyncConfig>,
    ) -> Result<bool> {
        let (env, name) = (env.clone(), name.clone());
        let json = config
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError(format!("cannot encode asynchronous settings: {e}")))?;
        self.with_meta(move |_, conn| {
            let changed = conn
                .execute(
                    "UPDATE functions SET async_config = ?3 WHERE env = ?1 AND name = ?2",
                    params![env.as_str(), name.as_str(), json],
                )
                .ctx("cannot store the function's asynchronous settings")?;
            Ok(changed == 1)
        })
        .await
    }

    async fn timer_firings(&self) -> Result<Vec<TimerFiring>> {
        self.with_meta(|_, conn| {
            let what = "cannot read the timers' firings";
            let mut statement = conn
                .prepare("SELECT env, function, trigger, fired_at FROM timer_firings")
                .ctx(what)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .ctx(what)?;
            rows.map(|row| {
                let (env, function, trigger, fired_at) = row.ctx(what)?;
                Ok(TimerFiring {
                    env: EnvId::parse(env).map_err(corrupt("env"))?,
                    function: FunctionName::parse(function).map_err(corrupt("function name"))?,
                    trigger,
                    fired_at,
                })
            })
            .collect()
        })
        .await
    }

    async fn record_timer_firing(&self, firing: &TimerFiring) -> Result<()> {
        let firing = firing.clone();
        self.with_meta(move |_, conn| {
            conn.execute(
                "INSERT INTO timer_firings (env, function, trigger, fired_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (env, function, trigger) DO UPDATE SET fired_at = excluded.fired_at",
                params![
                    firing.env.as_str(),
                    firing.function.as_str(),
                    firing.trigger,
                    firing.fired_at
                ],
            )
            .ctx("cannot note a timer's firing")?;
            Ok(())
        })
        .await
    }

    async fn cors(&self, env: &EnvId) -> Result<Option<CorsSettings>> {
        let env = env.clone();
        let stored: Option<Option<String>> = self
            .with_meta(move |_, conn| {
                conn.query_row(
                    "SELECT cors FROM envs WHERE name = ?1",
                    [env.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .ctx("cannot read the env's CORS settings")
            })
            .await?;
        stored
            .flatten()
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| StoreError(format!("corrupt CORS settings in the database: {e}")))
            })
            .transpose()
    }

    async fn set_cors(&self, env: &EnvId, settings: Option<&CorsSettings>) -> Result<()> {
        let env = env.clone();
        let json = settings
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError(format!("cannot encode CORS settings: {e}")))?;
        self.with_meta(move |_, conn| {
            conn.execute(
                "INSERT INTO envs (name, created_at, cors) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET cors = excluded.cors",
                params![env.as_str(), now_unix_ms(), json],
            )
            .ctx("cannot store the env's CORS settings")?;
            Ok(())
        })
        .await
    }

    async fn routes(&self) -> Result<Vec<Route>> {
        self.with_meta(|_, conn| routes::list(conn)).await
    }

    async fn add_route(&self, route: &Route) -> Result<bool> {
        let route = route.clone();
        self.with_meta(move |_, conn| routes::add(conn, &route))
            .await
    }

    async fn remove_route(&self, host: &HostPattern, prefix: &PathPrefix) -> Result<bool> {
        let (host, prefix) = (host.clone(), prefix.clone());
        self.with_meta(move |_, conn| routes::remove(conn, &host, &prefix))
            .await
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    fn submit(&self, record: InvocationRecord) {
        self.queue.submit(record);
    }

    async fn flush(&self) -> Result<()> {
        self.queue.flush().await
    }

    async fn record(
        &self,
        env: &EnvId,
        request_id: &RequestId,
    ) -> Result<Option<InvocationRecord>> {
        // The queue first: a record leaves it only once its batch is committed,
        // so checking the queue and then the database cannot miss it.
        if let Some(record) = queue::find(&self.queue, env, request_id) {
            return Ok(Some(record));
        }
        let (env, request_id) = (env.clone(), request_id.clone());
        self.on_blocking_pool(move |shared| {
            let mut conn = shared.reader.lock();
            read_record(&mut conn, env, request_id)
        })
        .await
    }

    async fn children(&self, caller: &InvocationRef) -> Result<Vec<InvocationSummary>> {
        // The queue before the database, as `record` does: a record leaves
        // the queue only once its batch is committed, so one the writer
        // commits in between is found twice (and kept once), never missed.
        let queued = queue::children(&self.queue, caller);
        let caller_key = caller.clone();
        let mut children = self
            .on_blocking_pool(move |shared| {
                let conn = shared.reader.lock();
                read_children(&conn, &caller_key)
            })
            .await?;
        for record in queued {
            children.retain(|c| c.request_id != record.request_id || c.env != record.env);
            children.push(record);
        }
        children.sort_by_key(|c| c.started_at);
        children.truncate(crate::CHILDREN_LISTED);
        Ok(children)
    }

    async fn invocations(
        &self,
        env: &EnvId,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationSummary>> {
        // The queue before the database, as `children` does; a record found
        // in both is the queue's (the newer).
        let queued = queue::matching(&self.queue, env, query);
        let (env_key, stored_query) = (env.clone(), query.clone());
        let mut listed = self
            .on_blocking_pool(move |shared| {
                let conn = shared.reader.lock();
                read_invocations(&conn, &env_key, &stored_query)
            })
            .await?;
        for record in queued {
            listed.retain(|c| c.request_id != record.request_id);
            listed.push(record);
        }
        listed.sort_by(|a, b| (b.started_at, &b.request_id).cmp(&(a.started_at, &a.request_id)));
        listed.truncate(query.limit);
        Ok(listed)
    }

    fn dropped(&self) -> u64 {
        self.queue
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn usage(&self) -> Result<RecordUsage> {
        let pending = {
            let state = self.queue.state.lock();
            let writing = state.in_flight.as_ref().map_or(0, |batch| batch.len());
            (state.pending.len() + writing) as u64
        };
        let dropped = self.dropped();
        self.on_blocking_pool(move |shared| {
            // Counting scans every record: on a connection of its own, so that
            // record lookups on the shared reader do not wait for it.
            let conn = schema::connect(&shared.database, shared.busy_timeout)?;
            let (records, oldest_started_at): (i64, Option<i64>) = conn
                .query_row(
                    "SELECT count(*), min(started_at) FROM invocations",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .ctx("cannot count the records")?;
            let bytes = space::stored_bytes(&shared.database);
            Ok(RecordUsage {
                records: u64::try_from(records).unwrap_or(0),
                bytes,
                max_bytes: shared.record_max_bytes,
                oldest_started_at,
                pending,
                dropped,
            })
        })
        .await
    }
}

fn deploy(shared: &Shared, new: &NewVersion) -> Result<FunctionInfo> {
    let now = now_unix_ms();
    let config_json = serde_json::to_string(&new.config).ctx("cannot encode the config")?;
    let package_size = i64::try_from(new.archive.len()).ctx("package too large")?;
    // The expensive write happens before taking the lock; under the lock only
    // the rename remains.
    let staged = if shared.packages.path(&new.version).exists() {
        None
    } else {
        Some(shared.packages.stage(&new.version, &new.archive)?)
    };

    let mut conn = shared.meta.lock();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("cannot start a transaction")?;
    tx.execute(
        "INSERT INTO versions (id, config_json, package_size, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO NOTHING",
        params![new.version.as_str(), config_json, package_size, now],
    )
    .ctx("cannot store the version")?;
    tx.execute(
        "INSERT INTO envs (name, key_hash, created_at) VALUES (?1, NULL, ?2) \
         ON CONFLICT (name) DO NOTHING",
        params![new.env.as_str(), now],
    )
    .ctx("cannot create the env")?;
    let previous: Option<String> = tx
        .query_row(
            "SELECT version FROM functions WHERE env = ?1 AND name = ?2",
            params![new.env.as_str(), new.name.as_str()],
            |row| row.get(0),
        )
        .optional()
        .ctx("cannot read the function")?;
    tx.execute(
        "INSERT INTO functions (env, name, version, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (env, name) DO UPDATE SET version = excluded.version, \
         updated_at = excluded.updated_at",
        params![
            new.env.as_str(),
            new.name.as_str(),
            new.version.as_str(),
            now
        ],
    )
    .ctx("cannot store the function")?;
    tx.execute(
        "INSERT INTO function_versions (env, name, version, deploy_seq) \
         SELECT ?1, ?2, ?3, coalesce(max(deploy_seq), 0) + 1 FROM function_versions \
         WHERE env = ?1 AND name = ?2 \
         ON CONFLICT (env, name, version) DO UPDATE SET deploy_seq = excluded.deploy_seq",
        params![new.env.as_str(), new.name.as_str(), new.version.as_str()],
    )
    .ctx("cannot record the function's version")?;
    let mut released = forget_old_versions(&tx, &new.env, &new.name)?;
    if let Some(previous) = previous.filter(|p| p != new.version.as_str()) {
        released.extend(release_if_unused(&tx, &previous)?);
    }
    let row = tx
        .query_row(
            &format!(
                "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN versions v ON v.id = f.version \
                 WHERE f.env = ?1 AND f.name = ?2"
            ),
            params![new.env.as_str(), new.name.as_str()],
            FunctionRow::read,
        )
        .ctx("cannot read the deployed function")?;
    let info = row.into_info(&new.env)?;

    // The file is in place before the row that names it is committed, so a
    // committed version always has its package.
    let placed = shared.packages.place(&new.version, staged, &new.archive)?;
    if let Err(error) = tx.commit() {
        if placed {
            shared.packages.remove(new.version.as_str());
        }
        return Err(StoreError(format!("cannot commit the deploy: {error}")));
    }
    for version in released {
        shared.packages.remove(&version);
    }
    Ok(info)
}

/// Keeps the function's [`crate::VERSIONS_KEPT`] most recently deployed
/// versions in its history and releases the versions that fall out of it.
fn forget_old_versions(
    tx: &Transaction<'_>,
    env: &EnvId,
    name: &FunctionName,
) -> Result<Vec<String>> {
    let old: Vec<String> = {
        let mut select = tx
            .prepare_cached(
                "SELECT version FROM function_versions WHERE env = ?1 AND name = ?2 \
                 ORDER BY deploy_seq DESC LIMIT -1 OFFSET ?3",
            )
            .ctx("cannot read the function's versions")?;
        let rows = select
            .query_map(
                params![env.as_str(), name.as_str(), crate::VERSIONS_KEPT as i64],
                |row| row.get(0),
            )
            .ctx("cannot read the function's versions")?;
        rows.collect::<rusqlite::Result<_>>()
            .ctx("cannot read the function's versions")?
    };
    let mut released = Vec::new();
    for version in old {
        tx.execute(
            "DELETE FROM function_versions WHERE env = ?1 AND name = ?2 AND version = ?3",
            params![env.as_str(), name.as_str(), version],
        )
        .ctx("cannot forget an old version")?;
        released.extend(release_if_unused(tx, &version)?);
    }
    Ok(released)
}

/// Deletes a version's row when no function points at it any more, now or in
/// its history, and returns it, so the caller can delete its file after committing.
fn release_if_unused(tx: &Transaction<'_>, version: &str) -> Result<Option<String>> {
    let used: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM functions WHERE version = ?1) \
             OR EXISTS (SELECT 1 FROM function_versions WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )
        .ctx("cannot check the version's users")?;
    if used {
        return Ok(None);
    }
    tx.execute("DELETE FROM versions WHERE id = ?1", [version])
        .ctx("cannot delete the unused version")?;
    Ok(Some(version.to_owned()))
}

fn env_exists(conn: &Connection, env: &EnvId) -> Result<bool> {
    if *env == EnvId::default_env() {
        return Ok(true);
    }
    conn.prepare_cached("SELECT 1 FROM envs WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([env.as_str()], |_| Ok(())).optional())
        .map(|row| row.is_some())
        .ctx("cannot read the env")
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn corrupt(what: &str) -> impl Fn(IdError) -> StoreError + '_ {
    move |e| StoreError(format!("corrupt {what} in the database: {e}"))
}

const FUNCTION_COLUMNS: &str =
    "f.name, f.updated_at, v.id, v.config_json, v.package_size, v.created_at";

/// A `versions` row as `version` reads it.
struct VersionRow {
    version: String,
    config_json: String,
    package_size: i64,
    created_at: i64,
}

impl VersionRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            version: row.get(0)?,
            config_json: row.get(1)?,
            package_size: row.get(2)?,
            created_at: row.get(3)?,
        })
    }

    fn into_info(self) -> Result<VersionInfo> {
        let config: FunctionConfig = serde_json::from_str(&self.config_json)
            .ctx(&format!("corrupt config of version {}", self.version))?;
        Ok(VersionInfo {
            version: VersionId::parse(self.version).map_err(corrupt("version"))?,
            config,
            package_size: u64::try_from(self.package_size).unwrap_or(0),
            created_at: self.created_at,
        })
    }
}

struct FunctionRow {
    name: String,
    updated_at: i64,
    version: String,
    config_json: String,
    package_size: i64,
    created_at: i64,
}

impl FunctionRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            name: row.get(0)?,
            updated_at: row.get(1)?,
            version: row.get(2)?,
            config_json: row.get(3)?,
            package_size: row.get(4)?,
            created_at: row.get(5)?,
        })
    }

    fn into_info(self, env: &EnvId) -> Result<FunctionInfo> {
        let config: FunctionConfig = serde_json::from_str(&self.config_json)
            .ctx(&format!("corrupt config of version {}", self.version))?;
        Ok(FunctionInfo {
            env: env.clone(),
            name: FunctionName::parse(self.name).map_err(corrupt("function name"))?,
            current: VersionInfo {
                version: VersionId::parse(self.version).map_err(corrupt("version"))?,
                config,
                package_size: u64::try_from(self.package_size).unwrap_or(0),
                created_at: self.created_at,
            },
            updated_at: self.updated_at,
            engine: None,
            engine_note: None,
        })
    }
}

const ENV_SELECT: &str = "SELECT e.name, e.created_at, \
     (SELECT count(*) FROM functions f WHERE f.env = e.name) FROM envs e";

struct EnvRow {
    name: String,
    created_at: i64,
    function_count: i64,
}

impl EnvRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            name: row.get(0)?,
            created_at: row.get(1)?,
            function_count: row.get(2)?,
        })
    }

    fn into_info(self) -> Result<EnvInfo> {
        Ok(EnvInfo {
            env: EnvId::parse(self.name).map_err(corrupt("env name"))?,
            created_at: self.created_at,
            function_count: u64::try_from(self.function_count).unwrap_or(0),
        })
    }
}

fn read_record(
    conn: &mut Connection,
    env: EnvId,
    request_id: RequestId,
) -> Result<Option<InvocationRecord>> {
    // One read transaction, so a concurrent replacement of a reused request ID
    // cannot pair one record's fields with another's logs.
    let tx = conn.transaction().ctx("cannot start a read")?;
    let key = params![env.as_str(), request_id.as_str()];
    let row = tx
        .prepare_cached(
            "SELECT function, version, status, started_at, duration_us, init_us, cold, trigger, \
             result, error_code, error_message, error_stack, logs_truncated, error_type, \
             caller_env, caller_request_id, root_env, root_request_id, http_status, http_bytes, \
             attempts, next_attempt_at \
             FROM invocations WHERE env = ?1 AND request_id = ?2",
        )
        .and_then(|mut stmt| stmt.query_row(key, RecordRow::read).optional())
        .ctx("cannot read the invocation record")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let logs = tx
        .prepare_cached(
            "SELECT ts, level, message FROM invocation_logs \
             WHERE env = ?1 AND request_id = ?2 ORDER BY seq",
        )
        .and_then(|mut stmt| {
            stmt.query_map(key, |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .ctx("cannot read the invocation's logs")?
        .into_iter()
        .map(|(timestamp, level, message)| {
            let level = LogLevel::parse(&level).ok_or_else(|| {
                StoreError(format!("corrupt log level {level:?} in the database"))
            })?;
            Ok(LogLine {
                timestamp,
                level,
                message,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    drop(tx);
    row.into_record(env, request_id, logs).map(Some)
}

const SUMMARY_COLUMNS: &str =
    "env, request_id, function, status, started_at, duration_us, error_code, trigger";

fn read_children(conn: &Connection, caller: &InvocationRef) -> Result<Vec<InvocationSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM invocations \
         WHERE caller_request_id = ?1 AND caller_env = ?2 ORDER BY started_at LIMIT ?3"
    );
    let what = "cannot list an invocation's calls";
    let mut stmt = conn.prepare_cached(&sql).ctx(what)?;
    let limit = crate::CHILDREN_LISTED as i64;
    let rows = stmt
        .query_map(
            params![caller.request_id.as_str(), caller.env.as_str(), limit],
            SummaryRow::read,
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx(what)?;
    rows.into_iter().map(SummaryRow::into_summary).collect()
}

/// An env's invocations that `query` matches, newest first. The filters are
/// checked on the rows the `started_at` index yields, so a rare status may
/// scan far back; the limit bounds what is returned, not what is read.
fn read_invocations(
    conn: &Connection,
    env: &EnvId,
    query: &InvocationQuery,
) -> Result<Vec<InvocationSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM invocations \
         WHERE env = ?1 AND (?2 IS NULL OR function = ?2) AND (?3 IS NULL OR status = ?3) \
         AND (?4 IS NULL OR trigger = ?4) \
         AND (?5 IS NULL OR started_at < ?5 OR (started_at = ?5 AND request_id < ?6)) \
         ORDER BY started_at DESC, request_id DESC LIMIT ?7"
    );
    let what = "cannot list invocations";
    let mut stmt = conn.prepare_cached(&sql).ctx(what)?;
    let (before_at, before_id) = match &query.before {
        Some((at, id)) => (Some(*at), Some(id.as_str())),
        None => (None, None),
    };
    let rows = stmt
        .query_map(
            params![
                env.as_str(),
                query.function.as_ref().map(|f| f.as_str()),
                query.status.map(InvocationStatus::as_str),
                query.trigger.as_deref(),
                before_at,
                before_id,
                i64::try_from(query.limit).unwrap_or(i64::MAX),
            ],
            SummaryRow::read,
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .ctx(what)?;
    rows.into_iter().map(SummaryRow::into_summary).collect()
}

/// A summary's columns ([`SUMMARY_COLUMNS`]) as read.
struct SummaryRow {
    env: String,
    request_id: String,
    function: String,
    status: String,
    started_at: i64,
    duration_us: i64,
    error_code: Option<String>,
    trigger: String,
}

impl SummaryRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            env: row.get(0)?,
            request_id: row.get(1)?,
            function: row.get(2)?,
            status: row.get(3)?,
            started_at: row.get(4)?,
            duration_us: row.get(5)?,
            error_code: row.get(6)?,
            trigger: row.get(7)?,
        })
    }

    fn into_summary(self) -> Result<InvocationSummary> {
        Ok(InvocationSummary {
            env: EnvId::parse(self.env).map_err(corrupt("env"))?,
            request_id: RequestId::parse(self.request_id).map_err(corrupt("request id"))?,
            function: FunctionName::parse(self.function).map_err(corrupt("function name"))?,
            status: InvocationStatus::parse(&self.status).ok_or_else(|| {
                StoreError(format!("corrupt status {:?} in the database", self.status))
            })?,
            started_at: self.started_at,
            duration_us: u64::try_from(self.duration_us).unwrap_or(0),
            error_code: self
                .error_code
                .and_then(|code| ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)),
            trigger: self.trigger,
        })
    }
}

struct RecordRow {
    function: String,
    version: String,
    status: String,
    started_at: i64,
    duration_us: i64,
    init_us: Option<i64>,
    cold: bool,
    trigger: String,
    result: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    error_stack: Option<String>,
    logs_truncated: bool,
    error_type: Option<String>,
    caller: (Option<String>, Option<String>),
    root: (Option<String>, Option<String>),
    http: (Option<u16>, Option<i64>),
    attempts: Option<String>,
    next_attempt_at: Option<i64>,
}

impl RecordRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            function: row.get(0)?,
            version: row.get(1)?,
            status: row.get(2)?,
            started_at: row.get(3)?,
            duration_us: row.get(4)?,
            init_us: row.get(5)?,
            cold: row.get(6)?,
            trigger: row.get(7)?,
            result: row.get(8)?,
            error_code: row.get(9)?,
            error_message: row.get(10)?,
            error_stack: row.get(11)?,
            logs_truncated: row.get(12)?,
            error_type: row.get(13)?,
            caller: (row.get(14)?, row.get(15)?),
            root: (row.get(16)?, row.get(17)?),
            http: (row.get(18)?, row.get(19)?),
            attempts: row.get(20)?,
            next_attempt_at: row.get(21)?,
        })
    }

    fn into_record(
        self,
        env: EnvId,
        request_id: RequestId,
        logs: Vec<LogLine>,
    ) -> Result<InvocationRecord> {
        let status = InvocationStatus::parse(&self.status).ok_or_else(|| {
            StoreError(format!("corrupt status {:?} in the database", self.status))
        })?;
        let error = match self.error_code {
            Some(code) => Some(FunctionError {
                code: ErrorCode::ALL
                    .into_iter()
                    .find(|c| c.as_str() == code)
                    .ok_or_else(|| {
                        StoreError(format!("corrupt error code {code:?} in the database"))
                    })?,
                error_type: self.error_type,
                message: self.error_message.unwrap_or_default(),
                stack: self.error_stack,
            }),
            None => None,
        };
        Ok(InvocationRecord {
            request_id,
            env,
            function: FunctionName::parse(self.function).map_err(corrupt("function name"))?,
            version: VersionId::parse(self.version).map_err(corrupt("version"))?,
            status,
            started_at: self.started_at,
            duration_us: u64::try_from(self.duration_us).unwrap_or(0),
            init_us: self.init_us.map(|us| u64::try_from(us).unwrap_or(0)),
            cold: self.cold,
            trigger: self.trigger,
            result: self.result,
            error,
            logs,
            logs_truncated: self.logs_truncated,
            caller: invocation_ref(self.caller)?,
            root: invocation_ref(self.root)?,
            http: match self.http {
                (Some(status), Some(bytes)) => Some(HttpResponseSummary {
                    status,
                    bytes: u64::try_from(bytes).unwrap_or(0),
                }),
                _ => None,
            },
            attempts: attempts_of(self.attempts.as_deref())?,
            next_attempt_at: self.next_attempt_at,
        })
    }
}

/// Attempts as their column keeps them: JSON, or nothing for none.
pub(super) fn attempts_json(attempts: &[Attempt]) -> Option<String> {
    // Serializing plain data cannot fail; an empty list is kept as NULL.
    (!attempts.is_empty()).then(|| serde_json::to_string(attempts).unwrap_or_default())
}

/// The attempts a column keeps.
pub(super) fn attempts_of(column: Option<&str>) -> Result<Vec<Attempt>> {
    match column {
        None | Some("") => Ok(Vec::new()),
        Some(json) => serde_json::from_str(json)
            .map_err(|error| StoreError(format!("corrupt attempts in the database: {error}"))),
    }
}

/// A chain link's columns (env, request ID) as the link, when set.
fn invocation_ref(columns: (Option<String>, Option<String>)) -> Result<Option<InvocationRef>> {
    match columns {
        (Some(env), Some(request_id)) => Ok(Some(InvocationRef {
            env: EnvId::parse(env).map_err(corrupt("env"))?,
            request_id: RequestId::parse(request_id).map_err(corrupt("request id"))?,
        })),
        _ => Ok(None),
    }
}
