//! The HTTP access service against a real `cloudlet serve`: routes from a
//! host and a path prefix to functions, public and keyed, CORS on routes,
//! CloudBase's integration request and response, `context.sse()` from both
//! engines, and routes surviving a restart. Over real sockets, with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{write_function, write_js_function, TestServer};

/// Returns what it was called with: the integration-request event.
const ECHO: &str = "exports.main = async (event) => event;";

/// Answers by the path it sees, each a kind of return value.
const ANSWERS: &str = r#"
exports.main = async (event) => {
  switch (event.path) {
    case '/text': return 'hello';
    case '/number': return 42;
    case '/object': return { ok: true };
    case '/bad-status': return { statusCode: 42 };
    case '/image': return {
      statusCode: 201,
      headers: { 'content-type': 'image/png', 'x-tags': ['a', 'b'] },
      multiValueHeaders: { 'set-cookie': ['session=1; HttpOnly', 'theme=dark'] },
      body: Buffer.from(event.body, 'base64').reverse().toString('base64'),
      isBase64Encoded: true,
    };
    default: return { statusCode: 404, body: 'no ' + event.path };
  }
};
"#;

/// Streams three events 50 ms apart, each with the time it was sent.
const SSE: &str = r#"
exports.main = async (event, context) => {
  const sse = context.sse?.();
  if (!sse || sse.closed) return 'no stream';
  for (let i = 0; i < 3; i++) {
    sse.send({ event: 'tick', id: String(i), data: { i, sent: Date.now() } });
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log('streamed');
  sse.end({ data: 'done' });
  return '';
};
"#;

fn deploy(server: &TestServer, dir: &str, extra: &[&str]) {
    let mut args = vec!["deploy", dir];
    args.extend_from_slice(extra);
    let out = server.cli(&args);
    assert!(out.status.success(), "{out:?}");
}

fn cli_ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A server with `name` deployed from `source` (js engine unless `runtime`
/// says otherwise).
fn serving(functions: &[(&str, &str)], args: &[&str]) -> (tempfile::TempDir, TestServer) {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(args);
    for (name, source) in functions {
        let dir = write_js_function(root.path(), name, source, "{}");
        deploy(&server, &dir, &[]);
    }
    (root, server)
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_route_takes_its_prefix_and_the_paths_below_it_and_the_longest_prefix_wins() {
    let (_root, server) = serving(&[("api", ECHO), ("users", ECHO)], &[]);
    cli_ok(&server, &["routes", "add", "/api", "api"]);
    cli_ok(
        &server,
        &["routes", "add", "/api/users", "users", "--keep-prefix"],
    );
    let url = &server.url;

    let event = json_of(get(&format!("{url}/api/orders/7?x=1")).await).await;
    assert_eq!(
        event["path"], "/orders/7",
        "the prefix is stripped by default"
    );
    assert_eq!(event["requestContext"]["path"], "/api/orders/7");
    assert_eq!(event["requestContext"]["routePath"], "/api");
    let event = json_of(get(&format!("{url}/api")).await).await;
    assert_eq!(event["path"], "/");

    let event = json_of(get(&format!("{url}/api/users/7")).await).await;
    assert_eq!(
        event["path"], "/api/users/7",
        "a route that keeps its prefix"
    );
    assert_eq!(event["requestContext"]["routePath"], "/api/users");

    let other = get(&format!("{url}/apis")).await;
    assert_eq!(other.status(), 404, "prefixes match whole segments");
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["code"], "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn a_custom_domains_routes_come_before_the_api_and_subdomains_match_a_wildcard() {
    let (_root, server) = serving(&[("shop", ECHO), ("blog", ECHO)], &[]);
    cli_ok(
        &server,
        &["routes", "add", "/", "shop", "--host", "shop.example.com"],
    );
    cli_ok(
        &server,
        &["routes", "add", "/", "blog", "--host", "*.blog.example.com"],
    );
    let client = reqwest::Client::new();
    let at = |host: &'static str| {
        client
            .get(format!("{}/v1/status", server.url))
            .header("host", host)
            .send()
    };
    let event = json_of(at("Shop.Example.com:8080").await.unwrap()).await;
    assert_eq!(
        event["path"], "/v1/status",
        "the domain's route, not the API"
    );
    assert_eq!(event["headers"]["host"], "Shop.Example.com:8080");
    let event = json_of(at("alice.blog.example.com").await.unwrap()).await;
    assert_eq!(event["requestContext"]["routePath"], "/");
    let api = json_of(at("127.0.0.1").await.unwrap()).await;
    assert!(
        api.get("records").is_some(),
        "other hosts reach the API: {api}"
    );
    let bare = at("blog.example.com").await.unwrap();
    assert!(
        bare.status() == 200 && bare.json::<Value>().await.unwrap().get("records").is_some(),
        "a wildcard takes subdomains only"
    );
}

#[tokio::test]
async fn the_access_listener_serves_routes_and_nothing_of_the_api() {
    let port = free_port();
    let access = format!("127.0.0.1:{port}");
    let (_root, server) = serving(&[("api", ANSWERS)], &["--access-listen", &access]);
    cli_ok(&server, &["routes", "add", "/", "api"]);
    let text = get(&format!("http://{access}/text")).await;
    assert_eq!(text.text().await.unwrap(), "hello");
    let status = get(&format!("http://{access}/v1/status")).await;
    assert_eq!(
        status.status(),
        404,
        "the API is not on the access listener"
    );
    let deploy = reqwest::Client::new()
        .put(format!("http://{access}/v1/envs/default/functions/x"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(deploy.status(), 404);
}

async fn refused(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], code);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_keyed_route_needs_the_envs_key_and_a_public_route_needs_none() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&["--admin-key", "admin-secret"]);
    let dir = write_js_function(root.path(), "echo", ECHO, "{}");
    let admin = ["--key", "admin-secret"];
    for env in ["shop", "other"] {
        deploy(&server, &dir, &["--env", env, "--key", "admin-secret"]);
    }
    let shop_key = cli_ok(&server, &["envs", "key", "shop", "--key", "admin-secret"]);
    let other_key = cli_ok(&server, &["envs", "key", "other", "--key", "admin-secret"]);
    let add = |path: &str, extra: &[&str]| {
        let mut args = vec!["routes", "add", path, "echo", "--env", "shop"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&admin);
        cli_ok(&server, &args)
    };
    add("/private", &["--require-key"]);
    add("/public", &[]);
    let client = reqwest::Client::new();
    let call = |path: &str, key: Option<&str>| {
        let mut request = client.get(format!("{}{path}", server.url));
        if let Some(key) = key {
            request = request.bearer_auth(key.trim());
        }
        request.send()
    };
    let refused = call("/private", None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "PERMISSION_DENIED"
    );
    let wrong = call("/private", Some(&other_key)).await.unwrap();
    assert_eq!(wrong.status(), 401, "another env's key");
    let event = json_of(call("/private", Some(&shop_key)).await.unwrap()).await;
    assert_eq!(event["requestContext"]["envId"], "shop");
    assert!(
        event["headers"].get("authorization").is_none(),
        "the key is Cloudlet's, not the function's"
    );
    let event = json_of(call("/public", None).await.unwrap()).await;
    assert_eq!(event["requestContext"]["envId"], "shop");
    let event = json_of(call("/public", Some("app-token")).await.unwrap()).await;
    assert_eq!(
        event["headers"]["authorization"], "Bearer app-token",
        "a public route's Authorization is the app's own"
    );
    let listed = server.cli(&["routes", "list"]);
    assert!(
        !listed.status.success(),
        "managing routes needs the admin key"
    );
}

#[tokio::test]
async fn a_public_route_gives_each_request_an_id_of_its_own() {
    let (_root, server) = serving(&[("echo", ECHO)], &[]);
    cli_ok(&server, &["routes", "add", "/echo", "echo"]);
    let chosen = "01a2480e-0000-7000-8000-000000000001";
    let response = reqwest::Client::new()
        .get(format!("{}/echo", server.url))
        .header("x-request-id", chosen)
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let event = json_of(response).await;
    assert_ne!(id, chosen, "a caller cannot pick the ID another record has");
    assert_eq!(event["requestContext"]["requestId"], id.as_str());
    assert!(
        event["headers"].get("x-request-id").is_none(),
        "the ID the caller sent is not the invocation's"
    );
}

#[tokio::test]
async fn conflicting_and_invalid_routes_are_refused_and_a_removed_route_stops_serving() {
    let (_root, server) = serving(&[("echo", ECHO)], &[]);
    cli_ok(&server, &["routes", "add", "/echo", "echo"]);
    let client = reqwest::Client::new();
    let add = |route: Value| {
        client
            .post(format!("{}/v1/routes", server.url))
            .json(&route)
            .send()
    };
    let conflict = add(json!({"path": "/echo/", "env": "default", "function": "echo"}));
    refused(conflict.await.unwrap(), 409, "ROUTE_CONFLICT").await;
    for bad in ["echo", "/a//b", "/a/../b", "/a?b", "/%61"] {
        let response = add(json!({"path": bad, "env": "default", "function": "echo"}));
        refused(response.await.unwrap(), 400, "INVALID_PARAM").await;
    }
    let reserved = add(json!({"path": "/v1/things", "env": "default", "function": "echo"}));
    refused(reserved.await.unwrap(), 400, "INVALID_PARAM").await;
    let host = add(json!({"host": "a b", "path": "/x", "env": "default", "function": "echo"}));
    refused(host.await.unwrap(), 400, "INVALID_PARAM").await;
    let missing = add(json!({"path": "/x", "env": "default", "function": "nothing"}));
    refused(missing.await.unwrap(), 404, "FUNCTION_NOT_FOUND").await;

    assert_eq!(get(&format!("{}/echo", server.url)).await.status(), 200);
    cli_ok(&server, &["routes", "rm", "/echo"]);
    assert_eq!(get(&format!("{}/echo", server.url)).await.status(), 404);
    let again = server.cli(&["routes", "rm", "/echo"]);
    assert!(!again.status.success());
}

#[tokio::test]
async fn routes_survive_a_restart() {
    let (root, server) = serving(&[("answers", ANSWERS)], &[]);
    cli_ok(
        &server,
        &[
            "routes",
            "add",
            "/a",
            "answers",
            "--host",
            "shop.example.com",
        ],
    );
    let data = server.kill();
    let server = TestServer::start_in(data, &[]);
    let response = reqwest::Client::new()
        .get(format!("{}/a/text", server.url))
        .header("host", "shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
    let listed = cli_ok(&server, &["routes", "list", "--json"]);
    let routes: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(routes[0]["host"], "shop.example.com");
    drop(root);
}

#[tokio::test]
async fn the_integration_event_carries_query_cookies_repeated_headers_and_a_binary_body() {
    let (_root, server) = serving(&[("echo", ECHO)], &[]);
    cli_ok(&server, &["routes", "add", "/echo", "echo"]);
    let client = reqwest::Client::new();
    let bytes = vec![0u8, 159, 146, 150, 255];
    let response = client
        .post(format!("{}/echo/upload?tag=a&tag=b&q=x%20y", server.url))
        .header("content-type", "application/octet-stream")
        .header("cookie", "session=1")
        .headers(repeated("x-many", &["one", "two"]))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let event = json_of(response).await;
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["path"], "/upload");
    assert_eq!(event["isBase64Encoded"], true);
    use base64::Engine as _;
    let body = base64::prelude::BASE64_STANDARD
        .decode(event["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(body, bytes);
    assert_eq!(event["queryStringParameters"]["q"], "x y");
    assert_eq!(
        event["multiValueQueryStringParameters"]["tag"],
        json!(["a", "b"])
    );
    assert_eq!(event["headers"]["cookie"], "session=1");
    assert_eq!(event["headers"]["x-many"], "one, two");

    let text = client
        .put(format!("{}/echo", server.url))
        .header("content-type", "application/json")
        .body(r#"{"k":"v"}"#)
        .send()
        .await
        .unwrap();
    let event = json_of(text).await;
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["body"], r#"{"k":"v"}"#);
}

/// A header given more than once (reqwest's `header` replaces).
fn repeated(name: &'static str, values: &[&'static str]) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    for value in values {
        headers.append(name, reqwest::header::HeaderValue::from_static(value));
    }
    headers
}

#[tokio::test]
async fn return_values_map_to_text_json_and_integration_responses() {
    let (_root, server) = serving(&[("answers", ANSWERS)], &[]);
    cli_ok(&server, &["routes", "add", "/", "answers"]);
    let url = &server.url;
    let text = get(&format!("{url}/text")).await;
    assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(text.text().await.unwrap(), "hello");
    let number = get(&format!("{url}/number")).await;
    assert_eq!(
        number.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(number.text().await.unwrap(), "42");
    let object = get(&format!("{url}/object")).await;
    assert_eq!(object.headers()["content-type"], "application/json");
    assert_eq!(object.json::<Value>().await.unwrap(), json!({"ok": true}));

    let image = reqwest::Client::new()
        .post(format!("{url}/image"))
        .header("content-type", "image/png")
        .body(vec![1u8, 2, 3, 250])
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 201);
    assert_eq!(image.headers()["content-type"], "image/png");
    let tags: Vec<_> = image.headers().get_all("x-tags").iter().collect();
    assert_eq!(tags, ["a", "b"]);
    let cookies: Vec<_> = image.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["session=1; HttpOnly", "theme=dark"]);
    assert_eq!(image.bytes().await.unwrap().as_ref(), [250u8, 3, 2, 1]);

    let missing = get(&format!("{url}/other")).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "no /other");
    let bad = get(&format!("{url}/bad-status")).await;
    assert_eq!(bad.status(), 500);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["code"],
        "FUNCTION_INVOCATION_FAILED"
    );
}

#[tokio::test]
async fn cors_on_a_route_answers_preflights_and_refuses_pages_from_other_origins() {
    let (_root, server) = serving(&[("answers", ANSWERS)], &[]);
    cli_ok(&server, &["routes", "add", "/", "answers"]);
    cli_ok(
        &server,
        &[
            "envs",
            "cors",
            "default",
            "--origin",
            "https://app.example.com",
        ],
    );
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{}/text", server.url))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = client
        .get(format!("{}/text", server.url))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(allowed.text().await.unwrap(), "hello");
    let refused = client
        .get(format!("{}/text", server.url))
        .header("origin", "https://evil.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "CORS_ORIGIN_NOT_ALLOWED"
    );
}

/// Reads server-sent events until the stream ends: each event's text and
/// when it arrived.
async fn read_events(mut response: reqwest::Response) -> Vec<(String, Instant)> {
    let mut events = Vec::new();
    let mut pending = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        let arrived = Instant::now();
        pending.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = pending.find("\n\n") {
            events.push((pending.drain(..end + 2).collect(), arrived));
        }
    }
    events
}

async fn record_of(server: &TestServer, request_id: &str) -> Value {
    let url = format!("{}/v1/invocations/{request_id}", server.url);
    let started = Instant::now();
    loop {
        let response = get(&url).await;
        if response.status() == 200 {
            return response.json().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Streams `SSE` from the function `name` at `url`, and checks the events
/// arrived one by one, in order, and the record written at the end.
async fn events_arrive_as_sent(server: &TestServer, request: reqwest::RequestBuilder) {
    let response = request
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let events = read_events(response).await;
    let texts: Vec<&str> = events.iter().map(|(text, _)| text.as_str()).collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    for (i, text) in texts[..3].iter().enumerate() {
        assert!(
            text.starts_with(&format!("event: tick\nid: {i}\ndata: {{\"i\":{i},")),
            "{text:?}"
        );
    }
    assert_eq!(texts[3], "data: done\n\n");
    let apart = events[2].1 - events[0].1;
    assert!(
        apart >= Duration::from_millis(80),
        "events arrive as they are sent, not at the end ({apart:?})"
    );
    let record = record_of(server, &request_id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["http"]["status"], 200);
    let logs = record["logs"].to_string();
    assert!(logs.contains("streamed"), "{logs}");
}

#[tokio::test]
async fn context_sse_streams_events_from_the_js_engine_on_a_route() {
    let (_root, server) = serving(&[("sse", SSE)], &[]);
    cli_ok(&server, &["routes", "add", "/events", "sse"]);
    let client = reqwest::Client::new();
    events_arrive_as_sent(&server, client.get(format!("{}/events", server.url))).await;
    let plain = get(&format!("{}/events", server.url)).await;
    assert_eq!(
        plain.text().await.unwrap(),
        "no stream",
        "without Accept: text/event-stream"
    );
}

#[tokio::test]
async fn context_sse_streams_events_from_the_node_engine_on_the_invoke_api() {
    if !support::node_found() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&[]);
    let dir = write_js_function(root.path(), "sse", SSE, r#"{"runtime": "Nodejs18.15"}"#);
    deploy(&server, &dir, &[]);
    let client = reqwest::Client::new();
    let invoke = || {
        client
            .post(format!("{}/v1/functions/sse", server.url))
            .body("{}")
    };
    events_arrive_as_sent(&server, invoke()).await;
    let plain = invoke().send().await.unwrap();
    assert_eq!(plain.json::<Value>().await.unwrap(), "no stream");
}

#[tokio::test]
async fn an_http_function_behind_a_public_route_sees_the_path_below_the_prefix_and_its_headers() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::start(&[]);
    let app = r#"
import http.server
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.path + " " + str(self.headers.get("authorization"))).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 9000), Echo).serve_forever()
"#;
    let dir = write_function(
        root.path(),
        "web",
        &[
            ("app.py", app),
            ("scf_bootstrap", "#!/bin/bash\nexec python3 app.py\n"),
        ],
    );
    let bootstrap = Path::new(&dir).join("scf_bootstrap");
    std::fs::set_permissions(bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    deploy(&server, &dir, &[]);
    cli_ok(&server, &["routes", "add", "/site", "web"]);
    let page = reqwest::Client::new()
        .get(format!("{}/site/a/b?c=d", server.url))
        .bearer_auth("app-token")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.text().await.unwrap(),
        "/a/b?c=d Bearer app-token",
        "the path below the prefix, and a public route's Authorization, which is the app's"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_on_a_route() {
    let (_root, server) = serving(&[("echo", ECHO)], &["--max-body-bytes", "100"]);
    cli_ok(&server, &["routes", "add", "/echo", "echo"]);
    let declared = support::answer_to(
        &server.url,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n",
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(declared.contains("EXCEED_REQUEST_SIZE_LIMIT"), "{declared}");
    // Chunked, so no length is declared: the limit holds as the body
    // arrives. One chunk past the limit, and then the client waits.
    let chunked = support::answer_to(
        &server.url,
        &format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n{}\r\n",
            "y".repeat(150)
        ),
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert!(chunked.contains("EXCEED_REQUEST_SIZE_LIMIT"), "{chunked}");
    let client = reqwest::Client::new();
    let small = client
        .post(format!("{}/echo", server.url))
        .body("fits")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(small).await["body"], "fits");
}
