//! What a node refuses to process, through `GET /image`: decompression
//! bombs, truncated and corrupt images, `MAX_SOURCE_PIXELS`,
//! `MAX_ANIMATION_FRAMES`, and the overload answers of a full pool and of
//! the queue deadline (`QUEUE_TIMEOUT`).

mod common;

use std::time::{Duration, Instant};

use common::answer::*;
use common::*;
use img_proxy_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_is_refused_from_its_header_quickly() {
    let origin = Origin::start().await;
    let node = standalone("bomb", &[]).await;
    // 20000x20000 (400 MP) in a few hundred KB.
    let bomb = png_bomb(20_000);
    assert!(bomb.len() < 500_000, "bomb is {} bytes", bomb.len());
    let src = origin.url(&origin.put("bomb.png", bomb, "image/png"));
    for query in [&[("w", "100")][..], &[("format", "webp")]] {
        let started = Instant::now();
        let a = ask(&node, &src, query).await;
        let took = started.elapsed();
        a.refused(422, "too large", &format!("{query:?}"));
        assert!(a.text().contains("20000x20000"), "{}", a.text());
        assert!(
            took < Duration::from_millis(1000),
            "{query:?} took {took:?}"
        );
    }
}

/// Asks for `bytes` (served as `name`) with and without a transformation;
/// each answer must be a quick 422 with a reason.
async fn assert_refused_as_corrupt(origin: &Origin, node: &Node, name: &str, bytes: Vec<u8>) {
    let src = origin.url(&origin.put(name, bytes, "image/jpeg"));
    for query in [&[("w", "16")][..], &[]] {
        let started = Instant::now();
        let a = ask(node, &src, query).await;
        assert_eq!(a.status, 422, "{name} {query:?}: {}", a.text());
        let reason = a.text();
        assert!(
            reason.contains("corrupt") || reason.contains("not a supported image"),
            "{name}: no reason in {reason:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name} was slow"
        );
    }
}

/// Truncated files are refused even untransformed: a browser would show
/// half a picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_images_are_422_with_or_without_options_and_the_node_carries_on() {
    let origin = Origin::start().await;
    let node = standalone("truncated", &[]).await;
    for (name, full) in [
        ("jpeg", quadrant_jpeg(64, 64)),
        ("progressive", progressive_jpeg(64, 64)),
        ("png", quadrant_png(64, 64)),
        ("gif", gif(1)),
        ("webp", rgba_webp(64, 64)),
    ] {
        for cut in [full.len() / 3, full.len() / 2, full.len() * 9 / 10] {
            let cut_name = format!("{name}-cut{cut}");
            assert_refused_as_corrupt(&origin, &node, &cut_name, full[..cut].to_vec()).await;
        }
    }
    let good = origin.url(&origin.put("good.jpg", quadrant_jpeg(64, 64), "image/jpeg"));
    ask(&node, &good, &[("w", "16")])
        .await
        .image("image/jpeg", (16, 16), "after the broken ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_magic_with_nothing_behind_it_is_422() {
    let origin = Origin::start().await;
    let node = standalone("magic-only", &[]).await;
    for (name, bytes) in [
        ("jpeg-soi", vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00]),
        ("png-sig", b"\x89PNG\r\n\x1a\n".to_vec()),
        ("webp-riff", b"RIFF\x10\0\0\0WEBPVP8 \xff\xff".to_vec()),
    ] {
        assert_refused_as_corrupt(&origin, &node, name, bytes).await;
    }
}

/// A whole file with damaged image data is found when it is decoded for a
/// transformation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrambled_image_data_is_422_when_transformed() {
    let origin = Origin::start().await;
    let node = standalone("scrambled", &[]).await;
    let mut scrambled = quadrant_png(64, 64);
    let idat = scrambled.windows(4).position(|w| w == b"IDAT").unwrap() + 6;
    for b in &mut scrambled[idat..idat + 40] {
        *b ^= 0xA5;
    }
    let src = origin.url(&origin.put("png-scrambled", scrambled, "image/png"));
    ask(&node, &src, &[("w", "16")])
        .await
        .refused(422, "corrupt", "scrambled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_original_is_not_cached() {
    let origin = Origin::start().await;
    let node = standalone("late", &[]).await;
    let whole = quadrant_png(64, 64);
    let path = origin.put("late.png", whole[..whole.len() / 2].to_vec(), "image/png");
    let src = origin.url(&path);
    ask(&node, &src, &[])
        .await
        .refused(422, "PNG (no IEND chunk) is truncated", "half a file");
    // Once the origin has the whole file, the next request gets it.
    origin.put("late.png", whole.clone(), "image/png");
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (64, 64), "whole file after a truncated one");
    assert_eq!(&a.body[..], &whole[..]);
    assert_eq!(origin.hits(&path), 2);
}

async fn limited(name: &str) -> Node {
    let env = [
        ("MAX_SOURCE_PIXELS", "10000".to_string()),
        ("MAX_ANIMATION_FRAMES", "2".to_string()),
    ];
    standalone(name, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_max_source_pixels_is_not_transformed_and_the_limit_is_named() {
    let origin = Origin::start().await;
    let node = limited("pixels-over").await;
    let src = origin.url(&origin.put("big.png", quadrant_png(200, 200), "image/png"));
    let a = ask(&node, &src, &[("w", "50")]).await;
    a.refused(422, "too large", "200x200");
    assert!(
        a.text().contains("10000"),
        "the limit is named: {}",
        a.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_source_pixels_does_not_apply_to_originals() {
    let origin = Origin::start().await;
    let node = limited("pixels-original").await;
    let big = quadrant_png(200, 200);
    let src = origin.url(&origin.put("big.png", big.clone(), "image/png"));
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (200, 200), "original");
    assert_eq!(&a.body[..], &big[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_exactly_at_max_source_pixels_is_transformed() {
    let origin = Origin::start().await;
    let node = limited("pixels-edge").await;
    let edge = origin.url(&origin.put("edge.png", quadrant_png(100, 100), "image/png"));
    ask(&node, &edge, &[("w", "50")])
        .await
        .image("image/png", (50, 50), "100x100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_canvas_over_max_source_pixels_is_refused() {
    let origin = Origin::start().await;
    let node = limited("pixels-canvas").await;
    let edge = origin.url(&origin.put("edge.png", quadrant_png(100, 100), "image/png"));
    let a = ask(&node, &edge, &[("w", "200"), ("h", "200"), ("fit", "fill")]).await;
    assert_eq!(a.status, 422, "{}", a.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_animation_over_max_animation_frames_is_not_transformed() {
    let origin = Origin::start().await;
    let node = limited("frames-over").await;
    let src = origin.url(&origin.put("three.gif", gif(3), "image/gif"));
    for format in ["webp", "png"] {
        ask(&node, &src, &[("w", "6"), ("format", format)])
            .await
            .refused(422, "too many frames", format);
    }
    let two = origin.url(&origin.put("two.gif", gif(2), "image/gif"));
    ask(&node, &two, &[("w", "6"), ("format", "webp")])
        .await
        .image("image/webp", (6, 5), "two frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_animation_frames_does_not_apply_to_originals() {
    let origin = Origin::start().await;
    let node = limited("frames-original").await;
    let three = gif(3);
    let src = origin.url(&origin.put("three.gif", three.clone(), "image/gif"));
    let a = ask(&node, &src, &[]).await;
    a.image("image/gif", (12, 10), "original animation");
    assert_eq!(&a.body[..], &three[..]);
}

/// A full pool sheds load with 503 and `Retry-After`, and the refusal is
/// not cached. Deterministic: the origin holds the one shared original
/// back until every request is waiting for it, so all transforms reach the
/// pool at the same moment; with `MAX_QUEUE=0` at most one per thread is
/// taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_answers_503_with_retry_after() {
    let origin = Origin::start().await;
    let node = standalone("busy", &[("MAX_QUEUE", "0".into())]).await;
    // Decoding ~3 MB of noise takes long enough for every job to arrive
    // while the first ones still run.
    let path = origin.put("noise.png", noise_png(1000, 1000), "image/png");
    let src = origin.url(&path);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = threads * 3 + 2;
    origin.hold();
    let tasks = ask_all_at_once(&node, &src, "w", (0..n).map(|i| (20 + i).to_string()));
    // Every request is waiting on the one origin fetch, which is held...
    wait_until_all_wait_on_origin(&node, &origin, &path, n).await;
    assert_eq!(origin.hits(&path), 1);
    // ...and now all of them want a pool thread at once.
    origin.release();
    let mut busy = Vec::new();
    let mut ok = 0;
    for t in tasks {
        let (w, a) = t.await.unwrap();
        match a.status {
            200 => {
                ok += 1;
                assert_eq!(dimensions(&a.body).0, w.parse::<u32>().unwrap());
            }
            503 => {
                assert_eq!(a.h("retry-after"), "1", "503 without Retry-After");
                assert!(a.text().contains("retry"));
                busy.push(w);
            }
            other => panic!("w={w}: unexpected {other}: {}", a.text()),
        }
    }
    assert!(!busy.is_empty(), "{n} simultaneous transforms and no 503");
    // Exactly one job per thread was taken: the others needed a queue.
    assert_eq!(
        ok, threads,
        "{ok} of {n} accepted with {threads} idle threads"
    );
    // Overload is not cached: the refused variants work when retried.
    for w in busy {
        let a = ask(&node, &src, &[("w", &w)]).await;
        assert_eq!(a.status, 200, "w={w} after the burst: {}", a.text());
        assert_eq!(a.h("x-cache"), "MISS");
    }
    assert_eq!(origin.hits(&path), 1);
}

/// A transformation admitted to the queue but not started within
/// `QUEUE_TIMEOUT` is answered 503 with `Retry-After` (and counted, and
/// logged with its reason) instead of waiting for however long the jobs
/// ahead of it take. Deterministic: the origin holds the one shared
/// original until every request waits for it, so all transforms reach the
/// pool at once; each thread takes one, and the others must wait for a
/// whole transform of 4 MP of noise (0.8 s of CPU in a debug build, and a
/// loaded machine only makes it longer), well past the 300 ms deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transformation_that_waits_past_queue_timeout_gets_503() {
    let origin = Origin::start().await;
    let env = [
        ("MAX_QUEUE", "64".into()),
        ("QUEUE_TIMEOUT", "300ms".into()),
    ];
    let node = standalone("queue-deadline", &env).await;
    let path = origin.put("noise.png", noise_png(2000, 2000), "image/png");
    let src = origin.url(&path);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = threads * 2 + 2;
    origin.hold();
    let tasks = ask_all_at_once(&node, &src, "w", (0..n).map(|i| (20 + i).to_string()));
    wait_until_all_wait_on_origin(&node, &origin, &path, n).await;
    origin.release();
    let mut late = Vec::new();
    for t in tasks {
        let (w, a) = t.await.unwrap();
        match a.status {
            200 => assert_eq!(dimensions(&a.body).0, w.parse::<u32>().unwrap()),
            503 => {
                assert_eq!(a.h("retry-after"), "1", "503 without Retry-After");
                assert!(a.text().contains("QUEUE_TIMEOUT (300ms)"), "{}", a.text());
                late.push(w);
            }
            other => panic!("w={w}: unexpected {other}: {}", a.text()),
        }
    }
    // Every job that had to wait behind another was refused (all were
    // admitted: MAX_QUEUE is far from full).
    assert!(late.len() >= n - threads, "{} of {n} refused", late.len());
    let counted = "img_proxy_image_jobs_refused_total{reason=\"queue_timeout\"}";
    assert_eq!(node.metric(counted).await, late.len() as f64);
    let full = "img_proxy_image_jobs_refused_total{reason=\"queue_full\"}";
    assert_eq!(node.metric(full).await, 0.0);
    assert!(node.logs().contains("within QUEUE_TIMEOUT (300ms)"));
    // The refusal is not cached: asked again with the threads free, the
    // variant is made.
    let a = ask(&node, &src, &[("w", &late[0])]).await;
    assert_eq!(a.status, 200, "w={} when idle: {}", late[0], a.text());
    assert_eq!(a.h("x-cache"), "MISS");
    assert_eq!(origin.hits(&path), 1);
}

/// Waits until `n` misses reached `node` and the one origin fetch of
/// `path` (held) has started: then every request waits on that fetch.
async fn wait_until_all_wait_on_origin(node: &Node, origin: &Origin, path: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.metric("img_proxy_cache_misses_total").await < n as f64 || origin.hits(path) == 0 {
        assert!(Instant::now() < deadline, "requests did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
