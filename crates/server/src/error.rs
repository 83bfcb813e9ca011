//! The one place errors become HTTP responses.
//!
//! Every failure a client can see is an [`ApiError`]: a stable code, a message
//! meant for the client, and the request ID. Internal details (storage errors,
//! panics) are logged here and summarised for the client as `SYS_ERR`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudlet_core::{ErrorBody, ErrorCode, RequestId};

pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: Option<RequestId>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
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

    /// A storage fault: logged in full, reported as `SYS_ERR`.
    pub fn storage(error: cloudlet_store::StoreError) -> Self {
        tracing::error!(%error, "storage failure");
        Self::new(ErrorCode::SysErr, "the store failed; see the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = self.request_id.unwrap_or_else(RequestId::generate);
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            request_id: Some(request_id.to_string()),
        };
        let retry_after = self.code.retry_after_seconds();
        let mut response = (status, axum::Json(body)).into_response();
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
