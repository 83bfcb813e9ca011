//! Invocation records on their way to the disk: the lossy batching queue
//! (`crate::batching::Lossy`) with what a record weighs, and the lookups
//! that find records before they are written.

use cloudlet_core::{EnvId, InvocationRecord, InvocationRef, InvocationSummary, RequestId};

use crate::batching::{Lossy, Numbered, Weighed};
use crate::InvocationQuery;

/// The records waiting for the writer (`writer.rs`).
pub(super) type RecordQueue = Lossy<InvocationRecord>;

/// A record and its submission number.
pub(super) type Queued = Numbered<InvocationRecord>;

/// What a record weighs beyond its texts: its other fields and keys.
pub(super) const PER_RECORD_BYTES: usize = 256;
/// What a log line weighs beyond its message: its row's keys and fields.
pub(super) const PER_LOG_LINE_BYTES: usize = 64;

/// What a record weighs, in memory and in the database: its texts, plus a
/// fixed share for its other fields and for each log line's row.
pub(super) fn record_bytes(record: &InvocationRecord) -> usize {
    let error = record.error.as_ref().map_or(0, |e| {
        e.message.len()
            + e.stack.as_deref().map_or(0, str::len)
            + e.error_type.as_deref().map_or(0, str::len)
    });
    let logs: usize = record
        .logs
        .iter()
        .map(|line| line.message.len() + PER_LOG_LINE_BYTES)
        .sum();
    PER_RECORD_BYTES + record.result.as_deref().map_or(0, str::len) + error + logs
}

impl Weighed for InvocationRecord {
    fn weight(&self) -> usize {
        record_bytes(self)
    }
}

/// A submitted record that is not yet committed, if any.
pub(super) fn find(
    queue: &RecordQueue,
    env: &EnvId,
    request_id: &RequestId,
) -> Option<InvocationRecord> {
    queue.find_newest(|r| r.request_id == *request_id && r.env == *env)
}

/// The summaries of submitted, not yet committed records that `caller` made.
pub(super) fn children(queue: &RecordQueue, caller: &InvocationRef) -> Vec<InvocationSummary> {
    queue.collect(|r| (r.caller.as_ref() == Some(caller)).then(|| r.summary()))
}

/// The summaries of the records of `env` waiting here that `query` matches.
pub(super) fn matching(
    queue: &RecordQueue,
    env: &EnvId,
    query: &InvocationQuery,
) -> Vec<InvocationSummary> {
    queue.collect(|r| {
        (r.env == *env)
            .then(|| r.summary())
            .filter(|summary| query.matches(summary))
    })
}
