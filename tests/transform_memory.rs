//! Memory: decompression bombs are refused without large allocations.
//!
//! Its own test binary because the allocation tracking is a
//! `#[global_allocator]`, which applies to every test in a binary.

mod transform_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use transform_support::*;

// --- allocation tracking (largest single allocation per thread) ----------

struct Tracking;
thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}
fn note(size: usize) {
    let _ = LARGEST.try_with(|m| {
        if size > m.get() {
            m.set(size)
        }
    });
}
// SAFETY: forwards to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new);
        unsafe { System.realloc(p, l, new) }
    }
}
#[global_allocator]
static TRACKING: Tracking = Tracking;

#[test]
fn png_metadata_bombs_stay_small() {
    // 200 MB of zeros in a zTXt and in an iCCP chunk of a tiny image.
    let z = zlib_zeros(200 << 20);
    for (ty, prefix) in [(b"zTXt", &b"Comment\0\0"[..]), (b"iCCP", &b"icc\0\0"[..])] {
        let mut chunk = prefix.to_vec();
        chunk.extend_from_slice(&z);
        let src = raw_png(4, 4, 8, 0, false, &[(ty, chunk)], |_, _| vec![7]);
        LARGEST.with(|m| m.set(0));
        let t0 = Instant::now();
        let r = transform(
            &src,
            &opts(Some(2), None, Fit::Inside, None),
            &Limits::default(),
        );
        let largest = LARGEST.with(|m| m.get());
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{ty:?}: {:?}",
            t0.elapsed()
        );
        // bounded by the decoder budget (64 MiB plus growth slack), not 200 MB
        assert!(
            largest <= 80 << 20,
            "{ty:?}: allocated {largest} bytes at once ({r:?})"
        );
    }
}

#[test]
fn png_bomb_refused_fast_without_big_allocation() {
    // Sanity-check the bomb generator on a small size: it must really
    // inflate to a valid all-black image.
    let small = png_bomb(300);
    let img = decode(&small);
    assert_eq!(img.dimensions(), (300, 300));
    assert!(img.pixels().all(|p| p.0 == [0, 0, 0, 255]));

    let bomb = png_bomb(20_000);
    assert!(bomb.len() < 500_000, "bomb is {} bytes", bomb.len());
    let o = opts(Some(100), None, Fit::Inside, None);
    LARGEST.with(|m| m.set(0));
    let t0 = Instant::now();
    let r = transform(&bomb, &o, &Limits::default());
    let elapsed = t0.elapsed();
    let largest = LARGEST.with(|m| m.get());
    assert!(
        matches!(
            r,
            Err(PipelineError::TooManyPixels {
                width: 20_000,
                height: 20_000,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    assert!(largest < 1 << 20, "allocated {largest} bytes at once");
}
