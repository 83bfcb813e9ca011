//! The schema and its migrations, numbered by `PRAGMA user_version`.
//!
//! Migration `n` (1-based) takes a database from version `n - 1` to `n`. Each
//! runs in one transaction together with the `user_version` bump, so a crash
//! mid-migration leaves the previous version intact. Add new migrations at the
//! end; never edit a released one.

use std::path::Path;
use std::time::Duration;

use cloudlet_core::EnvId;
use rusqlite::{Connection, TransactionBehavior};

use super::DbContext;
use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    // 1: envs, versions, functions, invocation records and their logs.
    r#"
    CREATE TABLE envs (
        name       TEXT    NOT NULL PRIMARY KEY,
        key_hash   TEXT,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE versions (
        id           TEXT    NOT NULL PRIMARY KEY,
        config_json  TEXT    NOT NULL,
        package_size INTEGER NOT NULL,
        created_at   INTEGER NOT NULL
    );

    CREATE TABLE functions (
        env        TEXT    NOT NULL REFERENCES envs (name),
        name       TEXT    NOT NULL,
        version    TEXT    NOT NULL REFERENCES versions (id),
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (env, name)
    );
    -- "is this version still used?" when a function moves off it
    CREATE INDEX functions_by_version ON functions (version);

    -- Records reference nothing on purpose: they outlive the functions they
    -- describe, and a foreign-key check per insert would cost throughput.
    CREATE TABLE invocations (
        env            TEXT    NOT NULL,
        request_id     TEXT    NOT NULL,
        function       TEXT    NOT NULL,
        version        TEXT    NOT NULL,
        status         TEXT    NOT NULL,
        started_at     INTEGER NOT NULL,
        duration_us    INTEGER NOT NULL,
        init_us        INTEGER,
        cold           INTEGER NOT NULL,
        trigger        TEXT    NOT NULL,
        result         TEXT,
        error_code     TEXT,
        error_message  TEXT,
        error_stack    TEXT,
        logs_truncated INTEGER NOT NULL,
        PRIMARY KEY (env, request_id)
    ) WITHOUT ROWID;
    -- pruning deletes oldest first
    CREATE INDEX invocations_by_started_at ON invocations (started_at);

    -- Only records that printed something have rows here.
    CREATE TABLE invocation_logs (
        env        TEXT    NOT NULL,
        request_id TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        ts         INTEGER NOT NULL,
        level      TEXT    NOT NULL,
        message    TEXT    NOT NULL,
        PRIMARY KEY (env, request_id, seq)
    ) WITHOUT ROWID;
    "#,
    // 2: the versions each function has had (X-Qualifier runs one of them).
    r#"
    CREATE TABLE function_versions (
        env         TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        version     TEXT    NOT NULL REFERENCES versions (id),
        -- counts the function's deploys, so the newest sorts first even
        -- when two land within the same millisecond
        deploy_seq  INTEGER NOT NULL,
        PRIMARY KEY (env, name, version)
    ) WITHOUT ROWID;
    -- "is this version still used?" when a function's history moves on
    CREATE INDEX function_versions_by_version ON function_versions (version);
    INSERT INTO function_versions (env, name, version, deploy_seq)
        SELECT env, name, version, 1 FROM functions;
    "#,
    // 3: a function error's name (errorType), kept apart from its message.
    r#"
    ALTER TABLE invocations ADD COLUMN error_type TEXT;
    "#,
    // 4: call chains: the invocation that made each one, and its chain's root.
    r#"
    ALTER TABLE invocations ADD COLUMN caller_env TEXT;
    ALTER TABLE invocations ADD COLUMN caller_request_id TEXT;
    ALTER TABLE invocations ADD COLUMN root_env TEXT;
    ALTER TABLE invocations ADD COLUMN root_request_id TEXT;
    -- "what did this invocation call?"; partial, so that the invocations no
    -- function made (most of them) cost the index nothing
    CREATE INDEX invocations_by_caller ON invocations (caller_request_id, caller_env)
        WHERE caller_request_id IS NOT NULL;
    "#,
    // 5: the response of an HTTP function's request: its status and size.
    r#"
    ALTER TABLE invocations ADD COLUMN http_status INTEGER;
    ALTER TABLE invocations ADD COLUMN http_bytes INTEGER;
    "#,
    // 6: each env's CORS settings, as JSON.
    r#"
    ALTER TABLE envs ADD COLUMN cors TEXT;
    "#,
    // 7: the HTTP access service's routes; a host and a prefix lead to one
    // function, whatever its env ('*' is any host).
    r#"
    CREATE TABLE routes (
        host        TEXT    NOT NULL,
        prefix      TEXT    NOT NULL,
        env         TEXT    NOT NULL,
        function    TEXT    NOT NULL,
        keep_prefix INTEGER NOT NULL,
        auth        TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (host, prefix)
    ) WITHOUT ROWID;
    "#,
    // 8: each env's publishable key (invoke and upload only), for web pages.
    r#"
    ALTER TABLE envs ADD COLUMN publishable_key_hash TEXT;
    "#,
    // 9: asynchronous invocations accepted and not yet finished, and the dead
    // letters (`dead` says why).
    r#"
    CREATE TABLE invocation_queue (
        env         TEXT    NOT NULL,
        request_id  TEXT    NOT NULL,
        function    TEXT    NOT NULL,
        version     TEXT    NOT NULL,
        event       BLOB    NOT NULL,
        trigger     TEXT    NOT NULL,
        enqueued_at INTEGER NOT NULL,
        due_at      INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        lease_token INTEGER,
        lease_until INTEGER,
        last_error  TEXT,
        dead        TEXT,
        PRIMARY KEY (env, request_id)
    );
    -- the next invocations due; dead letters take no room in it
    CREATE INDEX invocation_queue_due ON invocation_queue (due_at) WHERE dead IS NULL;
    -- an env's dead letters, oldest first
    CREATE INDEX invocation_queue_dead ON invocation_queue (env, enqueued_at)
        WHERE dead IS NOT NULL;
    "#,
    // 10: an asynchronous invocation's attempts (JSON) and when the next is
    // due, on its record and, until it finishes, on its queue entry; what
    // its event is (JSON, text or bytes) and who it acts for.
    r#"
    ALTER TABLE invocations ADD COLUMN attempts TEXT;
    ALTER TABLE invocations ADD COLUMN next_attempt_at INTEGER;
    ALTER TABLE invocation_queue ADD COLUMN history TEXT;
    ALTER TABLE invocation_queue ADD COLUMN event_kind TEXT NOT NULL DEFAULT 'json';
    ALTER TABLE invocation_queue ADD COLUMN origin TEXT;
    "#,
    // 11: a function's own asynchronous settings (JSON), set by the API.
    r#"
    ALTER TABLE functions ADD COLUMN async_config TEXT;
    "#,
    // 12: when each timer trigger last fired, so that a restart neither
    // skips nor repeats a firing.
    r#"
    CREATE TABLE timer_firings (
        env      TEXT    NOT NULL,
        function TEXT    NOT NULL,
        trigger  TEXT    NOT NULL,
        fired_at INTEGER NOT NULL,
        PRIMARY KEY (env, function, trigger)
    ) WITHOUT ROWID;
    "#,
    // 13: a queued invocation's last error is its history's last attempt's;
    // the invocations that may expire are found without reading the queue.
    r#"
    ALTER TABLE invocation_queue DROP COLUMN last_error;
    CREATE INDEX invocation_queue_expiry ON invocation_queue (expires_at) WHERE dead IS NULL;
    "#,
];

/// The schema version this build reads and writes.
pub(super) const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Opens a connection with the settings every connection of the store uses.
pub(super) fn connect(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let conn = Connection::open(path).ctx("cannot open the database")?;
    conn.busy_timeout(busy_timeout)
        .ctx("cannot set the busy timeout")?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .ctx("cannot switch the database to WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError(format!(
            "the database refused WAL mode (journal_mode is {mode})"
        )));
    }
    // Pages freed by pruning go back to the file system on request
    // (`PRAGMA incremental_vacuum`). Takes effect when the first table is made;
    // `convert_to_incremental_vacuum` converts databases made without it.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .ctx("cannot set auto_vacuum")?;
    // After a checkpoint the WAL file is cut back to this size, so that one
    // burst of records does not keep its disk space for good.
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .ctx("cannot set journal_size_limit")?;
    // With WAL, NORMAL only gives up durability of the last commits on power
    // loss, never consistency; FULL would sync on every record batch.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .ctx("cannot set synchronous")?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .ctx("cannot enable foreign keys")?;
    Ok(conn)
}

/// A connection for the invocation queue: as [`connect`]'s, but every
/// commit is synced to disk before it returns (`synchronous = FULL`), since
/// an accepted invocation must survive a power loss.
pub(super) fn connect_durable(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let conn = connect(path, busy_timeout)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("cannot set synchronous")?;
    // Every statement of the queue's, each prepared once.
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Bytes the WAL file keeps after a checkpoint.
const JOURNAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// A database made before records were pruned by size has `auto_vacuum =
/// NONE`, which only a full `VACUUM` can change: done once, at open.
pub(super) fn convert_to_incremental_vacuum(conn: &Connection) -> Result<()> {
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
        .ctx("cannot read auto_vacuum")?;
    const INCREMENTAL: i64 = 2;
    if mode == INCREMENTAL {
        return Ok(());
    }
    tracing::info!("converting the database to give freed space back (VACUUM, once)");
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
        .ctx("cannot convert the database to incremental vacuum")
}

/// Brings the database to [`CURRENT`], refusing one written by a newer build.
pub(super) fn migrate(conn: &mut Connection, now: i64) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("cannot start the migration")?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .ctx("cannot read the schema version")?;
    if version > CURRENT {
        return Err(StoreError(format!(
            "the database has schema version {version}, newer than this build's {CURRENT}; \
             use a newer cloudlet"
        )));
    }
    let start = usize::try_from(version)
        .map_err(|_| StoreError(format!("invalid schema version {version}")))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.execute_batch(sql)
            .ctx(&format!("schema migration {} failed", index + 1))?;
    }
    tx.pragma_update(None, "user_version", CURRENT)
        .ctx("cannot set the schema version")?;
    // The default env exists in every store, so paths without an env work on
    // a fresh data dir.
    tx.execute(
        "INSERT INTO envs (name, key_hash, created_at) VALUES (?1, NULL, ?2)
         ON CONFLICT (name) DO NOTHING",
        rusqlite::params![EnvId::default_env().as_str(), now],
    )
    .ctx("cannot create the default env")?;
    tx.commit().ctx("cannot commit the migration")
}
