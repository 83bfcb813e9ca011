//! Deploying and looking things up: functions, records, envs, health.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use cloudlet_core::{
    EnvId, ErrorCode, FunctionInfo, FunctionName, InvocationRecord, Package, RequestId,
};
use cloudlet_runtime::DeployedFunction;
use cloudlet_store::NewVersion;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::invoke::body_error;
use crate::App;

type ApiResult<T> = Result<Json<T>, ApiError>;

fn env_id(env: String) -> Result<EnvId, ApiError> {
    EnvId::parse(env).map_err(|e| ApiError::new(ErrorCode::InvalidEnv, e.to_string()))
}

fn function_name(name: String) -> Result<FunctionName, ApiError> {
    FunctionName::parse(name).map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.to_string()))
}

/// The admin check and env validation of the env-level management routes.
fn admin_on_env(app: &App, headers: &HeaderMap, env: String) -> Result<EnvId, ApiError> {
    app.auth.require_admin(headers)?;
    env_id(env)
}

/// The admin check and name validation every per-function management route starts with.
fn admin_on_function(
    app: &App,
    headers: &HeaderMap,
    env: String,
    name: String,
) -> Result<(EnvId, FunctionName), ApiError> {
    Ok((admin_on_env(app, headers, env)?, function_name(name)?))
}

fn function_not_found(env: &EnvId, name: &FunctionName) -> ApiError {
    ApiError::new(
        ErrorCode::FunctionNotFound,
        format!("function {name} not found in env {env}"),
    )
}

pub(crate) async fn deploy(
    State(app): State<Arc<App>>,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<FunctionInfo> {
    let (env, name) = admin_on_function(&app, &headers, env, name)?;
    let archive = body.map_err(|r| body_error(r, app.limits.max_package_bytes))?;
    let decoded = archive.clone();
    // Unpacking a large archive takes milliseconds of CPU: keep it off the workers.
    let package = tokio::task::spawn_blocking(move || Package::from_archive(&decoded))
        .await
        .map_err(|e| ApiError::new(ErrorCode::SysErr, format!("package decoding failed: {e}")))?
        .map_err(|e| ApiError::new(ErrorCode::InvalidFunctionPackage, e.to_string()))?;
    let info = app
        .functions
        .deploy(NewVersion {
            env: env.clone(),
            name: name.clone(),
            version: package.version().clone(),
            config: package.config().clone(),
            archive,
        })
        .await
        .map_err(ApiError::storage)?;
    let function = Arc::new(DeployedFunction::new(
        env.clone(),
        name.clone(),
        Arc::new(package),
    ));
    let version = function.version.clone();
    app.registry.install(function);
    app.engine.retire(&env, &name, Some(&version));
    tracing::info!(env = %env, function = %name, version = version.short(), "deployed");
    Ok(Json(info))
}

pub(crate) async fn show_function(
    State(app): State<Arc<App>>,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<FunctionInfo> {
    let (env, name) = admin_on_function(&app, &headers, env, name)?;
    let info = app
        .functions
        .function(&env, &name)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| function_not_found(&env, &name))?;
    Ok(Json(info))
}

pub(crate) async fn list_functions(
    State(app): State<Arc<App>>,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Value> {
    let env = admin_on_env(&app, &headers, env)?;
    let functions = app
        .functions
        .functions(&env)
        .await
        .map_err(ApiError::storage)?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::FunctionNotFound, format!("env {env} not found"))
        })?;
    Ok(Json(json!({ "functions": functions })))
}

pub(crate) async fn remove_function(
    State(app): State<Arc<App>>,
    Path((env, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Value> {
    let (env, name) = admin_on_function(&app, &headers, env, name)?;
    let removed = app
        .functions
        .remove_function(&env, &name)
        .await
        .map_err(ApiError::storage)?;
    app.registry.remove(&env, &name);
    app.engine.retire(&env, &name, None);
    if !removed {
        return Err(function_not_found(&env, &name));
    }
    tracing::info!(env = %env, function = %name, "removed");
    Ok(Json(json!({ "deleted": true })))
}

pub(crate) async fn show_record(
    State(app): State<Arc<App>>,
    Path((env, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<InvocationRecord> {
    record(app, env, id, headers).await
}

pub(crate) async fn show_record_default_env(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<InvocationRecord> {
    record(app, EnvId::default_env().to_string(), id, headers).await
}

async fn record(
    app: Arc<App>,
    env: String,
    id: String,
    headers: HeaderMap,
) -> ApiResult<InvocationRecord> {
    let env = env_id(env)?;
    crate::auth::require_env_access(&app, &headers, &env).await?;
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
    Ok(Json(record))
}

pub(crate) async fn list_envs(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Value> {
    app.auth.require_admin(&headers)?;
    let envs = app.functions.envs().await.map_err(ApiError::storage)?;
    let envs: Vec<Value> = envs
        .into_iter()
        .map(
            |e| json!({"env": e.env, "createdAt": e.created_at, "functionCount": e.function_count}),
        )
        .collect();
    Ok(Json(json!({ "envs": envs })))
}

pub(crate) async fn issue_env_key(
    State(app): State<Arc<App>>,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Value> {
    let env = admin_on_env(&app, &headers, env)?;
    let key = app
        .functions
        .issue_env_key(&env)
        .await
        .map_err(ApiError::storage)?;
    app.auth.forget_env_key(&env);
    Ok(Json(json!({ "env": env, "key": key })))
}

pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
