//! Stale serving and revalidation (`STALE_TTL`): expired entries answered
//! as `X-Cache: STALE` while their origin is down or while they are
//! revalidated, conditional revalidation (304) and changed images.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Freshness lifetime used here: short, so entries expire during a test,
/// long enough that a renewed entry is still fresh when asked again.
const TTL_SECS: u64 = 3;

/// A standalone node with `CACHE_TTL` = [`TTL_SECS`] and `STALE_TTL` =
/// `stale`.
async fn node(stale: &str) -> Node {
    let node = Node::spawn(
        "",
        "stale",
        &[
            ("CACHE_TTL", format!("{TTL_SECS}s")),
            ("STALE_TTL", stale.to_string()),
        ],
    );
    node.wait_up().await;
    node
}

/// Waits until the entries cached now have expired.
async fn expire() {
    tokio::time::sleep(Duration::from_millis(TTL_SECS * 1000 + 500)).await;
}

/// `img_proxy_cache_revalidations_total{result}` on `node`.
async fn revalidations(node: &Node, result: &str) -> f64 {
    node.metric(&format!(
        "img_proxy_cache_revalidations_total{{result=\"{result}\"}}"
    ))
    .await
}

/// Waits until `node` counted `n` revalidations with `result`.
async fn wait_revalidations(node: &Node, result: &str, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while revalidations(node, result).await < n {
        assert!(
            Instant::now() < deadline,
            "no {result} revalidation; log:\n{}",
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 200 with `x_cache`; returns the body.
async fn expect(r: reqwest::Response, x_cache: &str) -> Vec<u8> {
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), x_cache);
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_down_after_expiry_gives_stale_answers_then_a_fresh_copy_when_back() {
    let origin = Origin::start().await;
    let old = png("old", 40, 30);
    let path = origin.put("down.png", old.clone(), "image/png");
    let source = origin.url(&path);
    // Through a gateway: it must relay X-Cache: STALE.
    let cluster = Cluster::start(
        1,
        1,
        &[
            ("CACHE_TTL", format!("{TTL_SECS}s")),
            ("STALE_TTL", "1h".to_string()),
        ],
    )
    .await;
    let gw = &cluster.gateways[0];
    let worker = &cluster.workers[0];
    assert_eq!(expect(get_image(gw, &source, &[]).await, "MISS").await, old);
    origin.fail(Some(503));
    expire().await;

    for _ in 0..3 {
        let body = expect(get_image(gw, &source, &[]).await, "STALE").await;
        assert_eq!(body, old);
    }
    wait_revalidations(worker, "failed", 1.0).await;
    let body = expect(get_image(gw, &source, &[]).await, "STALE").await;
    assert_eq!(body, old, "still stale after a failed revalidation");
    assert!(worker.metric("img_proxy_cache_stale_answers_total").await >= 4.0);

    // The origin is back with a new image: a request triggers the
    // revalidation, which replaces the copy; later requests get it fresh.
    let new = png("new", 40, 30);
    origin.put("down.png", new.clone(), "image/png");
    origin.fail(None);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = get_image(gw, &source, &[]).await;
        assert_eq!(r.status(), 200);
        let x_cache = header(&r, "x-cache").to_string();
        let body = r.bytes().await.unwrap();
        if x_cache == "HIT" {
            assert_eq!(&body[..], &new[..]);
            break;
        }
        assert_eq!(x_cache, "STALE");
        assert!(Instant::now() < deadline, "no fresh copy after recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(revalidations(worker, "changed").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_renews_the_original_and_its_variants_without_reencoding() {
    let origin = Origin::start().await;
    let path = origin.put("same.png", png("same", 40, 30), "image/png");
    let source = origin.url(&path);
    let node = node("1h").await;
    let original = expect(get_image(&node, &source, &[]).await, "MISS").await;
    let variant = expect(get_image(&node, &source, &[("w", "20")]).await, "MISS").await;
    let bytes_before = origin.body_bytes();
    expire().await;

    // The variant's expiry follows its original: asking for it revalidates.
    let stale = expect(get_image(&node, &source, &[("w", "20")]).await, "STALE").await;
    assert_eq!(stale, variant);
    wait_revalidations(&node, "304", 1.0).await;
    assert_eq!(origin.not_modified(), 1);
    assert_eq!(origin.body_bytes(), bytes_before, "the 304 sent no body");

    // Both are fresh again (renewed expiry), with the same bytes: nothing
    // was downloaded or re-made.
    let r = get_image(&node, &source, &[("w", "20")]).await;
    let cc = header(&r, "cache-control").to_string();
    assert_eq!(expect(r, "HIT").await, variant);
    assert_ne!(cc, "public, max-age=0", "expiry not renewed");
    assert_eq!(
        expect(get_image(&node, &source, &[]).await, "HIT").await,
        original
    );
    assert_eq!(origin.hits(&path), 2);
    assert_eq!(revalidations(&node, "changed").await, 0.0);
    assert_eq!(node.metric("img_proxy_cache_misses_total").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_image_replaces_the_original_and_drops_its_variants() {
    let origin = Origin::start().await;
    let old = png("before", 40, 30);
    let path = origin.put("change.png", old.clone(), "image/png");
    let source = origin.url(&path);
    let node = node("1h").await;
    expect(get_image(&node, &source, &[]).await, "MISS").await;
    let old_variant = expect(get_image(&node, &source, &[("w", "20")]).await, "MISS").await;
    let new = png("after", 40, 30);
    origin.put("change.png", new.clone(), "image/png");
    expire().await;

    let stale = expect(get_image(&node, &source, &[("w", "20")]).await, "STALE").await;
    assert_eq!(stale, old_variant);
    wait_revalidations(&node, "changed", 1.0).await;
    assert_eq!(origin.not_modified(), 0);

    // The old variant is gone: made again, from the new original.
    let made = expect(get_image(&node, &source, &[("w", "20")]).await, "MISS").await;
    assert_ne!(made, old_variant);
    assert_eq!(img_proxy_test_support::dimensions(&made), (20, 15));
    assert_eq!(
        expect(get_image(&node, &source, &[]).await, "HIT").await,
        new
    );
    assert_eq!(origin.hits(&path), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_for_a_stale_entry_start_one_revalidation() {
    let origin = Origin::start().await;
    let path = origin.put("many.png", png("many", 40, 30), "image/png");
    let source = origin.url(&path);
    let node = node("1h").await;
    let body = expect(get_image(&node, &source, &[]).await, "MISS").await;
    expire().await;
    // The revalidation hangs at the origin while requests keep coming:
    // they are all answered at once from the stale copy.
    origin.hold();
    for _ in 0..5 {
        assert_eq!(
            expect(get_image(&node, &source, &[]).await, "STALE").await,
            body
        );
    }
    assert_eq!(origin.hits(&path), 2, "one revalidation for five requests");
    origin.release();
    wait_revalidations(&node, "304", 1.0).await;
    assert_eq!(
        expect(get_image(&node, &source, &[]).await, "HIT").await,
        body
    );
    assert_eq!(origin.hits(&path), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_stale_ttl_with_the_origin_down_gives_the_usual_error() {
    let origin = Origin::start().await;
    let path = origin.put("gone.png", png("gone", 40, 30), "image/png");
    let source = origin.url(&path);
    let node = node("1s").await;
    expect(get_image(&node, &source, &[]).await, "MISS").await;
    origin.fail(Some(503));
    // Past CACHE_TTL and STALE_TTL.
    tokio::time::sleep(Duration::from_millis(TTL_SECS * 1000 + 1500)).await;
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(r.status(), 502, "{}", header(&r, "x-cache"));
    assert_ne!(header(&r, "x-cache"), "STALE");
    assert_eq!(
        node.metric("img_proxy_cache_stale_answers_total").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_gone_at_its_origin_is_dropped_by_the_revalidation() {
    let origin = Origin::start().await;
    let path = origin.put("removed.png", png("removed", 40, 30), "image/png");
    let source = origin.url(&path);
    let node = node("1h").await;
    expect(get_image(&node, &source, &[]).await, "MISS").await;
    expect(get_image(&node, &source, &[("w", "20")]).await, "MISS").await;
    origin.fail(Some(404));
    expire().await;

    expect(get_image(&node, &source, &[("w", "20")]).await, "STALE").await;
    wait_revalidations(&node, "changed", 1.0).await;
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(r.status(), 404);
    let r = get_image(&node, &source, &[("w", "20")]).await;
    assert_eq!(r.status(), 404);
}
