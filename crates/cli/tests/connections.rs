//! Slow and greedy clients against a real `cloudlet serve`, over raw sockets:
//! each connection limit holds, is answered with its code where one is
//! due, and the server keeps serving others meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{examples_dir, TestServer};

fn connect(server: &TestServer) -> TcpStream {
    let addr = server.url.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent and how long it took.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server neither answered nor closed: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// Reads one response (headers and a Content-Length body) off a kept-alive connection.
fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the connection closed");
        received.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&received).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

fn add_request() -> &'static [u8] {
    b"POST /v1/functions/add HTTP/1.1\r\nHost: test\r\nContent-Length: 13\r\n\r\n{\"x\":1,\"y\":2}"
}

fn server_with_add(args: &[&str]) -> TestServer {
    let server = TestServer::start(args);
    let add = examples_dir().join("add");
    let mut deploy = vec!["deploy", add.to_str().unwrap()];
    if let Some(at) = args.iter().position(|a| *a == "--admin-key") {
        deploy.extend(["--key", args[at + 1]]);
    }
    assert!(server.cli(&deploy).status.success());
    server
}

fn assert_still_serves(server: &TestServer) {
    let mut stream = connect(server);
    stream.write_all(add_request()).unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\n3"), "{response}");
}

#[test]
fn half_sent_headers_are_cut_off_at_the_header_read_timeout() {
    let server = server_with_add(&["--header-read-timeout-seconds", "0.5"]);
    let mut stream = connect(&server);
    stream
        .write_all(b"POST /v1/functions/add HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .unwrap();
    let (_, took) = read_until_closed(&mut stream);
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert_still_serves(&server);
}

#[test]
fn a_stalled_body_is_answered_408_at_the_body_read_timeout() {
    let server = server_with_add(&["--body-read-timeout-seconds", "0.5"]);
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /v1/functions/add HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{\"x\":",
        )
        .unwrap();
    let (response, took) = read_until_closed(&mut stream);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("REQUEST_TIMEOUT"), "{response}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_still_serves(&server);
}

#[test]
fn idle_keep_alive_connections_are_closed_at_the_keep_alive_timeout() {
    let server = server_with_add(&["--keep-alive-timeout-seconds", "0.5"]);
    let mut stream = connect(&server);
    stream.write_all(add_request()).unwrap();
    assert!(read_response(&mut stream).starts_with("HTTP/1.1 200"));
    let (rest, took) = read_until_closed(&mut stream);
    assert_eq!(rest, "");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}

#[test]
fn headers_past_the_limit_are_refused_431() {
    let server = server_with_add(&["--max-header-bytes", "8192"]);
    let mut stream = connect(&server);
    let filler = "a".repeat(16 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Filler: {filler}\r\n\r\n");
    // The server may close before it has read everything; what it answered counts.
    let _ = stream.write_all(request.as_bytes());
    let (response, _) = read_until_closed(&mut stream);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    assert_still_serves(&server);
}

/// A kept-alive connection the server has answered once, retried while the
/// server has no place for it yet.
fn held_connection(server: &TestServer) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = connect(server);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let response = read_response(&mut stream);
        if response.starts_with("HTTP/1.1 200") {
            return stream;
        }
        assert!(
            response.starts_with("HTTP/1.1 503") && Instant::now() < deadline,
            "{response}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connections_past_the_limit_are_answered_503_with_retry_after() {
    let server = server_with_add(&["--max-connections", "4"]);
    // The server counts a connection once it has accepted it, and stops
    // counting one only once it has seen it close: the deploy's connections
    // may still hold places for a moment on a busy machine.
    let mut held: Vec<TcpStream> = (0..4).map(|_| held_connection(&server)).collect();
    let mut extra = connect(&server);
    extra.write_all(add_request()).unwrap();
    let (response, _) = read_until_closed(&mut extra);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("EXCEED_CONNECTION_LIMIT"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    held.pop();
    std::thread::sleep(Duration::from_millis(200));
    assert_still_serves(&server);
}

#[test]
fn an_unauthenticated_upload_is_refused_before_its_body_is_read() {
    let server = server_with_add(&["--admin-key", "s3cret"]);
    let mut stream = connect(&server);
    let started = Instant::now();
    stream
        .write_all(
            b"PUT /v1/envs/default/functions/big HTTP/1.1\r\nHost: test\r\n\
              Content-Length: 62914560\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("PERMISSION_DENIED"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Without Expect, the client starts sending at once: the 401 still comes
    // before the body is done, and the server does not wait for the rest.
    let mut stream = connect(&server);
    stream
        .write_all(
            b"PUT /v1/envs/default/functions/big HTTP/1.1\r\nHost: test\r\n\
              Content-Length: 62914560\r\n\r\n",
        )
        .unwrap();
    stream.write_all(&[0u8; 64 * 1024]).unwrap();
    let (response, took) = read_until_closed(&mut stream);
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

#[test]
fn the_bearer_scheme_is_matched_in_any_case() {
    let server = server_with_add(&["--admin-key", "s3cret"]);
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /v1/functions/add HTTP/1.1\r\nHost: test\r\nAuthorization: bearer s3cret\r\n\
              Content-Length: 13\r\n\r\n{\"x\":1,\"y\":2}",
        )
        .unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// The server's resident memory while 2,000 clients each hold 15 KB of
/// unfinished headers, in MiB (documented in README's "Limits").
const SLOW_CLIENTS_RSS_BOUND_MIB: u64 = 128;

#[test]
fn thousands_of_slow_clients_hold_bounded_memory_and_are_cut_off() {
    // This process holds one end of each connection, and the server the
    // other; both raise their open-file limit to the hard limit.
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let clients = usize::try_from(files.saturating_sub(256))
        .unwrap()
        .min(2000);
    if clients < 2000 {
        eprintln!("the open-file limit is {files}: {clients} slow clients instead of 2000");
    }
    let server = server_with_add(&["--header-read-timeout-seconds", "3"]);
    let partial = format!(
        "POST /v1/functions/add HTTP/1.1\r\nHost: test\r\nX-Slow: {}",
        "s".repeat(15 * 1024)
    );
    let mut slow: Vec<TcpStream> = (0..clients)
        .map(|_| {
            let mut stream = connect(&server);
            stream.write_all(partial.as_bytes()).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss = support::rss_mib(server.pid());
    assert!(
        rss <= SLOW_CLIENTS_RSS_BOUND_MIB,
        "the server holds {rss} MiB for {clients} slow clients, more than {SLOW_CLIENTS_RSS_BOUND_MIB}"
    );
    assert_still_serves(&server);
    for stream in &mut slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (_, _) = read_until_closed(stream);
    }
}
