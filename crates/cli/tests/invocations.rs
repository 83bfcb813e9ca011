//! An env's invocations against a real `cloudlet serve`: listed newest
//! first, filtered and paged; tailed by `cloudlet logs --function --follow`;
//! and a queued one cancelled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::TestServer;

/// `add` logs its sum; `failing` throws; `flaky` fails its first attempt;
/// `slow` takes a second.
const FUNCTIONS: [(&str, &str); 4] = [
    (
        "add",
        "exports.main = async (e) => { console.log('sum ' + (e.x + e.y)); return e.x + e.y }\n",
    ),
    ("failing", "exports.main = async () => { throw new Error('no') }\n"),
    (
        "flaky",
        "let n = 0\nexports.main = async () => { n += 1; if (n === 1) throw new Error('first'); return n }\n",
    ),
    (
        "slow",
        "exports.main = () => new Promise((done) => setTimeout(() => done(1), 1000))\n",
    ),
];

fn serving() -> (TestServer, tempfile::TempDir) {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    for (name, source) in FUNCTIONS {
        let dir = support::write_js_function(root.path(), name, source, "{}");
        let out = server.cli(&["deploy", &dir]);
        assert!(out.status.success(), "{out:?}");
    }
    (server, root)
}

async fn invoke(server: &TestServer, name: &str, x: i64) {
    reqwest::Client::new()
        .post(format!("{}/v1/functions/{name}", server.url))
        .json(&json!({"x": x, "y": 1}))
        .send()
        .await
        .unwrap();
}

async fn list(server: &TestServer, query: &str) -> Value {
    let url = format!("{}/v1/envs/default/invocations?{query}", server.url);
    let answer = reqwest::get(url).await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

fn functions_of(page: &Value) -> Vec<String> {
    page["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["function"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn invocations_are_listed_newest_first_filtered_and_paged() {
    let (server, _root) = serving();
    invoke(&server, "add", 1).await;
    invoke(&server, "failing", 1).await;
    invoke(&server, "add", 2).await;
    let out = server.cli(&["invoke", "add", "--data", r#"{"x":3,"y":1}"#]);
    assert!(out.status.success(), "{out:?}");

    let all = list(&server, "").await;
    assert_eq!(functions_of(&all), ["add", "add", "failing", "add"]);
    assert_eq!(all["invocations"][0]["trigger"], "cli");
    assert_eq!(all["next"], Value::Null);
    assert_eq!(
        functions_of(&list(&server, "status=failed").await),
        ["failing"]
    );
    assert_eq!(
        list(&server, "function=add&trigger=http").await["invocations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let first = list(&server, "limit=3").await;
    assert_eq!(functions_of(&first).len(), 3);
    let next = first["next"].as_str().unwrap();
    let rest = list(&server, &format!("limit=3&before={next}")).await;
    assert_eq!(functions_of(&rest), ["add"]);

    let bad = reqwest::get(format!(
        "{}/v1/envs/default/invocations?status=done",
        server.url
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let listed = server.cli(&["invocations", "list", "--status", "failed"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("failing  failed") && listed.contains("FUNCTION_INVOCATION_FAILED"),
        "{listed}"
    );
}

#[tokio::test]
async fn logs_follow_prints_each_invocation_of_the_function_as_it_finishes() {
    let (server, _root) = serving();
    invoke(&server, "add", 1).await;
    let mut tail = Command::new(support::cloudlet_bin())
        .args(["logs", "--function", "add", "--follow"])
        .env("CLOUDLET_SERVER", &server.url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, read) = std::sync::mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = read.recv_timeout(left).expect("a line in time");
            if line.contains(text) {
                return;
            }
        }
    };
    wait_for("sum 2");
    invoke(&server, "failing", 1).await;
    invoke(&server, "add", 41).await;
    wait_for("sum 42");
    invoke(&server, "add", 99).await;
    wait_for("sum 100");
    let _ = tail.kill();
    let _ = tail.wait();
}

async fn enqueue(server: &TestServer, name: &str) -> String {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/functions/{name}", server.url))
        .header("x-invocation-type", "async")
        .body("{}")
        .send()
        .await
        .unwrap();
    answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The record at `url` once it has `status`.
async fn until_status(url: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let record: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        if record["status"] == status {
            return record;
        }
        assert!(Instant::now() < deadline, "never {status}: {record}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_queued_invocation_is_cancelled_and_a_running_or_unknown_one_is_not() {
    let (server, _root) = serving();
    let client = &reqwest::Client::new();
    let cancel = |id: String| {
        let url = format!("{}/v1/envs/default/invocations/{id}", server.url);
        async move { client.delete(url).send().await.unwrap().status() }
    };
    let id = enqueue(&server, "flaky").await;
    let record_url = format!("{}/v1/invocations/{id}", server.url);
    // Its first attempt failed: it waits a second or so for the next.
    until_status(&record_url, "retrying").await;
    let out = server.cli(&["invocations", "cancel", &id]);
    assert!(out.status.success(), "{out:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let record = until_status(&record_url, "cancelled").await;
    assert_eq!(
        record["attempts"].as_array().unwrap().len(),
        1,
        "it never ran again"
    );
    assert_eq!(cancel(id).await, 404, "it is no longer queued");
    assert_eq!(cancel("never-was".to_owned()).await, 404);

    let running = enqueue(&server, "slow").await;
    until_status(
        &format!("{}/v1/invocations/{running}", server.url),
        "running",
    )
    .await;
    assert_eq!(cancel(running).await, 409);
}
