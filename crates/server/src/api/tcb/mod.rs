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
use cloudlet_core::{EnvId, ErrorCode, RequestId};
use cloudlet_runtime::{CallAnswer, CallRequest, FunctionCalls, Origin};
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

/// The body of `functions.invokeFunction`: the action, the call, and the
/// tokens the SDKs send (clients.md §1.1).
#[derive(Deserialize, Default)]
#[serde(default)]
struct AdminRequest {
    action: Option<String>,
    #[serde(rename = "sessionToken")]
    session_token: Option<String>,
    #[serde(rename = "tcb_sessionToken")]
    tcb_session_token: Option<String>,
    #[serde(rename = "wxCloudApiToken")]
    wx_cloud_api_token: Option<String>,
    #[serde(flatten)]
    call: CallRequest,
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
        TcbError::new(
            ErrorCode::InvalidParam,
            format!("the body is not a JSON object: {e}"),
        )
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
    let caller = calling_invocation(app, &request, headers)?;
    let named_env = request.call.env_name.clone().or(query_env);
    let call = request.call.into_call(named_env.clone())?;
    match caller {
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

impl From<InvokeError> for TcbError {
    fn from(error: InvokeError) -> Self {
        TcbError::new(error.code, error.message)
    }
}
