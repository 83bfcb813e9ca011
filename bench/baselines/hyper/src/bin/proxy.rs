//! Bare hyper reverse proxy: every request to `127.0.0.1:PORT` goes to `127.0.0.1:UPSTREAM`
//! through hyper-util's legacy pooled client, and the response streams back frame by frame.
//! It is what Cloudlet's HTTP engine does for an HTTP function with nothing around it (no
//! routing, request ID, instance lease or record), so the difference between the two is what
//! the platform costs.
//!
//! Usage: `bench-hyper-proxy PORT UPSTREAM_PORT [st | mt [WORKERS]]`
//!
//! - `st`: tokio current_thread runtime (one OS thread).
//! - `mt`: tokio multi_thread runtime with WORKERS worker threads (default: the number of CPUs),
//!   the same configuration as `cloudlet serve`.
//!
//! Prints `listening on http://ADDR` once the socket is bound.

use std::time::Duration;

use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use bench_hyper_baseline::Error;
type Upstream = Client<HttpConnector, Incoming>;

/// The same idle timeout as Cloudlet's client to instances, so that both keep their
/// connections to the app for the whole run.
const IDLE_CONNECTION: Duration = Duration::from_secs(30);

/// Headers that belong to one connection and are not passed on (RFC 9110, 7.6.1), as Cloudlet
/// drops them too.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn without_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
}

fn bad_gateway(error: &dyn std::fmt::Display) -> Response<Body> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from(format!(
        "upstream: {error}\n"
    )))));
    *res.status_mut() = StatusCode::BAD_GATEWAY;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    res
}

/// The app's response, streamed as it comes, or the proxy's own error.
type Body = Either<Incoming, Full<Bytes>>;

async fn forward(
    client: Upstream,
    upstream: u16,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = match format!("http://127.0.0.1:{upstream}{path}").parse() {
        Ok(uri) => uri,
        Err(e) => return Ok(bad_gateway(&e)),
    };
    *req.uri_mut() = uri;
    without_hop_by_hop(req.headers_mut());
    match client.request(req).await {
        Ok(res) => {
            let (mut parts, body) = res.into_parts();
            without_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(e) => Ok(bad_gateway(&e)),
    }
}

async fn serve(port: u16, upstream: u16) -> Result<(), Error> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_CONNECTION)
        .build(connector);
    let listener = bench_hyper_baseline::listen(port).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(client.clone(), upstream, req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> Result<(), Error> {
    let usage = "usage: bench-hyper-proxy PORT UPSTREAM_PORT [st | mt [WORKERS]]";
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let upstream: u16 = args.next().ok_or(usage)?.parse()?;
    let flavour = args.next().unwrap_or_else(|| "mt".to_owned());
    let runtime = bench_hyper_baseline::runtime(&flavour, args, usage)?;
    runtime.block_on(serve(port, upstream))
}
