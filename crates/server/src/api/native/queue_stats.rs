//! Where an env's asynchronous invocations stand (`GET
//! /v1/envs/{env}/queue`): per function, how many wait for their first
//! attempt, run, wait to run again, or are dead letters, and how old the
//! oldest waiting one is; with the env's limit. The env's key or the admin
//! key.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use cloudlet_core::now_unix_ms;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::api::extract::EnvReader;
use crate::App;

pub(crate) async fn show(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
) -> Result<Json<Value>, ApiError> {
    let queue = app.invoker.queue()?;
    let now = now_unix_ms();
    let stats = queue
        .store
        .stats(access.env(), now)
        .await
        .map_err(ApiError::storage)?;
    let functions: Vec<Value> = stats
        .iter()
        .map(|function| {
            let mut shown = json!(function);
            shown["oldestAgeMs"] = json!(function.oldest_enqueued_at.map(|at| now - at));
            shown
        })
        .collect();
    let depth: u64 = stats
        .iter()
        .map(|f| f.queued + f.running + f.retrying)
        .sum();
    Ok(Json(json!({
        "env": access.env(),
        "depth": depth,
        "maxQueued": queue.max_queued(),
        "functions": functions,
    })))
}
