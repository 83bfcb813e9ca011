//! The request body read timeout: a body that pauses longer than the timeout
//! between two of its parts fails with [`BodyStalled`], which the routes
//! answer with 408 `REQUEST_TIMEOUT`.
//!
//! Written here rather than taken from tower-http's `TimeoutBody`, which arms
//! a timer before every read, also for a part that is already there: almost
//! every request body arrives with its headers, and a timer per request was a
//! measurable share of an invocation's cost. This one arms the timer only
//! when the body has nothing to give.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body stopped arriving for longer than the body read timeout.
#[derive(Debug)]
pub(crate) struct BodyStalled;

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body stopped arriving")
    }
}

impl std::error::Error for BodyStalled {}

impl BodyStalled {
    /// Whether `error`, or an error it came from, is a stalled body.
    pub(crate) fn caused(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if error.is::<BodyStalled>() {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

pin_project! {
    /// A request body held to a longest pause between its parts.
    pub(crate) struct IdleTimeoutBody<B> {
        #[pin]
        inner: B,
        #[pin]
        pause: Option<Sleep>,
        timeout: Duration,
    }
}

impl<B> IdleTimeoutBody<B> {
    pub(crate) fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            pause: None,
            timeout,
        }
    }
}

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            this.pause.set(None);
            return Poll::Ready(frame.map(|part| part.map_err(Into::into)));
        }
        if this.pause.is_none() {
            this.pause.set(Some(tokio::time::sleep(*this.timeout)));
        }
        match this.pause.as_pin_mut().map(|pause| pause.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Some(Err(Box::new(BodyStalled)))),
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
