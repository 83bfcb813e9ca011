//! The hostile corpus (`tests/hostile/`), run under a real `cloudlet serve`:
//! functions that loop, bomb memory, flood jobs, timers and logs, or poison
//! their results. Each folder's `expected.json` gives the code (or result) and
//! the time within which the server must answer when the function is told to
//! attack (`{"attack": true}`); told nothing, it answers `"calm"`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{examples_dir, TestServer};

/// The server's resident memory after the whole corpus, in MiB (documented in
/// README's "Limits"): every instance that bombed was freed.
const RSS_BOUND_MIB: u64 = 256;

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

struct Answer {
    status: u16,
    body: String,
    took: Duration,
}

async fn invoke(http: &reqwest::Client, server: &TestServer, name: &str, event: &str) -> Answer {
    let started = Instant::now();
    let response = http
        .post(format!("{}/v1/functions/{name}", server.url))
        .body(event.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name}: the server did not answer: {e}"));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    Answer {
        status,
        body,
        took: started.elapsed(),
    }
}

/// What is wrong with `answer` for the case's `expected.json`, if anything.
fn judge(expected: &Value, answer: &Answer) -> Option<String> {
    let within = Duration::from_secs_f64(expected["withinSeconds"].as_f64().unwrap());
    if answer.took > within {
        return Some(format!(
            "answered after {:?}, not within {within:?}",
            answer.took
        ));
    }
    if let Some(result) = expected["result"].as_str() {
        return (answer.status != 200 || answer.body != result)
            .then(|| format!("expected {result}, got {} {}", answer.status, answer.body));
    }
    let code = serde_json::from_str::<Value>(&answer.body)
        .ok()
        .and_then(|body| body["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let codes: Vec<&str> = expected["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    (!codes.contains(&code.as_str())).then(|| {
        format!(
            "expected one of {codes:?}, got {} {}",
            answer.status, answer.body
        )
    })
}

#[tokio::test]
async fn every_hostile_function_gets_its_code_in_time_and_the_server_keeps_serving() {
    let server = TestServer::start(&[]);
    let http = reqwest::Client::new();
    let add = examples_dir().join("add");
    assert!(server
        .cli(&["deploy", add.to_str().unwrap()])
        .status
        .success());
    let cases = corpus();
    for case in &cases {
        let deployed = server.cli(&["deploy", case.to_str().unwrap()]);
        assert!(deployed.status.success(), "{case:?} deploys: {deployed:?}");
    }

    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let expected: Value =
            serde_json::from_slice(&std::fs::read(case.join("expected.json")).unwrap()).unwrap();
        let attack = invoke(&http, &server, name, r#"{"attack":true}"#).await;
        if let Some(problem) = judge(&expected, &attack) {
            failures.push(format!("{name}: {problem}"));
        }
        let again = invoke(&http, &server, name, "{}").await;
        if again.body != r#""calm""# {
            failures.push(format!(
                "{name}: the next invocation answered {}",
                again.body
            ));
        }
        let other = invoke(&http, &server, "add", r#"{"x":1,"y":2}"#).await;
        if other.body != "3" {
            failures.push(format!("{name}: add answered {} afterwards", other.body));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let rss = support::rss_mib(server.pid());
    assert!(
        rss <= RSS_BOUND_MIB,
        "the server holds {rss} MiB after the corpus, more than {RSS_BOUND_MIB}"
    );
}
