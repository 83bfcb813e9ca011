//! A streamed response's record, written when its body ends: with the
//! function's status, the bytes sent and the whole duration, whether the
//! body ended, failed, or was dropped because the client went away.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cloudlet_core::HttpResponseSummary;
use cloudlet_runtime::{BodyEnd, BoxError, ResponseBody, StreamEnd};

/// What the service does once the stream is over: write the record.
pub(super) type OnEnd = Box<dyn FnOnce(StreamEnd, HttpResponseSummary) + Send>;

pub(super) struct Recorded {
    inner: Box<dyn ResponseBody>,
    status: u16,
    bytes: u64,
    on_end: Option<OnEnd>,
}

impl Recorded {
    pub(super) fn new(inner: Box<dyn ResponseBody>, status: u16, on_end: OnEnd) -> Self {
        Self {
            inner,
            status,
            bytes: 0,
            on_end: Some(on_end),
        }
    }

    fn finish(&mut self, how: BodyEnd) -> StreamEnd {
        let end = self.inner.end(how);
        let Some(on_end) = self.on_end.take() else {
            return end;
        };
        let summary = HttpResponseSummary {
            status: self.status,
            bytes: self.bytes,
        };
        // The record takes the logs; whoever asks next gets the result only.
        let passed_on = StreamEnd {
            result: end.result.clone(),
            logs: Vec::new(),
            logs_truncated: end.logs_truncated,
        };
        on_end(end, summary);
        passed_on
    }
}

impl http_body::Body for Recorded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                self.bytes += frame.data_ref().map_or(0, |data| data.len() as u64);
            }
            Poll::Ready(Some(Err(_))) => drop(self.finish(BodyEnd::Failed)),
            Poll::Ready(None) => drop(self.finish(BodyEnd::Complete)),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl ResponseBody for Recorded {
    fn end(&mut self, how: BodyEnd) -> StreamEnd {
        self.finish(how)
    }
}

/// A body dropped before it ended was dropped by a client that went away.
impl Drop for Recorded {
    fn drop(&mut self) {
        drop(self.finish(BodyEnd::ClientGone));
    }
}
