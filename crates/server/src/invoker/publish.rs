//! Published messages: a message to a topic goes to every current function
//! of its env that subscribes to it (`config.json` triggers of `"type":
//! "topic"`, MQTT filters with `+` and `#`), each delivery an asynchronous
//! invocation on the durable queue, with its retries, dead letters and
//! record. The sender gets the message's ID, never a result, as Link IoT
//! Edge's one-way messages have it. A topic nobody subscribes to keeps
//! nothing.
//!
//! Messages come from clients (the native API's `…/topics/{topic}/messages`,
//! the TCB admin route) and from functions (`IoTData.publish`, through their
//! chain link, so that their deliveries are calls one level deeper and a
//! function that republishes what it gets stops at the depth limit).
//!
//! A delivery's request ID is `msg:{messageId}:{function}`, so that a
//! sender that publishes again with the same message ID (`X-Request-Id`)
//! after a failure queues each delivery once. Its record names the topic
//! (`topic:{topic}` as its trigger).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cloudlet_core::{
    check_topic, EnvId, ErrorCode, FunctionKind, FunctionName, RequestId, TopicFilter,
};
use cloudlet_runtime::{Origin, Publication};
use cloudlet_store::FunctionStore;
use parking_lot::Mutex;

use super::{InvokeContext, InvokeError, Invoker, Qualifier, Target};
use crate::auth::Access;

impl Invoker {
    /// Queues `message` (whose ID is `id`) for each subscriber of its topic
    /// in `access`'s env, with `origin` for who sent it; returns how many
    /// there were. A delivery that cannot be queued (the env's queue is
    /// full) fails the publish, after the others were queued.
    pub(crate) async fn publish(
        &self,
        access: &Access,
        id: &RequestId,
        message: Publication,
        origin: Origin,
    ) -> Result<usize, InvokeError> {
        check_topic(&message.topic)
            .map_err(|e| InvokeError::new(ErrorCode::InvalidParam, e.to_string()))?;
        // Checked once, however many subscribers share it.
        let (event, kind) = self.checked_event(message.event)?;
        let subscribers = self
            .subscriptions
            .of(access.env(), self.functions.as_ref())
            .await?;
        let trigger = format!("topic:{}", message.topic);
        // All at once, so that the deliveries share the queue's synced commits
        // rather than wait for one each.
        let deliveries = subscribers
            .iter()
            .filter(|subscriber| subscriber.wants(&message.topic))
            .map(|subscriber| {
                let target = Target {
                    access: access.clone(),
                    name: subscriber.name.clone(),
                    qualifier: Qualifier::Latest,
                };
                let request_id =
                    RequestId::derived("msg", &format!("msg:{id}:{}", subscriber.name));
                let mut context = InvokeContext::new(request_id, trigger.clone());
                context.origin = origin.clone();
                let event = event.clone();
                async move { self.enqueue_checked(target, event, kind, &context).await }
            });
        let outcomes = futures_util::future::join_all(deliveries).await;
        let delivered = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let failed = outcomes.into_iter().find_map(Result::err);
        match failed {
            Some(error) => Err(error),
            None => Ok(delivered),
        }
    }
}

/// A function of an env that subscribes to topics, with its filters.
pub(super) struct Subscriber {
    name: FunctionName,
    filters: Vec<TopicFilter>,
}

impl Subscriber {
    fn wants(&self, topic: &str) -> bool {
        self.filters.iter().any(|filter| filter.matches(topic))
    }
}

/// Each env's subscribers, as its current versions' topic triggers say,
/// read from the store on an env's first message and kept until a deploy or
/// a removal in it: a message then costs no read of every function.
#[derive(Default)]
pub(super) struct Subscriptions {
    by_env: Mutex<HashMap<EnvId, Arc<[Subscriber]>>>,
    /// Counts deploys and removals, so that a read that one overtook is
    /// used once and not kept.
    changes: AtomicU64,
}

impl Subscriptions {
    /// A deploy or a removal in `env` may have changed its subscribers.
    pub(super) fn changed(&self, env: &EnvId) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.by_env.lock().remove(env);
    }

    async fn of(
        &self,
        env: &EnvId,
        store: &dyn FunctionStore,
    ) -> Result<Arc<[Subscriber]>, InvokeError> {
        if let Some(kept) = self.by_env.lock().get(env) {
            return Ok(Arc::clone(kept));
        }
        let seen = self.changes.load(Ordering::SeqCst);
        let functions = store
            .functions(env)
            .await
            .map_err(InvokeError::storage)?
            .unwrap_or_default();
        let subscribers: Arc<[Subscriber]> = functions
            .into_iter()
            .filter_map(|function| {
                let config = &function.current.config;
                // Deploys refuse triggers on HTTP functions, which have no
                // event handler to deliver to.
                let filters: Vec<TopicFilter> = config
                    .triggers
                    .iter()
                    .filter_map(|trigger| trigger.topic_filter())
                    .collect();
                (config.kind == FunctionKind::Event && !filters.is_empty()).then_some(Subscriber {
                    name: function.name,
                    filters,
                })
            })
            .collect();
        let mut by_env = self.by_env.lock();
        if self.changes.load(Ordering::SeqCst) == seen {
            by_env.insert(env.clone(), Arc::clone(&subscribers));
        }
        Ok(subscribers)
    }
}
