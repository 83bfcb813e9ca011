//! The Rust client of Cloudlet's native HTTP API (`docs/api.md`), and the packer that turns a function folder into a deploy archive.

mod pack;

use std::time::Duration;

use cloudlet_core::{
    AsyncConfig, CorsSettings, EnvId, ErrorBody, FunctionInfo, FunctionName, HostPattern,
    InvocationSummary, PathPrefix, RecordWithChildren, RequestId, Route,
};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use pack::{pack_dir, read_dir_files, read_dir_package, FolderFiles, PackError};

const REQUEST_ID_HEADER: &str = "x-request-id";
const VERSION_HEADER: &str = "x-function-version";
const TRIGGER_HEADER: &str = "x-cloudlet-trigger";
const QUALIFIER_HEADER: &str = "x-qualifier";
const INVOCATION_TYPE_HEADER: &str = "x-invocation-type";
/// Marks Cloudlet's own errors, apart from an HTTP function's answers.
const ERROR_CODE_HEADER: &str = "x-cloudlet-error";

/// Why a call to the server did not give the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its error body, `{"code","message","requestId"}`.
    #[error("{}: {}", body.code, body.message)]
    Api { status: u16, body: ErrorBody },
    /// Nothing answered at the server's address.
    #[error(
        "cannot reach the cloudlet server at {url}: {cause} \
         (is it running? start one with `cloudlet serve`, or point --server / CLOUDLET_SERVER at it)"
    )]
    Connect { url: String, cause: String },
    /// The connection broke or the request could not be sent.
    #[error("the request to {url} failed: {cause}")]
    Transport { url: String, cause: String },
    /// The server answered, but not with the JSON this client expects.
    #[error("the server at {url} answered {status} with an unexpected body: {detail}")]
    InvalidResponse {
        url: String,
        status: u16,
        detail: String,
    },
    /// An argument was refused before anything was sent.
    #[error("{0}")]
    InvalidArgument(String),
    /// The base URL given to [`Client::new`] is not usable.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl ClientError {
    /// The server's error body, when the server answered with one.
    pub fn api_body(&self) -> Option<&ErrorBody> {
        match self {
            ClientError::Api { body, .. } => Some(body),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The answer to a successful invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The ID under which the record can be fetched ([`Client::record`]).
    pub request_id: String,
    /// The version that ran (`X-Function-Version`).
    pub version: Option<String>,
    /// The function's return value.
    pub result: serde_json::Value,
}

/// How to invoke, beyond the function and its event.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvokeOptions<'a> {
    /// What started the invocation, as its record names it (`cli`).
    pub trigger: Option<&'a str>,
    /// The invocation's ID, instead of one the server picks.
    pub request_id: Option<&'a RequestId>,
    /// The version to run (`X-Qualifier`): a version ID, its first 12
    /// characters, or `$LATEST`; the current version when absent.
    pub qualifier: Option<&'a str>,
}

/// The headers of an invoke with `options`.
fn invoke_headers(options: &InvokeOptions<'_>) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let value = |what: &str, text: &str| {
        HeaderValue::from_str(text).map_err(|_| {
            ClientError::InvalidArgument(format!("the {what} {text:?} is not a valid header value"))
        })
    };
    if let Some(qualifier) = options.qualifier {
        headers.insert(QUALIFIER_HEADER, value("version", qualifier)?);
    }
    if let Some(trigger) = options.trigger {
        headers.insert(TRIGGER_HEADER, value("trigger", trigger)?);
    }
    if let Some(id) = options.request_id {
        headers.insert(REQUEST_ID_HEADER, value("request ID", id.as_str())?);
    }
    Ok(headers)
}

/// A request for an HTTP function's own server, on its web path.
#[derive(Debug, Clone, Default)]
pub struct WebRequest<'a> {
    pub method: &'a str,
    /// The path and query the function's server sees (`/sse?since=1`).
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Option<Vec<u8>>,
    pub request_id: Option<&'a RequestId>,
}

/// An HTTP function's response, whose body is read as it streams.
pub struct WebResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub request_id: Option<String>,
    body: reqwest::Response,
}

impl WebResponse {
    /// The body's next chunk as the server sends it; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>> {
        self.body.chunk().await.map_err(|e| ClientError::Transport {
            url: self.body.url().to_string(),
            cause: root_cause(&e),
        })
    }
}

/// A temporary object as its upload answered it: `cloud.CDN()`'s store,
/// where a function fetches it by URL until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryObject {
    pub url: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// One env as `GET /v1/envs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvSummary {
    pub env: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub function_count: u64,
}

/// A client of one Cloudlet server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// A client of the server at `base_url` (such as `http://127.0.0.1:8080`).
    /// With a key, every request carries `Authorization: Bearer <key>`.
    pub fn new(base_url: &str, key: Option<String>) -> Result<Self> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = if let Some(rest) = base.strip_prefix("http://") {
            rest
        } else if base.starts_with("https://") {
            return Err(invalid(
                "this build speaks plain http only; put a TLS-terminating proxy in front and use its http address, or use http://",
            ));
        } else {
            return Err(invalid("it must start with http://"));
        };
        let host = host_of(rest);
        if host.is_empty() {
            return Err(invalid("it names no host"));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cloudlet/", env!("CARGO_PKG_VERSION")));
        // An HTTP_PROXY set for the outside world must not capture calls to a local server.
        if is_loopback_host(host) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| invalid(&error_chain(&e)))?;
        Ok(Self { http, base, key })
    }

    /// The server's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Deploys a function from a zip or tar.gz archive (see [`pack_dir`]).
    pub async fn deploy(
        &self,
        env: &EnvId,
        name: &FunctionName,
        archive: Vec<u8>,
    ) -> Result<FunctionInfo> {
        let path = format!("/v1/envs/{env}/functions/{name}");
        let (_, body) = self
            .send(Method::PUT, &path, Some(archive), HeaderMap::new())
            .await?;
        self.json(&path, &body)
    }

    /// Invokes a function synchronously with `event`, the JSON text of the event
    /// (empty means `{}`).
    pub async fn invoke(
        &self,
        env: &EnvId,
        name: &FunctionName,
        event: impl AsRef<[u8]>,
        options: InvokeOptions<'_>,
    ) -> Result<Invocation> {
        let path = format!("/v1/envs/{env}/functions/{name}");
        let headers = invoke_headers(&options)?;
        let (response_headers, body) = self
            .send(Method::POST, &path, Some(event.as_ref().to_vec()), headers)
            .await?;
        let header = |name: &str| {
            response_headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let result = self.json(&path, &body)?;
        let request_id = header(REQUEST_ID_HEADER)
            .or_else(|| options.request_id.map(|id| id.to_string()))
            .unwrap_or_default();
        Ok(Invocation {
            request_id,
            version: header(VERSION_HEADER),
            result,
        })
    }

    /// Queues an asynchronous invocation of a function with `event` and
    /// returns its request ID once the server has it on disk; its record
    /// (`Client::record`) follows it from there.
    pub async fn invoke_async(
        &self,
        env: &EnvId,
        name: &FunctionName,
        event: impl AsRef<[u8]>,
        options: InvokeOptions<'_>,
    ) -> Result<RequestId> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Accepted {
            request_id: RequestId,
        }
        let path = format!("/v1/envs/{env}/functions/{name}");
        let mut headers = invoke_headers(&options)?;
        headers.insert(INVOCATION_TYPE_HEADER, HeaderValue::from_static("async"));
        let (_, body) = self
            .send(Method::POST, &path, Some(event.as_ref().to_vec()), headers)
            .await?;
        let accepted: Accepted = self.json(&path, &body)?;
        Ok(accepted.request_id)
    }

    /// Sends a request to an HTTP function at `request.path`
    /// (`/v1/envs/{env}/functions/{name}/web{path}`) and returns its response
    /// once its head arrives, whatever its status: the function's own errors
    /// are its answer. Cloudlet's own (an unknown function, a bad key, the
    /// function's timeout before it answered) are [`ClientError::Api`].
    pub async fn web(
        &self,
        env: &EnvId,
        name: &FunctionName,
        request: WebRequest<'_>,
    ) -> Result<WebResponse> {
        let invalid = |what: &str| ClientError::InvalidArgument(what.to_owned());
        let method = Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| invalid(&format!("{:?} is not an HTTP method", request.method)))?;
        let path = if request.path.starts_with('/') {
            request.path.to_owned()
        } else {
            format!("/{}", request.path)
        };
        let url = format!("{}/v1/envs/{env}/functions/{name}/web{path}", self.base);
        let mut outgoing = self.http.request(method, &url);
        for (key, value) in request.headers {
            outgoing = outgoing.header(key.as_str(), value.as_str());
        }
        if let Some(id) = request.request_id {
            outgoing = outgoing.header(REQUEST_ID_HEADER, id.as_str());
        }
        if let Some(key) = &self.key {
            outgoing = outgoing.bearer_auth(key);
        }
        if let Some(body) = request.body {
            outgoing = outgoing.body(body);
        }
        let response = outgoing.send().await.map_err(|e| self.transport(&e))?;
        if response.headers().contains_key(ERROR_CODE_HEADER) {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| self.transport(&e))?;
            return Err(api_error(url, status, &headers, &body));
        }
        Ok(WebResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            request_id: response
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: response,
        })
    }

    /// Uploads `body` to the env's temporary storage (what `cloud.CDN()`
    /// fields go through): a function given its URL fetches it there.
    pub async fn upload_temporary(
        &self,
        env: &EnvId,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<TemporaryObject> {
        let path = format!("/v1/envs/{env}/tmp");
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(content_type).map_err(|_| {
            ClientError::InvalidArgument(format!(
                "the content type {content_type:?} is not a valid header value"
            ))
        })?;
        headers.insert(CONTENT_TYPE, value);
        let (_, answer) = self.send(Method::POST, &path, Some(body), headers).await?;
        self.json(&path, &answer)
    }

    /// An env's dead letters, oldest accepted first, as the API shows them
    /// (`docs/api.md`, "Asynchronous invocation").
    pub async fn dead_letters(&self, env: &EnvId) -> Result<Vec<serde_json::Value>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct List {
            dead_letters: Vec<serde_json::Value>,
        }
        let list: List = self.get(&format!("/v1/envs/{env}/dead-letters")).await?;
        Ok(list.dead_letters)
    }

    /// Where an env's asynchronous invocations stand, per function
    /// (`docs/api.md`, "Asynchronous invocation").
    pub async fn queue_stats(&self, env: &EnvId) -> Result<serde_json::Value> {
        self.get(&format!("/v1/envs/{env}/queue")).await
    }

    /// Publishes `message` (JSON) to `topic` in `env`: every subscriber's
    /// delivery is queued; answers `{"messageId", "deliveries"}`.
    pub async fn publish(
        &self,
        env: &EnvId,
        topic: &str,
        message: impl AsRef<[u8]>,
    ) -> Result<serde_json::Value> {
        let path = format!("/v1/envs/{env}/topics/{topic}/messages");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let (_, body) = self
            .send(
                Method::POST,
                &path,
                Some(message.as_ref().to_vec()),
                headers,
            )
            .await?;
        self.json(&path, &body)
    }

    /// An env's triggers, each with its next firing (`docs/api.md`,
    /// "Timer triggers").
    pub async fn triggers(&self, env: &EnvId) -> Result<serde_json::Value> {
        self.get(&format!("/v1/envs/{env}/triggers")).await
    }

    /// Queues a dead letter again.
    pub async fn redrive(&self, env: &EnvId, request_id: &RequestId) -> Result<()> {
        let path = format!("/v1/envs/{env}/dead-letters/{request_id}/redrive");
        self.send(Method::POST, &path, None, HeaderMap::new())
            .await?;
        Ok(())
    }

    /// Removes an env's dead letters; returns how many there were.
    pub async fn purge_dead_letters(&self, env: &EnvId) -> Result<u64> {
        #[derive(Deserialize)]
        struct Purged {
            purged: u64,
        }
        let path = format!("/v1/envs/{env}/dead-letters");
        let (_, body) = self
            .send(Method::DELETE, &path, None, HeaderMap::new())
            .await?;
        let purged: Purged = self.json(&path, &body)?;
        Ok(purged.purged)
    }

    /// A function's asynchronous settings: `{"effective", "own", "defaults"}`
    /// (`docs/api.md`, "Asynchronous settings").
    pub async fn async_config(
        &self,
        env: &EnvId,
        name: &FunctionName,
    ) -> Result<serde_json::Value> {
        self.get(&format!("/v1/envs/{env}/functions/{name}/async-config"))
            .await
    }

    /// Sets a function's own asynchronous settings (the admin key's to
    /// change), or with `None` clears them; answers as
    /// [`Client::async_config`].
    pub async fn set_async_config(
        &self,
        env: &EnvId,
        name: &FunctionName,
        config: Option<&AsyncConfig>,
    ) -> Result<serde_json::Value> {
        let path = format!("/v1/envs/{env}/functions/{name}/async-config");
        let (_, body) = match config {
            Some(config) => {
                let body = serde_json::to_vec(config)
                    .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                self.send(Method::PUT, &path, Some(body), headers).await?
            }
            None => {
                self.send(Method::DELETE, &path, None, HeaderMap::new())
                    .await?
            }
        };
        self.json(&path, &body)
    }

    /// One page of an env's invocations, newest first, and where the next
    /// page starts (`None` after the last). `filters` are the listing's
    /// query parameters: `function`, `status`, `trigger`, `limit`, `before`.
    pub async fn invocations(
        &self,
        env: &EnvId,
        filters: &[(&str, &str)],
    ) -> Result<(Vec<InvocationSummary>, Option<String>)> {
        #[derive(Deserialize)]
        struct Page {
            invocations: Vec<InvocationSummary>,
            next: Option<String>,
        }
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(filters)
            .finish();
        let page: Page = self
            .get(&format!("/v1/envs/{env}/invocations?{query}"))
            .await?;
        Ok((page.invocations, page.next))
    }

    /// Cancels an asynchronous invocation that waits to run.
    pub async fn cancel(&self, env: &EnvId, request_id: &RequestId) -> Result<()> {
        let path = format!("/v1/envs/{env}/invocations/{request_id}");
        self.send(Method::DELETE, &path, None, HeaderMap::new())
            .await?;
        Ok(())
    }

    /// The record of one invocation, with its logs and the calls its code made.
    pub async fn record(&self, env: &EnvId, request_id: &RequestId) -> Result<RecordWithChildren> {
        self.get(&format!("/v1/envs/{env}/invocations/{request_id}"))
            .await
    }

    /// The functions of an env, sorted by name.
    pub async fn functions(&self, env: &EnvId) -> Result<Vec<FunctionInfo>> {
        #[derive(Deserialize)]
        struct List {
            functions: Vec<FunctionInfo>,
        }
        let list: List = self.get(&format!("/v1/envs/{env}/functions")).await?;
        Ok(list.functions)
    }

    /// One function and the version it serves.
    pub async fn function(&self, env: &EnvId, name: &FunctionName) -> Result<FunctionInfo> {
        self.get(&format!("/v1/envs/{env}/functions/{name}")).await
    }

    /// Removes a function and all its versions.
    pub async fn remove(&self, env: &EnvId, name: &FunctionName) -> Result<()> {
        let path = format!("/v1/envs/{env}/functions/{name}");
        let (_, body) = self
            .send(Method::DELETE, &path, None, HeaderMap::new())
            .await?;
        let _: serde_json::Value = self.json(&path, &body)?;
        Ok(())
    }

    /// Every env (needs the admin key on a non-loopback server).
    pub async fn envs(&self) -> Result<Vec<EnvSummary>> {
        #[derive(Deserialize)]
        struct List {
            envs: Vec<EnvSummary>,
        }
        let list: List = self.get("/v1/envs").await?;
        Ok(list.envs)
    }

    /// Issues a new invoke key for `env` (creating the env if needed), replacing the old one.
    pub async fn issue_key(&self, env: &EnvId) -> Result<String> {
        self.issue_key_of(env, "env").await
    }

    /// Issues a new publishable key for an env (`pk_…`): invoke and upload
    /// only, for web pages; the env's own key is unchanged.
    pub async fn issue_publishable_key(&self, env: &EnvId) -> Result<String> {
        self.issue_key_of(env, "publishable").await
    }

    async fn issue_key_of(&self, env: &EnvId, kind: &str) -> Result<String> {
        #[derive(Deserialize)]
        struct Issued {
            key: String,
        }
        let path = format!("/v1/envs/{env}/keys?kind={kind}");
        let (_, body) = self
            .send(Method::POST, &path, None, HeaderMap::new())
            .await?;
        let issued: Issued = self.json(&path, &body)?;
        Ok(issued.key)
    }

    /// An env's CORS settings, or `None` when it has none.
    pub async fn cors(&self, env: &EnvId) -> Result<Option<CorsSettings>> {
        match self.get(&format!("/v1/envs/{env}/cors")).await {
            Ok(settings) => Ok(Some(settings)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Sets an env's CORS settings (the admin key's to change).
    pub async fn set_cors(&self, env: &EnvId, settings: &CorsSettings) -> Result<CorsSettings> {
        let path = format!("/v1/envs/{env}/cors");
        let body = serde_json::to_vec(settings)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let (_, body) = self.send(Method::PUT, &path, Some(body), headers).await?;
        self.json(&path, &body)
    }

    /// Removes an env's CORS settings: no browser page may call it.
    pub async fn remove_cors(&self, env: &EnvId) -> Result<()> {
        let path = format!("/v1/envs/{env}/cors");
        let (_, body) = self
            .send(Method::DELETE, &path, None, HeaderMap::new())
            .await?;
        let _: serde_json::Value = self.json(&path, &body)?;
        Ok(())
    }

    /// The access service's routes (`GET /v1/routes`), by host, then path.
    pub async fn routes(&self) -> Result<Vec<Route>> {
        #[derive(Deserialize)]
        struct Routes {
            routes: Vec<Route>,
        }
        let listed: Routes = self.get("/v1/routes").await?;
        Ok(listed.routes)
    }

    /// Adds a route (the admin key's to change); the server refuses one whose
    /// host and path another route has.
    pub async fn add_route(&self, route: &Route) -> Result<Route> {
        let body =
            serde_json::to_vec(route).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let (_, body) = self
            .send(Method::POST, "/v1/routes", Some(body), headers)
            .await?;
        self.json("/v1/routes", &body)
    }

    /// Removes the route of a host and path.
    pub async fn remove_route(&self, host: &HostPattern, path: &PathPrefix) -> Result<()> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("host", &host.to_string())
            .append_pair("path", path.as_str())
            .finish();
        self.send(
            Method::DELETE,
            &format!("/v1/routes?{query}"),
            None,
            HeaderMap::new(),
        )
        .await?;
        Ok(())
    }

    /// What the server holds (`GET /v1/status`): records, instances, invocations.
    pub async fn status(&self) -> Result<serde_json::Value> {
        self.get("/v1/status").await
    }

    /// Succeeds when the server answers its health check.
    pub async fn health(&self) -> Result<()> {
        let _: serde_json::Value = self.get("/healthz").await?;
        Ok(())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (_, body) = self.send(Method::GET, path, None, HeaderMap::new()).await?;
        self.json(path, &body)
    }

    /// Sends one request; a non-2xx answer becomes [`ClientError::Api`] (or
    /// [`ClientError::InvalidResponse`] when it carries no error body).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: HeaderMap,
    ) -> Result<(HeaderMap, bytes::Bytes)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).headers(headers);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| self.transport(&e))?;
        if status.is_success() {
            return Ok((headers, body));
        }
        Err(api_error(url, status, &headers, &body))
    }

    fn json<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T> {
        serde_json::from_slice(body).map_err(|e| ClientError::InvalidResponse {
            url: format!("{}{path}", self.base),
            status: 200,
            detail: format!("{e}; the body starts with {:?}", preview(body)),
        })
    }

    fn transport(&self, error: &reqwest::Error) -> ClientError {
        let url = error
            .url()
            .map(|u| u.to_string())
            .unwrap_or_else(|| self.base.clone());
        let cause = root_cause(error);
        if error.is_connect() {
            ClientError::Connect {
                url: self.base.clone(),
                cause,
            }
        } else {
            ClientError::Transport { url, cause }
        }
    }
}

/// An error answer as [`ClientError::Api`], or [`ClientError::InvalidResponse`]
/// when it carries no error body.
fn api_error(url: String, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(mut error) => {
            if error.request_id.is_none() {
                error.request_id = headers
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
            }
            ClientError::Api {
                status: status.as_u16(),
                body: error,
            }
        }
        Err(_) => ClientError::InvalidResponse {
            url,
            status: status.as_u16(),
            detail: describe_body(status, body),
        },
    }
}

/// The host part of `host[:port][/path]`, brackets kept off IPv6 literals.
fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The innermost error's message: reqwest's own Display ("error sending request")
/// hides the useful part ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error;
    while let Some(source) = current.source() {
        text.push_str(": ");
        text.push_str(&source.to_string());
        current = source;
    }
    text
}

fn describe_body(status: StatusCode, body: &[u8]) -> String {
    if body.is_empty() {
        format!("an empty body ({status})")
    } else {
        format!("{:?}", preview(body))
    }
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut preview: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        preview.push('…');
    }
    preview
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(Client::new("http://127.0.0.1:8080/", None).is_ok());
        assert_eq!(
            Client::new("http://localhost:8080/", None)
                .unwrap()
                .base_url(),
            "http://localhost:8080"
        );
        assert!(matches!(
            Client::new("127.0.0.1:8080", None),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Client::new("https://example.com", None),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert_eq!(host_of("[::1]:8080/x"), "::1");
        assert_eq!(host_of("user@example.com:80"), "example.com");
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("127.0.0.2"));
        assert!(!is_loopback_host("example.com"));
    }

    #[tokio::test]
    async fn unreachable_server_names_the_url_and_suggests_serve() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = Client::new(&url, None).unwrap();
        let err = client.health().await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
        assert!(text.contains(&url), "{text}");
        assert!(text.contains("cloudlet serve"), "{text}");
    }
}
