//! HTTP functions on the native API: `ANY /v1/envs/{env}/functions/{name}/web/{path}`
//! (and the default env's `/v1/functions/{name}/web/{path}`) reaches the
//! function's server at `/{path}`, with the query as sent; CloudBase's HTTP
//! API form, `?webfn=true` or `X-Tcb-Webfn: true` on the invoke route,
//! reaches it at `/` with the query less `webfn`. Either way the method,
//! headers and body pass through, the body streamed; the headers meant for
//! Cloudlet (its key, `X-Tcb-Webfn`, `X-Qualifier`, `X-Cloudlet-*`) do not.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use cloudlet_core::ErrorCode;
use cloudlet_runtime::{BoxError, ClientBodyError, Event, HttpRequest, RequestBody};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;

use super::error::ApiError;
use super::invoke::{invoke_web, InvokeHeaders};
use crate::api::extract::{EnvAccess, InvocationId};
use crate::App;

const WEBFN_HEADER: HeaderName = HeaderName::from_static("x-tcb-webfn");
const WEBFN_PARAM: &str = "webfn";

/// Path segments before the function's own path: `/v1/envs/{env}/functions/{name}/web`.
const SEGMENTS_IN_ENV: usize = 6;
/// `/v1/functions/{name}/web`.
const SEGMENTS_DEFAULT_ENV: usize = 4;

#[derive(Deserialize)]
pub(crate) struct WebParams {
    /// Absent on the default env's route.
    env: Option<String>,
    name: String,
    /// What follows the function's name: `web`, then the function's path.
    web: String,
}

impl WebParams {
    /// The function's name, if the path goes on with `/web`.
    fn name(self) -> Result<String, ApiError> {
        let under_web = self.web == "web" || self.web.starts_with("web/");
        if under_web {
            Ok(self.name)
        } else {
            Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                "no such route (an HTTP function's paths are under /web/)",
            ))
        }
    }
}

/// The request, its URI cut to what follows `/web`, for the function the
/// path names, in the env it names (or the default env).
// `EnvAccess` comes first: the key is checked before the body is read.
pub(crate) async fn web(
    access: EnvAccess,
    id: InvocationId,
    State(app): State<Arc<App>>,
    Path(params): Path<WebParams>,
    headers: InvokeHeaders,
    request: Request,
) -> Response {
    let segments = if params.env.is_some() {
        SEGMENTS_IN_ENV
    } else {
        SEGMENTS_DEFAULT_ENV
    };
    let name = match params.name() {
        Ok(name) => name,
        Err(error) => return error.with_request_id(&id.0).into_response(),
    };
    let request = with_function_path(request, segments);
    invoke_web(app, access, id, name, &headers, request).await
}

/// Whether an invoke request is CloudBase's HTTP API call of an HTTP function.
pub(crate) fn webfn(request: &Request) -> bool {
    let header = request
        .headers()
        .get(WEBFN_HEADER)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"));
    header
        || query_pairs(request.uri().query())
            .any(|(key, value)| key == WEBFN_PARAM && value.eq_ignore_ascii_case("true"))
}

/// The request as the function's server gets it on a web path, its URI
/// already the function's own path.
pub(crate) fn event_at_web_path(request: Request, max_body: usize) -> Event {
    http_event(without_cloudlets_headers(request), max_body)
}

/// The request as the function's server gets it from CloudBase's HTTP API:
/// at `/`, with the query less `webfn`.
pub(crate) fn event_at_root(request: Request, max_body: usize) -> Result<Event, ApiError> {
    let (mut parts, body) = request.into_parts();
    let query: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(WEBFN_PARAM))
        .collect();
    let path = if query.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{}", query.join("&"))
    };
    parts.uri = path
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::InvalidParam, "the query is not a valid URI"))?;
    Ok(http_event(
        without_cloudlets_headers(Request::from_parts(parts, body)),
        max_body,
    ))
}

/// The request with its URI cut to what follows `/web`: the path and query
/// the function's server sees, undecoded.
fn with_function_path(request: Request, segments: usize) -> Request {
    let (mut parts, body) = request.into_parts();
    let rest = after_segments(parts.uri.path(), segments);
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    if let Ok(uri) = path_and_query.parse() {
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

/// What follows the first `segments` segments of `path`, from its slash;
/// `/` when nothing does.
fn after_segments(path: &str, segments: usize) -> &str {
    let mut rest = path;
    for _ in 0..segments {
        rest = rest
            .get(1..)
            .and_then(|tail| tail.find('/').map(|slash| &rest[slash + 1..]))
            .unwrap_or("");
    }
    if rest.is_empty() {
        "/"
    } else {
        rest
    }
}

fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or("")
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

fn without_cloudlets_headers(request: Request) -> Request {
    let (mut parts, body) = request.into_parts();
    parts.headers = for_the_function(parts.headers);
    Request::from_parts(parts, body)
}

/// The request as an HTTP function's server gets it, headers as they are.
pub(crate) fn http_event(request: Request, max_body: usize) -> Event {
    let (mut parts, body) = request.into_parts();
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let body = Limited::new(body, max_body).map_err(move |error| client_fault(error, max_body));
    Event::Http(Box::new(HttpRequest {
        method: parts.method,
        path_and_query,
        headers: parts.headers,
        body: RequestBody::new(body),
        upgrade,
    }))
}

/// The client's headers less those that were Cloudlet's.
fn for_the_function(mut headers: HeaderMap) -> HeaderMap {
    let cloudlets: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name == "authorization"
                || name == "x-qualifier"
                || name == WEBFN_HEADER.as_str()
                || name.starts_with("x-cloudlet-")
        })
        .cloned()
        .collect();
    for name in cloudlets {
        headers.remove(name);
    }
    headers
}

/// A body error the client caused, with its code: a body over the limit, or
/// one that stopped arriving (`body_timeout.rs`).
pub(crate) fn client_fault(error: BoxError, limit: usize) -> BoxError {
    if error.is::<LengthLimitError>() {
        let too_large = ApiError::body_too_large(limit);
        return Box::new(ClientBodyError {
            code: too_large.code,
            message: too_large.message,
        });
    }
    if crate::body_timeout::BodyStalled::caused(error.as_ref()) {
        return Box::new(ClientBodyError {
            code: ErrorCode::RequestTimeout,
            message: "the request body stopped arriving for longer than the server waits \
                      between its parts"
                .to_owned(),
        });
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_path_is_what_follows_web() {
        assert_eq!(after_segments("/v1/envs/e/functions/f/web/a/b", 6), "/a/b");
        assert_eq!(after_segments("/v1/envs/e/functions/f/web", 6), "/");
        assert_eq!(after_segments("/v1/envs/e/functions/f/web/", 6), "/");
        assert_eq!(after_segments("/v1/functions/f/web/sse", 4), "/sse");
    }

    #[test]
    fn webfn_is_taken_off_the_query() {
        let request = Request::builder()
            .uri("/v1/functions/f?a=1&webfn=true&b=%20")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(webfn(&request));
        let Event::Http(http) = event_at_root(request, 10).unwrap() else {
            panic!("an HTTP event");
        };
        assert_eq!(http.path_and_query.as_str(), "/?a=1&b=%20");
    }

    #[test]
    fn cloudlets_own_headers_do_not_reach_the_function() {
        let mut headers = HeaderMap::new();
        for name in [
            "authorization",
            "x-cloudlet-openid",
            "x-tcb-webfn",
            "accept",
        ] {
            headers.insert(HeaderName::from_static(name), "v".parse().unwrap());
        }
        let left: Vec<String> = for_the_function(headers)
            .keys()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(left, ["accept"]);
    }
}
