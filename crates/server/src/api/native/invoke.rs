//! The native API's invoke routes: `POST /v1/envs/{env}/functions/{name}`
//! and `POST /v1/functions/{name}` (env `default`). Parse, call the
//! invocation service, render.

use std::sync::Arc;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Path, Request, State};
use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudlet_core::{ErrorCode, FunctionName};
use cloudlet_runtime::{Event, Identity, Origin, Output, ResponseStream};

use super::error::{ApiError, REQUEST_ID_HEADER};
use super::web;
use crate::api::extract::{accepts_event_stream, credential, EnvAccess, InvocationId};
use crate::auth::Credential;
use crate::invoker::{Invocation, InvokeContext, Qualifier, Target};
use crate::App;

// Header names as constants: looking one up by a string parses the name on
// every request.
const VERSION_HEADER: HeaderName = HeaderName::from_static("x-function-version");
const TRIGGER_HEADER: HeaderName = HeaderName::from_static("x-cloudlet-trigger");
const INVOCATION_TYPE_HEADER: HeaderName = HeaderName::from_static("x-invocation-type");
/// CloudBase's HTTP API header naming the version to run.
const QUALIFIER_HEADER: HeaderName = HeaderName::from_static("x-qualifier");
/// The end user an invocation acts for (`cloud.getWXContext()`,
/// `event.userInfo`), and where the chain began (`SOURCE`); only the admin
/// key may say, since functions trust them.
const OPENID_HEADER: HeaderName = HeaderName::from_static("x-cloudlet-openid");
const APPID_HEADER: HeaderName = HeaderName::from_static("x-cloudlet-appid");
const UNIONID_HEADER: HeaderName = HeaderName::from_static("x-cloudlet-unionid");
const SOURCE_HEADER: HeaderName = HeaderName::from_static("x-cloudlet-source");

/// The headers an invocation reads, taken off the request without copying
/// its whole header map.
pub(crate) struct InvokeHeaders {
    invocation_type: Option<HeaderValue>,
    trigger: Option<HeaderValue>,
    qualifier: Option<HeaderValue>,
    /// Whether the caller takes server-sent events (`context.sse()`).
    event_stream: bool,
    /// The identity headers and the credential that must be the admin key
    /// to send them; none of it when the request sends none.
    origin: Option<(OriginHeaders, Credential)>,
}

struct OriginHeaders {
    openid: Option<HeaderValue>,
    appid: Option<HeaderValue>,
    unionid: Option<HeaderValue>,
    source: Option<HeaderValue>,
}

impl<S: Sync> FromRequestParts<S> for InvokeHeaders {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let headers = &parts.headers;
        let origin = OriginHeaders {
            openid: headers.get(OPENID_HEADER).cloned(),
            appid: headers.get(APPID_HEADER).cloned(),
            unionid: headers.get(UNIONID_HEADER).cloned(),
            source: headers.get(SOURCE_HEADER).cloned(),
        };
        let any = origin.openid.is_some()
            || origin.appid.is_some()
            || origin.unionid.is_some()
            || origin.source.is_some();
        Ok(Self {
            invocation_type: headers.get(INVOCATION_TYPE_HEADER).cloned(),
            trigger: headers.get(TRIGGER_HEADER).cloned(),
            qualifier: headers.get(QUALIFIER_HEADER).cloned(),
            event_stream: accepts_event_stream(headers),
            origin: any.then(|| (origin, credential(headers))),
        })
    }
}

/// The end user and source the request names, which only the admin key may
/// name. A user without a source is a client's (`wx_client`), as a call
/// from a mini program is.
fn origin(app: &App, headers: &InvokeHeaders) -> Result<Origin, ApiError> {
    let Some((origin, credential)) = &headers.origin else {
        return Ok(Origin::default());
    };
    app.invoker.auth().require_admin(credential).map_err(|_| {
        ApiError::new(
            ErrorCode::PermissionDenied,
            "only the admin key may name the end user (X-Cloudlet-OpenId, -AppId, -UnionId, -Source)",
        )
    })?;
    let text = |value: &Option<HeaderValue>| -> Result<Option<String>, ApiError> {
        value
            .as_ref()
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    ApiError::new(
                        ErrorCode::InvalidParam,
                        "the X-Cloudlet identity headers must be ASCII text",
                    )
                })
            })
            .transpose()
    };
    let identity = Identity {
        openid: text(&origin.openid)?,
        appid: text(&origin.appid)?,
        unionid: text(&origin.unionid)?,
    };
    let has_user = identity != Identity::default();
    let source = text(&origin.source)?.or_else(|| has_user.then(|| "wx_client".to_owned()));
    Ok(Origin {
        identity,
        source,
        ..Origin::default()
    })
}

// `EnvAccess` comes first: the key is checked before the body is read.
pub(crate) async fn invoke_default_env(
    access: EnvAccess,
    id: InvocationId,
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: InvokeHeaders,
    request: Request,
) -> Response {
    invoke(app, access, id, name, &headers, request).await
}

pub(crate) async fn invoke_in_env(
    access: EnvAccess,
    id: InvocationId,
    State(app): State<Arc<App>>,
    Path((_, name)): Path<(String, String)>,
    headers: InvokeHeaders,
    request: Request,
) -> Response {
    invoke(app, access, id, name, &headers, request).await
}

/// An invocation with the request body as its event, or, with `webfn`
/// (CloudBase's HTTP API), the POST itself passed to an HTTP function.
async fn invoke(
    app: Arc<App>,
    access: EnvAccess,
    id: InvocationId,
    name: String,
    headers: &InvokeHeaders,
    request: Request,
) -> Response {
    let max_body = app.limits.max_body_bytes;
    let event = async move {
        if web::webfn(&request) {
            return web::event_at_root(request, max_body);
        }
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|r| body_error(r, max_body))?;
        Ok(Event::Json(body))
    };
    invoke_with(app, access, id, name, headers, event).await
}

/// An HTTP function's request on its web path; see `web.rs`.
pub(crate) async fn invoke_web(
    app: Arc<App>,
    access: EnvAccess,
    id: InvocationId,
    name: String,
    headers: &InvokeHeaders,
    request: Request,
) -> Response {
    let event = web::event_at_web_path(request, app.limits.max_body_bytes);
    let event = std::future::ready(Ok(event));
    invoke_with(app, access, id, name, headers, event).await
}

/// Reads what every invocation takes from the request's head, then its
/// event (which may read the body), invokes, and renders the answer.
async fn invoke_with(
    app: Arc<App>,
    EnvAccess(access): EnvAccess,
    InvocationId(request_id): InvocationId,
    name: String,
    headers: &InvokeHeaders,
    event: impl std::future::Future<Output = Result<Event, ApiError>>,
) -> Response {
    let call = async {
        let name = FunctionName::parse(name)
            .map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))?;
        let asynchronous = is_asynchronous(headers.invocation_type.as_ref())?;
        let mut context =
            InvokeContext::new(request_id.clone(), trigger(headers.trigger.as_ref())?);
        context.origin = origin(&app, headers)?;
        context.accepts_event_stream = headers.event_stream;
        let qualifier = qualifier(headers.qualifier.as_ref())?;
        let event = event.await?;
        let target = Target {
            access,
            name,
            qualifier,
        };
        if asynchronous {
            return accepted(&app, target, event, &context).await;
        }
        let invocation = app.invoker.invoke(target, event, context).await?;
        Ok::<_, ApiError>(render(invocation))
    };
    match call.await {
        Ok(response) => response,
        Err(error) => error.with_request_id(&request_id).into_response(),
    }
}

/// `X-Invocation-Type`: `async` (or Lambda's `Event`) queues the
/// invocation; `sync` (or `RequestResponse`), or no header, waits for it.
fn is_asynchronous(invocation_type: Option<&HeaderValue>) -> Result<bool, ApiError> {
    let Some(kind) = invocation_type else {
        return Ok(false);
    };
    let is = |word: &[u8]| kind.as_bytes().eq_ignore_ascii_case(word);
    if is(b"async") || is(b"Event") {
        Ok(true)
    } else if is(b"sync") || is(b"RequestResponse") {
        Ok(false)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParam,
            "X-Invocation-Type is sync (or RequestResponse) or async (or Event)",
        ))
    }
}

/// Queues an asynchronous invocation: `202` with its request ID, once the
/// queue has it on disk.
async fn accepted(
    app: &App,
    target: Target,
    event: Event,
    context: &InvokeContext,
) -> Result<Response, ApiError> {
    let (request_id, _) = app.invoker.enqueue(target, event, context).await?;
    let body = axum::Json(serde_json::json!({ "requestId": request_id.as_str() }));
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

fn trigger(trigger: Option<&HeaderValue>) -> Result<&str, ApiError> {
    match trigger {
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

fn qualifier(qualifier: Option<&HeaderValue>) -> Result<Qualifier, ApiError> {
    match qualifier {
        None => Ok(Qualifier::Latest),
        Some(value) => value.to_str().map(Qualifier::parse).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParam,
                "X-Qualifier must be $LATEST or a version ID",
            )
        }),
    }
}

pub(crate) fn body_error(rejection: BytesRejection, limit: usize) -> ApiError {
    if crate::body_timeout::BodyStalled::caused(&rejection) {
        ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body stopped arriving for longer than the server waits between its parts",
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::body_too_large(limit)
    } else {
        ApiError::new(
            ErrorCode::InvalidParam,
            format!("cannot read the request body: {}", rejection.body_text()),
        )
    }
}

/// The function's result as the JSON body, its streamed response, or its
/// error in the native error form; all name the request ID and the version
/// that ran.
fn render(invocation: Invocation) -> Response {
    let mut response = match invocation.result {
        Ok(Output::Stream(stream)) => streamed(stream),
        Ok(Output::Json(json)) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(error) => {
            tracing::debug!(request_id = %invocation.request_id, code = %error.code, message = %error.message, "function error");
            ApiError::from(error)
                .with_request_id(&invocation.request_id)
                .into_response()
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(invocation.request_id.as_str()) {
        headers.insert(REQUEST_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(invocation.version.as_str()) {
        headers.insert(VERSION_HEADER, v);
    }
    response
}

/// A streamed response as it comes: the function's status and headers, then
/// its body, pulled chunk by chunk. A body that fails midway is cut off (no
/// final chunk), so the client sees an incomplete body rather than one that
/// looks whole.
pub(crate) fn streamed(stream: ResponseStream) -> Response {
    let mut response = Response::new(Body::new(stream.body));
    *response.status_mut() = stream.status;
    *response.headers_mut() = stream.headers;
    response
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;
    use cloudlet_runtime::{BodyEnd, BoxError, ResponseBody, StreamEnd};

    /// A body of ready chunks that fails after them, or ends.
    struct Chunks {
        chunks: VecDeque<&'static str>,
        fails: bool,
    }

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
            Poll::Ready(match self.chunks.pop_front() {
                Some(chunk) => Some(Ok(http_body::Frame::data(Bytes::from_static(
                    chunk.as_bytes(),
                )))),
                None if self.fails => Some(Err("the function failed".into())),
                None => None,
            })
        }
    }

    impl ResponseBody for Chunks {
        fn end(&mut self, _: BodyEnd) -> StreamEnd {
            StreamEnd {
                result: Ok(()),
                logs: Vec::new(),
                logs_truncated: false,
            }
        }
    }

    fn stream(chunks: &[&'static str], fails: bool) -> ResponseStream {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        ResponseStream {
            status: StatusCode::CREATED,
            headers,
            body: Box::new(Chunks {
                chunks: chunks.iter().copied().collect(),
                fails,
            }),
        }
    }

    #[tokio::test]
    async fn a_stream_is_sent_with_the_functions_status_and_headers() {
        let response = streamed(stream(&["data: a\n\n", "data: b\n\n"], false));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("the whole body");
        assert_eq!(body, "data: a\n\ndata: b\n\n");
    }

    #[tokio::test]
    async fn a_stream_that_fails_midway_is_cut_off() {
        let response = streamed(stream(&["data: a\n\n"], true));
        let body = axum::body::to_bytes(response.into_body(), 1024).await;
        assert!(body.is_err(), "{body:?}");
    }
}
