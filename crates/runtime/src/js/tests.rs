use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_core::{EnvId, ErrorCode, FunctionName, Package, RequestId};

use super::JsEngine;
use crate::HeapMeter;

/// As in the `cloudlet` binary, so the engine's tests see the heap meter.
#[global_allocator]
static GLOBAL: HeapMeter<std::alloc::System> = HeapMeter(std::alloc::System);
use crate::{
    DeployedFunction, Engine, EngineLimits, Event, InvocationOutcome, InvocationRequest, Output,
};

fn function(files: &[(&str, &str)]) -> Arc<DeployedFunction> {
    function_named("f", files)
}

fn function_named(name: &str, files: &[(&str, &str)]) -> Arc<DeployedFunction> {
    let files: BTreeMap<String, Bytes> = files
        .iter()
        .map(|(p, d)| (p.to_string(), Bytes::copy_from_slice(d.as_bytes())))
        .collect();
    let package = Package::from_files(files).expect("valid package");
    Arc::new(DeployedFunction::new(
        EnvId::default_env(),
        FunctionName::parse(name).unwrap(),
        Arc::new(package),
    ))
}

fn engine() -> JsEngine {
    JsEngine::new(EngineLimits::default())
}

async fn call(engine: &JsEngine, f: &Arc<DeployedFunction>, event: &str) -> InvocationOutcome {
    call_with(
        engine,
        f,
        Event::Json(Bytes::copy_from_slice(event.as_bytes())),
    )
    .await
}

async fn call_with(
    engine: &JsEngine,
    f: &Arc<DeployedFunction>,
    event: Event,
) -> InvocationOutcome {
    let request = InvocationRequest {
        request_id: RequestId::generate(),
        event,
        origin: Default::default(),
        calls: None,
        deadline: Instant::now() + f.config.timeout(),
        accepts_event_stream: false,
    };
    engine
        .invoke(f, request)
        .await
        .expect("engine accepted the call")
}

async fn ok(engine: &JsEngine, f: &Arc<DeployedFunction>, event: &str) -> String {
    let out = call(engine, f, event).await;
    match out.result {
        Ok(Output::Json(json)) => json,
        other => panic!("expected a JSON result, got {other:?}; logs {:?}", out.logs),
    }
}

#[tokio::test]
async fn async_handler_warm_and_cold() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "let calls = 0; exports.main = async (event, context) => ({ sum: event.x + event.y, calls: ++calls })",
    )]);
    let first = call(&e, &f, r#"{"x":1,"y":2}"#).await;
    assert_eq!(
        first.result.unwrap().json().unwrap(),
        r#"{"sum":3,"calls":1}"#
    );
    assert!(first.cold);
    assert!(first.init.is_some());
    let second = call(&e, &f, r#"{"x":2,"y":2}"#).await;
    assert_eq!(
        second.result.unwrap().json().unwrap(),
        r#"{"sum":4,"calls":2}"#
    );
    assert!(!second.cold);
    assert!(second.init.is_none());
}

#[tokio::test]
async fn callback_handlers() {
    let e = engine();
    let hello = function(&[(
        "index.js",
        "exports.main = function (event, context, callback) { callback(null, 'Message from helloworld'); callback(null, 'second'); }",
    )]);
    let out = call(&e, &hello, "{}").await;
    assert_eq!(
        out.result.unwrap().json().unwrap(),
        r#""Message from helloworld""#
    );
    assert!(
        out.logs.iter().any(|l| l.message.contains("second result")),
        "a second callback is logged: {:?}",
        out.logs
    );

    // The seed example: a three-argument handler that returns its value.
    let add = function(&[
        (
            "index.js",
            "exports.add = (event, context, cb) => { return event.x + event.y }",
        ),
        ("config.json", r#"{"handler": "index.add"}"#),
    ]);
    assert_eq!(ok(&e, &add, r#"{"x":1,"y":2}"#).await, "3");

    let errback = function(&[(
        "index.js",
        "exports.main = (e, c, cb) => setTimeout(() => cb(new Error('nope')), 5)",
    )]);
    let out = call(&e, &errback, "{}").await;
    let err = out.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::FunctionInvocationFailed);
    assert_eq!(err.message, "nope");

    // Callback never called and nothing pending: null, as on Lambda.
    let silent = function(&[("index.js", "exports.main = (e, c, cb) => {}")]);
    assert_eq!(ok(&e, &silent, "{}").await, "null");

    // An async handler that also takes the callback: the first result wins.
    let both = function(&[(
        "index.js",
        "exports.main = async (e, c, cb) => { cb(null, 'callback'); return 'returned'; }",
    )]);
    assert_eq!(ok(&e, &both, "{}").await, r#""callback""#);
}

#[tokio::test]
async fn callback_results_wait_for_pending_timers_unless_told_not_to() {
    let e = engine();
    let source = r#"
        exports.main = (event, context, callback) => {
          if (event.dontWait) context.callbackWaitsForEmptyEventLoop = false;
          setTimeout(() => console.log('timer ran'), 50);
          callback(null, 'done');
          console.log('after callback');
        };"#;
    let f = function(&[("index.js", source)]);

    let started = Instant::now();
    let out = call(&e, &f, "{}").await;
    assert_eq!(out.result.unwrap().json().unwrap(), r#""done""#);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["after callback", "timer ran"]);

    let started = Instant::now();
    let out = call(&e, &f, r#"{"dontWait":true}"#).await;
    assert_eq!(out.result.unwrap().json().unwrap(), r#""done""#);
    assert!(started.elapsed() < Duration::from_millis(50));
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["after callback"]);

    // A timer that never stops keeps a waiting callback handler to its deadline, as on Lambda.
    let forever = function(&[
        (
            "index.js",
            "exports.main = (e, c, cb) => { setInterval(() => {}, 10); cb(null, 'never sent'); }",
        ),
        ("config.json", r#"{"timeout": 1}"#),
    ]);
    let err = call(&e, &forever, "{}").await.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::FunctionTimeLimitExceeded);
    assert!(
        err.message
            .contains("callbackWaitsForEmptyEventLoop = false"),
        "{err:?}"
    );
}

#[tokio::test]
async fn module_exports_handler_and_undefined_result() {
    let e = engine();
    let f = function(&[
        ("src/app.js", "module.exports.handler = function (event, context, callback) { callback(null, event); }"),
        ("config.json", r#"{"handler": "src/app.handler"}"#),
    ]);
    assert_eq!(ok(&e, &f, r#""payload""#).await, r#""payload""#);
    let undef = function(&[("index.js", "exports.main = async () => undefined")]);
    assert_eq!(ok(&e, &undef, "{}").await, "null");
}

#[tokio::test]
async fn results_are_json_as_json_stringify_writes_them() {
    let e = engine();
    let f = function(&[("index.js", "exports.main = async (e) => eval(e.expr)")]);
    for (expr, json) in [
        ("42", "42"),
        ("-7", "-7"),
        ("2147483647 + 1", "2147483648"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("-0", "0"),
        ("1e21", "1e+21"),
        ("NaN", "null"),
        ("true", "true"),
        ("false", "false"),
        ("null", "null"),
        ("undefined", "null"),
        ("'a\"b'", r#""a\"b""#),
        ("[1, undefined, () => 1]", "[1,null,null]"),
        ("({ a: 1, b: undefined })", r#"{"a":1}"#),
    ] {
        let event = serde_json::json!({ "expr": expr }).to_string();
        assert_eq!(ok(&e, &f, &event).await, json, "result of {expr}");
    }
}

#[tokio::test]
async fn function_code_cannot_reach_or_break_the_driver() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "exports.main = async () => { const seen = Object.getOwnPropertyNames(globalThis).filter((k) => k.startsWith('__')); for (const k of seen) delete globalThis[k]; return seen }",
    )]);
    assert_eq!(ok(&e, &f, "{}").await, "[]");
    // The next invocation of the same instance still runs.
    assert_eq!(ok(&e, &f, "{}").await, "[]");
}

#[tokio::test]
async fn require_files_json_and_node_modules() {
    let e = engine();
    let f = function(&[
        (
            "index.js",
            "const lib = require('./lib/math'); const data = require('./data.json'); const pad = require('left-pad');
             const again = require('./lib/math.js');
             exports.main = async () => [lib.add(2, 3), data.name, pad('7', 3, '0'), lib === again, require.resolve('left-pad')]",
        ),
        ("lib/math.js", "exports.add = (a, b) => a + b"),
        ("data.json", r#"{"name": "cloudlet"}"#),
        ("node_modules/left-pad/package.json", r#"{"main": "./lib/index"}"#),
        (
            "node_modules/left-pad/lib/index.js",
            "module.exports = (s, n, c) => String(c).repeat(Math.max(0, n - String(s).length)) + s",
        ),
    ]);
    assert_eq!(
        ok(&e, &f, "{}").await,
        r#"[5,"cloudlet","007",true,"/var/user/node_modules/left-pad/lib/index.js"]"#
    );
}

#[tokio::test]
async fn missing_and_denied_modules_fail_clearly() {
    let e = engine();
    let f = function(&[("index.js", "exports.main = async (e) => require(e.m)")]);
    let out = call(&e, &f, r#"{"m":"fs"}"#).await;
    let err = out.result.unwrap_err();
    assert!(err.message.contains("Cannot find module 'fs'"), "{err:?}");
    assert!(err.message.contains("no file system"), "{err:?}");
    let out = call(&e, &f, r#"{"m":"./nope"}"#).await;
    assert!(out
        .result
        .unwrap_err()
        .message
        .contains("Cannot find module './nope'"));
}

#[tokio::test]
async fn node_globals_and_builtins() {
    let e = engine();
    let f = function(&[(
        "index.js",
        r#"
        const EventEmitter = require('events');
        const { EventEmitter: Named } = require('events');
        const util = require('util');
        const path = require('node:path');
        exports.main = async () => {
          const em = new EventEmitter(); let got = null; em.on('x', (v) => { got = v; }); em.emit('x', 42);
          const sleep = util.promisify((ms, cb) => setTimeout(() => cb(null, ms), ms));
          const slept = await sleep(5);
          return {
            buffer: JSON.stringify(Buffer.from([104, 105])),
            base64: Buffer.from('hi').toString('base64'),
            text: new TextDecoder().decode(new TextEncoder().encode('héllo')),
            url: new URL('https://a.example/p?q=1').searchParams.get('q'),
            path: path.join('/a', 'b', '../c'),
            event: got, same: EventEmitter === Named, slept,
            format: util.format('%s=%d', 'n', 5),
            env: typeof process.env, fsType: typeof require('buffer').Buffer,
          };
        };"#,
    )]);
    let v: serde_json::Value = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    assert_eq!(v["buffer"], r#"{"type":"Buffer","data":[104,105]}"#);
    assert_eq!(v["base64"], "aGk=");
    assert_eq!(v["text"], "héllo");
    assert_eq!(v["url"], "1");
    assert_eq!(v["path"], "/a/c");
    assert_eq!(v["event"], 42);
    assert_eq!(v["same"], true);
    assert_eq!(v["slept"], 5);
    assert_eq!(v["format"], "n=5");
    assert_eq!(v["env"], "object");
    assert_eq!(v["fsType"], "function");
}

#[tokio::test]
async fn process_members_made_on_first_use_behave_as_nodes() {
    let e = engine();
    let f = function(&[(
        "index.js",
        r#"
        exports.main = async () => {
          const present = ['hrtime', 'uptime', 'cwd', 'memoryUsage', 'emitWarning', 'on'].every((name) => name in process);
          const [s, ns] = process.hrtime();
          const later = process.hrtime([s, ns]);
          let heard = null;
          process.on('custom', (v) => { heard = v; });
          process.emit('custom', 7);
          return {
            present, pair: Number.isInteger(s) && ns >= 0 && ns < 1e9, later: later[0] >= 0 && later[1] >= 0,
            bigint: typeof process.hrtime.bigint(), uptime: process.uptime() >= 0, cwd: process.cwd(),
            heap: typeof process.memoryUsage().heapUsed, heard, chained: process.on('x', () => {}) === process,
          };
        };"#,
    )]);
    let v: serde_json::Value = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "present": true, "pair": true, "later": true, "bigint": "bigint", "uptime": true,
            "cwd": "/var/user", "heap": "number", "heard": 7, "chained": true,
        })
    );
}

#[tokio::test]
async fn context_fields_and_env_variables() {
    let e = engine();
    let f = function_named(
        "ctxfn",
        &[
            (
                "index.js",
                "exports.main = async (event, context) => ({ id: context.requestId === context.request_id, name: context.functionName,
                   ns: context.namespace, mem: context.memory_limit_in_mb, limit: context.time_limit_in_ms,
                   remaining: context.getRemainingTimeInMillis() > 0 && context.getRemainingTimeInMillis() <= 5000,
                   version: context.functionVersion.length, env: process.env.GREETING, scf: process.env.SCF_NAMESPACE,
                   environment: JSON.parse(context.environment).GREETING })",
            ),
            ("config.json", r#"{"timeout": 5, "memorySize": 128, "envVariables": {"GREETING": "hi"}}"#),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id": true, "name": "ctxfn", "ns": "default", "mem": 128, "limit": 5000,
            "remaining": true, "version": 12, "env": "hi", "scf": "default", "environment": "hi"})
    );
}

#[tokio::test]
async fn console_is_captured_per_invocation_and_capped() {
    let limits = EngineLimits {
        max_log_bytes_per_invocation: 1000,
        ..EngineLimits::default()
    };
    let e = JsEngine::new(limits);
    let f = function(&[(
        "index.js",
        "exports.main = async (event) => { console.log('hello', {a: 1}); console.error('bad'); for (let i = 0; i < event.n; i++) console.log('x'.repeat(100)); return 1 }",
    )]);
    let out = call(&e, &f, r#"{"n":0}"#).await;
    let messages: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["hello { a: 1 }", "bad"]);
    assert_eq!(out.logs[1].level, cloudlet_core::LogLevel::Error);
    assert!(!out.logs_truncated);

    let out = call(&e, &f, r#"{"n":100000}"#).await;
    assert_eq!(out.result.unwrap().json().unwrap(), "1");
    assert!(out.logs_truncated);
    let total: usize = out.logs.iter().map(|l| l.message.len()).sum();
    assert!(
        total < 1300,
        "capped at about 1000 bytes plus the marker, got {total}"
    );
    // The marker counts what was lost: the bytes cut from the line that
    // reached the cap, and the lines after it.
    let marker = &out.logs.last().unwrap().message;
    let kept = out
        .logs
        .iter()
        .filter(|l| l.message.starts_with('x'))
        .count();
    let cut = 100 - out.logs[out.logs.len() - 2].message.len();
    assert!(
        marker.contains(&format!("{cut} bytes cut"))
            && marker.contains(&format!("{} later lines dropped", 100_000 - kept)),
        "{marker}"
    );

    // The next invocation starts with an empty buffer.
    let out = call(&e, &f, r#"{"n":0}"#).await;
    assert_eq!(out.logs.len(), 2);
}

#[tokio::test]
async fn thrown_and_rejected_errors_keep_the_instance() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "let n = 0; exports.main = async (event) => { n++; if (event.throw) { const err = new TypeError('boom ' + n); throw err } if (event.reject) return Promise.reject('plain'); return n }",
    )]);
    let err = call(&e, &f, r#"{"throw":true}"#).await.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::FunctionInvocationFailed);
    assert_eq!(err.error_type.as_deref(), Some("TypeError"));
    assert_eq!(err.message, "boom 1");
    assert!(err.stack.unwrap().contains("index.js"));
    let err = call(&e, &f, r#"{"reject":true}"#).await.result.unwrap_err();
    assert_eq!((err.error_type, err.message.as_str()), (None, "plain"));
    assert_eq!(
        ok(&e, &f, "{}").await,
        "3",
        "module state survives function errors"
    );
}

#[tokio::test]
async fn load_errors_are_function_errors() {
    let e = engine();
    let syntax = function(&[("index.js", "exports.main = async () => {")]);
    let out = call(&e, &syntax, "{}").await;
    assert!(out.cold);
    let err = out.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::FunctionInvocationFailed);
    assert_eq!(err.error_type.as_deref(), Some("SyntaxError"), "{err:?}");

    let missing = function(&[("index.js", "console.log('loading'); exports.other = 1")]);
    let out = call(&e, &missing, "{}").await;
    assert!(out
        .result
        .unwrap_err()
        .message
        .contains("index.main is not exported"));
    assert_eq!(out.logs[0].message, "loading");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loops_end_at_the_deadline() {
    let e = engine();
    for body in [
        "exports.main = async (e) => { if (e.spin) { while (true) {} } return 'ok' }",
        "exports.main = async (e) => { if (e.spin) { await null; try { while (true) {} } catch (x) {} } return 'ok' }",
        "exports.main = (e, c, cb) => { if (e.spin) { setTimeout(() => { for (;;) {} }, 1) } else cb(null, 'ok') }",
    ] {
        let f = function(&[("index.js", body), ("config.json", r#"{"timeout": 1}"#)]);
        let started = Instant::now();
        let err = call(&e, &f, r#"{"spin":true}"#).await.result.unwrap_err();
        assert_eq!(err.code, ErrorCode::FunctionTimeLimitExceeded, "{body}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "stopped near the deadline");
        assert_eq!(ok(&e, &f, "{}").await, r#""ok""#, "the next call succeeds: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_timers_past_the_deadline_time_out() {
    let e = engine();
    let f = function(&[
        (
            "index.js",
            "exports.main = () => new Promise((r) => setTimeout(r, 60000))",
        ),
        ("config.json", r#"{"timeout": 1}"#),
    ]);
    let err = call(&e, &f, "{}").await.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::FunctionTimeLimitExceeded);
}

#[tokio::test]
async fn allocation_bombs_hit_the_memory_limit() {
    let e = engine();
    let f = function(&[
        (
            "index.js",
            "const keep = []; exports.main = async (e) => { if (e.bomb) { while (true) keep.push(new Array(1e5).fill(1)) } return keep.length }",
        ),
        ("config.json", r#"{"memorySize": 32, "timeout": 30}"#),
    ]);
    let err = call(&e, &f, r#"{"bomb":true}"#).await.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::FunctionMemoryLimitExceeded, "{err:?}");
    // A fresh instance: the module-level array starts empty again.
    assert_eq!(ok(&e, &f, "{}").await, "0");
}

#[tokio::test]
async fn oversized_results_and_unserialisable_results() {
    let limits = EngineLimits {
        max_result_bytes: 100,
        ..EngineLimits::default()
    };
    let e = JsEngine::new(limits);
    let f = function(&[(
        "index.js",
        "exports.main = async (e) => { if (e.cycle) { const a = {}; a.a = a; return a } return 'x'.repeat(e.n) }",
    )]);
    assert_eq!(ok(&e, &f, r#"{"n":3}"#).await, r#""xxx""#);
    let err = call(&e, &f, r#"{"n":1000}"#).await.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::ExceedMaxResponseSize);
    let err = call(&e, &f, r#"{"cycle":true}"#).await.result.unwrap_err();
    assert!(
        err.message.contains("cannot be turned into JSON"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations_use_several_instances_up_to_the_limit() {
    let limits = EngineLimits {
        max_instances_per_function: 2,
        ..EngineLimits::default()
    };
    let e = Arc::new(JsEngine::new(limits));
    let f = function(&[(
        "index.js",
        "const id = Math.random(); exports.main = async (e) => { await new Promise((r) => setTimeout(r, e.ms)); return id }",
    )]);
    let a = tokio::spawn({
        let (e, f) = (e.clone(), f.clone());
        async move { call(&e, &f, r#"{"ms":300}"#).await }
    });
    let b = tokio::spawn({
        let (e, f) = (e.clone(), f.clone());
        async move { call(&e, &f, r#"{"ms":300}"#).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let request = InvocationRequest {
        request_id: RequestId::generate(),
        event: Event::Json(Bytes::from_static(br#"{"ms":1}"#)),
        origin: Default::default(),
        calls: None,
        deadline: Instant::now() + Duration::from_secs(3),
        accepts_event_stream: false,
    };
    let refused = e.invoke(&f, request).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::FunctionExceedResourceLimit);
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(a.cold && b.cold);
    assert_ne!(
        a.result.unwrap().json().unwrap(),
        b.result.unwrap().json().unwrap(),
        "two different instances"
    );
}

#[tokio::test]
async fn retire_drops_idle_instances_of_old_versions() {
    let e = engine();
    let v1 = function(&[("index.js", "exports.main = async () => 1")]);
    let v2 = function(&[("index.js", "exports.main = async () => 2")]);
    assert_eq!(ok(&e, &v1, "{}").await, "1");
    assert_eq!(ok(&e, &v2, "{}").await, "2");
    assert_eq!(e.pool_count(), 2);
    e.retire(&v2.env, &v2.name, Some(&v2.version));
    assert_eq!(e.pool_count(), 1);
    assert!(
        !call(&e, &v2, "{}").await.cold,
        "the kept version stays warm"
    );
}

#[test]
fn checkout_prefers_an_instance_last_run_on_this_thread() {
    use super::instance::{Instance, Shared};
    use super::pool::Pool;

    let f = function(&[("index.js", "exports.main = async () => 1")]);
    let shared = Shared::new(EngineLimits::default());
    let pool = Pool::new(8);
    let deadline = Instant::now() + Duration::from_secs(3);
    let create = || {
        let slot = pool.reserve().expect("room in the pool");
        Instance::create(&f, &shared, slot, deadline).unwrap_or_else(|(e, _)| panic!("{e:?}"))
    };
    let other_thread = std::thread::spawn(|| std::thread::current().id())
        .join()
        .expect("the thread ran");
    let mut here = create();
    let mut elsewhere = create();
    here.last_thread = std::thread::current().id();
    elsewhere.last_thread = other_thread;
    // `elsewhere` is on top of the LIFO stack, but `here` last ran on this thread.
    pool.checkin(here);
    pool.checkin(elsewhere);
    let first = pool.checkout().expect("an idle instance");
    assert_eq!(first.last_thread, std::thread::current().id());
    let second = pool.checkout().expect("the other idle instance");
    assert_eq!(second.last_thread, other_thread);
    assert!(pool.checkout().is_none());
}

#[tokio::test]
async fn crypto_hashes_hmacs_and_random_values_match_node() {
    let e = engine();
    let f = function(&[(
        "index.js",
        r#"
        const crypto = require('crypto');
        exports.main = async () => {
          const bytes = crypto.randomBytes(16);
          const filled = crypto.randomFillSync(new Uint8Array(8), 2, 4);
          const viaCallback = await new Promise((ok, fail) => crypto.randomBytes(4, (err, b) => (err ? fail(err) : ok(b.length))));
          const ints = Array.from({ length: 200 }, () => crypto.randomInt(3, 6));
          const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode('hello'));
          const key = crypto.createSecretKey(Buffer.from('key'));
          const words = crypto.randomFillSync(new Uint32Array(4), 2);
          const errors = {};
          for (const [name, fn] of Object.entries({
            unknownDigest: () => crypto.createHash('sha3-256'),
            emptyRange: () => crypto.randomInt(5, 5),
            negativeSize: () => crypto.randomBytes(-1),
            lengths: () => crypto.timingSafeEqual(Buffer.from('a'), Buffer.from('ab')),
            twice: () => { const h = crypto.createHash('md5'); h.digest(); h.digest(); },
          })) {
            try { fn(); errors[name] = 'no error'; } catch (err) { errors[name] = err.name + ': ' + err.message; }
          }
          return {
            md5: crypto.createHash('md5').update('hello').digest('hex'),
            sha1: crypto.createHash('sha1').update('hello').digest('base64'),
            sha256hexInput: crypto.createHash('SHA256').update('68656c6c6f', 'hex').digest('hex'),
            sha512url: crypto.createHash('sha512').update(Buffer.from([1, 2, 3])).digest('base64url'),
            chained: crypto.createHash('sha256').update('hel').update(Buffer.from('lo')).digest().length,
            hmac: crypto.createHmac('sha256', 'key').update('hello').digest('hex'),
            hmacMd5: crypto.createHmac('md5', 'key').update('hello').digest('hex'),
            hmacMd5LongKey: crypto.createHmac('md5', 'k'.repeat(100)).update('hello').digest('hex'),
            randomLength: bytes.length, isBuffer: Buffer.isBuffer(bytes),
            untouched: [filled[0], filled[1], filled[6], filled[7]],
            viaCallback,
            intsInRange: ints.every((n) => n >= 3 && n < 6), intsSeen: new Set(ints).size,
            uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()),
            globalUuid: typeof globalThis.crypto.randomUUID(),
            subtleDigest: Buffer.from(digest).toString('hex'),
            equal: crypto.timingSafeEqual(Buffer.from('abc'), Buffer.from('abc')),
            unequal: crypto.timingSafeEqual(Buffer.from('abc'), Buffer.from('abd')),
            errors,
            keyObject: [key instanceof crypto.KeyObject, key.type, key.symmetricKeySize,
              crypto.createHmac('sha256', key).update('hello').digest('hex')],
            wordsUntouched: [words[0], words[1]],
          };
        };"#,
    )]);
    let v: serde_json::Value = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    // Expected values computed with Node.js 20's crypto.
    assert_eq!(v["md5"], "5d41402abc4b2a76b9719d911017c592");
    assert_eq!(v["sha1"], "qvTGHdzF6KLavt4PO0gs2a6pQ00=");
    assert_eq!(
        v["sha256hexInput"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(
        v["sha512url"],
        "J4ZMxSGalRp6blK4yN3faYHQmNoWWNliWMhwssiN-8tRhBrqFyoouvpqeXMRZVhGdwZgRclZ7Q-ZKWiNBN78KQ"
    );
    assert_eq!(v["chained"], 32);
    assert_eq!(
        v["hmac"],
        "9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
    );
    assert_eq!(v["hmacMd5"], "04130747afca4d79e32e87cf2104f087");
    assert_eq!(v["hmacMd5LongKey"], "947e733abc6278e766daae9f2ac56d43");
    assert_eq!(v["randomLength"], 16);
    assert_eq!(v["isBuffer"], true);
    assert_eq!(v["untouched"], serde_json::json!([0, 0, 0, 0]));
    assert_eq!(v["viaCallback"], 4);
    assert_eq!(v["intsInRange"], true);
    assert_eq!(v["intsSeen"], 3);
    assert_eq!(v["uuid"], true);
    assert_eq!(v["globalUuid"], "string");
    assert_eq!(
        v["subtleDigest"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(v["equal"], true);
    assert_eq!(v["unequal"], false);
    let errors = &v["errors"];
    assert!(errors["unknownDigest"]
        .as_str()
        .unwrap()
        .starts_with("Error: Digest method not supported"));
    assert!(errors["emptyRange"]
        .as_str()
        .unwrap()
        .starts_with("RangeError"));
    assert!(errors["negativeSize"]
        .as_str()
        .unwrap()
        .starts_with("RangeError"));
    assert!(errors["lengths"]
        .as_str()
        .unwrap()
        .starts_with("RangeError"));
    assert_eq!(errors["twice"], "Error: Digest already called");
    assert_eq!(
        v["keyObject"],
        serde_json::json!([
            true,
            "secret",
            3,
            "9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
        ])
    );
    assert_eq!(v["wordsUntouched"], serde_json::json!([0, 0]));

    // A throw in a crypto callback fails the invocation, as an uncaught exception would in Node.
    let throwing = function(&[(
        "index.js",
        "exports.main = async () => new Promise(() => require('crypto').randomBytes(4, () => JSON.parse('{bad')))",
    )]);
    let err = call(&e, &throwing, "{}").await.result.unwrap_err();
    assert_eq!(err.code, ErrorCode::FunctionInvocationFailed);
    assert_eq!(err.error_type.as_deref(), Some("SyntaxError"), "{err:?}");
}

#[tokio::test]
async fn buffer_encodings_and_comparisons_match_node() {
    let e = engine();
    let f = function(&[("index.js", BUFFER_ENCODINGS_JS)]);
    let got: serde_json::Value = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    // What `node index.js` prints for the same file (Node.js 20).
    let node: serde_json::Value = serde_json::from_str(
        r#"{"latin1":[128,159,255,65],"binary":[128,159,255,65],"binaryRange":[2,254],"fromLatin1":[128,0,97,98,99],"fromBinary":[128,97,98,99],"b64url":"-_8B","fromB64url":[251,255],"fromB64Loose":[251,255],"fromB64":"hello","ascii":"iA","fromAscii":[233],"byteLength":[3,1,2],"isEncoding":[true,true,true,true,false],"latin1Start":["cdef","abcdef","YmNk",""],"defaultArgs":["hi","6566"],"b64Lenient":[[97],"abcdef"],"slowBuffer":"function","bigLatin1":[3145728,233,true],"compare":[true,false,1,-1,0,["a","b"]],"writeFill":[2,[0,233,255,0,0,0],[233,97,233,97,233],[0,128,128,128],3,[104,195,169,0],1,[0,233,255,0,97,0]],"hexUtf8":["hi","68c3a9"]}"#,
    )
    .unwrap();
    assert_eq!(got, node);
}

const BUFFER_ENCODINGS_JS: &str = r#"const main = async () => {
  const out = {};
  const tryIt = (k, fn) => { try { out[k] = fn(); } catch (err) { out[k] = 'ERR ' + err.message; } };
  tryIt('latin1', () => Buffer.from([0x80, 0x9f, 0xff, 0x41]).toString('latin1').split('').map((c) => c.charCodeAt(0)));
  tryIt('binary', () => Buffer.from([0x80, 0x9f, 0xff, 0x41]).toString('binary').split('').map((c) => c.charCodeAt(0)));
  tryIt('binaryRange', () => Buffer.from([1, 2, 0xfe, 4]).toString('binary', 1, 3).split('').map((c) => c.charCodeAt(0)));
  tryIt('fromLatin1', () => [...Buffer.from('\x80\u0100abc', 'latin1')]);
  tryIt('fromBinary', () => [...Buffer.from('\x80abc', 'binary')]);
  tryIt('b64url', () => Buffer.from([251, 255, 1]).toString('base64url'));
  tryIt('fromB64url', () => [...Buffer.from('-_8', 'base64url')]);
  tryIt('fromB64Loose', () => [...Buffer.from('-_8\n', 'base64')]);
  tryIt('fromB64', () => Buffer.from('aGVsbG8=', 'base64').toString());
  tryIt('ascii', () => Buffer.from([0xe9, 0x41]).toString('ascii'));
  tryIt('fromAscii', () => [...Buffer.from('é', 'ascii')]);
  tryIt('byteLength', () => [Buffer.byteLength('abcd', 'base64url'), Buffer.byteLength('é', 'latin1'), Buffer.byteLength('é')]);
  tryIt('isEncoding', () => ['binary', 'base64url', 'latin1', 'utf8', 'nope'].map((e) => Buffer.isEncoding(e)));
  tryIt('latin1Start', () => [Buffer.from('abcdef').toString('latin1', 2), Buffer.from('abcdef').toString('latin1', -2), Buffer.from('abcdef').toString('base64url', 1, 4), Buffer.from('abcdef').toString('binary', 4, 2)]);
  tryIt('defaultArgs', () => [Buffer.from('hi').toString(undefined), Buffer.from('abcdef').toString('hex', 4)]);
  tryIt('b64Lenient', () => [[...Buffer.from('YQ==Yg==', 'base64')], Buffer.from('YWJj.ZGVm', 'base64').toString()]);
  tryIt('slowBuffer', () => typeof require('buffer').SlowBuffer.prototype.toString);
  tryIt('bigLatin1', () => { const b = Buffer.alloc(3 * 1024 * 1024, 0xe9); const s = b.toString('latin1'); return [s.length, s.charCodeAt(12345), Buffer.from(s, 'latin1').every((x, i) => x === b[i])]; });
  tryIt('compare', () => [Buffer.from('ab').equals(Buffer.from('ab')), Buffer.from('ab').equals(Buffer.from('abc')), Buffer.compare(Buffer.from('b'), Buffer.from('a')), Buffer.from('abc').compare(Buffer.from('abd')), Buffer.from('xabc').compare(Buffer.from('abc'), 0, 3, 1), [Buffer.from('b'), Buffer.from('a')].sort(Buffer.compare).map(String)]);
  tryIt('writeFill', () => { const b = Buffer.alloc(6); const n = b.write('\xe9\xff', 1, 'latin1'); const c = Buffer.alloc(5, '\xe9a', 'binary'); const d = Buffer.alloc(4).fill('\x80', 1, 'latin1'); const e = Buffer.alloc(4); const m = e.write('hé', 'utf8'); return [n, [...b], [...c], [...d], m, [...e], b.write('abc', 4, 1, 'latin1'), [...b]]; });
  tryIt('hexUtf8', () => [Buffer.from('6869', 'hex').toString(), Buffer.from('hé').toString('hex')]);
  return out;
};
if (typeof exports !== 'undefined') exports.main = main;
if (require.main === module) main().then((o) => console.log(JSON.stringify(o)));
"#;

/// Runs a fixture function and compares its result, key by key, with what the
/// same function returns under Node.js 20 (`expected`, made by running
/// `node -e "require('./index.js').main().then(v => console.log(JSON.stringify(v, null, 2)))"`
/// in the fixture's folder).
async fn assert_same_as_node(files: &[(&str, &str)], expected: &str) {
    let e = engine();
    let f = function(files);
    let got: serde_json::Value = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    let expected: serde_json::Value = serde_json::from_str(expected).unwrap();
    let (got, expected) = (got.as_object().unwrap(), expected.as_object().unwrap());
    for (key, want) in expected {
        assert_eq!(got.get(key), Some(want), "{key}");
    }
    assert_eq!(got.len(), expected.len());
}

/// Ciphertexts, tags, output streamed across chunks, derived keys, and every
/// error's class, code and message.
#[tokio::test]
async fn ciphers_and_pbkdf2_match_node() {
    assert_same_as_node(
        &[("index.js", include_str!("fixtures/ciphers/index.js"))],
        include_str!("fixtures/ciphers/expected.json"),
    )
    .await;
}

#[tokio::test]
async fn a_long_pbkdf2_stops_at_the_deadline() {
    let e = engine();
    let f = function(&[
        (
            "index.js",
            "exports.main = async () => require('crypto').pbkdf2Sync('pw', 'salt', 2000000000, 64, 'sha512').length",
        ),
        ("config.json", r#"{"timeout": 1}"#),
    ]);
    let started = Instant::now();
    let out = call(&e, &f, "{}").await;
    assert_eq!(
        out.result.unwrap_err().code,
        ErrorCode::FunctionTimeLimitExceeded
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// RSA (PKCS#1 v1.5 and PSS), ECDSA and Ed25519 keys in PKCS#8, PKCS#1, SPKI,
/// X.509 and DER form: signatures made and checked, and signatures Node made
/// verified.
#[tokio::test]
async fn signatures_match_node() {
    assert_same_as_node(
        &[
            ("index.js", include_str!("fixtures/signatures/index.js")),
            ("keys.js", include_str!("fixtures/signatures/keys.js")),
        ],
        include_str!("fixtures/signatures/expected.json"),
    )
    .await;
}

/// Buffers live outside QuickJS's own heap accounting; the heap meter holds
/// them to the memory limit all the same, promptly, and the instance after
/// them is fresh.
#[tokio::test]
async fn buffer_bombs_hit_the_memory_limit() {
    let e = engine();
    for source in [
        "exports.main = async () => Buffer.alloc(200 * 1024 * 1024).length",
        "exports.main = async () => { const a = []; while (true) a.push(Buffer.alloc(1 << 24)); }",
        "exports.main = async () => { const a = []; for (let i = 0; i < 1000; i++) a.push(Buffer.alloc(1 << 20, 1)); return a.length }",
        "exports.main = async () => { const a = []; while (true) a.push(require('crypto').randomBytes(1 << 20)); }",
        // Sizes that must be refused before they are allocated: the first would end the process.
        "exports.main = async () => Buffer.alloc(2 ** 40).length",
        "exports.main = async () => Buffer.allocUnsafe(100 << 20).length",
        "exports.main = async () => require('crypto').randomBytes(100 << 20).length",
        "exports.main = async () => require('crypto').pbkdf2Sync('pw', 'salt', 1, 2 ** 31 - 1, 'sha1').length",
        "exports.main = async () => { let b = Buffer.alloc(1 << 20, 1); while (true) b = Buffer.concat([b, b]); }",
    ] {
        let f = function(&[
            ("index.js", source),
            ("config.json", r#"{"memorySize": 64, "timeout": 10}"#),
        ]);
        let started = Instant::now();
        let out = call(&e, &f, "{}").await;
        assert_eq!(
            out.result.as_ref().err().map(|e| e.code),
            Some(ErrorCode::FunctionMemoryLimitExceeded),
            "{source}: {:?}",
            out.result
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{source}");
    }
    // Within the limit, the same calls work, again and again on one instance.
    let f = function(&[
        (
            "index.js",
            "exports.main = async () => { let n = 0; for (let i = 0; i < 100; i++) n += Buffer.alloc(1 << 20, 1).length; return n }",
        ),
        ("config.json", r#"{"memorySize": 64}"#),
    ]);
    for _ in 0..3 {
        assert_eq!(ok(&e, &f, "{}").await, (100 << 20).to_string());
    }
}

/// Memory kept across invocations in module scope counts too: once the
/// instance holds more than its limit it is replaced, and module scope starts
/// over on a fresh one.
#[tokio::test]
async fn buffers_kept_across_invocations_are_held_to_the_limit() {
    let e = engine();
    let f = function(&[
        (
            "index.js",
            "const kept = []; exports.main = async () => { kept.push(Buffer.alloc(10 << 20, 1)); return kept.length }",
        ),
        ("config.json", r#"{"memorySize": 64}"#),
    ]);
    let mut started_over_at = None;
    for i in 1..=12 {
        let out = call(&e, &f, "{}").await;
        let count: usize = out
            .result
            .expect("succeeds")
            .json()
            .unwrap()
            .parse()
            .unwrap();
        if i > 1 && count == 1 {
            assert!(out.cold, "a fresh instance");
            started_over_at = Some(i);
            break;
        }
        assert_eq!(count, i);
    }
    let at = started_over_at.expect("the kept Buffers pass the limit and the instance is replaced");
    // Over 64 MB after the 7th Buffer, found within a quarter of the limit.
    assert!((8..=10).contains(&at), "replaced before invocation {at}");
}

/// The rest of Node's console (tables, counters, groups, timers, traces) and
/// `process.stdout`/`stderr`, written into the invocation's log lines.
#[tokio::test]
async fn console_methods_beyond_log() {
    let e = engine();
    let f = function(&[(
        "index.js",
        r#"exports.main = async () => {
          console.table([{ a: 1, b: 'x' }, { a: 2, c: true }]);
          console.count(); console.count(); console.count('x'); console.countReset(); console.count();
          console.group('G'); console.log('in %s', 'group'); console.group(); console.log('deeper\nline2');
          console.groupEnd(); console.groupEnd(); console.log('out');
          console.dir({ a: 1 });
          process.stdout.write('raw out\n'); process.stderr.write('raw err');
          console.time('t'); console.timeEnd('t'); console.timeEnd('nope');
          console.trace('here %d', 1);
          return 1;
        }"#,
    )]);
    let out = call(&e, &f, "{}").await;
    assert_eq!(out.result.unwrap().json().unwrap(), "1");
    let lines: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    // Node.js 20's output for the same calls.
    assert_eq!(
        lines[0],
        "┌─────────┬───┬─────┬──────┐\n│ (index) │ a │ b   │ c    │\n├─────────┼───┼─────┼──────┤\n│ 0       │ 1 │ 'x' │      │\n│ 1       │ 2 │     │ true │\n└─────────┴───┴─────┴──────┘"
    );
    assert_eq!(
        lines[1..9],
        [
            "default: 1",
            "default: 2",
            "x: 1",
            "default: 1",
            "G",
            "  in group",
            "    deeper\n    line2",
            "out"
        ]
    );
    assert!(lines[9].contains("a: 1"), "{}", lines[9]);
    assert_eq!(lines[10..12], ["raw out", "raw err"]);
    assert_eq!(out.logs[11].level, cloudlet_core::LogLevel::Error);
    assert!(
        lines[12].starts_with("t: ") && lines[12].ends_with("ms"),
        "{}",
        lines[12]
    );
    assert!(lines[13].contains("No such label 'nope'"), "{}", lines[13]);
    assert_eq!(lines[14], "Trace: here 1");
    assert!(
        lines[15].contains("at ") && lines[15].contains("index.js"),
        "{}",
        lines[15]
    );
}

/// `err.stack` starts with the error's own line, as in Node, and the record of
/// a failed invocation carries it.
#[tokio::test]
async fn error_stacks_start_with_the_error() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "function inner() { return new TypeError('bad input') }\n\
         function two() {\n  return new TypeError('x') }\n\
         exports.main = async (event) => {\n\
           if (event.fail) throw inner();\n\
           return [...inner().stack.split('\\n').slice(0, 2), two().stack.split('\\n')[1]];\n\
         }",
    )]);
    let lines: Vec<String> = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    assert_eq!(lines[0], "TypeError: bad input");
    // Columns are QuickJS's (it points at `TypeError` where V8 points at `new`);
    // on the first line they count from the start of the file's own text.
    assert_eq!(lines[1], "    at inner (/var/user/index.js:1:30)");
    assert_eq!(lines[2], "    at two (/var/user/index.js:3:14)");
    // A subclass that names itself in its constructor: the record says so.
    let subclass = function(&[(
        "index.js",
        "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; } }\n\
         exports.main = async () => { throw new MyError('mine') }",
    )]);
    let failed = call(&e, &subclass, "{}").await.result.unwrap_err();
    assert_eq!(failed.error_type.as_deref(), Some("MyError"));
    assert_eq!(failed.summary(), "MyError: mine");
    assert!(
        failed
            .stack
            .as_deref()
            .unwrap()
            .starts_with("MyError: mine\n    at "),
        "{:?}",
        failed.stack
    );
    let failed = call(&e, &f, r#"{"fail":true}"#).await.result.unwrap_err();
    assert_eq!(failed.summary(), "TypeError: bad input");
    assert!(
        failed
            .stack
            .as_deref()
            .unwrap()
            .starts_with("TypeError: bad input\n    at inner"),
        "{:?}",
        failed.stack
    );
}

/// Call sites give `Error.prepareStackTrace` the function's own functions, as
/// in Node, but never the engine's (the driver's `invoke` and `load`).
#[tokio::test]
async fn call_sites_do_not_reach_the_engine_functions() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "function mine() {\n\
           Error.prepareStackTrace = (err, frames) => frames.map((site) => site.getFunction());\n\
           const fns = new Error().stack;\n\
           Error.prepareStackTrace = undefined;\n\
           return fns;\n\
         }\n\
         exports.main = async () => {\n\
           const fns = mine();\n\
           return { own: fns.filter((f) => f === mine || f === exports.main).length,\n\
                    engine: fns.filter((f) => typeof f === 'function' && f !== mine && f !== exports.main).length,\n\
                    frames: fns.length };\n\
         }",
    )]);
    let seen: serde_json::Value = serde_json::from_str(&ok(&e, &f, "{}").await).unwrap();
    assert_eq!(seen["own"], 2, "{seen}");
    assert_eq!(seen["engine"], 0, "{seen}");
    assert!(seen["frames"].as_u64().unwrap() > 2, "{seen}");
}

/// Promise jobs that queue more jobs without end stop at the deadline, and the
/// instance is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_job_storms_stop_at_the_deadline() {
    let e = engine();
    for storm in [
        "const f = () => { Promise.resolve().then(f); Promise.resolve().then(f) }; f(); return new Promise(() => {})",
        "const f = () => { queueMicrotask(f); queueMicrotask(f) }; f(); return 'already returned'",
    ] {
        let f = function(&[
            (
                "index.js",
                &format!("exports.main = async (event) => {{ if (!event.storm) return 'calm'; {storm} }}"),
            ),
            ("config.json", r#"{"timeout": 1}"#),
        ]);
        let started = Instant::now();
        let out = call(&e, &f, r#"{"storm":true}"#).await;
        assert_eq!(
            out.result.unwrap_err().code,
            ErrorCode::FunctionTimeLimitExceeded
        );
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert_eq!(ok(&e, &f, "{}").await, r#""calm""#);
    }
}

/// Code that runs while the result is serialised (getters, `toJSON`) or the
/// error is read (a `message` getter) is held to the deadline, and the
/// invocation reports the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialising_the_result_is_held_to_the_deadline() {
    let e = engine();
    for code in [
        "return { get x() { for (;;) {} } }",
        "return { toJSON() { for (;;) {} } }",
        "throw { get message() { for (;;) {} } }",
    ] {
        let f = function(&[
            (
                "index.js",
                &format!("exports.main = async () => {{ {code} }}"),
            ),
            ("config.json", r#"{"timeout": 1}"#),
        ]);
        let out = call(&e, &f, "{}").await;
        assert_eq!(
            out.result.unwrap_err().code,
            ErrorCode::FunctionTimeLimitExceeded,
            "{code}"
        );
    }
}

/// An instance that reached its memory limit reports it, even when the
/// function caught the error and returned, or the limit was reached in a
/// promise job nothing awaited.
#[tokio::test]
async fn a_caught_out_of_memory_error_still_fails_the_invocation() {
    let e = engine();
    for code in [
        "const keep = []; try { for (;;) keep.push(new Array(1e5).fill(1)) } catch (e) { keep.length = 0; return 'survived' }",
        "Promise.resolve().then(() => { const keep = []; for (;;) keep.push(new Array(1e5).fill(1)) }); return new Promise(() => {})",
    ] {
        let f = function(&[
            ("index.js", &format!("exports.main = async (event) => {{ if (!event.bomb) return 'calm'; {code} }}")),
            ("config.json", r#"{"memorySize": 16}"#),
        ]);
        let out = call(&e, &f, r#"{"bomb":true}"#).await;
        assert_eq!(
            out.result.unwrap_err().code,
            ErrorCode::FunctionMemoryLimitExceeded,
            "{code}"
        );
        assert_eq!(ok(&e, &f, "{}").await, r#""calm""#);
    }
}

fn engine_with_budget(bytes: usize) -> JsEngine {
    JsEngine::new(EngineLimits {
        memory_budget_bytes: bytes,
        ..EngineLimits::default()
    })
}

/// Past the server-wide memory budget, idle instances of other functions are
/// evicted, least recently used first, so that new ones still start.
#[tokio::test]
async fn idle_instances_are_evicted_to_stay_within_the_memory_budget() {
    let budget = 4 << 20;
    let e = engine_with_budget(budget);
    let mut first_instance = 0;
    for i in 0..40 {
        let f = function_named(
            &format!("f{i}"),
            &[("index.js", "exports.main = async () => 'up'")],
        );
        assert_eq!(ok(&e, &f, "{}").await, r#""up""#);
        let held = e.usage().memory_held_bytes;
        assert!(held <= budget, "instances hold {held} bytes, over {budget}");
        if i == 0 {
            first_instance = held;
        }
    }
    assert!(
        40 * first_instance > budget,
        "40 instances of {first_instance} bytes fit without evicting any"
    );
}

/// When running invocations hold the budget and nothing idle is left to
/// evict, a new invocation waits briefly, then is refused with a code of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_past_the_memory_budget_wait_then_are_refused() {
    let e = Arc::new(engine_with_budget(8 << 20));
    let hog = function_named(
        "hog",
        &[(
            "index.js",
            "let kept; exports.main = async () => { kept = new Array(1e6).fill(0).map((_, i) => i); \
             await new Promise((r) => setTimeout(r, 1500)); return kept.length }",
        )],
    );
    let holding = {
        let (e, hog) = (e.clone(), hog.clone());
        tokio::spawn(async move { call(&e, &hog, "{}").await })
    };
    // The hog holds the budget once its array is built and it waits on its timer.
    let building = Instant::now();
    while e.usage().memory_held_bytes <= 8 << 20 {
        assert!(
            building.elapsed() < Duration::from_secs(10),
            "the hog never held the budget"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = function_named("other", &[("index.js", "exports.main = async () => 'ran'")]);
    let request = InvocationRequest {
        request_id: RequestId::generate(),
        event: Event::Json(Bytes::from_static(b"{}")),
        origin: Default::default(),
        calls: None,
        deadline: Instant::now() + Duration::from_secs(3),
        accepts_event_stream: false,
    };
    let refused = e.invoke(&other, request).await.expect_err("refused");
    assert_eq!(refused.code, ErrorCode::ExceedMemoryBudget);
    assert_eq!(
        holding
            .await
            .unwrap()
            .result
            .unwrap()
            .json()
            .unwrap()
            .to_owned(),
        "1000000"
    );
    // The hog is idle now, and is evicted to make room.
    assert_eq!(ok(&e, &other, "{}").await, r#""ran""#);
}

/// Searching, slicing (which shares memory), lenient hex, 64-bit and
/// 1-to-6-byte integers, byte swaps and writes at an offset, as in Node.
#[tokio::test]
async fn buffer_methods_match_node() {
    assert_same_as_node(
        &[("index.js", include_str!("fixtures/buffer/index.js"))],
        include_str!("fixtures/buffer/expected.json"),
    )
    .await;
}

/// Packages that name their entry points in package.json's "exports" (the
/// "require", "node" and "default" conditions, subpaths, patterns), and files
/// that start with a byte order mark, load as in Node.
#[tokio::test]
async fn require_follows_package_exports() {
    let e = engine();
    let f = function(&[
        (
            "index.js",
            "\u{feff}const a = require('expkg');\n\
             const b = require('expkg/feature');\n\
             const c = require('expkg/utils/strings');\n\
             const d = require('@scope/sugar');\n\
             const specific = require('p3/a.js');\n\
             const data = require('./data.json');\n\
             let hidden;\n\
             try { require('expkg/dist/secret.js'); } catch (err) { hidden = err.code; }\n\
             exports.main = async () => [a, b, c, d, data.ok, hidden, require.resolve('expkg'), specific];",
        ),
        ("data.json", "\u{feff}{\"ok\": true}"),
        (
            "node_modules/expkg/package.json",
            r#"{"main": "./wrong.js", "exports": {
                ".": {"import": "./dist/esm.mjs", "require": "./dist/cjs.js"},
                "./feature": [{"worker": "./nope.js"}, "./dist/feature.js"],
                "./utils/*": {"node": "./dist/utils/*.js"}
            }}"#,
        ),
        ("node_modules/expkg/dist/cjs.js", "module.exports = 'main'"),
        (
            "node_modules/expkg/dist/feature.js",
            "module.exports = 'feature'",
        ),
        (
            "node_modules/expkg/dist/utils/strings.js",
            "module.exports = 'strings'",
        ),
        (
            "node_modules/expkg/dist/secret.js",
            "module.exports = 'secret'",
        ),
        (
            "node_modules/expkg/wrong.js",
            "module.exports = 'main field'",
        ),
        (
            "node_modules/@scope/sugar/package.json",
            r#"{"exports": "./lib/index.js"}"#,
        ),
        (
            "node_modules/@scope/sugar/lib/index.js",
            "module.exports = 'sugar'",
        ),
        // The more specific pattern wins, wherever it is listed.
        (
            "node_modules/p3/package.json",
            r#"{"exports": {".": "./dist/main.js", "./*": "./dist/wrong/*", "./*.js": "./dist/*.js"}}"#,
        ),
        ("node_modules/p3/dist/a.js", "module.exports = 'specific'"),
    ]);
    assert_eq!(
        ok(&e, &f, "{}").await,
        r#"["main","feature","strings","sugar",true,"ERR_PACKAGE_PATH_NOT_EXPORTED","/var/user/node_modules/expkg/dist/cjs.js","specific"]"#
    );
}

/// `path` as Node's POSIX path: '..' above the start kept, '.' for empty
/// results, trailing slashes, `path.posix`.
#[tokio::test]
async fn path_matches_node() {
    assert_same_as_node(
        &[("index.js", include_str!("fixtures/path/index.js"))],
        include_str!("fixtures/path/expected.json"),
    )
    .await;
}

/// `events` as Node's (inheritance by `EventEmitter.call` + `util.inherits`,
/// unhandled 'error' events throwing, `EventEmitter.once`, the listener
/// queries) and `process` as an emitter.
#[tokio::test]
async fn events_match_node() {
    assert_same_as_node(
        &[("index.js", include_str!("fixtures/events/index.js"))],
        include_str!("fixtures/events/expected.json"),
    )
    .await;
}

/// util.format and util.inspect (and so console.log's lines) as Node's:
/// specifiers, `%%`, depth, circular references, Sets and Maps, layout.
#[tokio::test]
async fn format_and_inspect_match_node() {
    assert_same_as_node(
        &[("index.js", include_str!("fixtures/inspect/index.js"))],
        include_str!("fixtures/inspect/expected.json"),
    )
    .await;
}

/// Buffer's fixes load on first use whichever way it comes: a Buffer made by
/// a native module and a method Buffer lacks, or one it has; and the globals
/// QuickJS's own intrinsics would have given are there.
#[tokio::test]
async fn lazily_loaded_parts_arrive_on_first_use() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "exports.main = async () => {\n\
           const b = require('crypto').randomBytes(4);\n\
           b.swap16();\n\
           return [typeof b.readIntBE, b.slice(1).length, JSON.stringify(Buffer.alloc(1))];\n\
         };",
    )]);
    assert_eq!(
        ok(&e, &f, "{}").await,
        r#"["function",3,"{\"type\":\"Buffer\",\"data\":[0]}"]"#
    );
    // What function code puts in place before the fixes load stays.
    let replaced = function(&[(
        "index.js",
        "exports.main = async () => { Buffer.prototype.toString = function mine() { return 'mine'; }; console.table = () => 'own'; console.time('t'); return [Buffer.from('x').toString(), console.table()]; }",
    )]);
    assert_eq!(ok(&e, &replaced, "{}").await, r#"["mine","own"]"#);
    let fresh = function(&[(
        "index.js",
        "exports.main = async () => { const b = require('crypto').randomBytes(4); return [b.toString('base64url').length, typeof b.swap32, 'compare' in Buffer, typeof DOMException, typeof performance.now(), typeof WeakRef]; }",
    )]);
    assert_eq!(
        ok(&e, &fresh, "{}").await,
        r#"[6,"function",true,"function","number","function"]"#
    );
}

/// Strings with half of a surrogate pair (a sliced emoji) log and encode as
/// Node does, with U+FFFD; `console.log()` writes an empty line; the require
/// cache is keyed by absolute file name, so deleting an entry reloads it.
#[tokio::test]
async fn lone_surrogates_empty_logs_and_the_require_cache() {
    let e = engine();
    let f = function(&[
        (
            "index.js",
            "exports.main = async () => {\n\
               const half = '\u{1F600} emoji'.slice(0, 1);\n\
               console.log('cut:', half); console.log(half); console.log();\n\
               const first = require('./counter').next();\n\
               delete require.cache[require.resolve('./counter')];\n\
               return [Buffer.from(half).toString('hex'), first, require('./counter').next()];\n\
             };",
        ),
        ("counter.js", "let n = 0; exports.next = () => ++n;"),
    ]);
    let out = call(&e, &f, "{}").await;
    assert_eq!(out.result.unwrap().json().unwrap(), r#"["efbfbd",1,1]"#);
    let lines: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(lines, ["cut: \u{fffd}", "\u{fffd}", ""]);
}

/// util.isDeepStrictEqual and util.types as Node's, and removeAllListeners
/// announcing each removal.
#[tokio::test]
async fn util_and_events_details_match_node() {
    assert_same_as_node(
        &[("index.js", include_str!("fixtures/util/index.js"))],
        include_str!("fixtures/util/expected.json"),
    )
    .await;
}

#[tokio::test]
async fn text_and_binary_events_reach_the_handler_as_a_string_and_a_buffer() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "exports.main = async (event) => [typeof event, Buffer.isBuffer(event), Buffer.isBuffer(event) ? event.toString('hex') : event]",
    )]);
    let text = call_with(&e, &f, Event::Text("not {json}".into())).await;
    assert_eq!(
        text.result.unwrap().json().unwrap(),
        r#"["string",false,"not {json}"]"#
    );
    let binary = call_with(&e, &f, Event::Binary(Bytes::from_static(&[0, 1, 254]))).await;
    assert_eq!(
        binary.result.unwrap().json().unwrap(),
        r#"["object",true,"0001fe"]"#
    );
}

#[tokio::test]
async fn idle_instances_are_discarded_in_the_background_after_their_ttl() {
    let e = JsEngine::new(EngineLimits {
        idle_instance_ttl: Duration::from_millis(500),
        ..EngineLimits::default()
    });
    let f = function(&[("index.js", "exports.main = async () => 1")]);
    ok(&e, &f, "{}").await;
    assert_eq!(e.usage().instances, 1);
    let _ = tokio::time::timeout(Duration::from_millis(2500), e.background()).await;
    assert_eq!(e.usage().instances, 0);
}

/// An invocation whose caller takes server-sent events.
async fn call_taking_events(engine: &JsEngine, f: &Arc<DeployedFunction>) -> InvocationOutcome {
    let request = InvocationRequest {
        request_id: RequestId::generate(),
        event: Event::Json(Bytes::from_static(b"{}")),
        origin: Default::default(),
        calls: None,
        deadline: Instant::now() + f.config.timeout(),
        accepts_event_stream: true,
    };
    engine
        .invoke(f, request)
        .await
        .expect("engine accepted the call")
}

const SSE_FUNCTION: &str = r#"
exports.main = async (event, context) => {
  const sse = context.sse?.();
  if (!sse || sse.closed) return 'no stream';
  sse.send({ data: 'first' });
  await new Promise((r) => setTimeout(r, 30));
  sse.send({ event: 'tick', id: 2, data: { n: 2 } });
  sse.end({ data: 'done' });
  return sse.send('after end') ? 'sent after end' : 'closed';
};
"#;

#[tokio::test]
async fn context_sse_streams_events_to_a_caller_that_takes_them() {
    use http_body_util::BodyExt;
    let e = engine();
    let f = function(&[("index.js", SSE_FUNCTION)]);
    let out = call_taking_events(&e, &f).await;
    let Ok(Output::Stream(stream)) = out.result else {
        panic!("a stream, got {:?}", out.result);
    };
    assert_eq!(
        stream.headers["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let mut body = stream.body;
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(
        first, "data: first\n\n",
        "sent before the function's first wait"
    );
    let mut rest = String::new();
    while let Some(frame) = body.frame().await {
        rest.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap());
    }
    assert_eq!(
        rest,
        "event: tick\nid: 2\ndata: {\"n\":2}\n\ndata: done\n\n"
    );
    let end = body.end(crate::BodyEnd::Complete);
    assert!(end.result.is_ok(), "{:?}", end.result);
}

#[tokio::test]
async fn context_sse_is_null_for_a_caller_that_takes_no_events() {
    let e = engine();
    let f = function(&[("index.js", SSE_FUNCTION)]);
    assert_eq!(ok(&e, &f, "{}").await, "\"no stream\"");
    // The same instance, asked for a stream next, gives one.
    let out = call_taking_events(&e, &f).await;
    assert!(matches!(out.result, Ok(Output::Stream(_))));
}

#[tokio::test]
async fn performance_time_origin_plus_now_is_the_wall_clock() {
    let e = engine();
    let f = function(&[(
        "index.js",
        "exports.main = async () => Math.abs(performance.timeOrigin + performance.now() - Date.now())",
    )]);
    let off: f64 = ok(&e, &f, "{}").await.parse().unwrap();
    assert!(off < 5.0, "off by {off} ms");
}
