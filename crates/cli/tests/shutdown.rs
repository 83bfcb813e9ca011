//! Shutdown of a real `cloudlet serve`: SIGTERM stops accepting, lets running
//! invocations finish within the grace period, ends the rest with a code of
//! their own, keeps their records, and exits, also while functions spin,
//! wait on timers or bomb memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::TestServer;

/// Starts an invocation with a known request ID on its own connection; the
/// thread returns the raw response.
fn invoke_in_background(
    server: &TestServer,
    name: &str,
    id: &str,
) -> std::thread::JoinHandle<String> {
    let addr = server.url.trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /v1/functions/{name} HTTP/1.1\r\nHost: test\r\nX-Request-Id: {id}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    })
}

#[test]
fn sigterm_waits_for_running_invocations_then_ends_the_rest_with_their_records_kept() {
    let functions = tempfile::tempdir().unwrap();
    let server = TestServer::start(&["--shutdown-grace-seconds", "1"]);
    let config = r#"{"timeout": 30}"#;
    for (name, source) in [
        ("spin", "exports.main = async () => { while (true) {} }"),
        ("sleepy", "exports.main = () => new Promise((r) => setTimeout(() => r('late'), 20000))"),
        ("quick", "exports.main = () => new Promise((r) => setTimeout(() => r('finished'), 300))"),
        ("bomb", "exports.main = async () => { const f = () => { Promise.resolve().then(f); Promise.resolve().then(f) }; f(); return new Promise(() => {}) }"),
    ] {
        let dir = support::write_js_function(functions.path(), name, source, config);
        assert!(server.cli(&["deploy", &dir]).status.success());
    }
    let ids = [
        ("spin", "shutdown-spin"),
        ("sleepy", "shutdown-sleepy"),
        ("quick", "shutdown-quick"),
        ("bomb", "shutdown-bomb"),
    ];
    let running: Vec<_> = ids
        .iter()
        .map(|(name, id)| invoke_in_background(&server, name, id))
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let (status, took, data_dir) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(8),
        "the server took {took:?} to exit"
    );
    let answers: Vec<String> = running.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers[2].starts_with("HTTP/1.1 200"), "{}", answers[2]);
    assert!(answers[2].ends_with("\"finished\""), "{}", answers[2]);
    for answer in [&answers[0], &answers[1], &answers[3]] {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer.contains("FUNCTION_TERMINATED_BY_SHUTDOWN"),
            "{answer}"
        );
    }

    let restarted = TestServer::start_in(data_dir, &[]);
    for (name, id) in ids {
        let logs = restarted.cli(&["logs", id, "--json"]);
        let record: serde_json::Value = serde_json::from_slice(&logs.stdout)
            .unwrap_or_else(|_| panic!("no record for {name}: {logs:?}"));
        let expected = if name == "quick" {
            serde_json::Value::Null
        } else {
            "FUNCTION_TERMINATED_BY_SHUTDOWN".into()
        };
        assert_eq!(record["error"]["code"], expected, "{name}: {record}");
    }
}

#[test]
fn during_the_grace_period_new_connections_are_refused() {
    let functions = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(&["--shutdown-grace-seconds", "2"]);
    let dir = support::write_js_function(
        functions.path(),
        "spin",
        "exports.main = async () => { while (true) {} }",
        r#"{"timeout": 30}"#,
    );
    assert!(server.cli(&["deploy", &dir]).status.success());
    let running = invoke_in_background(&server, "spin", "grace-spin");
    std::thread::sleep(Duration::from_millis(200));
    server.send_sigterm();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.is_running(),
        "the server waits for the running invocation"
    );
    let addr = server.url.trim_start_matches("http://").to_owned();
    assert!(
        TcpStream::connect(addr).is_err(),
        "a new connection was accepted"
    );
    assert!(running
        .join()
        .unwrap()
        .contains("FUNCTION_TERMINATED_BY_SHUTDOWN"));
}
