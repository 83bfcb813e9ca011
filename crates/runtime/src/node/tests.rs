//! The node engine over real `node` processes. Each test is skipped, with a
//! line saying so, where no Node.js 18 or later is on PATH.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_core::{EnvId, ErrorCode, FunctionName, Package, RequestId};

use super::{NodeBinary, NodeEngine};
use crate::{
    DeployedFunction, Engine, EngineLimits, Event, InvocationOutcome, InvocationRequest, Output,
};

struct Fixture {
    engine: NodeEngine,
    _dir: tempfile::TempDir,
}

async fn engine_with(limits: EngineLimits) -> Option<Fixture> {
    let node = match NodeBinary::find(None).await {
        Ok(node) => node,
        Err(reason) => {
            eprintln!("skipped: no Node.js for the node engine ({reason})");
            return None;
        }
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let engine = NodeEngine::new(node, dir.path(), limits).expect("an engine");
    engine.prewarm().await;
    Some(Fixture { engine, _dir: dir })
}

async fn engine() -> Option<Fixture> {
    engine_with(EngineLimits::default()).await
}

fn function(name: &str, files: &[(&str, &str)]) -> Arc<DeployedFunction> {
    let files: BTreeMap<String, Bytes> = files
        .iter()
        .map(|(p, d)| (p.to_string(), Bytes::copy_from_slice(d.as_bytes())))
        .collect();
    let package = Package::from_files(files).expect("a valid package");
    Arc::new(DeployedFunction::new(
        EnvId::default_env(),
        FunctionName::parse(name).expect("a name"),
        Arc::new(package),
    ))
}

async fn call(f: &Fixture, function: &Arc<DeployedFunction>, event: &str) -> InvocationOutcome {
    let event = Event::Json(Bytes::copy_from_slice(event.as_bytes()));
    call_with(f, function, event).await
}

async fn call_with(
    f: &Fixture,
    function: &Arc<DeployedFunction>,
    event: Event,
) -> InvocationOutcome {
    let request = InvocationRequest {
        request_id: RequestId::generate(),
        event,
        origin: Default::default(),
        calls: None,
        deadline: Instant::now() + function.config.timeout(),
        accepts_event_stream: false,
    };
    f.engine
        .invoke(function, request)
        .await
        .expect("the engine accepted the call")
}

async fn ok(f: &Fixture, function: &Arc<DeployedFunction>, event: &str) -> String {
    let out = call(f, function, event).await;
    match out.result {
        Ok(Output::Json(json)) => json,
        other => panic!("expected a JSON result, got {other:?}; logs {:?}", out.logs),
    }
}

async fn code_of(
    f: &Fixture,
    function: &Arc<DeployedFunction>,
    event: &str,
) -> (ErrorCode, String) {
    let error = call(f, function, event)
        .await
        .result
        .expect_err("a failure");
    (error.code, error.summary())
}

#[tokio::test]
async fn handler_shapes_results_and_context_are_the_js_engines() {
    let Some(f) = engine().await else { return };
    let add = function(
        "add",
        &[("index.js", "exports.main = async (e) => e.x + e.y")],
    );
    let first = call(&f, &add, r#"{"x":1,"y":2}"#).await;
    assert_eq!(first.result.unwrap().json().unwrap(), "3");
    assert!(first.cold);
    let second = call(&f, &add, r#"{"x":2,"y":2}"#).await;
    assert_eq!(second.result.unwrap().json().unwrap(), "4");
    assert!(!second.cold);

    let callback = function(
        "callback",
        &[(
            "index.js",
            "exports.main = (e, c, cb) => setTimeout(() => cb(null, 'late'), 10)",
        )],
    );
    assert_eq!(ok(&f, &callback, "{}").await, r#""late""#);
    let returns = function(
        "returns",
        &[
            (
                "index.js",
                "exports.add = (event, context, cb) => { return event.x + event.y }",
            ),
            ("config.json", r#"{"handler": "index.add"}"#),
        ],
    );
    assert_eq!(ok(&f, &returns, r#"{"x":1,"y":2}"#).await, "3");
    let shapes = function("shapes", &[(
        "index.js",
        "module.exports.main = async (event, context) => ({ none: undefined, buf: Buffer.from('hi'), \
           id: context.requestId === context.request_id, name: context.functionName, \
           left: context.getRemainingTimeInMillis() > 0, env: process.env.SCF_FUNCTIONNAME, \
           node: typeof require('fs').readFileSync })",
    )]);
    let value: serde_json::Value = serde_json::from_str(&ok(&f, &shapes, "{}").await).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"buf": {"type": "Buffer", "data": [104, 105]}, "id": true,
            "name": "shapes", "left": true, "env": "shapes", "node": "function"})
    );
    let nothing = function(
        "nothing",
        &[("index.js", "exports.main = async () => undefined")],
    );
    assert_eq!(ok(&f, &nothing, "{}").await, "null");
}

#[tokio::test]
async fn errors_carry_their_message_and_stack() {
    let Some(f) = engine().await else { return };
    let throws = function("throws", &[(
        "index.js",
        "exports.main = async (e) => { if (e.type) throw new TypeError('bad input'); throw new Error('boom') }",
    )]);
    let out = call(&f, &throws, "{}").await.result.unwrap_err();
    assert_eq!(
        (out.code, out.message.as_str()),
        (ErrorCode::FunctionInvocationFailed, "boom")
    );
    assert!(out.stack.unwrap().contains("index.js"));
    let out = call(&f, &throws, r#"{"type":1}"#).await.result.unwrap_err();
    assert_eq!(
        (out.error_type.as_deref(), out.message.as_str()),
        (Some("TypeError"), "bad input")
    );
    let errback = function(
        "errback",
        &[(
            "index.js",
            "exports.main = (e, c, cb) => cb(new Error('nope'))",
        )],
    );
    assert_eq!(code_of(&f, &errback, "{}").await.1, "nope");
    let cyclic = function(
        "cyclic",
        &[(
            "index.js",
            "exports.main = async () => { const a = {}; a.a = a; return a }",
        )],
    );
    let (code, message) = code_of(&f, &cyclic, "{}").await;
    assert_eq!(code, ErrorCode::FunctionInvocationFailed);
    assert!(
        message.starts_with("the function's result cannot be turned into JSON"),
        "{message}"
    );
    let broken = function("broken", &[("index.js", "exports.main = async () => {")]);
    let out = call(&f, &broken, "{}").await;
    assert!(out.cold);
    let error = out.result.unwrap_err();
    assert_eq!(
        error.error_type.as_deref(),
        Some("SyntaxError"),
        "{error:?}"
    );
}

#[tokio::test]
async fn console_and_raw_output_are_the_invocations_logs() {
    let Some(f) = engine().await else { return };
    let logs = function("logs", &[(
        "index.js",
        "exports.main = async () => { console.log('a', 1); console.warn('w'); process.stdout.write('raw\\n'); return 0 }",
    )]);
    let out = call(&f, &logs, "{}").await;
    let lines: Vec<(String, String)> = out
        .logs
        .iter()
        .map(|l| (l.level.as_str().to_owned(), l.message.clone()))
        .collect();
    assert_eq!(
        lines,
        [("info", "a 1"), ("warn", "w"), ("info", "raw")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

#[tokio::test]
async fn a_flood_of_logs_is_capped() {
    let limits = EngineLimits {
        max_log_bytes_per_invocation: 1000,
        ..EngineLimits::default()
    };
    let Some(f) = engine_with(limits).await else {
        return;
    };
    let flood = function("flood", &[(
        "index.js",
        "exports.main = async () => { for (let i = 0; i < 10000; i++) console.log('x'.repeat(100)); return 1 }",
    )]);
    let out = call(&f, &flood, "{}").await;
    assert_eq!(out.result.unwrap().json().unwrap(), "1");
    assert!(out.logs_truncated);
    let kept: usize = out
        .logs
        .iter()
        .take(out.logs.len() - 1)
        .map(|l| l.message.len())
        .sum();
    assert!(kept <= 1000, "{kept}");
}

#[tokio::test]
async fn limits_and_crashes_fail_only_their_own_invocation() {
    let Some(f) = engine().await else { return };
    let cases = [
        (
            "while (true) {}",
            r#"{"timeout": 1}"#,
            ErrorCode::FunctionTimeLimitExceeded,
        ),
        (
            "const keep = []; for (;;) keep.push(new Array(1e6).fill(1))",
            r#"{"memorySize": 128, "timeout": 20}"#,
            ErrorCode::FunctionMemoryLimitExceeded,
        ),
        ("process.exit(3)", "{}", ErrorCode::FunctionInvocationFailed),
        (
            "setTimeout(() => { throw new Error('later') }, 1); return new Promise(() => {})",
            r#"{"timeout": 3}"#,
            ErrorCode::FunctionInvocationFailed,
        ),
        (
            "Promise.reject(new Error('nobody')); return new Promise(() => {})",
            r#"{"timeout": 3}"#,
            ErrorCode::FunctionInvocationFailed,
        ),
        (
            "process.kill(process.pid, 'SIGSEGV')",
            "{}",
            ErrorCode::FunctionInvocationFailed,
        ),
    ];
    for (attack, config, expected) in cases {
        let name = format!("case{}", attack.len());
        let hostile = function(
            &name,
            &[
                (
                    "index.js",
                    &format!(
                        "exports.main = async (e) => {{ if (!e.attack) return 'calm'; {attack} }}"
                    ),
                ),
                ("config.json", config),
            ],
        );
        let started = Instant::now();
        let (code, message) = code_of(&f, &hostile, r#"{"attack":true}"#).await;
        assert_eq!(code, expected, "{attack}: {message}");
        assert!(started.elapsed() < Duration::from_secs(25), "{attack}");
        assert_eq!(ok(&f, &hostile, "{}").await, r#""calm""#, "{attack}");
    }
    let exits = function(
        "exits",
        &[("index.js", "exports.main = async () => process.exit(3)")],
    );
    let (_, message) = code_of(&f, &exits, "{}").await;
    assert!(message.contains("exited with code 3"), "{message}");
}

#[tokio::test]
async fn concurrent_invocations_use_several_workers_up_to_the_limit() {
    let limits = EngineLimits {
        max_instances_per_function: 2,
        ..EngineLimits::default()
    };
    let Some(f) = engine_with(limits).await else {
        return;
    };
    let f = Arc::new(f);
    let slow = function(
        "slow",
        &[(
            "index.js",
            "exports.main = () => new Promise((r) => setTimeout(() => r(process.pid), 400))",
        )],
    );
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (f, slow) = (f.clone(), slow.clone());
            tokio::spawn(async move { ok(&f, &slow, "{}").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let request = InvocationRequest {
        request_id: RequestId::generate(),
        event: Event::Json(Bytes::from_static(b"{}")),
        origin: Default::default(),
        calls: None,
        deadline: Instant::now() + Duration::from_secs(3),
        accepts_event_stream: false,
    };
    let refused = f.engine.invoke(&slow, request).await.expect_err("refused");
    assert_eq!(refused.code, ErrorCode::FunctionExceedResourceLimit);
    let mut pids = Vec::new();
    for run in running {
        pids.push(run.await.unwrap());
    }
    assert_ne!(
        pids[0], pids[1],
        "two invocations at once ran in two workers"
    );
}

#[tokio::test]
async fn calls_of_a_function_bound_by_the_cpu_share_a_worker_per_core() {
    let Some(f) = engine().await else { return };
    let f = Arc::new(f);
    let busy = function(
        "busy",
        &[(
            "index.js",
            "exports.main = () => { const end = Date.now() + 20; while (Date.now() < end); return process.pid }",
        )],
    );
    ok(&f, &busy, "{}").await; // its worker tells the engine it runs the CPU
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let calls: Vec<_> = (0..cores * 2)
        .map(|_| {
            let (f, busy) = (f.clone(), busy.clone());
            tokio::spawn(async move { ok(&f, &busy, "{}").await })
        })
        .collect();
    let mut pids = std::collections::HashSet::new();
    for call in calls {
        pids.insert(call.await.unwrap());
    }
    assert!(
        pids.len() <= cores,
        "{} calls at once ran in {} workers on {cores} cores",
        cores * 2,
        pids.len()
    );
}

#[tokio::test]
async fn shutdown_leaves_no_worker_running() {
    let Some(f) = engine().await else { return };
    let pid = function(
        "pid",
        &[("index.js", "exports.main = async () => process.pid")],
    );
    let pid: u32 = ok(&f, &pid, "{}").await.parse().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    f.engine.shutdown().await;
    let gone = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "worker {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn text_and_binary_events_reach_the_handler_as_a_string_and_a_buffer() {
    let Some(f) = engine().await else { return };
    let echo = function(
        "echo",
        &[(
            "index.js",
            "exports.main = async (event) => [typeof event, Buffer.isBuffer(event), Buffer.isBuffer(event) ? event.toString('hex') : event]",
        )],
    );
    let text = call_with(&f, &echo, Event::Text("not {json}".into())).await;
    assert_eq!(
        text.result.unwrap().json().unwrap(),
        r#"["string",false,"not {json}"]"#
    );
    let bytes = Event::Binary(Bytes::from_static(&[0, 1, 254]));
    let binary = call_with(&f, &echo, bytes).await;
    assert_eq!(
        binary.result.unwrap().json().unwrap(),
        r#"["object",true,"0001fe"]"#
    );
}

#[tokio::test]
async fn idle_workers_are_ended_in_the_background_after_their_ttl() {
    let limits = EngineLimits {
        idle_instance_ttl: Duration::from_millis(500),
        ..EngineLimits::default()
    };
    let Some(f) = engine_with(limits).await else {
        return;
    };
    let add = function("add", &[("index.js", "exports.main = async () => 1")]);
    ok(&f, &add, "{}").await;
    assert_eq!(f.engine.usage().instances, 1);
    let _ = tokio::time::timeout(Duration::from_millis(2500), f.engine.background()).await;
    assert_eq!(f.engine.usage().instances, 0);
}

#[tokio::test]
async fn each_worker_has_a_temp_dir_of_its_own_that_goes_with_it() {
    let Some(f) = engine().await else { return };
    let source = "const fs = require('fs'), os = require('os'), path = require('path');\n\
                  exports.main = async () => { fs.writeFileSync(path.join(os.tmpdir(), 'mine'), 'x'); \
                  return [os.tmpdir(), os.homedir(), fs.readdirSync(os.tmpdir())] }";
    let one = function("one", &[("index.js", source)]);
    let two = function("two", &[("index.js", source)]);
    let seen = |out: InvocationOutcome| -> serde_json::Value {
        serde_json::from_str(out.result.unwrap().json().unwrap()).unwrap()
    };
    let first = seen(call(&f, &one, "{}").await);
    let second = seen(call(&f, &two, "{}").await);
    assert_ne!(first[0], second[0]);
    assert_eq!(first[0], first[1], "HOME is the temp dir too");
    assert_eq!(first[2], serde_json::json!(["mine"]), "nobody else's files");
    let temp = std::path::PathBuf::from(first[0].as_str().unwrap());
    assert!(temp.exists());
    f.engine.retire(&one.env, &one.name, None);
    eventually("the temp dir is removed", || !temp.exists()).await;
}

#[tokio::test]
async fn a_retired_versions_folder_goes_once_nothing_runs_it() {
    let Some(f) = engine().await else { return };
    let old = function("f", &[("index.js", "exports.main = async () => 1")]);
    ok(&f, &old, "{}").await;
    let folder = f.engine.shared.dir.packages.join(old.version.as_str());
    assert!(folder.exists());
    f.engine.retire(&old.env, &old.name, None);
    f.engine.reap_idle();
    eventually("the folder is removed", || !folder.exists()).await;
    // Run again (a past version named by X-Qualifier), it is written again.
    ok(&f, &old, "{}").await;
    assert!(folder.exists());
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn context_sse_streams_events_as_the_function_sends_them() {
    use http_body_util::BodyExt;
    let Some(f) = engine().await else { return };
    let source = r#"
exports.main = async (event, context) => {
  const sse = context.sse?.();
  if (!sse || sse.closed) return 'no stream';
  sse.send('first');
  await new Promise((r) => setTimeout(r, 30));
  sse.send({ event: 'tick', id: 'b', data: 'line 1\nline 2' });
  sse.end();
  return sse.closed;
};
"#;
    let function = function("sse", &[("index.js", source)]);
    assert_eq!(ok(&f, &function, "{}").await, "\"no stream\"");
    let request = InvocationRequest {
        request_id: RequestId::generate(),
        event: Event::Json(Bytes::from_static(b"{}")),
        origin: Default::default(),
        calls: None,
        deadline: Instant::now() + function.config.timeout(),
        accepts_event_stream: true,
    };
    let out = f.engine.invoke(&function, request).await.unwrap();
    let Ok(Output::Stream(stream)) = out.result else {
        panic!("a stream, got {:?}", out.result);
    };
    let mut body = stream.body;
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "data: first\n\n");
    let mut rest = String::new();
    while let Some(frame) = body.frame().await {
        rest.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap());
    }
    assert_eq!(rest, "event: tick\nid: b\ndata: line 1\ndata: line 2\n\n");
    assert!(body.end(crate::BodyEnd::Complete).result.is_ok());
}
