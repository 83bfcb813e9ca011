//! Group commit: the writes of many callers in one transaction, one sync.
//!
//! A synced commit costs a trip to the disk, whatever it holds. A caller
//! hands its write to one thread with a connection of its own; the thread
//! takes every write that is waiting (up to `batch_max`), applies them in one
//! transaction, commits, and only then answers each caller. Under load, the
//! writes that arrive during one commit make up the next, so the number of
//! syncs per second stays what the disk allows while the writes per second
//! grow with the callers. Nothing is dropped: a caller waits for its answer,
//! and the bounded channel holds callers back when the thread falls behind.

use std::thread::JoinHandle;

use parking_lot::Mutex;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::DbContext;
use crate::{Result, StoreError};

/// Writes waiting for the thread, at most; callers wait beyond that.
const WAITING_MAX: usize = 4096;

type Job<T, R> = (T, oneshot::Sender<Result<R>>);

/// One thread committing the writes of many callers. See the module documentation.
pub(super) struct GroupCommit<T, R> {
    jobs: Mutex<Option<mpsc::Sender<Job<T, R>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the thread `name` on `conn`, applying each write with `apply`.
    pub(super) fn start<F>(name: &str, conn: Connection, batch_max: usize, apply: F) -> Result<Self>
    where
        F: Fn(&Transaction<'_>, T) -> Result<R> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(WAITING_MAX);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(conn, receiver, batch_max.max(1), apply))
            .ctx("cannot start the group-commit thread")?;
        Ok(Self {
            jobs: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Applies `write` and waits until its transaction is committed.
    pub(super) async fn write(&self, write: T) -> Result<R> {
        let closed = || StoreError("the store is closed".into());
        let jobs = self.jobs.lock().clone().ok_or_else(closed)?;
        let (answer, answered) = oneshot::channel();
        jobs.send((write, answer)).await.map_err(|_| closed())?;
        answered.await.map_err(|_| closed())?
    }

    /// Commits what is waiting and stops the thread. Blocking; idempotent.
    pub(super) fn close(&self) -> Result<()> {
        self.jobs.lock().take();
        match self.thread.lock().take() {
            Some(thread) => thread
                .join()
                .map_err(|_| StoreError("the group-commit thread panicked".into())),
            None => Ok(()),
        }
    }
}

/// The thread: a batch of whatever waits, one transaction, then the answers.
fn run<T, R, F>(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<Job<T, R>>,
    batch_max: usize,
    apply: F,
) where
    F: Fn(&Transaction<'_>, T) -> Result<R>,
{
    let mut batch = Vec::with_capacity(batch_max);
    while jobs.blocking_recv_many(&mut batch, batch_max) > 0 {
        let answers = commit(&mut conn, &mut batch, &apply);
        for (answer, result) in answers {
            // A caller that went away no longer needs its answer.
            let _ = answer.send(result);
        }
    }
}

/// Applies and commits `batch`; every write's answer, or the commit's
/// failure for all of them.
fn commit<T, R, F>(
    conn: &mut Connection,
    batch: &mut Vec<Job<T, R>>,
    apply: &F,
) -> Vec<(oneshot::Sender<Result<R>>, Result<R>)>
where
    F: Fn(&Transaction<'_>, T) -> Result<R>,
{
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return fail_all(batch, &format!("cannot start a transaction: {error}")),
    };
    let applied: Vec<_> = batch
        .drain(..)
        .map(|(write, answer)| (answer, apply(&tx, write)))
        .collect();
    match tx.commit() {
        Ok(()) => applied,
        Err(error) => {
            let failed = format!("cannot commit: {error}");
            applied
                .into_iter()
                .map(|(answer, _)| (answer, Err(StoreError(failed.clone()))))
                .collect()
        }
    }
}

fn fail_all<T, R>(
    batch: &mut Vec<Job<T, R>>,
    why: &str,
) -> Vec<(oneshot::Sender<Result<R>>, Result<R>)> {
    batch
        .drain(..)
        .map(|(_, answer)| (answer, Err(StoreError(why.to_owned()))))
        .collect()
}
