//! Temporary storage: `POST /v1/envs/{env}/tmp` uploads an object (the
//! env's key), `GET /v1/tmp/{env}/{name}` serves it to whoever holds the URL,
//! until it expires. The client SDK's `cloud.CDN()` fields go here before
//! a call, and the function fetches them by URL.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cloudlet_core::{EnvId, ErrorCode};
use cloudlet_store::tmp::{TmpError, TmpObjects};
use serde_json::{json, Value};

use super::error::ApiError;
use crate::api::extract::{declared_length, EnvAccess};
use crate::App;

/// What a download may do in a browser: nothing active. Objects are served
/// from the API's own origin, so an uploaded page must not run scripts there.
const SANDBOX: HeaderValue = HeaderValue::from_static("sandbox; default-src 'none'");

fn objects(app: &App) -> Result<&Arc<TmpObjects>, ApiError> {
    app.invoker.tmp_objects().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            "this server keeps no temporary objects",
        )
    })
}

// `EnvAccess` comes first: the key is checked before the body is read.
pub(crate) async fn upload(
    EnvAccess(access): EnvAccess,
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let objects = objects(&app)?;
    let limits = app.limits.tmp;
    if declared_length(request.headers()).is_some_and(|length| length > limits.max_object_bytes) {
        return Err(refused(TmpError::TooLarge(limits.max_object_bytes)));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let base = base_url(request.headers());
    let env = access.env().clone();
    let body = request.into_body().into_data_stream();
    let object = objects
        .put(&env, &content_type, body, limits)
        .await
        .map_err(refused)?;
    let url = format!("{base}/v1/tmp/{env}/{}", object.name);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "url": url,
            "name": object.name,
            "size": object.size,
            "contentType": object.content_type,
            "expiresAt": object.expires_at,
        })),
    ))
}

/// An object's bytes with its type, to anyone with its URL.
pub(crate) async fn download(
    State(app): State<Arc<App>>,
    Path((env, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let objects = objects(&app)?;
    let missing = || {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            "no such temporary object, or it expired",
        )
    };
    let env = EnvId::parse(env).map_err(|_| missing())?;
    let Some((object, file)) = objects.get(&env, &name).await.map_err(|error| {
        tracing::error!(%error, "cannot read a temporary object");
        ApiError::new(
            ErrorCode::SysErr,
            "temporary storage failed; see the server log",
        )
    })?
    else {
        return Err(missing());
    };
    let stream = tokio_util::io::ReaderStream::new(file);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&object.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, object.size.into());
    headers.insert(header::CONTENT_SECURITY_POLICY, SANDBOX);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let left_s = (object.expires_at - cloudlet_core::now_unix_ms()).max(0) / 1000;
    if let Ok(cache) = HeaderValue::from_str(&format!("private, max-age={left_s}")) {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    Ok(response)
}

/// Where the client reached this server: its `Host`, over HTTPS when a
/// proxy in front says so (`X-Forwarded-Proto`).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

fn refused(error: TmpError) -> ApiError {
    match error {
        TmpError::TooLarge(_) => {
            ApiError::new(ErrorCode::ExceedRequestSizeLimit, error.to_string())
        }
        TmpError::OverQuota(_) => ApiError::new(ErrorCode::ExceedStorageQuota, error.to_string()),
        TmpError::Body(_) => ApiError::new(ErrorCode::InvalidParam, error.to_string()),
        TmpError::Io(io) => {
            tracing::error!(error = %io, "temporary storage failed");
            ApiError::new(
                ErrorCode::SysErr,
                "temporary storage failed; see the server log",
            )
        }
    }
}
