//! CloudBase's integration request and response: how an event function
//! behind a route sees an HTTP request, and how its return value becomes the
//! HTTP answer.
//!
//! The event is `{path, httpMethod, headers, multiValueHeaders,
//! queryStringParameters, multiValueQueryStringParameters, requestContext,
//! body, isBase64Encoded}`. `headers` holds each header once (repeated ones
//! joined with `, `, cookies with `; `) and `multiValueHeaders` every value
//! apart, as API Gateway gives them; a query parameter given twice is its
//! last value in `queryStringParameters`. A body is text when it is UTF-8
//! and its type is textual, else base64 with `isBase64Encoded: true`.
//!
//! The return value: a string or a number is the body as
//! `text/plain; charset=utf-8`; an object with `statusCode` is an integration
//! response (`headers`, whose array values become repeated headers,
//! `multiValueHeaders`, `cookies`, `body`, `isBase64Encoded`) sent as it
//! says; anything else is JSON.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::prelude::{Engine as _, BASE64_STANDARD};
use cloudlet_core::{ErrorCode, RequestId, Route};
use serde_json::{Map, Value};

use crate::api::native::error::ApiError;

/// What the event says of the request, beside its body.
pub(crate) struct RequestHead<'a> {
    pub method: &'a Method,
    /// The path the function sees: below the route's prefix unless it keeps it.
    pub path: &'a str,
    /// The path as requested.
    pub full_path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub route: &'a Route,
    pub request_id: &'a RequestId,
}

/// The integration-request event, as JSON text.
pub(crate) fn event(head: &RequestHead<'_>, body: &[u8]) -> Bytes {
    let (headers, multi_headers) = headers(head.headers);
    let (query, multi_query) = query(head.query);
    let (body, base64) = body_text(head.headers, body);
    let event = serde_json::json!({
        "path": head.path,
        "httpMethod": head.method.as_str(),
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "requestContext": {
            "requestId": head.request_id.as_str(),
            "envId": head.route.env.as_str(),
            "appId": "",
            "uin": "",
            "httpMethod": head.method.as_str(),
            "path": head.full_path,
            "routePath": head.route.prefix.as_str(),
        },
        "body": body,
        "isBase64Encoded": base64,
    });
    Bytes::from(event.to_string())
}

/// Each header once (lowercase names) and every value apart.
fn headers(headers: &HeaderMap) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let joiner = if name == header::COOKIE { "; " } else { ", " };
        single.insert(name.to_string(), values.join(joiner).into());
        multi.insert(name.to_string(), values.into());
    }
    (single, multi)
}

/// The decoded query: each parameter's last value, and all of them.
fn query(query: Option<&str>) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        single.insert(key.to_string(), value.to_string().into());
        match multi
            .entry(key.into_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(values) => values.push(value.into_owned().into()),
            _ => unreachable!("only arrays are inserted"),
        }
    }
    (single, multi)
}

/// The body as the event carries it: text, or base64 (true) for bytes.
fn body_text(headers: &HeaderMap, body: &[u8]) -> (String, bool) {
    let textual = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(is_textual);
    match std::str::from_utf8(body) {
        Ok(text) if textual => (text.to_owned(), false),
        _ => (BASE64_STANDARD.encode(body), true),
    }
}

/// Whether a content type names text: `text/*`, JSON, XML, forms, scripts.
fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("/json")
        || essence.ends_with("+json")
        || essence.ends_with("/xml")
        || essence.ends_with("+xml")
        || essence == "application/x-www-form-urlencoded"
        || essence == "application/javascript"
}

/// The HTTP answer for a function's return value (JSON text).
pub(crate) fn response(json: String) -> Result<Response, ApiError> {
    match json.as_bytes().first() {
        Some(b'"') => {
            let text: String = serde_json::from_str(&json).map_err(malformed)?;
            Ok(text_plain(text))
        }
        Some(b'-' | b'0'..=b'9') => Ok(text_plain(json)),
        Some(b'{') => {
            let value: Value = serde_json::from_str(&json).map_err(malformed)?;
            match value {
                Value::Object(object) if object.contains_key("statusCode") => {
                    integration_response(object)
                }
                _ => Ok(json_body(json)),
            }
        }
        _ => Ok(json_body(json)),
    }
}

fn text_plain(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

fn json_body(json: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response()
}

fn malformed(error: serde_json::Error) -> ApiError {
    ApiError::new(
        ErrorCode::SysErr,
        format!("the function's result could not be read back: {error}"),
    )
}

/// A function's return value that is not a response it can have meant.
fn invalid(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::FunctionInvocationFailed,
        format!("the function returned an integration response with {what}"),
    )
}

/// `{statusCode, headers, multiValueHeaders, cookies, body, isBase64Encoded}`.
fn integration_response(object: Map<String, Value>) -> Result<Response, ApiError> {
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|code| (200..600).contains(&code.as_u16()))
        .ok_or_else(|| invalid("a statusCode that is not an HTTP status from 200 to 599"))?;
    let mut headers = HeaderMap::new();
    if let Some(single) = object.get("headers") {
        add_headers(&mut headers, single, "headers")?;
    }
    if let Some(multi) = object.get("multiValueHeaders") {
        add_headers(&mut headers, multi, "multiValueHeaders")?;
    }
    if let Some(cookies) = object.get("cookies") {
        let cookies = cookies
            .as_array()
            .ok_or_else(|| invalid("cookies that are not an array of strings"))?;
        for cookie in cookies {
            headers.append(header::SET_COOKIE, header_value(cookie, "cookies")?);
        }
    }
    let base64 = object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if base64 => BASE64_STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(|e| invalid(format!("a body that is not base64 ({e})")))?,
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(other) => {
            if !headers.contains_key(header::CONTENT_TYPE) {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Bytes::from(other.to_string())
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// `{"name": "v"}`, `{"name": 1}` or `{"name": ["v1", "v2"]}`: each value
/// one header line.
fn add_headers(headers: &mut HeaderMap, value: &Value, field: &str) -> Result<(), ApiError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(format!("{field} that are not an object")))?;
    for (name, values) in object {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("{name:?} in {field}, which is not a header name")))?;
        match values {
            Value::Array(values) => {
                for value in values {
                    headers.append(name.clone(), header_value(value, field)?);
                }
            }
            value => {
                headers.append(name, header_value(value, field)?);
            }
        }
    }
    Ok(())
}

fn header_value(value: &Value, field: &str) -> Result<HeaderValue, ApiError> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        _ => return Err(invalid(format!("a value in {field} that is not text"))),
    };
    HeaderValue::from_str(&text)
        .map_err(|_| invalid(format!("{text:?} in {field}, which a header cannot carry")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudlet_core::{EnvId, FunctionName, HostPattern, PathPrefix, RouteAuth};

    fn route() -> Route {
        Route {
            host: HostPattern::Any,
            prefix: PathPrefix::parse("/api").unwrap(),
            env: EnvId::parse("prod".to_owned()).unwrap(),
            function: FunctionName::parse("f".to_owned()).unwrap(),
            keep_prefix: false,
            auth: RouteAuth::Public,
            created_at: 0,
        }
    }

    fn event_of(headers: HeaderMap, query: Option<&str>, body: &[u8]) -> Value {
        let route = route();
        let id = RequestId::generate();
        let head = RequestHead {
            method: &Method::POST,
            path: "/users",
            full_path: "/api/users",
            query,
            headers: &headers,
            route: &route,
            request_id: &id,
        };
        serde_json::from_slice(&event(&head, body)).unwrap()
    }

    async fn body_of(response: Response) -> Bytes {
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
    }

    #[test]
    fn the_event_names_the_request_and_its_route() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let event = event_of(headers, Some("a=1&b=x%20y&a=2"), br#"{"k":1}"#);
        assert_eq!(event["path"], "/users");
        assert_eq!(event["httpMethod"], "POST");
        assert_eq!(event["body"], r#"{"k":1}"#);
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(event["queryStringParameters"]["a"], "2");
        assert_eq!(event["queryStringParameters"]["b"], "x y");
        assert_eq!(
            event["multiValueQueryStringParameters"]["a"],
            serde_json::json!(["1", "2"])
        );
        assert_eq!(event["requestContext"]["envId"], "prod");
        assert_eq!(event["requestContext"]["path"], "/api/users");
    }

    #[test]
    fn repeated_headers_and_cookies_are_kept() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1".parse().unwrap());
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        headers.append(header::ACCEPT, "text/html".parse().unwrap());
        headers.append(header::ACCEPT, "*/*".parse().unwrap());
        let event = event_of(headers, None, b"");
        assert_eq!(event["headers"]["cookie"], "a=1; b=2");
        assert_eq!(event["headers"]["accept"], "text/html, */*");
        assert_eq!(
            event["multiValueHeaders"]["cookie"],
            serde_json::json!(["a=1", "b=2"])
        );
    }

    #[test]
    fn a_binary_body_arrives_as_base64() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "image/png".parse().unwrap());
        let event = event_of(headers, None, &[0x89, b'P', b'N', b'G']);
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "iVBORw==");
        let bytes = event_of(HeaderMap::new(), None, &[0xff, 0xfe]);
        assert_eq!(bytes["isBase64Encoded"], true, "bytes that are not UTF-8");
    }

    #[tokio::test]
    async fn strings_and_numbers_are_plain_text_and_objects_json() {
        let text = response("\"hello\"".to_owned()).unwrap();
        assert_eq!(
            text.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(body_of(text).await, "hello");
        let number = response("42".to_owned()).unwrap();
        assert_eq!(
            number.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(body_of(number).await, "42");
        let object = response(r#"{"a":1}"#.to_owned()).unwrap();
        assert_eq!(object.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body_of(object).await, r#"{"a":1}"#);
    }

    #[tokio::test]
    async fn an_integration_response_is_sent_as_it_says() {
        let json = serde_json::json!({
            "statusCode": 201,
            "headers": {"content-type": "image/gif", "x-many": ["1", "2"]},
            "multiValueHeaders": {"set-cookie": ["a=1; Path=/", "b=2"]},
            "cookies": ["c=3"],
            "body": "R0lGODlh",
            "isBase64Encoded": true,
        });
        let response = response(json.to_string()).unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "image/gif");
        let many: Vec<_> = response.headers().get_all("x-many").iter().collect();
        assert_eq!(many, ["1", "2"]);
        let cookies: Vec<_> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .collect();
        assert_eq!(cookies, ["a=1; Path=/", "b=2", "c=3"]);
        assert_eq!(body_of(response).await, "GIF89a");
    }

    #[test]
    fn an_integration_response_with_a_bad_status_is_the_functions_error() {
        for bad in [
            r#"{"statusCode":99}"#,
            r#"{"statusCode":"ok"}"#,
            r#"{"statusCode":700}"#,
        ] {
            let error = response(bad.to_owned()).unwrap_err();
            assert_eq!(error.code, ErrorCode::FunctionInvocationFailed, "{bad}");
        }
    }
}
