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
//!
//! Beside TCB's `functions.invokeFunction`, the route serves Cloudlet's own
//! `messages.publish` (`topic`, with the message as a call's payload): the
//! node engine's `linkedge-core-sdk` publishes through it.

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
use cloudlet_runtime::{CallRequest, FunctionCalls, Origin, Published};
use serde::Deserialize;

use self::error::TcbError;
use crate::api::extract::{credential, InvocationId};
use crate::auth::{Access, Credential};
use crate::invoker::{ChainLink, InvokeError};
use crate::App;

/// The actions this route serves: TCB's own, and Cloudlet's for Link IoT
/// Edge's `IoTData.publish` in the node engine.
const INVOKE_FUNCTION: &str = "functions.invokeFunction";
const PUBLISH_MESSAGE: &str = "messages.publish";

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

/// The body of an action: its name, the tokens the SDKs send (clients.md
/// §1.1), and what to call or publish.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AdminRequest {
    action: Option<String>,
    #[serde(flatten)]
    tokens: Tokens,
    #[serde(flatten)]
    call: CallRequest,
}

/// The credentials the SDKs send in the body: a function's SDK sends its
/// invocation's in one of them.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Tokens {
    #[serde(rename = "sessionToken")]
    session_token: Option<String>,
    #[serde(rename = "tcb_sessionToken")]
    tcb_session_token: Option<String>,
    #[serde(rename = "wxCloudApiToken")]
    wx_cloud_api_token: Option<String>,
}

/// Who sent the request: a running invocation, by its credential, or a
/// client outside any, with the access its key grants.
enum Sender {
    Invocation(Arc<ChainLink>),
    Client(Access),
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
    match serve(&app, env, &headers, body, &request_id).await {
        Ok(response) => response,
        Err(error) => error.with_request_id(&request_id).into_response(),
    }
}

async fn serve(
    app: &App,
    query_env: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: &RequestId,
) -> Result<Response, TcbError> {
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
    let named_env = request.call.env_name.clone().or(query_env);
    match request.action.as_deref() {
        Some(INVOKE_FUNCTION) => invoke_function(app, request, headers, named_env, request_id).await,
        Some(PUBLISH_MESSAGE) => publish_message(app, request, headers, named_env, request_id).await,
        None | Some("") => Err(TcbError::new(
            ErrorCode::InvalidParam,
            "the body has no action; this route serves functions.invokeFunction and messages.publish",
        )),
        Some(other) => Err(TcbError::unsupported_action(other)),
    }
}

/// `functions.invokeFunction`: the callee's result, or its error.
async fn invoke_function(
    app: &App,
    request: AdminRequest,
    headers: &HeaderMap,
    named_env: Option<String>,
    request_id: &RequestId,
) -> Result<Response, TcbError> {
    let call = request.call.into_call(named_env.clone())?;
    let answer = match sender(app, &request.tokens, headers, named_env).await? {
        Sender::Invocation(link) => link.call(call).await?,
        Sender::Client(access) => {
            let (origin, id) = (Origin::default(), request_id.clone());
            app.invoker.call_as(access, call, origin, None, id).await?
        }
    };
    Ok(error::answered(answer))
}

/// `messages.publish`: the message's ID and its deliveries. A client's
/// message takes the request's ID, as the native API's does.
async fn publish_message(
    app: &App,
    request: AdminRequest,
    headers: &HeaderMap,
    named_env: Option<String>,
    request_id: &RequestId,
) -> Result<Response, TcbError> {
    let message = request.call.into_publication()?;
    let published = match sender(app, &request.tokens, headers, named_env).await? {
        Sender::Invocation(link) => link.publish(message).await?,
        Sender::Client(access) => {
            let origin = Origin::default();
            let deliveries = app
                .invoker
                .publish(&access, request_id, message, origin)
                .await?;
            Published {
                message_id: request_id.clone(),
                deliveries,
            }
        }
    };
    Ok(error::published(&published, request_id))
}

/// Who sent the request (see [`Sender`]); a client's key is checked
/// against the env the request names, or the default env.
async fn sender(
    app: &App,
    tokens: &Tokens,
    headers: &HeaderMap,
    named_env: Option<String>,
) -> Result<Sender, TcbError> {
    if let Some(link) = calling_invocation(app, tokens, headers)? {
        return Ok(Sender::Invocation(link));
    }
    let env = match named_env {
        Some(env) => {
            EnvId::parse(env).map_err(|e| TcbError::new(ErrorCode::InvalidEnv, e.to_string()))?
        }
        None => EnvId::default_env(),
    };
    let access = app.invoker.authorize(&env, &credential(headers)).await?;
    Ok(Sender::Client(access))
}

/// The running invocation whose credential the request presents, if any.
/// A credential in the form this server issues that names no running
/// invocation is refused: its invocation has ended.
fn calling_invocation(
    app: &App,
    tokens: &Tokens,
    headers: &HeaderMap,
) -> Result<Option<Arc<ChainLink>>, TcbError> {
    let bearer = match credential(headers) {
        Credential::Key(key) => Some(key),
        Credential::None => None,
    };
    let presented = [
        tokens.session_token.as_deref(),
        tokens.tcb_session_token.as_deref(),
        tokens.wx_cloud_api_token.as_deref(),
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
