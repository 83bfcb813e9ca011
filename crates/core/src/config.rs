//! A function's `config.json`, in CloudBase's shape.
//!
//! Unknown keys are refused rather than ignored: a misspelt `timout` silently
//! falling back to 3 seconds is the kind of surprise a deploy should catch.

use std::collections::BTreeMap;

use crate::{AsyncConfig, Cron, TopicFilter};
use serde::{Deserialize, Serialize};

/// Why a `config.json` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("config.json is not valid: {0}")]
    Invalid(String),
    #[error("config.json: {field} must be {rule}, got {value}")]
    OutOfRange {
        field: &'static str,
        rule: &'static str,
        value: String,
    },
}

/// `file.export` from the `handler` field: `index.main` loads `index.js` and calls `main`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerRef {
    /// The module path inside the package, without extension (`index`, `src/app`).
    pub module: String,
    /// The exported function's name (`main`, `handler`).
    pub export: String,
}

impl HandlerRef {
    pub fn parse(handler: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::OutOfRange {
            field: "handler",
            rule: "of the form file.export, such as index.main",
            value: format!("{handler:?}"),
        };
        let (module, export) = handler.rsplit_once('.').ok_or_else(bad)?;
        let export_ok = !export.is_empty()
            && export
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        let module_ok = !module.is_empty()
            && !module.starts_with('/')
            && module.split('/').all(|seg| !seg.is_empty() && seg != "..");
        if export_ok && module_ok {
            Ok(Self {
                module: module.to_owned(),
                export: export.to_owned(),
            })
        } else {
            Err(bad())
        }
    }
}

impl std::fmt::Display for HandlerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.module, self.export)
    }
}

/// What runs a function: `config.json`'s `runtime`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Absent or `"js"`: the in-process js engine.
    #[default]
    Js,
    /// A Node.js runtime as CloudBase and SCF (`Nodejs18.15`, `Nodejs20.x`)
    /// or Lambda (`nodejs20.x`) name it: real Node.js, as written.
    Node(String),
    /// Any other language's runtime (`Python3.9`, `Go1`): only for a package
    /// that starts its own server with `scf_bootstrap` (an HTTP function).
    Other(String),
}

impl Runtime {
    /// What `config.json` may name for an event function, for error messages.
    pub const ACCEPTED: &'static str = "\"js\", or a Node.js runtime: \"Nodejs10.15\", \"Nodejs12.16\", \"Nodejs14.18\", \
         \"Nodejs16.13\", \"Nodejs18.15\", \"Nodejs20.x\" (CloudBase and SCF), \"nodejs18.x\", \"nodejs20.x\" (Lambda)";

    /// Reads a runtime name. Node names are `Nodejs` (any case) with a major
    /// version and an optional minor version or `.x`.
    pub fn parse(name: &str) -> Self {
        if name == "js" {
            return Runtime::Js;
        }
        let version = name
            .get(..6)
            .filter(|prefix| prefix.eq_ignore_ascii_case("nodejs"))
            .map(|_| &name[6..]);
        let is_node = version.is_some_and(|version| {
            let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
            !major.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && (minor == "x"
                    || (!minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())))
        });
        if is_node {
            Runtime::Node(name.to_owned())
        } else {
            Runtime::Other(name.to_owned())
        }
    }

    /// The name as `config.json` wrote it (`js` for the default).
    pub fn name(&self) -> &str {
        match self {
            Runtime::Js => "js",
            Runtime::Node(name) | Runtime::Other(name) => name,
        }
    }
}

/// What kind of function a version is: CloudBase's (and SCF's) function `type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FunctionKind {
    /// Called with events; answers with its handler's return value.
    #[default]
    Event,
    /// A web server its package's `scf_bootstrap` starts, which answers
    /// HTTP requests itself.
    #[serde(rename = "HTTP")]
    Http,
}

impl FunctionKind {
    fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("event") {
            Some(Self::Event)
        } else if name.eq_ignore_ascii_case("http") {
            Some(Self::Http)
        } else {
            None
        }
    }
}

/// Stored as its name; a stored `null` (versions deployed before runtimes
/// were typed) is the js engine's.
mod runtime_as_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Runtime;

    pub(super) fn serialize<S: Serializer>(
        runtime: &Runtime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match runtime {
            Runtime::Js => serializer.serialize_none(),
            other => serializer.serialize_some(other.name()),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Runtime, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?
            .map_or(Runtime::Js, |name| Runtime::parse(&name)))
    }
}

/// A trigger as written in `config.json`, checked at deploy: its name, and
/// a timer's cron expression ([`Cron`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub config: serde_json::Value,
    /// A timer's message to its function, the event's `Message`
    /// (CloudBase's "附加信息", at most 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Trigger {
    pub const TIMER: &'static str = "timer";
    pub const TOPIC: &'static str = "topic";
    /// CloudBase's bound on a timer's message.
    pub const MAX_MESSAGE_BYTES: usize = 4096;

    /// Refuses a trigger CloudBase would refuse: a name that breaks its rule
    /// (at most 60 letters, digits, `-` and `_`, starting with a letter), a
    /// timer whose cron expression does not parse, a message over 4 KiB.
    fn check(&self) -> Result<(), ConfigError> {
        let bad = |why: String| ConfigError::Invalid(format!("trigger {:?}: {why}", self.name));
        let name_ok = (1..=60).contains(&self.name.len())
            && self.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(bad(
                "a name is 1 to 60 letters, digits, '-' and '_', starting with a letter".into(),
            ));
        }
        if self
            .message
            .as_ref()
            .is_some_and(|m| m.len() > Self::MAX_MESSAGE_BYTES)
        {
            return Err(bad(format!(
                "a message is at most {} bytes",
                Self::MAX_MESSAGE_BYTES
            )));
        }
        if self.kind == Self::TOPIC {
            let filter = self.config.as_str().ok_or_else(|| {
                bad("a topic trigger's config is its topic filter, a string".into())
            })?;
            TopicFilter::parse(filter).map_err(|e| bad(e.to_string()))?;
        }
        if self.kind == Self::TIMER {
            let expression = self
                .config
                .as_str()
                .ok_or_else(|| bad("a timer's config is its cron expression, a string".into()))?;
            Cron::parse(expression).map_err(|e| bad(e.to_string()))?;
        }
        Ok(())
    }

    /// A topic subscription's filter, for a trigger that [`Trigger::check`] passed.
    pub fn topic_filter(&self) -> Option<TopicFilter> {
        (self.kind == Self::TOPIC)
            .then(|| {
                self.config
                    .as_str()
                    .and_then(|f| TopicFilter::parse(f).ok())
            })
            .flatten()
    }

    /// A timer's schedule, for a trigger that [`Trigger::check`] passed.
    pub fn schedule(&self) -> Option<Cron> {
        (self.kind == Self::TIMER)
            .then(|| self.config.as_str().and_then(|e| Cron::parse(e).ok()))
            .flatten()
    }
}

/// The validated configuration of one function version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionConfig {
    /// Event or HTTP function: set by the package (an HTTP function has an
    /// `scf_bootstrap`); `config.json` may say so too, and must agree.
    #[serde(rename = "type", default)]
    pub kind: FunctionKind,
    /// Seconds before the invocation is stopped (1..=900).
    pub timeout: u32,
    /// Memory limit of one instance in MB (16..=3072).
    pub memory_size: u32,
    pub env_variables: BTreeMap<String, String>,
    /// What runs the function.
    #[serde(with = "runtime_as_name", default)]
    pub runtime: Runtime,
    pub handler: HandlerRef,
    pub triggers: Vec<Trigger>,
    /// CloudBase's `permissions` block, kept for the access-control layer.
    pub permissions: Option<serde_json::Value>,
    /// CloudBase's `installDependency` flag: dependencies ship in the package here.
    pub install_dependency: Option<bool>,
    /// How many requests one instance of an HTTP function serves at once
    /// (CloudBase's multi-concurrency); more instances start past it.
    #[serde(default = "default_instance_concurrency")]
    pub instance_concurrency: u32,
    /// Defaults for its asynchronous invocations (`asyncConfig`), which the
    /// API's settings override. Boxed, and absent when not given: every
    /// deployed function keeps its config in memory, and most give none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_config: Option<Box<AsyncConfig>>,
}

fn default_instance_concurrency() -> u32 {
    FunctionConfig::DEFAULT_INSTANCE_CONCURRENCY
}

/// `config.json` as written by users. `deny_unknown_fields` is what makes typos an error.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
    timeout: Option<f64>,
    memory_size: Option<u32>,
    #[serde(default)]
    env_variables: BTreeMap<String, serde_json::Value>,
    runtime: Option<String>,
    handler: Option<String>,
    #[serde(default)]
    triggers: Vec<Trigger>,
    permissions: Option<serde_json::Value>,
    install_dependency: Option<bool>,
    instance_concurrency: Option<u32>,
    #[serde(default)]
    async_config: AsyncConfig,
    /// CloudBase CLI's configs sometimes repeat the function name; it must match the folder.
    name: Option<String>,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            kind: FunctionKind::Event,
            timeout: Self::DEFAULT_TIMEOUT_S,
            memory_size: Self::DEFAULT_MEMORY_MB,
            env_variables: BTreeMap::new(),
            runtime: Runtime::Js,
            handler: HandlerRef {
                module: "index".into(),
                export: "main".into(),
            },
            triggers: Vec::new(),
            permissions: None,
            install_dependency: None,
            instance_concurrency: Self::DEFAULT_INSTANCE_CONCURRENCY,
            async_config: None,
        }
    }
}

/// JSON text without a UTF-8 byte order mark: editors on Windows save one,
/// and Node ignores it when it reads JSON.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

impl FunctionConfig {
    pub const DEFAULT_TIMEOUT_S: u32 = 3;
    pub const MAX_TIMEOUT_S: u32 = 900;
    pub const DEFAULT_MEMORY_MB: u32 = 256;
    pub const MIN_MEMORY_MB: u32 = 16;
    pub const MAX_MEMORY_MB: u32 = 3072;
    pub const DEFAULT_INSTANCE_CONCURRENCY: u32 = 10;
    pub const MAX_INSTANCE_CONCURRENCY: u32 = 100;

    /// The defaults its `config.json` gives its asynchronous invocations.
    pub fn async_defaults(&self) -> AsyncConfig {
        self.async_config.as_deref().cloned().unwrap_or_default()
    }

    /// Parses and validates `config.json`. An absent file means all defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_json_stating_kind(bytes).map(|(config, _)| config)
    }

    /// The config, and its `type` when `config.json` states one (a package
    /// checks that against its `scf_bootstrap`).
    pub(crate) fn from_json_stating_kind(
        bytes: &[u8],
    ) -> Result<(Self, Option<FunctionKind>), ConfigError> {
        let bytes = without_bom(bytes);
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut config = FunctionConfig::default();
        let stated = raw
            .kind
            .map(|kind| {
                FunctionKind::parse(&kind).ok_or(ConfigError::OutOfRange {
                    field: "type",
                    rule: "\"Event\" or \"HTTP\"",
                    value: format!("{kind:?}"),
                })
            })
            .transpose()?;
        config.kind = stated.unwrap_or_default();
        if let Some(t) = raw.timeout {
            if !(t.fract() == 0.0 && (1.0..=f64::from(Self::MAX_TIMEOUT_S)).contains(&t)) {
                return Err(ConfigError::OutOfRange {
                    field: "timeout",
                    rule: "a whole number of seconds from 1 to 900",
                    value: t.to_string(),
                });
            }
            config.timeout = t as u32;
        }
        if let Some(m) = raw.memory_size {
            if !(Self::MIN_MEMORY_MB..=Self::MAX_MEMORY_MB).contains(&m) {
                return Err(ConfigError::OutOfRange {
                    field: "memorySize",
                    rule: "a number of MB from 16 to 3072",
                    value: m.to_string(),
                });
            }
            config.memory_size = m;
        }
        for (key, value) in raw.env_variables {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(ConfigError::OutOfRange {
                    field: "envVariables",
                    rule: "keyed by non-empty names without '=' or NUL",
                    value: format!("{key:?}"),
                });
            }
            // CloudBase's console stores numbers and booleans as strings; accept them the same way.
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(ConfigError::OutOfRange {
                        field: "envVariables",
                        rule: "a map of strings",
                        value: format!("{key}={other}"),
                    })
                }
            };
            config.env_variables.insert(key, value);
        }
        if let Some(runtime) = raw.runtime {
            // Other languages are checked by the package, which knows whether
            // it is an HTTP function (see `Package::from_files`).
            config.runtime = Runtime::parse(&runtime);
        }
        if let Some(handler) = raw.handler {
            config.handler = HandlerRef::parse(&handler)?;
        }
        for (i, trigger) in raw.triggers.iter().enumerate() {
            trigger.check()?;
            if raw.triggers[..i].iter().any(|t| t.name == trigger.name) {
                return Err(ConfigError::Invalid(format!(
                    "two triggers are named {:?}; a function's triggers have names of their own",
                    trigger.name
                )));
            }
        }
        config.triggers = raw.triggers;
        config.permissions = raw.permissions;
        config.install_dependency = raw.install_dependency;
        raw.async_config
            .validate()
            .map_err(|why| ConfigError::Invalid(format!("asyncConfig: {why}")))?;
        config.async_config =
            (raw.async_config != AsyncConfig::default()).then(|| Box::new(raw.async_config));
        if let Some(n) = raw.instance_concurrency {
            if !(1..=Self::MAX_INSTANCE_CONCURRENCY).contains(&n) {
                return Err(ConfigError::OutOfRange {
                    field: "instanceConcurrency",
                    rule: "a number of requests from 1 to 100",
                    value: n.to_string(),
                });
            }
            config.instance_concurrency = n;
        }
        let _ = raw.name;
        Ok((config, stated))
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.timeout))
    }

    pub fn memory_limit_bytes(&self) -> usize {
        self.memory_size as usize * 1024 * 1024
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn async_config_in_config_json_is_read_and_checked() {
        let config = FunctionConfig::from_json(
            br#"{"asyncConfig": {"maxRetries": 0, "maxEventAgeSeconds": 120, "onFailure": "alarm"}}"#,
        )
        .expect("valid");
        let async_config = config.async_defaults();
        assert_eq!(async_config.max_retries(), 0);
        assert_eq!(async_config.max_event_age_ms(), 120_000);
        let refused = FunctionConfig::from_json(br#"{"asyncConfig": {"maxRetries": 9}}"#)
            .expect_err("out of range");
        assert!(
            refused.to_string().contains("asyncConfig: maxRetries"),
            "{refused}"
        );
        assert!(FunctionConfig::from_json(br#"{"asyncConfig": {"retries": 1}}"#).is_err());
    }

    use super::*;

    #[test]
    fn defaults_when_empty() {
        let c = FunctionConfig::from_json(b"{}").unwrap();
        assert_eq!(c, FunctionConfig::default());
        assert_eq!(c.timeout, 3);
        assert_eq!(c.memory_size, 256);
        assert_eq!(c.handler.to_string(), "index.main");
    }

    #[test]
    fn instance_concurrency_is_from_1_to_100_and_10_by_default() {
        assert_eq!(FunctionConfig::default().instance_concurrency, 10);
        let c = FunctionConfig::from_json(br#"{"instanceConcurrency": 1}"#).unwrap();
        assert_eq!(c.instance_concurrency, 1);
        for bad in ["0", "101"] {
            let json = format!(r#"{{"instanceConcurrency": {bad}}}"#);
            let error = FunctionConfig::from_json(json.as_bytes()).unwrap_err();
            assert!(error.to_string().contains("instanceConcurrency"), "{error}");
        }
    }

    #[test]
    fn full_cloudbase_config() {
        let c = FunctionConfig::from_json(
            br#"{"timeout": 20, "memorySize": 128, "envVariables": {"A": "1", "N": 2},
                "runtime": "Nodejs16.13", "handler": "src/app.handler", "installDependency": true,
                "triggers": [{"name": "t", "type": "timer", "config": "0 0 2 1 * * *"}],
                "permissions": {"openapi": []}}"#,
        )
        .unwrap();
        assert_eq!(c.timeout, 20);
        assert_eq!(c.memory_size, 128);
        assert_eq!(c.env_variables["N"], "2");
        assert_eq!(c.handler.module, "src/app");
        assert_eq!(c.handler.export, "handler");
        assert_eq!(c.triggers[0].kind, "timer");
    }

    #[test]
    fn a_timer_with_a_bad_cron_expression_is_refused_with_the_reason() {
        let refused = |json: &str| {
            FunctionConfig::from_json(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        let six =
            refused(r#"{"triggers": [{"name": "t", "type": "timer", "config": "0 0 2 1 * *"}]}"#);
        assert!(
            six.contains("trigger \"t\"") && six.contains("has 6 fields"),
            "{six}"
        );
        let range = refused(
            r#"{"triggers": [{"name": "t", "type": "timer", "config": "0 0 25 * * * *"}]}"#,
        );
        assert!(range.contains("outside 0–23"), "{range}");
        let name = refused(
            r#"{"triggers": [{"name": "1st", "type": "timer", "config": "* * * * * * *"}]}"#,
        );
        assert!(name.contains("starting with a letter"), "{name}");
        let twice = refused(
            r#"{"triggers": [{"name": "t", "type": "timer", "config": "* * * * * * *"},
                             {"name": "t", "type": "timer", "config": "0 * * * * * *"}]}"#,
        );
        assert!(twice.contains("two triggers"), "{twice}");
    }

    #[test]
    fn a_timer_may_carry_a_message_for_its_event() {
        let config = FunctionConfig::from_json(
            br#"{"triggers": [{"name": "nightly", "type": "timer", "config": "0 0 2 * * * *", "message": "backup"}]}"#,
        )
        .unwrap();
        assert_eq!(config.triggers[0].message.as_deref(), Some("backup"));
        assert!(config.triggers[0].schedule().is_some());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let err = FunctionConfig::from_json(br#"{"timout": 5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `timout`"), "{err}");
        assert!(FunctionConfig::from_json(br#"{"timeout": 901}"#).is_err());
        assert!(FunctionConfig::from_json(br#"{"timeout": 0}"#).is_err());
        assert!(FunctionConfig::from_json(br#"{"memorySize": 8}"#).is_err());
        assert!(FunctionConfig::from_json(br#"{"handler": "main"}"#).is_err());
        assert!(FunctionConfig::from_json(br#"{"handler": "../x.main"}"#).is_err());

        assert!(FunctionConfig::from_json(b"[").is_err());
    }

    #[test]
    fn a_byte_order_mark_before_the_json_is_ignored() {
        let with_bom = b"\xEF\xBB\xBF{\"timeout\": 5}";
        assert_eq!(FunctionConfig::from_json(with_bom).unwrap().timeout, 5);
    }

    #[test]
    fn runtimes_are_typed_by_their_names() {
        for (name, runtime) in [
            ("js", Runtime::Js),
            ("Nodejs10.15", Runtime::Node("Nodejs10.15".into())),
            ("Nodejs20.x", Runtime::Node("Nodejs20.x".into())),
            ("nodejs18.x", Runtime::Node("nodejs18.x".into())),
            ("Nodejs16", Runtime::Node("Nodejs16".into())),
            ("Python3.9", Runtime::Other("Python3.9".into())),
            ("Nodejs", Runtime::Other("Nodejs".into())),
            ("nodejs18.y", Runtime::Other("nodejs18.y".into())),
        ] {
            assert_eq!(Runtime::parse(name), runtime, "{name}");
        }
    }

    #[test]
    fn a_stored_config_without_a_runtime_runs_on_the_js_engine() {
        let stored = serde_json::to_value(FunctionConfig::default()).unwrap();
        assert_eq!(stored["runtime"], serde_json::Value::Null);
        let back: FunctionConfig = serde_json::from_value(stored).unwrap();
        assert_eq!(back.runtime, Runtime::Js);
        let node = FunctionConfig::from_json(br#"{"runtime": "Nodejs18.15"}"#).unwrap();
        let back: FunctionConfig =
            serde_json::from_value(serde_json::to_value(&node).unwrap()).unwrap();
        assert_eq!(back.runtime, Runtime::Node("Nodejs18.15".into()));
    }
}
