//! The SQLite backend: the shared conformance suite, plus what only this
//! backend has (files on disk, restarts, the record queue, pruning).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use cloudlet_core::{now_unix_ms, EnvId, InvocationRecord, LogLevel, LogLine, VersionId};
use cloudlet_store::conformance::{self, function_name, new_version, sample_record, unique_env};
use cloudlet_store::sqlite::SqliteOptions;
use cloudlet_store::{FunctionStore, RecordStore, SqliteStore};

fn open(dir: &Path, options: SqliteOptions) -> SqliteStore {
    SqliteStore::open(dir, options).unwrap()
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("cloudlet.db")).unwrap()
}

fn count(dir: &Path, sql: &str) -> i64 {
    db(dir).query_row(sql, [], |row| row.get(0)).unwrap()
}

fn package_file(dir: &Path, version: &VersionId) -> std::path::PathBuf {
    dir.join("packages").join(format!("{version}.pkg"))
}

/// Undoes migrations 13 (the queue's `last_error` dropped) to 5 (HTTP responses), for
/// tests that recreate an older schema.
const BEFORE_HTTP_RESPONSES: &str = "DROP TABLE timer_firings;
     ALTER TABLE functions DROP COLUMN async_config;
     ALTER TABLE invocations DROP COLUMN attempts;
     ALTER TABLE invocations DROP COLUMN next_attempt_at;
     DROP TABLE invocation_queue;
     ALTER TABLE envs DROP COLUMN publishable_key_hash;
     DROP TABLE routes;
     ALTER TABLE envs DROP COLUMN cors;
     ALTER TABLE invocations DROP COLUMN http_status;
     ALTER TABLE invocations DROP COLUMN http_bytes;";

/// Undoes migrations 13 to 4 (call chains).
const BEFORE_CALL_CHAINS: &str = "DROP TABLE timer_firings;
     ALTER TABLE functions DROP COLUMN async_config;
     ALTER TABLE invocations DROP COLUMN attempts;
     ALTER TABLE invocations DROP COLUMN next_attempt_at;
     DROP TABLE invocation_queue;
     ALTER TABLE envs DROP COLUMN publishable_key_hash;
     DROP TABLE routes;
     ALTER TABLE envs DROP COLUMN cors;
     ALTER TABLE invocations DROP COLUMN http_status;
     ALTER TABLE invocations DROP COLUMN http_bytes;
     DROP INDEX invocations_by_caller;
     ALTER TABLE invocations DROP COLUMN caller_env;
     ALTER TABLE invocations DROP COLUMN caller_request_id;
     ALTER TABLE invocations DROP COLUMN root_env;
     ALTER TABLE invocations DROP COLUMN root_request_id;";

fn version_of(tag: &str) -> VersionId {
    conformance::new_version(&EnvId::default_env(), "f", tag.as_bytes()).version
}

/// A store that prunes records older than an hour, looking every 50 ms.
fn pruning_after_an_hour() -> SqliteOptions {
    SqliteOptions {
        record_retention: Some(Duration::from_secs(3600)),
        prune_interval: Duration::from_millis(50),
        ..SqliteOptions::default()
    }
}

/// Polls `check` until it holds or a generous deadline passes; for work the
/// writer thread does on its own schedule.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_queue_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SqliteOptions::default());
    cloudlet_store::invocation_queue::conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SqliteOptions::default());
    conformance::run_all(&store).await;
    assert_eq!(store.dropped(), 0);
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("restart");
    let new = new_version(&env, "keep", b"restart archive");
    let mut record = sample_record(&env, "keep", &new.version);
    record.logs = vec![LogLine {
        timestamp: 42,
        level: LogLevel::Warn,
        message: "kept across restarts".into(),
    }];

    let (deployed, key) = {
        let store = open(dir.path(), SqliteOptions::default());
        let deployed = store.deploy(new.clone()).await.unwrap();
        let key = store.issue_env_key(&env).await.unwrap();
        store.submit(record.clone());
        // No flush: closing must write what is still queued.
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap()
            .unwrap();
        (deployed, key)
    };

    let store = open(dir.path(), SqliteOptions::default());
    assert_eq!(
        store.function(&env, &new.name).await.unwrap(),
        Some(deployed.clone())
    );
    assert_eq!(store.functions(&env).await.unwrap(), Some(vec![deployed]));
    assert_eq!(
        store.package(&new.version).await.unwrap(),
        Some(new.archive.clone())
    );
    assert!(store.check_env_key(&env, &key).await.unwrap());
    assert_eq!(
        store.record(&env, &record.request_id).await.unwrap(),
        Some(record)
    );
    // The suite also holds on a store that already has data.
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_writes_queued_records() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("drop");
    let record = sample_record(&env, "f", &version_of("drop"));
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.pause_record_writer(true);
        store.submit(record.clone());
    }
    let store = open(dir.path(), SqliteOptions::default());
    assert_eq!(
        store.record(&env, &record.request_id).await.unwrap(),
        Some(record)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_the_oldest_records_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        record_queue_max: 4,
        ..SqliteOptions::default()
    };
    let store = open(dir.path(), options);
    store.pause_record_writer(true);

    let env = unique_env("full");
    let version = version_of("full");
    let records: Vec<InvocationRecord> = (0..10)
        .map(|_| sample_record(&env, "f", &version))
        .collect();
    for record in &records {
        store.submit(record.clone());
    }
    assert_eq!(store.dropped(), 6);
    for record in &records[..6] {
        assert_eq!(store.record(&env, &record.request_id).await.unwrap(), None);
    }
    // Still queued (the writer is paused), yet visible.
    for record in &records[6..] {
        assert_eq!(
            store
                .record(&env, &record.request_id)
                .await
                .unwrap()
                .as_ref(),
            Some(record)
        );
    }
    assert_eq!(count(dir.path(), "SELECT count(*) FROM invocations"), 0);

    store.pause_record_writer(false);
    store.flush().await.unwrap();
    assert_eq!(count(dir.path(), "SELECT count(*) FROM invocations"), 4);
    for record in &records[6..] {
        assert_eq!(
            store
                .record(&env, &record.request_id)
                .await
                .unwrap()
                .as_ref(),
            Some(record)
        );
    }
    assert_eq!(store.dropped(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_one_invocation_in_one_batch_land_as_the_newest() {
    use cloudlet_core::InvocationStatus;

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SqliteOptions::default());
    let env = unique_env("superseded");
    let mut record = sample_record(&env, "f", &version_of("superseded"));
    store.pause_record_writer(true);
    for status in [InvocationStatus::Enqueued, InvocationStatus::Running] {
        let mut earlier = record.clone();
        earlier.status = status;
        earlier.logs.clear();
        store.submit(earlier);
    }
    let other = sample_record(&env, "g", &version_of("superseded"));
    store.submit(other.clone());
    record.status = InvocationStatus::Succeeded;
    store.submit(record.clone());
    store.pause_record_writer(false);
    store.flush().await.unwrap();

    assert_eq!(count(dir.path(), "SELECT count(*) FROM invocations"), 2);
    let written = store.record(&env, &record.request_id).await.unwrap();
    assert_eq!(written.as_ref(), Some(&record));
    let written = store.record(&env, &other.request_id).await.unwrap();
    assert_eq!(written.as_ref(), Some(&other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_earlier_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SqliteOptions::default());
    let env = unique_env("flush");
    store.pause_record_writer(true);
    store.submit(sample_record(&env, "f", &version_of("flush")));

    let pending = tokio::time::timeout(Duration::from_millis(200), store.flush()).await;
    assert!(
        pending.is_err(),
        "flush returned while the record was unwritten"
    );
    assert_eq!(count(dir.path(), "SELECT count(*) FROM invocations"), 0);

    store.pause_record_writer(false);
    store.flush().await.unwrap();
    assert_eq!(count(dir.path(), "SELECT count(*) FROM invocations"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_records_from_many_tasks_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path(), SqliteOptions::default()));
    let env = unique_env("bulk");
    let version = version_of("bulk");
    let mut tasks = Vec::new();
    for task in 0..4 {
        let (store, env, version) = (store.clone(), env.clone(), version.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..5_000 {
                let mut record = sample_record(&env, "f", &version);
                if i % 2 == 0 {
                    record.logs = vec![
                        LogLine {
                            timestamp: 1,
                            level: LogLevel::Info,
                            message: format!("task {task} record {i}"),
                        },
                        LogLine {
                            timestamp: 2,
                            level: LogLevel::Error,
                            message: "second line".into(),
                        },
                    ];
                }
                store.submit(record);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    store.flush().await.unwrap();
    assert_eq!(store.dropped(), 0);
    assert_eq!(
        count(dir.path(), "SELECT count(*) FROM invocations"),
        20_000
    );
    assert_eq!(
        count(dir.path(), "SELECT count(*) FROM invocation_logs"),
        20_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_old_records_leaves_queued_running_and_dead_lettered_work() {
    use cloudlet_store::invocation_queue::conformance::{failed_attempt, new_queued};
    use cloudlet_store::invocation_queue::InvocationQueue;

    let dir = tempfile::tempdir().unwrap();
    let options = pruning_after_an_hour();
    let store = open(dir.path(), options);
    let env = unique_env("prune-queue");
    let long_ago = now_unix_ms() - 3 * 3600 * 1000;
    for _ in 0..3 {
        let mut old = new_queued(&env, long_ago, "{}");
        old.enqueued_at = long_ago;
        old.expires_at = i64::MAX;
        store.enqueue(old).await.unwrap();
    }
    let leased = store.lease(now_unix_ms(), 2, 60_000, &[]).await.unwrap();
    let dead = &leased[0];
    let token = dead.lease.unwrap().token;
    store
        .dead_letter(
            &dead.invocation.key,
            token,
            "gave up",
            &[failed_attempt(1, "x")],
        )
        .await
        .unwrap();
    let mut record = sample_record(&env, "f", &version_of("prune-queue"));
    record.started_at = long_ago;
    store.submit(record);
    store.flush().await.unwrap();

    let path = dir.path().to_owned();
    eventually("the old record pruned", || {
        count(&path, "SELECT count(*) FROM invocations") == 0
    })
    .await;
    assert_eq!(
        count(&path, "SELECT count(*) FROM invocation_queue"),
        3,
        "one waiting, one running, one dead letter: all kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_records_are_pruned_with_their_logs() {
    let dir = tempfile::tempdir().unwrap();
    let options = pruning_after_an_hour();
    let store = open(dir.path(), options);
    let env = unique_env("prune-age");
    let version = version_of("prune-age");
    let mut old = Vec::new();
    for _ in 0..3 {
        let mut record = sample_record(&env, "f", &version);
        record.started_at = now_unix_ms() - 2 * 3600 * 1000;
        record.logs = vec![LogLine {
            timestamp: record.started_at,
            level: LogLevel::Info,
            message: "old".into(),
        }];
        store.submit(record.clone());
        old.push(record);
    }
    let fresh = sample_record(&env, "f", &version);
    store.submit(fresh.clone());
    store.flush().await.unwrap();

    let path = dir.path().to_owned();
    eventually("old records pruned", || {
        count(&path, "SELECT count(*) FROM invocations") == 1
    })
    .await;
    for record in &old {
        assert_eq!(store.record(&env, &record.request_id).await.unwrap(), None);
    }
    assert_eq!(
        store.record(&env, &fresh.request_id).await.unwrap(),
        Some(fresh)
    );
    assert_eq!(count(dir.path(), "SELECT count(*) FROM invocation_logs"), 0);
}

/// The bytes the database and its WAL take on disk.
fn stored_bytes(dir: &Path) -> u64 {
    ["cloudlet.db", "cloudlet.db-wal"]
        .iter()
        .map(|file| std::fs::metadata(dir.join(file)).map_or(0, |m| m.len()))
        .sum()
}

fn record_with_logs(
    env: &EnvId,
    version: &VersionId,
    started_at: i64,
    bytes: usize,
) -> InvocationRecord {
    let mut record = sample_record(env, "f", version);
    record.started_at = started_at;
    record.logs = vec![LogLine {
        timestamp: started_at,
        level: LogLevel::Info,
        message: "x".repeat(bytes),
    }];
    record
}

/// A function that logs 4 KiB per call, thousands of times: the database and
/// its WAL stay within their size limit, and the newest records are the ones kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_keeps_the_records_within_their_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let max = 4 * 1024 * 1024;
    let options = SqliteOptions {
        record_max_bytes: Some(max),
        record_batch_max_bytes: 128 * 1024,
        ..SqliteOptions::default()
    };
    let store = open(dir.path(), options);
    let env = unique_env("flood");
    let version = version_of("flood");
    let start = now_unix_ms();
    let records: Vec<InvocationRecord> = (0..4000)
        .map(|i| record_with_logs(&env, &version, start + i, 4096))
        .collect();
    let mut largest = 0;
    for chunk in records.chunks(200) {
        for record in chunk {
            store.submit(record.clone());
        }
        store.flush().await.unwrap();
        largest = largest.max(stored_bytes(dir.path()));
    }
    let slack = max / 20 + 2 * 128 * 1024 * 2;
    assert!(
        largest <= max + slack,
        "the store reached {largest} bytes, over its limit of {max} by more than {slack}"
    );
    let newest = records.last().unwrap();
    assert!(store
        .record(&env, &newest.request_id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .record(&env, &records[0].request_id)
        .await
        .unwrap()
        .is_none());
    let usage = store.usage().await.unwrap();
    assert!(usage.records > 100 && usage.records < 4000, "{usage:?}");
    assert_eq!(usage.max_bytes, Some(max));
    assert!(usage.bytes <= max + slack, "{usage:?}");
    assert_eq!(store.dropped(), 0);
}

/// Pages that pruning frees are given back to the file system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_space_goes_back_to_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("vacuum");
    let version = version_of("vacuum");
    let two_hours_ago = now_unix_ms() - 2 * 3600 * 1000;
    {
        let keep_all = SqliteOptions {
            record_retention: None,
            ..SqliteOptions::default()
        };
        let store = open(dir.path(), keep_all);
        for i in 0..2000 {
            store.submit(record_with_logs(&env, &version, two_hours_ago + i, 4096));
        }
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap()
            .unwrap();
    }
    let filled = stored_bytes(dir.path());
    assert!(filled > 8 * 1024 * 1024, "{filled}");

    let pruning = pruning_after_an_hour();
    let _store = open(dir.path(), pruning);
    let path = dir.path().to_owned();
    eventually("old records pruned and their space given back", || {
        count(&path, "SELECT count(*) FROM invocations") == 0
            && std::fs::metadata(path.join("cloudlet.db")).unwrap().len() < 1024 * 1024
    })
    .await;
}

/// A data directory made before records were pruned by size is converted
/// once to give freed pages back (`auto_vacuum = INCREMENTAL`), and keeps its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_database_is_converted_to_give_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("convert");
    let new = new_version(&env, "kept", b"converted archive");
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.deploy(new.clone()).await.unwrap();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap()
            .unwrap();
    }
    // As an older build left it.
    db(dir.path())
        .execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
        .unwrap();
    assert_eq!(count(dir.path(), "PRAGMA auto_vacuum"), 0);

    let store = open(dir.path(), SqliteOptions::default());
    assert_eq!(count(dir.path(), "PRAGMA auto_vacuum"), 2);
    let kept = store.function(&env, &function_name("kept")).await.unwrap();
    assert_eq!(kept.unwrap().current.version, new.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_files_go_when_no_function_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SqliteOptions::default());
    let env = unique_env("gc");
    let v1 = new_version(&env, "a", b"gc version one");
    let v2 = new_version(&env, "a", b"gc version two");
    let shared = new_version(&env, "b", b"gc version one");

    store.deploy(v1.clone()).await.unwrap();
    store.deploy(shared.clone()).await.unwrap();
    assert!(package_file(dir.path(), &v1.version).exists());

    // a moves to v2 and keeps v1 in its history; b still uses v1.
    store.deploy(v2.clone()).await.unwrap();
    assert!(package_file(dir.path(), &v1.version).exists());
    assert!(package_file(dir.path(), &v2.version).exists());

    // b is gone, but v1 can still be run as a past version of a.
    assert!(store.remove_function(&env, &shared.name).await.unwrap());
    assert!(package_file(dir.path(), &v1.version).exists());

    // With a gone, nothing uses either version.
    assert!(store.remove_function(&env, &v2.name).await.unwrap());
    assert!(!package_file(dir.path(), &v1.version).exists());
    assert!(!package_file(dir.path(), &v2.version).exists());
    assert_eq!(store.package(&v1.version).await.unwrap(), None);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM versions"), 0);

    // A version deployed again after its removal is stored again.
    store.deploy(v1.clone()).await.unwrap();
    assert_eq!(store.package(&v1.version).await.unwrap(), Some(v1.archive));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_package_file_is_an_error_not_an_absence() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SqliteOptions::default());
    let env = unique_env("missing");
    let new = new_version(&env, "f", b"soon missing");
    store.deploy(new.clone()).await.unwrap();
    std::fs::remove_file(package_file(dir.path(), &new.version)).unwrap();
    let err = store.package(&new.version).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sweeps_stray_package_files() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("sweep");
    let kept = new_version(&env, "f", b"kept package");
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.deploy(kept.clone()).await.unwrap();
    }
    let packages = dir.path().join("packages");
    let temp = packages.join(format!(".{}.0000000000000001.tmp", kept.version));
    let orphan_version = version_of("orphan");
    let orphan = package_file(dir.path(), &orphan_version);
    let unrelated = packages.join("README");
    std::fs::write(&temp, b"half a package").unwrap();
    std::fs::write(&orphan, b"no row names me").unwrap();
    std::fs::write(&unrelated, b"not ours").unwrap();

    let store = open(dir.path(), SqliteOptions::default());
    assert!(!temp.exists());
    assert!(!orphan.exists());
    assert!(unrelated.exists(), "only files the store names are touched");
    assert_eq!(
        store.package(&kept.version).await.unwrap(),
        Some(kept.archive)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_version_is_kept_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), SqliteOptions::default()));
    let version: i64 = db(dir.path())
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 13, "the newest schema");
    let mode: String = db(dir.path())
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // Opening again migrates nothing and loses nothing.
    drop(open(dir.path(), SqliteOptions::default()));
    db(dir.path())
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = SqliteStore::open(dir.path(), SqliteOptions::default())
        .err()
        .expect("a newer schema is refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_from_schema_12_keeps_its_history_and_the_queue_gains_the_expiry_index() {
    use cloudlet_store::invocation_queue::conformance::{failed_attempt, new_queued};
    use cloudlet_store::invocation_queue::InvocationQueue;

    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("premigration12");
    let mut queued = new_queued(&env, now_unix_ms(), "{}");
    queued.expires_at = i64::MAX;
    let key = queued.key.clone();
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.enqueue(queued).await.unwrap();
        let leased = store.lease(now_unix_ms(), 1, 60_000, &[]).await.unwrap();
        let token = leased[0].lease.unwrap().token;
        let history = [failed_attempt(1, "boom")];
        store
            .dead_letter(&key, token, "gave up", &history)
            .await
            .unwrap();
    }
    // What schema 12 looked like: the last error kept in a column of its
    // own, no index of expiry.
    db(dir.path())
        .execute_batch(
            "DROP INDEX invocation_queue_expiry;
             ALTER TABLE invocation_queue ADD COLUMN last_error TEXT;
             UPDATE invocation_queue SET last_error = 'boom';
             PRAGMA user_version = 12;",
        )
        .unwrap();

    let store = open(dir.path(), SqliteOptions::default());
    let kept = store.queued(&key).await.unwrap().expect("the dead letter");
    assert_eq!(kept.dead.as_deref(), Some("gave up"));
    assert_eq!(kept.last_error().as_deref(), Some("boom"));
    let indexed = count(
        dir.path(),
        "SELECT count(*) FROM sqlite_master WHERE name = 'invocation_queue_expiry'",
    );
    assert_eq!(indexed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_version_history_knows_each_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("premigration");
    let deployed = new_version(&env, "f", b"deployed before history");
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.deploy(deployed.clone()).await.unwrap();
    }
    // What schema 1 looked like: no history table, no error types.
    db(dir.path()).execute_batch(BEFORE_CALL_CHAINS).unwrap();
    db(dir.path())
        .execute_batch(
            "DROP TABLE function_versions;
             ALTER TABLE invocations DROP COLUMN error_type;
             PRAGMA user_version = 1;",
        )
        .unwrap();

    let store = open(dir.path(), SqliteOptions::default());
    let found = store
        .version(&env, &deployed.name, deployed.version.as_str())
        .await
        .unwrap();
    assert_eq!(found.map(|v| v.version), Some(deployed.version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_records_are_counted_as_dropped_and_metadata_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SqliteOptions::default());
    store.close().unwrap();
    store.close().unwrap();

    let env = unique_env("closed");
    let record = sample_record(&env, "f", &version_of("closed"));
    store.submit(record.clone());
    assert_eq!(store.dropped(), 1);
    store.flush().await.unwrap();
    assert_eq!(store.record(&env, &record.request_id).await.unwrap(), None);

    let info = store
        .deploy(new_version(&env, "f", b"after close"))
        .await
        .unwrap();
    assert_eq!(
        store.function(&env, &function_name("f")).await.unwrap(),
        Some(info)
    );
}

#[tokio::test]
async fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        SqliteOptions {
            record_batch_max: 0,
            ..SqliteOptions::default()
        },
        SqliteOptions {
            record_queue_max: 0,
            ..SqliteOptions::default()
        },
    ] {
        assert!(SqliteStore::open(dir.path(), options).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_before_error_types_are_kept_and_read_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("premigration3");
    let version = version_of("premigration3");
    let mut failed = sample_record(&env, "f", &version);
    failed.status = cloudlet_core::InvocationStatus::Failed;
    failed.result = None;
    failed.error = Some(cloudlet_core::FunctionError::new(
        cloudlet_core::ErrorCode::FunctionInvocationFailed,
        "boom",
    ));
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.submit(failed.clone());
        store.flush().await.unwrap();
    }
    // What schema 2 looked like: no error_type column.
    db(dir.path()).execute_batch(BEFORE_CALL_CHAINS).unwrap();
    db(dir.path())
        .execute_batch(
            "ALTER TABLE invocations DROP COLUMN error_type;
             PRAGMA user_version = 2;",
        )
        .unwrap();

    let store = open(dir.path(), SqliteOptions::default());
    let read = store.record(&env, &failed.request_id).await.unwrap();
    assert_eq!(read.map(|r| r.error), Some(failed.error));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_before_call_chains_are_kept_and_read_without_links() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("premigration4");
    let record = sample_record(&env, "f", &version_of("premigration4"));
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.submit(record.clone());
        store.flush().await.unwrap();
    }
    db(dir.path())
        .execute_batch(&format!("{BEFORE_CALL_CHAINS} PRAGMA user_version = 3;"))
        .unwrap();

    let store = open(dir.path(), SqliteOptions::default());
    let read = store.record(&env, &record.request_id).await.unwrap();
    assert_eq!(read.as_ref(), Some(&record));
    assert!(read.is_some_and(|r| r.caller.is_none() && r.root.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_before_http_responses_are_kept_and_read_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = unique_env("premigration5");
    let record = sample_record(&env, "f", &version_of("premigration5"));
    {
        let store = open(dir.path(), SqliteOptions::default());
        store.submit(record.clone());
        store.flush().await.unwrap();
    }
    db(dir.path())
        .execute_batch(&format!("{BEFORE_HTTP_RESPONSES} PRAGMA user_version = 4;"))
        .unwrap();

    let store = open(dir.path(), SqliteOptions::default());
    let read = store.record(&env, &record.request_id).await.unwrap();
    assert_eq!(read.as_ref(), Some(&record));
    assert!(read.is_some_and(|r| r.http.is_none()));
}
