//! The node engine under a real `cloudlet serve`: functions with Node.js
//! runtimes run in real Node.js processes, and none is left behind when the
//! server exits. Skipped, with a line saying so, where no Node.js 18 or later
//! is on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{examples_dir, TestServer};

fn node_found() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("skipped: no node on PATH for the node engine");
    }
    found
}

fn write_function(root: &std::path::Path, name: &str, source: &str, config: &str) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.js"), source).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    dir.to_str().unwrap().to_owned()
}

#[test]
fn node_runtimes_run_in_node_and_no_worker_outlives_the_server() {
    if !node_found() {
        return;
    }
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let node = write_function(
        root.path(),
        "nodefn",
        "const os = require('os'); exports.main = async (e) => ({ pid: process.pid, sum: e.x + e.y, host: typeof os.hostname() })",
        r#"{"runtime": "Nodejs18.15"}"#,
    );
    let deployed = server.cli(&["deploy", &node]);
    assert!(deployed.status.success(), "{deployed:?}");
    assert!(String::from_utf8_lossy(&deployed.stdout).contains("node engine"));
    let crash = write_function(
        root.path(),
        "crash",
        "exports.main = async () => process.exit(9)",
        r#"{"runtime": "nodejs20.x"}"#,
    );
    assert!(server.cli(&["deploy", &crash]).status.success());
    let add = examples_dir().join("add");
    assert!(server
        .cli(&["deploy", add.to_str().unwrap()])
        .status
        .success());

    let invoked = server.cli(&["invoke", "nodefn", "--data", r#"{"x":1,"y":2}"#]);
    assert!(invoked.status.success(), "{invoked:?}");
    let result: serde_json::Value = serde_json::from_slice(&invoked.stdout).unwrap();
    assert_eq!(result["sum"], 3);
    assert_eq!(result["host"], "string");
    let pid = result["pid"].as_u64().unwrap();

    let crashed = server.cli(&["invoke", "crash"]);
    assert!(!crashed.status.success());
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("exited with code 9"));
    let again = server.cli(&["invoke", "add", "--data", r#"{"x":2,"y":2}"#]);
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "4");

    let (status, _, _) = server.terminate();
    assert!(status.success());
    let gone = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "worker {pid} outlived the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
