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

use cloudlet_core::{check_topic, ErrorCode, FunctionKind, RequestId};
use cloudlet_runtime::{Origin, Publication};

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
        let functions = self
            .functions
            .functions(access.env())
            .await
            .map_err(InvokeError::storage)?
            .unwrap_or_default();
        let subscribers = functions.iter().filter(|function| {
            let config = &function.current.config;
            // Deploys refuse triggers on HTTP functions; one deployed before
            // that rule has no event handler to deliver to.
            config.kind == FunctionKind::Event
                && config
                    .triggers
                    .iter()
                    .filter_map(|trigger| trigger.topic_filter())
                    .any(|filter| filter.matches(&message.topic))
        });
        let trigger = format!("topic:{}", message.topic);
        // All at once, so that the deliveries share the queue's synced commits
        // rather than wait for one each.
        let deliveries = subscribers.map(|function| {
            let target = Target {
                access: access.clone(),
                name: function.name.clone(),
                qualifier: Qualifier::Latest,
            };
            let request_id = RequestId::parse(format!("msg:{id}:{}", function.name))
                .unwrap_or_else(|_| RequestId::generate());
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
