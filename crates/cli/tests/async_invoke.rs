//! Asynchronous invocation on the invoke API against a real `cloudlet
//! serve`: accepted onto the durable queue with a `202`, run in the
//! background with a record under its request ID, retried after a function
//! error, and refused at once when it could never run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::TestServer;

/// Fails on its first two attempts in an instance, then answers the sum.
const FLAKY: &str = r"let attempts = 0
exports.main = async (event) => {
  attempts += 1
  console.log('attempt ' + attempts)
  if (attempts < 3) throw new Error('not yet')
  return event.x + event.y
}
";

fn deploy(server: &TestServer, name: &str, source: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = support::write_js_function(root.path(), name, source, "{}");
    let out = server.cli(&["deploy", &dir]);
    assert!(out.status.success(), "{out:?}");
    root
}

async fn invoke_async(server: &TestServer, name: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/functions/{name}", server.url))
        .header("x-invocation-type", "async")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The record of `request_id` once `done` says it is final, within 10 s.
async fn record_when(
    server: &TestServer,
    request_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    record_within(server, request_id, Duration::from_secs(10), done).await
}

/// The record of `request_id` once `done` says it is final, within `within`.
async fn record_within(
    server: &TestServer,
    request_id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let answer = reqwest::get(format!("{}/v1/invocations/{request_id}", server.url))
            .await
            .unwrap();
        if answer.status() == 200 {
            let record: Value = answer.json().await.unwrap();
            if done(&record) {
                return record;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no final record for {request_id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_accepted_invocation_answers_202_and_runs_with_a_record() {
    let server = TestServer::start(&[]);
    let _root = deploy(&server, "add", "exports.main = async (e) => e.x + e.y\n");
    let answer = invoke_async(&server, "add", json!({"x": 1, "y": 2}).to_string()).await;
    assert_eq!(answer.status(), 202);
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body, json!({"requestId": id}));
    let record = record_when(&server, &id, |r| r["status"] == "succeeded").await;
    assert_eq!(record["result"], "3");
}

#[tokio::test]
async fn a_request_id_accepted_before_is_answered_with_the_same_invocation() {
    let server = TestServer::start(&[]);
    let _root = deploy(&server, "add", "exports.main = async (e) => e.x + e.y\n");
    let send = || {
        reqwest::Client::new()
            .post(format!("{}/v1/functions/add", server.url))
            .header("x-invocation-type", "Event")
            .header("x-request-id", "order-42")
            .body(r#"{"x":1,"y":2}"#)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 202);
    let again = send().await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["x-request-id"], "order-42");
    record_when(&server, "order-42", |r| r["status"] == "succeeded").await;
}

#[tokio::test]
async fn an_invocation_that_could_never_run_is_refused_at_once() {
    let server = TestServer::start(&[]);
    let _root = deploy(&server, "add", "exports.main = async (e) => e.x + e.y\n");
    let missing = invoke_async(&server, "nobody", "{}".into()).await;
    assert_eq!(missing.status(), 404);
    let big = json!({"blob": "x".repeat(300 * 1024)}).to_string();
    let too_big = invoke_async(&server, "add", big).await;
    assert_eq!(too_big.status(), 413);
    let bad = invoke_async(&server, "add", "{not json".into()).await;
    assert_eq!(bad.status(), 400);
    let unknown_kind = reqwest::Client::new()
        .post(format!("{}/v1/functions/add", server.url))
        .header("x-invocation-type", "sometimes")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_kind.status(), 400);
}

#[tokio::test]
async fn a_function_error_is_retried_until_an_attempt_succeeds() {
    let server = TestServer::start(&[]);
    let _root = deploy(&server, "flaky", FLAKY);
    let answer = invoke_async(&server, "flaky", r#"{"x":2,"y":3}"#.into()).await;
    assert_eq!(answer.status(), 202);
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let retrying = record_when(&server, &id, |r| r["status"] == "retrying").await;
    assert!(retrying["nextAttemptAt"].as_i64().is_some(), "{retrying}");
    assert_eq!(retrying["attempts"][0]["error"]["message"], "not yet");
    let record = record_when(&server, &id, |r| r["status"] == "succeeded").await;
    assert_eq!(record["result"], "5");
    let logs = record["logs"].to_string();
    assert!(logs.contains("attempt 3"), "{logs}");
    let attempts: Vec<(u64, &str)> = record["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["number"].as_u64().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        attempts,
        [(1, "failed"), (2, "failed"), (3, "succeeded")],
        "{record}"
    );
    assert!(record["attempts"][2]["durationUs"].as_u64().is_some());
}

#[tokio::test]
async fn an_invocation_running_when_the_server_is_killed_runs_again_after_a_restart() {
    let server = TestServer::start(&[]);
    let slow = "exports.main = async (e) => { await new Promise((r) => setTimeout(r, 1000)); return e.x + e.y }\n";
    let _root = deploy(&server, "slow", slow);
    let answer = invoke_async(&server, "slow", r#"{"x":4,"y":5}"#.into()).await;
    assert_eq!(answer.status(), 202);
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    record_when(&server, &id, |r| r["status"] == "running").await;
    let data = server.kill();
    let server = TestServer::start_in(data, &[]);
    // The dead worker's lease runs out (30 s), then the invocation runs again.
    let record = record_within(&server, &id, Duration::from_secs(60), |r| {
        r["status"] == "succeeded"
    })
    .await;
    assert_eq!(record["result"], "9");
    let lost = &record["attempts"][0];
    assert_eq!(lost["number"], 1, "{record}");
    assert!(lost.get("startedAt").is_none(), "{lost}");
    assert_eq!(lost["error"]["code"], "SYS_ERR");
    assert_eq!(record["attempts"][1]["status"], "succeeded");
}

#[tokio::test]
async fn an_invocation_that_keeps_failing_becomes_a_dead_letter_that_can_be_re_driven_and_purged() {
    let server = TestServer::start(&[]);
    let failing = "exports.main = async () => { throw new Error('always') }\n";
    let _root = deploy(&server, "failing", failing);
    let answer = invoke_async(&server, "failing", "{}".into()).await;
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let letters = format!("{}/v1/envs/default/dead-letters", server.url);
    // Three attempts, 1 s and 2 s apart.
    let dead = dead_letters_when(&letters, |list| list.len() == 1).await;
    assert_eq!(dead[0]["requestId"], id);
    assert_eq!(dead[0]["attempts"], 3);
    assert_eq!(dead[0]["reason"], "failed 3 times; the last: always");
    assert_eq!(dead[0]["eventKind"], "json");
    assert_eq!(dead[0]["event"], "{}");
    assert_eq!(dead[0]["history"].as_array().unwrap().len(), 3, "{dead:?}");
    let record = record_when(&server, &id, |r| r["status"] == "failed").await;
    assert_eq!(record["error"]["message"], "always");

    let listed = server.cli(&["dead-letters", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains(&id) && listed.contains("3 attempts"),
        "{listed}"
    );

    let redriven = server.cli(&["dead-letters", "redrive", &id]);
    assert!(redriven.status.success(), "{redriven:?}");
    dead_letters_when(&letters, |list| list.is_empty()).await;
    dead_letters_when(&letters, |list| list.len() == 1).await;
    let purged = server.cli(&["dead-letters", "purge"]);
    assert_eq!(
        String::from_utf8(purged.stdout).unwrap(),
        "purged 1 dead letters from env default\n"
    );
    dead_letters_when(&letters, |list| list.is_empty()).await;
    let unknown = reqwest::Client::new()
        .post(format!("{letters}/{id}/redrive"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// The dead letters at `url` once `done` says so, within 15 s.
async fn dead_letters_when(url: &str, done: impl Fn(&Vec<Value>) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        let list = answer["deadLetters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "dead letters stayed {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Answers the event it was given, so that its record shows it.
const SINK: &str = "exports.main = async (event) => event\n";

#[tokio::test]
async fn a_success_goes_to_the_destination_config_json_names() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    for (name, source, config) in [
        ("sink", SINK, "{}"),
        (
            "add",
            "exports.main = async (e) => e.x + e.y\n",
            r#"{"asyncConfig": {"onSuccess": "sink"}}"#,
        ),
    ] {
        let dir = support::write_js_function(root.path(), name, source, config);
        let out = server.cli(&["deploy", &dir]);
        assert!(out.status.success(), "{out:?}");
    }
    let answer = invoke_async(&server, "add", json!({"x": 1, "y": 2}).to_string()).await;
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let sent = record_when(&server, &format!("{id}:onSuccess"), |r| {
        r["status"] == "succeeded"
    })
    .await;
    assert_eq!(sent["trigger"], "destination");
    assert_eq!(sent["caller"]["requestId"], id.as_str());
    let event: Value = serde_json::from_str(sent["result"].as_str().unwrap()).unwrap();
    assert_eq!(event["requestContext"]["condition"], "Success");
    assert_eq!(event["requestContext"]["functionName"], "add");
    assert_eq!(event["requestPayload"], json!({"x": 1, "y": 2}));
    assert_eq!(event["responsePayload"], 3);
    assert_eq!(event["record"]["requestId"], id.as_str());
}

#[tokio::test]
async fn settings_set_by_the_cli_take_away_the_retries_and_send_the_failure_on() {
    let server = TestServer::start(&[]);
    let _sink = deploy(&server, "sink", SINK);
    let failing = "exports.main = async () => { throw new TypeError('always') }\n";
    let _root = deploy(&server, "failing", failing);
    let set = server.cli(&[
        "functions",
        "async-config",
        "failing",
        "--max-retries",
        "0",
        "--on-failure",
        "sink",
    ]);
    assert!(set.status.success(), "{set:?}");
    let shown: Value = serde_json::from_slice(&set.stdout).unwrap();
    assert_eq!(shown["effective"]["maxRetries"], 0);
    assert_eq!(shown["effective"]["maxEventAgeSeconds"], 21600);
    assert_eq!(shown["own"]["onFailure"], "sink");

    let answer = invoke_async(&server, "failing", r#"{"n":7}"#.into()).await;
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let record = record_when(&server, &id, |r| r["status"] == "failed").await;
    assert_eq!(record["attempts"].as_array().unwrap().len(), 1, "{record}");
    let sent = record_when(&server, &format!("{id}:onFailure"), |r| {
        r["status"] == "succeeded"
    })
    .await;
    let event: Value = serde_json::from_str(sent["result"].as_str().unwrap()).unwrap();
    assert_eq!(event["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(event["requestPayload"], json!({"n": 7}));
    assert_eq!(event["responsePayload"]["errorMessage"], "always");
    assert_eq!(event["responsePayload"]["errorType"], "TypeError");
}

#[tokio::test]
async fn settings_out_of_range_or_naming_no_function_are_refused() {
    let server = TestServer::start(&[]);
    let _root = deploy(&server, "add", "exports.main = async (e) => e.x + e.y\n");
    let url = format!("{}/v1/envs/default/functions/add/async-config", server.url);
    let client = reqwest::Client::new();
    for (body, says) in [
        (json!({"maxRetries": 9}), "maxRetries"),
        (json!({"maxEventAgeSeconds": 10}), "maxEventAgeSeconds"),
        (json!({"onFailure": "nobody"}), "nobody"),
        (json!({"retries": 1}), "retries"),
    ] {
        let answer = client.put(&url).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{body}");
        let error: Value = answer.json().await.unwrap();
        assert!(error["message"].as_str().unwrap().contains(says), "{error}");
    }
    let shown: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(shown["own"], Value::Null);
    assert_eq!(shown["effective"]["maxRetries"], 2);
    let missing = client
        .put(format!(
            "{}/v1/envs/default/functions/nobody/async-config",
            server.url
        ))
        .json(&json!({"maxRetries": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// Takes 600 ms; runs one asynchronous invocation at a time.
const ONE_AT_A_TIME: &str =
    "exports.main = (e) => new Promise((done) => setTimeout(() => done(e.n), 600))\n";

fn deploy_one_at_a_time(server: &TestServer) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let config = r#"{"asyncConfig": {"maxConcurrency": 1}}"#;
    let dir = support::write_js_function(root.path(), "serial", ONE_AT_A_TIME, config);
    let out = server.cli(&["deploy", &dir]);
    assert!(out.status.success(), "{out:?}");
    root
}

#[tokio::test]
async fn a_function_at_its_limit_starts_its_next_invocation_as_soon_as_one_ends() {
    let server = TestServer::start(&[]);
    let _root = deploy_one_at_a_time(&server);
    let mut ids = Vec::new();
    for n in 0..3 {
        let answer = invoke_async(&server, "serial", json!({ "n": n }).to_string()).await;
        assert_eq!(answer.status(), 202);
        ids.push(
            answer.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut spans = Vec::new();
    for id in &ids {
        let record = record_when(&server, id, |r| r["status"] == "succeeded").await;
        let attempt = &record["attempts"][0];
        let start = attempt["startedAt"].as_i64().unwrap();
        spans.push((
            start,
            start + attempt["durationUs"].as_i64().unwrap() / 1000,
        ));
    }
    spans.sort_unstable();
    // No enqueue comes to wake the worker after the third: the end of an
    // attempt must, or the next would wait for the queue's poll (a second).
    for pair in spans.windows(2) {
        let gap = pair[1].0 - pair[0].1;
        assert!(gap < 250, "{gap} ms between attempts: {spans:?}");
    }
}

#[tokio::test]
async fn a_function_runs_no_more_at_once_than_its_max_concurrency_and_the_queue_shows_it() {
    let server = TestServer::start(&[]);
    let _root = deploy_one_at_a_time(&server);
    let mut ids = Vec::new();
    for n in 0..3 {
        let out = server.cli(&[
            "invoke",
            "serial",
            "--async",
            "--data",
            &format!(r#"{{"n":{n}}}"#),
        ]);
        assert!(out.status.success(), "{out:?}");
        ids.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    let stats: Value = reqwest::get(format!("{}/v1/envs/default/queue", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let serial = &stats["functions"][0];
    assert_eq!(serial["function"], "serial", "{stats}");
    assert!(serial["running"].as_u64().unwrap() <= 1, "{stats}");
    assert_eq!(stats["depth"], 3, "{stats}");
    assert!(serial["oldestAgeMs"].as_i64().is_some(), "{stats}");
    let shown = String::from_utf8(server.cli(&["queue"]).stdout).unwrap();
    assert!(shown.contains("serial"), "{shown}");

    let mut spans = Vec::new();
    for id in &ids {
        let record = record_when(&server, id, |r| r["status"] == "succeeded").await;
        let attempt = &record["attempts"][0];
        let start = attempt["startedAt"].as_i64().unwrap();
        let end = start + attempt["durationUs"].as_i64().unwrap() / 1000;
        spans.push((start, end));
    }
    spans.sort_unstable();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1 - 5, "attempts overlapped: {spans:?}");
    }
}

#[tokio::test]
async fn a_full_queue_refuses_with_429_and_retry_after_and_takes_more_once_it_drains() {
    let server = TestServer::start(&[
        "--max-queued-per-env",
        "2",
        "--max-async-event-bytes",
        "1024",
    ]);
    let _root = deploy_one_at_a_time(&server);
    let big = json!({"n": "x".repeat(2000)}).to_string();
    assert_eq!(invoke_async(&server, "serial", big).await.status(), 413);
    for n in 0..2 {
        let answer = invoke_async(&server, "serial", json!({ "n": n }).to_string()).await;
        assert_eq!(answer.status(), 202);
    }
    let refused = invoke_async(&server, "serial", json!({"n": 2}).to_string()).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "EXCEED_ASYNC_QUEUE_LIMIT");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = invoke_async(&server, "serial", json!({"n": 3}).to_string()).await;
        if answer.status() == 202 {
            break;
        }
        assert_eq!(answer.status(), 429);
        assert!(Instant::now() < deadline, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_invocation_whose_age_runs_out_is_expired_and_sent_to_its_failure_destination() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let failing = "exports.main = async () => { throw new Error('still down') }\n";
    let config =
        r#"{"asyncConfig": {"maxRetries": 8, "maxEventAgeSeconds": 60, "onFailure": "sink"}}"#;
    for (name, source, config) in [("sink", SINK, "{}"), ("failing", failing, config)] {
        let dir = support::write_js_function(root.path(), name, source, config);
        let out = server.cli(&["deploy", &dir]);
        assert!(out.status.success(), "{out:?}");
    }
    let answer = invoke_async(&server, "failing", "{}".into()).await;
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Retried after about 1, 2, 4, 8, 16 and 32 s: the sixth retry falls
    // past the minute the function allows.
    let record = record_within(&server, &id, Duration::from_secs(90), |r| {
        r["status"] == "expired"
    })
    .await;
    assert_eq!(record["error"]["code"], "EVENT_AGE_EXCEEDED", "{record}");
    assert!(
        record["attempts"].as_array().unwrap().len() >= 5,
        "{record}"
    );
    let sent = record_when(&server, &format!("{id}:onFailure"), |r| {
        r["status"] == "succeeded"
    })
    .await;
    let event: Value = serde_json::from_str(sent["result"].as_str().unwrap()).unwrap();
    assert_eq!(event["requestContext"]["condition"], "EventAgeExceeded");
    let letters = format!("{}/v1/envs/default/dead-letters", server.url);
    let dead = dead_letters_when(&letters, |list| list.len() == 1).await;
    assert_eq!(dead[0]["requestId"], id.as_str());
    assert_eq!(dead[0]["reason"], "expired");
}
