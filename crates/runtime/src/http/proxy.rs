//! One request to an instance and its response, streamed back.
//!
//! The request goes out as it came (method, path, query, headers, a body that
//! streams) less the hop-by-hop headers and the `X-Scf-*` ones, which are the
//! platform's to set; the function gets `X-Request-Id` and
//! `X-Scf-Request-Id`. The response's frames are passed on as the instance
//! writes them, with nothing buffered. Dropping the response (the client
//! went away) drops the connection to the instance, which is how the
//! function's server learns of it (`req.on('close')`). A protocol upgrade
//! (WebSocket) becomes a tunnel between the two connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudlet_core::{ErrorCode, FunctionError, RequestId};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::pool::Lease;
use super::Shared;
use crate::{
    BodyEnd, BoxError, DeployedFunction, HttpRequest, RequestBody, ResponseBody, ResponseStream,
    StreamEnd,
};

pub(super) type Client = hyper_util::client::legacy::Client<HttpConnector, RequestBody>;

/// How long a connection to an instance stays open unused, for reuse.
const IDLE_CONNECTION: Duration = Duration::from_secs(30);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const SCF_REQUEST_ID: HeaderName = HeaderName::from_static("x-scf-request-id");
/// Headers only the platform may set for a function (CloudBase reserves them).
const RESERVED_PREFIX: &str = "x-scf-";

/// The pooled client requests to instances go through: connections are
/// kept per instance (each has its own port) and reused.
pub(super) fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_CONNECTION)
        .build(connector)
}

/// Sends the request to the leased instance, and its response back as a
/// stream; a failure before the response's head comes back with the lease.
pub(super) async fn forward(
    shared: &Arc<Shared>,
    function: &DeployedFunction,
    lease: Lease,
    request: HttpRequest,
    request_id: &RequestId,
    deadline: Instant,
) -> Result<ResponseStream, (FunctionError, Lease)> {
    let HttpRequest {
        method,
        path_and_query,
        mut headers,
        body,
        upgrade,
    } = request;
    let upgrade = upgrade.filter(|_| asks_for_upgrade(&headers));
    without_hop_by_hop(&mut headers, upgrade.is_some());
    without_reserved(&mut headers);
    if let Ok(id) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert(REQUEST_ID, id.clone());
        headers.insert(SCF_REQUEST_ID, id);
    }
    let client_fault = body.failure();
    let uri = format!("http://127.0.0.1:{}{path_and_query}", lease.instance.port);
    let mut outgoing = Request::new(body);
    *outgoing.method_mut() = method;
    *outgoing.headers_mut() = headers;
    match uri.parse() {
        Ok(uri) => *outgoing.uri_mut() = uri,
        Err(e) => {
            let error = FunctionError::new(ErrorCode::SysErr, format!("bad upstream URI: {e}"));
            return Err((error, lease));
        }
    }
    let answered = tokio::select! {
        answered = shared.client.request(outgoing) => answered,
        () = tokio::time::sleep_until(deadline.into()) => {
            return Err((timed_out(function), lease));
        }
        () = shared.shutdown.cancelled() => {
            return Err((shut_down(), lease));
        }
    };
    let mut response = match answered {
        Ok(response) => response,
        Err(error) => {
            let failure = match client_fault.get() {
                Some(fault) => FunctionError::new(fault.code, fault.message.clone()),
                None => lease.failure(&format!("the function's server did not answer: {error}")),
            };
            return Err((failure, lease));
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client) = upgrade {
            let upstream = hyper::upgrade::on(&mut response);
            let (mut parts, _) = response.into_parts();
            without_hop_by_hop(&mut parts.headers, true);
            tokio::spawn(tunnel(client, upstream, lease, deadline));
            return Ok(ResponseStream {
                status: parts.status,
                headers: parts.headers,
                body: Box::new(Upgraded),
            });
        }
    }
    let (mut parts, body) = response.into_parts();
    without_hop_by_hop(&mut parts.headers, false);
    Ok(ResponseStream {
        status: parts.status,
        headers: parts.headers,
        body: Box::new(Proxied::new(
            body,
            lease,
            deadline,
            shared.shutdown.clone(),
            function.config.timeout,
        )),
    })
}

fn timed_out(function: &DeployedFunction) -> FunctionError {
    FunctionError::new(
        ErrorCode::FunctionTimeLimitExceeded,
        format!(
            "the function's server did not answer within its timeout of {} s",
            function.config.timeout
        ),
    )
}

fn shut_down() -> FunctionError {
    FunctionError::new(
        ErrorCode::FunctionTerminatedByShutdown,
        "the server shut down while the function was answering",
    )
}

fn asks_for_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|token| token.eq_ignore_ascii_case("upgrade"))
}

/// The options the `Connection` headers list.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

/// Removes the headers that describe one connection rather than the
/// message (RFC 9110 §7.6.1), and those the `Connection` header names;
/// `Connection: upgrade` and `Upgrade` stay for an upgrade.
fn without_hop_by_hop(headers: &mut HeaderMap, upgrading: bool) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|token| HeaderName::try_from(token).ok())
        .filter(|name| !(upgrading && name == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if !upgrading {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// Removes the `X-Scf-*` headers a client sent: they are the platform's.
fn without_reserved(headers: &mut HeaderMap) {
    let reserved: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(RESERVED_PREFIX))
        .cloned()
        .collect();
    for name in reserved {
        headers.remove(name);
    }
}

/// Copies bytes both ways between the client's upgraded connection and the
/// instance's until either closes or the function's timeout passes; the
/// request's slot on the instance is held until then.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    lease: Lease,
    deadline: Instant,
) {
    let (client, upstream) = tokio::join!(client, upstream);
    if let (Ok(client), Ok(upstream)) = (client, upstream) {
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        let copied = tokio::io::copy_bidirectional(&mut client, &mut upstream);
        let _ = tokio::time::timeout_at(deadline.into(), copied).await;
    }
    drop(lease);
}

/// The body of a `101 Switching Protocols`: empty, since what follows goes
/// through the tunnel.
struct Upgraded;

impl http_body::Body for Upgraded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        true
    }
}

impl ResponseBody for Upgraded {
    fn end(&mut self, _: BodyEnd) -> StreamEnd {
        StreamEnd {
            result: Ok(()),
            logs: Vec::new(),
            logs_truncated: false,
        }
    }
}

/// Why a response was ended by the platform rather than by the function.
#[derive(Debug, Clone, Copy)]
enum Stopped {
    Timeout,
    Shutdown,
}

/// The instance's response body, passed on frame by frame, ended cleanly
/// at the function's timeout or at shutdown.
struct Proxied {
    /// `None` once the platform ended the response: dropping it closes the
    /// connection to the instance.
    upstream: Option<Incoming>,
    lease: Option<Lease>,
    deadline: Instant,
    /// Armed on the first wait for the instance, so that a response that
    /// arrives at once costs no timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    shutdown: CancellationToken,
    shutting_down: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    stopped: Option<Stopped>,
    timeout_s: u32,
}

impl Proxied {
    fn new(
        upstream: Incoming,
        lease: Lease,
        deadline: Instant,
        shutdown: CancellationToken,
        timeout_s: u32,
    ) -> Self {
        Self {
            upstream: Some(upstream),
            lease: Some(lease),
            deadline,
            timer: None,
            shutdown,
            shutting_down: None,
            stopped: None,
            timeout_s,
        }
    }

    /// Ends the response here, for `why`.
    fn stop(&mut self, why: Stopped) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        self.stopped = Some(why);
        self.upstream = None;
        Poll::Ready(None)
    }

    /// Whether the platform must end the response now; arms the wake-ups
    /// for when it must.
    fn must_stop(&mut self, cx: &mut Context<'_>) -> Option<Stopped> {
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
        if timer.as_mut().poll(cx).is_ready() {
            return Some(Stopped::Timeout);
        }
        let token = &self.shutdown;
        let shutting_down = self
            .shutting_down
            .get_or_insert_with(|| Box::pin(token.clone().cancelled_owned()));
        shutting_down
            .as_mut()
            .poll(cx)
            .is_ready()
            .then_some(Stopped::Shutdown)
    }
}

impl http_body::Body for Proxied {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(upstream) = this.upstream.as_mut() else {
            return Poll::Ready(None);
        };
        // A response that never waits must still end at the timeout.
        if Instant::now() >= this.deadline {
            return this.stop(Stopped::Timeout);
        }
        if this.shutdown.is_cancelled() {
            return this.stop(Stopped::Shutdown);
        }
        match Pin::new(upstream).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(BoxError::from))),
            Poll::Pending => match this.must_stop(cx) {
                Some(why) => this.stop(why),
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.upstream
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.upstream
            .as_ref()
            .map(http_body::Body::size_hint)
            .unwrap_or_default()
    }
}

impl ResponseBody for Proxied {
    fn end(&mut self, how: BodyEnd) -> StreamEnd {
        self.upstream = None;
        let failure = match (self.stopped, how) {
            (Some(Stopped::Timeout), _) => Some(FunctionError::new(
                ErrorCode::FunctionTimeLimitExceeded,
                format!(
                    "the response was ended at the function's timeout of {} s",
                    self.timeout_s
                ),
            )),
            (Some(Stopped::Shutdown), _) => Some(shut_down()),
            (None, BodyEnd::Failed) => self
                .lease
                .as_ref()
                .map(|lease| lease.failure("the function's server broke off its response")),
            (None, BodyEnd::Complete | BodyEnd::ClientGone) => None,
        };
        let (logs, logs_truncated) = self.lease.take().map(Lease::take_logs).unwrap_or_default();
        StreamEnd {
            result: failure.map_or(Ok(()), Err),
            logs,
            logs_truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_not_passed_on() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ]);
        without_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);
    }

    #[test]
    fn an_upgrade_keeps_its_connection_and_upgrade_headers() {
        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(asks_for_upgrade(&h));
        without_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "Upgrade");
    }

    #[test]
    fn a_clients_x_scf_headers_are_dropped() {
        let mut h = headers(&[("x-scf-request-id", "forged"), ("x-scfx", "kept")]);
        without_reserved(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-scfx"]);
    }
}
