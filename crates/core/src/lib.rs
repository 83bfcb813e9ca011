//! Cloudlet's shared vocabulary.
//!
//! Every other crate speaks in these types: validated identifiers ([`EnvId`],
//! [`FunctionName`], [`RequestId`], [`VersionId`]), a function's
//! [`FunctionConfig`] (CloudBase's `config.json`), its code [`Package`], the
//! [`InvocationRecord`] kept for each invocation, the access service's [`Route`]s, and the stable [`ErrorCode`]s
//! that clients see. Nothing here performs I/O, so the types can be shared by the
//! store, the engines, the gateway and the client without pulling any of them in.

mod async_config;
mod config;
mod cors;
mod cron;
mod error;
mod ids;
pub mod package;
mod record;
mod route;
mod topic;

pub use async_config::AsyncConfig;
pub use config::{
    without_bom, ConfigError, FunctionConfig, FunctionKind, HandlerRef, Runtime, Trigger,
};
pub use cors::{CorsError, CorsSettings};
pub use cron::{civil_from_days, iso_utc, Cron, CronError};
pub use error::{ErrorBody, ErrorCode};
pub use ids::{EnvId, FunctionName, IdError, RequestId, VersionId};
pub use package::{Package, PackageError};
pub use record::{
    Attempt, FunctionError, FunctionInfo, HttpResponseSummary, InvocationRecord, InvocationRef,
    InvocationStatus, InvocationSummary, LogLevel, LogLine, RecordWithChildren, VersionInfo,
};
pub use route::{HostPattern, PathPrefix, Route, RouteAuth, RouteError};
pub use topic::{check_topic, TopicError, TopicFilter};

/// Milliseconds since the Unix epoch, the timestamp unit of records and logs.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
