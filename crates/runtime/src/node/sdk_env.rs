//! What the vendors' SDKs read inside a Node.js function (clients.md §1.6):
//! `wx-server-sdk` and `@cloudbase/node-sdk` take their endpoint, env,
//! credentials and the end user from `process.env`, so the worker sets them
//! for each invocation, as SCF does. Part of it is fixed per function
//! version (sent when a worker loads it), part changes with each invocation.

use serde_json::{json, Map, Value};

use crate::{DeployedFunction, InvocationRequest};

/// The variables the SDKs read beyond their fixed list only when these name
/// them; what each lists is set per invocation.
const TCB_CONTEXT_KEYS: &str = "TCB_ENV,TCB_SOURCE,TCB_SESSIONTOKEN,TCB_ROUTE_KEY,TCB_SEQID";
const WX_CONTEXT_KEYS: &str = "WX_OPENID,WX_APPID,WX_UNIONID,WX_API_TOKEN";

/// A function version's environment: its `config.json` variables, then what
/// SCF sets and the SDKs need (unless the function sets them itself). The
/// secret ID and key are placeholders: the SDKs refuse to run without them
/// (`wx-server-sdk` even crashes its process), and Cloudlet identifies the
/// caller by the per-invocation credential instead.
pub(super) fn function_environment(function: &DeployedFunction) -> Map<String, Value> {
    let mut env: Map<String, Value> = function
        .config
        .env_variables
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    for (key, value) in [
        ("SCF_NAMESPACE", function.env.as_str()),
        ("TCB_ENV", function.env.as_str()),
        ("SCF_FUNCTIONNAME", function.name.as_str()),
        ("SCF_FUNCTIONVERSION", function.version.short()),
        // "Inside SCF": the SDKs use the configured endpoint and skip
        // probing a metadata server.
        ("TENCENTCLOUD_RUNENV", "SCF"),
        // CloudBase's default region; the SDKs complain in the function's
        // log without one, though the endpoint they use does not need it.
        ("TENCENTCLOUD_REGION", "ap-shanghai"),
        ("TENCENTCLOUD_SECRETID", "cloudlet"),
        ("TENCENTCLOUD_SECRETKEY", "cloudlet"),
        ("TCB_CONTEXT_KEYS", TCB_CONTEXT_KEYS),
        ("WX_CONTEXT_KEYS", WX_CONTEXT_KEYS),
    ] {
        env.entry(key).or_insert_with(|| json!(value));
    }
    env
}

/// What changes with each invocation; `null` removes a variable the last
/// invocation set. The credential goes in every variable an SDK sends a
/// token from (`sessionToken`, `tcb_sessionToken`, `wxCloudApiToken`).
pub(super) fn invocation_environment(request: &InvocationRequest) -> Map<String, Value> {
    let calls = request.calls.as_ref();
    let credential = calls.map(|calls| calls.credential());
    let endpoint = calls
        .and_then(|calls| calls.endpoint())
        .map(|base| json!({ "URL": format!("{base}/admin") }).to_string());
    let identity = &request.origin.identity;
    let mut env = Map::new();
    for (key, value) in [
        ("TCB_CONTEXT_CNFG", endpoint),
        ("TENCENTCLOUD_SESSIONTOKEN", credential.clone()),
        ("TCB_SESSIONTOKEN", credential.clone()),
        ("WX_API_TOKEN", credential),
        ("TCB_SOURCE", request.origin.source.clone()),
        ("WX_OPENID", identity.openid.clone()),
        ("WX_APPID", identity.appid.clone()),
        ("WX_UNIONID", identity.unionid.clone()),
        ("TCB_SEQID", Some(request.request_id.to_string())),
    ] {
        env.insert(key.to_owned(), value.map_or(Value::Null, Value::String));
    }
    env
}
