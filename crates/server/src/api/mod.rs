//! The protocols Cloudlet speaks, one router each, side by side. A router
//! only parses its requests into calls of the invocation service (or the
//! stores, for management) and renders the answers in its own wire form,
//! errors included.

pub(crate) mod access;
mod extract;
pub(crate) mod native;
mod tcb;

use std::sync::Arc;

use axum::extract::Request;

use crate::App;

/// Every protocol's routes on one router: the native API and the TCB admin
/// protocol, then the access service's routes for what neither takes (which
/// answers `RESOURCE_NOT_FOUND` when no route takes it either). Requests for
/// a host one of its routes names go to the access service first.
pub(crate) fn router(app: Arc<App>) -> access::ByHost {
    let api = native::router(Arc::clone(&app))
        .merge(tcb::router(Arc::clone(&app)))
        .fallback_service(access::router(Arc::clone(&app)));
    access::ByHost::new(app, api)
}

/// Request IDs for requests that come without one: time-ordered UUIDv7s,
/// the same as an invocation's.
#[derive(Clone, Copy)]
pub(crate) struct MakeRequestId;

impl tower_http::request_id::MakeRequestId for MakeRequestId {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let id = cloudlet_core::RequestId::generate();
        axum::http::HeaderValue::from_str(id.as_str())
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// The span of one request: its method, path and request ID, at debug level.
pub(crate) fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(native::error::REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path(), request_id = id)
}
