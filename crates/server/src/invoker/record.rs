//! The record of an invocation, fixed when the service accepts it.

use std::sync::Arc;
use std::time::Instant;

use cloudlet_core::{
    Attempt, ErrorCode, FunctionError, HttpResponseSummary, InvocationRecord, InvocationRef,
    InvocationStatus, LogLine, RequestId,
};
use cloudlet_runtime::DeployedFunction;
use cloudlet_store::invocation_queue::Queued;
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
    /// An asynchronous invocation's earlier attempts: its record lists them
    /// and this one.
    pub(super) earlier_attempts: Option<Vec<Attempt>>,
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
        let duration_us = self.started.elapsed().as_micros() as u64;
        let attempts = match self.earlier_attempts {
            Some(mut attempts) => {
                attempts.push(Attempt {
                    number: attempts.len() as u32 + 1,
                    started_at: Some(self.started_at),
                    duration_us: Some(duration_us),
                    status,
                    error: error.clone(),
                });
                attempts
            }
            None => Vec::new(),
        };
        InvocationRecord {
            env: self.function.env.clone(),
            function: self.function.name.clone(),
            version: self.function.version.clone(),
            request_id: self.request_id,
            status,
            started_at: self.started_at,
            duration_us,
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
            attempts,
            next_attempt_at: None,
        }
    }
}

/// The record of a queued invocation where no attempt's record says more:
/// enqueued, running, or settled without running (a refusal, its age).
pub(super) fn queued_record(
    queued: &Queued,
    status: InvocationStatus,
    attempts: Vec<Attempt>,
    error: Option<FunctionError>,
) -> InvocationRecord {
    let invocation = &queued.invocation;
    InvocationRecord {
        env: invocation.key.env.clone(),
        function: invocation.function.clone(),
        version: invocation.version.clone(),
        request_id: invocation.key.request_id.clone(),
        status,
        started_at: invocation.enqueued_at,
        duration_us: 0,
        init_us: None,
        cold: false,
        trigger: invocation.trigger.clone(),
        result: None,
        error,
        logs: Vec::new(),
        logs_truncated: false,
        caller: None,
        root: None,
        http: None,
        attempts,
        next_attempt_at: None,
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
            earlier_attempts: self.accepted.earlier_attempts.clone(),
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
