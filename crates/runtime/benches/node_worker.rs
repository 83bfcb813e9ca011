//! The node engine without HTTP: the floor under the server's figures.
//!
//! A Rust client (the engine itself, no HTTP server and no records around
//! it) sends `examples/add`'s event to Node.js workers over the same Unix
//! socket and framing the server uses, one call at a time on one warm worker
//! (µs per call), then with CONCURRENCY calls in flight, as many workers as
//! that takes (calls per second). `bench/run.sh` compares the server's
//! throughput through the node engine with both.
//!
//! `cargo bench -p cloudlet-runtime --bench node_worker` (ROUNDS, CALLS,
//! CONCURRENCY and SECONDS as environment variables). Prints a skip line and
//! exits without measuring where no `node` is found.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_core::{EnvId, FunctionName, Package, RequestId};
use cloudlet_runtime::node::{NodeBinary, NodeEngine};
use cloudlet_runtime::{DeployedFunction, Engine, EngineLimits, Event, InvocationRequest};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn add() -> Arc<DeployedFunction> {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/add/index.js"
    ))
    .expect("examples/add/index.js is readable");
    let files = BTreeMap::from([("index.js".to_owned(), Bytes::from(source))]);
    let package = Package::from_files(files).expect("a valid package");
    Arc::new(DeployedFunction::new(
        EnvId::default_env(),
        FunctionName::parse("add").expect("a valid name"),
        Arc::new(package),
    ))
}

async fn call(engine: &NodeEngine, function: &Arc<DeployedFunction>) {
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
    let result = outcome.result.expect("add succeeds");
    assert_eq!(result.json(), Some("3"));
}

/// Sequential calls on one warm worker: the median µs per call.
async fn sequential(engine: &NodeEngine, function: &Arc<DeployedFunction>) -> Vec<f64> {
    let (rounds, calls) = (env_or("ROUNDS", 5), env_or("CALLS", 5_000));
    let mut per_call = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..calls {
            call(engine, function).await;
        }
        per_call.push(started.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    per_call
}

/// CONCURRENCY callers for SECONDS, each calling as soon as its last call
/// answered: calls per second, per round.
async fn concurrent(engine: &Arc<NodeEngine>, function: &Arc<DeployedFunction>) -> Vec<f64> {
    let rounds = env_or("ROUNDS", 5).min(3);
    let (callers, seconds) = (env_or("CONCURRENCY", 32), env_or("SECONDS", 4));
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let done = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(seconds as u64);
        let started = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let (engine, function, done) = (engine.clone(), function.clone(), done.clone());
                tokio::spawn(async move {
                    while Instant::now() < until {
                        call(&engine, &function).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a caller");
        }
        rates.push(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64());
    }
    rates
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // Two workers, as `cloudlet serve` has on this kind of machine.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let node = match NodeBinary::find(None).await {
            Ok(node) => node,
            Err(reason) => {
                println!("node engine: skipped ({reason})");
                return;
            }
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let engine = Arc::new(
            NodeEngine::new(node.clone(), dir.path(), EngineLimits::default()).expect("an engine"),
        );
        engine.prewarm().await;
        let function = add();
        for _ in 0..500 {
            call(&engine, &function).await; // the cold start, then V8's warm-up
        }
        let per_call = sequential(&engine, &function).await;
        println!(
            "node engine ({}), one warm worker, sequential: {:>7.2} µs/call",
            node.version,
            median(per_call)
        );
        let rates = concurrent(&engine, &function).await;
        println!(
            "node engine ({}), {} calls in flight: {:>9.0} calls/s",
            node.version,
            env_or("CONCURRENCY", 32),
            median(rates)
        );
        engine.shutdown().await;
    });
}
