//! The js engine's `fetch` of other origins: sent only where the server's
//! operator allowed the URL's origin (`serve --js-fetch-allow`), since a
//! function in the js engine otherwise reaches no host but this one.
//!
//! Redirects are followed as `fetch` follows them, up to 20, and only while
//! they stay on allowed origins; the answer's body is bounded, so that a
//! large download cannot take the server's memory; the invocation's
//! deadline bounds the time (the engine drops the request when it ends).

use std::time::Duration;

use bytes::Bytes;
use cloudlet_core::ErrorCode;
use cloudlet_runtime::{CallRefused, FetchRequest, FetchResponse};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use url::Url;

/// How many redirects one `fetch` follows, as browsers and undici do.
const MAX_REDIRECTS: usize = 20;

/// Headers a function does not set: the client derives them from the URL
/// and the body.
const DERIVED: [HeaderName; 4] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
];

/// The origins the js engine's `fetch` may reach, and how much of an
/// answer it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    allowed: Allowed,
    /// Most bytes of one answer's body; past it, `fetch` fails.
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Any,
    /// ASCII-serialized origins (`https://api.example.com`,
    /// `http://10.0.0.5:8080`): the default port is left out, as `Url`
    /// serializes it, so that both spellings compare equal.
    Origins(Vec<String>),
}

impl FetchPolicy {
    /// `origins` as given to `--js-fetch-allow`: `scheme://host[:port]`
    /// each, or `*` for any origin.
    pub fn parse(origins: &[String], max_response_bytes: usize) -> Result<Self, String> {
        let allowed = if origins.iter().any(|origin| origin.trim() == "*") {
            Allowed::Any
        } else {
            Allowed::Origins(
                origins
                    .iter()
                    .map(|o| origin_of(o))
                    .collect::<Result<_, _>>()?,
            )
        };
        Ok(Self {
            allowed,
            max_response_bytes,
        })
    }

    fn allows(&self, url: &Url) -> bool {
        match &self.allowed {
            Allowed::Any => true,
            Allowed::Origins(origins) => origins.contains(&url.origin().ascii_serialization()),
        }
    }
}

fn origin_of(given: &str) -> Result<String, String> {
    let url = Url::parse(given.trim())
        .map_err(|error| format!("--js-fetch-allow {given}: not an origin ({error})"))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || !bare || url.host().is_none() {
        return Err(format!(
            "--js-fetch-allow {given}: an origin is http:// or https://, a host and \
             an optional port, without a path"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// Sends the js engine's requests to allowed origins.
pub(super) struct Outbound {
    policy: FetchPolicy,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Outbound {
    pub(super) fn new(policy: FetchPolicy) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Self { policy, client }
    }

    /// Whether `url` is on an origin the server allows.
    pub(super) fn allows(&self, url: &str) -> bool {
        Url::parse(url).is_ok_and(|url| self.policy.allows(&url))
    }

    /// Sends `request`, following redirects on allowed origins.
    pub(super) async fn send(&self, request: FetchRequest) -> Result<FetchResponse, CallRefused> {
        let mut url = Url::parse(&request.url).map_err(|_| refused(&request.url, "not a URL"))?;
        let mut method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| refused(url.as_str(), "not an HTTP method"))?;
        let headers = headers_of(&request.headers).map_err(|why| refused(url.as_str(), why))?;
        let mut body = request.body;
        for _ in 0..=MAX_REDIRECTS {
            if !self.policy.allows(&url) {
                return Err(not_allowed(url.as_str()));
            }
            let answer = self.exchange(&url, &method, &headers, body.clone()).await?;
            let Some(next) = redirect_of(&url, &answer) else {
                return self.read(&url, answer).await;
            };
            // 303, and 301/302 after a POST, continue as a GET without a
            // body, as the Fetch standard has it.
            let status = answer.status();
            if status == StatusCode::SEE_OTHER
                || (method == Method::POST && matches!(status.as_u16(), 301 | 302))
            {
                method = Method::GET;
                body = Bytes::new();
            }
            url = next;
        }
        Err(refused(url.as_str(), "too many redirects"))
    }

    async fn exchange(
        &self,
        url: &Url,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<http::Response<hyper::body::Incoming>, CallRefused> {
        let mut builder = Request::builder().method(method.clone()).uri(url.as_str());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|error| refused(url.as_str(), &error.to_string()))?;
        self.client
            .request(request)
            .await
            .map_err(|error| refused(url.as_str(), &describe(&error)))
    }

    async fn read(
        &self,
        url: &Url,
        answer: http::Response<hyper::body::Incoming>,
    ) -> Result<FetchResponse, CallRefused> {
        let (parts, body) = answer.into_parts();
        let limit = self.policy.max_response_bytes;
        let body = Limited::new(body, limit).collect().await.map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                refused(url.as_str(), &format!("the answer is over {limit} bytes"))
            } else {
                refused(url.as_str(), &error.to_string())
            }
        })?;
        let headers = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        Ok(FetchResponse {
            status: parts.status.as_u16(),
            headers,
            body: body.to_bytes(),
        })
    }
}

/// The request's headers, without those the client derives.
fn headers_of(given: &[(String, String)]) -> Result<Vec<(HeaderName, HeaderValue)>, &'static str> {
    let mut headers = Vec::with_capacity(given.len());
    for (name, value) in given {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| "a header name is invalid")?;
        let value = HeaderValue::from_str(value).map_err(|_| "a header value is invalid")?;
        if !DERIVED.contains(&name) {
            headers.push((name, value));
        }
    }
    Ok(headers)
}

/// Where a redirect answer sends the request next, if it is one.
fn redirect_of<B>(url: &Url, answer: &http::Response<B>) -> Option<Url> {
    if !matches!(answer.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = answer.headers().get(header::LOCATION)?.to_str().ok()?;
    url.join(location).ok()
}

/// A client error with its causes, which say what actually failed
/// (refused, unknown host, bad certificate).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn refused(url: &str, why: &str) -> CallRefused {
    CallRefused {
        code: ErrorCode::SysErr,
        message: format!("{url}: {why}"),
    }
}

/// Why a URL that names no temporary object is not fetched.
pub(super) fn not_allowed(url: &str) -> CallRefused {
    CallRefused {
        code: ErrorCode::PermissionDenied,
        message: format!(
            "the js engine's fetch reaches this server's temporary objects (cloud.CDN() \
             fields) and the origins the server allows (cloudlet serve --js-fetch-allow \
             ORIGIN), not {url}; or run the function on the node engine \
             (\"runtime\": \"Nodejs18.15\")"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::FetchPolicy;
    use url::Url;

    fn allows(policy: &FetchPolicy, url: &str) -> bool {
        policy.allows(&Url::parse(url).unwrap())
    }

    #[test]
    fn an_allowed_origin_admits_its_urls_and_no_others() {
        let policy = FetchPolicy::parse(&["https://API.example.com:443".into()], 1).unwrap();
        assert!(allows(&policy, "https://api.example.com/v1/items?q=1"));
        assert!(!allows(&policy, "http://api.example.com/v1/items"));
        assert!(!allows(&policy, "https://api.example.com:8443/"));
        assert!(!allows(&policy, "https://example.com/"));
    }

    #[test]
    fn a_star_admits_every_origin() {
        let policy = FetchPolicy::parse(&["*".into()], 1).unwrap();
        assert!(allows(&policy, "http://10.0.0.5:8080/anything"));
    }

    #[test]
    fn an_origin_with_a_path_or_another_scheme_is_refused() {
        for given in [
            "https://example.com/api",
            "ftp://example.com",
            "example.com",
        ] {
            assert!(FetchPolicy::parse(&[given.into()], 1).is_err(), "{given}");
        }
    }
}
