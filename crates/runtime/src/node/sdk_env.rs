//! What the vendors' SDKs read inside a Node.js function (clients.md §1.6):
//! `wx-server-sdk` and `@cloudbase/node-sdk` take their endpoint, env,
//! credentials and the end user from `process.env`, so the worker sets them
//! for each invocation, as SCF does. Part of it is fixed per function
//! version (sent when a worker loads it), part changes with each invocation.

use serde_json::{json, Map, Value};

use crate::{DeployedFunction, InvocationRequest};

/// The variables the SDKs read beyond their fixed list only when these name
/// them; what each lists is set per invocation.
const TCB_CONTEXT_KEYS: &str = "TCB_ENV,TCB_SOURCE,TCB_ROUTE_KEY";
const WX_CONTEXT_KEYS: &str = "WX_OPENID,WX_APPID,WX_UNIONID";

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
    let sdk = [
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
    ];
    for (key, value) in function.scf_variables().into_iter().chain(sdk) {
        env.entry(key).or_insert_with(|| json!(value));
    }
    env
}

/// The variables that change with each invocation: this server's route for
/// the SDKs, the invocation's credential (in `TENCENTCLOUD_SESSIONTOKEN`,
/// which both SDKs read and send as `sessionToken` whatever the key lists
/// say), the chain's source and its end user.
const INVOCATION_VARIABLES: [&str; 6] = [
    "TCB_CONTEXT_CNFG",
    "TENCENTCLOUD_SESSIONTOKEN",
    "TCB_SOURCE",
    "WX_OPENID",
    "WX_APPID",
    "WX_UNIONID",
];

/// The values of [`INVOCATION_VARIABLES`] for one invocation; `None` is unset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct SdkValues([Option<String>; 6]);

impl SdkValues {
    /// The values for `request`; the endpoint as its base URL, made into
    /// `TCB_CONTEXT_CNFG`'s JSON only when it is sent.
    pub(super) fn of(request: &InvocationRequest) -> Self {
        let calls = request.calls.as_ref();
        let identity = &request.origin.identity;
        Self([
            calls.and_then(|calls| calls.endpoint()),
            calls.map(|calls| calls.credential()),
            request.origin.source.clone(),
            identity.openid.clone(),
            identity.appid.clone(),
            identity.unionid.clone(),
        ])
    }

    /// The variables whose values differ from `sent`, as the worker's
    /// `invoke` message carries them (`null` unsets one): a worker keeps
    /// what it was last sent, and most invocations change one variable, the
    /// credential, or none.
    pub(super) fn changed_since(&self, sent: &SdkValues) -> Option<Map<String, Value>> {
        let changed: Map<String, Value> = INVOCATION_VARIABLES
            .iter()
            .zip(self.0.iter().zip(sent.0.iter()))
            .filter(|(_, (now, before))| now != before)
            .map(|(key, (now, _))| ((*key).to_owned(), variable(key, now.as_deref())))
            .collect();
        (!changed.is_empty()).then_some(changed)
    }
}

/// A variable's value as the worker sets it; the endpoint becomes the JSON
/// the SDKs read from `TCB_CONTEXT_CNFG`.
fn variable(key: &str, value: Option<&str>) -> Value {
    match (key, value) {
        (_, None) => Value::Null,
        ("TCB_CONTEXT_CNFG", Some(base)) => {
            Value::String(json!({ "URL": format!("{base}/admin") }).to_string())
        }
        (_, Some(value)) => Value::String(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_sent_as_the_sdks_config_json() {
        let mut values = SdkValues::default();
        values.0[0] = Some("http://127.0.0.1:8080".into());
        let sent = values
            .changed_since(&SdkValues::default())
            .expect("changes");
        assert_eq!(
            sent["TCB_CONTEXT_CNFG"],
            r#"{"URL":"http://127.0.0.1:8080/admin"}"#
        );
    }

    #[test]
    fn only_the_variables_that_changed_are_sent_and_a_removed_one_is_null() {
        let mut first = SdkValues::default();
        first.0[1] = Some("1.abc".into());
        first.0[3] = Some("o-1".into());
        let sent = first.changed_since(&SdkValues::default()).expect("changes");
        assert_eq!(sent.len(), 2);
        assert_eq!(sent["TENCENTCLOUD_SESSIONTOKEN"], "1.abc");
        assert!(first.changed_since(&first).is_none(), "nothing changed");
        let mut second = first.clone();
        second.0[1] = Some("2.def".into());
        second.0[3] = None;
        let sent = second.changed_since(&first).expect("changes");
        assert_eq!(sent["TENCENTCLOUD_SESSIONTOKEN"], "2.def");
        assert_eq!(sent["WX_OPENID"], Value::Null);
        assert_eq!(sent.len(), 2);
    }
}
