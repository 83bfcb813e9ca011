//! Managing the access service's routes: `GET /v1/routes`, `POST /v1/routes`,
//! `DELETE /v1/routes?host=…&path=…`, all with the admin key (a route
//! claims a host and a path for every env).

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use cloudlet_core::{ErrorCode, HostPattern, PathPrefix, Route};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::api::extract::Admin;
use crate::App;

/// Paths of Cloudlet's own API: a route for any host there would be hidden
/// by the API on the main listener.
const RESERVED: [&str; 3] = ["/v1", "/admin", "/healthz"];

pub(crate) async fn list(_: Admin, State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let routes = app.functions.routes().await.map_err(ApiError::storage)?;
    Ok(Json(json!({ "routes": routes })))
}

pub(crate) async fn add(
    _: Admin,
    State(app): State<Arc<App>>,
    route: Result<Json<Route>, JsonRejection>,
) -> Result<(StatusCode, Json<Route>), ApiError> {
    let Json(mut route) =
        route.map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.body_text()))?;
    if route.host == HostPattern::Any && reserved(&route.prefix) {
        return Err(ApiError::new(
            ErrorCode::InvalidParam,
            format!(
                "path {}: {} are Cloudlet's own API on the main listener; name a host, or choose another path",
                route.prefix,
                RESERVED.join(", ")
            ),
        ));
    }
    let function = app
        .functions
        .function(&route.env, &route.function)
        .await
        .map_err(ApiError::storage)?;
    if function.is_none() {
        return Err(ApiError::new(
            ErrorCode::FunctionNotFound,
            format!("function {} not found in env {}", route.function, route.env),
        ));
    }
    route.created_at = cloudlet_core::now_unix_ms();
    let added = app
        .functions
        .add_route(&route)
        .await
        .map_err(ApiError::storage)?;
    if !added {
        return Err(ApiError::new(
            ErrorCode::RouteConflict,
            format!(
                "host {} already has a route at {}; remove it first",
                route.host, route.prefix
            ),
        ));
    }
    reload(&app).await?;
    Ok((StatusCode::CREATED, Json(route)))
}

#[derive(Deserialize)]
pub(crate) struct RouteKey {
    #[serde(default)]
    host: Option<String>,
    path: String,
}

pub(crate) async fn remove(
    _: Admin,
    State(app): State<Arc<App>>,
    key: Result<Query<RouteKey>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(key) = key.map_err(|e| ApiError::new(ErrorCode::InvalidParam, e.body_text()))?;
    let invalid =
        |e: cloudlet_core::RouteError| ApiError::new(ErrorCode::InvalidParam, e.to_string());
    let host = HostPattern::parse(key.host.as_deref().unwrap_or("*")).map_err(invalid)?;
    let prefix = PathPrefix::parse(&key.path).map_err(invalid)?;
    let removed = app
        .functions
        .remove_route(&host, &prefix)
        .await
        .map_err(ApiError::storage)?;
    if !removed {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("host {host} has no route at {prefix}"),
        ));
    }
    reload(&app).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether a prefix is, or is below, one of Cloudlet's own paths; `/` is
/// not (the API's paths keep precedence over it).
fn reserved(prefix: &PathPrefix) -> bool {
    RESERVED
        .iter()
        .any(|own| PathPrefix::parse(own).is_ok_and(|own| own.below(prefix.as_str()).is_some()))
}

/// Serves the routes as stored from now on.
async fn reload(app: &App) -> Result<(), ApiError> {
    app.routes
        .load(app.functions.as_ref())
        .await
        .map_err(ApiError::storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_own_paths_are_reserved_but_the_root_is_not() {
        let reserved_at = |p: &str| reserved(&PathPrefix::parse(p).unwrap());
        assert!(reserved_at("/v1"));
        assert!(reserved_at("/v1/functions"));
        assert!(reserved_at("/admin"));
        assert!(!reserved_at("/"));
        assert!(!reserved_at("/v10"));
        assert!(!reserved_at("/api"));
    }
}
