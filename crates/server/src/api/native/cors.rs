//! CORS on the invoke routes and the access service's routes: an env's settings (`PUT /v1/envs/{env}/cors`)
//! name the web origins whose pages may call its functions from a browser.
//!
//! A request without `Origin`, or from the server's own origin, is not a
//! cross-origin one and passes as it is. A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered here, without invoking the
//! function. Any other request from an origin is run only when the env's
//! settings allow that origin, and its answer gets the headers a browser
//! needs to read it; otherwise it is refused with `403
//! CORS_ORIGIN_NOT_ALLOWED` before the function runs. Refusing rather than
//! merely leaving the headers out matters: a browser sends a "simple"
//! cross-origin POST without asking first, and a loopback server takes
//! requests without a key, so any page could otherwise run functions.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cloudlet_core::{CorsSettings, EnvId, ErrorCode};
use cloudlet_store::{FunctionStore, StoreError};
use parking_lot::RwLock;

use super::error::ApiError;
use crate::App;

/// What a page may read of an answer besides the simple headers: every
/// header, an HTTP function's own included, for requests without
/// credentials; for those with them, where browsers do not take `*`,
/// Cloudlet's own.
const EXPOSED_ALL: HeaderValue = HeaderValue::from_static("*");
const EXPOSED_OWN: HeaderValue =
    HeaderValue::from_static("x-request-id, x-function-version, x-cloudlet-error");

/// Each env's settings, read from the store once and kept until they change.
#[derive(Default)]
pub(crate) struct CorsPolicies {
    known: RwLock<HashMap<EnvId, Option<Arc<CorsSettings>>>>,
}

impl CorsPolicies {
    async fn of(
        &self,
        store: &dyn FunctionStore,
        env: &EnvId,
    ) -> Result<Option<Arc<CorsSettings>>, StoreError> {
        if let Some(known) = self.known.read().get(env) {
            return Ok(known.clone());
        }
        let settings = store.cors(env).await?.map(Arc::new);
        self.known.write().insert(env.clone(), settings.clone());
        Ok(settings)
    }

    /// Forgets an env's settings after they changed.
    pub(crate) fn forget(&self, env: &EnvId) {
        self.known.write().remove(env);
    }
}

/// The layer on the invoke routes; see the module documentation.
pub(crate) async fn cors(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    // Most requests have no `Origin`: they pay one header lookup.
    if !request.headers().contains_key(header::ORIGIN) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, &app).await;
    let request = Request::from_parts(parts, body);
    let env = match params
        .as_ref()
        .ok()
        .and_then(|p| p.iter().find(|(key, _)| *key == "env"))
    {
        Some((_, env)) => EnvId::parse(env.to_owned()).ok(),
        None => Some(EnvId::default_env()),
    };
    // A bad env name is the handler's to report.
    let Some(env) = env else {
        return next.run(request).await;
    };
    guard(&app, &env, request, |request| next.run(request)).await
}

/// Applies `env`'s CORS settings to a request `run` would answer: a
/// preflight is answered, a page from a foreign origin refused or `run`,
/// its answer readable by the page. The access service's routes use it once
/// they know their env.
pub(crate) async fn guard<F, Fut>(app: &App, env: &EnvId, request: Request, run: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(origin) = cross_origin(request.headers()) else {
        return run(request).await;
    };
    let settings = match app.cors.of(app.functions.as_ref(), env).await {
        Ok(settings) => settings,
        Err(error) => return ApiError::storage(error).into_response(),
    };
    let allowed = settings.filter(|s| origin.to_str().is_ok_and(|o| s.allows_origin(o)));
    let Some(settings) = allowed else {
        return refused(env, &origin, "origin", request.headers());
    };
    if is_preflight(&request) {
        return preflight(&settings, &origin, request.headers(), env);
    }
    let mut response = run(request).await;
    allow(response.headers_mut(), &settings, &origin);
    let exposed = if settings.allow_credentials {
        EXPOSED_OWN
    } else {
        EXPOSED_ALL
    };
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed);
    response
}

/// An `OPTIONS` on an invoke route that is no preflight (those are answered
/// by the layer): the method is not one the route takes.
pub(crate) async fn not_a_preflight() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidAction,
        "this route does not accept that method",
    )
}

/// The request's `Origin`, unless it is absent or this server's own (its
/// host and port are the `Host` the request was sent to).
fn cross_origin(headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let own = headers.get(header::HOST).is_some_and(|host| {
        origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, authority)| authority.as_bytes() == host.as_bytes())
    });
    (!own).then(|| origin.clone())
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight: what the page may send, or why not.
fn preflight(
    settings: &CorsSettings,
    origin: &HeaderValue,
    headers: &HeaderMap,
    env: &EnvId,
) -> Response {
    let method = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default();
    if !settings.allows_method(method) {
        return refused(env, origin, &format!("method {method}"), headers);
    }
    let asked = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    let allowed_headers = if settings.allowed_headers.is_empty() {
        asked
    } else {
        let listed = |name: &str| {
            settings
                .allowed_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name.trim()))
        };
        let asked_text = asked.as_ref().and_then(|a| a.to_str().ok()).unwrap_or("");
        if let Some(other) = asked_text
            .split(',')
            .find(|h| !h.trim().is_empty() && !listed(h))
        {
            return refused(env, origin, &format!("header {}", other.trim()), headers);
        }
        HeaderValue::from_str(&settings.allowed_headers.join(", ")).ok()
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    allow(out, settings, origin);
    let methods = settings.methods().collect::<Vec<_>>().join(", ");
    if let Ok(methods) = HeaderValue::from_str(&methods) {
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    if let Some(allowed_headers) = allowed_headers {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers);
    }
    out.insert(header::ACCESS_CONTROL_MAX_AGE, settings.max_age().into());
    response
}

/// The headers that let the page read the answer.
fn allow(headers: &mut HeaderMap, settings: &CorsSettings, origin: &HeaderValue) {
    let any = settings.any_origin() && !settings.allow_credentials;
    let allowed = if any {
        HeaderValue::from_static("*")
    } else {
        origin.clone()
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    if settings.allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    // The answer depends on the origin, so shared caches must key on it.
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

fn refused(env: &EnvId, origin: &HeaderValue, what: &str, headers: &HeaderMap) -> Response {
    let origin = String::from_utf8_lossy(origin.as_bytes());
    ApiError::new(
        ErrorCode::CorsOriginNotAllowed,
        format!(
            "the {what} of a page from {origin} is not allowed to call env {env}'s functions; \
             its CORS settings (PUT /v1/envs/{env}/cors) decide"
        ),
    )
    .with_request_id_of(headers)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_from_the_servers_own_origin_is_not_cross_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(cross_origin(&headers).is_none());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example.com"),
        );
        assert!(cross_origin(&headers).is_some());
        headers.remove(header::ORIGIN);
        assert!(cross_origin(&headers).is_none());
    }
}
