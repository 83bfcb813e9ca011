//! Batching writes to the disk, one thread per stream of writes, in the two
//! modes a store needs: lossless (`lossless.rs`: every caller waits for its
//! write's commit, and the writes that arrive together share one; the
//! invocation queue's) and lossy (`lossy.rs`: callers never wait, and what
//! their writer cannot keep up with is dropped, oldest first, and counted;
//! the invocation records'). The backend supplies only the commit: SQLite's
//! in `sqlite/group_commit.rs` and `sqlite/writer.rs`; a PostgreSQL backend
//! would supply its own.

mod lossless;
mod lossy;

pub use lossless::{Committer, Lossless};
pub use lossy::{Lossy, LossyState, Numbered, Weighed};
