//! The record of an invocation, fixed when the service accepts it.

use std::sync::Arc;
use std::time::Instant;

use cloudlet_core::{
    ErrorCode, FunctionError, HttpResponseSummary, InvocationRecord, InvocationRef,
    InvocationStatus, LogLine, RequestId,
};
use cloudlet_runtime::DeployedFunction;
use cloudlet_store::RecordStore;

/// What every record of one invocation shares, fixed when it was accepted.
pub(super) struct Accepted {
    pub(super) function: Arc<DeployedFunction>,
    pub(super) request_id: RequestId,
    pub(super) trigger: String,
    pub(super) started_at: i64,
    pub(super) started: Instant,
    /// The invocation that made this one, and its chain's root.
    pub(super) caller: Option<InvocationRef>,
    pub(super) root: Option<InvocationRef>,
}

/// How the invocation went, beyond its result.
pub(super) struct Ran {
    pub(super) logs: Vec<LogLine>,
    pub(super) logs_truncated: bool,
    pub(super) cold: bool,
    pub(super) init_us: Option<u64>,
    /// The response an HTTP function gave, once it has ended.
    pub(super) http: Option<HttpResponseSummary>,
}

impl Accepted {
    /// The record, once the invocation has ended: with the JSON result, none
    /// (a streamed response), or the function's error.
    pub(super) fn record(
        self,
        result: Result<Option<String>, FunctionError>,
        ran: Ran,
    ) -> InvocationRecord {
        let (status, result, error) = match result {
            Ok(json) => (InvocationStatus::Succeeded, json, None),
            Err(error) => (InvocationStatus::Failed, None, Some(error)),
        };
        InvocationRecord {
            env: self.function.env.clone(),
            function: self.function.name.clone(),
            version: self.function.version.clone(),
            request_id: self.request_id,
            status,
            started_at: self.started_at,
            duration_us: self.started.elapsed().as_micros() as u64,
            init_us: ran.init_us,
            cold: ran.cold,
            trigger: self.trigger,
            result,
            error,
            logs: ran.logs,
            logs_truncated: ran.logs_truncated,
            caller: self.caller,
            root: self.root,
            http: ran.http,
        }
    }
}

/// Submits a record for an invocation whose caller went away before it ended
/// (the service's future was dropped mid-await), so every request ID that
/// reached a function has a record.
pub(super) struct Abandoned<'a> {
    records: &'a dyn RecordStore,
    accepted: &'a Accepted,
    armed: bool,
}

impl<'a> Abandoned<'a> {
    pub(super) fn arm(records: &'a dyn RecordStore, accepted: &'a Accepted) -> Self {
        Self {
            records,
            accepted,
            armed: true,
        }
    }

    /// The engine answered: the invocation's own record follows.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let accepted = Accepted {
            function: Arc::clone(&self.accepted.function),
            request_id: self.accepted.request_id.clone(),
            trigger: self.accepted.trigger.clone(),
            caller: self.accepted.caller.clone(),
            root: self.accepted.root.clone(),
            ..*self.accepted
        };
        let error = FunctionError::new(
            ErrorCode::FunctionInvocationFailed,
            "the caller disconnected before the function finished; the invocation was abandoned",
        );
        let ran = Ran {
            logs: Vec::new(),
            logs_truncated: false,
            cold: false,
            init_us: None,
            http: None,
        };
        self.records.submit(accepted.record(Err(error), ran));
    }
}
