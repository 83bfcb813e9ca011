//! CloudBase's integration request and response: how an event function
//! behind a route sees an HTTP request, and how its return value becomes the
//! HTTP answer.
//!
//! The event is `{path, httpMethod, headers, queryStringParameters,
//! multiValueQueryStringParameters, requestContext, body, isBase64Encoded}`.
//! `headers` holds each header once (one sent on several lines joined with
//! `, `, cookies with `; `, which HTTP defines as the same header); a query
//! parameter given twice is its last value in `queryStringParameters`, and
//! all of them in `multiValueQueryStringParameters`, as API Gateway gives them. A body is text when it is UTF-8
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
use std::borrow::Cow;
use std::collections::HashMap;

use serde::ser::SerializeMap;
use serde::Serialize;
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
    let (body, is_base64_encoded) = body_text(head.headers, body);
    let query = Query::parse(head.query);
    let event = IntegrationEvent {
        path: head.path,
        http_method: head.method.as_str(),
        headers: Headers(head.headers),
        query_string_parameters: LastValues(&query),
        multi_value_query_string_parameters: AllValues(&query),
        request_context: RequestContext {
            request_id: head.request_id.as_str(),
            env_id: head.route.env.as_str(),
            app_id: "",
            uin: "",
            http_method: head.method.as_str(),
            path: head.full_path,
            route_path: head.route.prefix.as_str(),
        },
        body: &body,
        is_base64_encoded,
    };
    // Written straight from the request: no intermediate JSON tree per request.
    let mut json = Vec::with_capacity(512 + body.len());
    match serde_json::to_writer(&mut json, &event) {
        Ok(()) => Bytes::from(json),
        // Strings and maps of strings always serialize.
        Err(_) => Bytes::from_static(b"{}"),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationEvent<'a> {
    path: &'a str,
    http_method: &'a str,
    headers: Headers<'a>,
    query_string_parameters: LastValues<'a>,
    multi_value_query_string_parameters: AllValues<'a>,
    request_context: RequestContext<'a>,
    body: &'a str,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    request_id: &'a str,
    env_id: &'a str,
    app_id: &'a str,
    uin: &'a str,
    http_method: &'a str,
    path: &'a str,
    route_path: &'a str,
}

/// Each header once, by its lowercase name; a header sent on several lines
/// is one value joined with `, ` (cookies with `; `), which HTTP defines as
/// the same header (RFC 9110, 5.3; RFC 9113, 8.2.3 for cookies).
struct Headers<'a>(&'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut values = self.0.get_all(name).iter();
            let first = values.next().map(|v| String::from_utf8_lossy(v.as_bytes()));
            let joiner = if name == header::COOKIE { "; " } else { ", " };
            match (first, values.next()) {
                (Some(only), None) => map.serialize_entry(name.as_str(), &only)?,
                (first, second) => {
                    let joined: Vec<_> = first
                        .into_iter()
                        .chain(second.map(|v| String::from_utf8_lossy(v.as_bytes())))
                        .chain(values.map(|v| String::from_utf8_lossy(v.as_bytes())))
                        .collect();
                    map.serialize_entry(name.as_str(), &joined.join(joiner))?
                }
            }
        }
        map.end()
    }
}

/// The decoded query's parameters in their first order, each with its values.
struct Query<'q>(Vec<(Cow<'q, str>, Vec<Cow<'q, str>>)>);

impl<'q> Query<'q> {
    fn parse(query: Option<&'q str>) -> Self {
        let mut params: Vec<(Cow<'q, str>, Vec<Cow<'q, str>>)> = Vec::new();
        let mut index: HashMap<Cow<'q, str>, usize> = HashMap::new();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match index.get(&key) {
                Some(&at) => params[at].1.push(value),
                None => {
                    index.insert(key.clone(), params.len());
                    params.push((key, vec![value]));
                }
            }
        }
        Query(params)
    }
}

/// Each query parameter's last value.
struct LastValues<'a>(&'a Query<'a>);

impl Serialize for LastValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                 .0
                .iter()
                .filter_map(|(key, values)| values.last().map(|value| (key, value))),
        )
    }
}

/// Every value of each query parameter.
struct AllValues<'a>(&'a Query<'a>);

impl Serialize for AllValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0 .0.iter().map(|(key, values)| (key, values)))
    }
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
