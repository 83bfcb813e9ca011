//! The behaviour every backend must show, written once.
//!
//! Each check is an async function that takes a store, exercises one part of the
//! [`FunctionStore`] or [`RecordStore`] contract and panics on the first
//! difference; [`run_all`] runs them all. A backend's test opens a fresh store
//! and calls `run_all(&store)`. Checks create their own uniquely named envs, so
//! they can share one store, run in any order and run twice on the same store
//! (for instance before and after a restart).
//!
//! This is test-support code compiled into the library so other crates' tests
//! can use it; nothing on a server's path calls it.

// Test support: a failed expectation is meant to panic with a readable message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use cloudlet_core::{
    now_unix_ms, AsyncConfig, Attempt, CorsSettings, EnvId, ErrorCode, FunctionConfig,
    FunctionError, FunctionName, HostPattern, HttpResponseSummary, InvocationRecord, InvocationRef,
    InvocationStatus, InvocationSummary, LogLevel, LogLine, PathPrefix, RequestId, Route,
    RouteAuth, VersionId,
};
use sha2::{Digest, Sha256};

use crate::{FunctionStore, InvocationQuery, NewVersion, RecordStore, TimerFiring};

/// Runs every check against `store`.
pub async fn run_all<S: FunctionStore + RecordStore>(store: &S) {
    deploy_and_lookup(store).await;
    redeploy_of_the_same_version_is_idempotent(store).await;
    new_version_becomes_current(store).await;
    remove_function(store).await;
    past_versions_stay_runnable_by_name(store).await;
    unknown_env_and_default_env(store).await;
    envs_are_listed_by_name(store).await;
    package_round_trip(store).await;
    env_keys(store).await;
    record_visible_before_and_after_flush(store).await;
    record_fields_round_trip(store).await;
    records_are_scoped_to_their_env(store).await;
    reused_request_id_keeps_the_newest_record(store).await;
    unknown_record(store).await;
    usage_counts_the_records_written(store).await;
    a_chains_links_round_trip(store).await;
    children_are_listed_before_and_after_flush(store).await;
    an_http_responses_status_and_size_round_trip(store).await;
    an_envs_cors_settings_are_set_replaced_and_removed(store).await;
    routes_are_added_once_listed_and_removed(store).await;
    publishable_keys_are_apart_from_env_keys(store).await;
    a_functions_async_settings_stay_across_deploys_and_go_with_it(store).await;
    invocations_are_listed_newest_first_filtered_and_paged(store).await;
    a_timers_last_firing_is_kept_until_its_function_goes(store).await;
}

/// An env name no other check (or earlier run) uses.
pub fn unique_env(tag: &str) -> EnvId {
    let suffix: u32 = rand::random();
    EnvId::parse(format!("{tag}-{suffix:08x}")).expect("tag makes a valid env name")
}

pub fn function_name(name: &str) -> FunctionName {
    FunctionName::parse(name).expect("valid function name")
}

/// A deploy of `archive`, versioned by its SHA-256 as real deploys are by
/// content, with a config that differs from the default so its round trip
/// is visible.
pub fn new_version(env: &EnvId, name: &str, archive: &[u8]) -> NewVersion {
    let version = VersionId::parse(hex::encode(Sha256::digest(archive))).expect("sha-256 hex");
    let config = FunctionConfig {
        timeout: 17,
        memory_size: 128,
        env_variables: BTreeMap::from([
            ("ARCHIVE_LEN".to_owned(), archive.len().to_string()),
            ("GREETING".to_owned(), "héllo wörld".to_owned()),
        ]),
        runtime: cloudlet_core::Runtime::Node("Nodejs18.15".to_owned()),
        permissions: Some(serde_json::json!({"openapi": ["wxa.x"]})),
        install_dependency: Some(false),
        ..FunctionConfig::default()
    };
    NewVersion {
        env: env.clone(),
        name: function_name(name),
        version,
        config,
        archive: Bytes::copy_from_slice(archive),
    }
}

/// A plain successful record without logs.
pub fn sample_record(env: &EnvId, function: &str, version: &VersionId) -> InvocationRecord {
    InvocationRecord {
        request_id: RequestId::generate(),
        env: env.clone(),
        function: function_name(function),
        version: version.clone(),
        status: InvocationStatus::Succeeded,
        started_at: now_unix_ms(),
        duration_us: 1_234,
        init_us: None,
        cold: false,
        trigger: "http".to_owned(),
        result: Some(r#"{"sum":3}"#.to_owned()),
        error: None,
        logs: Vec::new(),
        logs_truncated: false,
        caller: None,
        root: None,
        http: None,
        attempts: Vec::new(),
        next_attempt_at: None,
    }
}

fn archive_for(env: &EnvId, label: &str) -> Vec<u8> {
    format!("archive {label} of {env}").into_bytes()
}

pub async fn deploy_and_lookup<S: FunctionStore>(store: &S) {
    let env = unique_env("deploy");
    let before = now_unix_ms();
    let new = new_version(&env, "hello", &archive_for(&env, "hello"));
    let info = store.deploy(new.clone()).await.unwrap();
    assert_eq!(info.env, env);
    assert_eq!(info.name, new.name);
    assert_eq!(info.current.version, new.version);
    assert_eq!(info.current.config, new.config);
    assert_eq!(info.current.package_size, new.archive.len() as u64);
    assert!(info.current.created_at >= before, "created_at {info:?}");
    assert!(info.updated_at >= before, "updated_at {info:?}");

    let found = store.function(&env, &new.name).await.unwrap();
    assert_eq!(found.as_ref(), Some(&info), "function() after deploy");
    assert_eq!(
        store
            .function(&env, &function_name("missing"))
            .await
            .unwrap(),
        None
    );

    for name in ["beta", "alpha", "Zeta"] {
        store
            .deploy(new_version(&env, name, &archive_for(&env, name)))
            .await
            .unwrap();
    }
    let listed = store.functions(&env).await.unwrap().expect("env exists");
    let names: Vec<&str> = listed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["Zeta", "alpha", "beta", "hello"], "sorted by name");
    for function in &listed {
        let one = store.function(&env, &function.name).await.unwrap();
        assert_eq!(one.as_ref(), Some(function));
    }

    let env_info = store
        .env(&env)
        .await
        .unwrap()
        .expect("deploy creates the env");
    assert_eq!(env_info.env, env);
    assert_eq!(env_info.function_count, 4);
    assert!(env_info.created_at >= before);
}

pub async fn redeploy_of_the_same_version_is_idempotent<S: FunctionStore>(store: &S) {
    let env = unique_env("redeploy");
    let new = new_version(&env, "same", &archive_for(&env, "same"));
    let first = store.deploy(new.clone()).await.unwrap();
    let second = store.deploy(new.clone()).await.unwrap();
    assert_eq!(second.current, first.current, "the version is unchanged");
    assert!(second.updated_at >= first.updated_at);
    let listed = store.functions(&env).await.unwrap().unwrap();
    assert_eq!(listed, vec![second]);
    assert_eq!(
        store.package(&new.version).await.unwrap(),
        Some(new.archive.clone())
    );
}

pub async fn new_version_becomes_current<S: FunctionStore>(store: &S) {
    let env = unique_env("newversion");
    let v1 = new_version(&env, "svc", &archive_for(&env, "v1"));
    let mut v2 = new_version(&env, "svc", &archive_for(&env, "v2"));
    v2.config.timeout = 60;
    store.deploy(v1.clone()).await.unwrap();
    // Another function on the same content keeps v1 referenced.
    let other = NewVersion {
        name: function_name("other"),
        ..v1.clone()
    };
    store.deploy(other).await.unwrap();

    let info = store.deploy(v2.clone()).await.unwrap();
    assert_eq!(info.current.version, v2.version);
    assert_eq!(info.current.config.timeout, 60);
    let found = store.function(&env, &v2.name).await.unwrap().unwrap();
    assert_eq!(found.current.version, v2.version);
    assert_eq!(
        store
            .function(&env, &function_name("other"))
            .await
            .unwrap()
            .unwrap()
            .current
            .version,
        v1.version
    );
    assert_eq!(store.package(&v2.version).await.unwrap(), Some(v2.archive));
    assert_eq!(
        store.package(&v1.version).await.unwrap(),
        Some(v1.archive),
        "a version still referenced keeps its package"
    );
}

pub async fn remove_function<S: FunctionStore>(store: &S) {
    let env = unique_env("remove");
    let shared = archive_for(&env, "shared");
    let a = new_version(&env, "a", &shared);
    let b = new_version(&env, "b", &shared);
    store.deploy(a.clone()).await.unwrap();
    store.deploy(b.clone()).await.unwrap();

    assert!(store.remove_function(&env, &a.name).await.unwrap());
    assert!(
        !store.remove_function(&env, &a.name).await.unwrap(),
        "already removed"
    );
    assert_eq!(store.function(&env, &a.name).await.unwrap(), None);
    assert_eq!(
        store.package(&b.version).await.unwrap(),
        Some(b.archive.clone()),
        "b still points at the version"
    );
    let listed = store.functions(&env).await.unwrap().unwrap();
    assert_eq!(
        listed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["b"]
    );

    assert!(store.remove_function(&env, &b.name).await.unwrap());
    assert_eq!(
        store.functions(&env).await.unwrap(),
        Some(Vec::new()),
        "the env outlives its functions"
    );
    assert_eq!(store.env(&env).await.unwrap().unwrap().function_count, 0);

    let nowhere = unique_env("remove-unknown");
    assert!(!store.remove_function(&nowhere, &a.name).await.unwrap());
    assert_eq!(
        store.env(&nowhere).await.unwrap(),
        None,
        "removal creates no env"
    );
}

pub async fn unknown_env_and_default_env<S: FunctionStore>(store: &S) {
    let unknown = unique_env("unknown");
    assert_eq!(store.functions(&unknown).await.unwrap(), None);
    assert_eq!(store.env(&unknown).await.unwrap(), None);
    assert_eq!(
        store.function(&unknown, &function_name("f")).await.unwrap(),
        None
    );
    assert!(!store.envs().await.unwrap().iter().any(|e| e.env == unknown));

    let default = EnvId::default_env();
    assert!(store.functions(&default).await.unwrap().is_some());
    let info = store
        .env(&default)
        .await
        .unwrap()
        .expect("default always exists");
    assert_eq!(info.env, default);
    assert!(store.envs().await.unwrap().iter().any(|e| e.env == default));
}

pub async fn envs_are_listed_by_name<S: FunctionStore>(store: &S) {
    let tag: u32 = rand::random();
    let first = EnvId::parse(format!("list-{tag:08x}-a")).unwrap();
    let second = EnvId::parse(format!("list-{tag:08x}-b")).unwrap();
    for name in ["x", "y"] {
        store
            .deploy(new_version(&second, name, &archive_for(&second, name)))
            .await
            .unwrap();
    }
    store.issue_env_key(&first).await.unwrap();

    let envs = store.envs().await.unwrap();
    let names: Vec<&EnvId> = envs.iter().map(|e| &e.env).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "envs() is sorted by name");
    let mine: Vec<(&str, u64)> = envs
        .iter()
        .filter(|e| e.env == first || e.env == second)
        .map(|e| (e.env.as_str(), e.function_count))
        .collect();
    assert_eq!(mine, [(first.as_str(), 0), (second.as_str(), 2)]);
    assert_eq!(
        store.env(&second).await.unwrap().as_ref(),
        envs.iter().find(|e| e.env == second)
    );
}

pub async fn package_round_trip<S: FunctionStore>(store: &S) {
    let env = unique_env("package");
    let mut archive: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    archive.extend_from_slice(env.as_str().as_bytes());
    let new = new_version(&env, "big", &archive);
    let info = store.deploy(new.clone()).await.unwrap();
    assert_eq!(info.current.package_size, archive.len() as u64);
    let stored = store.package(&new.version).await.unwrap().expect("stored");
    assert!(
        stored == archive,
        "package bytes differ after the round trip"
    );

    let absent = VersionId::parse(hex::encode(Sha256::digest(b"never deployed"))).unwrap();
    assert_eq!(store.package(&absent).await.unwrap(), None);
}

pub async fn env_keys<S: FunctionStore>(store: &S) {
    let env = unique_env("keys");
    assert!(!store.check_env_key(&env, "ck_nothing").await.unwrap());

    let key = store.issue_env_key(&env).await.unwrap();
    assert!(key.starts_with("ck_"), "{key}");
    assert_eq!(key.len(), 3 + 64, "32 random bytes in hex: {key}");
    let info = store
        .env(&env)
        .await
        .unwrap()
        .expect("issuing a key creates the env");
    assert_eq!(info.function_count, 0);
    assert_eq!(store.functions(&env).await.unwrap(), Some(Vec::new()));

    assert!(store.check_env_key(&env, &key).await.unwrap());
    assert!(!store.check_env_key(&env, "").await.unwrap());
    assert!(!store
        .check_env_key(&env, &key[..key.len() - 1])
        .await
        .unwrap());
    assert!(!store.check_env_key(&env, &format!("{key}x")).await.unwrap());

    let other = unique_env("keys-other");
    assert!(
        !store.check_env_key(&other, &key).await.unwrap(),
        "keys are per env"
    );

    store
        .deploy(new_version(&env, "f", &archive_for(&env, "f")))
        .await
        .unwrap();
    let reissued = store.issue_env_key(&env).await.unwrap();
    assert_ne!(reissued, key);
    assert!(
        !store.check_env_key(&env, &key).await.unwrap(),
        "the old key is revoked"
    );
    assert!(store.check_env_key(&env, &reissued).await.unwrap());
    let after = store.env(&env).await.unwrap().unwrap();
    assert_eq!(
        after.created_at, info.created_at,
        "re-issuing keeps the env"
    );
    assert_eq!(after.function_count, 1);
}

fn some_version() -> VersionId {
    VersionId::parse(hex::encode(Sha256::digest(b"record version"))).unwrap()
}

pub async fn record_visible_before_and_after_flush<S: RecordStore>(store: &S) {
    let env = unique_env("record");
    let record = sample_record(&env, "add", &some_version());
    store.submit(record.clone());
    let early = store.record(&env, &record.request_id).await.unwrap();
    assert_eq!(early.as_ref(), Some(&record), "visible right after submit");
    store.flush().await.unwrap();
    let late = store.record(&env, &record.request_id).await.unwrap();
    assert_eq!(late.as_ref(), Some(&record), "visible after flush");
}

pub async fn record_fields_round_trip<S: RecordStore>(store: &S) {
    let env = unique_env("fields");
    let version = some_version();

    let failed = InvocationRecord {
        status: InvocationStatus::Failed,
        duration_us: u64::from(u32::MAX) + 7,
        init_us: Some(48_213),
        cold: true,
        trigger: "cli".to_owned(),
        result: None,
        error: Some(FunctionError {
            code: ErrorCode::FunctionInvocationFailed,
            error_type: Some("RangeError".to_owned()),
            message: "boom: ünïcödé ✓".to_owned(),
            stack: Some("Error: boom\n    at main (index.js:3:9)".to_owned()),
        }),
        logs: vec![
            LogLine {
                timestamp: now_unix_ms() - 5,
                level: LogLevel::Debug,
                message: "starting".to_owned(),
            },
            LogLine {
                timestamp: now_unix_ms() - 4,
                level: LogLevel::Info,
                message: String::new(),
            },
            LogLine {
                timestamp: now_unix_ms() - 3,
                level: LogLevel::Warn,
                message: "multi\nline\ttext with 'quotes' and \"double\" — 日本".to_owned(),
            },
            LogLine {
                timestamp: now_unix_ms() - 2,
                level: LogLevel::Error,
                message: "x".repeat(10_000),
            },
        ],
        logs_truncated: true,
        ..sample_record(&env, "fails", &version)
    };
    let timed_out = InvocationRecord {
        status: InvocationStatus::Failed,
        init_us: Some(0),
        result: None,
        error: Some(FunctionError::new(
            ErrorCode::FunctionTimeLimitExceeded,
            "timed out after 3 s",
        )),
        ..sample_record(&env, "slow", &version)
    };
    let plain = sample_record(&env, "ok", &version);
    let null_result = InvocationRecord {
        result: Some("null".to_owned()),
        started_at: 0,
        duration_us: 0,
        ..sample_record(&env, "ok", &version)
    };
    let retrying = InvocationRecord {
        status: InvocationStatus::Retrying,
        attempts: vec![
            crate::invocation_queue::conformance::failed_attempt(1, "lost"),
            Attempt {
                started_at: None,
                duration_us: None,
                ..crate::invocation_queue::conformance::failed_attempt(2, "boom")
            },
        ],
        next_attempt_at: Some(now_unix_ms() + 1000),
        ..sample_record(&env, "async", &version)
    };
    let records = [failed, timed_out, plain, null_result, retrying];

    for record in &records {
        store.submit(record.clone());
    }
    for record in &records {
        let found = store.record(&env, &record.request_id).await.unwrap();
        assert_eq!(found.as_ref(), Some(record), "before flush");
    }
    store.flush().await.unwrap();
    for record in &records {
        let found = store.record(&env, &record.request_id).await.unwrap();
        assert_eq!(found.as_ref(), Some(record), "after flush");
    }
}

pub async fn records_are_scoped_to_their_env<S: RecordStore>(store: &S) {
    let env = unique_env("scope");
    let other = unique_env("scope-other");
    let record = sample_record(&env, "add", &some_version());
    store.submit(record.clone());
    assert_eq!(
        store.record(&other, &record.request_id).await.unwrap(),
        None
    );
    store.flush().await.unwrap();
    assert_eq!(
        store.record(&other, &record.request_id).await.unwrap(),
        None
    );

    // The same request ID in another env is a different record.
    let twin = InvocationRecord {
        env: other.clone(),
        function: function_name("twin"),
        ..record.clone()
    };
    store.submit(twin.clone());
    store.flush().await.unwrap();
    assert_eq!(
        store.record(&env, &record.request_id).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store.record(&other, &record.request_id).await.unwrap(),
        Some(twin)
    );
}

pub async fn reused_request_id_keeps_the_newest_record<S: RecordStore>(store: &S) {
    let env = unique_env("reuse");
    let mut first = sample_record(&env, "add", &some_version());
    first.logs = vec![
        LogLine {
            timestamp: 1,
            level: LogLevel::Info,
            message: "first 1".to_owned(),
        },
        LogLine {
            timestamp: 2,
            level: LogLevel::Info,
            message: "first 2".to_owned(),
        },
    ];
    store.submit(first.clone());
    store.flush().await.unwrap();

    let second = InvocationRecord {
        status: InvocationStatus::Failed,
        result: None,
        error: Some(FunctionError::new(
            ErrorCode::FunctionInvocationFailed,
            "second",
        )),
        logs: vec![LogLine {
            timestamp: 3,
            level: LogLevel::Warn,
            message: "second 1".to_owned(),
        }],
        ..first.clone()
    };
    store.submit(second.clone());
    assert_eq!(
        store
            .record(&env, &first.request_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&second)
    );
    store.flush().await.unwrap();
    assert_eq!(
        store
            .record(&env, &first.request_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&second),
        "the newest record replaces the earlier one, logs included"
    );
}

pub async fn unknown_record<S: RecordStore>(store: &S) {
    let env = unique_env("norecord");
    let id = RequestId::generate();
    assert_eq!(store.record(&env, &id).await.unwrap(), None);
    store.flush().await.unwrap();
    assert_eq!(store.record(&env, &id).await.unwrap(), None);
    let default = EnvId::default_env();
    assert_eq!(store.record(&default, &id).await.unwrap(), None);
}

/// `usage` counts the records written, and what they take grows with them.
pub async fn usage_counts_the_records_written<S: RecordStore>(store: &S) {
    store.flush().await.expect("flush");
    let before = store.usage().await.expect("usage");
    let env = unique_env("usage");
    let version = new_version(&env, "f", b"usage").version;
    for _ in 0..3 {
        let mut record = sample_record(&env, "f", &version);
        record.result = Some(format!("\"{}\"", "u".repeat(64 * 1024)));
        store.submit(record);
    }
    store.flush().await.expect("flush");
    let after = store.usage().await.expect("usage");
    assert_eq!(after.records, before.records + 3);
    assert_eq!(after.pending, 0);
    assert!(after.bytes > before.bytes, "{before:?} -> {after:?}");
    assert!(after.oldest_started_at.is_some());
}

/// A function's past versions can be found by ID or short ID, up to
/// [`crate::VERSIONS_KEPT`], with their packages; another function's cannot.
pub async fn past_versions_stay_runnable_by_name<S: FunctionStore>(store: &S) {
    let env = unique_env("history");
    let name = function_name("f");
    let first = new_version(&env, "f", b"history 0");
    store.deploy(first.clone()).await.expect("deploy");
    let second = new_version(&env, "f", b"history 1");
    store.deploy(second.clone()).await.expect("deploy");
    let found = store
        .version(&env, &name, first.version.as_str())
        .await
        .expect("read")
        .expect("the first version is in the history");
    assert_eq!(found.version, first.version);
    let short = store
        .version(&env, &name, first.version.short())
        .await
        .expect("read");
    assert_eq!(short.map(|v| v.version), Some(first.version.clone()));
    assert!(store.package(&first.version).await.expect("read").is_some());
    let other = new_version(&env, "g", b"history other");
    store.deploy(other.clone()).await.expect("deploy");
    assert!(store
        .version(&env, &name, other.version.as_str())
        .await
        .expect("read")
        .is_none());
    assert!(store
        .version(&env, &name, "not-a-version")
        .await
        .expect("read")
        .is_none());
    for i in 2..(crate::VERSIONS_KEPT + 2) {
        store
            .deploy(new_version(&env, "f", format!("history {i}").as_bytes()))
            .await
            .expect("deploy");
    }
    assert!(store
        .version(&env, &name, first.version.as_str())
        .await
        .expect("read")
        .is_none());
    assert!(store.package(&first.version).await.expect("read").is_none());
    assert!(store.remove_function(&env, &name).await.expect("remove"));
    assert!(store
        .package(&second.version)
        .await
        .expect("read")
        .is_none());
}

pub async fn a_chains_links_round_trip<S: RecordStore>(store: &S) {
    let env = unique_env("links");
    let other = unique_env("links-root");
    let version = some_version();
    let root = sample_record(&other, "root", &version);
    let called = InvocationRecord {
        caller: Some(InvocationRef {
            env: other.clone(),
            request_id: root.request_id.clone(),
        }),
        root: Some(InvocationRef {
            env: other.clone(),
            request_id: root.request_id.clone(),
        }),
        ..sample_record(&env, "called", &version)
    };
    store.submit(called.clone());
    store.flush().await.unwrap();
    let found = store.record(&env, &called.request_id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&called));
}

pub async fn an_http_responses_status_and_size_round_trip<S: RecordStore>(store: &S) {
    let env = unique_env("http");
    let served = InvocationRecord {
        result: None,
        http: Some(HttpResponseSummary {
            status: 206,
            bytes: u64::from(u32::MAX) + 3,
        }),
        ..sample_record(&env, "web", &some_version())
    };
    store.submit(served.clone());
    let queued = store.record(&env, &served.request_id).await.unwrap();
    assert_eq!(queued.as_ref(), Some(&served));
    store.flush().await.unwrap();
    let stored = store.record(&env, &served.request_id).await.unwrap();
    assert_eq!(stored.as_ref(), Some(&served));
}

pub async fn an_envs_cors_settings_are_set_replaced_and_removed<S: FunctionStore>(store: &S) {
    let env = unique_env("cors");
    assert_eq!(store.cors(&env).await.unwrap(), None);
    let mut settings = CorsSettings {
        allowed_origins: vec!["https://app.example.com".into()],
        allowed_methods: vec!["POST".into()],
        allowed_headers: vec!["content-type".into()],
        allow_credentials: true,
        max_age_seconds: Some(60),
    };
    store.set_cors(&env, Some(&settings)).await.unwrap();
    assert_eq!(store.cors(&env).await.unwrap().as_ref(), Some(&settings));
    assert!(
        store.env(&env).await.unwrap().is_some(),
        "setting them creates the env"
    );
    settings
        .allowed_origins
        .push("https://*.example.org".into());
    store.set_cors(&env, Some(&settings)).await.unwrap();
    assert_eq!(store.cors(&env).await.unwrap().as_ref(), Some(&settings));
    store.set_cors(&env, None).await.unwrap();
    assert_eq!(store.cors(&env).await.unwrap(), None);
}

pub async fn publishable_keys_are_apart_from_env_keys<S: FunctionStore>(store: &S) {
    let env = unique_env("publishable");
    assert!(!store
        .check_publishable_key(&env, "pk_nothing")
        .await
        .unwrap());
    let env_key = store.issue_env_key(&env).await.unwrap();
    let key = store.issue_publishable_key(&env).await.unwrap();
    assert!(key.starts_with("pk_") && key.len() == 3 + 64, "{key}");
    assert!(store.check_publishable_key(&env, &key).await.unwrap());
    assert!(
        !store.check_env_key(&env, &key).await.unwrap(),
        "not an env key"
    );
    assert!(!store.check_publishable_key(&env, &env_key).await.unwrap());
    assert!(
        store.check_env_key(&env, &env_key).await.unwrap(),
        "the env key stays"
    );
    let reissued = store.issue_publishable_key(&env).await.unwrap();
    assert!(
        !store.check_publishable_key(&env, &key).await.unwrap(),
        "replaced"
    );
    assert!(store.check_publishable_key(&env, &reissued).await.unwrap());
    let other = unique_env("publishable-other");
    assert!(!store
        .check_publishable_key(&other, &reissued)
        .await
        .unwrap());
}

pub async fn routes_are_added_once_listed_and_removed<S: FunctionStore>(store: &S) {
    let env = unique_env("routes");
    // Routes are keyed by host, not env: a host of this run's own keeps
    // them apart from other runs on the same store.
    let host = HostPattern::parse(&format!("{env}.example.com")).unwrap();
    let route = |prefix: &str, function: &str| Route {
        host: host.clone(),
        prefix: PathPrefix::parse(prefix).unwrap(),
        env: env.clone(),
        function: function_name(function),
        keep_prefix: true,
        auth: RouteAuth::Key,
        created_at: 1_000,
    };
    let mine = |routes: Vec<Route>| -> Vec<Route> {
        routes.into_iter().filter(|r| r.host == host).collect()
    };
    assert!(store.add_route(&route("/b", "second")).await.unwrap());
    assert!(store.add_route(&route("/a", "first")).await.unwrap());
    assert!(
        !store.add_route(&route("/a", "other")).await.unwrap(),
        "a second route for the same host and prefix is refused"
    );
    let listed = mine(store.routes().await.unwrap());
    assert_eq!(listed, [route("/a", "first"), route("/b", "second")]);
    let a = PathPrefix::parse("/a").unwrap();
    assert!(store.remove_route(&host, &a).await.unwrap());
    assert!(!store.remove_route(&host, &a).await.unwrap());
    assert_eq!(mine(store.routes().await.unwrap()), [route("/b", "second")]);
}

pub async fn children_are_listed_before_and_after_flush<S: RecordStore>(store: &S) {
    let env = unique_env("children");
    let version = some_version();
    let parent = sample_record(&env, "parent", &version);
    let link = InvocationRef {
        env: env.clone(),
        request_id: parent.request_id.clone(),
    };
    let child = |name: &str, started_at: i64| InvocationRecord {
        caller: Some(link.clone()),
        root: Some(link.clone()),
        started_at,
        ..sample_record(&env, name, &version)
    };
    let (first, second) = (child("first", 1_000), child("second", 2_000));
    let stranger = sample_record(&env, "stranger", &version);
    for record in [&parent, &second, &first, &stranger] {
        store.submit(record.clone());
    }
    let names = |children: Vec<InvocationSummary>| -> Vec<String> {
        children
            .into_iter()
            .map(|c| c.function.to_string())
            .collect()
    };
    let listed = store.children(&link).await.unwrap();
    assert_eq!(names(listed), ["first", "second"], "before flush");
    store.flush().await.unwrap();
    let listed = store.children(&link).await.unwrap();
    assert_eq!(listed[0], first.summary());
    assert_eq!(names(listed), ["first", "second"], "after flush");
    let none = store
        .children(&InvocationRef {
            env: env.clone(),
            request_id: stranger.request_id.clone(),
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn a_functions_async_settings_stay_across_deploys_and_go_with_it<S: FunctionStore>(
    store: &S,
) {
    let env = unique_env("async-config");
    let name = function_name("worker");
    let settings = AsyncConfig {
        max_retries: Some(0),
        on_failure: Some(function_name("alarm")),
        ..AsyncConfig::default()
    };
    assert!(
        !store
            .set_async_config(&env, &name, Some(&settings))
            .await
            .unwrap(),
        "no such function yet"
    );
    store
        .deploy(new_version(&env, "worker", b"v1"))
        .await
        .unwrap();
    assert_eq!(store.async_config(&env, &name).await.unwrap(), None);
    assert!(store
        .set_async_config(&env, &name, Some(&settings))
        .await
        .unwrap());
    store
        .deploy(new_version(&env, "worker", b"v2"))
        .await
        .unwrap();
    assert_eq!(
        store.async_config(&env, &name).await.unwrap(),
        Some(settings),
        "a deploy keeps them"
    );
    assert!(store.set_async_config(&env, &name, None).await.unwrap());
    assert_eq!(store.async_config(&env, &name).await.unwrap(), None);
    store
        .set_async_config(&env, &name, Some(&AsyncConfig::default()))
        .await
        .unwrap();
    assert!(store.remove_function(&env, &name).await.unwrap());
    store
        .deploy(new_version(&env, "worker", b"v3"))
        .await
        .unwrap();
    assert_eq!(
        store.async_config(&env, &name).await.unwrap(),
        None,
        "a removed function's settings go with it"
    );
}

pub async fn invocations_are_listed_newest_first_filtered_and_paged<S: RecordStore>(store: &S) {
    let env = unique_env("listing");
    let version = some_version();
    let made: Vec<InvocationRecord> = (0..6)
        .map(|i| InvocationRecord {
            started_at: 1_000 + i,
            status: if i % 3 == 0 {
                InvocationStatus::Failed
            } else {
                InvocationStatus::Succeeded
            },
            trigger: if i < 3 { "http" } else { "cli" }.to_owned(),
            ..sample_record(&env, if i % 2 == 0 { "even" } else { "odd" }, &version)
        })
        .collect();
    // Some written, some still on their way.
    for record in &made[..4] {
        store.submit(record.clone());
    }
    store.flush().await.unwrap();
    for record in &made[4..] {
        store.submit(record.clone());
    }
    store.submit(sample_record(
        &unique_env("listing-other"),
        "even",
        &version,
    ));
    let ids = |listed: Vec<InvocationSummary>| -> Vec<i64> {
        listed.iter().map(|s| s.started_at - 1_000).collect()
    };
    let env = &env;
    let list =
        |query: InvocationQuery| async move { store.invocations(env, &query).await.unwrap() };
    let all = InvocationQuery {
        limit: 100,
        ..InvocationQuery::default()
    };
    assert_eq!(ids(list(all.clone()).await), [5, 4, 3, 2, 1, 0]);
    let even = InvocationQuery {
        function: Some(function_name("even")),
        ..all.clone()
    };
    assert_eq!(ids(list(even).await), [4, 2, 0]);
    let failed = InvocationQuery {
        status: Some(InvocationStatus::Failed),
        ..all.clone()
    };
    assert_eq!(ids(list(failed).await), [3, 0]);
    let by_cli = InvocationQuery {
        trigger: Some("cli".to_owned()),
        ..all.clone()
    };
    assert_eq!(ids(list(by_cli).await), [5, 4, 3]);

    let first = list(InvocationQuery {
        limit: 4,
        ..all.clone()
    })
    .await;
    let last = first.last().expect("a page");
    let second = InvocationQuery {
        before: Some((last.started_at, last.request_id.clone())),
        ..all.clone()
    };
    assert_eq!(ids(first.clone()).len(), 4);
    assert_eq!(ids(list(second).await), [1, 0], "the page after the first");

    let mut replaced = made[5].clone();
    replaced.status = InvocationStatus::Failed;
    store.submit(replaced);
    store.flush().await.unwrap();
    let listed = list(all).await;
    assert_eq!(listed.len(), 6, "a replaced record is listed once");
    assert_eq!(listed[0].status, InvocationStatus::Failed);
}

pub async fn a_timers_last_firing_is_kept_until_its_function_goes<S: FunctionStore>(store: &S) {
    let env = unique_env("timers");
    store
        .deploy(new_version(&env, "nightly", b"v1"))
        .await
        .unwrap();
    let firing = |fired_at| TimerFiring {
        env: env.clone(),
        function: function_name("nightly"),
        trigger: "backup".to_owned(),
        fired_at,
    };
    store.record_timer_firing(&firing(100)).await.unwrap();
    store.record_timer_firing(&firing(200)).await.unwrap();
    let mine = |all: Vec<TimerFiring>| -> Vec<TimerFiring> {
        all.into_iter().filter(|f| f.env == env).collect()
    };
    assert_eq!(mine(store.timer_firings().await.unwrap()), [firing(200)]);
    store
        .remove_function(&env, &function_name("nightly"))
        .await
        .unwrap();
    assert!(mine(store.timer_firings().await.unwrap()).is_empty());
}
