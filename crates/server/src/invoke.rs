//! Synchronous invocation: the hot path.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudlet_core::{
    EnvId, ErrorCode, FunctionError, FunctionName, InvocationRecord, InvocationStatus, LogLine,
    RequestId,
};
use cloudlet_runtime::{DeployedFunction, InvocationOutcome, InvocationRequest};
use tracing::Instrument;

use crate::auth::EnvAccess;
use crate::error::{ApiError, REQUEST_ID_HEADER};
use crate::App;

const VERSION_HEADER: &str = "x-function-version";
const TRIGGER_HEADER: &str = "x-cloudlet-trigger";
const INVOCATION_TYPE_HEADER: &str = "x-invocation-type";

// `EnvAccess` comes first: the key is checked before the body is read.
pub(crate) async fn invoke_default_env(
    EnvAccess(env): EnvAccess,
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    invoke(app, env, name, headers, body).await
}

pub(crate) async fn invoke_in_env(
    EnvAccess(env): EnvAccess,
    State(app): State<Arc<App>>,
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    invoke(app, env, name, headers, body).await
}

async fn invoke(
    app: Arc<App>,
    env: EnvId,
    name: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = match request_id(&headers) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match invoke_checked(&app, env, name, &headers, body, &request_id).await {
        Ok(response) => response,
        Err(e) => e.with_request_id(&request_id).into_response(),
    }
}

/// The client's `X-Request-Id` when it is valid, else a new one.
fn request_id(headers: &HeaderMap) -> Result<RequestId, ApiError> {
    match headers.get(REQUEST_ID_HEADER) {
        None => Ok(RequestId::generate()),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|s| RequestId::parse(s).ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParam,
                    format!("X-Request-Id must be {}", RequestId::RULE),
                )
            }),
    }
}

fn parse_name(name: String) -> Result<FunctionName, ApiError> {
    FunctionName::parse(name).map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))
}

pub(crate) fn body_error(rejection: BytesRejection, limit: usize) -> ApiError {
    if stalled(&rejection) {
        ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body stopped arriving for longer than the server waits between its parts",
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::ExceedRequestSizeLimit,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    } else {
        ApiError::new(
            ErrorCode::InvalidParam,
            format!("cannot read the request body: {}", rejection.body_text()),
        )
    }
}

/// Whether reading the body failed because it stopped arriving (the body
/// read timeout, `body_timeout.rs`).
fn stalled(rejection: &BytesRejection) -> bool {
    let mut source = std::error::Error::source(rejection);
    while let Some(error) = source {
        if error.is::<crate::body_timeout::BodyStalled>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// The deepest nesting of arrays and objects an event may have. The engine
/// parses the event recursively on an instance's bounded native stack, and the
/// JSON check above does not count depth (serde_json skips values without
/// recursing).
const MAX_EVENT_DEPTH: usize = 512;

/// How deeply a valid JSON text nests arrays and objects.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Counts an invocation in flight for as long as it lives.
struct InFlight<'a>(&'a App);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What every record of one invocation shares, fixed when it was accepted.
struct Accepted<'a> {
    function: &'a DeployedFunction,
    request_id: &'a RequestId,
    trigger: &'a str,
    started_at: i64,
    started: Instant,
}

impl Accepted<'_> {
    fn record(
        &self,
        result: Result<String, FunctionError>,
        logs: Vec<LogLine>,
        logs_truncated: bool,
        cold: bool,
        init_us: Option<u64>,
    ) -> InvocationRecord {
        let (status, result, error) = match result {
            Ok(json) => (InvocationStatus::Succeeded, Some(json), None),
            Err(error) => (InvocationStatus::Failed, None, Some(error)),
        };
        InvocationRecord {
            request_id: self.request_id.clone(),
            env: self.function.env.clone(),
            function: self.function.name.clone(),
            version: self.function.version.clone(),
            status,
            started_at: self.started_at,
            duration_us: self.started.elapsed().as_micros() as u64,
            init_us,
            cold,
            trigger: self.trigger.to_owned(),
            result,
            error,
            logs,
            logs_truncated,
        }
    }
}

/// Submits a record for an invocation whose caller went away before it ended
/// (the handler future was dropped mid-await), so every request ID that reached
/// a function has a record.
struct Abandoned<'a> {
    app: &'a App,
    accepted: &'a Accepted<'a>,
    armed: bool,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let error = FunctionError {
            code: ErrorCode::FunctionInvocationFailed,
            message:
                "the caller disconnected before the function finished; the invocation was abandoned"
                    .into(),
            stack: None,
        };
        let record = self
            .accepted
            .record(Err(error), Vec::new(), false, false, None);
        self.app.records.submit(record);
    }
}

async fn invoke_checked(
    app: &App,
    env: EnvId,
    name: String,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: &RequestId,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let started_at = cloudlet_core::now_unix_ms();
    let name = parse_name(name)?;
    app.refuse_if_stopping()?;
    if let Some(kind) = headers.get(INVOCATION_TYPE_HEADER) {
        if !kind.as_bytes().eq_ignore_ascii_case(b"sync")
            && !kind.as_bytes().eq_ignore_ascii_case(b"RequestResponse")
        {
            return Err(ApiError::new(
                ErrorCode::InvalidParam,
                "only synchronous invocation is supported by this server (X-Invocation-Type: sync)",
            ));
        }
    }
    let trigger = trigger(headers)?;
    let body = body.map_err(|r| body_error(r, app.limits.max_body_bytes))?;
    let event = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        // Checked here, cheaply, so the engine can trust it and a malformed body is
        // the caller's 400 rather than a function error.
        serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidParam,
                format!("the request body is not valid JSON: {e}"),
            )
        })?;
        if nesting_depth(&body) > MAX_EVENT_DEPTH {
            return Err(ApiError::new(
                ErrorCode::InvalidParam,
                format!(
                    "the event nests arrays and objects more than {MAX_EVENT_DEPTH} levels deep"
                ),
            ));
        }
        body
    };
    let function = app
        .registry
        .get(app.functions.as_ref(), &env, &name)
        .await?;

    if app.in_flight.fetch_add(1, Ordering::AcqRel) >= app.limits.max_concurrent_invocations {
        app.in_flight.fetch_sub(1, Ordering::AcqRel);
        return Err(ApiError::new(
            ErrorCode::ExceedConcurrentRequestLimit,
            format!(
                "the server already runs {} invocations, its limit",
                app.limits.max_concurrent_invocations
            ),
        ));
    }
    let _in_flight = InFlight(app);

    let span =
        tracing::debug_span!("invoke", request_id = %request_id, env = %env, function = %name);
    let request = InvocationRequest {
        request_id: request_id.clone(),
        event,
        deadline: started + function.config.timeout(),
    };
    let accepted = Accepted {
        function: &function,
        request_id,
        trigger,
        started_at,
        started,
    };
    let mut abandoned = Abandoned {
        app,
        accepted: &accepted,
        armed: true,
    };
    let outcome = app
        .engine
        .invoke(&function, request)
        .instrument(span)
        .await
        .map_err(|e| ApiError::new(e.code, e.message))?;
    abandoned.armed = false;
    Ok(respond(app, &accepted, outcome))
}

fn trigger(headers: &HeaderMap) -> Result<&str, ApiError> {
    match headers.get(TRIGGER_HEADER) {
        None => Ok("http"),
        Some(value) => value
            .to_str()
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_lowercase()))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParam,
                    "X-Cloudlet-Trigger must be 1 to 16 lowercase letters",
                )
            }),
    }
}

fn respond(app: &App, accepted: &Accepted<'_>, outcome: InvocationOutcome) -> Response {
    let (function, request_id) = (accepted.function, accepted.request_id);
    if app.print_function_logs {
        for line in &outcome.logs {
            tracing::info!(
                target: "cloudlet::function",
                request_id = %request_id,
                function = %function.name,
                level = line.level.as_str(),
                "{}",
                line.message
            );
        }
    }
    let mut response = match &outcome.result {
        Ok(json) => {
            let mut response = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json.clone(),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(request_id.as_str()) {
                response.headers_mut().insert(REQUEST_ID_HEADER, v);
            }
            response
        }
        Err(error) => {
            tracing::debug!(request_id = %request_id, code = %error.code, message = %error.message, "function error");
            ApiError::new(error.code, error.message.clone())
                .with_request_id(request_id)
                .into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(function.version.as_str()) {
        response.headers_mut().insert(VERSION_HEADER, v);
    }
    let record = accepted.record(
        outcome.result,
        outcome.logs,
        outcome.logs_truncated,
        outcome.cold,
        outcome.init.map(|d| d.as_micros() as u64),
    );
    app.records.submit(record);
    response
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn nesting_depth_skips_strings() {
        assert_eq!(nesting_depth(b"1"), 0);
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(nesting_depth(br#"{"a":"[[[{{{\"]]"}"#), 1);
        assert_eq!(nesting_depth(br#"[[],[[]],[]]"#), 3);
    }
}
