//! How a function's asynchronous invocations are retried, how long they may
//! wait, and where their outcome goes: FC's async configuration and
//! Lambda's event invoke config, per function.
//!
//! A package's `config.json` may give defaults (`asyncConfig`); the API
//! (`PUT /v1/envs/{env}/functions/{name}/async-config`) sets a function's
//! own without a new code version, and those win field by field.

use serde::{Deserialize, Serialize};

use crate::FunctionName;

/// A function's asynchronous settings; a field left out takes the one below
/// it (the API's over `config.json`'s over the built-in default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsyncConfig {
    /// Retries after a function error (0 to 8; 2 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// How long an invocation may wait to succeed, from when it was
    /// accepted (60 to 21,600 s; 6 hours by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_age_seconds: Option<u32>,
    /// Most of its asynchronous invocations that run at once (1 to 1000;
    /// by default only the server's limit applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// A function of the same env that receives each invocation that
    /// succeeded: its event, its result and its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<FunctionName>,
    /// A function of the same env that receives each invocation that will
    /// not run again: its event, its error and its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<FunctionName>,
}

impl AsyncConfig {
    pub const DEFAULT_MAX_RETRIES: u32 = 2;
    pub const MAX_RETRIES: u32 = 8;
    pub const DEFAULT_MAX_EVENT_AGE_S: u32 = 6 * 3600;
    pub const MIN_EVENT_AGE_S: u32 = 60;
    pub const MAX_CONCURRENCY: u32 = 1000;

    /// Refuses settings out of their ranges, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(retries) = self.max_retries.filter(|r| *r > Self::MAX_RETRIES) {
            return Err(format!("maxRetries must be from 0 to 8, got {retries}"));
        }
        let ages = Self::MIN_EVENT_AGE_S..=Self::DEFAULT_MAX_EVENT_AGE_S;
        if let Some(age) = self.max_event_age_seconds.filter(|a| !ages.contains(a)) {
            return Err(format!(
                "maxEventAgeSeconds must be from 60 to 21600, got {age}"
            ));
        }
        let concurrency = 1..=Self::MAX_CONCURRENCY;
        if let Some(n) = self.max_concurrency.filter(|n| !concurrency.contains(n)) {
            return Err(format!("maxConcurrency must be from 1 to 1000, got {n}"));
        }
        Ok(())
    }

    /// These settings, with `defaults`' where these leave a field out.
    pub fn over(&self, defaults: &AsyncConfig) -> AsyncConfig {
        AsyncConfig {
            max_retries: self.max_retries.or(defaults.max_retries),
            max_event_age_seconds: self
                .max_event_age_seconds
                .or(defaults.max_event_age_seconds),
            max_concurrency: self.max_concurrency.or(defaults.max_concurrency),
            on_success: self
                .on_success
                .clone()
                .or_else(|| defaults.on_success.clone()),
            on_failure: self
                .on_failure
                .clone()
                .or_else(|| defaults.on_failure.clone()),
        }
    }

    pub fn max_retries(&self) -> u32 {
        self.max_retries.unwrap_or(Self::DEFAULT_MAX_RETRIES)
    }

    pub fn max_event_age_ms(&self) -> i64 {
        let seconds = self
            .max_event_age_seconds
            .unwrap_or(Self::DEFAULT_MAX_EVENT_AGE_S);
        i64::from(seconds) * 1000
    }

    /// Every field filled in: what applies.
    pub fn effective(&self) -> AsyncConfig {
        AsyncConfig {
            max_retries: Some(self.max_retries()),
            max_event_age_seconds: Some(
                self.max_event_age_seconds
                    .unwrap_or(Self::DEFAULT_MAX_EVENT_AGE_S),
            ),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AsyncConfig;
    use crate::FunctionName;

    fn name(n: &str) -> FunctionName {
        FunctionName::parse(n).expect("a function name")
    }

    #[test]
    fn set_fields_win_over_the_defaults_field_by_field() {
        let set = AsyncConfig {
            max_retries: Some(0),
            on_failure: Some(name("alarm")),
            ..Default::default()
        };
        let defaults = AsyncConfig {
            max_retries: Some(5),
            max_event_age_seconds: Some(600),
            on_failure: Some(name("log")),
            ..Default::default()
        };
        let applied = set.over(&defaults);
        assert_eq!(applied.max_retries(), 0);
        assert_eq!(applied.max_event_age_ms(), 600_000);
        assert_eq!(applied.on_failure, Some(name("alarm")));
        assert_eq!(applied.on_success, None);
    }

    #[test]
    fn nothing_set_is_two_retries_within_six_hours() {
        let none = AsyncConfig::default();
        assert_eq!(none.max_retries(), 2);
        assert_eq!(none.max_event_age_ms(), 6 * 3600 * 1000);
    }

    #[test]
    fn settings_out_of_range_are_refused_by_name() {
        let many = AsyncConfig {
            max_retries: Some(9),
            ..Default::default()
        };
        assert!(many.validate().unwrap_err().contains("maxRetries"));
        let short = AsyncConfig {
            max_event_age_seconds: Some(59),
            ..Default::default()
        };
        assert!(short.validate().unwrap_err().contains("maxEventAgeSeconds"));
    }
}
