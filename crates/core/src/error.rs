//! The stable error codes every client sees, and the JSON body that carries them.
//!
//! Codes follow CloudBase's list where it has one. Each protocol maps them to
//! its own wire form (the native API's statuses are in the server's
//! `api/native/error.rs`, which a test keeps in step with `docs/errors.md`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. The string form never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The env or the function does not exist.
    FunctionNotFound,
    /// The function threw, rejected, or could not be loaded.
    FunctionInvocationFailed,
    /// The function ran past its `timeout`.
    FunctionTimeLimitExceeded,
    /// The function allocated more than its `memorySize`.
    FunctionMemoryLimitExceeded,
    /// The function already runs as many instances as it may.
    FunctionExceedResourceLimit,
    /// The server is running as many invocations as it may.
    ExceedConcurrentRequestLimit,
    /// The request body is larger than the configured limit.
    ExceedRequestSizeLimit,
    /// The request body stopped arriving.
    RequestTimeout,
    /// The function's result is larger than the configured limit.
    ExceedMaxResponseSize,
    /// The server holds as many connections as it may.
    ExceedConnectionLimit,
    /// Function instances hold as much memory as the server's budget allows.
    ExceedMemoryBudget,
    /// A malformed request: bad JSON, a bad name, a bad header value.
    InvalidParam,
    /// A deploy was refused: the archive or its `config.json` is not valid.
    InvalidFunctionPackage,
    /// An env name that breaks the naming rule.
    InvalidEnv,
    /// Missing or wrong credentials.
    PermissionDenied,
    /// A browser page from an origin the env's CORS settings do not allow.
    CorsOriginNotAllowed,
    /// A route of the HTTP access service with the same host and path prefix exists.
    RouteConflict,
    /// A route, record or other resource that does not exist.
    ResourceNotFound,
    /// The route exists but not with this method.
    InvalidAction,
    /// An env's temporary objects would hold more than its quota.
    ExceedStorageQuota,
    /// The server is shutting down and takes no new work.
    ServiceUnavailable,
    /// The server shut down before the function finished, past its grace period.
    FunctionTerminatedByShutdown,
    /// An HTTP function's server did not start, or its process died.
    FunctionStatusAbnormal,
    /// An event function was called as an HTTP function, or the other way round.
    InvalidFunctionType,
    /// A chain of functions calling functions went deeper than the limit.
    ExceedCallDepthLimit,
    /// An env's queue of asynchronous invocations is full.
    ExceedAsyncQueueLimit,
    /// An asynchronous invocation's age ran out before it succeeded.
    EventAgeExceeded,
    /// A cancel of an invocation that does not wait to run.
    InvocationNotCancellable,
    /// A fault inside Cloudlet (storage, engine); the message says which.
    SysErr,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 29] = [
        ErrorCode::FunctionNotFound,
        ErrorCode::FunctionInvocationFailed,
        ErrorCode::FunctionTimeLimitExceeded,
        ErrorCode::FunctionMemoryLimitExceeded,
        ErrorCode::FunctionExceedResourceLimit,
        ErrorCode::ExceedConcurrentRequestLimit,
        ErrorCode::ExceedRequestSizeLimit,
        ErrorCode::RequestTimeout,
        ErrorCode::ExceedMaxResponseSize,
        ErrorCode::ExceedConnectionLimit,
        ErrorCode::ExceedMemoryBudget,
        ErrorCode::InvalidParam,
        ErrorCode::InvalidFunctionPackage,
        ErrorCode::InvalidEnv,
        ErrorCode::PermissionDenied,
        ErrorCode::CorsOriginNotAllowed,
        ErrorCode::RouteConflict,
        ErrorCode::ResourceNotFound,
        ErrorCode::InvalidAction,
        ErrorCode::ExceedStorageQuota,
        ErrorCode::ServiceUnavailable,
        ErrorCode::FunctionTerminatedByShutdown,
        ErrorCode::FunctionStatusAbnormal,
        ErrorCode::InvalidFunctionType,
        ErrorCode::ExceedCallDepthLimit,
        ErrorCode::ExceedAsyncQueueLimit,
        ErrorCode::EventAgeExceeded,
        ErrorCode::InvocationNotCancellable,
        ErrorCode::SysErr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FunctionNotFound => "FUNCTION_NOT_FOUND",
            ErrorCode::FunctionInvocationFailed => "FUNCTION_INVOCATION_FAILED",
            ErrorCode::FunctionTimeLimitExceeded => "FUNCTION_TIME_LIMIT_EXCEEDED",
            ErrorCode::FunctionMemoryLimitExceeded => "FUNCTION_MEMORY_LIMIT_EXCEEDED",
            ErrorCode::FunctionExceedResourceLimit => "FUNCTION_EXCEED_RESOURCE_LIMIT",
            ErrorCode::ExceedConcurrentRequestLimit => "EXCEED_CONCURRENT_REQUEST_LIMIT",
            ErrorCode::ExceedRequestSizeLimit => "EXCEED_REQUEST_SIZE_LIMIT",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::ExceedMaxResponseSize => "EXCEED_MAX_RESPONSE_SIZE",
            ErrorCode::ExceedConnectionLimit => "EXCEED_CONNECTION_LIMIT",
            ErrorCode::ExceedMemoryBudget => "EXCEED_MEMORY_BUDGET",
            ErrorCode::InvalidParam => "INVALID_PARAM",
            ErrorCode::InvalidFunctionPackage => "INVALID_FUNCTION_PACKAGE",
            ErrorCode::InvalidEnv => "INVALID_ENV",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::CorsOriginNotAllowed => "CORS_ORIGIN_NOT_ALLOWED",
            ErrorCode::RouteConflict => "ROUTE_CONFLICT",
            ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::InvalidAction => "INVALID_ACTION",
            ErrorCode::ExceedStorageQuota => "EXCEED_STORAGE_QUOTA",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::FunctionTerminatedByShutdown => "FUNCTION_TERMINATED_BY_SHUTDOWN",
            ErrorCode::FunctionStatusAbnormal => "FUNCTION_STATUS_ABNORMAL",
            ErrorCode::InvalidFunctionType => "INVALID_FUNCTION_TYPE",
            ErrorCode::ExceedCallDepthLimit => "EXCEED_CALL_DEPTH_LIMIT",
            ErrorCode::ExceedAsyncQueueLimit => "EXCEED_ASYNC_QUEUE_LIMIT",
            ErrorCode::EventAgeExceeded => "EVENT_AGE_EXCEEDED",
            ErrorCode::InvocationNotCancellable => "INVOCATION_NOT_CANCELLABLE",
            ErrorCode::SysErr => "SYS_ERR",
        }
    }

    /// The code CloudBase reports for this one: what the TCB admin route
    /// (`wx-server-sdk`, `@cloudbase/node-sdk`) and the js engine's built-in
    /// SDKs answer with. CloudBase reports
    /// every failure of the function itself as `FUNCTIONS_EXECUTE_FAIL`;
    /// where CloudBase has no code (the call depth limit), Cloudlet's own is
    /// sent.
    pub fn cloudbase(self) -> &'static str {
        match self {
            ErrorCode::FunctionInvocationFailed
            | ErrorCode::FunctionTimeLimitExceeded
            | ErrorCode::FunctionMemoryLimitExceeded
            | ErrorCode::ExceedMaxResponseSize
            | ErrorCode::FunctionTerminatedByShutdown
            | ErrorCode::FunctionStatusAbnormal => "FUNCTIONS_EXECUTE_FAIL",
            ErrorCode::FunctionNotFound | ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::FunctionExceedResourceLimit
            | ErrorCode::ExceedConcurrentRequestLimit
            | ErrorCode::ExceedConnectionLimit
            | ErrorCode::ExceedAsyncQueueLimit
            | ErrorCode::ExceedMemoryBudget => "EXCEED_CONCURRENT_REQUEST_LIMIT",
            ErrorCode::ExceedRequestSizeLimit | ErrorCode::ExceedStorageQuota => {
                "EXCEED_REQUEST_SIZE_LIMIT"
            }
            ErrorCode::RequestTimeout | ErrorCode::EventAgeExceeded => "SERVER_TIMEOUT",
            ErrorCode::InvalidParam
            | ErrorCode::InvalidFunctionPackage
            | ErrorCode::InvalidFunctionType
            | ErrorCode::InvocationNotCancellable
            | ErrorCode::RouteConflict => "INVALID_PARAM",
            ErrorCode::InvalidEnv => "INVALID_ENV",
            ErrorCode::PermissionDenied | ErrorCode::CorsOriginNotAllowed => "PERMISSION_DENIED",
            ErrorCode::InvalidAction => "INVALID_ACTION",
            ErrorCode::ExceedCallDepthLimit => "EXCEED_CALL_DEPTH_LIMIT",
            ErrorCode::ServiceUnavailable | ErrorCode::SysErr => "SYS_ERR",
        }
    }

    /// True for errors raised by the function's own code or limits, as opposed to
    /// the request or the platform. Records and logs tell the two apart.
    /// Whether the platform refused for now (a limit, the memory budget, a
    /// server shutting down), so that the same request may succeed later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::FunctionExceedResourceLimit
                | ErrorCode::ExceedConcurrentRequestLimit
                | ErrorCode::ExceedMemoryBudget
                | ErrorCode::ServiceUnavailable
        )
    }

    pub fn is_function_error(self) -> bool {
        matches!(
            self,
            ErrorCode::FunctionInvocationFailed
                | ErrorCode::FunctionTimeLimitExceeded
                | ErrorCode::FunctionMemoryLimitExceeded
                | ErrorCode::ExceedMaxResponseSize
                | ErrorCode::FunctionTerminatedByShutdown
                | ErrorCode::FunctionStatusAbnormal
        )
    }

    /// One line of documentation per code, used for `docs/errors.md`.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::FunctionNotFound => "The env or the function does not exist.",
            ErrorCode::FunctionInvocationFailed => {
                "The function threw, rejected, passed an error to its callback, or could not be loaded. The message is the error's message; the record keeps the stack."
            }
            ErrorCode::FunctionTimeLimitExceeded => {
                "The function ran past its `timeout` and was stopped. Its instance is discarded."
            }
            ErrorCode::FunctionMemoryLimitExceeded => {
                "The function allocated more than its `memorySize` and was stopped. Its instance is discarded."
            }
            ErrorCode::FunctionExceedResourceLimit => {
                "The function already runs as many concurrent instances as it may (`--max-instances-per-function`). Sent with `Retry-After`."
            }
            ErrorCode::ExceedConcurrentRequestLimit => {
                "The server already runs as many invocations as it may (`--max-concurrent-invocations`). Sent with `Retry-After`."
            }
            ErrorCode::ExceedRequestSizeLimit => {
                "The request body is larger than `--max-body-bytes` (6 MiB by default)."
            }
            ErrorCode::RequestTimeout => {
                "The request body stopped arriving for longer than `--body-read-timeout-seconds` (10 s by default). The connection is closed."
            }
            ErrorCode::ExceedMaxResponseSize => {
                "The function returned a result larger than `--max-result-bytes` (6 MiB by default)."
            }
            ErrorCode::InvalidParam => {
                "The request is malformed: the body is not JSON, or a name or header breaks its rule."
            }
            ErrorCode::InvalidFunctionPackage => {
                "A deploy was refused: the archive cannot be read, has no handler file, or its `config.json` is invalid."
            }
            ErrorCode::InvalidEnv => "The env name breaks the naming rule.",
            ErrorCode::PermissionDenied => {
                "The `Authorization: Bearer` key is missing, wrong, or not allowed this operation."
            }
            ErrorCode::CorsOriginNotAllowed => {
                "A browser page from an origin the env's CORS settings (`PUT /v1/envs/{env}/cors`) do not allow, or with a method or header they do not allow; the function did not run."
            }
            ErrorCode::RouteConflict => {
                "A route with the same host and path prefix exists (`cloudlet routes list`); remove it first."
            }
            ErrorCode::ResourceNotFound => "No such route, invocation record or env.",
            ErrorCode::InvalidAction => "The route does not accept this method.",
            ErrorCode::ExceedConnectionLimit => {
                "The server already holds `--max-connections` connections; this one was answered and closed. Sent with `Retry-After`."
            }
            ErrorCode::ExceedMemoryBudget => {
                "Function instances already hold the server's `--memory-budget-bytes`, idle instances were evicted, and none freed enough in time. Sent with `Retry-After`."
            }
            ErrorCode::ExceedStorageQuota => {
                "An upload to temporary storage (`POST /v1/envs/{env}/tmp`) would make the env's objects hold more than `--tmp-env-quota-bytes` (1 GiB by default); they free their space when they expire."
            }
            ErrorCode::ServiceUnavailable => {
                "The server is shutting down and takes no new invocations or deploys. Sent with `Retry-After`."
            }
            ErrorCode::FunctionTerminatedByShutdown => {
                "The server shut down while the function ran, and ended it once `--shutdown-grace-seconds` had passed. Its record keeps this code."
            }
            ErrorCode::FunctionStatusAbnormal => {
                "An HTTP function's server did not start: its process exited, or it did not accept connections within `--http-startup-timeout-seconds` (10 s by default); or its process died while serving. The message ends with the process's last output."
            }
            ErrorCode::InvalidFunctionType => {
                "An HTTP function (one with `scf_bootstrap`) was invoked with an event, or an event function on a web path (`/web/…`, `?webfn=true`, `X-Tcb-Webfn`)."
            }
            ErrorCode::ExceedCallDepthLimit => {
                "A function called a function, which called another, deeper than `--max-call-depth` (32 by default); the last callee was not run. Usually a function that calls itself without end."
            }
            ErrorCode::ExceedAsyncQueueLimit => {
                "The env already has `--max-queued-per-env` asynchronous invocations waiting (100,000 by default); nothing was queued. Sent with `Retry-After`."
            }
            ErrorCode::EventAgeExceeded => {
                "An asynchronous invocation's age (`maxEventAgeSeconds`, 6 hours by default) ran out before it succeeded; it is a dead letter. Its record keeps this code."
            }
            ErrorCode::InvocationNotCancellable => {
                "A cancel (`DELETE /v1/envs/{env}/invocations/{id}`) of an asynchronous invocation that is running or is a dead letter; only one that waits to run can be cancelled."
            }
            ErrorCode::SysErr => "A fault inside Cloudlet; the message says which part failed.",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error response: `{"code","message","requestId"}`,
/// and `errorType` when a function threw a named error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_form_matches_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }
}
