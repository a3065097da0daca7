//! The plugin's global allocator on wasm32: size classes over a bump region, for an instance
//! that lives for one call (or one batch) and is then thrown away.
//!
//! Why not the default (wasi-libc's dlmalloc): the host instantiates the plugin fresh for every
//! event, so nothing is ever returned to the system and fragmentation has no time to matter,
//! yet dlmalloc's bin management was ~12% of the guest's instructions per call
//! (docs/performance.md, change 6). Here:
//! - a request of at most [`LARGEST_CLASS`] bytes and alignment at most [`ALIGN`] is rounded
//!   up to a power-of-two class; a freed block goes onto its class's free list and is handed
//!   out again first, so a long-lived instance (a batch on one instance) reuses memory
//!   instead of growing;
//! - a class with an empty list cuts its block from the current chunk (a bump pointer); chunks
//!   of [`CHUNK`] bytes come from the system allocator, so the instance's memory limit applies
//!   as before;
//! - bigger or more aligned requests go to the system allocator unchanged.
//!
//! What leaks: nothing the instance outlives. A chunk's unused tail (under [`LARGEST_CLASS`]
//! bytes) is left behind when a new chunk is cut, and class blocks are never returned to the
//! system allocator; both die with the instance.
//!
//! The wasm32-wasip2 target has no threads, so the state is a plain cell.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};

/// Alignment of every class block (and the most a class request may ask for).
const ALIGN: usize = 16;
/// Classes are 16, 32, ... 4096 bytes.
const CLASSES: usize = 9;
const LARGEST_CLASS: usize = ALIGN << (CLASSES - 1);
/// Bytes taken from the system allocator at a time for class blocks.
const CHUNK: usize = 64 * 1024;

struct State {
    /// Head of each class's free list; a free block's first word points to the next.
    free: [*mut u8; CLASSES],
    /// The unused part of the current chunk.
    next: *mut u8,
    end: *mut u8,
}

/// The allocator; `#[global_allocator]` in lib.rs, wasm32 only.
pub struct ClassAlloc(UnsafeCell<State>);

// SAFETY: wasm32-wasip2 is single-threaded: no two calls can reach the state at once.
unsafe impl Sync for ClassAlloc {}

impl ClassAlloc {
    /// An allocator with no chunk yet.
    pub const fn new() -> Self {
        ClassAlloc(UnsafeCell::new(State {
            free: [ptr::null_mut(); CLASSES],
            next: ptr::null_mut(),
            end: ptr::null_mut(),
        }))
    }
}

impl Default for ClassAlloc {
    fn default() -> Self {
        Self::new()
    }
}

/// The class of a request, or `None` when the system allocator takes it.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > LARGEST_CLASS || layout.align() > ALIGN {
        return None;
    }
    let size = layout.size().max(ALIGN).next_power_of_two();
    Some((size.trailing_zeros() - ALIGN.trailing_zeros()) as usize)
}

fn class_size(class: usize) -> usize {
    ALIGN << class
}

impl State {
    unsafe fn take(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if let Some(block) = NonNull::new(head) {
            // SAFETY: a listed block is a freed class block whose first word holds the next.
            self.free[class] = unsafe { block.cast::<*mut u8>().read() };
            return head;
        }
        let size = class_size(class);
        if (self.end as usize) - (self.next as usize) < size {
            // SAFETY: CHUNK and ALIGN make a valid layout.
            let chunk = unsafe { System.alloc(Layout::from_size_align_unchecked(CHUNK, ALIGN)) };
            if chunk.is_null() {
                return chunk;
            }
            self.next = chunk;
            self.end = chunk.wrapping_add(CHUNK);
        }
        let block = self.next;
        self.next = block.wrapping_add(size);
        block
    }

    unsafe fn give_back(&mut self, block: *mut u8, class: usize) {
        // SAFETY: `block` is a class block of at least ALIGN bytes no one uses any more.
        unsafe { block.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = block;
    }
}

// SAFETY: class blocks are ALIGN-aligned (chunks are, and every class size is a multiple of
// ALIGN) and at least as large as the request; everything else is the system allocator's.
unsafe impl GlobalAlloc for ClassAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            // SAFETY: single-threaded (see `Sync`), and no reference to the state outlives this.
            Some(class) => unsafe { (*self.0.get()).take(class) },
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => unsafe { (*self.0.get()).give_back(block, class) },
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` makes a valid layout with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // Same class: the block already has room (strings and vectors grow in place).
            (Some(old), Some(new)) if old == new => block,
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    let kept = layout.size().min(new_size);
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, kept);
                        self.dealloc(block, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_small_request_and_only_those() {
        for size in 0..=LARGEST_CLASS {
            for align in [1, 2, 4, 8, 16] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let class = class_of(layout).expect("small requests have a class");
                assert!(class_size(class) >= size.max(1));
                assert!(
                    class == 0 || class_size(class - 1) < size,
                    "smallest class for {size}"
                );
            }
        }
        assert_eq!(
            class_of(Layout::from_size_align(LARGEST_CLASS + 1, 1).unwrap()),
            None
        );
        assert_eq!(class_of(Layout::from_size_align(8, 32).unwrap()), None);
    }

    #[test]
    fn blocks_are_reused_and_never_overlap() {
        let alloc = ClassAlloc::new();
        let layout = Layout::from_size_align(100, 8).unwrap();
        unsafe {
            let a = alloc.alloc(layout);
            let b = alloc.alloc(layout);
            assert!(a as usize + 128 <= b as usize || b as usize + 128 <= a as usize);
            assert_eq!(a as usize % ALIGN, 0);
            a.write_bytes(0xAB, 100);
            alloc.dealloc(a, layout);
            assert_eq!(
                alloc.alloc(layout),
                a,
                "a freed block is handed out again first"
            );
            let grown = alloc.realloc(b, layout, 120);
            assert_eq!(grown, b, "growing within the class keeps the block");
            b.write_bytes(7, 120);
            let moved = alloc.realloc(b, Layout::from_size_align(120, 8).unwrap(), 5000);
            assert_eq!(std::slice::from_raw_parts(moved, 120), &[7; 120][..]);
            alloc.dealloc(moved, Layout::from_size_align(5000, 8).unwrap());
        }
    }
}
