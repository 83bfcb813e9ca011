//! End-to-end tests of the native API: a real server on a loopback socket, the
//! SQLite store in a temporary directory, and the js engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_runtime::{js::JsEngine, EngineLimits};
use cloudlet_server::{App, AuthPolicy, Engines, ServerLimits};
use cloudlet_store::{sqlite::SqliteOptions, SqliteStore};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    url: String,
    http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    store: Arc<SqliteStore>,
}

#[derive(Default)]
struct Options {
    admin_key: Option<&'static str>,
    limits: ServerLimits,
    engine: EngineLimits,
}

impl Server {
    async fn start(dir: &std::path::Path, options: Options) -> Server {
        let store = Arc::new(SqliteStore::open(dir, SqliteOptions::default()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let auth = AuthPolicy::for_listener(addr, options.admin_key).unwrap();
        let app = App::new(
            store.clone(),
            store.clone(),
            Engines::js_only(Arc::new(JsEngine::new(options.engine))),
            auth,
            options.limits,
            false,
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(cloudlet_server::serve(listener, app, async {
            let _ = rx.await;
        }));
        Server {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
            store,
        }
    }

    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap()
            .unwrap();
    }

    async fn deploy(&self, env: &str, name: &str, files: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .put(format!("{}/v1/envs/{env}/functions/{name}", self.url))
            .body(archive(files))
            .send()
            .await
            .unwrap()
    }

    async fn deploy_ok(&self, name: &str, files: &[(&str, &str)]) -> Value {
        let response = self.deploy("default", name, files).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn invoke(&self, name: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/functions/{name}", self.url))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn invoke_text(&self, name: &str, body: &str) -> String {
        self.invoke(name, body).await.text().await.unwrap()
    }

    async fn record(&self, env: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/envs/{env}/invocations/{id}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// `GET path` as JSON.
    async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.url)).send().await;
        response.unwrap().json().await.unwrap()
    }
}

fn archive(files: &[(&str, &str)]) -> Vec<u8> {
    let files: BTreeMap<String, Bytes> = files
        .iter()
        .map(|(p, d)| (p.to_string(), Bytes::copy_from_slice(d.as_bytes())))
        .collect();
    cloudlet_core::package::write_tar_gz(&files).unwrap()
}

const ADD: &[(&str, &str)] = &[(
    "index.js",
    "exports.main = async (event, context) => event.x + event.y",
)];

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn error_of(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let header_id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["requestId"], header_id.as_str());
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_both_routes_and_look_up_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    let info = server.deploy_ok("add", ADD).await;
    let version = info["current"]["version"].as_str().unwrap().to_owned();

    let response = server.invoke("add", r#"{"x":1,"y":2}"#).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-function-version"], version.as_str());
    let id = request_id(&response);
    assert_eq!(response.text().await.unwrap(), "3");

    let response = server
        .http
        .post(format!("{}/v1/envs/default/functions/add", server.url))
        .header("x-request-id", "client-chosen-1")
        .body(r#"{"x":2,"y":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&response), "client-chosen-1");
    assert_eq!(response.text().await.unwrap(), "4");

    let first: Value = server.record("default", &id).await.json().await.unwrap();
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["function"], "add");
    assert_eq!(first["version"], version.as_str());
    assert_eq!(first["cold"], true);
    assert!(first["initUs"].as_u64().is_some());
    assert_eq!(first["result"], "3");
    assert_eq!(first["trigger"], "http");
    let second: Value = server
        .record("default", "client-chosen-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["cold"], false);
    assert!(second.get("initUs").is_none());

    let health = server
        .http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert!(health.headers().contains_key("x-request-id"));

    let missing = server.record("default", "no-such-id").await;
    error_of(missing, 404, "RESOURCE_NOT_FOUND").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_stable_codes() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        limits: ServerLimits {
            max_body_bytes: 2048,
            ..ServerLimits::default()
        },
        ..Options::default()
    };
    let server = Server::start(dir.path(), options).await;
    server.deploy_ok("add", ADD).await;

    error_of(server.invoke("nope", "{}").await, 404, "FUNCTION_NOT_FOUND").await;
    let unknown_env = server
        .http
        .post(format!("{}/v1/envs/other/functions/add", server.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    error_of(unknown_env, 404, "FUNCTION_NOT_FOUND").await;
    error_of(
        server.invoke("add", r#"{"x":1,"#).await,
        400,
        "INVALID_PARAM",
    )
    .await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3000));
    error_of(
        server.invoke("add", &big).await,
        413,
        "EXCEED_REQUEST_SIZE_LIMIT",
    )
    .await;
    // Refused on the declared length alone, without waiting for the body.
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            b"POST /v1/functions/add HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{}",
        )
        .await
        .unwrap();
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut head))
        .await
        .expect("answered before the body arrived")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("EXCEED_REQUEST_SIZE_LIMIT"), "{head}");
    // Nesting the engine cannot parse on its stack is the caller's error.
    let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
    let body = error_of(server.invoke("add", &deep).await, 400, "INVALID_PARAM").await;
    assert!(body["message"].as_str().unwrap().contains("512"), "{body}");
    let deep_enough = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let response = server.invoke("add", &deep_enough).await;
    assert_eq!(response.status(), 200);
    let bad_id = server
        .http
        .post(format!("{}/v1/functions/add", server.url))
        .header("x-request-id", "has spaces")
        .body("{}")
        .send()
        .await
        .unwrap();
    error_of(bad_id, 400, "INVALID_PARAM").await;
    let bad_env = server
        .http
        .post(format!("{}/v1/envs/Bad!/functions/add", server.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    error_of(bad_env, 400, "INVALID_ENV").await;
    let route = server
        .http
        .get(format!("{}/v2/whatever", server.url))
        .send()
        .await
        .unwrap();
    error_of(route, 404, "RESOURCE_NOT_FOUND").await;
    let method = server
        .http
        .patch(format!("{}/v1/functions/add", server.url))
        .send()
        .await
        .unwrap();
    error_of(method, 405, "INVALID_ACTION").await;

    let bad_package = server.deploy("default", "broken", &[("main.js", "")]).await;
    let body = error_of(bad_package, 400, "INVALID_FUNCTION_PACKAGE").await;
    assert!(body["message"].as_str().unwrap().contains("index.js"));
    let bad_config = server
        .deploy(
            "default",
            "broken",
            &[("index.js", ""), ("config.json", r#"{"timout":1}"#)],
        )
        .await;
    let body = error_of(bad_config, 400, "INVALID_FUNCTION_PACKAGE").await;
    assert!(body["message"].as_str().unwrap().contains("timout"));
    let not_archive = server
        .http
        .put(format!("{}/v1/envs/default/functions/x", server.url))
        .body("hello")
        .send()
        .await
        .unwrap();
    error_of(not_archive, 400, "INVALID_FUNCTION_PACKAGE").await;

    // The server still serves after all of that.
    assert_eq!(server.invoke_text("add", r#"{"x":1,"y":1}"#).await, "2");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_failures_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    server.deploy_ok("add", ADD).await;
    server
        .deploy_ok(
            "bad",
            &[
                (
                    "index.js",
                    "exports.main = async (e) => {
                       if (e.mode === 'throw') throw new RangeError('it broke');
                       if (e.mode === 'loop') { await null; while (true) {} }
                       if (e.mode === 'bomb') { const a = []; while (true) a.push('x'.repeat(1e5) + Math.random()) }
                       if (e.mode === 'spam') { for (let i = 0; i < 50000; i++) console.log('line ' + i + ' ' + 'y'.repeat(100)) }
                       return 'fine'
                     }",
                ),
                ("config.json", r#"{"timeout": 3, "memorySize": 64}"#),
            ],
        )
        .await;

    let response = server.invoke("bad", r#"{"mode":"throw"}"#).await;
    let id = request_id(&response);
    let body = error_of(response, 500, "FUNCTION_INVOCATION_FAILED").await;
    assert_eq!(body["message"], "RangeError: it broke");
    assert_eq!(body["errorType"], "RangeError");
    let record: Value = server.record("default", &id).await.json().await.unwrap();
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"]["errorType"], "RangeError");
    assert_eq!(record["error"]["message"], "it broke");
    assert_eq!(record["error"]["code"], "FUNCTION_INVOCATION_FAILED");
    assert!(record["error"]["stack"]
        .as_str()
        .unwrap()
        .contains("index.js"));

    error_of(
        server.invoke("bad", r#"{"mode":"loop"}"#).await,
        504,
        "FUNCTION_TIME_LIMIT_EXCEEDED",
    )
    .await;
    error_of(
        server.invoke("bad", r#"{"mode":"bomb"}"#).await,
        500,
        "FUNCTION_MEMORY_LIMIT_EXCEEDED",
    )
    .await;

    let response = server.invoke("bad", r#"{"mode":"spam"}"#).await;
    let id = request_id(&response);
    assert_eq!(response.text().await.unwrap(), r#""fine""#);
    let record: Value = server.record("default", &id).await.json().await.unwrap();
    assert_eq!(record["logsTruncated"], true);
    let kept: usize = record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().len())
        .sum();
    assert!(
        kept <= 1024 * 1024 + 200,
        "logs are capped, kept {kept} bytes"
    );

    assert_eq!(server.invoke_text("bad", "{}").await, r#""fine""#);
    assert_eq!(server.invoke_text("add", r#"{"x":1,"y":2}"#).await, "3");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_function_does_not_stall_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path(), Options::default()).await);
    server.deploy_ok("add", ADD).await;
    server
        .deploy_ok(
            "spin",
            &[
                ("index.js", "exports.main = async () => { while (true) {} }"),
                ("config.json", r#"{"timeout": 3}"#),
            ],
        )
        .await;
    // Two spinners: as many as there are worker threads.
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.invoke("spin", "{}").await.status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let response = server.invoke("add", r#"{"x":1,"y":2}"#).await;
    assert_eq!(response.text().await.unwrap(), "3");
    let waited = started.elapsed();
    for spinner in spinners {
        assert!(!spinner.is_finished() || waited < Duration::from_secs(2));
        assert_eq!(spinner.await.unwrap(), 504);
    }
    assert!(
        waited < Duration::from_secs(2),
        "add was answered while the spinners ran (took {waited:?}, spinners run 3 s)"
    );
    Arc::try_unwrap(server).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_during_an_invocation_does_not_disturb_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start(dir.path(), Options::default()).await);
    let v1 = server
        .deploy_ok(
            "slow",
            &[(
                "index.js",
                "exports.main = () => new Promise((r) => setTimeout(() => r('v1'), 400))",
            )],
        )
        .await;
    let running = {
        let server = server.clone();
        tokio::spawn(async move {
            let response = server.invoke("slow", "{}").await;
            let id = request_id(&response);
            (id, response.text().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let v2 = server
        .deploy_ok("slow", &[("index.js", "exports.main = async () => 'v2'")])
        .await;
    assert_ne!(v1["current"]["version"], v2["current"]["version"]);
    assert_eq!(server.invoke_text("slow", "{}").await, r#""v2""#);
    let (id, result) = running.await.unwrap();
    assert_eq!(result, r#""v1""#);
    let record: Value = server.record("default", &id).await.json().await.unwrap();
    assert_eq!(record["version"], v1["current"]["version"]);

    let same = server
        .deploy_ok("slow", &[("index.js", "exports.main = async () => 'v2'")])
        .await;
    assert_eq!(
        same["current"]["version"], v2["current"]["version"],
        "same content, same version"
    );
    Arc::try_unwrap(server).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_qualifier_runs_the_version_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    let v1 = server
        .deploy_ok("f", &[("index.js", "exports.main = async () => 'v1'")])
        .await;
    server
        .deploy_ok("f", &[("index.js", "exports.main = async () => 'v2'")])
        .await;
    let v1 = v1["current"]["version"].as_str().unwrap().to_owned();
    let invoke = |qualifier: &str| {
        server
            .http
            .post(format!("{}/v1/functions/f", server.url))
            .header("x-qualifier", qualifier)
            .body("{}")
            .send()
    };

    for qualifier in [v1.as_str(), &v1[..12]] {
        let response = invoke(qualifier).await.unwrap();
        assert_eq!(response.headers()["x-function-version"], v1.as_str());
        let id = request_id(&response);
        assert_eq!(response.text().await.unwrap(), r#""v1""#);
        let record: Value = server.record("default", &id).await.json().await.unwrap();
        assert_eq!(record["version"], v1.as_str());
    }
    let latest = invoke("$LATEST").await.unwrap();
    assert_eq!(latest.text().await.unwrap(), r#""v2""#);
    let unknown = invoke("0123456789ab").await.unwrap();
    error_of(unknown, 404, "FUNCTION_NOT_FOUND").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_and_records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    server.deploy_ok("add", ADD).await;
    server
        .deploy_ok(
            "hello",
            &[
                (
                    "index.js",
                    "module.exports.handler = function (event, context, callback) { console.log('-- hello world'); callback(null, 'Message from helloworld') }",
                ),
                ("config.json", r#"{"handler": "index.handler"}"#),
            ],
        )
        .await;
    let response = server.invoke("hello", "{}").await;
    let id = request_id(&response);
    assert_eq!(
        response.text().await.unwrap(),
        r#""Message from helloworld""#
    );
    server.stop().await;

    let server = Server::start(dir.path(), Options::default()).await;
    assert_eq!(server.invoke_text("add", r#"{"x":20,"y":22}"#).await, "42");
    let record: Value = server.record("default", &id).await.json().await.unwrap();
    assert_eq!(record["result"], r#""Message from helloworld""#);
    assert_eq!(record["logs"][0]["message"], "-- hello world");
    assert_eq!(record["logs"][0]["level"], "info");

    let list: Value = server.get_json("/v1/envs/default/functions").await;
    let names: Vec<&str> = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["add", "hello"]);
    let deleted = server
        .http
        .delete(format!("{}/v1/envs/default/functions/add", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    error_of(server.invoke("add", "{}").await, 404, "FUNCTION_NOT_FOUND").await;
    let again = server
        .http
        .delete(format!("{}/v1/envs/default/functions/add", server.url))
        .send()
        .await
        .unwrap();
    error_of(again, 404, "FUNCTION_NOT_FOUND").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_guard_deploys_and_invocations() {
    assert!(AuthPolicy::for_listener("0.0.0.0:8080".parse().unwrap(), None).is_err());
    assert!(AuthPolicy::for_listener("0.0.0.0:8080".parse().unwrap(), Some("k")).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        admin_key: Some("admin-secret"),
        ..Options::default()
    };
    let server = Server::start(dir.path(), options).await;
    let unauthenticated = server.deploy("prod", "add", ADD).await;
    error_of(unauthenticated, 401, "PERMISSION_DENIED").await;
    let deployed = server
        .http
        .put(format!("{}/v1/envs/prod/functions/add", server.url))
        .bearer_auth("admin-secret")
        .body(archive(ADD))
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 200);

    let invoke = |key: Option<&str>| {
        let mut request = server
            .http
            .post(format!("{}/v1/envs/prod/functions/add", server.url))
            .body(r#"{"x":1,"y":2}"#);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    error_of(invoke(None).await.unwrap(), 401, "PERMISSION_DENIED").await;
    assert_eq!(
        invoke(Some("admin-secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "3"
    );

    let issued: Value = server
        .http
        .post(format!("{}/v1/envs/prod/keys", server.url))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let env_key = issued["key"].as_str().unwrap().to_owned();
    let response = invoke(Some(&env_key)).await.unwrap();
    let id = request_id(&response);
    assert_eq!(response.text().await.unwrap(), "3");
    error_of(
        invoke(Some("wrong")).await.unwrap(),
        401,
        "PERMISSION_DENIED",
    )
    .await;
    let record = server
        .http
        .get(format!("{}/v1/envs/prod/invocations/{id}", server.url))
        .bearer_auth(&env_key)
        .send()
        .await
        .unwrap();
    assert_eq!(record.status(), 200);
    let env_key_deploy = server
        .http
        .put(format!("{}/v1/envs/prod/functions/add", server.url))
        .bearer_auth(&env_key)
        .body(archive(ADD))
        .send()
        .await
        .unwrap();
    error_of(env_key_deploy, 401, "PERMISSION_DENIED").await;

    // Reissuing the key revokes the old one, even after it was cached as verified.
    server
        .http
        .post(format!("{}/v1/envs/prod/keys", server.url))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    error_of(
        invoke(Some(&env_key)).await.unwrap(),
        401,
        "PERMISSION_DENIED",
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undefined_results_are_null_and_events_default_to_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    server
        .deploy_ok(
            "echo",
            &[(
                "index.js",
                "exports.main = async (e) => e.nothing ? undefined : e",
            )],
        )
        .await;
    assert_eq!(server.invoke_text("echo", "").await, "{}");
    assert_eq!(server.invoke_text("echo", r#"{"nothing":1}"#).await, "null");
    assert_eq!(server.invoke_text("echo", r#"[1,"a"]"#).await, r#"[1,"a"]"#);
    let _ = json!(null);
    server.stop().await;
}

#[tokio::test]
async fn a_function_says_which_engine_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    let deployed = server
        .deploy_ok("f", &[("index.js", "exports.main = async () => 1")])
        .await;
    assert_eq!(deployed["engine"], "js");
    let shown: Value = server.get_json("/v1/envs/default/functions/f").await;
    assert_eq!(shown["engine"], "js");
}

/// A request from a browser page at `origin`, with the preflight's headers
/// when `preflight` names the method it asks for.
fn from_page(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    origin: &str,
) -> reqwest::RequestBuilder {
    server
        .http
        .request(method, format!("{}{path}", server.url))
        .header("origin", origin)
}

async fn set_cors(server: &Server, settings: Value) -> reqwest::Response {
    server
        .http
        .put(format!("{}/v1/envs/default/cors", server.url))
        .json(&settings)
        .send()
        .await
        .unwrap()
}

const PAGE: &str = "https://app.example.com";

/// `add` of 1 and 2, called by a page from [`PAGE`].
async fn add_from_page(server: &Server) -> reqwest::Response {
    from_page(server, reqwest::Method::POST, "/v1/functions/add", PAGE)
        .body(r#"{"x":1,"y":2}"#)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_credentials_allowed_a_page_reads_cloudlets_own_headers_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    server.deploy_ok("add", ADD).await;
    let settings = json!({"allowedOrigins": [PAGE], "allowCredentials": true});
    assert_eq!(set_cors(&server, settings).await.status(), 200);
    let called = add_from_page(&server).await;
    assert_eq!(called.status(), 200);
    assert_eq!(called.headers()["access-control-allow-credentials"], "true");
    assert_eq!(
        called.headers()["access-control-expose-headers"],
        "x-request-id, x-function-version, x-cloudlet-error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_pages_from_allowed_origins_call_and_answers_their_preflights() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    server.deploy_ok("add", ADD).await;
    let settings =
        json!({"allowedOrigins": [PAGE], "allowedHeaders": ["content-type", "x-request-id"]});
    assert_eq!(set_cors(&server, settings.clone()).await.status(), 200);

    let preflight = from_page(&server, reqwest::Method::OPTIONS, "/v1/functions/add", PAGE)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], PAGE);
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        headers["access-control-allow-headers"],
        "content-type, x-request-id"
    );
    assert_eq!(headers["access-control-max-age"], "600");

    let called = add_from_page(&server).await;
    assert_eq!(called.status(), 200);
    assert_eq!(called.headers()["access-control-allow-origin"], PAGE);
    // Without credentials, the page may read every header of the answer.
    assert_eq!(called.headers()["access-control-expose-headers"], "*");
    assert_eq!(called.text().await.unwrap(), "3");

    let unlisted_header = from_page(&server, reqwest::Method::OPTIONS, "/v1/functions/add", PAGE)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-secret")
        .send()
        .await
        .unwrap();
    error_of(unlisted_header, 403, "CORS_ORIGIN_NOT_ALLOWED").await;
    assert_eq!(
        server.get_json("/v1/envs/default/cors").await,
        settings
            .as_object()
            .map(|s| {
                let mut full = s.clone();
                full.insert("allowCredentials".into(), json!(false));
                full.insert("allowedMethods".into(), json!([]));
                full.insert("maxAgeSeconds".into(), Value::Null);
                Value::Object(full)
            })
            .unwrap()
    );
    server.stop().await;

    // The settings are the env's, kept in the store.
    let server = Server::start(dir.path(), Options::default()).await;
    let again = from_page(&server, reqwest::Method::POST, "/v1/functions/add", PAGE)
        .body(r#"{"x":2,"y":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["access-control-allow-origin"], PAGE);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_refuses_pages_from_other_origins_before_the_function_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Options::default()).await;
    server.deploy_ok("add", ADD).await;
    // No settings: no page may call, though clients that are not browsers may.
    let unset = add_from_page(&server).await;
    error_of(unset, 403, "CORS_ORIGIN_NOT_ALLOWED").await;
    assert_eq!(server.invoke_text("add", r#"{"x":1,"y":2}"#).await, "3");
    let own_origin = from_page(
        &server,
        reqwest::Method::POST,
        "/v1/functions/add",
        &server.url,
    )
    .body(r#"{"x":1,"y":2}"#)
    .send()
    .await
    .unwrap();
    assert_eq!(
        own_origin.status(),
        200,
        "the server's own origin is not cross-origin"
    );

    assert_eq!(
        set_cors(&server, json!({"allowedOrigins": [PAGE]}))
            .await
            .status(),
        200
    );
    let other = from_page(
        &server,
        reqwest::Method::POST,
        "/v1/functions/add",
        "https://evil.example",
    )
    .body(r#"{"x":1,"y":2}"#)
    .send()
    .await
    .unwrap();
    let body = error_of(other, 403, "CORS_ORIGIN_NOT_ALLOWED").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("https://evil.example"),
        "{body}"
    );
    let preflight = from_page(
        &server,
        reqwest::Method::OPTIONS,
        "/v1/functions/add",
        "https://evil.example",
    )
    .header("access-control-request-method", "POST")
    .send()
    .await
    .unwrap();
    error_of(preflight, 403, "CORS_ORIGIN_NOT_ALLOWED").await;
    let bad = set_cors(
        &server,
        json!({"allowedOrigins": ["*"], "allowCredentials": true}),
    )
    .await;
    error_of(bad, 400, "INVALID_PARAM").await;
    server.stop().await;
}
