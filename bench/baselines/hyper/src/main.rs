//! Bare hyper baseline: answers `POST <any path>` with body `{"x":..,"y":..}` by the sum as JSON.
//!
//! Usage: `bench-hyper-baseline PORT [st | mt [WORKERS]]`
//!
//! - `st`: tokio current_thread runtime (one OS thread).
//! - `mt`: tokio multi_thread runtime with WORKERS worker threads (default: the number of CPUs),
//!   the same configuration as `cloudlet serve`.
//!
//! Prints `listening on http://ADDR` once the socket is bound.

use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Number, Value};

use bench_hyper_baseline::Error;

#[derive(Deserialize)]
struct Input {
    x: Number,
    y: Number,
}

/// `x + y` with JavaScript's output for numbers: integral results print without a fraction.
fn add(input: &Input) -> Value {
    if let (Some(x), Some(y)) = (input.x.as_i64(), input.y.as_i64()) {
        if let Some(sum) = x.checked_add(y) {
            return Value::from(sum);
        }
    }
    let sum = input.x.as_f64().unwrap_or(f64::NAN) + input.y.as_f64().unwrap_or(f64::NAN);
    if sum.is_finite() && sum.fract() == 0.0 && sum.abs() < 9_007_199_254_740_992.0 {
        // Exact: |sum| < 2^53.
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(sum as i64);
    }
    Number::from_f64(sum).map_or(Value::Null, Value::Number)
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"{\"error\":\"POST only\"}"),
        ));
    }
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                Bytes::from_static(b"{\"error\":\"body\"}"),
            ))
        }
    };
    let out = match serde_json::from_slice::<Input>(&body) {
        Ok(input) => add(&input).to_string(),
        Err(_) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                Bytes::from_static(b"{\"error\":\"expected {\\\"x\\\":number,\\\"y\\\":number}\"}"),
            ))
        }
    };
    Ok(reply(StatusCode::OK, Bytes::from(out)))
}

async fn serve(port: u16) -> Result<(), Error> {
    let listener = bench_hyper_baseline::listen(port).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

fn main() -> Result<(), Error> {
    let usage = "usage: bench-hyper-baseline PORT [st | mt [WORKERS]]";
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let flavour = args.next().unwrap_or_else(|| "mt".to_owned());
    let runtime = bench_hyper_baseline::runtime(&flavour, args, usage)?;
    runtime.block_on(serve(port))
}
