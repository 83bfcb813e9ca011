//! An env's dead letters: the asynchronous invocations that will not run
//! again (`GET /v1/envs/{env}/dead-letters`), each of which can be queued
//! again (`POST …/dead-letters/{id}/redrive`), and all of which can be
//! removed (`DELETE …/dead-letters`). The env's key or the admin key.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use base64::Engine as _;
use cloudlet_core::{now_unix_ms, ErrorCode, RequestId};
use cloudlet_store::invocation_queue::{EventKind, InvocationQueue, QueueKey, Queued};
use serde_json::{json, Value};

use super::error::ApiError;
use crate::api::extract::EnvReader;
use crate::App;

/// The queue, or (404) why there is none: the invocation service's.
fn queue(app: &App) -> Result<&Arc<dyn InvocationQueue>, ApiError> {
    Ok(&app.invoker.queue()?.store)
}

/// A dead letter as the API shows it: the event as text (JSON or a Link
/// IoT Edge text payload), or bytes in base64, as `eventKind` says.
fn shown(dead: &Queued) -> Value {
    let invocation = &dead.invocation;
    let event = match invocation.event_kind {
        EventKind::Json | EventKind::Text => {
            String::from_utf8_lossy(&invocation.event).into_owned()
        }
        EventKind::Binary => base64::engine::general_purpose::STANDARD.encode(&invocation.event),
    };
    json!({
        "requestId": invocation.key.request_id.as_str(),
        "function": invocation.function.as_str(),
        "version": invocation.version.as_str(),
        "trigger": invocation.trigger,
        "enqueuedAt": invocation.enqueued_at,
        "attempts": dead.attempts,
        "reason": dead.dead,
        "lastError": dead.last_error(),
        "eventKind": invocation.event_kind.as_str(),
        "event": event,
        "history": dead.history,
    })
}

pub(crate) async fn list(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
) -> Result<Json<Value>, ApiError> {
    let dead = queue(&app)?
        .dead_letters(access.env())
        .await
        .map_err(ApiError::storage)?;
    let shown: Vec<Value> = dead.iter().map(shown).collect();
    Ok(Json(json!({ "deadLetters": shown })))
}

pub(crate) async fn redrive(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let request_id =
        RequestId::parse(id).map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))?;
    let key = QueueKey {
        env: access.env().clone(),
        request_id,
    };
    let queue = queue(&app)?;
    let requeued = queue
        .redrive(&key, now_unix_ms())
        .await
        .map_err(ApiError::storage)?;
    if !requeued {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("no dead letter {} in env {}", key.request_id, key.env),
        ));
    }
    app.invoker.wake_queue();
    Ok(Json(
        json!({ "requestId": key.request_id.as_str(), "requeued": true }),
    ))
}

pub(crate) async fn purge(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
) -> Result<Json<Value>, ApiError> {
    let purged = queue(&app)?
        .purge_dead_letters(access.env())
        .await
        .map_err(ApiError::storage)?;
    Ok(Json(json!({ "purged": purged })))
}
