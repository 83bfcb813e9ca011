//! A function's asynchronous settings (`maxRetries`, `maxEventAgeSeconds`,
//! `onSuccess`, `onFailure`): read with the env's key, set and cleared
//! with the admin key, without a new code version, as FC's async
//! configuration is. Each answer shows what applies and where it came from.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use cloudlet_core::{AsyncConfig, ErrorCode, FunctionName};
use serde_json::{json, Value};

use super::error::ApiError;
use crate::api::extract::{Admin, EnvReader};
use crate::auth::Access;
use crate::invoker::{AppliedSettings, Qualifier, Target};
use crate::App;

fn target(access: Access, name: String) -> Result<Target, ApiError> {
    let name = FunctionName::parse(name)
        .map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))?;
    Ok(Target {
        access,
        name,
        qualifier: Qualifier::Latest,
    })
}

/// `{"effective", "own", "defaults"}`: what applies; what the API set
/// (`null` for nothing); what the current version's `config.json` gives.
fn shown(applied: AppliedSettings) -> Json<Value> {
    Json(json!({
        "effective": applied.effective,
        "own": applied.own,
        "defaults": applied.defaults,
    }))
}

pub(crate) async fn show(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    Path((_, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = target(access, name)?;
    Ok(shown(app.invoker.applied_settings(&target).await?))
}

pub(crate) async fn set(
    _: Admin,
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    Path((_, name)): Path<(String, String)>,
    config: Result<Json<AsyncConfig>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(config) = config.map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.body_text()))?;
    let target = target(access, name)?;
    Ok(shown(
        app.invoker.set_async_config(&target, Some(config)).await?,
    ))
}

pub(crate) async fn clear(
    _: Admin,
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    Path((_, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = target(access, name)?;
    Ok(shown(app.invoker.set_async_config(&target, None).await?))
}
