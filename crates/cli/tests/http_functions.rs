//! HTTP functions (seed 002) against a real `cloudlet serve`: web servers
//! started by their `scf_bootstrap` as real processes, reached over real
//! sockets through the proxy. The Express and `ws` tests install those
//! packages from npm at deploy (skipped, saying so, without Node.js or the
//! registry); the others need only Node.js or Python.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{examples_dir, write_function, TestServer};

/// A plain Node.js web server on the port CloudBase's servers use, 9000,
/// with a route per behaviour the tests look at.
const NODE_APP: &str = r#"
const http = require('http');
const fs = require('fs');
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const query = (name, fallback) => Number(url.searchParams.get(name) || fallback);
  switch (url.pathname) {
    case '/echo': {
      const body = [];
      req.on('data', (chunk) => body.push(chunk));
      req.on('end', () => {
        console.log(`echo ${req.method} ${req.url}`);
        res.statusCode = 201;
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-app', 'yes');
        res.end(JSON.stringify({
          method: req.method, url: req.url, headers: req.headers,
          bytes: Buffer.concat(body).length, text: Buffer.concat(body).toString().slice(0, 100),
          pid: process.pid, port: process.env.PORT, name: process.env.NAME,
          listening: req.socket.localAddress,
        }));
      });
      return;
    }
    case '/ticks': {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let sent = 0;
      const tick = setInterval(() => {
        res.write(`data: ${performance.timeOrigin + performance.now()}\n\n`);
        if (++sent === query('n', Infinity)) { clearInterval(tick); res.end(); }
      }, query('every', 50));
      req.on('close', () => {
        clearInterval(tick);
        if (process.env.MARK) fs.writeFileSync(process.env.MARK, 'closed');
      });
      return;
    }
    case '/exit':
      res.end(JSON.stringify({ pid: process.pid }));
      setTimeout(() => process.exit(1), 20);
      return;
    case '/slow':
      setTimeout(() => res.end(JSON.stringify({ pid: process.pid })), query('ms', 300));
      return;
    case '/hog': {
      globalThis.held = [];
      for (let i = 0; i < 40; i++) globalThis.held.push(Buffer.alloc(16 * 1024 * 1024, 1));
      setTimeout(() => res.end('survived'), 3000);
      return;
    }
    default:
      res.setHeader('x-url', req.url);
      res.setHeader('x-method', req.method);
      res.end(process.env.NAME || 'hello');
  }
}).listen(9000);
"#;

/// Writes an HTTP function: `files` and an executable `scf_bootstrap`.
fn http_function(root: &Path, name: &str, bootstrap: &str, files: &[(&str, &str)]) -> String {
    let mut all = files.to_vec();
    all.push(("scf_bootstrap", bootstrap));
    let dir = write_function(root, name, &all);
    let bootstrap = Path::new(&dir).join("scf_bootstrap");
    std::fs::set_permissions(bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The Node.js app above as an HTTP function, with its `config.json`.
fn node_app(root: &Path, name: &str, config: &Value) -> String {
    http_function(
        root,
        name,
        "#!/bin/bash\nexec /var/lang/node18/bin/node app.js\n",
        &[("app.js", NODE_APP), ("config.json", &config.to_string())],
    )
}

/// A Node.js HTTP function `app.js` that depends on one npm package, which
/// the deploy installs.
fn npm_app(root: &Path, name: &str, app: &str, package: &str, version: &str) -> String {
    let manifest = json!({"name": name, "version": "1.0.0", "dependencies": {package: version}});
    http_function(
        root,
        name,
        "#!/bin/bash\nexec node app.js\n",
        &[
            ("app.js", app),
            ("package.json", &manifest.to_string()),
            (
                "config.json",
                r#"{"runtime": "Nodejs18.15", "timeout": 10}"#,
            ),
        ],
    )
}

/// A server with the Node.js app above deployed as `name`; `None` (the
/// test skips) without Node.js.
fn serving_node_app(
    name: &str,
    config: Value,
    args: &[&str],
) -> Option<(tempfile::TempDir, TestServer)> {
    if !support::node_found() {
        return None;
    }
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(args);
    deploy(&server, &node_app(root.path(), name, &config));
    Some((root, server))
}

fn deploy(server: &TestServer, dir: &str) {
    let out = server.cli(&["deploy", dir]);
    assert!(out.status.success(), "{out:?}");
}

fn web(server: &TestServer, name: &str, path: &str) -> String {
    format!("{}/v1/functions/{name}/web{path}", server.url)
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The record of `request_id`, once written (a streamed request's record
/// is written when its response ends, just after the client saw the end).
async fn record(server: &TestServer, request_id: &str) -> Value {
    let url = format!("{}/v1/invocations/{request_id}", server.url);
    let started = Instant::now();
    loop {
        let response = reqwest::get(&url).await.unwrap();
        if response.status() == 200 {
            return response.json().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no record for {request_id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn bytes_of(slice: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(slice)
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Reads server-sent events off `response` until `count` `data:` lines came,
/// each with the time it arrived.
async fn events(response: &mut reqwest::Response, count: usize) -> Vec<(String, f64)> {
    let mut events = Vec::new();
    let mut pending = String::new();
    while events.len() < count {
        let chunk = response.chunk().await.unwrap().expect("the stream goes on");
        let arrived = now_ms();
        pending.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if let Some(data) = event.trim().strip_prefix("data: ") {
                events.push((data.to_owned(), arrived));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_seeds_express_sse_example_streams_its_events_unmodified() {
    if !support::npm_reachable() {
        return;
    }
    let server = TestServer::start(&[]);
    deploy(
        &server,
        examples_dir().join("express-sse").to_str().unwrap(),
    );
    let mut response = reqwest::get(web(&server, "express-sse", "/sse"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let first = response.chunk().await.unwrap().unwrap();
    assert_eq!(first, ": keep-alive\n\n", "the comment comes at once");
    let events = events(&mut response, 2).await;
    for (data, _) in &events {
        let event: Value = serde_json::from_str(data).unwrap();
        assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
    }
    let apart = events[1].1 - events[0].1;
    assert!(
        (700.0..1300.0).contains(&apart),
        "a second apart, not buffered: {apart} ms"
    );
}

#[tokio::test]
async fn an_express_crud_app_answers_every_method_with_its_status_headers_and_body() {
    if !support::npm_reachable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let app = r#"
const express = require('express');
const app = express();
app.use(express.json());
const items = new Map();
let next = 1;
app.get('/items', (req, res) => res.json({ items: [...items.values()], page: req.query.page }));
app.post('/items', (req, res) => {
  const item = { id: next++, ...req.body, by: req.get('x-user') };
  items.set(item.id, item);
  res.status(201).location(`/items/${item.id}`).json(item);
});
app.put('/items/:id', (req, res) => {
  if (!items.has(+req.params.id)) return res.status(404).json({ error: 'no such item' });
  items.set(+req.params.id, { id: +req.params.id, ...req.body });
  res.json(items.get(+req.params.id));
});
app.delete('/items/:id', (req, res) => res.status(items.delete(+req.params.id) ? 204 : 404).end());
app.listen(9000);
"#;
    let dir = npm_app(root.path(), "crud", app, "express", "^4.21.2");
    let server = TestServer::start(&[]);
    deploy(&server, &dir);
    let client = reqwest::Client::new();
    let created = client
        .post(web(&server, "crud", "/items"))
        .header("x-user", "ada")
        .json(&json!({"title": "write tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/items/1");
    let item: Value = created.json().await.unwrap();
    assert_eq!(item, json!({"id": 1, "title": "write tests", "by": "ada"}));
    let updated = client
        .put(web(&server, "crud", "/items/1"))
        .json(&json!({"title": "tests written"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let (status, list) = get_json(&web(&server, "crud", "/items?page=2")).await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!({"items": [{"id": 1, "title": "tests written"}], "page": "2"})
    );
    let deleted = client
        .delete(web(&server, "crud", "/items/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let missing = client
        .delete(web(&server, "crud", "/items/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn method_path_query_headers_and_a_streamed_body_pass_through_and_the_record_keeps_the_response(
) {
    let Some((_root, server)) = serving_node_app("app", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let upload = vec![b'x'; 3 * 1024 * 1024];
    // Sent in chunks without a length: the proxy streams it on as it comes.
    let chunks = futures_util::stream::iter(
        upload
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(bytes_of(c))))
            .collect::<Vec<_>>(),
    );
    let response = reqwest::Client::new()
        .patch(web(&server, "app", "/echo?a=1&b=%20two"))
        .header("x-custom", "value")
        .header("x-scf-request-id", "forged")
        .header("x-scf-namespace", "forged")
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-app"], "yes");
    let id = request_id(&response);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "PATCH");
    assert_eq!(seen["url"], "/echo?a=1&b=%20two");
    assert_eq!(seen["bytes"], upload.len());
    let headers = &seen["headers"];
    assert_eq!(headers["x-custom"], "value");
    assert_eq!(headers["x-request-id"], id.as_str());
    assert_eq!(
        headers["x-scf-request-id"],
        id.as_str(),
        "the platform's, not the client's"
    );
    assert!(headers.get("x-scf-namespace").is_none(), "{headers}");
    let port: u16 = seen["port"].as_str().unwrap().parse().unwrap();
    assert_ne!(port, 9000, "each instance has a port of its own");
    let listening = seen["listening"].as_str().unwrap();
    assert!(
        listening.ends_with("127.0.0.1"),
        "on loopback, not 0.0.0.0: {listening}"
    );

    let record = record(&server, &id).await;
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["trigger"], "http");
    assert!(record["http"]["status"] == 201, "{record}");
    assert!(record["http"]["bytes"].as_u64().unwrap() > 100, "{record}");
    let logs: Vec<&str> = record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(logs.contains(&"echo PATCH /echo?a=1&b=%20two"), "{logs:?}");
}

#[tokio::test]
async fn chunks_reach_the_client_within_milliseconds_of_being_written() {
    let Some((_root, server)) = serving_node_app("ticks", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let mut response = reqwest::get(web(&server, "ticks", "/ticks?every=20&n=40"))
        .await
        .unwrap();
    let mut delays: Vec<f64> = events(&mut response, 40)
        .await
        .into_iter()
        .map(|(written, arrived)| arrived - written.parse::<f64>().unwrap())
        .collect();
    delays.sort_by(f64::total_cmp);
    let median = delays[delays.len() / 2];
    // Chunks are never held back: each arrives as it is written, give or
    // take the scheduling of a busy test machine.
    assert!(median < 5.0, "median delay {median:.2} ms: {delays:?}");
    assert!(delays[delays.len() - 1] < 100.0, "{delays:?}");
}

#[tokio::test]
async fn a_client_that_disconnects_closes_the_request_in_the_function() {
    if !support::node_found() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mark = root.path().join("closed");
    let config = json!({"runtime": "Nodejs18.15", "timeout": 30, "envVariables": {"MARK": mark}});
    let server = TestServer::start(&[]);
    deploy(&server, &node_app(root.path(), "ticks", &config));
    let mut response = reqwest::get(web(&server, "ticks", "/ticks?every=100"))
        .await
        .unwrap();
    let id = request_id(&response);
    events(&mut response, 1).await;
    assert!(!mark.exists());
    drop(response);
    let started = Instant::now();
    while !mark.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "req.on('close') never fired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record(&server, &id).await["http"]["status"], 200);
}

#[tokio::test]
async fn two_functions_and_several_instances_all_listening_on_9000_run_at_once() {
    if !support::node_found() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&[]);
    for name in ["first", "second"] {
        let config = json!({"runtime": "Nodejs18.15", "instanceConcurrency": 1, "envVariables": {"NAME": name}});
        deploy(&server, &node_app(root.path(), name, &config));
    }
    let slow = |name: &str| reqwest::get(web(&server, name, "/slow?ms=400"));
    let answers = futures_util::future::join_all([
        slow("first"),
        slow("first"),
        slow("first"),
        slow("second"),
        slow("second"),
    ])
    .await;
    let mut pids = std::collections::HashSet::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        pids.insert(body["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 5, "one instance per request at concurrency 1");
    for name in ["first", "second"] {
        let text = reqwest::get(web(&server, name, "/")).await.unwrap();
        assert_eq!(text.text().await.unwrap(), name);
    }
}

#[tokio::test]
async fn one_instance_serves_up_to_its_concurrency_before_another_starts() {
    if !support::node_found() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&[]);
    let config = json!({"runtime": "Nodejs18.15", "instanceConcurrency": 3});
    deploy(&server, &node_app(root.path(), "shared", &config));
    let slow = || reqwest::get(web(&server, "shared", "/slow?ms=500"));
    let answers = futures_util::future::join_all([slow(), slow(), slow(), slow()]).await;
    let mut pids = Vec::new();
    for answer in answers {
        let body: Value = answer.unwrap().json().await.unwrap();
        pids.push(body["pid"].as_u64().unwrap());
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(
        pids.len(),
        2,
        "three on one instance, the fourth on a second"
    );
}

#[tokio::test]
async fn an_instance_that_dies_is_replaced_by_the_next_request() {
    let Some((_root, server)) = serving_node_app("mortal", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let (_, first) = get_json(&web(&server, "mortal", "/exit")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, second) = get_json(&web(&server, "mortal", "/echo")).await;
    assert_eq!(status, 201);
    assert_ne!(first["pid"], second["pid"], "a new instance");
}

#[tokio::test]
async fn a_new_version_stops_the_old_versions_instances() {
    if !support::node_found() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&[]);
    let version = |name: &str| json!({"runtime": "Nodejs18.15", "envVariables": {"NAME": name}});
    deploy(&server, &node_app(root.path(), "app", &version("one")));
    let (_, old) = get_json(&web(&server, "app", "/echo")).await;
    deploy(&server, &node_app(root.path(), "app", &version("two")));
    let (_, new) = get_json(&web(&server, "app", "/echo")).await;
    assert_eq!(new["name"], "two");
    let pid = old["pid"].as_u64().unwrap();
    let started = Instant::now();
    while running(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the old instance was kept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_idle_instance_is_stopped_after_the_idle_time() {
    let Some((_root, server)) = serving_node_app(
        "idle",
        json!({"runtime": "Nodejs18.15"}),
        &["--idle-instance-seconds", "1"],
    ) else {
        return;
    };
    let (_, seen) = get_json(&web(&server, "idle", "/echo")).await;
    let pid = seen["pid"].as_u64().unwrap();
    let started = Instant::now();
    while running(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "the idle instance was kept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, again) = get_json(&web(&server, "idle", "/echo")).await;
    assert_eq!(status, 201);
    assert_ne!(again["pid"], seen["pid"]);
}

/// Whether process `pid` runs (a process that ended but was not yet reaped,
/// a zombie, does not).
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

#[tokio::test]
async fn a_python_server_that_reads_port_runs_from_cloudbases_interpreter_path() {
    let root = tempfile::tempdir().unwrap();
    let server_py = r#"
import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "host": self.server.server_address[0]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;
    let dir = http_function(
        root.path(),
        "py",
        "#!/bin/bash\nexec /var/lang/python39/bin/python3 -u server.py\n",
        &[
            ("server.py", server_py),
            ("config.json", r#"{"runtime": "Python3.9"}"#),
        ],
    );
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no python3");
        return;
    }
    let server = TestServer::start(&[]);
    deploy(&server, &dir);
    let (status, body) = get_json(&web(&server, "py", "/hello?x=1")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"path": "/hello?x=1", "host": "127.0.0.1"}),
        "0.0.0.0 became loopback"
    );
}

#[tokio::test]
async fn a_websocket_is_passed_through_to_the_function() {
    if !support::npm_reachable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let app = r#"
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ port: 9000 });
wss.on('connection', (socket, req) => {
  socket.send(`hello ${req.url}`);
  socket.on('message', (data) => socket.send(`echo: ${data}`));
});
"#;
    let dir = npm_app(root.path(), "echo", app, "ws", "^8.18.0");
    let server = TestServer::start(&[]);
    deploy(&server, &dir);
    let url = web(&server, "echo", "/chat").replacen("http://", "ws://", 1);
    let (mut socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    let text = |message: Option<Result<tokio_tungstenite::tungstenite::Message, _>>| {
        message.unwrap().unwrap().into_text().unwrap().to_string()
    };
    assert_eq!(text(socket.next().await), "hello /chat");
    socket.send("ping".into()).await.unwrap();
    assert_eq!(text(socket.next().await), "echo: ping");
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn a_bootstrap_that_exits_at_once_is_reported_with_its_output() {
    let root = tempfile::tempdir().unwrap();
    let dir = http_function(
        root.path(),
        "broken",
        "#!/bin/bash\necho 'cannot find module ./missing' >&2\nexit 3\n",
        &[("config.json", r#"{"runtime": "Nodejs18.15"}"#)],
    );
    let server = TestServer::start(&[]);
    deploy(&server, &dir);
    let response = reqwest::get(web(&server, "broken", "/")).await.unwrap();
    assert_eq!(response.status(), 502);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "FUNCTION_STATUS_ABNORMAL");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(
        message.contains("cannot find module ./missing"),
        "{message}"
    );
    let record = record(&server, &id).await;
    assert_eq!(record["error"]["code"], "FUNCTION_STATUS_ABNORMAL");
    // The next request tries again, and the server goes on serving.
    let again = reqwest::get(web(&server, "broken", "/")).await.unwrap();
    assert_eq!(again.status(), 502);
    assert!(reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap()
        .status()
        .is_success());
}

#[tokio::test]
async fn a_bootstrap_that_never_listens_fails_at_the_startup_timeout() {
    let root = tempfile::tempdir().unwrap();
    let dir = http_function(
        root.path(),
        "mute",
        "#!/bin/bash\necho 'starting, but never listening'\nexec sleep 60\n",
        &[("config.json", r#"{"runtime": "Go1", "timeout": 30}"#)],
    );
    let server = TestServer::start(&["--http-startup-timeout-seconds", "1"]);
    deploy(&server, &dir);
    let started = Instant::now();
    let (status, body) = get_json(&web(&server, "mute", "/")).await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "FUNCTION_STATUS_ABNORMAL");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("did not accept connections"), "{message}");
    assert!(
        message.contains("starting, but never listening"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_function_that_floods_its_output_is_capped_and_the_server_keeps_serving() {
    if !support::node_found() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let app = r#"
const line = 'flood '.repeat(100);
setInterval(() => { for (let i = 0; i < 2000; i++) console.log(line); }, 1);
require('http').createServer((req, res) => res.end('still here')).listen(9000);
"#;
    let dir = http_function(
        root.path(),
        "flood",
        "#!/bin/bash\nexec node app.js\n",
        &[
            ("app.js", app),
            ("config.json", r#"{"runtime": "Nodejs18.15"}"#),
        ],
    );
    let server = TestServer::start(&["--max-log-bytes", "65536"]);
    deploy(&server, &dir);
    let mut truncated = 0;
    for _ in 0..5 {
        let response = reqwest::get(web(&server, "flood", "/")).await.unwrap();
        let id = request_id(&response);
        assert_eq!(response.text().await.unwrap(), "still here");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let record = record(&server, &id).await;
        truncated += usize::from(record["logsTruncated"] == true);
        let kept: usize = record["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().len())
            .sum();
        assert!(kept <= 65536, "{kept}");
    }
    // What was printed between requests went to the next one, past its cap.
    assert!(
        truncated >= 4,
        "{truncated} of 5 records were cut at the cap"
    );
    assert!(reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap()
        .status()
        .is_success());
}

#[tokio::test]
async fn the_functions_timeout_ends_a_never_ending_stream_cleanly() {
    let config = json!({"runtime": "Nodejs18.15", "timeout": 2});
    let Some((_root, server)) = serving_node_app("endless", config, &[]) else {
        return;
    };
    let started = Instant::now();
    let response = reqwest::get(web(&server, "endless", "/ticks?every=100"))
        .await
        .unwrap();
    let id = request_id(&response);
    let body = response.text().await.expect("a body that ends cleanly");
    let took = started.elapsed();
    assert!(body.matches("data: ").count() >= 10, "{body}");
    assert!(
        (Duration::from_millis(1800)..Duration::from_secs(4)).contains(&took),
        "{took:?}"
    );
    let record = record(&server, &id).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"]["code"], "FUNCTION_TIME_LIMIT_EXCEEDED");
    assert_eq!(record["http"]["status"], 200);
}

#[tokio::test]
async fn an_instance_past_its_memory_size_is_killed_and_replaced() {
    if !support::node_found() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&[]);
    let config = json!({"runtime": "Nodejs18.15", "memorySize": 128, "timeout": 10});
    deploy(&server, &node_app(root.path(), "hog", &config));
    let (status, body) = get_json(&web(&server, "hog", "/hog")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], "FUNCTION_MEMORY_LIMIT_EXCEEDED");
    let after = reqwest::get(web(&server, "hog", "/")).await.unwrap();
    assert_eq!(
        after.text().await.unwrap(),
        "hello",
        "a new instance serves"
    );
}

#[tokio::test]
async fn event_functions_and_http_functions_each_refuse_the_others_call() {
    let Some((root, server)) = serving_node_app("web", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let event_fn = write_function(
        root.path(),
        "add",
        &[("index.js", "exports.main = (e) => e.x + e.y")],
    );
    deploy(&server, &event_fn);
    let client = reqwest::Client::new();
    let called = client
        .post(format!("{}/v1/functions/web", server.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 400);
    let body: Value = called.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_FUNCTION_TYPE");
    assert!(
        body["message"].as_str().unwrap().contains("/web/"),
        "{body}"
    );
    let (status, body) = get_json(&web(&server, "add", "/")).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "INVALID_FUNCTION_TYPE");
    // CloudBase's HTTP API form reaches the function at `/`, less `webfn`.
    let webfn = client
        .post(format!("{}/v1/functions/web?webfn=true&q=1", server.url))
        .header("x-cloudbase", "yes")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(webfn.status(), 200);
    assert_eq!(webfn.headers()["x-url"], "/?q=1");
    assert_eq!(webfn.headers()["x-method"], "POST");
    assert_eq!(webfn.text().await.unwrap(), "hello");
    let echoed = client
        .post(format!("{}/v1/functions/web?q=1", server.url))
        .header("x-tcb-webfn", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    assert_eq!(echoed.headers()["x-url"], "/?q=1");
}

#[tokio::test]
async fn the_cli_prints_an_http_functions_response_as_it_streams() {
    let Some((_root, server)) = serving_node_app("app", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let out = server.cli(&["invoke", "app", "--path", "/ticks?every=10&n=3"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.matches("data: ").count(), 3, "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 200"));
    let out = server.cli(&[
        "invoke",
        "app",
        "--path",
        "/echo?x=1",
        "-X",
        "put",
        "-H",
        "X-One: 1",
        "--data",
        "body!",
    ]);
    assert!(out.status.success(), "{out:?}");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["text"], "body!");
    assert_eq!(seen["headers"]["x-one"], "1");
}

#[tokio::test]
async fn the_cli_tells_cloudlets_refusal_from_an_http_functions_own_answer() {
    let Some((_root, server)) = serving_node_app("app", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let out = server.cli(&["invoke", "nobody", "--path", "/"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: FUNCTION_NOT_FOUND: "), "{stderr}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let answered = reqwest::get(web(&server, "nobody", "/")).await.unwrap();
    assert_eq!(answered.headers()["x-cloudlet-error"], "FUNCTION_NOT_FOUND");
    let own = reqwest::get(web(&server, "app", "/echo")).await.unwrap();
    assert_eq!(own.status(), 201);
    assert!(!own.headers().contains_key("x-cloudlet-error"));
}

#[tokio::test]
async fn stopping_the_server_leaves_no_function_process_behind() {
    let Some((_root, server)) = serving_node_app("app", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let (_, seen) = get_json(&web(&server, "app", "/echo")).await;
    let pid = seen["pid"].as_u64().unwrap();
    // A process that ended but was not yet reaped (a zombie) is gone.
    let alive = || running(pid);
    assert!(alive());
    let (status, _, _) = server.terminate();
    assert!(status.success(), "{status:?}");
    let started = Instant::now();
    while alive() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the instance outlived the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_preflight_to_an_http_function_is_answered_without_it() {
    let Some((_root, server)) = serving_node_app("app", json!({"runtime": "Nodejs18.15"}), &[])
    else {
        return;
    };
    let page = "https://app.example.com";
    let client = reqwest::Client::new();
    let set = client
        .put(format!("{}/v1/envs/default/cors", server.url))
        .json(&json!({"allowedOrigins": [page]}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let preflight = client
        .request(reqwest::Method::OPTIONS, web(&server, "app", "/echo"))
        .header("origin", page)
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.status(),
        204,
        "Cloudlet's answer, not the app's 201"
    );
    assert_eq!(preflight.headers()["access-control-allow-origin"], page);
    let called = client
        .put(web(&server, "app", "/echo"))
        .header("origin", page)
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 201);
    assert_eq!(called.headers()["access-control-allow-origin"], page);
    let elsewhere = client
        .put(web(&server, "app", "/echo"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
}
