//! Published messages: a message to a topic goes to every current function
//! of its env that subscribes to it (`config.json` triggers of `"type":
//! "topic"`, MQTT filters with `+` and `#`), each delivery an asynchronous
//! invocation on the durable queue, with its retries, dead letters and
//! record. The sender gets the message's ID, never a result, as Link IoT
//! Edge's one-way messages have it. A topic nobody subscribes to keeps
//! nothing.
//!
//! A delivery's request ID is `msg:{messageId}:{function}`, so that a
//! sender that publishes again with the same message ID (`X-Request-Id`)
//! after a failure queues each delivery once. Its record names the topic
//! (`topic:{topic}` as its trigger).

use bytes::Bytes;
use cloudlet_core::{check_topic, ErrorCode, RequestId};
use cloudlet_runtime::Event;
use cloudlet_store::invocation_queue::EventKind;

use crate::auth::Access;
use crate::invoker::{InvokeContext, InvokeError, Qualifier, Target};
use crate::App;

/// A message, as published.
pub(crate) struct Message {
    pub(crate) id: RequestId,
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) kind: EventKind,
}

/// Queues `message` for each subscriber of its topic in `access`'s env;
/// returns how many there were. A delivery that cannot be queued (the env's
/// queue is full) fails the publish, after the others were queued.
pub(crate) async fn publish(
    app: &App,
    access: &Access,
    message: Message,
) -> Result<usize, InvokeError> {
    check_topic(&message.topic)
        .map_err(|e| InvokeError::new(ErrorCode::InvalidParam, e.to_string()))?;
    let functions = app
        .functions
        .functions(access.env())
        .await
        .map_err(InvokeError::storage)?
        .unwrap_or_default();
    let subscribers = functions.iter().filter(|function| {
        function
            .current
            .config
            .triggers
            .iter()
            .filter_map(|trigger| trigger.topic_filter())
            .any(|filter| filter.matches(&message.topic))
    });
    // All at once, so that the deliveries share the queue's synced commits
    // rather than wait for one each.
    let deliveries = subscribers.map(|function| {
        let target = Target {
            access: access.clone(),
            name: function.name.clone(),
            qualifier: Qualifier::Latest,
        };
        let id = RequestId::parse(format!("msg:{}:{}", message.id, function.name))
            .unwrap_or_else(|_| RequestId::generate());
        let context = InvokeContext::new(id, format!("topic:{}", message.topic));
        let event = match message.kind {
            EventKind::Json => Event::Json(message.payload.clone()),
            EventKind::Text => Event::Text(String::from_utf8_lossy(&message.payload).into_owned()),
            EventKind::Binary => Event::Binary(message.payload.clone()),
        };
        async move { app.invoker.enqueue(target, event, &context).await }
    });
    let outcomes = futures_util::future::join_all(deliveries).await;
    let delivered = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let failed = outcomes.into_iter().find_map(Result::err);
    match failed {
        Some(error) => Err(error),
        None => Ok(delivered),
    }
}
