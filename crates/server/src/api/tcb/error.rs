//! The TCB admin protocol's answers: `{requestId, data: {response_data}}`,
//! and every error as HTTP 200 with `{code, message, requestId}` in
//! CloudBase's string codes (`ErrorCode::cloudbase`, the one table of them), because `@cloudbase/node-sdk` reads the code
//! only from a 200 (on any other status it reports the status instead).
//! Every answer also carries `cloudletCode`, Cloudlet's own code, so that
//! nothing the table merges is lost; a function's error adds its
//! `errorType` and `stack`.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use cloudlet_core::{ErrorCode, FunctionError, RequestId};
use cloudlet_runtime::{CallAnswer, CallRefused, Published};
use serde_json::json;

use crate::api::native::error::REQUEST_ID_HEADER;

/// A refusal of the request, or a callee's failure, in this protocol's form.
#[derive(Debug)]
pub(super) struct TcbError {
    /// The CloudBase code.
    code: &'static str,
    /// Cloudlet's code, when the error has one.
    cloudlet_code: Option<ErrorCode>,
    message: String,
    error_type: Option<String>,
    stack: Option<String>,
    request_id: Option<RequestId>,
}

impl TcbError {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.cloudbase(),
            cloudlet_code: Some(code),
            message: message.into(),
            error_type: None,
            stack: None,
            request_id: None,
        }
    }

    /// An action other than `functions.invokeFunction`.
    pub(super) fn unsupported_action(action: &str) -> Self {
        Self::new(
            ErrorCode::InvalidAction,
            format!(
                "action {action} is not served: Cloudlet's TCB admin route serves \
                 functions.invokeFunction and messages.publish only (database, storage and other \
                 actions are not available)"
            ),
        )
    }

    /// A credential this server issued to an invocation that has ended.
    pub(super) fn expired() -> Self {
        Self {
            code: "ACCESS_TOKEN_EXPIRED",
            ..Self::new(
                ErrorCode::PermissionDenied,
                "the credential was issued to an invocation that has ended; \
                 a function may call functions only while it runs",
            )
        }
    }

    /// The callee ran and failed.
    fn failed(error: FunctionError, request_id: RequestId) -> Self {
        Self {
            error_type: error.error_type.clone(),
            stack: error.stack.clone(),
            request_id: Some(request_id),
            ..Self::new(error.code, error.summary())
        }
    }

    /// The error names this request ID unless it names the callee's.
    pub(super) fn with_request_id(mut self, request_id: &RequestId) -> Self {
        self.request_id.get_or_insert_with(|| request_id.clone());
        self
    }
}

impl From<CallRefused> for TcbError {
    fn from(refused: CallRefused) -> Self {
        Self::new(refused.code, refused.message)
    }
}

impl IntoResponse for TcbError {
    fn into_response(self) -> Response {
        let request_id = self.request_id.unwrap_or_else(RequestId::generate);
        let mut body = json!({
            "code": self.code,
            "message": self.message,
            "requestId": request_id.as_str(),
        });
        if let Some(code) = self.cloudlet_code {
            body["cloudletCode"] = code.as_str().into();
        }
        if let Some(error_type) = self.error_type {
            body["errorType"] = error_type.into();
        }
        if let Some(stack) = self.stack {
            body["stack"] = stack.into();
        }
        with_request_id(axum::Json(body).into_response(), &request_id)
    }
}

/// The answer to a call: the callee's result as `data.response_data` (JSON
/// text; empty for an asynchronous call), or its error.
pub(super) fn answered(answer: CallAnswer) -> Response {
    let CallAnswer { request_id, result } = answer;
    match result {
        Ok(json) => {
            let body = json!({
                "requestId": request_id.as_str(),
                "data": {"response_data": json.unwrap_or_default()},
            });
            with_request_id(axum::Json(body).into_response(), &request_id)
        }
        Err(error) => TcbError::failed(error, request_id).into_response(),
    }
}

/// A published message's answer: `data` is `{messageId, deliveries}`.
pub(super) fn published(published: &Published, request_id: &RequestId) -> Response {
    let body = json!({
        "requestId": request_id.as_str(),
        "data": {
            "messageId": published.message_id.as_str(),
            "deliveries": published.deliveries,
        },
    });
    with_request_id(axum::Json(body).into_response(), request_id)
}

fn with_request_id(mut response: Response, request_id: &RequestId) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        assert_eq!(response.status(), 200, "every answer is a 200");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn a_result_is_response_data_as_json_text() {
        let id = RequestId::generate();
        let answer = CallAnswer {
            request_id: id.clone(),
            result: Ok(Some("3".to_owned())),
        };
        let body = body(answered(answer)).await;
        assert_eq!(body["data"]["response_data"], "3");
        assert_eq!(body["requestId"], id.as_str());
    }

    #[tokio::test]
    async fn a_failed_function_is_functions_execute_fail_with_its_own_code() {
        let mut error = FunctionError::new(ErrorCode::FunctionTimeLimitExceeded, "too slow");
        error.error_type = Some("Timeout".into());
        let answer = CallAnswer {
            request_id: RequestId::generate(),
            result: Err(error),
        };
        let body = body(answered(answer)).await;
        assert_eq!(body["code"], "FUNCTIONS_EXECUTE_FAIL");
        assert_eq!(body["cloudletCode"], "FUNCTION_TIME_LIMIT_EXCEEDED");
        assert_eq!(body["errorType"], "Timeout");
    }

    #[tokio::test]
    async fn every_code_has_a_cloudbase_code() {
        for code in ErrorCode::ALL {
            let body = body(TcbError::new(code, "m").into_response()).await;
            assert!(
                body["code"].as_str().is_some_and(|c| !c.is_empty()),
                "{code}"
            );
            assert_eq!(body["cloudletCode"], code.as_str());
        }
    }
}
