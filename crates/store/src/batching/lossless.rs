//! Lossless batching: the writes of many callers in one commit, whatever the
//! backend.
//!
//! A durable commit costs a trip to the disk, whatever it holds. A caller
//! hands its write to one thread, which takes every write that is waiting
//! (up to `batch_max`), has the backend's [`Committer`] apply them in one
//! transaction and commit it, and only then answers each caller. Under
//! load, the writes that arrive during one commit make up the next, so the
//! number of commits per second stays what the disk allows while the writes
//! per second grow with the callers. Nothing is dropped: a caller waits for
//! its answer, and the bounded channel holds callers back when the thread
//! falls behind.

use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Writes waiting for the thread, at most; callers wait beyond that.
const WAITING_MAX: usize = 4096;

/// A backend's side of a batch: applies writes in one transaction.
pub trait Committer: Send + 'static {
    type Write: Send + 'static;
    type Answer: Send + 'static;

    /// Applies `writes` in one transaction and commits it: one answer per
    /// write, in order; the commit's failure for each, if it failed.
    fn commit(&mut self, writes: Vec<Self::Write>) -> Vec<Result<Self::Answer>>;
}

type Job<C> = (
    <C as Committer>::Write,
    oneshot::Sender<Result<<C as Committer>::Answer>>,
);

/// One thread committing the writes of many callers. See the module documentation.
pub struct Lossless<C: Committer> {
    jobs: Mutex<Option<mpsc::Sender<Job<C>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<C: Committer> Lossless<C> {
    /// Starts the thread `name`, committing through `committer`.
    pub fn start(name: &str, committer: C, batch_max: usize) -> Result<Self> {
        let (sender, receiver) = mpsc::channel(WAITING_MAX);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(committer, receiver, batch_max.max(1)))
            .map_err(|e| StoreError(format!("cannot start the {name} thread: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Applies `write` and waits until its transaction is committed.
    pub async fn write(&self, write: C::Write) -> Result<C::Answer> {
        let closed = || StoreError("the store is closed".into());
        let jobs = self.jobs.lock().clone().ok_or_else(closed)?;
        let (answer, answered) = oneshot::channel();
        jobs.send((write, answer)).await.map_err(|_| closed())?;
        answered.await.map_err(|_| closed())?
    }

    /// Commits what is waiting and stops the thread. Blocking; idempotent.
    pub fn close(&self) -> Result<()> {
        self.jobs.lock().take();
        match self.thread.lock().take() {
            Some(thread) => thread
                .join()
                .map_err(|_| StoreError("a batching thread panicked".into())),
            None => Ok(()),
        }
    }
}

/// The thread: a batch of whatever waits, one commit, then the answers.
fn run<C: Committer>(mut committer: C, mut jobs: mpsc::Receiver<Job<C>>, batch_max: usize) {
    let mut batch = Vec::with_capacity(batch_max);
    while jobs.blocking_recv_many(&mut batch, batch_max) > 0 {
        let (writes, answers): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let mut results = committer.commit(writes).into_iter();
        for answer in answers {
            let result = results
                .next()
                .unwrap_or_else(|| Err(StoreError("a write of the batch got no answer".into())));
            // A caller that went away no longer needs its answer.
            let _ = answer.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::{Committer, Lossless};
    use crate::Result;

    /// Doubles each write, counting commits.
    struct Doubling(Arc<AtomicUsize>);

    impl Committer for Doubling {
        type Write = u32;
        type Answer = u32;

        fn commit(&mut self, writes: Vec<u32>) -> Vec<Result<u32>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            writes.into_iter().map(|w| Ok(w * 2)).collect()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_each_gets_its_own_answer() {
        let commits = Arc::new(AtomicUsize::new(0));
        let batcher =
            Arc::new(Lossless::start("test", Doubling(Arc::clone(&commits)), 64).unwrap());
        let writes = (0..200u32).map(|n| {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move { (n, batcher.write(n).await.unwrap()) })
        });
        for done in futures_util::future::join_all(writes).await {
            let (n, answer) = done.unwrap();
            assert_eq!(answer, n * 2);
        }
        assert!(
            commits.load(Ordering::SeqCst) < 200,
            "writes shared commits"
        );
        batcher.close().unwrap();
        assert!(
            batcher.write(1).await.is_err(),
            "a closed batcher takes nothing"
        );
    }
}
