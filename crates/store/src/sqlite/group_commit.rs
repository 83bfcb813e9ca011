//! SQLite's side of lossless batching (`crate::batching`): a batch of
//! writes in one `IMMEDIATE` transaction on a connection of its own, whose
//! commit is synced (`schema::connect_durable`). A write that fails leaves
//! the others of its batch standing (SQLite undoes the failed statement
//! only); a commit that fails fails them all.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::batching::Committer;
use crate::{Result, StoreError};

/// Applies each write of a batch with `apply`, in one transaction.
pub(super) struct SqliteCommitter<W, A, F> {
    conn: Connection,
    apply: F,
    _writes: std::marker::PhantomData<fn(W) -> A>,
}

impl<W, A, F> SqliteCommitter<W, A, F>
where
    F: Fn(&Transaction<'_>, W) -> Result<A>,
{
    pub(super) fn new(conn: Connection, apply: F) -> Self {
        Self {
            conn,
            apply,
            _writes: std::marker::PhantomData,
        }
    }
}

impl<W, A, F> Committer for SqliteCommitter<W, A, F>
where
    W: Send + 'static,
    A: Send + 'static,
    F: Fn(&Transaction<'_>, W) -> Result<A> + Send + 'static,
{
    type Write = W;
    type Answer = A;

    fn commit(&mut self, writes: Vec<W>) -> Vec<Result<A>> {
        let failed = |why: String, n: usize| (0..n).map(|_| Err(StoreError(why.clone()))).collect();
        let count = writes.len();
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(error) => return failed(format!("cannot start a transaction: {error}"), count),
        };
        let answers: Vec<Result<A>> = writes
            .into_iter()
            .map(|write| (self.apply)(&tx, write))
            .collect();
        match tx.commit() {
            Ok(()) => answers,
            Err(error) => failed(format!("cannot commit: {error}"), count),
        }
    }
}
