//! The HTTP access service: routes from a host and a path prefix to a
//! function (`docs/access.md`), as CloudBase's "HTTP 访问服务" serves
//! functions to browsers and front-end apps on a domain of their own.
//!
//! A request goes to the first route that takes its host and path
//! (`table.rs`), then passes the route's env's CORS settings
//! (`native/cors.rs`) and the route's access rule (public, or the env's key);
//! an HTTP function gets the request as it came (the path below the prefix
//! unless the route keeps it), an event function CloudBase's integration
//! request, whose return value becomes the answer (`integration.rs`). On the
//! main listener, requests for a host a route names come here first, and
//! requests no API route takes come here last; `--access-listen` serves
//! only this.

mod integration;
mod table;

pub(crate) use table::RouteTable;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cloudlet_core::{ErrorCode, FunctionKind, RequestId, Route, RouteAuth};
use cloudlet_runtime::{BoxError, ClientBodyError, Event, Output};
use http_body_util::BodyExt;

use self::integration::RequestHead;
use crate::api::extract::{
    accepts_event_stream, client_request_id, credential, refuse_declared_oversize,
};
use crate::api::native::error::{ApiError, REQUEST_ID_HEADER};
use crate::api::native::{streamed, web};
use crate::invoker::{InvokeContext, Qualifier, Target};
use crate::App;

/// What the records of route invocations name as their trigger.
const TRIGGER: &str = "route";

/// The access service alone: what `--access-listen` serves. One handler
/// for every path, which holds requests to the body limit itself (no layer:
/// on the main listener it is the fallback of the API's router).
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().fallback(serve).with_state(app)
}

/// Sends requests for a host a route names to the access service, and the
/// rest to the API: on the main listener, a custom domain's routes come
/// before the API's own paths.
#[derive(Clone)]
pub(crate) struct ByHost {
    app: Arc<App>,
    api: Router,
    access: Router,
}

impl ByHost {
    pub(crate) fn new(app: Arc<App>, api: Router) -> Self {
        let access = router(Arc::clone(&app));
        Self { app, api, access }
    }
}

impl tower::Service<Request> for ByHost {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as tower::Service<Request>>::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Routers are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let routes = &self.app.routes;
        if routes.claims_host(request.headers(), request.uri()) {
            self.access.call(request)
        } else {
            self.api.call(request)
        }
    }
}

/// The route's function's answer to the request, or why there is none.
async fn serve(State(app): State<Arc<App>>, request: Request) -> Response {
    let host = table::request_host(request.headers(), request.uri());
    let Some(route) = app.routes.find(host.as_deref(), request.uri().path()) else {
        return ApiError::new(
            ErrorCode::ResourceNotFound,
            "no route for this host and path (cloudlet routes list)",
        )
        .with_request_id_of(request.headers())
        .into_response();
    };
    let env = route.env.clone();
    crate::api::native::cors::guard(&app, &env, request, |request| {
        invoke(Arc::clone(&app), route, request)
    })
    .await
}

/// Runs the route's function on the request and renders its answer.
async fn invoke(app: Arc<App>, route: Arc<Route>, mut request: Request) -> Response {
    let request_id = match request_id(&route, request.headers()) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let credential = credential(request.headers());
    for_the_function(request.headers_mut(), &route);
    let max_body = app.limits.max_body_bytes;
    let answer = async {
        refuse_declared_oversize(request.headers(), max_body)?;
        let access = app
            .invoker
            .authorize_route(&route.env, route.auth, &credential)
            .await?;
        let target = Target {
            access,
            name: route.function.clone(),
            qualifier: Qualifier::Latest,
        };
        let kind = app.invoker.kind_of(&target).await?;
        let mut context = InvokeContext::new(request_id.clone(), TRIGGER);
        context.accepts_event_stream = accepts_event_stream(request.headers());
        let event = match kind {
            FunctionKind::Http => web::http_event(at_function_path(request, &route), max_body),
            FunctionKind::Event => {
                context.event_written_by_cloudlet = true;
                integration_event(request, &route, &request_id, max_body).await?
            }
        };
        let invocation = app.invoker.invoke(target, event, context).await?;
        match invocation.result {
            Ok(Output::Stream(stream)) => Ok(streamed(stream)),
            Ok(Output::Json(json)) => integration::response(json),
            Err(error) => Err(ApiError::from(error)),
        }
    };
    let mut response = answer
        .await
        .unwrap_or_else(|error: ApiError| error.with_request_id(&request_id).into_response());
    if let Ok(id) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}

/// The headers as the function sees them, less Cloudlet's: on a public
/// route the `X-Request-Id` the request-ID layer gave it (the invocation has
/// an ID of its own, in `requestContext`); on a keyed route the key (on a
/// public route, `Authorization` is the app's own, and passes).
fn for_the_function(headers: &mut HeaderMap, route: &Route) {
    match route.auth {
        RouteAuth::Public => headers.remove(REQUEST_ID_HEADER),
        RouteAuth::Key => headers.remove(axum::http::header::AUTHORIZATION),
    };
}

/// The invocation's request ID: the caller's own on a route that requires
/// a key, as on the invoke API; always a fresh one on a public route, where
/// anyone could otherwise replace another request's record by reusing its ID.
fn request_id(route: &Route, headers: &HeaderMap) -> Result<RequestId, ApiError> {
    let chosen = match route.auth {
        RouteAuth::Public => None,
        RouteAuth::Key => client_request_id(headers)?,
    };
    Ok(chosen.unwrap_or_else(RequestId::generate))
}

/// The path the function sees: below the route's prefix, unless the route
/// keeps it.
fn function_path<'p>(route: &Route, path: &'p str) -> &'p str {
    if route.keep_prefix {
        path
    } else {
        route.prefix.below(path).unwrap_or("/")
    }
}

/// The request with its URI cut to the function's path and the query.
fn at_function_path(request: Request, route: &Route) -> Request {
    let (mut parts, body) = request.into_parts();
    let path = function_path(route, parts.uri.path());
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    if let Ok(uri) = path_and_query.parse() {
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

/// Reads the body (under the limit) into the integration-request event.
async fn integration_event(
    request: Request,
    route: &Route,
    request_id: &RequestId,
    max_body: usize,
) -> Result<Event, ApiError> {
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, max_body)
        .collect()
        .await
        .map_err(|error| unreadable(error, max_body))?
        .to_bytes();
    let head = RequestHead {
        method: &parts.method,
        path: function_path(route, parts.uri.path()),
        full_path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        route,
        request_id,
    };
    Ok(Event::Json(integration::event(&head, &body)))
}

/// Why a body could not be read: too large (413), stalled (408), or broken.
fn unreadable(error: BoxError, limit: usize) -> ApiError {
    let error = web::client_fault(error, limit);
    match error.downcast_ref::<ClientBodyError>() {
        Some(fault) => ApiError::new(fault.code, fault.message.clone()),
        None => ApiError::new(
            ErrorCode::InvalidParam,
            format!("cannot read the request body: {error}"),
        ),
    }
}
