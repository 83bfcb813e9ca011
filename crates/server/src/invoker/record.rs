//! The record of an invocation, fixed when the service accepts it.

use std::time::Instant;

use cloudlet_core::{
    ErrorCode, FunctionError, InvocationRecord, InvocationStatus, LogLine, RequestId,
};
use cloudlet_runtime::DeployedFunction;
use cloudlet_store::RecordStore;

/// What every record of one invocation shares, fixed when it was accepted.
pub(super) struct Accepted<'a> {
    pub(super) function: &'a DeployedFunction,
    pub(super) request_id: &'a RequestId,
    pub(super) trigger: &'a str,
    pub(super) started_at: i64,
    pub(super) started: Instant,
}

impl Accepted<'_> {
    pub(super) fn record(
        &self,
        result: Result<String, FunctionError>,
        logs: Vec<LogLine>,
        logs_truncated: bool,
        cold: bool,
        init_us: Option<u64>,
    ) -> InvocationRecord {
        let (status, result, error) = match result {
            Ok(json) => (InvocationStatus::Succeeded, Some(json), None),
            Err(error) => (InvocationStatus::Failed, None, Some(error)),
        };
        InvocationRecord {
            request_id: self.request_id.clone(),
            env: self.function.env.clone(),
            function: self.function.name.clone(),
            version: self.function.version.clone(),
            status,
            started_at: self.started_at,
            duration_us: self.started.elapsed().as_micros() as u64,
            init_us,
            cold,
            trigger: self.trigger.to_owned(),
            result,
            error,
            logs,
            logs_truncated,
        }
    }
}

/// Submits a record for an invocation whose caller went away before it ended
/// (the service's future was dropped mid-await), so every request ID that
/// reached a function has a record.
pub(super) struct Abandoned<'a> {
    records: &'a dyn RecordStore,
    accepted: &'a Accepted<'a>,
    armed: bool,
}

impl<'a> Abandoned<'a> {
    pub(super) fn arm(records: &'a dyn RecordStore, accepted: &'a Accepted<'a>) -> Self {
        Self {
            records,
            accepted,
            armed: true,
        }
    }

    /// The invocation ended: its own record is submitted instead.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let error = FunctionError::new(
            ErrorCode::FunctionInvocationFailed,
            "the caller disconnected before the function finished; the invocation was abandoned",
        );
        let record = self
            .accepted
            .record(Err(error), Vec::new(), false, false, None);
        self.records.submit(record);
    }
}
