//! The process's memory allocator: mimalloc for the many small
//! allocations of serving requests, the system's (glibc) for large
//! buffers.
//!
//! Why two: a cached image served costs some thirty allocations and frees
//! (request, headers, routing, futures), and glibc's malloc spent about a
//! quarter of a standalone node's instructions per hit on them; mimalloc
//! spends far fewer (callgrind, 2,000 keep-alive hits of a 43 KB JPEG,
//! release build: standalone 84.7 k -> 73.1 k instructions per request,
//! gateway 160 k -> 143 k; issue 9). But mimalloc keeps freed large
//! buffers around for reuse, and decoded frames of large photos are tens
//! of megabytes: with mimalloc alone, 32 simultaneous 6 MP transforms grew
//! a worker past what `tests/http_memory.rs` allows (224 MB against 222).
//! Buffers of [`LARGE`] and more therefore go to glibc, which `main`
//! tunes to map each of them on its own and unmap it when freed, as
//! before mimalloc.
//!
//! The choice is made from the allocation's size, which Rust passes again
//! when it frees or grows an allocation, so each buffer is always returned
//! to the allocator it came from.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Allocations of this size and more go to the system allocator: the same
/// bound as glibc's mmap threshold that `main` sets (frames of large
/// photos; the 3 MB frames of ordinary thumbnails stay below it).
pub const LARGE: usize = 4 << 20;

/// mimalloc below [`LARGE`], the system allocator from it on.
pub struct Allocator;

fn is_large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY: every call is passed to one of two allocators that implement
// `GlobalAlloc` themselves, chosen by the layout's size. Rust gives
// `dealloc` and `realloc` the layout the block was allocated with, so a
// block is always freed or grown by the allocator that made it; a
// `realloc` that crosses `LARGE` moves the block from one allocator to the
// other by allocating, copying the smaller of the two sizes, and freeing.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match is_large(layout.size()) {
            true => System.alloc(layout),
            false => MiMalloc.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match is_large(layout.size()) {
            true => System.alloc_zeroed(layout),
            false => MiMalloc.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match is_large(layout.size()) {
            true => System.dealloc(ptr, layout),
            false => MiMalloc.dealloc(ptr, layout),
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_large(layout.size()), is_large(new_size)) {
            (true, true) => System.realloc(ptr, layout, new_size),
            (false, false) => MiMalloc.realloc(ptr, layout, new_size),
            _ => {
                let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
                    return std::ptr::null_mut();
                };
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates `size` bytes filled with a pattern, grows or shrinks the
    /// block to `new_size` and checks the kept bytes, then frees it.
    fn round_trip(size: usize, new_size: usize) {
        let layout = Layout::from_size_align(size, 16).unwrap();
        // SAFETY: the block is used within its layout and freed once, with
        // the layout it has at that time.
        unsafe {
            let p = Allocator.alloc(layout);
            assert!(!p.is_null());
            for i in (0..size).step_by(4093) {
                *p.add(i) = (i % 251) as u8;
            }
            let q = Allocator.realloc(p, layout, new_size);
            assert!(!q.is_null());
            for i in (0..size.min(new_size)).step_by(4093) {
                assert_eq!(
                    *q.add(i),
                    (i % 251) as u8,
                    "byte {i} of {size} -> {new_size}"
                );
            }
            Allocator.dealloc(q, Layout::from_size_align(new_size, 16).unwrap());
        }
    }

    #[test]
    fn blocks_keep_their_bytes_within_and_across_the_large_bound() {
        let small = 64 << 10;
        round_trip(small, 2 * small);
        round_trip(LARGE, 2 * LARGE);
        round_trip(small, LARGE + 1);
        round_trip(LARGE + 1, small);
        round_trip(LARGE - 1, LARGE);
    }

    #[test]
    fn zeroed_blocks_are_zero_on_both_sides() {
        for size in [4096, LARGE] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: read within the layout, freed once with it.
            unsafe {
                let p = Allocator.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert!((0..size).step_by(1021).all(|i| *p.add(i) == 0));
                Allocator.dealloc(p, layout);
            }
        }
    }
}
