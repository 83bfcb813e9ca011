//! Timer triggers against a real `cloudlet serve`: a function's
//! `config.json` timer fires it with CloudBase's timer event through the
//! durable queue, once per firing across a restart, in the server's zone;
//! removing the function ends its timers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::TestServer;

/// Answers its event, so that its records show each firing's.
const TICK: &str = "exports.main = async (event) => event\n";

fn deploy_tick(server: &TestServer, root: &std::path::Path, cron: &str) {
    let config = json!({
        "triggers": [{"name": "tick", "type": "timer", "config": cron, "message": "hello"}]
    });
    let dir = support::write_js_function(root, "ticker", TICK, &config.to_string());
    let out = server.cli(&["deploy", &dir]);
    assert!(out.status.success(), "{out:?}");
}

/// The ticker's records, oldest first.
async fn firings(server: &TestServer) -> Vec<Value> {
    let url = format!(
        "{}/v1/envs/default/invocations?trigger=timer:tick&limit=1000",
        server.url
    );
    let page: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut listed = page["invocations"].as_array().unwrap().clone();
    listed.reverse();
    listed
}

/// The due time (Unix seconds) a firing's request ID names.
fn due_of(firing: &Value) -> i64 {
    let id = firing["requestId"].as_str().unwrap();
    id.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_timer_fires_its_function_with_cloudbases_event_until_the_function_goes() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    deploy_tick(&server, root.path(), "*/2 * * * * * *");
    let deadline = Instant::now() + Duration::from_secs(15);
    let fired = loop {
        let fired = firings(&server).await;
        if fired.iter().filter(|f| f["status"] == "succeeded").count() >= 2 {
            break fired;
        }
        assert!(
            Instant::now() < deadline,
            "the timer never fired twice: {fired:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let first = fired.iter().find(|f| f["status"] == "succeeded").unwrap();
    let record: Value = reqwest::get(format!(
        "{}/v1/invocations/{}",
        server.url,
        first["requestId"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let event: Value = serde_json::from_str(record["result"].as_str().unwrap()).unwrap();
    assert_eq!(event["Type"], "Timer");
    assert_eq!(event["TriggerName"], "tick");
    assert_eq!(event["Message"], "hello");
    let time = event["Time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 20, "{time}");
    assert_eq!(due_of(first) % 2, 0, "every even second");

    let listed = String::from_utf8(server.cli(&["triggers", "list"]).stdout).unwrap();
    assert!(
        listed.contains("ticker") && listed.contains("*/2 * * * * * *"),
        "{listed}"
    );

    assert!(server.cli(&["functions", "rm", "ticker"]).status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = firings(&server).await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        firings(&server).await.len(),
        before,
        "a removed function's timer ends"
    );
}

#[tokio::test]
async fn every_firing_runs_once_across_a_kill_and_the_latest_missed_one_runs_at_the_restart() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    deploy_tick(&server, root.path(), "* * * * * * *");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let data = server.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let server = TestServer::start_in(data, &[]);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let fired = firings(&server).await;
    let mut dues: Vec<i64> = fired.iter().map(due_of).collect();
    dues.sort_unstable();
    let distinct = {
        let mut d = dues.clone();
        d.dedup();
        d.len()
    };
    assert_eq!(distinct, dues.len(), "a firing ran twice: {dues:?}");
    // While the server ran, every second fired; across the kill, the
    // seconds it was down are skipped but for the latest, which ran at the
    // restart: one gap at most.
    let gaps = dues.windows(2).filter(|pair| pair[1] - pair[0] > 1).count();
    assert!(gaps <= 1, "{dues:?}");
    assert!(dues.len() >= 6, "{dues:?}");
}

#[tokio::test]
async fn a_timer_is_read_in_the_servers_zone() {
    let server = TestServer::start(&["--timer-utc-offset", "-05:00"]);
    let root = tempfile::tempdir().unwrap();
    deploy_tick(&server, root.path(), "0 0 2 * * * *");
    let listed: Value = reqwest::get(format!("{}/v1/envs/default/triggers", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = listed["triggers"][0]["nextFiring"].as_i64().unwrap();
    assert_eq!(
        next % 86_400_000,
        7 * 3_600_000,
        "02:00 at UTC-5 is 07:00 UTC"
    );
}

#[tokio::test]
async fn a_bad_cron_expression_is_refused_at_deploy_with_the_reason() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let config = json!({"triggers": [{"name": "t", "type": "timer", "config": "0 0 2 1 * *"}]});
    let dir = support::write_js_function(root.path(), "bad", TICK, &config.to_string());
    let stderr = server.deploy_refused(&dir);
    assert!(stderr.contains("has 6 fields"), "{stderr}");
}

#[tokio::test]
async fn a_redeploy_replaces_the_timer_with_the_new_versions() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    deploy_tick(&server, root.path(), "* * * * * * *");
    let deadline = Instant::now() + Duration::from_secs(10);
    while firings(&server).await.is_empty() {
        assert!(Instant::now() < deadline, "the timer never fired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config =
        json!({"triggers": [{"name": "tock", "type": "timer", "config": "* * * * * * *"}]});
    let dir = support::write_js_function(root.path(), "ticker", TICK, &config.to_string());
    assert!(server.cli(&["deploy", &dir]).status.success());
    // A firing queued as the deploy landed may still finish.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ticks = firings(&server).await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        firings(&server).await.len(),
        ticks,
        "the old trigger fires no more"
    );
    let url = format!(
        "{}/v1/envs/default/invocations?trigger=timer:tock",
        server.url
    );
    let page: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert!(
        page["invocations"].as_array().unwrap().len() >= 2,
        "the new trigger fires: {page}"
    );
}
