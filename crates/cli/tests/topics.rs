//! Published messages against a real `cloudlet serve`: fan-out to the
//! functions whose topic triggers match, with MQTT's wildcards, each
//! delivery an asynchronous invocation with its own retries and dead
//! letters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
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
    let stderr = server.deploy_refused(&dir);
    assert!(stderr.contains("# the whole last level"), "{stderr}");
}

/// Publishes with `linkedge-core-sdk`'s `IoTData`, callback and promise,
/// and answers what each publish gave.
const PUBLISHER: &str = r#"const { IoTData } = require('linkedge-core-sdk')
const iot = new IoTData()
const attempt = (params) => new Promise((resolve) => iot.publish(params,
  (err, id) => resolve(err ? { err: err.message, code: err.code } : { id })))
exports.main = async () => ({
  text: await attempt({ topic: 'sensors/hall/temp', payload: 'warm' }),
  object: { id: await iot.publish({ topic: 'sensors/hall/temp', payload: { celsius: 22 } }) },
  bytes: await attempt({ topic: 'sensors/hall/temp', payload: Buffer.from([1, 2]) }),
  nobody: await attempt({ topic: 'doors/front', payload: 'x' }),
  noTopic: await attempt({ payload: 'x' }),
  wildcard: await attempt({ topic: 'sensors/#', payload: 'x' }),
})"#;

/// Says what kind of event it got.
const KIND: &str = r#"exports.main = async (event) => Buffer.isBuffer(event)
  ? 'buffer ' + event.toString('hex')
  : event"#;

#[tokio::test]
async fn a_js_function_publishes_with_iot_data_and_each_subscriber_gets_the_message() {
    publishing_from_a_function(json!({})).await;
}

#[tokio::test]
async fn a_node_function_publishes_with_iot_data_and_each_subscriber_gets_the_message() {
    if !support::node_found() {
        eprintln!("skipped: no node on PATH for the node engine");
        return;
    }
    publishing_from_a_function(json!({"runtime": "Nodejs18.15"})).await;
}

/// `IoTData.publish` from a function deployed with `engine`'s config, to a
/// subscriber in the same engine.
async fn publishing_from_a_function(engine: Value) {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let mut subscribed = engine.clone();
    subscribed["triggers"] = json!([{"name": "in", "type": "topic", "config": "sensors/+/temp"}]);
    for (name, source, config) in [
        ("publisher", PUBLISHER, &engine),
        ("thermo", KIND, &subscribed),
    ] {
        let dir = support::write_js_function(root.path(), name, source, &config.to_string());
        let out = server.cli(&["deploy", &dir]);
        assert!(out.status.success(), "{out:?}");
    }
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/v1/envs/default/functions/publisher",
            server.url
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let publisher = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let out: Value = answer.json().await.unwrap();
    for (field, result) in [
        ("text", r#""warm""#),
        ("object", r#"{"celsius":22}"#),
        ("bytes", r#""buffer 0102""#),
    ] {
        let id = out[field]["id"].as_str().unwrap_or_else(|| panic!("{out}"));
        let record = record_when(&server, &format!("msg:{id}:thermo"), "succeeded").await;
        assert_eq!(record["result"], result, "{field}");
        assert_eq!(record["trigger"], "topic:sensors/hall/temp");
        assert_eq!(record["caller"]["requestId"], publisher.as_str());
    }
    let nobody = out["nobody"]["id"].as_str().unwrap();
    let missed = reqwest::get(format!("{}/v1/invocations/msg:{nobody}:thermo", server.url))
        .await
        .unwrap();
    assert_eq!(missed.status(), 404);
    assert_eq!(out["noTopic"]["code"], "INVALID_PARAM", "{out}");
    assert!(out["noTopic"]["err"]
        .as_str()
        .unwrap()
        .contains("\"topic\""));
    assert_eq!(out["wildcard"]["code"], "INVALID_PARAM", "{out}");
}

#[tokio::test]
async fn a_function_that_republishes_what_it_gets_stops_at_the_depth_limit() {
    let server = TestServer::start(&["--max-call-depth", "3"]);
    let root = tempfile::tempdir().unwrap();
    let relay = r#"const { IoTData } = require('linkedge-core-sdk')
exports.main = async (event) => ({
  n: event.n,
  next: await new IoTData().publish({ topic: 'loop', payload: { n: event.n + 1 } })
    .then(() => 'published', (err) => err.code),
})"#;
    subscriber(&server, root.path(), "relay", "loop", relay);
    let answer = publish(&server, "loop", json!({"n": 0})).await;
    assert_eq!(answer.status(), 202);
    let listed = format!(
        "{}/v1/envs/default/invocations?function=relay&status=succeeded",
        server.url
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut page = Value::Null;
    while page["invocations"].as_array().map_or(0, Vec::len) < 4 {
        assert!(Instant::now() < deadline, "the relay ran {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = reqwest::get(&listed).await.unwrap().json().await.unwrap();
    }
    // Time for a fifth delivery, which must not come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page: Value = reqwest::get(&listed).await.unwrap().json().await.unwrap();
    let listed = page["invocations"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "{page}");
    let mut results = Vec::new();
    for invocation in listed {
        let id = invocation["requestId"].as_str().unwrap();
        let record = record_when(&server, id, "succeeded").await;
        results.push(serde_json::from_str::<Value>(record["result"].as_str().unwrap()).unwrap());
    }
    results.sort_by_key(|result| result["n"].as_i64());
    assert_eq!(
        results,
        vec![
            json!({"n": 0, "next": "published"}),
            json!({"n": 1, "next": "published"}),
            json!({"n": 2, "next": "published"}),
            json!({"n": 3, "next": "EXCEED_CALL_DEPTH_LIMIT"}),
        ]
    );
}

#[tokio::test]
async fn redeploying_a_function_replaces_its_triggers_and_removing_it_ends_them() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    subscriber(&server, root.path(), "watcher", "doors/#", ECHO);
    let doors: Value = publish(&server, "doors/back", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doors["deliveries"], 1);
    subscriber(&server, root.path(), "watcher", "windows/#", ECHO);
    let doors: Value = publish(&server, "doors/front", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doors["deliveries"], 0, "the old filter is gone");
    let windows: Value = publish(&server, "windows/attic", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(windows["deliveries"], 1);
    let listed: Value = reqwest::get(format!("{}/v1/envs/default/triggers", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let triggers = listed["triggers"].as_array().unwrap();
    assert_eq!(triggers.len(), 1, "{listed}");
    assert_eq!(triggers[0]["config"], "windows/#");
    assert!(server.cli(&["functions", "rm", "watcher"]).status.success());
    let removed: Value = publish(&server, "windows/attic", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        removed["deliveries"], 0,
        "a removed function subscribes to nothing"
    );
}

#[tokio::test]
async fn an_http_function_with_a_trigger_is_refused_at_deploy() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let config = json!({"triggers": [{"name": "in", "type": "topic", "config": "a/b"}]});
    let dir = support::write_function(
        root.path(),
        "web",
        &[
            ("scf_bootstrap", "#!/bin/sh\nexec node app.js\n"),
            ("app.js", ""),
            ("config.json", &config.to_string()),
        ],
    );
    let bootstrap = std::path::Path::new(&dir).join("scf_bootstrap");
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = server.deploy_refused(&dir);
    assert!(stderr.contains("an HTTP function"), "{stderr}");
}

#[tokio::test]
async fn the_tcb_admin_route_publishes_with_cloudlets_messages_publish_action() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    subscriber(&server, root.path(), "echo", "a/b", ECHO);
    let body = json!({"action": "messages.publish", "topic": "a/b", "request_data": r#"{"x":1}"#});
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/admin", server.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["deliveries"], 1, "{answer}");
    let id = answer["data"]["messageId"].as_str().unwrap();
    let record = record_when(&server, &format!("msg:{id}:echo"), "succeeded").await;
    assert_eq!(record["result"], r#"{"x":1}"#);
}

#[tokio::test]
async fn messages_share_the_async_size_limit_and_the_envs_queue_bound() {
    let server = TestServer::start(&[
        "--max-queued-per-env",
        "2",
        "--max-async-event-bytes",
        "1024",
    ]);
    let root = tempfile::tempdir().unwrap();
    // One delivery at a time, each held a while: the others stay queued.
    let slow = "exports.main = () => new Promise((r) => setTimeout(() => r(1), 3000))\n";
    let config = json!({
        "timeout": 10,
        "asyncConfig": {"maxConcurrency": 1},
        "triggers": [{"name": "in", "type": "topic", "config": "jobs"}],
    });
    let dir = support::write_js_function(root.path(), "slow", slow, &config.to_string());
    assert!(server.cli(&["deploy", &dir]).status.success());
    let big = publish(&server, "jobs", json!({"n": "x".repeat(2000)})).await;
    assert_eq!(big.status(), 413);
    for n in 0..2 {
        assert_eq!(
            publish(&server, "jobs", json!({ "n": n })).await.status(),
            202
        );
    }
    let refused = publish(&server, "jobs", json!({"n": 2})).await;
    assert_eq!(refused.status(), 429);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "EXCEED_ASYNC_QUEUE_LIMIT");
}
