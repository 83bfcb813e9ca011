//! The native API (`docs/api.md`): invoking, deploying and looking things
//! up over HTTP with JSON bodies. Handlers parse, call the invocation service
//! or the stores, and render; `error.rs` is its one error form.

mod async_config;
pub(crate) mod cors;
mod dead_letters;
pub(crate) mod error;
mod invocations;
mod invoke;
mod manage;
mod queue_stats;
mod routes;
mod tmp;
mod topics;
mod triggers;
pub(crate) mod web;

pub(crate) use invoke::{body_error, streamed};

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::Router;
use cloudlet_core::ErrorCode;

use self::error::ApiError;
use crate::App;

/// The native API's routes. The body limits are per route group: an
/// event's (`--max-body-bytes`) and a package's (`--max-package-bytes`).
pub(crate) fn router(app: Arc<App>) -> Router {
    let max_body = app.limits.max_body_bytes;
    let max_package = app.limits.max_package_bytes;
    // OPTIONS has a route so that the CORS layer sees preflights (a layer
    // does not wrap a route's answer to a method it lacks).
    let invoke_routes = Router::new()
        .route(
            "/v1/envs/{env}/functions/{name}",
            post(invoke::invoke_in_env).options(cors::not_a_preflight),
        )
        .route(
            "/v1/functions/{name}",
            post(invoke::invoke_default_env).options(cors::not_a_preflight),
        )
        // An HTTP function's own paths, under `/web`, which the handler
        // checks: a route of `web/{*path}` would not match `web/`.
        .route("/v1/envs/{env}/functions/{name}/{*web}", any(web::web))
        .route("/v1/functions/{name}/{*web}", any(web::web))
        .route("/v1/envs/{env}/topics/{*topic}", post(topics::post))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |request, next| {
            refuse_declared_oversize(max_body, request, next)
        }))
        // Outermost: a preflight is answered, and a refused origin refused,
        // before anything else looks at the request.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            cors::cors,
        ));
    let manage_routes = Router::new()
        .route(
            "/v1/envs/{env}/functions/{name}",
            get(manage::show_function)
                .put(manage::deploy)
                .delete(manage::remove_function),
        )
        .layer(DefaultBodyLimit::max(max_package))
        .layer(axum::middleware::from_fn(move |request, next| {
            refuse_declared_oversize(max_package, request, next)
        }))
        .route(
            "/v1/envs/{env}/functions/{name}/async-config",
            get(async_config::show)
                .put(async_config::set)
                .delete(async_config::clear),
        )
        .route("/v1/envs/{env}/functions", get(manage::list_functions))
        .route("/v1/envs/{env}/invocations", get(invocations::list))
        .route(
            "/v1/envs/{env}/invocations/{id}",
            get(manage::show_record).delete(invocations::cancel),
        )
        .route("/v1/invocations/{id}", get(manage::show_record_default_env))
        .route("/v1/envs", get(manage::list_envs))
        .route("/v1/envs/{env}/keys", post(manage::issue_env_key))
        .route(
            "/v1/envs/{env}/cors",
            get(manage::show_cors)
                .put(manage::set_cors)
                .delete(manage::remove_cors),
        )
        .route("/v1/tmp/{env}/{name}", get(tmp::download))
        .route(
            "/v1/envs/{env}/dead-letters",
            get(dead_letters::list).delete(dead_letters::purge),
        )
        .route(
            "/v1/envs/{env}/dead-letters/{id}/redrive",
            post(dead_letters::redrive),
        )
        .route("/v1/envs/{env}/queue", get(queue_stats::show))
        .route("/v1/envs/{env}/triggers", get(triggers::list))
        .route(
            "/v1/routes",
            get(routes::list).post(routes::add).delete(routes::remove),
        )
        .route("/v1/status", get(manage::status))
        .route("/healthz", get(manage::health));
    // Uploads stream to disk under their own limit (`--tmp-max-object-bytes`);
    // pages upload from other origins, as they invoke.
    let upload_routes = Router::new()
        .route(
            "/v1/envs/{env}/tmp",
            post(tmp::upload).options(cors::not_a_preflight),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            cors::cors,
        ));
    invoke_routes
        .merge(manage_routes)
        .merge(upload_routes)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::InvalidAction,
                "this route does not accept that method",
            )
        })
        .with_state(app)
}

/// Refuses a request whose declared `Content-Length` is over `limit` before its
/// body is read: a client that waits on `Expect: 100-continue` gets its answer
/// without uploading, and one that declares more than it sends is not waited for.
async fn refuse_declared_oversize(
    limit: usize,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match crate::api::extract::refuse_declared_oversize(request.headers(), limit) {
        Ok(()) => next.run(request).await,
        Err(too_large) => too_large.into_response(),
    }
}
