//! Deploying and looking things up: functions, records, envs, health.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use cloudlet_core::{
    CorsSettings, EnvId, ErrorCode, FunctionInfo, FunctionName, InvocationRef, Package,
    RecordWithChildren, RequestId,
};
use cloudlet_runtime::DeployedFunction;
use cloudlet_store::NewVersion;
use serde_json::{json, Value};

use super::error::ApiError;
use super::invoke::body_error;
use crate::api::extract::{Admin, EnvReader};
use crate::App;

type ApiResult<T> = Result<Json<T>, ApiError>;

fn env_id(env: String) -> Result<EnvId, ApiError> {
    EnvId::parse(env).map_err(|e| ApiError::new(ErrorCode::InvalidEnv, e.to_string()))
}

fn function_name(name: String) -> Result<FunctionName, ApiError> {
    FunctionName::parse(name).map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))
}

/// The env and function names of a per-function management route, validated.
fn names(env: String, name: String) -> Result<(EnvId, FunctionName), ApiError> {
    Ok((env_id(env)?, function_name(name)?))
}

fn function_not_found(env: &EnvId, name: &FunctionName) -> ApiError {
    ApiError::new(
        ErrorCode::FunctionNotFound,
        format!("function {name} not found in env {env}"),
    )
}

pub(crate) async fn deploy(
    _: Admin,
    State(app): State<Arc<App>>,
    Path((env, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<FunctionInfo> {
    let (env, name) = names(env, name)?;
    app.invoker.refuse_if_stopping()?;
    let archive = body.map_err(|r| body_error(r, app.limits.max_package_bytes))?;
    let decoded = archive.clone();
    // Unpacking a large archive takes milliseconds of CPU: keep it off the workers.
    let package = tokio::task::spawn_blocking(move || Package::from_archive(&decoded))
        .await
        .map_err(|e| ApiError::new(ErrorCode::SysErr, format!("package decoding failed: {e}")))?
        .map_err(|e| ApiError::new(ErrorCode::InvalidFunctionPackage, e.to_string()))?;
    let config = package.config().clone();
    let version = package.version().clone();
    let function = Arc::new(DeployedFunction::new(
        env.clone(),
        name.clone(),
        Arc::new(package),
    ));
    // Dependencies are installed before the version is stored: a deploy
    // whose install fails changes nothing.
    let engine = app.invoker.prepare(&function).await?;
    let mut info = app
        .functions
        .deploy(NewVersion {
            env: env.clone(),
            name: name.clone(),
            version,
            config,
            archive,
        })
        .await
        .map_err(ApiError::storage)?;
    let version = function.version.clone();
    app.invoker.install(function, engine);
    app.invoker.describe(&mut info);
    if let Some(note) = &info.engine_note {
        tracing::warn!(env = %env, function = %name, "{note}");
    }
    tracing::info!(env = %env, function = %name, version = version.short(), engine = info.engine.as_deref().unwrap_or("?"), "deployed");
    Ok(Json(info))
}

pub(crate) async fn show_function(
    _: Admin,
    State(app): State<Arc<App>>,
    Path((env, name)): Path<(String, String)>,
) -> ApiResult<FunctionInfo> {
    let (env, name) = names(env, name)?;
    let mut info = app
        .functions
        .function(&env, &name)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| function_not_found(&env, &name))?;
    app.invoker.describe(&mut info);
    Ok(Json(info))
}

pub(crate) async fn list_functions(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(env): Path<String>,
) -> ApiResult<Value> {
    let env = env_id(env)?;
    let mut functions = app
        .functions
        .functions(&env)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::FunctionNotFound, format!("env {env} not found"))
        })?;
    for info in &mut functions {
        app.invoker.describe(info);
    }
    Ok(Json(json!({ "functions": functions })))
}

pub(crate) async fn remove_function(
    _: Admin,
    State(app): State<Arc<App>>,
    Path((env, name)): Path<(String, String)>,
) -> ApiResult<Value> {
    let (env, name) = names(env, name)?;
    let removed = app
        .functions
        .remove_function(&env, &name)
        .await
        .map_err(ApiError::storage)?;
    app.invoker.remove(&env, &name);
    if !removed {
        return Err(function_not_found(&env, &name));
    }
    tracing::info!(env = %env, function = %name, "removed");
    Ok(Json(json!({ "deleted": true })))
}

pub(crate) async fn show_record(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<RecordWithChildren> {
    record(app, access.env().clone(), id).await
}

pub(crate) async fn show_record_default_env(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult<RecordWithChildren> {
    record(app, access.env().clone(), id).await
}

/// The record and the calls its code made, which may be in other envs: a
/// caller may see that and what it called, the callees' records need their
/// own env's key.
async fn record(app: Arc<App>, env: EnvId, id: String) -> ApiResult<RecordWithChildren> {
    let id =
        RequestId::parse(id).map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))?;
    let record = app
        .records
        .record(&env, &id)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("no invocation {id} in env {env}"),
            )
        })?;
    let me = InvocationRef {
        env,
        request_id: record.request_id.clone(),
    };
    let children = app.records.children(&me).await.map_err(ApiError::storage)?;
    Ok(Json(RecordWithChildren { record, children }))
}

pub(crate) async fn list_envs(_: Admin, State(app): State<Arc<App>>) -> ApiResult<Value> {
    let envs = app.functions.envs().await.map_err(ApiError::storage)?;
    let envs: Vec<Value> = envs
        .into_iter()
        .map(
            |e| json!({"env": e.env, "createdAt": e.created_at, "functionCount": e.function_count}),
        )
        .collect();
    Ok(Json(json!({ "envs": envs })))
}

/// `?kind=publishable`: the env's publishable key rather than its own.
#[derive(serde::Deserialize)]
pub(crate) struct KeyKind {
    #[serde(default)]
    kind: Option<String>,
}

/// Issues the env's key (`ck_…`) or, with `?kind=publishable`, its
/// publishable key (`pk_…`), replacing the previous key of that kind.
pub(crate) async fn issue_env_key(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(env): Path<String>,
    Query(kind): Query<KeyKind>,
) -> ApiResult<Value> {
    let env = env_id(env)?;
    let (key, kind) = match kind.kind.as_deref() {
        None | Some("env") => (app.functions.issue_env_key(&env).await, "env"),
        Some("publishable") => (
            app.functions.issue_publishable_key(&env).await,
            "publishable",
        ),
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParam,
                format!("kind {other:?}: a key is of kind env or publishable"),
            ))
        }
    };
    let key = key.map_err(ApiError::storage)?;
    app.invoker.auth().forget_env_keys(&env);
    Ok(Json(json!({ "env": env, "key": key, "kind": kind })))
}

/// An env's CORS settings (`404 RESOURCE_NOT_FOUND` when it has none).
pub(crate) async fn show_cors(
    EnvReader(access): EnvReader,
    State(app): State<Arc<App>>,
) -> ApiResult<CorsSettings> {
    let env = access.env();
    match app.functions.cors(env).await.map_err(ApiError::storage)? {
        Some(settings) => Ok(Json(settings)),
        None => Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("env {env} has no CORS settings: no browser page may call it"),
        )),
    }
}

/// Sets an env's CORS settings; the admin key's to change.
pub(crate) async fn set_cors(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(env): Path<String>,
    settings: Result<Json<CorsSettings>, JsonRejection>,
) -> ApiResult<CorsSettings> {
    let env = env_id(env)?;
    let Json(settings) =
        settings.map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.body_text()))?;
    settings
        .validate()
        .map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))?;
    app.functions
        .set_cors(&env, Some(&settings))
        .await
        .map_err(ApiError::storage)?;
    app.cors.forget(&env);
    Ok(Json(settings))
}

/// Removes an env's CORS settings: no browser page may call it any more.
pub(crate) async fn remove_cors(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(env): Path<String>,
) -> ApiResult<Value> {
    let env = env_id(env)?;
    app.functions
        .set_cors(&env, None)
        .await
        .map_err(ApiError::storage)?;
    app.cors.forget(&env);
    Ok(Json(json!({ "env": env, "cors": null })))
}

/// What the server holds: records on disk, instances in memory, invocations
/// and connections in progress.
pub(crate) async fn status(_: Admin, State(app): State<Arc<App>>) -> ApiResult<Value> {
    let records = app.records.usage().await.map_err(ApiError::storage)?;
    let engine = app.invoker.engines().usage();
    let (running, max_running) = app.invoker.running();
    Ok(Json(json!({
        "records": {
            "count": records.records,
            "bytes": records.bytes,
            "maxBytes": records.max_bytes,
            "oldestStartedAt": records.oldest_started_at,
            "pending": records.pending,
            "dropped": records.dropped,
        },
        "instances": {
            "count": engine.instances,
            "memoryHeldBytes": engine.memory_held_bytes,
            "memoryBudgetBytes": engine.memory_budget_bytes,
        },
        "invocations": {
            "running": running,
            "max": max_running,
        },
    })))
}

pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
