//! The one place the native API turns errors into HTTP responses: the body
//! `{"code","message","requestId"}` (with `errorType` for a function's named
//! error), the status of each code (the table in
//! `docs/errors.md`), and `Retry-After` on the refusals that mean "not now".
//!
//! Internal details (storage errors, panics) are logged where they happen and
//! summarised for the client as `SYS_ERR`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudlet_core::{ErrorBody, ErrorCode, FunctionError, RequestId};

use crate::invoker::InvokeError;

pub(crate) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Names Cloudlet's own error in an answer, so that a client of an HTTP
/// function (whose answers may have any status) can tell the platform's
/// refusal from the function's response.
pub(crate) const ERROR_CODE_HEADER: HeaderName = HeaderName::from_static("x-cloudlet-error");

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The name of the error the function threw, when it threw one.
    pub error_type: Option<String>,
    pub request_id: Option<RequestId>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            error_type: None,
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, id: &RequestId) -> Self {
        self.request_id = Some(id.clone());
        self
    }

    /// Carries the client's `X-Request-Id`, when it sent a valid one, so that
    /// a refusal can be matched to the request it refused.
    pub(crate) fn with_request_id_of(self, headers: &axum::http::HeaderMap) -> Self {
        match client_request_id(headers) {
            Some(id) => self.with_request_id(&id),
            None => self,
        }
    }

    /// A request body over `limit` bytes, whichever route refuses it.
    pub(crate) fn body_too_large(limit: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::ExceedRequestSizeLimit,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// A storage fault: logged in full, reported as `SYS_ERR`.
    pub fn storage(error: cloudlet_store::StoreError) -> Self {
        InvokeError::storage(error).into()
    }
}

/// The message reads as Node prints the error (`TypeError: …`), the name
/// also apart for programs.
impl From<FunctionError> for ApiError {
    fn from(error: FunctionError) -> Self {
        Self {
            message: error.summary(),
            error_type: error.error_type,
            ..Self::new(error.code, String::new())
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(error: InvokeError) -> Self {
        Self::new(error.code, error.message)
    }
}

/// The HTTP status the native API answers each code with.
pub(crate) fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::FunctionNotFound | ErrorCode::ResourceNotFound => StatusCode::NOT_FOUND,
        ErrorCode::FunctionInvocationFailed
        | ErrorCode::FunctionMemoryLimitExceeded
        | ErrorCode::SysErr => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::ExceedMaxResponseSize | ErrorCode::FunctionStatusAbnormal => {
            StatusCode::BAD_GATEWAY
        }
        ErrorCode::FunctionTimeLimitExceeded | ErrorCode::EventAgeExceeded => {
            StatusCode::GATEWAY_TIMEOUT
        }
        ErrorCode::FunctionExceedResourceLimit
        | ErrorCode::ExceedConcurrentRequestLimit
        | ErrorCode::ExceedAsyncQueueLimit => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ExceedRequestSizeLimit => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::InvalidParam
        | ErrorCode::InvalidFunctionPackage
        | ErrorCode::InvalidEnv
        | ErrorCode::InvalidFunctionType => StatusCode::BAD_REQUEST,
        ErrorCode::PermissionDenied => StatusCode::UNAUTHORIZED,
        ErrorCode::CorsOriginNotAllowed => StatusCode::FORBIDDEN,
        ErrorCode::RouteConflict | ErrorCode::InvocationNotCancellable => StatusCode::CONFLICT,
        ErrorCode::ExceedStorageQuota => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::InvalidAction => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::ExceedCallDepthLimit => StatusCode::LOOP_DETECTED,
        ErrorCode::ServiceUnavailable
        | ErrorCode::FunctionTerminatedByShutdown
        | ErrorCode::ExceedConnectionLimit
        | ErrorCode::ExceedMemoryBudget => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Seconds a client should wait before retrying (`Retry-After`), for the
/// refusals that say "not now" (429 and 503).
fn retry_after_seconds(status: StatusCode) -> Option<u32> {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
    .then_some(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = self.request_id.unwrap_or_else(RequestId::generate);
        let status = http_status(self.code);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            error_type: self.error_type,
            request_id: Some(request_id.to_string()),
        };
        let retry_after = retry_after_seconds(status);
        let code = HeaderValue::from_static(self.code.as_str());
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(ERROR_CODE_HEADER, code);
        if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The client's `X-Request-Id`, when it is a valid one.
fn client_request_id(headers: &axum::http::HeaderMap) -> Option<RequestId> {
    let value = headers.get(REQUEST_ID_HEADER)?.to_str().ok()?;
    RequestId::parse(value).ok()
}

/// Turns a panic in a handler into a `SYS_ERR` response instead of a dropped connection.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "a request handler panicked");
    ApiError::new(ErrorCode::SysErr, "internal error; see the server log").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_table_in_the_docs_is_current() {
        let doc = include_str!("../../../../../docs/errors.md");
        for code in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), http_status(code).as_u16());
            assert!(
                doc.contains(&row),
                "docs/errors.md lacks the row for {code}: {row}"
            );
        }
    }
}
