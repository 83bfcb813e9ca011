//! What every protocol's handlers take from a request's head before its body
//! is read: the credential, the env it may use, the invocation's request ID,
//! whether the caller takes server-sent events.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use cloudlet_core::{EnvId, ErrorCode, RequestId};

use super::native::error::{ApiError, REQUEST_ID_HEADER};
use crate::auth::{Access, Credential, Scope};
use crate::App;

/// The key of `Authorization: Bearer <key>`; the scheme is matched without
/// regard to case, as HTTP's auth schemes are (RFC 9110, 11.1).
pub(crate) fn credential(headers: &HeaderMap) -> Credential {
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_owned());
    key.map_or(Credential::None, Credential::Key)
}

/// Whether the caller takes server-sent events, so that the function's
/// `context.sse()` may answer with them.
pub(crate) fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            item.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// The admin key, checked on the request's head: as an extractor it runs
/// before the body is read, so a request without the key is refused before
/// its client uploads anything (and `Expect: 100-continue` is never answered).
pub(crate) struct Admin;

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        app.invoker
            .auth()
            .require_admin(&credential(&parts.headers))
            .map_err(|e| ApiError::from(e).with_request_id_of(&parts.headers))?;
        Ok(Admin)
    }
}

/// The env of the route (`{env}` in its path, else the default env), which
/// the request's key may use. Like [`Admin`], decided before the body is read.
pub(crate) struct EnvAccess(pub Access);

impl FromRequestParts<Arc<App>> for EnvAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.body_text()))?;
        let env = match params.iter().find(|(key, _)| *key == "env") {
            Some((_, env)) => EnvId::parse(env.to_owned())
                .map_err(|e| ApiError::new(ErrorCode::InvalidEnv, e.to_string()))?,
            None => EnvId::default_env(),
        };
        let access = app
            .invoker
            .authorize(&env, &credential(&parts.headers))
            .await
            .map_err(|e| ApiError::from(e).with_request_id_of(&parts.headers))?;
        Ok(EnvAccess(access))
    }
}

/// Like [`EnvAccess`], for what reads the env's records and settings: a
/// publishable key, which web pages carry, may not.
pub(crate) struct EnvReader(pub Access);

impl FromRequestParts<Arc<App>> for EnvReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let EnvAccess(access) = EnvAccess::from_request_parts(parts, app).await?;
        if access.scope() != Scope::Full {
            return Err(ApiError::new(
                ErrorCode::PermissionDenied,
                "a publishable key may invoke and upload, not read records or settings; \
                 use the env's key",
            )
            .with_request_id_of(&parts.headers));
        }
        Ok(EnvReader(access))
    }
}

/// The body length a request declares (`Content-Length`), if it declares one:
/// routes refuse a body over their limit on it, before reading any.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// Refuses a body whose declared length is over `limit`, before any of it is read.
pub(crate) fn refuse_declared_oversize(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    match declared_length(headers) {
        Some(length) if length > limit as u64 => Err(ApiError::body_too_large(limit)),
        _ => Ok(()),
    }
}

/// The client's `X-Request-Id`, if it sent one; an invalid one is refused.
pub(crate) fn client_request_id(headers: &HeaderMap) -> Result<Option<RequestId>, ApiError> {
    let Some(value) = headers.get(REQUEST_ID_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|s| RequestId::parse(s).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParam,
                format!("X-Request-Id must be {}", RequestId::RULE),
            )
        })
}

/// The invocation's request ID: the client's `X-Request-Id` (the request-ID
/// layer in `router()` gives a request without one a fresh one); an invalid
/// one is refused.
pub(crate) struct InvocationId(pub RequestId);

impl<S: Sync> FromRequestParts<S> for InvocationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let id = client_request_id(&parts.headers)?;
        Ok(InvocationId(id.unwrap_or_else(RequestId::generate)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accept_header_naming_event_streams_is_understood() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_event_stream(&headers));
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!accepts_event_stream(&headers));
        headers.insert(
            header::ACCEPT,
            "application/json, Text/Event-Stream;q=0.9".parse().unwrap(),
        );
        assert!(accepts_event_stream(&headers));
    }
}
