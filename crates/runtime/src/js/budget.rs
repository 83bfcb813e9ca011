//! The server-wide memory budget: what all of the engine's instances hold
//! together, as their allocators and the heap meter count it (not their
//! declared `memorySize`, so thousands of small instances still fit).
//!
//! Each instance carries a [`Charge`] that it updates after its creation and
//! after each invocation, and that gives its bytes back when the instance is
//! dropped. The engine asks [`MemoryBudget::has_room`] before each
//! invocation; past the budget it evicts idle instances, then lets the
//! invocation wait briefly, then refuses it with `EXCEED_MEMORY_BUDGET`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    held: AtomicUsize,
}

impl MemoryBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// What the instances hold together.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether `extra` bytes more fit in the budget.
    pub(crate) fn has_room(&self, extra: usize) -> bool {
        self.held().saturating_add(extra) <= self.limit
    }
}

/// One instance's share of the budget.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<MemoryBudget>,
    charged: usize,
}

impl Charge {
    pub(crate) fn new(budget: &Arc<MemoryBudget>) -> Self {
        Self {
            budget: Arc::clone(budget),
            charged: 0,
        }
    }

    /// Sets the instance's share to what it holds now. Changes under
    /// [`Charge::GRAIN`] are left for later: the shared count is one cache line
    /// every worker writes, and a warm invocation's heap moves by a few hundred
    /// bytes either way.
    pub(crate) fn set(&mut self, bytes: usize) {
        if bytes.abs_diff(self.charged) < Self::GRAIN {
            return;
        }
        self.set_exactly(bytes);
    }

    const GRAIN: usize = 4096;

    fn set_exactly(&mut self, bytes: usize) {
        if bytes == self.charged {
            return;
        }
        if bytes > self.charged {
            self.budget
                .held
                .fetch_add(bytes - self.charged, Ordering::Relaxed);
        } else {
            self.budget
                .held
                .fetch_sub(self.charged - bytes, Ordering::Relaxed);
        }
        self.charged = bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.set_exactly(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_are_given_back_on_drop() {
        let budget = MemoryBudget::new(100_000);
        let mut a = Charge::new(&budget);
        let mut b = Charge::new(&budget);
        a.set(60_000);
        b.set(30_000);
        assert_eq!(budget.held(), 90_000);
        assert!(budget.has_room(10_000));
        assert!(!budget.has_room(10_001));
        a.set(20_000);
        assert_eq!(budget.held(), 50_000);
        // A change under the grain waits for a larger one.
        a.set(20_100);
        assert_eq!(budget.held(), 50_000);
        drop(b);
        assert_eq!(budget.held(), 20_000);
        drop(a);
        assert_eq!(budget.held(), 0);
    }
}
