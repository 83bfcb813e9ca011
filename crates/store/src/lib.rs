//! Persistence for Cloudlet, behind one trait per concern.
//!
//! - [`FunctionStore`]: envs and their keys, functions, immutable versions and
//!   their code packages; each env's CORS settings; the HTTP access
//!   service's routes.
//! - [`tmp::TmpObjects`]: temporary objects clients upload for a call, as
//!   files that expire.
//! - [`invocation_queue::InvocationQueue`]: asynchronous invocations, on disk
//!   from the moment they are accepted until they ran, and the dead letters.
//! - [`RecordStore`]: invocation records with their logs. Writing a record is a
//!   non-blocking hand-off ([`RecordStore::submit`]); backends persist records in
//!   batches off the request path.
//!
//! The embedded backend is [`sqlite::SqliteStore`] (one data directory: SQLite in
//! WAL mode for metadata, records and logs; package archives as files). Every
//! backend must pass the shared suite in [`conformance`], so a PostgreSQL
//! backend can be added later against the same tests.

use async_trait::async_trait;
use bytes::Bytes;
use cloudlet_core::{
    AsyncConfig, CorsSettings, EnvId, FunctionConfig, FunctionInfo, FunctionName, HostPattern,
    InvocationRecord, InvocationRef, InvocationStatus, InvocationSummary, PathPrefix, RequestId,
    Route, VersionId, VersionInfo,
};

/// What an env's publishable key starts with, so that a key says its kind
/// ([`FunctionStore::issue_publishable_key`]).
pub const PUBLISHABLE_KEY_PREFIX: &str = "pk_";

/// The most callees [`RecordStore::children`] lists for one invocation.
pub const CHILDREN_LISTED: usize = 1000;

/// How many of a function's past versions stay available to run by name
/// (`X-Qualifier`); older ones go, with their packages once nothing uses them.
pub const VERSIONS_KEPT: usize = 10;

pub mod batching;
pub mod conformance;
pub mod invocation_queue;
pub mod sqlite;
pub mod tmp;

pub use sqlite::SqliteStore;

/// A storage fault. Callers surface it as `SYS_ERR`; it never means "not found",
/// which the methods express with `Option` or `bool`.
#[derive(Debug, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(pub String);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a deploy hands to the store.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub env: EnvId,
    pub name: FunctionName,
    pub version: VersionId,
    pub config: FunctionConfig,
    /// The package archive as it will be served back by [`FunctionStore::package`].
    pub archive: Bytes,
}

/// An env as the API shows it. The key itself is only ever returned once, on creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvInfo {
    pub env: EnvId,
    pub created_at: i64,
    pub function_count: u64,
}

/// Envs, functions, versions and packages.
#[async_trait]
pub trait FunctionStore: Send + Sync + 'static {
    /// Records a version and makes it the function's current one, creating the env
    /// and the function as needed. Storing the same version twice is not an error:
    /// the content hash names it, so the second deploy only moves the pointer.
    async fn deploy(&self, new: NewVersion) -> Result<FunctionInfo>;

    async fn function(&self, env: &EnvId, name: &FunctionName) -> Result<Option<FunctionInfo>>;

    /// The env's functions, sorted by name. An unknown env yields `None`.
    async fn functions(&self, env: &EnvId) -> Result<Option<Vec<FunctionInfo>>>;

    /// A version the function has had (its current one or one of the last
    /// [`VERSIONS_KEPT`] deployed), named by its ID or by the first 12
    /// characters of it; `None` when it has had no such version.
    async fn version(
        &self,
        env: &EnvId,
        name: &FunctionName,
        version: &str,
    ) -> Result<Option<VersionInfo>>;

    /// Removes a function (its versions stay until no function refers to them).
    /// Returns false when there was no such function.
    async fn remove_function(&self, env: &EnvId, name: &FunctionName) -> Result<bool>;

    /// A function's own asynchronous settings, as the API set them; `None`
    /// when none were set (or there is no such function).
    async fn async_config(&self, env: &EnvId, name: &FunctionName) -> Result<Option<AsyncConfig>>;

    /// Sets (or with `None` clears) a function's own asynchronous settings;
    /// they stay across deploys. False when there is no such function.
    async fn set_async_config(
        &self,
        env: &EnvId,
        name: &FunctionName,
        config: Option<&AsyncConfig>,
    ) -> Result<bool>;

    /// When each timer trigger last fired, as [`FunctionStore::record_timer_firing`]
    /// noted it.
    async fn timer_firings(&self) -> Result<Vec<TimerFiring>>;

    /// Notes that a timer trigger fired (its invocation is queued); a later
    /// firing replaces an earlier one. Removing the function forgets them.
    async fn record_timer_firing(&self, firing: &TimerFiring) -> Result<()>;

    /// The archive stored for a version, if any.
    async fn package(&self, version: &VersionId) -> Result<Option<Bytes>>;

    async fn env(&self, env: &EnvId) -> Result<Option<EnvInfo>>;

    /// Every env, sorted by name. The `default` env always exists.
    async fn envs(&self) -> Result<Vec<EnvInfo>>;

    /// Creates the env if needed and gives it a fresh invoke key, returned in
    /// clear text this once; only its SHA-256 is kept.
    async fn issue_env_key(&self, env: &EnvId) -> Result<String>;

    /// True when `key` is the env's current invoke key.
    async fn check_env_key(&self, env: &EnvId, key: &str) -> Result<bool>;

    /// Creates the env if needed and gives it a fresh publishable key (`pk_…`:
    /// invoke and upload only, for web pages), replacing its previous one;
    /// returned in clear text this once. The env's own key is unchanged.
    async fn issue_publishable_key(&self, env: &EnvId) -> Result<String>;

    /// True when `key` is the env's current publishable key.
    async fn check_publishable_key(&self, env: &EnvId, key: &str) -> Result<bool>;

    /// The env's CORS settings, if it has any.
    async fn cors(&self, env: &EnvId) -> Result<Option<CorsSettings>>;

    /// Sets the env's CORS settings (creating the env if needed), or with
    /// `None` removes them.
    async fn set_cors(&self, env: &EnvId, settings: Option<&CorsSettings>) -> Result<()>;

    /// Every route of the HTTP access service, by host, then prefix.
    async fn routes(&self) -> Result<Vec<Route>>;

    /// Adds a route; false, changing nothing, when one with its host and
    /// prefix exists.
    async fn add_route(&self, route: &Route) -> Result<bool>;

    /// Removes the route of `host` and `prefix`; false when there was none.
    async fn remove_route(&self, host: &HostPattern, prefix: &PathPrefix) -> Result<bool>;
}

/// A timer trigger's last firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerFiring {
    pub env: EnvId,
    pub function: FunctionName,
    pub trigger: String,
    /// The firing's due time, Unix seconds.
    pub fired_at: i64,
}

/// Which invocations [`RecordStore::invocations`] lists: those that match
/// every filter given, started before `before` (a page's last entry), at
/// most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationQuery {
    pub function: Option<FunctionName>,
    pub status: Option<InvocationStatus>,
    pub trigger: Option<String>,
    /// `(started_at, request_id)` of the last entry of the page before.
    pub before: Option<(i64, RequestId)>,
    pub limit: usize,
}

impl InvocationQuery {
    /// Whether `summary` passes the filters and comes after `before`.
    pub fn matches(&self, summary: &InvocationSummary) -> bool {
        self.function
            .as_ref()
            .is_none_or(|f| *f == summary.function)
            && self.status.is_none_or(|s| s == summary.status)
            && self.trigger.as_ref().is_none_or(|t| *t == summary.trigger)
            && self
                .before
                .as_ref()
                .is_none_or(|(at, id)| (summary.started_at, &summary.request_id) < (*at, id))
    }
}

/// What the invocation records take, for `cloudlet status` and `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordUsage {
    /// Records kept (written ones; `pending` are on their way).
    pub records: u64,
    /// Bytes they take on disk (for SQLite, the database and its WAL).
    pub bytes: u64,
    /// The size limit the backend holds them to, if any.
    pub max_bytes: Option<u64>,
    /// When the oldest record kept started (Unix ms).
    pub oldest_started_at: Option<i64>,
    /// Records submitted and not yet written.
    pub pending: u64,
    /// Records dropped because the writer fell behind (see [`RecordStore::dropped`]).
    pub dropped: u64,
}

/// Invocation records and their logs.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Hands a record over for persisting. Never blocks and never fails on the
    /// request path: a backend that cannot keep up drops the oldest pending
    /// records and counts them (see [`RecordStore::dropped`]). A record with
    /// the env and request ID of an earlier one replaces it.
    fn submit(&self, record: InvocationRecord);

    /// Waits until every record submitted before the call is persisted.
    async fn flush(&self) -> Result<()>;

    /// A record by env and request ID, including records submitted but not yet
    /// persisted.
    async fn record(&self, env: &EnvId, request_id: &RequestId)
        -> Result<Option<InvocationRecord>>;

    /// The invocations `caller`'s code made, oldest first, at most
    /// [`CHILDREN_LISTED`], including records not yet persisted.
    async fn children(&self, caller: &InvocationRef) -> Result<Vec<InvocationSummary>>;

    /// An env's invocations that match `query`, newest first, at most
    /// `query.limit`, including records not yet persisted.
    async fn invocations(
        &self,
        env: &EnvId,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationSummary>>;

    /// How many submitted records were dropped because the writer fell behind.
    fn dropped(&self) -> u64;

    /// How many records are kept and what they take.
    async fn usage(&self) -> Result<RecordUsage>;
}
