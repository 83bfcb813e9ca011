//! Instances a limit stopped are freed on a thread of their own.
//!
//! Freeing a QuickJS runtime walks everything it holds: a heap at its memory
//! limit, or a million promise jobs a function queued before its deadline,
//! takes a noticeable time to free, which must not be spent on a worker that
//! serves requests. Healthy instances (reaped idle, retired with an old
//! version) are small and are freed where they are dropped.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

use super::instance::Instance;

/// Discarded instances waiting to be freed; past this, the caller frees its own.
const BACKLOG: usize = 64;

/// Frees `instance` off the calling thread when the freeing thread can take it.
pub(crate) fn discard(instance: Instance) {
    static FREEING: OnceLock<Option<SyncSender<Instance>>> = OnceLock::new();
    let sender = FREEING.get_or_init(|| {
        let (sender, receiver) = sync_channel::<Instance>(BACKLOG);
        std::thread::Builder::new()
            .name("cloudlet-discard".into())
            .spawn(move || receiver.into_iter().for_each(drop))
            .ok()
            .map(|_| sender)
    });
    match sender {
        Some(sender) => match sender.try_send(instance) {
            Ok(()) => {}
            Err(TrySendError::Full(instance) | TrySendError::Disconnected(instance)) => {
                drop(instance)
            }
        },
        None => drop(instance),
    }
}
