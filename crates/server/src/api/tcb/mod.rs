//! The TCB admin protocol (`POST /admin`), which `wx-server-sdk`'s
//! `cloud.callFunction` and `@cloudbase/node-sdk`'s `app.callFunction` speak:
//! parse the SDK's request into a call of the invocation service, render
//! its answer as the SDKs expect it. Its wire form, verified against the
//! real packages, is in `docs/tcb.md`; its errors are in `error.rs`.
//!
//! Who calls decides the rest: a function's SDK presents its invocation's
//! credential (the node engine sets it in the SDKs' environment), and the
//! call runs as a child of that invocation; a script outside Cloudlet
//! presents an env key (or the admin key) as `Authorization: Bearer`.

mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::prelude::{Engine as _, BASE64_STANDARD};
use cloudlet_core::{EnvId, ErrorCode, RequestId};
use cloudlet_runtime::{
    CallAnswer, CallMode, EnvChoice, Event, FunctionCall, FunctionCalls, Origin,
};
use serde::Deserialize;

use self::error::TcbError;
use crate::api::extract::{credential, InvocationId};
use crate::auth::Credential;
use crate::invoker::InvokeError;
use crate::App;

/// The one action this route serves.
const INVOKE_FUNCTION: &str = "functions.invokeFunction";

pub(crate) fn router(app: Arc<App>) -> Router {
    let max_body = app.limits.max_body_bytes;
    Router::new()
        .route("/admin", post(admin))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// The query the SDKs add to the URL.
#[derive(Deserialize)]
struct AdminQuery {
    env: Option<String>,
}

/// The body of `functions.invokeFunction`, with the fields the SDKs send
/// (clients.md §1.1) and Cloudlet's own for Link IoT Edge's `FCClient`
/// (`serviceName`, `invocationType`, `invokerContext`, `payloadType`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct AdminRequest {
    action: Option<String>,
    function_name: Option<String>,
    request_data: Option<String>,
    #[serde(rename = "envName")]
    env_name: Option<String>,
    qualifier: Option<String>,
    #[serde(rename = "sessionToken")]
    session_token: Option<String>,
    #[serde(rename = "tcb_sessionToken")]
    tcb_session_token: Option<String>,
    #[serde(rename = "wxCloudApiToken")]
    wx_cloud_api_token: Option<String>,
    #[serde(rename = "serviceName")]
    service_name: Option<String>,
    #[serde(rename = "invocationType")]
    invocation_type: Option<String>,
    #[serde(rename = "invokerContext")]
    invoker_context: Option<String>,
    #[serde(rename = "payloadType")]
    payload_type: Option<String>,
}

async fn admin(
    State(app): State<Arc<App>>,
    InvocationId(request_id): InvocationId,
    query: Result<Query<AdminQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The SDKs' query is well formed; a malformed one names no env.
    let env = query.ok().and_then(|Query(q)| q.env);
    match invoke_function(&app, env, &headers, body, &request_id).await {
        Ok(answer) => error::answered(answer),
        Err(error) => error.with_request_id(&request_id).into_response(),
    }
}

async fn invoke_function(
    app: &App,
    query_env: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: &RequestId,
) -> Result<CallAnswer, TcbError> {
    let body = body.map_err(|rejection| {
        let limit = app.limits.max_body_bytes;
        let error = crate::api::native::body_error(rejection, limit);
        TcbError::new(error.code, error.message)
    })?;
    let request: AdminRequest = serde_json::from_slice(&body).map_err(|e| {
        TcbError::new(ErrorCode::InvalidParam, format!("the body is not a JSON object: {e}"))
    })?;
    match request.action.as_deref() {
        Some(INVOKE_FUNCTION) => {}
        None | Some("") => {
            return Err(TcbError::new(
                ErrorCode::InvalidParam,
                "the body has no action; this route serves functions.invokeFunction",
            ))
        }
        Some(other) => return Err(TcbError::unsupported_action(other)),
    }
    let named_env = request.env_name.clone().or(query_env);
    let call = function_call(&request, named_env.clone())?;
    match calling_invocation(app, &request, headers)? {
        Some(link) => link.call(call).await.map_err(TcbError::from),
        None => {
            let env = match named_env {
                Some(env) => EnvId::parse(env)
                    .map_err(|e| TcbError::new(ErrorCode::InvalidEnv, e.to_string()))?,
                None => EnvId::default_env(),
            };
            let access = app
                .invoker
                .authorize(&env, &credential(headers))
                .await
                .map_err(TcbError::from)?;
            app.invoker
                .call_as(access, call, Origin::default(), None, request_id.clone())
                .await
                .map_err(TcbError::from)
        }
    }
}

/// The running invocation whose credential the request presents, if any.
/// A credential in the form this server issues that names no running
/// invocation is refused: its invocation has ended.
fn calling_invocation(
    app: &App,
    request: &AdminRequest,
    headers: &HeaderMap,
) -> Result<Option<Arc<crate::invoker::ChainLink>>, TcbError> {
    let bearer = match credential(headers) {
        Credential::Key(key) => Some(key),
        Credential::None => None,
    };
    let presented = [
        request.session_token.as_deref(),
        request.tcb_session_token.as_deref(),
        request.wx_cloud_api_token.as_deref(),
        bearer.as_deref(),
    ];
    let mut expired = false;
    for token in presented.into_iter().flatten().filter(|t| !t.is_empty()) {
        if let Some(link) = app.invoker.caller_of(token) {
            return Ok(Some(link));
        }
        expired |= crate::invoker::is_invocation_credential(token);
    }
    if expired {
        return Err(TcbError::expired());
    }
    Ok(None)
}

/// The call the request asks for.
fn function_call(request: &AdminRequest, env: Option<String>) -> Result<FunctionCall, TcbError> {
    let name = request
        .function_name
        .clone()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| TcbError::new(ErrorCode::InvalidParam, "function_name is missing"))?;
    let env = match (&request.service_name, env) {
        (Some(service), _) => EnvChoice::NamedOrOwn(service.clone()),
        (None, Some(env)) => EnvChoice::Named(env),
        (None, None) => EnvChoice::Own,
    };
    Ok(FunctionCall {
        env,
        name,
        event: event(request)?,
        mode: mode(request.invocation_type.as_deref())?,
        qualifier: request.qualifier.clone(),
        invoker_context: invoker_context(request.invoker_context.as_deref())?,
    })
}

/// `request_data` as the callee's event: JSON text (`""` is `{}`), or with
/// `payloadType` a string (`text`) or bytes in base64 (`binary`).
fn event(request: &AdminRequest) -> Result<Event, TcbError> {
    let data = request.request_data.clone().unwrap_or_default();
    match request.payload_type.as_deref() {
        None | Some("json") => {
            if !data.trim().is_empty() {
                serde_json::from_str::<serde::de::IgnoredAny>(&data).map_err(|e| {
                    TcbError::new(
                        ErrorCode::InvalidParam,
                        format!("request_data is not JSON text: {e}"),
                    )
                })?;
            }
            Ok(Event::Json(Bytes::from(data)))
        }
        Some("text") => Ok(Event::Text(data)),
        Some("binary") => BASE64_STANDARD
            .decode(data.as_bytes())
            .map(|bytes| Event::Binary(Bytes::from(bytes)))
            .map_err(|_| {
                TcbError::new(ErrorCode::InvalidParam, "request_data is not base64")
            }),
        Some(other) => Err(TcbError::new(
            ErrorCode::InvalidParam,
            format!("payloadType {other:?} is not one of json, text, binary"),
        )),
    }
}

fn mode(invocation_type: Option<&str>) -> Result<CallMode, TcbError> {
    match invocation_type {
        None | Some("Sync") => Ok(CallMode::Sync),
        Some("Async") => Ok(CallMode::Async),
        Some(other) => Err(TcbError::new(
            ErrorCode::InvalidParam,
            format!("Incorrect invocationType {other:?}. It should be \"Sync\" or \"Async\"."),
        )),
    }
}

/// Link IoT Edge's `invokerContext`: base64 of JSON text.
fn invoker_context(base64: Option<&str>) -> Result<Option<String>, TcbError> {
    let Some(base64) = base64.filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let invalid = || {
        TcbError::new(
            ErrorCode::InvalidParam,
            "invokerContext must be base64 of JSON text, as Buffer.from(JSON.stringify(ctx)).toString('base64') makes it",
        )
    };
    let bytes = BASE64_STANDARD.decode(base64.trim()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|_| invalid())?;
    Ok(Some(text))
}

impl From<InvokeError> for TcbError {
    fn from(error: InvokeError) -> Self {
        TcbError::new(error.code, error.message)
    }
}
