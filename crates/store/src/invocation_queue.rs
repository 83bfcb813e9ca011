//! The durable queue of asynchronous invocations: what a one-way invocation
//! is once it was accepted, until it ran (or ran out of chances).
//!
//! An invocation is on disk before [`InvocationQueue::enqueue`] returns, so
//! a crash after the client heard "accepted" loses nothing. Workers take
//! invocations by *lease*: a lease lasts a given time, so the work a crashed
//! worker held is leased again once its lease runs out (at-least-once). Each
//! lease carries a token; finishing, retrying or dead-lettering an
//! invocation needs the token of its current lease, so a worker whose lease
//! ran out cannot undo what the next one did. An invocation that will not
//! run again goes to its env's dead letters, which can be listed, re-driven
//! and purged.

use async_trait::async_trait;
use bytes::Bytes;
use cloudlet_core::{Attempt, EnvId, FunctionName, RequestId, VersionId};

use crate::Result;

/// Names a queued invocation: its env and request ID, as its record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueKey {
    pub env: EnvId,
    pub request_id: RequestId,
}

/// An asynchronous invocation, as accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueued {
    pub key: QueueKey,
    pub function: FunctionName,
    /// The version it was accepted for: every attempt runs this one.
    pub version: VersionId,
    /// The event: JSON text, or as `event_kind` says.
    pub event: Bytes,
    pub event_kind: EventKind,
    /// Who it acts for and what called it, as the invocation service wrote
    /// it (JSON the store keeps as it is).
    pub origin: Option<String>,
    /// What started it, as its record names it (`http`, `call`, `timer`, …).
    pub trigger: String,
    /// When it was accepted (Unix ms).
    pub enqueued_at: i64,
    /// When it may first run (Unix ms).
    pub due_at: i64,
    /// When its age runs out (Unix ms): it is not run after that.
    pub expires_at: i64,
}

/// What a queued event is: the handler gets JSON parsed, text as a
/// string, and bytes as a `Buffer` (Link IoT Edge's payload types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Json,
    Text,
    Binary,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
            Self::Binary => "binary",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        [Self::Json, Self::Text, Self::Binary]
            .into_iter()
            .find(|k| k.as_str() == kind)
    }
}

/// A queued invocation and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub invocation: NewQueued,
    /// Leases taken so far: each is one attempt.
    pub attempts: u32,
    /// The last lease a worker took, until it finishes, retries or
    /// dead-letters the invocation; its `until` may have passed.
    pub lease: Option<Lease>,
    /// The attempts that ended, as the worker told them
    /// ([`InvocationQueue::retry`], [`InvocationQueue::dead_letter`]);
    /// fewer than `attempts` when a worker died during one.
    pub history: Vec<Attempt>,
    /// Why it is a dead letter, when it is one.
    pub dead: Option<String>,
}

impl Queued {
    /// Why the last attempt that ended failed, when it did.
    pub fn last_error(&self) -> Option<String> {
        let error = self.history.last()?.error.as_ref()?;
        Some(error.summary())
    }
}

/// A function, by env and name.
pub type FunctionKey = (EnvId, FunctionName);

/// Where one function's asynchronous invocations stand.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionQueueStats {
    pub function: FunctionName,
    /// Waiting for their first attempt.
    pub queued: u64,
    /// Held by a worker's live lease.
    pub running: u64,
    /// Waiting for another attempt (after a failed one, or one whose
    /// worker died).
    pub retrying: u64,
    pub dead_letters: u64,
    /// When the oldest of its invocations that will still run was
    /// accepted (Unix ms).
    pub oldest_enqueued_at: Option<i64>,
}

/// A worker's hold on a queued invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub token: u64,
    /// When it runs out (Unix ms).
    pub until: i64,
}

/// What [`InvocationQueue::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// It is queued now.
    New(Queued),
    /// An invocation with its env and request ID was accepted before; that
    /// one stands, unchanged.
    Existing(Queued),
}

/// The durable queue of asynchronous invocations. See the module documentation.
#[async_trait]
pub trait InvocationQueue: Send + Sync + 'static {
    /// Stores `new` durably (synced to disk) before returning.
    async fn enqueue(&self, new: NewQueued) -> Result<Enqueued>;

    /// Leases up to `max` invocations that are due at `now` and not dead,
    /// not leased or whose lease ran out, and whose age has not run out,
    /// except those of the functions in `skip` (which run as many as they
    /// may); soonest due first, for `lease_ms`. Each lease is one more
    /// attempt.
    async fn lease(
        &self,
        now: i64,
        max: usize,
        lease_ms: i64,
        skip: &[FunctionKey],
    ) -> Result<Vec<Queued>>;

    /// Extends the lease `token` still holds until `until` (Unix ms): a
    /// worker renews its lease while the invocation runs, so that leases can
    /// be short and the work of a worker that died is soon taken again.
    /// False when `token` is not its current lease.
    async fn extend(&self, key: &QueueKey, token: u64, until: i64) -> Result<bool>;

    /// Gives back a lease the worker did not use (it took more than it may
    /// run): the invocation is due as before, and the attempt the lease
    /// counted is not counted. False when `token` is not its current lease.
    async fn release(&self, key: &QueueKey, token: u64) -> Result<bool>;

    /// Removes an invocation that finished (its record says how); false when
    /// `token` is not its current lease.
    async fn finish(&self, key: &QueueKey, token: u64) -> Result<bool>;

    /// Gives a leased invocation back, to run again at `due_at`, with its
    /// attempts so far (the last one's error is why it runs again); false
    /// when `token` is not its current lease.
    async fn retry(
        &self,
        key: &QueueKey,
        token: u64,
        due_at: i64,
        history: &[Attempt],
    ) -> Result<bool>;

    /// Makes a leased invocation a dead letter, with why and its attempts;
    /// false when `token` is not its current lease.
    async fn dead_letter(
        &self,
        key: &QueueKey,
        token: u64,
        reason: &str,
        history: &[Attempt],
    ) -> Result<bool>;

    /// Makes the invocations whose age ran out at `now` (and that no live
    /// lease holds) dead letters, and returns them.
    async fn expire(&self, now: i64) -> Result<Vec<Queued>>;

    /// Removes an invocation that waits to run (not leased, not dead); false
    /// otherwise.
    async fn cancel(&self, key: &QueueKey, now: i64) -> Result<bool>;

    /// One queued invocation or dead letter.
    async fn queued(&self, key: &QueueKey) -> Result<Option<Queued>>;

    /// An env's dead letters, oldest accepted first.
    async fn dead_letters(&self, env: &EnvId) -> Result<Vec<Queued>>;

    /// Queues a dead letter again, due at `due_at`, its attempts counted
    /// from zero (its history with them) and its age from `due_at` (as long as it was given when it
    /// was accepted); false when it is no dead letter.
    async fn redrive(&self, key: &QueueKey, due_at: i64) -> Result<bool>;

    /// Removes an env's dead letters; returns how many there were.
    async fn purge_dead_letters(&self, env: &EnvId) -> Result<u64>;

    /// Where each function of `env` with queued work or dead letters
    /// stands at `now`, by function name.
    async fn stats(&self, env: &EnvId, now: i64) -> Result<Vec<FunctionQueueStats>>;

    /// How many invocations each env has queued (dead letters aside).
    async fn depths(&self) -> Result<Vec<(EnvId, u64)>>;
}

pub mod conformance;
