//! QuickJS's allocator for one instance: Rust's global one (so QuickJS shares
//! the binary's allocator and its heap meter), holding the instance to its
//! memory limit.
//!
//! The limit is enforced here rather than by QuickJS's own
//! `JS_SetMemoryLimit`, so that a refusal is always seen: the allocator tells
//! the [`Watchdog`] the instance ran out of memory, and the invocation reports
//! `FUNCTION_MEMORY_LIMIT_EXCEEDED` even when the function catches the
//! `InternalError` QuickJS throws, or the refusal happens in a promise job
//! where nothing reports it. The bytes held are also what the engine's
//! server-wide memory budget counts ([`InstanceMemory`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rquickjs::allocator::{Allocator, RustAllocator};

use super::watchdog::{Stop, Watchdog};
use crate::heap_meter;

/// What QuickJS adds to each allocation in its own accounting; counted too,
/// so the limit means what `memorySize` meant with QuickJS's limit.
const PER_ALLOCATION_OVERHEAD: usize = 8;

/// The bytes an instance's QuickJS heap holds right now.
#[derive(Debug, Default)]
pub(crate) struct InstanceMemory {
    /// Written only by the allocator, under the runtime's lock (plain
    /// load-and-store, no read-modify-write: a warm invocation allocates dozens
    /// of times); read by anyone.
    held: AtomicUsize,
}

impl InstanceMemory {
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        self.held
            .store(self.held().saturating_add(bytes), Ordering::Relaxed);
    }

    fn sub(&self, bytes: usize) {
        self.held
            .store(self.held().saturating_sub(bytes), Ordering::Relaxed);
    }
}

pub(crate) struct MeteredAllocator {
    inner: RustAllocator,
    memory: Arc<InstanceMemory>,
    limit: usize,
    watchdog: Arc<Watchdog>,
}

impl MeteredAllocator {
    pub(crate) fn new(limit: usize, memory: Arc<InstanceMemory>, watchdog: Arc<Watchdog>) -> Self {
        Self {
            inner: RustAllocator,
            memory,
            limit,
            watchdog,
        }
    }

    /// Whether `bytes` more may be allocated. A refusal stops the instance:
    /// past its limit, or while the heap meter is over budget (memory QuickJS
    /// does not count, see `crate::heap_meter`).
    fn admit(&self, bytes: usize) -> bool {
        let fits = self.memory.held().saturating_add(bytes) <= self.limit;
        if fits && !heap_meter::over_budget() {
            return true;
        }
        heap_meter::trip();
        self.watchdog.stop(Stop::Memory);
        false
    }

    fn charged(size: usize) -> usize {
        size + PER_ALLOCATION_OVERHEAD
    }
}

// SAFETY: forwards to RustAllocator, only ever returning null instead of
// allocating, which QuickJS treats as an allocation failure; the sizes counted
// are RustAllocator's own usable sizes. (rquickjs's allocator trait is unsafe
// to implement.)
#[allow(unsafe_code)]
unsafe impl Allocator for MeteredAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(Self::charged(size)) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.alloc(size);
        if !ptr.is_null() {
            self.memory
                .add(Self::charged(unsafe { RustAllocator::usable_size(ptr) }));
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        if !self.admit(Self::charged(count.saturating_mul(size))) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.calloc(count, size);
        if !ptr.is_null() {
            self.memory
                .add(Self::charged(unsafe { RustAllocator::usable_size(ptr) }));
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        self.memory
            .sub(Self::charged(RustAllocator::usable_size(ptr)));
        self.inner.dealloc(ptr)
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // RustAllocator's realloc reads a header before `ptr`, so a null one is
        // a fresh allocation.
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let old = RustAllocator::usable_size(ptr);
        // Only growth is refused; shrinking always succeeds.
        if new_size > old && !self.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        let new = self.inner.realloc(ptr, new_size);
        if !new.is_null() {
            self.memory.sub(old);
            self.memory.add(RustAllocator::usable_size(new));
        }
        new
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        RustAllocator::usable_size(ptr)
    }
}
