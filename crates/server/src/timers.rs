//! Timer triggers: each current function's `"type": "timer"` triggers fire
//! on their cron schedule (`cloudlet_core::Cron`, read in the server's
//! zone, UTC+8 unless `--timer-utc-offset` says otherwise), each firing an
//! asynchronous invocation on the durable queue with CloudBase's timer
//! event, `{"Type": "Timer", "TriggerName", "Time", "Message"}`, and the
//! trigger `timer:NAME` in its record.
//!
//! A firing's request ID is made from its function, trigger and due time,
//! so that queuing it twice (a restart right after it was queued) keeps
//! one; and the store notes each trigger's last firing. So a restart
//! neither repeats nor skips a firing that fell due while the server ran.
//! Of the firings that fell due while the server was down, the latest one
//! (within the last day) runs once when it starts; the others are skipped,
//! as a missed cron job is.
//!
//! The schedule is read from the store when serving starts and again after
//! every deploy or removal (`Invoker::timers_changed`), so a redeploy
//! replaces a function's triggers and a removal ends them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloudlet_core::{now_unix_ms, Cron, EnvId, FunctionName, RequestId, Trigger};
use cloudlet_runtime::Event;
use cloudlet_store::{FunctionStore, TimerFiring};
use tokio_util::sync::CancellationToken;

use crate::auth::Access;
use crate::invoker::{InvokeContext, Invoker, Qualifier, Target};

/// How far back a start looks for a firing missed while the server was down.
const CATCH_UP: i64 = 86_400;
/// The longest sleep between two looks at the schedule, so that a clock
/// set forward is noticed.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

/// A timer trigger of a current function.
#[derive(Debug, Clone)]
struct Timer {
    env: EnvId,
    function: FunctionName,
    trigger: Trigger,
    cron: Cron,
}

type Key = (EnvId, FunctionName, String);

impl Timer {
    fn key(&self) -> Key {
        (
            self.env.clone(),
            self.function.clone(),
            self.trigger.name.clone(),
        )
    }
}

/// Every current function's timer triggers.
async fn timers(functions: &dyn FunctionStore) -> cloudlet_store::Result<Vec<Timer>> {
    let mut timers = Vec::new();
    for env in functions.envs().await? {
        for function in functions.functions(&env.env).await?.unwrap_or_default() {
            for trigger in &function.current.config.triggers {
                if let Some(cron) = trigger.schedule() {
                    timers.push(Timer {
                        env: env.env.clone(),
                        function: function.name.clone(),
                        trigger: trigger.clone(),
                        cron,
                    });
                }
            }
        }
    }
    Ok(timers)
}

/// Fires the timers until `shutdown`; `offset` is the zone's, in seconds
/// east of UTC.
pub(crate) async fn run_timers(
    invoker: Arc<Invoker>,
    functions: Arc<dyn FunctionStore>,
    offset: i64,
    shutdown: CancellationToken,
) {
    let mut last: HashMap<Key, i64> = match functions.timer_firings().await {
        Ok(firings) => firings
            .into_iter()
            .map(|f| ((f.env, f.function, f.trigger), f.fired_at))
            .collect(),
        Err(error) => {
            tracing::error!(%error, "cannot read the timers' last firings");
            HashMap::new()
        }
    };
    let started = now_unix_ms() / 1000;
    loop {
        let schedule = match timers(functions.as_ref()).await {
            Ok(schedule) => schedule,
            Err(error) => {
                tracing::error!(%error, "cannot read the timer triggers");
                Vec::new()
            }
        };
        // Until the schedule changes: fire what is due, sleep until the next.
        loop {
            let now = now_unix_ms() / 1000;
            let mut soonest: Option<i64> = None;
            for timer in &schedule {
                let key = timer.key();
                // A trigger never fired starts from when the server did.
                let since = *last.entry(key.clone()).or_insert(started);
                let mut next = due(&timer.cron, since, now, offset);
                if let Some(at) = next.filter(|at| *at <= now) {
                    fire(&invoker, functions.as_ref(), timer, at).await;
                    last.insert(key, at);
                    next = timer.cron.next_after(at, offset);
                }
                if let Some(at) = next {
                    soonest = Some(soonest.map_or(at, |s| s.min(at)));
                }
            }
            let wait = soonest.map_or(LONGEST_SLEEP, |at| {
                let ms = (at * 1000 - now_unix_ms()).max(0);
                Duration::from_millis(ms as u64).min(LONGEST_SLEEP)
            });
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = invoker.timers_changed.notified() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The firing to act on after `since` (the last one acted on): the latest
/// one due by `now`, looking back at most [`CATCH_UP`], or else the next one.
fn due(cron: &Cron, since: i64, now: i64, offset: i64) -> Option<i64> {
    let mut next = cron.next_after(since.max(now - CATCH_UP), offset)?;
    while next < now {
        match cron.next_after(next, offset) {
            Some(later) if later <= now => next = later,
            _ => break,
        }
    }
    Some(next)
}

/// Queues the invocation of `timer`'s firing due `at`, and notes it.
async fn fire(invoker: &Invoker, functions: &dyn FunctionStore, timer: &Timer, at: i64) {
    let target = Target {
        access: Access::for_caller(timer.env.clone()),
        name: timer.function.clone(),
        qualifier: Qualifier::Latest,
    };
    let name = &timer.trigger.name;
    let context = InvokeContext::new(firing_id(timer, at), format!("timer:{name}"));
    let event = serde_json::json!({
        "Type": "Timer",
        "TriggerName": name,
        "Time": cloudlet_core::iso_utc(at),
        "Message": timer.trigger.message.clone().unwrap_or_default(),
    });
    let event = Event::Json(Bytes::from(event.to_string()));
    if let Err(error) = invoker.enqueue(target, event, &context).await {
        tracing::warn!(code = %error.code, message = %error.message, env = %timer.env,
            function = %timer.function, trigger = %name, "a timer's firing was not queued");
    }
    let firing = TimerFiring {
        env: timer.env.clone(),
        function: timer.function.clone(),
        trigger: name.clone(),
        fired_at: at,
    };
    if let Err(error) = functions.record_timer_firing(&firing).await {
        tracing::warn!(%error, "cannot note a timer's firing");
    }
}

/// `timer:{function}:{trigger}:{at}` ([`RequestId::derived`]).
fn firing_id(timer: &Timer, at: i64) -> RequestId {
    let id = format!("timer:{}:{}:{at}", timer.function, timer.trigger.name);
    RequestId::derived("timer", &id)
}

#[cfg(test)]
mod tests {
    use cloudlet_core::Cron;

    use super::due;

    #[test]
    fn a_start_runs_the_latest_firing_missed_and_no_earlier_one() {
        let every_ten = Cron::parse("*/10 * * * * * *").expect("valid");
        // Last fired at 100; down until 135: 110, 120 and 130 were missed.
        assert_eq!(due(&every_ten, 100, 135, 0), Some(130));
        // Nothing missed: the next one.
        assert_eq!(due(&every_ten, 130, 135, 0), Some(140));
    }

    #[test]
    fn a_start_looks_back_one_day_at_most() {
        let daily = Cron::parse("0 0 0 * * * *").expect("valid");
        let now = 10 * 86_400 + 3600;
        assert_eq!(due(&daily, 0, now, 0), Some(10 * 86_400));
    }
}
