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

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvocationStatus {
    Succeeded,
    Failed,
}

impl InvocationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Succeeded => "succeeded",
            InvocationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "succeeded" => Some(InvocationStatus::Succeeded),
            "failed" => Some(InvocationStatus::Failed),
            _ => None,
        }
    }
}

/// A function error as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
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
