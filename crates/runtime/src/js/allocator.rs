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

/// The bytes an instance's QuickJS heap holds right now, as its allocator
/// last published them.
#[derive(Debug, Default)]
pub(crate) struct InstanceMemory {
    /// Written only by the allocator, under the runtime's lock, with a plain
    /// store (a warm invocation allocates dozens of times); read by anyone.
    held: AtomicUsize,
}

impl InstanceMemory {
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

pub(crate) struct MeteredAllocator {
    inner: RustAllocator,
    /// The count, kept here so that the hot path reads no other cache line;
    /// `memory` gets a copy after every change.
    held: usize,
    limit: usize,
    memory: Arc<InstanceMemory>,
    watchdog: Arc<Watchdog>,
}

/// RustAllocator's usable size for a request of `size` bytes (it rounds up to
/// 8), so that an allocation is counted without reading its header back.
#[inline]
fn usable(size: usize) -> usize {
    size.div_ceil(8) * 8
}

impl MeteredAllocator {
    pub(crate) fn new(limit: usize, memory: Arc<InstanceMemory>, watchdog: Arc<Watchdog>) -> Self {
        Self {
            inner: RustAllocator,
            held: 0,
            limit,
            memory,
            watchdog,
        }
    }

    /// Whether `bytes` more may be allocated. A refusal stops the instance:
    /// past its limit, or while the heap meter is over budget (memory QuickJS
    /// does not count, see `crate::heap_meter`).
    #[inline]
    fn admit(&self, bytes: usize) -> bool {
        if self.held.saturating_add(bytes) <= self.limit && !heap_meter::over_budget() {
            return true;
        }
        self.refuse()
    }

    #[cold]
    fn refuse(&self) -> bool {
        heap_meter::trip();
        self.watchdog.stop(Stop::Memory);
        false
    }

    #[inline]
    fn set_held(&mut self, held: usize) {
        self.held = held;
        self.memory.held.store(held, Ordering::Relaxed);
    }
}

// SAFETY: forwards to RustAllocator, only ever returning null instead of
// allocating, which QuickJS treats as an allocation failure; the sizes counted
// are RustAllocator's own usable sizes. (rquickjs's allocator trait is unsafe
// to implement.)
#[allow(unsafe_code)]
unsafe impl Allocator for MeteredAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let charged = usable(size) + PER_ALLOCATION_OVERHEAD;
        if !self.admit(charged) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.alloc(size);
        if !ptr.is_null() {
            self.set_held(self.held + charged);
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let charged = usable(count.saturating_mul(size)) + PER_ALLOCATION_OVERHEAD;
        if !self.admit(charged) {
            return std::ptr::null_mut();
        }
        let ptr = self.inner.calloc(count, size);
        if !ptr.is_null() {
            self.set_held(self.held + charged);
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        let freed = RustAllocator::usable_size(ptr) + PER_ALLOCATION_OVERHEAD;
        self.set_held(self.held.saturating_sub(freed));
        self.inner.dealloc(ptr)
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // RustAllocator's realloc reads a header before `ptr`, so a null one is
        // a fresh allocation.
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let old = RustAllocator::usable_size(ptr);
        let new = usable(new_size);
        // Only growth is refused; shrinking always succeeds.
        if new > old && !self.admit(new - old) {
            return std::ptr::null_mut();
        }
        let moved = self.inner.realloc(ptr, new_size);
        if !moved.is_null() {
            self.set_held(self.held.saturating_sub(old) + new);
        }
        moved
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        RustAllocator::usable_size(ptr)
    }
}
