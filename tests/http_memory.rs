//! Peak memory of a node under a burst of large photos. In a file (so a
//! test binary) of its own: its 33 full-size re-encodes keep both CPUs
//! busy, which would skew the timing bounds of tests running beside it.

mod common;

use common::answer::*;
use common::*;
use img_proxy_test_support::*;

/// Peak resident memory of a running node, from `/proc/<pid>/status`.
fn peak_rss_bytes(node: &Node) -> u64 {
    let pid = node.child.as_ref().and_then(|c| c.id()).expect("node runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb * 1024
}

/// 32 requests for large photos at once: the pool decodes only one per CPU
/// at a time and the rest wait as compressed bytes, so the worker's peak
/// memory grows by a few decodes' worth, not by 32. Self-calibrating: one
/// request alone first measures what a single decode costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peak_memory_stays_bounded_when_32_large_photos_arrive_at_once() {
    let origin = Origin::start().await;
    // Every one of the 32 must be admitted and decoded for the peak to
    // mean anything: on a slow (debug, shared) machine the last ones wait
    // past the default 5 s QUEUE_TIMEOUT and would be refused (503).
    let node = standalone("memory", &[("QUEUE_TIMEOUT", "30s".into())]).await;
    // 3000x2000 (6 MP, 18 MB as RGB), re-encoded at 32 qualities: each
    // variant is a full-size decode and encode (no DCT scaling, no resize,
    // which keeps the debug-build test fast).
    let (sw, sh) = (3000u16, 2000u16);
    let path = origin.put("big.jpg", quadrant_jpeg(sw, sh), "image/jpeg");
    let src = origin.url(&path);
    let base = peak_rss_bytes(&node);
    let a = ask(&node, &src, &[("q", "49")]).await;
    a.image("image/jpeg", (3000, 2000), "single");
    let single = peak_rss_bytes(&node).saturating_sub(base).max(1);
    let frame = u64::from(sw) * u64::from(sh) * 3;
    assert!(
        single >= frame,
        "one full-size decode grew the node by only {single} bytes"
    );

    let n = 32;
    let tasks = ask_all_at_once(&node, &src, "q", (0..n).map(|i| (50 + i).to_string()));
    for t in tasks {
        let (q, a) = t.await.unwrap();
        a.image("image/jpeg", (3000, 2000), &format!("q={q}"));
    }
    assert_eq!(origin.hits(&path), 1, "one fetch for every variant");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let burst = peak_rss_bytes(&node).saturating_sub(base);
    eprintln!(
        "peak growth: one decode {} MB, {n} at once {} MB ({threads} pool threads)",
        single >> 20,
        burst >> 20
    );
    // Unbounded, 32 decodes would need >= 32 x single. Allow every pool
    // thread one decode plus as much again for allocator slack.
    assert!(
        burst <= (threads + 1) * single + frame,
        "{n} simultaneous large photos grew the node by {} MB; one grew it by {} MB",
        burst >> 20,
        single >> 20
    );
}
