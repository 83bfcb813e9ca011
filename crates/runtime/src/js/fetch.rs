//! `fetch` in the js engine: the global is a host function that loads
//! `fetch.js` on its first call; its requests (reads of the temporary
//! objects `cloud.CDN()` fields name, or requests to origins the server
//! allows) start as futures of the invocation's [`FunctionCalls::fetch`]
//! beside the SDKs' calls (`calls.rs`), and each answer is handed back to
//! `fetch.js`, which settles its promise.
//!
//! [`FunctionCalls::fetch`]: crate::FunctionCalls::fetch

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use rquickjs::function::Opt;
use rquickjs::{ArrayBuffer, Ctx, Function, JsLifetime, Value};

use super::calls::HostCalls;
use super::host::FETCH;
use crate::{CallRefused, FetchRequest, FetchResponse};

/// `fetch`'s side of the engine (`fetch.js`), made on its first use and
/// kept in the runtime's userdata, as the SDKs' transport is.
#[derive(JsLifetime)]
struct FetchHooks<'js> {
    settle: Function<'js>,
    reset: Function<'js>,
}

impl<'js> FetchHooks<'js> {
    fn get(ctx: &Ctx<'js>) -> Option<Rc<Self>> {
        ctx.userdata::<Rc<FetchHooks>>().map(|h| Rc::clone(&h))
    }
}

/// The `fetch` that `fetch.js` made, once a function first called it.
#[derive(JsLifetime)]
struct LoadedFetch<'js>(Function<'js>);

/// The global `fetch`: a host function that, on its first call, loads
/// `fetch.js` over [`fetch_objects`] and from then on hands each call to
/// the `fetch` it made.
pub(crate) fn fetch_function<'js>(
    ctx: &Ctx<'js>,
    calls: &Arc<HostCalls>,
) -> rquickjs::Result<Function<'js>> {
    let calls = Arc::clone(calls);
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, input: Value<'js>, init: Opt<Value<'js>>| {
            let loaded = ctx.userdata::<LoadedFetch>().map(|f| f.0.clone());
            let fetch = match loaded {
                Some(fetch) => fetch,
                None => {
                    let make: Function = FETCH.default_export(&ctx)?;
                    let fetch: Function = make.call((fetch_objects(&ctx, &calls)?,))?;
                    let _ = ctx.store_userdata(LoadedFetch(fetch.clone()));
                    fetch
                }
            };
            fetch.call::<_, Value>((input, init.0))
        },
    )
}

/// `installObjects(settle, reset)` for `fetch.js`: keeps its hooks and
/// returns `start(url, method, headers, body)` (headers as a flat list of
/// names and values, the body an ArrayBuffer), which starts the request and
/// returns the ID its answer will come back with.
fn fetch_objects<'js>(ctx: &Ctx<'js>, calls: &Arc<HostCalls>) -> rquickjs::Result<Function<'js>> {
    let calls = Arc::clone(calls);
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, settle: Function<'js>, reset: Function<'js>| {
            if ctx
                .store_userdata(Rc::new(FetchHooks { settle, reset }))
                .is_err()
            {
                return Err(rquickjs::Exception::throw_message(
                    &ctx,
                    "fetch is already installed",
                ));
            }
            let starter = Arc::clone(&calls);
            Function::new(
                ctx,
                move |url: String, method: String, headers: Vec<String>, body: ArrayBuffer<'js>| {
                    let headers = headers
                        .chunks_exact(2)
                        .map(|pair| (pair[0].clone(), pair[1].clone()))
                        .collect();
                    let body = body.as_bytes().map(Bytes::copy_from_slice);
                    starter.start_fetch(FetchRequest {
                        method,
                        url,
                        headers,
                        body: body.unwrap_or_default(),
                    })
                },
            )
        },
    )
}

/// Hands an answer to the `fetch` waiting for it: the status, its reason
/// phrase, the headers (a flat list) and the body, or (status 0) why there
/// is none.
pub(crate) fn settle(
    ctx: &Ctx<'_>,
    id: u32,
    fetched: Result<FetchResponse, CallRefused>,
) -> rquickjs::Result<()> {
    let Some(hooks) = FetchHooks::get(ctx) else {
        return Ok(());
    };
    match fetched {
        Ok(response) => {
            let reason = http::StatusCode::from_u16(response.status)
                .ok()
                .and_then(|status| status.canonical_reason())
                .unwrap_or("");
            let headers: Vec<String> = response
                .headers
                .into_iter()
                .flat_map(|(name, value)| [name, value])
                .collect();
            let body = ArrayBuffer::new_copy(ctx.clone(), &response.body[..])?;
            hooks
                .settle
                .call((id, response.status, reason, headers, body))
        }
        Err(refused) => {
            let undefined = Value::new_undefined(ctx.clone());
            let no_headers = Value::new_undefined(ctx.clone());
            hooks
                .settle
                .call((id, 0, refused.message, no_headers, undefined))
        }
    }
}

/// Forgets the reads of an earlier invocation, which will never be answered.
pub(crate) fn forget_earlier_fetches(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    match FetchHooks::get(ctx) {
        Some(hooks) => hooks.reset.call(()),
        None => Ok(()),
    }
}
