//! The node engine under a real `cloudlet serve`: functions with Node.js
//! runtimes run in real Node.js processes, and none is left behind when the
//! server exits. Skipped, with a line saying so, where no Node.js 18 or later
//! is on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{examples_dir, node_found, TestServer};

#[test]
fn node_runtimes_run_in_node_and_no_worker_outlives_the_server() {
    if !node_found() {
        return;
    }
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let node = support::write_js_function(
        root.path(),
        "nodefn",
        "const os = require('os'); exports.main = async (e) => ({ pid: process.pid, sum: e.x + e.y, host: typeof os.hostname() })",
        r#"{"runtime": "Nodejs18.15"}"#,
    );
    let deployed = server.cli(&["deploy", &node]);
    assert!(deployed.status.success(), "{deployed:?}");
    assert!(String::from_utf8_lossy(&deployed.stdout).contains("node engine"));
    let crash = support::write_js_function(
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

#[test]
fn npm_dependencies_are_installed_at_deploy_and_reused_while_they_do_not_change() {
    if !node_found() {
        return;
    }
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = support::write_js_function(
        root.path(),
        "withdeps",
        "const ms = require('ms'); exports.main = async () => ms('2 days')",
        r#"{"runtime": "Nodejs18.15"}"#,
    );
    std::fs::write(
        root.path().join("withdeps/package.json"),
        r#"{"name": "withdeps", "dependencies": {"ms": "2.1.3"}}"#,
    )
    .unwrap();
    let deployed = server.cli(&["deploy", &dir]);
    if !deployed.status.success() && String::from_utf8_lossy(&deployed.stderr).contains("ENOTFOUND")
    {
        eprintln!("skipped: the npm registry cannot be reached");
        return;
    }
    assert!(deployed.status.success(), "{deployed:?}");
    let invoked = server.cli(&["invoke", "withdeps"]);
    assert_eq!(String::from_utf8_lossy(&invoked.stdout).trim(), "172800000");

    // New code, same dependencies: the install is reused.
    std::fs::write(
        root.path().join("withdeps/index.js"),
        "const ms = require('ms'); exports.main = async () => ms('1h')",
    )
    .unwrap();
    assert!(server.cli(&["deploy", &dir]).status.success());
    let invoked = server.cli(&["invoke", "withdeps"]);
    assert_eq!(String::from_utf8_lossy(&invoked.stdout).trim(), "3600000");
    let installs = std::fs::read_dir(server.data_dir.path().join("node/modules"))
        .unwrap()
        .count();
    assert_eq!(installs, 1, "the second deploy installed again");

    // A dependency npm cannot find fails the deploy with npm's words.
    std::fs::write(
        root.path().join("withdeps/package.json"),
        r#"{"name": "withdeps", "dependencies": {"cloudlet-no-such-package-xyz": "1.0.0"}}"#,
    )
    .unwrap();
    let refused = server.cli(&["deploy", &dir]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("npm install failed"), "{message}");
    // The function still serves its last good version.
    let invoked = server.cli(&["invoke", "withdeps"]);
    assert_eq!(String::from_utf8_lossy(&invoked.stdout).trim(), "3600000");
}
