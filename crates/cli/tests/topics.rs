//! Published messages against a real `cloudlet serve`: fan-out to the
//! functions whose topic triggers match, with MQTT's wildcards, each
//! delivery an asynchronous invocation with its own retries and dead
//! letters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::TestServer;

/// Answers the message it was given.
const ECHO: &str = "exports.main = async (event) => event\n";
const FAILING: &str = "exports.main = async () => { throw new Error('no') }\n";

/// Deploys `name` subscribed to `filter`.
fn subscriber(server: &TestServer, root: &std::path::Path, name: &str, filter: &str, source: &str) {
    let config = json!({
        "asyncConfig": {"maxRetries": 0},
        "triggers": [{"name": "in", "type": "topic", "config": filter}],
    });
    let dir = support::write_js_function(root, name, source, &config.to_string());
    let out = server.cli(&["deploy", &dir]);
    assert!(out.status.success(), "{out:?}");
}

async fn publish(server: &TestServer, topic: &str, message: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!(
            "{}/v1/envs/default/topics/{topic}/messages",
            server.url
        ))
        .json(&message)
        .send()
        .await
        .unwrap()
}

/// The record of `id` once its status is `status`.
async fn record_when(server: &TestServer, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = reqwest::get(format!("{}/v1/invocations/{id}", server.url))
            .await
            .unwrap();
        if answer.status() == 200 {
            let record: Value = answer.json().await.unwrap();
            if record["status"] == status {
                return record;
            }
        }
        assert!(Instant::now() < deadline, "{id} never {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_message_reaches_each_subscriber_whose_filter_matches_its_topic() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    subscriber(&server, root.path(), "one-level", "sensors/+/temp", ECHO);
    subscriber(&server, root.path(), "all-sensors", "sensors/#", ECHO);
    subscriber(&server, root.path(), "lights", "lights/#", ECHO);
    let answer = publish(&server, "sensors/kitchen/temp", json!({"celsius": 21})).await;
    assert_eq!(answer.status(), 202);
    let published: Value = answer.json().await.unwrap();
    assert_eq!(published["deliveries"], 2);
    let id = published["messageId"].as_str().unwrap();
    for name in ["one-level", "all-sensors"] {
        let record = record_when(&server, &format!("msg:{id}:{name}"), "succeeded").await;
        assert_eq!(record["result"], r#"{"celsius":21}"#);
        assert_eq!(record["trigger"], "topic:sensors/kitchen/temp");
    }
    let missed = reqwest::get(format!("{}/v1/invocations/msg:{id}:lights", server.url))
        .await
        .unwrap();
    assert_eq!(missed.status(), 404);

    let nobody = publish(&server, "doors/front", json!({})).await;
    let nobody: Value = nobody.json().await.unwrap();
    assert_eq!(
        nobody["deliveries"], 0,
        "a topic without subscribers keeps nothing"
    );
    let wildcard = publish(&server, "sensors/+", json!({})).await;
    assert_eq!(wildcard.status(), 400);
}

#[tokio::test]
async fn a_failing_subscriber_becomes_a_dead_letter_and_the_others_are_not_touched() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    subscriber(&server, root.path(), "broken", "orders/#", FAILING);
    subscriber(&server, root.path(), "ledger", "orders/#", ECHO);
    let out = server.cli(&["publish", "orders/42", "--data", r#"{"total":9}"#]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("2 deliveries"), "{printed}");
    let id = printed.split_whitespace().next().unwrap();
    record_when(&server, &format!("msg:{id}:broken"), "failed").await;
    let ledger = record_when(&server, &format!("msg:{id}:ledger"), "succeeded").await;
    assert_eq!(ledger["result"], r#"{"total":9}"#);
    let dead: Value = reqwest::get(format!("{}/v1/envs/default/dead-letters", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dead = dead["deadLetters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["function"], "broken");
}

#[tokio::test]
async fn a_topic_trigger_with_a_misplaced_wildcard_is_refused_at_deploy() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let config = json!({"triggers": [{"name": "in", "type": "topic", "config": "a/#/b"}]});
    let dir = support::write_js_function(root.path(), "bad", ECHO, &config.to_string());
    let out = server.cli(&["deploy", &dir]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("# the whole last level"), "{stderr}");
}
