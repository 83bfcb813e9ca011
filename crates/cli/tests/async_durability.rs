//! Durability of asynchronous invocations against real `cloudlet serve`
//! processes: the server is killed (`kill -9`) in the middle of async load
//! and restarted on the same data directory, ten times over. Every
//! invocation that was answered `202` completes: once, or (when it was
//! running at a kill) again after its lease ran out, with the attempt the
//! kill cut short listed in its record. None is lost, and the database
//! passes SQLite's integrity check. And the `202` is sent only after the
//! invocation's commit was synced to disk, as `strace` sees the server's
//! system calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::TestServer;

const ROUNDS: usize = 10;
/// Clients sending asynchronous invocations at once, during each round.
const CLIENTS: usize = 8;
/// Short leases, so that work cut short by a kill runs again within seconds.
const LEASE_SECONDS: &str = "1";

/// Takes a little while, so that kills find invocations running.
const WORK: &str = "exports.main = (e) => new Promise((done) => setTimeout(() => done(e.n), 30))\n";

/// Sends asynchronous invocations with IDs `{round}-{client}-{i}` until the
/// server stops answering; returns the IDs it answered `202`.
async fn load(url: String, round: usize, client: usize, answered: Arc<AtomicUsize>) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut accepted = Vec::new();
    for i in 0.. {
        let id = format!("{round}-{client}-{i}");
        let sent = http
            .post(format!("{url}/v1/functions/work"))
            .header("x-invocation-type", "async")
            .header("x-request-id", &id)
            .body(format!(r#"{{"n":{i}}}"#))
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status() == 202 => {
                accepted.push(id);
                answered.fetch_add(1, Ordering::Relaxed);
            }
            _ => return accepted,
        }
    }
    accepted
}

/// Runs a round of load and kills the server in its middle (once it has
/// answered some, since a restarted server may first be busy with what the
/// kill left); returns the data directory and the IDs that were accepted.
async fn round_killed(server: TestServer, round: usize) -> (tempfile::TempDir, Vec<String>) {
    let answered = Arc::new(AtomicUsize::new(0));
    let loads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let answered = Arc::clone(&answered);
            tokio::spawn(load(server.url.clone(), round, client, answered))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "round {round}: no 202 in 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data = server.kill();
    let mut accepted = Vec::new();
    for load in loads {
        accepted.extend(load.await.unwrap());
    }
    (data, accepted)
}

/// The record of `id`, once it is final.
async fn final_record(url: &str, id: &str, deadline: Instant) -> Value {
    loop {
        let answer = reqwest::get(format!("{url}/v1/invocations/{id}"))
            .await
            .unwrap();
        if answer.status() == 200 {
            let record: Value = answer.json().await.unwrap();
            if record["status"] == "succeeded" {
                return record;
            }
            assert_ne!(record["status"], "failed", "{record}");
        }
        assert!(Instant::now() < deadline, "{id} never succeeded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_accepted_before_ten_kills_all_complete_and_the_database_stays_sound() {
    let args = ["--async-lease-seconds", LEASE_SECONDS];
    let server = TestServer::start(&args);
    let root = tempfile::tempdir().unwrap();
    let dir = support::write_js_function(root.path(), "work", WORK, "{}");
    assert!(server.cli(&["deploy", &dir]).status.success());

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let mut server = server;
    for round in 0..ROUNDS {
        let (data, ids) = round_killed(server, round).await;
        assert!(!ids.is_empty(), "round {round} accepted nothing");
        accepted.lock().unwrap().extend(ids);
        server = TestServer::start_in(data, &args);
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(
        accepted.iter().collect::<HashSet<_>>().len(),
        accepted.len(),
        "IDs are unique"
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ran_again = 0;
    for id in &accepted {
        let record = final_record(&server.url, id, deadline).await;
        let attempts = record["attempts"].as_array().unwrap();
        let (last, cut_short) = attempts.split_last().unwrap();
        assert_eq!(last["status"], "succeeded", "{record}");
        // Before it: attempts a kill cut short, or that a limit of the
        // server's refused (retried without counting); never a failure of
        // the function's own.
        for attempt in cut_short {
            let code = attempt["error"]["code"].as_str().unwrap();
            let lost = attempt.get("startedAt").is_none() && code == "SYS_ERR";
            let refused = matches!(
                code,
                "FUNCTION_EXCEED_RESOURCE_LIMIT" | "EXCEED_CONCURRENT_REQUEST_LIMIT"
            );
            assert!(lost || refused, "{record}");
            ran_again += usize::from(lost);
        }
    }
    eprintln!(
        "{} invocations accepted over {ROUNDS} kills; {ran_again} attempts cut short by a kill",
        accepted.len()
    );
    assert!(ran_again > 0, "no kill found an invocation running");

    let data = server.kill();
    let db = rusqlite::Connection::open(data.path().join("cloudlet.db")).unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let left: i64 = db
        .query_row("SELECT count(*) FROM invocation_queue", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(left, 0, "nothing left queued");
}

/// The system calls that read a request, write an answer, or sync a file.
const TRACED: &str = "trace=read,recvfrom,write,writev,sendto,sendmsg,fsync,fdatasync";

#[tokio::test]
async fn the_202_is_sent_only_after_the_invocation_was_synced_to_disk() {
    let Some(strace) = support::debian_tool("/usr/bin/strace", "strace") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let traced = tempfile::tempdir().unwrap();
    let trace = traced.path().join("syscalls.txt");
    let mut server = Command::new(strace)
        .args(["-f", "-s", "512", "-e", TRACED, "-o"])
        .arg(&trace)
        .arg(support::cloudlet_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let url = support::read_listening_url(&mut server);
    let root = tempfile::tempdir().unwrap();
    let dir =
        support::write_js_function(root.path(), "probe", "exports.main = async () => 1\n", "{}");
    let deployed = Command::new(support::cloudlet_bin())
        .args(["deploy", &dir])
        .env("CLOUDLET_SERVER", &url)
        .output()
        .unwrap();
    assert!(deployed.status.success(), "{deployed:?}");
    let answer = reqwest::Client::new()
        .post(format!("{url}/v1/functions/probe"))
        .header("x-invocation-type", "async")
        .header("x-request-id", "fsync-probe")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    // strace writes its last lines when the server exits.
    let _ = Command::new("pkill")
        .args(["-TERM", "-P", &server.id().to_string()])
        .status();
    let _ = server.wait();

    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let request = lines
        .iter()
        .position(|l| l.contains("x-request-id: fsync-probe"))
        .expect("the request was read");
    let accepted = request
        + lines[request..]
            .iter()
            .position(|l| l.contains("HTTP/1.1 202"))
            .expect("the 202 was written");
    let synced = lines[request..accepted]
        .iter()
        .any(|l| (l.contains("fdatasync") || l.contains("fsync")) && l.trim_end().ends_with("= 0"));
    assert!(
        synced,
        "no sync completed between the request and its 202:\n{}",
        lines[request..=accepted].join("\n")
    );
}
