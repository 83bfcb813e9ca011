//! Publishing a message (`POST /v1/envs/{env}/topics/{topic}/messages`,
//! the topic's `/`s as they are): `202 {"messageId", "deliveries"}` once
//! every subscriber's delivery is on the queue (`invoker/publish.rs`). The
//! body is the message: JSON or bytes when its content type says so
//! (`application/json`, `application/octet-stream`), else text, or bytes
//! when it is not UTF-8. The message ID is the request's `X-Request-Id`, so
//! that a retried publish delivers once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cloudlet_core::ErrorCode;
use cloudlet_runtime::{Event, Origin, Publication};
use serde_json::json;

use super::error::ApiError;
use super::invoke::body_error;
use crate::api::extract::{EnvAccess, InvocationId};
use crate::App;

const SUFFIX: &str = "/messages";

pub(crate) async fn post(
    EnvAccess(access): EnvAccess,
    InvocationId(id): InvocationId,
    State(app): State<Arc<App>>,
    Path((_, rest)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let topic = rest.strip_suffix(SUFFIX).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            "a message is published to /v1/envs/{env}/topics/{topic}/messages",
        )
    })?;
    let payload = body.map_err(|r| body_error(r, app.limits.max_body_bytes))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let message = Publication {
        topic: topic.to_owned(),
        event: event_of(content_type, payload),
    };
    let deliveries = app
        .invoker
        .publish(&access, &id, message, Origin::default())
        .await?;
    let body = Json(json!({ "messageId": id.as_str(), "deliveries": deliveries }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}

/// The message as the subscribers' event, as its content type says.
fn event_of(content_type: &str, payload: Bytes) -> Event {
    if content_type.starts_with("application/json") {
        return Event::Json(payload);
    }
    if content_type.starts_with("application/octet-stream") {
        return Event::Binary(payload);
    }
    match String::from_utf8(payload.into()) {
        Ok(text) => Event::Text(text),
        Err(bytes) => Event::Binary(bytes.into_bytes().into()),
    }
}
