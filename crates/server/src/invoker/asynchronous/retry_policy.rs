//! What becomes of an asynchronous invocation after an attempt.
//!
//! A function error (it threw, timed out, ran out of memory) is retried up
//! to the function's `maxRetries` times (`AsyncConfig`), with delays doubling from
//! [`RETRY_BASE_MS`]. A refusal of the platform's (a concurrency limit, the
//! memory budget, a shutdown) says nothing about the function, so it is
//! retried without counting, with delays doubling from [`REFUSED_BASE_MS`]
//! up to [`REFUSED_MAX_MS`], until the invocation's age runs out (the
//! worker's expiry). Any other refusal (the version is gone) will not
//! change, so the invocation is a dead letter at once. Each delay is
//! jittered, so that invocations that failed together do not all come back
//! together.

use cloudlet_core::FunctionError;

use crate::invoker::InvokeError;

/// The first retry's delay after a function error; each next one doubles it.
const RETRY_BASE_MS: i64 = 1000;
/// The first retry's delay after a refusal; doubled up to [`REFUSED_MAX_MS`].
const REFUSED_BASE_MS: i64 = 100;
const REFUSED_MAX_MS: i64 = 5000;

/// What becomes of an invocation after an attempt.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    Done,
    /// Run it again after about `after_ms` (see [`jittered`]).
    Retry {
        after_ms: i64,
    },
    Dead(String),
}

/// The rules of the module documentation: `outcome` is the attempt's
/// function error (`Ok(None)` for success) or the service's refusal;
/// `attempts` counts this one.
pub(super) fn next_step(
    outcome: Result<Option<&FunctionError>, &InvokeError>,
    attempts: u32,
    max_retries: u32,
) -> Next {
    let doubled = |base: i64| base << attempts.saturating_sub(1).min(16);
    match outcome {
        Ok(None) => Next::Done,
        Ok(Some(error)) if attempts > max_retries => Next::Dead(format!(
            "failed {attempts} times; the last: {}",
            error.summary()
        )),
        Ok(Some(_)) => Next::Retry {
            after_ms: doubled(RETRY_BASE_MS),
        },
        Err(refused) if refused.code.is_retryable() => Next::Retry {
            after_ms: doubled(REFUSED_BASE_MS).min(REFUSED_MAX_MS),
        },
        Err(refused) => Next::Dead(format!("{}: {}", refused.code, refused.message)),
    }
}

/// A delay between half and all of `after_ms` ("equal jitter"): never much
/// sooner than the backoff asks, spread so that a burst does not return as
/// one.
pub(super) fn jittered(after_ms: i64) -> i64 {
    let half = after_ms / 2;
    half + rand::random_range(0..=after_ms - half)
}

#[cfg(test)]
mod tests {
    use cloudlet_core::{ErrorCode, FunctionError};

    use cloudlet_core::AsyncConfig;

    use super::{jittered, next_step, InvokeError, Next};

    const DEFAULT_MAX_RETRIES: u32 = AsyncConfig::DEFAULT_MAX_RETRIES;

    fn boom() -> FunctionError {
        FunctionError::new(ErrorCode::FunctionInvocationFailed, "boom")
    }

    #[test]
    fn a_success_is_done() {
        assert_eq!(next_step(Ok(None), 1, DEFAULT_MAX_RETRIES), Next::Done);
    }

    #[test]
    fn a_function_error_is_retried_with_doubling_delays_then_dead() {
        let error = boom();
        let delays: Vec<Next> = (1..=DEFAULT_MAX_RETRIES)
            .map(|n| next_step(Ok(Some(&error)), n, DEFAULT_MAX_RETRIES))
            .collect();
        assert_eq!(
            delays,
            [
                Next::Retry { after_ms: 1000 },
                Next::Retry { after_ms: 2000 }
            ]
        );
        assert_eq!(
            next_step(Ok(Some(&error)), 3, DEFAULT_MAX_RETRIES),
            Next::Dead("failed 3 times; the last: boom".into())
        );
    }

    #[test]
    fn no_retries_make_the_first_failure_final() {
        assert!(matches!(next_step(Ok(Some(&boom())), 1, 0), Next::Dead(_)));
    }

    #[test]
    fn a_refusal_of_the_platforms_is_retried_and_any_other_is_dead() {
        let busy = InvokeError::new(ErrorCode::ExceedConcurrentRequestLimit, "busy");
        assert_eq!(
            next_step(Err(&busy), 9, 0),
            Next::Retry { after_ms: 5000 },
            "a refusal does not count against the retries"
        );
        let gone = InvokeError::new(ErrorCode::FunctionNotFound, "gone");
        assert_eq!(
            next_step(Err(&gone), 1, 2),
            Next::Dead("FUNCTION_NOT_FOUND: gone".into())
        );
    }

    #[test]
    fn a_jittered_delay_lies_between_half_and_all_of_the_backoff() {
        for _ in 0..1000 {
            let delay = jittered(1000);
            assert!((500..=1000).contains(&delay), "{delay}");
        }
    }
}
