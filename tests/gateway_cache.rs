//! The gateway's own cache of hot images (`GATEWAY_CACHE_BYTES`): a key
//! asked for repeatedly is answered by the gateway without asking a
//! worker, only while the worker's freshness lasts, never after a purge on
//! any gateway, and not at all when disabled.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

const TOKEN: &str = "admin-token-for-tests";

/// Sends SIGCONT to a stopped node when dropped, so a failed assertion
/// does not leave a frozen process behind.
struct Stopped<'a>(&'a Node);

impl<'a> Stopped<'a> {
    fn stop(node: &'a Node) -> Stopped<'a> {
        node.signal("STOP");
        Stopped(node)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.signal("CONT");
    }
}

/// Requests the worker answered (hits and misses of its cache).
async fn worker_requests(worker: &Node) -> f64 {
    worker.metric("img_proxy_cache_hits_total").await
        + worker.metric("img_proxy_cache_misses_total").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_image_is_served_by_the_gateway_while_its_worker_is_stopped() {
    let origin = Origin::start().await;
    let bytes = png("hot", 40, 30);
    let source = origin.url(&origin.put("hot.png", bytes.clone(), "image/png"));
    let cluster = Cluster::start(1, 1, &[]).await;
    let gw = &cluster.gateways[0];
    for _ in 0..2 {
        let r = get_image(gw, &source, &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-cache-tier"), "");
    }
    let worker = &cluster.workers[0];
    let asked = worker_requests(worker).await;
    let _stopped = Stopped::stop(worker);
    let r = tokio::time::timeout(Duration::from_secs(3), get_image(gw, &source, &[]))
        .await
        .expect("the gateway's cache must answer without the worker");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache-tier"), "gateway");
    assert_eq!(header(&r, "x-cache"), "HIT");
    assert_eq!(header(&r, "x-served-by"), "worker-0");
    assert_eq!(header(&r, "content-type"), "image/png");
    assert!(header(&r, "etag").starts_with('"'));
    assert!(header(&r, "cache-control").contains("max-age="));
    assert_eq!(&r.bytes().await.unwrap()[..], &bytes[..]);
    assert_eq!(gw.metric("img_proxy_gateway_cache_hits_total").await, 1.0);
    assert!(gw.metric("img_proxy_gateway_cache_entries").await >= 1.0);
    drop(_stopped);
    assert_eq!(worker_requests(worker).await, asked);
    assert_eq!(origin.hits("/files/hot.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_key_make_one_worker_request() {
    let origin = Origin::start().await;
    // The origin takes 500 ms: the requests all arrive while the first
    // one is still being answered.
    let source = origin.url("/slowimg/merged.png");
    let cluster = Cluster::start(1, 1, &[]).await;
    let gw = &cluster.gateways[0];
    let worker = &cluster.workers[0];
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = gw.url("/image");
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            let r = client()
                .get(url)
                .query(&[("url", source)])
                .send()
                .await
                .unwrap();
            (r.status(), r.bytes().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(&body[..], &png("merged.png", 16, 12)[..]);
    }
    assert_eq!(worker_requests(worker).await, 1.0, "one worker request");
    assert_eq!(origin.hits("/slowimg/merged.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_cold_urls_does_not_flush_a_hot_image() {
    let origin = Origin::start().await;
    let source = origin.url(&origin.put("hot.png", png("hot", 64, 64), "image/png"));
    let cluster = Cluster::start(1, 1, &[("GATEWAY_CACHE_BYTES", "64KiB".into())]).await;
    let gw = &cluster.gateways[0];
    for _ in 0..3 {
        assert_eq!(get_image(gw, &source, &[]).await.status(), 200);
    }
    // Ten times the budget in images asked for once each.
    for i in 0..40 {
        let cold = origin.url(&origin.put(
            &format!("cold-{i}.png"),
            png(&format!("cold-{i}"), 100, 100),
            "image/png",
        ));
        assert_eq!(get_image(gw, &cold, &[]).await.status(), 200);
    }
    let asked = worker_requests(&cluster.workers[0]).await;
    let r = get_image(gw, &source, &[]).await;
    assert_eq!(header(&r, "x-cache-tier"), "gateway");
    assert_eq!(worker_requests(&cluster.workers[0]).await, asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_asks_the_worker_again_once_freshness_ran_out() {
    let origin = Origin::start().await;
    let source = origin.url(&origin.put("short.png", png("short", 20, 20), "image/png"));
    let cluster = Cluster::start(1, 1, &[("CACHE_TTL", "3s".into())]).await;
    let gw = &cluster.gateways[0];
    get_image(gw, &source, &[]).await;
    get_image(gw, &source, &[]).await;
    let r = get_image(gw, &source, &[]).await;
    assert_eq!(header(&r, "x-cache-tier"), "gateway");
    let max_age: u64 = header(&r, "cache-control")
        .split("max-age=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(max_age < 3, "max-age {max_age} outlives CACHE_TTL");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let asked = worker_requests(&cluster.workers[0]).await;
    let r = get_image(gw, &source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache-tier"), "");
    assert_eq!(worker_requests(&cluster.workers[0]).await, asked + 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_on_one_gateway_empties_every_gateways_cache() {
    let origin = Origin::start().await;
    let old = png("old", 40, 30);
    let path = origin.put("photo.png", old.clone(), "image/png");
    let source = origin.url(&path);
    let cluster = Cluster::start(2, 2, &[("ADMIN_TOKEN", TOKEN.into())]).await;
    for gw in &cluster.gateways {
        for _ in 0..2 {
            get_image(gw, &source, &[]).await;
            get_image(gw, &source, &[("w", "20")]).await;
        }
        let r = get_image(gw, &source, &[]).await;
        assert_eq!(header(&r, "x-cache-tier"), "gateway");
        assert_eq!(&r.bytes().await.unwrap()[..], &old[..]);
        let r = get_image(gw, &source, &[("w", "20")]).await;
        assert_eq!(header(&r, "x-cache-tier"), "gateway");
    }
    let new = png("new", 40, 30);
    origin.put("photo.png", new.clone(), "image/png");
    let r = client()
        .delete(cluster.gateways[0].url("/image"))
        .query(&[("url", source.as_str())])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = get_image(&cluster.gateways[0], &source, &[]).await;
    assert_eq!(header(&r, "x-cache-tier"), "");
    assert_eq!(&r.bytes().await.unwrap()[..], &new[..]);
    // At once: the purge answered only after the other gateway had heard
    // the record (and so refuses its cached copies).
    let r = get_image(&cluster.gateways[1], &source, &[]).await;
    assert_eq!(header(&r, "x-cache-tier"), "");
    assert_eq!(&r.bytes().await.unwrap()[..], &new[..]);
    let r = get_image(&cluster.gateways[1], &source, &[("w", "20")]).await;
    assert_eq!(header(&r, "x-cache-tier"), "");
    assert_eq!(header(&r, "x-cache"), "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_cache_bytes_0_disables_the_gateway_cache() {
    let origin = Origin::start().await;
    let source = origin.url(&origin.put("off.png", png("off", 20, 20), "image/png"));
    let cluster = Cluster::start(1, 1, &[("GATEWAY_CACHE_BYTES", "0".into())]).await;
    let gw = &cluster.gateways[0];
    for _ in 0..4 {
        let r = get_image(gw, &source, &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-cache-tier"), "");
    }
    assert_eq!(worker_requests(&cluster.workers[0]).await, 4.0);
    assert_eq!(gw.metric("img_proxy_gateway_cache_hits_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_gateway_cache_bytes_is_a_startup_error() {
    let out = tokio::process::Command::new(binary())
        .arg("gateway")
        .env_clear()
        .env("CLUSTER_SECRET", SECRET)
        .env("NAME", "g")
        .env("GATEWAY_CACHE_BYTES", "lots")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), out)
        .await
        .expect("a start-up error must not hang")
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("GATEWAY_CACHE_BYTES"), "{err}");
}
