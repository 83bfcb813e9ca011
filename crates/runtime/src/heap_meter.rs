//! The heap an invocation grows, counted where QuickJS's own accounting cannot.
//!
//! An instance's allocator (`js/allocator.rs`) holds what QuickJS allocates
//! itself to the function's memory limit, but the Node-compatible modules
//! create `Buffer`s, typed arrays and crypto outputs from Rust vectors that
//! QuickJS only points at: a loop of
//! `Buffer.alloc(16 << 20)` would otherwise grow the server by gigabytes while
//! the function's own heap stays small.
//!
//! [`HeapMeter`] wraps the process's global allocator. While a thread runs an
//! instance's JavaScript (inside an [`Window`]), every allocation and free on
//! that thread moves the window's net count; when the count passes the
//! function's memory limit, [`over_budget`] turns true, and the engine then
//! refuses QuickJS's next allocation and stops the code at its next interrupt
//! check, as the memory limit does. Frees of older memory during the window
//! lower the count, so it never reaches the limit unless the heap really grew
//! by that much. Without the meter installed as the global allocator, nothing
//! is counted and only the allocator's limit applies.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

thread_local! {
    /// Bytes the window in progress on this thread may still allocate: its
    /// limit less its net count. Outside windows it sits far above any limit
    /// ([`OUTSIDE`]); allocations move it all the same, and no count reads it.
    /// One value, so that every allocation of the process touches a single
    /// thread-local.
    static ROOM: Cell<isize> = const { Cell::new(OUTSIDE) };
}

/// ROOM outside windows. Window limits are a function's memory limit, far
/// below half of it, so ROOM above half of it means "no window".
const OUTSIDE: isize = isize::MAX / 2;

/// ROOM once a window has tripped: far below zero, whatever is freed later.
const TRIPPED: isize = isize::MIN / 2;

fn in_window(room: isize) -> bool {
    room < OUTSIDE / 2
}

fn record(delta: isize) {
    ROOM.set(ROOM.get().saturating_sub(delta));
}

/// True inside a window whose net count has passed its limit.
pub(crate) fn over_budget() -> bool {
    ROOM.get() < 0
}

/// Whether `bytes` more fit under the window's limit, asked before a native
/// allocation of a size function code chose (`Buffer.alloc(n)`): the meter
/// only sees an allocation once it has happened, and one of many gigabytes
/// must not happen at all. One that does not fit trips the window.
pub(crate) fn reserve(bytes: f64) -> bool {
    let room = ROOM.get();
    if !in_window(room) {
        return true;
    }
    let fits = bytes <= room as f64;
    if !fits {
        trip();
    }
    fits
}

/// Keeps the window over budget for the rest of its count, even after the
/// memory that passed the limit is freed (a refused allocation usually frees
/// the buffer it was for): the invocation has failed on its memory limit, and
/// whatever it does next is refused and reported as such.
pub(crate) fn trip() {
    if in_window(ROOM.get()) {
        ROOM.set(TRIPPED);
    }
}

/// A global allocator that counts what is allocated inside windows (see the
/// module docs). Install it in the binary:
///
/// ```text
/// #[global_allocator]
/// static GLOBAL: cloudlet_runtime::HeapMeter<mimalloc::MiMalloc> =
///     cloudlet_runtime::HeapMeter(mimalloc::MiMalloc);
/// ```
pub struct HeapMeter<A>(pub A);

// SAFETY: every call is forwarded to the wrapped allocator unchanged; the
// counting touches only const-initialised thread-locals without destructors,
// which on targets with native thread-local storage (Linux, macOS, Windows)
// never allocate, so the allocator is not re-entered.
// (A global allocator can only be written with `unsafe`.)
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for HeapMeter<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = self.0.alloc(layout);
        if !ptr.is_null() {
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = self.0.alloc_zeroed(layout);
        if !ptr.is_null() {
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = self.0.realloc(ptr, layout, new_size);
        if !new.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// A stretch of one instance's JavaScript on this thread. The count carries
/// over between the windows of one invocation (a timer turn continues it).
pub(crate) struct Window<'a> {
    count: &'a Cell<isize>,
    limit: isize,
}

impl<'a> Window<'a> {
    /// Starts counting on this thread from `count`, against `limit` bytes.
    pub(crate) fn open(count: &'a Cell<isize>, limit: usize) -> Self {
        let limit = isize::try_from(limit)
            .unwrap_or(OUTSIDE / 4)
            .min(OUTSIDE / 4);
        ROOM.set(limit.saturating_sub(count.get()).max(TRIPPED));
        Self { count, limit }
    }
}

impl Drop for Window<'_> {
    fn drop(&mut self) {
        self.count.set(self.limit.saturating_sub(ROOM.get()));
        ROOM.set(OUTSIDE);
    }
}
