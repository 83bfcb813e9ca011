//! The js engine's cost per warm invocation, without HTTP or records.
//!
//! Runs `examples/add` (and a callback-style and a logging handler) through
//! `Engine::invoke` on one instance, many times, and prints the median time
//! per invocation over several rounds. `bench/run.sh` measures the whole
//! server; this isolates the engine's share of it.
//!
//! `cargo bench -p cloudlet-runtime` (ROUNDS and CALLS as environment variables).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_core::{EnvId, FunctionName, Package, RequestId};
use cloudlet_runtime::js::JsEngine;
use cloudlet_runtime::{DeployedFunction, Engine, EngineLimits, Event, InvocationRequest};

/// The allocator the `cloudlet` binary uses, so the numbers match the server's.
#[global_allocator]
static GLOBAL: cloudlet_runtime::HeapMeter<mimalloc::MiMalloc> =
    cloudlet_runtime::HeapMeter(mimalloc::MiMalloc);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn function(name: &str, source: &str) -> Arc<DeployedFunction> {
    let files = BTreeMap::from([(
        "index.js".to_owned(),
        Bytes::copy_from_slice(source.as_bytes()),
    )]);
    let package = Package::from_files(files).expect("a valid package");
    Arc::new(DeployedFunction::new(
        EnvId::default_env(),
        FunctionName::parse(name).expect("a valid name"),
        Arc::new(package),
    ))
}

async fn measure(engine: &JsEngine, function: &Arc<DeployedFunction>, calls: usize) -> Duration {
    let started = Instant::now();
    for _ in 0..calls {
        let request = InvocationRequest {
            request_id: RequestId::generate(),
            event: Event::Json(Bytes::from_static(br#"{"x":1,"y":2}"#)),
            origin: Default::default(),
            calls: None,
            deadline: Instant::now() + Duration::from_secs(3),
            accepts_event_stream: false,
        };
        let outcome = engine
            .invoke(function, request)
            .await
            .expect("the engine accepts the call");
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }
    started.elapsed() / calls as u32
}

fn main() {
    let rounds = env_or("ROUNDS", 7);
    let calls = env_or("CALLS", 50_000);
    let add_source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/add/index.js"
    ))
    .expect("examples/add/index.js is readable");
    let cases = [
        ("add (examples/add, async)", function("add", &add_source)),
        (
            "callback handler",
            function(
                "callback",
                "exports.main = (event, context, callback) => callback(null, event.x + event.y)",
            ),
        ),
        (
            "returns an object, logs a line",
            function(
                "object",
                "exports.main = async (event) => { console.log('sum', event.x + event.y); return { sum: event.x + event.y } }",
            ),
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let engine = JsEngine::new(EngineLimits::default());
    println!(
        "js engine, warm invocations on one instance: median of {rounds} rounds of {calls} calls"
    );
    for (label, function) in &cases {
        let mut per_call: Vec<Duration> = runtime.block_on(async {
            measure(&engine, function, 100).await; // cold start and warm-up
            let mut times = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                times.push(measure(&engine, function, calls).await);
            }
            times
        });
        per_call.sort();
        let median = per_call[per_call.len() / 2];
        println!(
            "{label:34} {:>7.2} µs/call  (min {:.2}, max {:.2})",
            median.as_secs_f64() * 1e6,
            per_call[0].as_secs_f64() * 1e6,
            per_call[per_call.len() - 1].as_secs_f64() * 1e6
        );
    }
}
