//! An env's triggers (`GET /v1/envs/{env}/triggers`): each current
//! function's triggers from its `config.json`, and for a timer its next
//! firing in the server's zone. The env's key or the admin key.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use cloudlet_core::now_unix_ms;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::api::extract::EnvReader;
use crate::App;

pub(crate) async fn list(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
) -> Result<Json<Value>, ApiError> {
    let now = now_unix_ms() / 1000;
    let offset = app.limits.timer_utc_offset_seconds;
    let functions = app
        .functions
        .functions(access.env())
        .await
        .map_err(ApiError::storage)?
        .unwrap_or_default();
    let triggers: Vec<Value> = functions
        .iter()
        .flat_map(|function| {
            function.current.config.triggers.iter().map(|trigger| {
                let next = trigger
                    .schedule()
                    .and_then(|cron| cron.next_after(now, offset))
                    .map(|at| at * 1000);
                json!({
                    "function": function.name,
                    "name": trigger.name,
                    "type": trigger.kind,
                    "config": trigger.config,
                    "message": trigger.message,
                    "nextFiring": next,
                })
            })
        })
        .collect();
    Ok(Json(json!({ "env": access.env(), "triggers": triggers })))
}
