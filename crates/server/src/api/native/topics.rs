//! Publishing a message (`POST /v1/envs/{env}/topics/{topic}/messages`,
//! the topic's `/`s as they are): `202 {"messageId", "deliveries"}` once
//! every subscriber's delivery is on the queue (`crate::topics`). The body
//! is the message: JSON when its content type says so, text or bytes
//! otherwise. The message ID is the request's `X-Request-Id`, so that a
//! retried publish delivers once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cloudlet_core::ErrorCode;
use cloudlet_store::invocation_queue::EventKind;
use serde_json::json;

use super::error::ApiError;
use super::invoke::body_error;
use crate::api::extract::{EnvAccess, InvocationId};
use crate::topics::{publish, Message};
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
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let kind = match () {
        () if is_json => EventKind::Json,
        () if std::str::from_utf8(&payload).is_ok() => EventKind::Text,
        () => EventKind::Binary,
    };
    let message = Message {
        id: id.clone(),
        topic: topic.to_owned(),
        payload,
        kind,
    };
    let deliveries = publish(&app, &access, message).await?;
    let body = Json(json!({ "messageId": id.as_str(), "deliveries": deliveries }));
    Ok((StatusCode::ACCEPTED, body).into_response())
}
