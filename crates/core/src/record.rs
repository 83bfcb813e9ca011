//! What is kept about functions and invocations: the shapes the store persists
//! and the API returns.

use serde::{Deserialize, Serialize};

use crate::{EnvId, ErrorCode, FunctionConfig, FunctionName, RequestId, VersionId};

/// Severity of one captured `console` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return None,
        })
    }
}

/// One line a function printed, tagged with when it was printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Unix milliseconds.
    pub timestamp: i64,
    pub level: LogLevel,
    pub message: String,
}

/// Where an invocation stands: how a synchronous one ended, or where an
/// asynchronous one is on its way (`enqueued → running → succeeded |
/// failed | retrying | expired`, or `cancelled` while it waited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvocationStatus {
    /// Accepted onto the queue; no attempt has started.
    Enqueued,
    /// An attempt runs now.
    Running,
    Succeeded,
    /// It failed, and (if asynchronous) will not run again.
    Failed,
    /// An attempt failed; the next one is due at `nextAttemptAt`.
    Retrying,
    /// Its age ran out before it could succeed.
    Expired,
    /// Cancelled while it waited to run.
    Cancelled,
}

impl InvocationStatus {
    pub const ALL: [Self; 7] = [
        Self::Enqueued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Retrying,
        Self::Expired,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enqueued => "enqueued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Retrying => "retrying",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether nothing more will happen to the invocation.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Expired | Self::Cancelled
        )
    }
}

/// One attempt of an asynchronous invocation, as its record lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    /// Unix milliseconds; unknown for an attempt whose server stopped
    /// while it ran (its lease ran out, and the next attempt followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// `succeeded` or `failed`.
    pub status: InvocationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FunctionError>,
}

/// A function error as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    pub code: ErrorCode,
    /// The thrown error's name (`TypeError`, a custom class's `name`), when
    /// the function threw an error object; Lambda's `errorType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// The error's message, without its name.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

impl FunctionError {
    /// An error the platform words (a limit, a crash), with no thrown name.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            error_type: None,
            message: message.into(),
            stack: None,
        }
    }

    /// One line for people, as Node prints an error: the message after the
    /// error's name, unless that is the plain `Error`.
    pub fn summary(&self) -> String {
        match self.error_type.as_deref() {
            Some(name) if name != "Error" && !name.is_empty() => {
                format!("{name}: {}", self.message)
            }
            _ => self.message.clone(),
        }
    }
}

/// Everything known about one finished invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    pub request_id: RequestId,
    pub env: EnvId,
    pub function: FunctionName,
    pub version: VersionId,
    pub status: InvocationStatus,
    /// Unix milliseconds when the invocation was accepted.
    pub started_at: i64,
    /// Wall time from acceptance to result, in microseconds.
    pub duration_us: u64,
    /// Instance creation and module load time on a cold start, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_us: Option<u64>,
    /// True when the invocation had to create its instance.
    pub cold: bool,
    /// What started it: `http`, `cli`, …
    pub trigger: String,
    /// The JSON text of the result, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FunctionError>,
    pub logs: Vec<LogLine>,
    /// True when the function printed more than the per-invocation log cap.
    pub logs_truncated: bool,
    /// The invocation whose code made this one, when a function called it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<InvocationRef>,
    /// The first invocation of the chain of calls this one is part of; none
    /// when this one was not called by a function (it is its own root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<InvocationRef>,
    /// The response an HTTP function gave, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpResponseSummary>,
    /// An asynchronous invocation's attempts so far, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// When a retrying invocation's next attempt is due (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
}

/// What the record of an HTTP function's request keeps of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponseSummary {
    /// The status the function answered with.
    pub status: u16,
    /// Body bytes sent to the client.
    pub bytes: u64,
}

/// An invocation named by its env and request ID: a link in a call chain,
/// which may cross envs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRef {
    pub env: EnvId,
    pub request_id: RequestId,
}

/// A record as the API shows it: with the invocations its code made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordWithChildren {
    #[serde(flatten)]
    pub record: InvocationRecord,
    /// The functions this invocation called, oldest first.
    #[serde(default)]
    pub children: Vec<InvocationSummary>,
}

/// One line about an invocation: what a listing of a chain's calls shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationSummary {
    pub env: EnvId,
    pub request_id: RequestId,
    pub function: FunctionName,
    pub status: InvocationStatus,
    /// Unix milliseconds when it was accepted.
    pub started_at: i64,
    pub duration_us: u64,
    /// The error's code, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// What started it (`http`, `call`, `destination`, …).
    #[serde(default)]
    pub trigger: String,
}

impl InvocationRecord {
    /// The one-line summary of this record.
    pub fn summary(&self) -> InvocationSummary {
        InvocationSummary {
            env: self.env.clone(),
            request_id: self.request_id.clone(),
            function: self.function.clone(),
            status: self.status,
            started_at: self.started_at,
            duration_us: self.duration_us,
            error_code: self.error.as_ref().map(|e| e.code),
            trigger: self.trigger.clone(),
        }
    }
}

/// One immutable deployed version of a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: VersionId,
    pub config: FunctionConfig,
    /// Size of the stored package in bytes.
    pub package_size: u64,
    /// Unix milliseconds of the first deploy of this content.
    pub created_at: i64,
}

/// A function and the version it currently serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionInfo {
    pub env: EnvId,
    pub name: FunctionName,
    pub current: VersionInfo,
    /// Unix milliseconds of the last deploy.
    pub updated_at: i64,
    /// The engine that runs the current version on this server (`js`, `node`);
    /// the server fills it in, the store does not know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Why that is not the engine the function's runtime asks for, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thrown(error_type: Option<&str>, message: &str) -> FunctionError {
        FunctionError {
            error_type: error_type.map(str::to_owned),
            ..FunctionError::new(ErrorCode::FunctionInvocationFailed, message)
        }
    }

    #[test]
    fn a_summary_names_the_error_as_node_prints_it() {
        assert_eq!(thrown(Some("TypeError"), "bad").summary(), "TypeError: bad");
        assert_eq!(thrown(Some("Error"), "plain").summary(), "plain");
        assert_eq!(thrown(None, "a limit").summary(), "a limit");
    }

    #[test]
    fn every_status_reads_back_from_its_name() {
        for status in InvocationStatus::ALL {
            assert_eq!(InvocationStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(InvocationStatus::parse("done"), None);
    }

    #[test]
    fn the_error_type_is_left_out_of_json_when_unknown() {
        let json = serde_json::to_value(thrown(None, "m")).expect("json");
        assert!(json.get("errorType").is_none(), "{json}");
        let json = serde_json::to_value(thrown(Some("RangeError"), "m")).expect("json");
        assert_eq!(json["errorType"], "RangeError");
    }
}
