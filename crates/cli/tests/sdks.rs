//! The real npm packages against a real `cloudlet serve`: `wx-server-sdk`
//! inside node-engine functions (installed by the engine at deploy, from
//! the function's package.json), and `@cloudbase/node-sdk` in a plain Node
//! script outside Cloudlet. They need Node.js and the npm registry; where
//! either is missing the tests say so and skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::{examples_dir, write_function, TestServer};

/// The versions the tests use: wx-server-sdk's current 4.x, and the
/// node-sdk with `accessKey` (3.18 and later).
const WX_SERVER_SDK: &str = "4.0.2";
const NODE_SDK: &str = "3.18.3";

fn deploy(server: &TestServer, dir: &str, extra: &[&str]) {
    let mut args = vec!["deploy", dir];
    args.extend_from_slice(extra);
    let out = server.cli(&args);
    assert!(out.status.success(), "{out:?}");
}

/// A node-engine function `name` whose package.json depends on the real
/// wx-server-sdk.
fn node_function(root: &Path, name: &str, source: &str) -> String {
    let package =
        json!({"name": name, "version": "1.0.0", "dependencies": {"wx-server-sdk": WX_SERVER_SDK}});
    write_function(
        root,
        name,
        &[
            ("index.js", source),
            ("package.json", &package.to_string()),
            (
                "config.json",
                r#"{"runtime": "Nodejs18.15", "timeout": 10}"#,
            ),
        ],
    )
}

async fn invoke_with(
    server: &TestServer,
    name: &str,
    event: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/functions/{name}", server.url))
        .body(event.to_string());
    for (header, value) in headers {
        request = request.header(*header, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_seed_caller_runs_unmodified_on_the_real_wx_server_sdk() {
    if !support::npm_reachable() {
        return;
    }
    let server = TestServer::start(&[]);
    deploy(&server, examples_dir().join("add").to_str().unwrap(), &[]);
    // The example as it is, with the node engine's runtime.
    let root = tempfile::tempdir().unwrap();
    let seed = examples_dir().join("call-add");
    let files: Vec<(String, String)> = ["index.js", "package.json"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read_to_string(seed.join(f)).unwrap(),
            )
        })
        .collect();
    let mut files: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, s)| (f.as_str(), s.as_str()))
        .collect();
    files.push(("config.json", r#"{"runtime": "Nodejs18.15"}"#));
    let caller = write_function(root.path(), "call-add", &files);
    deploy(&server, &caller, &[]);
    let (status, body) = invoke_with(&server, "call-add", json!({}), &[]).await;
    assert_eq!((status, body), (200, json!(3)));
}

const PROBE: &str = r#"const cloud = require('wx-server-sdk')
const tcb = require('@cloudbase/node-sdk')
cloud.init({ env: cloud.DYNAMIC_CURRENT_ENV })
const app = tcb.init({ env: tcb.SYMBOL_CURRENT_ENV })
exports.main = async (event, context) => {
  if (event.inner) return { context: cloud.getWXContext(), event }
  const promised = await cloud.callFunction({ name: 'probe', data: { inner: true, buf: Buffer.from('hi') } })
  const called = await new Promise((resolve) => cloud.callFunction({
    name: 'probe', data: { inner: true },
    success: (res) => resolve({ success: res.errMsg, requestID: typeof res.requestID }),
    fail: (err) => resolve({ fail: err.errMsg }),
  }))
  let failed
  try { await cloud.callFunction({ name: 'missing' }) } catch (e) { failed = { errCode: e.errCode, errMsg: e.errMsg } }
  const nodeSdk = (await app.callFunction({ name: 'probe', data: { inner: true } })).result.event.inner
  const parsed = tcb.parseContext(context)
  return { promised, called, failed, own: cloud.getWXContext(), nodeSdk, parsed: [parsed.functionName, parsed.environment.SCF_NAMESPACE] }
}"#;

#[tokio::test]
async fn the_real_sdks_carry_buffers_callbacks_errors_and_the_end_user() {
    if !support::npm_reachable() {
        return;
    }
    let server = TestServer::start(&[]);
    let root = tempfile::tempdir().unwrap();
    deploy(&server, &node_function(root.path(), "probe", PROBE), &[]);
    let user = [("x-cloudlet-openid", "o-7"), ("x-cloudlet-appid", "wx-app")];
    let (status, body) = invoke_with(&server, "probe", json!({}), &user).await;
    assert_eq!(status, 200, "{body}");
    let inner = &body["promised"]["result"];
    assert_eq!(
        inner["event"]["buf"],
        json!({"type": "Buffer", "data": [104, 105]})
    );
    assert_eq!(
        inner["event"]["userInfo"],
        json!({"appId": "wx-app", "openId": "o-7"})
    );
    assert_eq!(
        inner["context"],
        json!({"OPENID": "o-7", "APPID": "wx-app", "ENV": "default", "SOURCE": "wx_client,scf"})
    );
    assert_eq!(body["promised"]["errMsg"], "callFunction:ok");
    assert!(body["promised"]["requestID"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert_eq!(
        body["called"],
        json!({"success": "callFunction:ok", "requestID": "string"})
    );
    assert_eq!(body["failed"]["errCode"], -1);
    assert_eq!(
        body["failed"]["errMsg"],
        "callFunction:fail function missing not found in env default"
    );
    assert_eq!(
        body["own"],
        json!({"OPENID": "o-7", "APPID": "wx-app", "ENV": "default", "SOURCE": "wx_client"})
    );
    // The node-sdk the package brings works too, and reads SCF's context.
    assert_eq!(body["nodeSdk"], true);
    assert_eq!(body["parsed"], json!(["probe", "default"]));
}

/// `@cloudbase/node-sdk` installed for the outside scripts, once, in the
/// cache outside the clone.
fn node_sdk() -> PathBuf {
    support::npm_packages(
        &format!("node-sdk/{NODE_SDK}"),
        &[&format!("@cloudbase/node-sdk@{NODE_SDK}")],
    )
}

const OUTSIDE: &str = r#"const tcb = require('@cloudbase/node-sdk')
const options = { env: 'default', accessKey: process.env.ENV_KEY }
if (process.env.SERVICE_URL) options.serviceUrl = process.env.SERVICE_URL
const app = tcb.init(options)
app.callFunction({ name: 'add', data: { x: 40, y: 2 } }).then(
  (res) => console.log(JSON.stringify(res)),
  (err) => console.log(JSON.stringify({ code: err.code, message: err.message })))
"#;

/// Runs the outside script against `server` with `key`, pointed at it by
/// `TCB_CONTEXT_CNFG` or by the `serviceUrl` option.
fn run_outside(server: &TestServer, key: &str, by_option: bool) -> Value {
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), OUTSIDE).unwrap();
    let url = format!("{}/admin", server.url);
    let mut command = Command::new("node");
    command
        .arg(script.path())
        .env("NODE_PATH", node_sdk())
        .env("ENV_KEY", key);
    if by_option {
        command.env("SERVICE_URL", &url);
    } else {
        command.env("TCB_CONTEXT_CNFG", json!({"URL": url}).to_string());
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"))
}

#[tokio::test]
async fn the_real_node_sdk_calls_from_a_script_outside_with_an_env_key() {
    if !support::npm_reachable() {
        return;
    }
    let server = TestServer::start(&["--admin-key", "admin-secret"]);
    let cli = |args: &[&str]| {
        Command::new(support::cloudlet_bin())
            .args(args)
            .env("CLOUDLET_SERVER", &server.url)
            .env("CLOUDLET_KEY", "admin-secret")
            .output()
            .unwrap()
    };
    assert!(
        cli(&["deploy", examples_dir().join("add").to_str().unwrap()])
            .status
            .success()
    );
    let key = String::from_utf8(cli(&["envs", "key", "default"]).stdout).unwrap();
    let key = key.trim();
    for by_option in [false, true] {
        let answer = run_outside(&server, key, by_option);
        assert_eq!(answer["result"], 42, "{answer}");
        assert!(answer["requestId"]
            .as_str()
            .is_some_and(|id| id.len() == 36));
    }
    let refused = run_outside(&server, "not-the-key", false);
    assert_eq!(refused["code"], "PERMISSION_DENIED", "{refused}");
}
