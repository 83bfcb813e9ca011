//! Functions calling functions under a real `cloudlet serve`: the seeds'
//! callers in the js engine (whose wx-server-sdk, @cloudbase/node-sdk and
//! linkedge-core-sdk are built in), call chains and their records, the
//! depth and deadline limits, the end user a chain acts for, and bad input
//! on the TCB admin route. The real npm packages in the node engine are in
//! `sdks.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{examples_dir, write_function, write_js_function, TestServer};

fn deploy(server: &TestServer, dir: &str, extra: &[&str]) {
    let mut args = vec!["deploy", dir];
    args.extend_from_slice(extra);
    let out = server.cli(&args);
    assert!(out.status.success(), "{out:?}");
}

fn deploy_example(server: &TestServer, path: &str) {
    deploy(server, examples_dir().join(path).to_str().unwrap(), &[]);
}

/// Invokes `name` in `env` over the native API; returns the status, the
/// request ID and the body as JSON.
async fn invoke(server: &TestServer, env: &str, name: &str, event: Value) -> (u16, String, Value) {
    invoke_with(server, env, name, event, &[]).await
}

async fn invoke_with(
    server: &TestServer,
    env: &str,
    name: &str,
    event: Value,
    headers: &[(&str, &str)],
) -> (u16, String, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/envs/{env}/functions/{name}", server.url))
        .body(event.to_string());
    for (header, value) in headers {
        request = request.header(*header, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, id, body)
}

/// The record of `id`, with the calls it made.
async fn record(server: &TestServer, env: &str, id: &str) -> Value {
    let url = format!("{}/v1/envs/{env}/invocations/{id}", server.url);
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// POSTs `body` to the TCB admin route, as the SDKs do.
async fn admin(server: &TestServer, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/admin?env=default&seqId=1", server.url))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn logs_text(record: &Value) -> String {
    record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_seed_caller_gets_3_from_add_through_the_built_in_wx_server_sdk() {
    let server = TestServer::start(&[]);
    deploy_example(&server, "add");
    deploy_example(&server, "call-add");
    let (status, id, body) = invoke(&server, "default", "call-add", json!({})).await;
    assert_eq!((status, body), (200, json!(3)));

    let caller = record(&server, "default", &id).await;
    let children = caller["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{caller}");
    assert_eq!(children[0]["function"], "add");
    let callee_id = children[0]["requestId"].as_str().unwrap();
    let callee = record(&server, "default", callee_id).await;
    assert_eq!(callee["caller"], json!({"env": "default", "requestId": id}));
    assert_eq!(callee["root"], json!({"env": "default", "requestId": id}));
    assert_eq!(callee["trigger"], "call");
}

#[tokio::test]
async fn call_function_answers_with_request_id_in_both_styles_and_buffers_arrive_as_json() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let echo = write_js_function(root.path(), "echo", "exports.main = async (e) => e", "{}");
    let caller = write_js_function(
        root.path(),
        "caller",
        r#"const cloud = require('wx-server-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
exports.main = async () => {
  const promised = await cloud.callFunction({ name: 'echo', data: { buf: Buffer.from([1, 2, 255]) } })
  const called = await new Promise((resolve) => {
    const seen = []
    cloud.callFunction({
      name: 'echo', data: { x: 1 },
      success: (res) => seen.push(['success', res.result.x]),
      fail: (err) => seen.push(['fail', err.errMsg]),
      complete: () => resolve(seen),
    })
  })
  const failed = await new Promise((resolve) => cloud.callFunction({
    name: 'missing', fail: (err) => resolve({ errCode: err.errCode, errMsg: err.errMsg, code: err.code }),
  }))
  return { promised, called, failed }
}"#,
        "{}",
    );
    deploy(&server, &echo, &[]);
    deploy(&server, &caller, &[]);
    let (status, _, body) = invoke(&server, "default", "caller", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["promised"]["result"]["buf"],
        json!({"type": "Buffer", "data": [1, 2, 255]})
    );
    assert_eq!(body["promised"]["errMsg"], "callFunction:ok");
    assert!(body["promised"]["requestID"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert_eq!(body["called"], json!([["success", 1]]));
    assert_eq!(body["failed"]["errCode"], -1);
    assert_eq!(body["failed"]["code"], "RESOURCE_NOT_FOUND");
    assert_eq!(
        body["failed"]["errMsg"],
        "callFunction:fail function missing not found in env default"
    );
}

#[tokio::test]
async fn a_copy_of_the_sdk_in_node_modules_does_not_shadow_the_built_in_one() {
    let server = TestServer::start(&[]);
    deploy_example(&server, "add");
    let root = tempfile::tempdir().unwrap();
    let caller = write_function(
        root.path(),
        "shadowed",
        &[
            ("index.js", "const cloud = require('wx-server-sdk')\nexports.main = async () => (await cloud.callFunction({ name: 'add', data: { x: 2, y: 5 } })).result"),
            ("node_modules/wx-server-sdk/index.js", "throw new Error('the copy in node_modules was loaded')"),
        ],
    );
    deploy(&server, &caller, &[]);
    let (status, _, body) = invoke(&server, "default", "shadowed", json!({})).await;
    assert_eq!((status, body), (200, json!(7)));
}

#[tokio::test]
async fn node_sdk_calls_and_other_sdk_parts_say_what_is_missing() {
    let server = TestServer::start(&[]);
    deploy_example(&server, "add");
    let root = tempfile::tempdir().unwrap();
    let caller = write_js_function(
        root.path(),
        "tcb",
        r#"const tcb = require('@cloudbase/node-sdk')
const cloud = require('wx-server-sdk')
const app = tcb.init({ env: tcb.SYMBOL_CURRENT_ENV })
exports.main = async () => {
  const res = await app.callFunction({ name: 'add', data: { x: 20, y: 22 } })
  let missing
  try { app.database() } catch (e) { missing = e.message }
  let storage
  try { cloud.uploadFile({}) } catch (e) { storage = e.message }
  return { result: res.result, requestId: typeof res.requestId, missing, storage }
}"#,
        "{}",
    );
    deploy(&server, &caller, &[]);
    let (status, _, body) = invoke(&server, "default", "tcb", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], 42);
    assert_eq!(body["requestId"], "string");
    for part in ["missing", "storage"] {
        let message = body[part].as_str().unwrap();
        assert!(
            message.contains("not available in Cloudlet's js engine"),
            "{message}"
        );
        assert!(message.contains("node engine"), "{message}");
    }
}

/// The seed's invoker and helloworld, deployed side by side: once in an env
/// named after the seed's service (`EdgeFC`), and once in `default`, where
/// `serviceName` names no env and means the caller's own.
#[tokio::test]
async fn the_link_iot_edge_seed_runs_as_written_with_its_service_as_an_env_or_without() {
    for env in ["EdgeFC", "default"] {
        let server = TestServer::start(&[]);
        for name in ["invoker", "helloworld"] {
            let dir = examples_dir().join("edge").join(name);
            deploy(&server, dir.to_str().unwrap(), &["--env", env]);
        }
        let (status, id, body) = invoke(&server, env, "invoker", json!({})).await;
        assert_eq!((status, &body), (200, &Value::Null), "{env}");
        let invoker = record(&server, env, &id).await;
        assert_eq!(logs_text(&invoker), "Message from helloworld", "{env}");
        let child = &invoker["children"][0];
        assert_eq!(child["env"], env);
        let callee = record(&server, env, child["requestId"].as_str().unwrap()).await;
        let printed = logs_text(&callee);
        assert!(
            printed.starts_with("String message from Invoker.\n"),
            "{printed}"
        );
        assert!(
            printed.contains("invokerContext: { custom: { data: 'Custom context from Invoker' } }"),
            "{printed}"
        );
        assert!(
            printed.ends_with("Custom context from Invoker\n-- hello world"),
            "{printed}"
        );
    }
}

const FC_CALLER: &str = r#"const { FCClient } = require('linkedge-core-sdk')
const fc = new FCClient()
const call = (params) => new Promise((resolve) => {
  try {
    fc.invokeFunction(params, (err, data) => resolve(err ? { err: err.message, code: err.code } : { data }))
  } catch (e) {
    resolve({ thrown: e.message })
  }
})
exports.main = async (event) => {
  const out = {}
  out.text = await call({ functionName: 'kind', payload: 'plain text' })
  out.binary = await call({ functionName: 'kind', payload: Buffer.from([0, 1, 2]) })
  out.object = await call({ functionName: 'kind', payload: { x: 1 } })
  out.arn = await call({ functionId: 'acs:fc:::services/nowhere.LATEST/functions/kind', payload: 'by arn' })
  out.failed = await call({ functionName: 'boom' })
  out.asynchronous = await call({ functionName: 'kind', invocationType: 'Async', payload: 'later' })
  out.badType = await call({ functionName: 'kind', invocationType: 'Later' })
  out.badContext = await call({ functionName: 'kind', invokerContext: '%%% not base64' })
  out.unknown = await call({ functionName: 'nobody' })
  out.promised = await fc.invokeFunction({ functionName: 'kind', payload: 'no callback' })
  out.device = await new Promise((resolve) => new (require('linkedge-core-sdk').IoTData)().getThingProperties({}, (err) => resolve(err.message)))
  return out
}"#;

const FC_CALLEE: &str = r#"exports.main = async (event) => Buffer.isBuffer(event)
  ? 'buffer ' + event.toString('hex')
  : typeof event === 'string' ? 'string ' + event : event"#;

#[tokio::test]
async fn fc_client_carries_strings_buffers_and_errors_as_the_real_sdk_does() {
    fc_client_in("{}").await;
}

#[tokio::test]
async fn fc_client_in_the_node_engine_follows_the_same_rules() {
    if support::node_found() {
        fc_client_in(r#"{"runtime": "Nodejs18.15"}"#).await;
    }
}

/// FCClient's rules, with the caller and callees deployed with `config`.
async fn fc_client_in(config: &str) {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    for (name, source) in [
        ("caller", FC_CALLER),
        ("kind", FC_CALLEE),
        (
            "boom",
            "exports.main = async () => { throw new RangeError('out of range') }",
        ),
    ] {
        deploy(
            &server,
            &write_js_function(root.path(), name, source, config),
            &[],
        );
    }
    let (status, id, out) = invoke(&server, "default", "caller", json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["text"]["data"],
        json!({"statusCode": 200, "payload": "string plain text"})
    );
    assert_eq!(out["binary"]["data"]["payload"], "buffer 000102");
    assert_eq!(out["object"]["data"]["payload"], r#"{"x":1}"#);
    assert_eq!(out["arn"]["data"]["payload"], "string by arn");
    assert_eq!(
        out["failed"]["data"]["functionError"],
        "UnhandledInvocationError"
    );
    let error: Value =
        serde_json::from_str(out["failed"]["data"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(error["errorType"], "RangeError");
    assert_eq!(error["errorMessage"], "out of range");
    assert_eq!(
        out["badType"]["err"],
        r#"Incorrect invocationType Later. It should be "Sync" or "Async"."#
    );
    assert!(
        out["badContext"]["err"]
            .as_str()
            .unwrap()
            .contains("base64"),
        "{out}"
    );
    assert_eq!(out["unknown"]["code"], "FUNCTION_NOT_FOUND");
    assert!(out["unknown"]["err"].as_str().unwrap().contains("nobody"));
    assert_eq!(out["promised"]["payload"], "string no callback");
    assert!(out["device"]
        .as_str()
        .unwrap()
        .contains("not available in Cloudlet"));

    // Async answers with the callee's request ID at once; the callee runs
    // in the background and has its record.
    let async_id = out["asynchronous"]["data"].as_str().unwrap().to_owned();
    let mut callee = Value::Null;
    for _ in 0..100 {
        callee = record(&server, "default", &async_id).await;
        if callee["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(callee["result"], r#""string later""#, "{callee}");
    assert_eq!(callee["caller"]["requestId"], id);
}

#[tokio::test]
async fn a_function_calling_itself_without_end_stops_at_the_depth_limit() {
    let server = TestServer::start(&["--max-call-depth", "5"]);
    let root = tempfile::tempdir().unwrap();
    let again = write_js_function(
        root.path(),
        "again",
        "const cloud = require('wx-server-sdk')\nexports.main = async (e) => (await cloud.callFunction({ name: 'again', data: { n: e.n + 1 } })).result",
        "{}",
    );
    deploy(&server, &again, &[]);
    let (status, id, body) = invoke(&server, "default", "again", json!({"n": 0})).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("past the limit of 5"),
        "{body}"
    );

    // Six invocations ran (depths 0 to 5); the seventh was refused before it ran.
    let mut depth = 0;
    let mut next = record(&server, "default", &id).await;
    while let Some(child) = next["children"].as_array().and_then(|c| c.first()).cloned() {
        depth += 1;
        assert_eq!(next["children"].as_array().unwrap().len(), 1);
        next = record(&server, "default", child["requestId"].as_str().unwrap()).await;
        assert_eq!(next["root"]["requestId"], id);
    }
    assert_eq!(depth, 5);

    // No instance is left busy: every one of them serves again.
    let status: Value = reqwest::get(format!("{}/v1/status", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["invocations"]["running"], 0, "{status}");
    let (status, _, _) = invoke(&server, "default", "again", json!({"n": 0})).await;
    assert_eq!(status, 500);
}

#[tokio::test]
async fn a_synchronous_callee_ends_with_its_callers_deadline() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let slow = write_js_function(
        root.path(),
        "slow",
        "exports.main = () => new Promise((resolve) => setTimeout(resolve, 5000))",
        r#"{"timeout": 20}"#,
    );
    let impatient = write_js_function(
        root.path(),
        "impatient",
        "const cloud = require('wx-server-sdk')\nexports.main = async () => cloud.callFunction({ name: 'slow' })",
        r#"{"timeout": 1}"#,
    );
    deploy(&server, &slow, &[]);
    deploy(&server, &impatient, &[]);
    let started = std::time::Instant::now();
    let (status, id, body) = invoke(&server, "default", "impatient", json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The callee ends just before its caller, which hears why.
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("timeout"),
        "{body}"
    );
    let caller = record(&server, "default", &id).await;
    let callee = &caller["children"][0];
    assert_eq!(callee["function"], "slow");
    assert_eq!(callee["errorCode"], "FUNCTION_TIME_LIMIT_EXCEEDED");
    assert!(
        callee["durationUs"].as_u64().unwrap() < 1_500_000,
        "{callee}"
    );
}

#[tokio::test]
async fn functions_call_other_envs_only_where_the_server_allows_it() {
    let strict = TestServer::start(&[]);
    let open = TestServer::start(&["--env-calls", "app=shared"]);
    let root = tempfile::tempdir().unwrap();
    let caller = write_js_function(
        root.path(),
        "caller",
        "const cloud = require('wx-server-sdk')\ncloud.init({ env: 'shared' })\nexports.main = async () => (await cloud.callFunction({ name: 'add', data: { x: 1, y: 1 } })).result",
        "{}",
    );
    for server in [&strict, &open] {
        deploy(
            server,
            examples_dir().join("add").to_str().unwrap(),
            &["--env", "shared"],
        );
        deploy(server, &caller, &["--env", "app"]);
    }
    let (status, _, body) = invoke(&strict, "app", "caller", json!({})).await;
    assert_eq!(status, 500);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("may not call functions of env shared"),
        "{message}"
    );
    assert!(message.contains("--env-calls app=shared"), "{message}");
    let (status, _, body) = invoke(&open, "app", "caller", json!({})).await;
    assert_eq!((status, body), (200, json!(2)));
}

#[tokio::test]
async fn the_end_user_reaches_every_function_of_a_chain_with_its_source() {
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let whoami = write_js_function(
        root.path(),
        "whoami",
        "const cloud = require('wx-server-sdk')\nexports.main = async (event) => ({ context: cloud.getWXContext(), userInfo: event.userInfo })",
        "{}",
    );
    let front = write_js_function(
        root.path(),
        "front",
        "const cloud = require('wx-server-sdk')\nexports.main = async (event) => ({ own: cloud.getWXContext(), userInfo: event.userInfo, callee: (await cloud.callFunction({ name: 'whoami', data: { userInfo: { openId: 'forged' } } })).result })",
        "{}",
    );
    deploy(&server, &whoami, &[]);
    deploy(&server, &front, &[]);
    let user = [
        ("x-cloudlet-openid", "o-123"),
        ("x-cloudlet-appid", "wx-app"),
        ("x-cloudlet-unionid", "u-9"),
    ];
    let (status, _, body) = invoke_with(&server, "default", "front", json!({}), &user).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["own"],
        json!({"OPENID": "o-123", "APPID": "wx-app", "UNIONID": "u-9", "ENV": "default", "SOURCE": "wx_client"})
    );
    assert_eq!(
        body["userInfo"],
        json!({"appId": "wx-app", "openId": "o-123"})
    );
    assert_eq!(body["callee"]["context"]["SOURCE"], "wx_client,scf");
    assert_eq!(body["callee"]["context"]["OPENID"], "o-123");
    assert_eq!(
        body["callee"]["userInfo"],
        json!({"appId": "wx-app", "openId": "o-123"})
    );

    let (status, _, body) = invoke(&server, "default", "whoami", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["context"], json!({"ENV": "default"}));
}

#[tokio::test]
async fn only_the_admin_key_may_name_the_end_user() {
    let server = TestServer::start(&["--admin-key", "admin-secret"]);
    deploy_admin(&server);
    let key = env_key(&server);
    let (status, _, body) = invoke_with(
        &server,
        "default",
        "add",
        json!({"x": 1, "y": 1}),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("x-cloudlet-openid", "o-1"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "PERMISSION_DENIED");
    let (status, _, _) = invoke_with(
        &server,
        "default",
        "add",
        json!({"x": 1, "y": 1}),
        &[
            ("authorization", "Bearer admin-secret"),
            ("x-cloudlet-openid", "o-1"),
        ],
    )
    .await;
    assert_eq!(status, 200);
}

fn deploy_admin(server: &TestServer) {
    let add = examples_dir().join("add");
    let out = std::process::Command::new(support::cloudlet_bin())
        .args(["deploy", add.to_str().unwrap()])
        .env("CLOUDLET_SERVER", &server.url)
        .env("CLOUDLET_KEY", "admin-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn env_key(server: &TestServer) -> String {
    let out = std::process::Command::new(support::cloudlet_bin())
        .args(["envs", "key", "default"])
        .env("CLOUDLET_SERVER", &server.url)
        .env("CLOUDLET_KEY", "admin-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn logs_tree_draws_the_chain_with_each_calls_status_and_duration() {
    let server = TestServer::start(&[]);
    deploy_example(&server, "add");
    deploy_example(&server, "call-add");
    let (_, id, _) = invoke(&server, "default", "call-add", json!({})).await;
    let caller = record(&server, "default", &id).await;
    let callee = caller["children"][0]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    // From the callee too: the tree starts at the chain's root.
    for from in [&id, &callee] {
        let out = server.cli(&["logs", "--tree", from]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with(&format!("call-add (env default)  {id}  succeeded  ")),
            "{text}"
        );
        assert!(
            lines[1].starts_with(&format!("└─ add (env default)  {callee}  succeeded  ")),
            "{text}"
        );
    }
    let out = server.cli(&["logs", &id]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("called    add (env default)  {callee}  succeeded")),
        "{text}"
    );
    let out = server.cli(&["logs", &callee]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("caller    {id} (env default)")),
        "{text}"
    );
}

#[tokio::test]
async fn the_admin_route_answers_bad_requests_with_cloudbase_codes_on_200() {
    let server = TestServer::start(&[]);
    deploy_example(&server, "add");
    let cases = [
        (
            json!({"function_name": "add"}),
            "INVALID_PARAM",
            "no action",
        ),
        (
            json!({"action": "database.queryDocument"}),
            "INVALID_ACTION",
            "action database.queryDocument is not served",
        ),
        (
            json!({"action": "functions.invokeFunction", "function_name": "nope", "request_data": "{}"}),
            "RESOURCE_NOT_FOUND",
            "function nope not found",
        ),
        (
            json!({"action": "functions.invokeFunction", "function_name": "add", "request_data": "{oops"}),
            "INVALID_PARAM",
            "request_data is not JSON",
        ),
        (
            json!({"action": "functions.invokeFunction", "function_name": "add", "sessionToken": "7.00000000000000000000000000000000"}),
            "ACCESS_TOKEN_EXPIRED",
            "invocation that has ended",
        ),
    ];
    for (body, code, says) in cases {
        let (status, answer) = admin(&server, body.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(answer["code"], code, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{answer}"
        );
        assert!(answer["requestId"].as_str().is_some(), "{answer}");
    }
    let (status, answer) = admin(
        &server,
        json!({"action": "functions.invokeFunction", "function_name": "add", "request_data": "{\"x\":1,\"y\":2}"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["response_data"], "3");
}

/// A credential is good for its own invocation and env only: a function
/// that hands its credential out, or names another env with it, is refused.
#[tokio::test]
async fn an_invocations_credential_works_only_for_its_env_and_only_while_it_runs() {
    if !support::node_found() {
        return;
    }
    let server = TestServer::start(&[]);
    deploy_example(&server, "add");
    deploy(
        &server,
        examples_dir().join("add").to_str().unwrap(),
        &["--env", "other"],
    );
    let root = tempfile::tempdir().unwrap();
    let raw = write_js_function(
        root.path(),
        "raw",
        r#"const http = require('http')
const post = (body) => new Promise((resolve, reject) => {
  const url = new URL(JSON.parse(process.env.TCB_CONTEXT_CNFG).URL)
  const req = http.request(url, { method: 'POST' }, (res) => {
    let text = ''; res.on('data', (c) => text += c); res.on('end', () => resolve(JSON.parse(text)))
  })
  req.on('error', reject); req.end(JSON.stringify(body))
})
exports.main = async () => {
  const token = process.env.TENCENTCLOUD_SESSIONTOKEN
  const call = (env) => post({ action: 'functions.invokeFunction', function_name: 'add', request_data: '{"x":2,"y":3}', envName: env, sessionToken: token })
  return { own: await call('default'), other: await call('other'), token }
}"#,
        r#"{"runtime": "Nodejs18.15"}"#,
    );
    deploy(&server, &raw, &[]);
    let (status, _, body) = invoke(&server, "default", "raw", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["own"]["data"]["response_data"], "5");
    assert_eq!(body["other"]["code"], "PERMISSION_DENIED", "{body}");
    let token = body["token"].as_str().unwrap();
    let (_, expired) = admin(
        &server,
        json!({"action": "functions.invokeFunction", "function_name": "add", "sessionToken": token}),
    )
    .await;
    assert_eq!(expired["code"], "ACCESS_TOKEN_EXPIRED", "{expired}");
}

/// The node engine's workers are freed too when a chain stops at the depth
/// limit: each level's worker answers, and the function serves again.
#[tokio::test]
async fn a_node_function_calling_itself_without_end_stops_and_frees_its_workers() {
    if !support::node_found() {
        return;
    }
    let server = TestServer::start(&["--max-call-depth", "3"]);
    let root = tempfile::tempdir().unwrap();
    let again = write_js_function(
        root.path(),
        "again",
        r#"const { FCClient } = require('linkedge-core-sdk')
exports.main = (event, context, callback) => new FCClient().invokeFunction(
  { functionName: 'again', payload: { n: event.n + 1 } },
  (err, data) => callback(null, err ? { stoppedAt: event.n, code: err.code } : JSON.parse(data.payload)))"#,
        r#"{"runtime": "Nodejs18.15"}"#,
    );
    deploy(&server, &again, &[]);
    for _ in 0..2 {
        let (status, _, body) = invoke(&server, "default", "again", json!({"n": 0})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"stoppedAt": 3, "code": "EXCEED_CALL_DEPTH_LIMIT"})
        );
        let status: Value = reqwest::get(format!("{}/v1/status", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["invocations"]["running"], 0, "{status}");
    }
}
