//! The checks every [`InvocationQueue`] backend must pass, as
//! [`crate::conformance`] has them for the other stores. Times are made up
//! (Unix ms near zero): the queue takes the time it is told.

use std::collections::HashSet;

use bytes::Bytes;
use cloudlet_core::{
    Attempt, EnvId, ErrorCode, FunctionError, InvocationStatus, RequestId, VersionId,
};

use super::{
    Enqueued, EventKind, FunctionQueueStats, InvocationQueue, NewQueued, QueueKey, Queued,
};
use crate::conformance::{function_name, unique_env};

/// Runs every check against `queue`.
pub async fn run_all<Q: InvocationQueue>(queue: &Q) {
    an_invocation_is_queued_once_whatever_it_is_sent_again_with(queue).await;
    leases_take_due_invocations_soonest_first_and_count_attempts(queue).await;
    a_lease_that_ran_out_is_taken_again_and_the_old_token_fails(queue).await;
    a_lease_held_is_extended_and_one_taken_again_is_not(queue).await;
    a_retry_waits_for_its_due_time_and_keeps_its_attempts(queue).await;
    dead_letters_are_listed_re_driven_and_purged(queue).await;
    an_invocation_whose_age_ran_out_becomes_a_dead_letter(queue).await;
    only_a_waiting_invocation_can_be_cancelled(queue).await;
    concurrent_lessees_take_each_invocation_once(queue).await;
    concurrent_enqueues_are_each_accepted_once(queue).await;
    a_skipped_function_is_not_leased_and_the_others_are(queue).await;
    a_lease_given_back_counts_no_attempt(queue).await;
    stats_count_each_functions_invocations_by_where_they_stand(queue).await;
    stats_of_a_function_none_of_whose_invocations_runs_count_none_running(queue).await;
}

/// An invocation of `add` in `env`, due at `due_at`, whose age runs out at 10,000.
pub fn new_queued(env: &EnvId, due_at: i64, event: &str) -> NewQueued {
    NewQueued {
        key: QueueKey {
            env: env.clone(),
            request_id: RequestId::generate(),
        },
        function: function_name("add"),
        version: VersionId::parse("ab".repeat(32)).expect("64 hex digits"),
        event: Bytes::from(event.to_owned()),
        event_kind: EventKind::Json,
        origin: None,
        trigger: "http".to_owned(),
        enqueued_at: due_at,
        due_at,
        expires_at: 10_000,
    }
}

/// Attempt `number` of an invocation, failed with `message`.
pub fn failed_attempt(number: u32, message: &str) -> Attempt {
    Attempt {
        number,
        started_at: Some(i64::from(number) * 100),
        duration_us: Some(1_000),
        status: InvocationStatus::Failed,
        error: Some(FunctionError::new(
            ErrorCode::FunctionInvocationFailed,
            message,
        )),
    }
}

async fn queue_one<Q: InvocationQueue>(queue: &Q, new: NewQueued) -> Queued {
    match queue.enqueue(new).await.expect("enqueue") {
        Enqueued::New(queued) => queued,
        Enqueued::Existing(queued) => panic!("queued before: {queued:?}"),
    }
}

/// The one invocation of `env` a lease at `now` takes.
async fn lease_one<Q: InvocationQueue>(queue: &Q, env: &EnvId, now: i64) -> Queued {
    let leased = queue.lease(now, 1000, 1000, &[]).await.expect("lease");
    let mine: Vec<Queued> = leased
        .into_iter()
        .filter(|q| &q.invocation.key.env == env)
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    mine.into_iter().next().expect("one")
}

/// An invocation queued in `env` and leased at 10: its key and lease token.
async fn queued_and_leased<Q: InvocationQueue>(queue: &Q, env: &EnvId) -> (QueueKey, u64) {
    let queued = queue_one(queue, new_queued(env, 1, "{}")).await;
    let lease = lease_one(queue, env, 10).await.lease.expect("leased");
    (queued.invocation.key, lease.token)
}

/// How many invocations of `env` a lease at `now` takes.
async fn leased_count<Q: InvocationQueue>(queue: &Q, env: &EnvId, now: i64) -> usize {
    let leased = queue.lease(now, 1000, 1000, &[]).await.expect("lease");
    leased
        .iter()
        .filter(|q| &q.invocation.key.env == env)
        .count()
}

pub async fn an_invocation_is_queued_once_whatever_it_is_sent_again_with<Q: InvocationQueue>(
    queue: &Q,
) {
    let env = unique_env("q-once");
    let mut first = new_queued(&env, 1, "\u{0}\u{ff}");
    first.event_kind = EventKind::Binary;
    first.origin = Some(r#"{"identity":{"openid":"o1"}}"#.to_owned());
    let queued = queue_one(queue, first.clone()).await;
    assert_eq!(queued.invocation, first);
    assert_eq!(queued.attempts, 0);
    let mut again = first.clone();
    again.event = Bytes::from_static(br#"{"x":2}"#);
    again.event_kind = EventKind::Json;
    match queue.enqueue(again).await.expect("enqueue again") {
        Enqueued::Existing(existing) => assert_eq!(existing.invocation, first),
        Enqueued::New(_) => panic!("queued twice"),
    }
    let stored = queue.queued(&first.key).await.expect("read");
    assert_eq!(stored.map(|q| q.invocation), Some(first));
}

pub async fn leases_take_due_invocations_soonest_first_and_count_attempts<Q: InvocationQueue>(
    queue: &Q,
) {
    let env = unique_env("q-order");
    let later = queue_one(queue, new_queued(&env, 100, "{}")).await;
    let sooner = queue_one(queue, new_queued(&env, 50, "{}")).await;
    queue_one(queue, new_queued(&env, 5_000, "{}")).await;
    let leased: Vec<Queued> = queue
        .lease(150, 1000, 1000, &[])
        .await
        .expect("lease")
        .into_iter()
        .filter(|q| q.invocation.key.env == env)
        .collect();
    let keys: Vec<&QueueKey> = leased.iter().map(|q| &q.invocation.key).collect();
    assert_eq!(keys, [&sooner.invocation.key, &later.invocation.key]);
    assert!(leased.iter().all(|q| q.attempts == 1));
    assert!(leased
        .iter()
        .all(|q| q.lease.is_some_and(|lease| lease.until == 1150)));
    assert_eq!(leased_count(queue, &env, 150).await, 0, "both are leased");
}

pub async fn a_lease_that_ran_out_is_taken_again_and_the_old_token_fails<Q: InvocationQueue>(
    queue: &Q,
) {
    let env = unique_env("q-lease");
    let queued = queue_one(queue, new_queued(&env, 1, "{}")).await;
    let key = &queued.invocation.key;
    let first = lease_one(queue, &env, 100).await;
    let first_token = first.lease.expect("leased").token;
    // Its lease runs out at 1100: a worker that crashed holds it no longer.
    let second = lease_one(queue, &env, 1100).await;
    assert_eq!(second.attempts, 2);
    let second_token = second.lease.expect("leased").token;
    assert_ne!(first_token, second_token);
    assert!(!queue.finish(key, first_token).await.expect("finish"));
    assert!(queue.finish(key, second_token).await.expect("finish"));
    assert_eq!(queue.queued(key).await.expect("read"), None);
}

pub async fn a_lease_held_is_extended_and_one_taken_again_is_not<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-extend");
    let (key, token) = queued_and_leased(queue, &env).await;
    // Leased at 10 until 1010; extended, it holds past that.
    assert!(queue.extend(&key, token, 5_000).await.expect("extend"));
    assert_eq!(leased_count(queue, &env, 2_000).await, 0);
    let again = lease_one(queue, &env, 5_000).await;
    assert_eq!(again.attempts, 2);
    assert!(
        !queue.extend(&key, token, 9_000).await.expect("extend"),
        "the first lease is spent"
    );
}

pub async fn a_retry_waits_for_its_due_time_and_keeps_its_attempts<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-retry");
    let (key, token) = queued_and_leased(queue, &env).await;
    let key = &key;
    let history = [failed_attempt(1, "boom")];
    assert!(queue.retry(key, token, 500, &history).await.expect("retry"));
    let waiting = queue.queued(key).await.expect("read").expect("queued");
    assert_eq!(waiting.last_error().as_deref(), Some("boom"));
    assert_eq!(waiting.history, history);
    assert_eq!(waiting.lease, None);
    assert_eq!(leased_count(queue, &env, 499).await, 0);
    assert_eq!(lease_one(queue, &env, 500).await.attempts, 2);
    assert!(
        !queue.retry(key, token, 600, &[]).await.expect("retry"),
        "the first lease's token is spent"
    );
}

pub async fn dead_letters_are_listed_re_driven_and_purged<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-dead");
    let (key, token) = queued_and_leased(queue, &env).await;
    let key = &key;
    let history = [failed_attempt(1, "boom")];
    assert!(queue
        .dead_letter(key, token, "failed 3 times", &history)
        .await
        .expect("dead letter"));
    let dead = queue.dead_letters(&env).await.expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].dead.as_deref(), Some("failed 3 times"));
    assert_eq!(dead[0].history, history);
    assert_eq!(
        leased_count(queue, &env, 20).await,
        0,
        "dead letters do not run"
    );
    assert!(queue.redrive(key, 30).await.expect("redrive"));
    assert!(queue.dead_letters(&env).await.expect("list").is_empty());
    let again = lease_one(queue, &env, 30).await;
    assert_eq!(
        (again.attempts, again.history.len()),
        (1, 0),
        "a re-driven invocation starts its count again"
    );
    let token = again.lease.expect("leased").token;
    assert!(queue
        .dead_letter(key, token, "again", &[])
        .await
        .expect("dead"));
    assert_eq!(queue.purge_dead_letters(&env).await.expect("purge"), 1);
    assert_eq!(queue.queued(key).await.expect("read"), None);
}

pub async fn an_invocation_whose_age_ran_out_becomes_a_dead_letter<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-age");
    let mut new = new_queued(&env, 1, "{}");
    new.expires_at = 100;
    queue_one(queue, new.clone()).await;
    assert_eq!(leased_count(queue, &env, 150).await, 0, "too old to run");
    let expired: Vec<Queued> = queue
        .expire(150)
        .await
        .expect("expire")
        .into_iter()
        .filter(|q| q.invocation.key.env == env)
        .collect();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].dead.as_deref(), Some("expired"));
    let dead = queue.dead_letters(&env).await.expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].invocation.key, new.key);
}

pub async fn only_a_waiting_invocation_can_be_cancelled<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-cancel");
    let waiting = queue_one(queue, new_queued(&env, 5_000, "{}")).await;
    assert!(queue
        .cancel(&waiting.invocation.key, 10)
        .await
        .expect("cancel"));
    assert_eq!(
        queue.queued(&waiting.invocation.key).await.expect("read"),
        None
    );
    let running = queue_one(queue, new_queued(&env, 1, "{}")).await;
    lease_one(queue, &env, 10).await;
    assert!(!queue
        .cancel(&running.invocation.key, 20)
        .await
        .expect("cancel"));
    assert!(queue
        .cancel(&waiting.invocation.key, 20)
        .await
        .is_ok_and(|cancelled| !cancelled));
}

pub async fn concurrent_lessees_take_each_invocation_once<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-many");
    let mut all = HashSet::new();
    for _ in 0..60 {
        all.insert(
            queue_one(queue, new_queued(&env, 1, "{}"))
                .await
                .invocation
                .key,
        );
    }
    let lessee = || async {
        let mut taken = Vec::new();
        loop {
            let leased = queue.lease(10, 5, 60_000, &[]).await.expect("lease");
            if leased.is_empty() {
                return taken;
            }
            let mine = leased.into_iter().filter(|q| q.invocation.key.env == env);
            for queued in mine {
                let token = queued.lease.expect("leased").token;
                assert!(queue
                    .finish(&queued.invocation.key, token)
                    .await
                    .expect("finish"));
                taken.push(queued.invocation.key);
            }
        }
    };
    let taken = futures_util::future::join_all((0..4).map(|_| lessee())).await;
    let taken: Vec<QueueKey> = taken.into_iter().flatten().collect();
    assert_eq!(taken.len(), all.len(), "each invocation taken once");
    assert_eq!(taken.into_iter().collect::<HashSet<_>>(), all);
}

pub async fn concurrent_enqueues_are_each_accepted_once<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-burst");
    let burst: Vec<NewQueued> = (0..200).map(|_| new_queued(&env, 1, "{}")).collect();
    let first =
        futures_util::future::join_all(burst.iter().map(|n| queue.enqueue(n.clone()))).await;
    assert!(first.iter().all(|e| matches!(e, Ok(Enqueued::New(_)))));
    let again =
        futures_util::future::join_all(burst.iter().map(|n| queue.enqueue(n.clone()))).await;
    assert!(again.iter().all(|e| matches!(e, Ok(Enqueued::Existing(_)))));
    for new in &burst {
        let stored = queue.queued(&new.key).await.expect("read");
        assert_eq!(stored.map(|q| q.invocation).as_ref(), Some(new));
    }
}

pub async fn a_skipped_function_is_not_leased_and_the_others_are<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-skip");
    let mut busy = new_queued(&env, 1, "{}");
    busy.function = function_name("busy");
    queue_one(queue, busy.clone()).await;
    let free = queue_one(queue, new_queued(&env, 2, "{}")).await;
    let skip = [(env.clone(), function_name("busy"))];
    let leased: Vec<QueueKey> = queue
        .lease(10, 1000, 1000, &skip)
        .await
        .expect("lease")
        .into_iter()
        .map(|q| q.invocation.key)
        .filter(|key| key.env == env)
        .collect();
    assert_eq!(leased, [free.invocation.key]);
    assert_eq!(lease_one(queue, &env, 20).await.invocation, busy);
}

pub async fn stats_count_each_functions_invocations_by_where_they_stand<Q: InvocationQueue>(
    queue: &Q,
) {
    let env = unique_env("q-stats");
    let mut first = new_queued(&env, 5, "{}");
    first.enqueued_at = 3;
    for new in [first, new_queued(&env, 6, "{}"), new_queued(&env, 7, "{}")] {
        queue_one(queue, new).await;
    }
    let leased = queue.lease(10, 2, 1000, &[]).await.expect("lease");
    let mine: Vec<&Queued> = leased
        .iter()
        .filter(|q| q.invocation.key.env == env)
        .collect();
    assert_eq!(mine.len(), 2);
    let retried = mine[0];
    let token = retried.lease.expect("leased").token;
    queue
        .retry(
            &retried.invocation.key,
            token,
            500,
            &[failed_attempt(1, "x")],
        )
        .await
        .expect("retry");
    let stats = queue.stats(&env, 20).await.expect("stats");
    assert_eq!(
        stats,
        [FunctionQueueStats {
            function: function_name("add"),
            queued: 1,
            running: 1,
            retrying: 1,
            dead_letters: 0,
            oldest_enqueued_at: Some(3),
        }]
    );
    let depth = queue.depths().await.expect("depths");
    assert!(depth.contains(&(env.clone(), 3)), "{depth:?}");
}

pub async fn stats_of_a_function_none_of_whose_invocations_runs_count_none_running<
    Q: InvocationQueue,
>(
    queue: &Q,
) {
    let env = unique_env("q-stats-idle");
    queue_one(queue, new_queued(&env, 5, "{}")).await;
    let stats = queue.stats(&env, 20).await.expect("stats");
    assert_eq!(
        stats,
        [FunctionQueueStats {
            function: function_name("add"),
            queued: 1,
            running: 0,
            retrying: 0,
            dead_letters: 0,
            oldest_enqueued_at: Some(5),
        }]
    );
}

pub async fn a_lease_given_back_counts_no_attempt<Q: InvocationQueue>(queue: &Q) {
    let env = unique_env("q-release");
    let (key, token) = queued_and_leased(queue, &env).await;
    assert!(queue.release(&key, token).await.expect("release"));
    assert!(
        !queue.release(&key, token).await.expect("release"),
        "the token is spent"
    );
    let again = lease_one(queue, &env, 20).await;
    assert_eq!(again.attempts, 1, "the given-back lease was no attempt");
}
