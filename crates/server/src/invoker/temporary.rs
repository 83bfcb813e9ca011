//! The js engine's `fetch` of a `cloud.CDN()` field: the function reads
//! the temporary object its URL names, straight from this server's store.
//!
//! A URL names a temporary object when its path is `/v1/tmp/{env}/{name}`,
//! as the upload answered it, whatever host the uploader reached the server
//! by: names are 128 random bits, so an object found under one is the one
//! meant. Other URLs go to `outbound.rs`, if the server allows their origin.

use bytes::Bytes;
use cloudlet_core::{EnvId, ErrorCode};
use cloudlet_runtime::{CallRefused, FetchResponse};
use cloudlet_store::tmp::TmpObjects;
use tokio::io::AsyncReadExt;

/// The path under which the API serves temporary objects.
const TMP_PATH: &str = "/v1/tmp/";

/// Reads the object `(env, name)` for a GET, or only its size for a HEAD;
/// a missing or expired one is a 404 answer, as the API gives it.
pub(super) async fn read(
    objects: &TmpObjects,
    (env, name): (&str, &str),
    method: &str,
) -> Result<FetchResponse, CallRefused> {
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(read_only(method)),
    };
    let found = match EnvId::parse(env.to_owned()) {
        Ok(env) => objects.get(&env, name).await.map_err(read_failed)?,
        Err(_) => None,
    };
    let Some((object, mut file)) = found else {
        return Ok(missing());
    };
    let mut body = Vec::new();
    if !head {
        body.reserve_exact(usize::try_from(object.size).unwrap_or(0));
        file.read_to_end(&mut body).await.map_err(read_failed)?;
    }
    Ok(FetchResponse {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), object.content_type),
            ("content-length".to_owned(), object.size.to_string()),
        ],
        body: Bytes::from(body),
    })
}

/// The env and name in a temporary object's URL.
pub(super) fn object_of(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let path = &rest[rest.find('/')?..];
    let path = path.split(['?', '#']).next()?;
    let (env, name) = path.strip_prefix(TMP_PATH)?.split_once('/')?;
    (!env.is_empty() && !name.is_empty() && !name.contains('/')).then_some((env, name))
}

fn missing() -> FetchResponse {
    let body = serde_json::json!({
        "code": ErrorCode::ResourceNotFound.as_str(),
        "message": "no such temporary object, or it expired",
    });
    FetchResponse {
        status: 404,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: Bytes::from(body.to_string()),
    }
}

fn read_only(method: &str) -> CallRefused {
    CallRefused {
        code: ErrorCode::PermissionDenied,
        message: format!("temporary objects are read with GET or HEAD, not {method}"),
    }
}

fn read_failed(error: std::io::Error) -> CallRefused {
    tracing::error!(%error, "cannot read a temporary object");
    CallRefused {
        code: ErrorCode::SysErr,
        message: "temporary storage failed; see the server log".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::object_of;

    #[test]
    fn a_temporary_objects_url_names_its_env_and_object_whatever_the_host() {
        let url = "http://127.0.0.1:9000/v1/tmp/default/0123abcd?x=1";
        assert_eq!(object_of(url), Some(("default", "0123abcd")));
        let url = "https://cdn.example.com/v1/tmp/shop/ff00";
        assert_eq!(object_of(url), Some(("shop", "ff00")));
    }

    #[test]
    fn other_urls_name_no_temporary_object() {
        for url in [
            "http://example.com/v1/envs/default/functions/add",
            "http://example.com/v1/tmp/default",
            "http://example.com/v1/tmp/default/a/b",
            "ftp://example.com/v1/tmp/default/ab",
            "/v1/tmp/default/ab",
        ] {
            assert_eq!(object_of(url), None, "{url}");
        }
    }
}
