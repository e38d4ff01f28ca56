//! How gateways route through a real cluster (gateways and workers as
//! processes on loopback, gossiping): one owner per URL, cache hits on
//! repeats, the headers users get, request ids and metrics.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_gateway_picks_the_same_owner_and_repeats_are_hits() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(2, 3, &[]).await;
    let mut owners = std::collections::HashSet::new();
    for i in 0..12 {
        let path = format!("/img/cat{i}.png");
        let source = origin.url(&path);
        let first = get_image(&cluster.gateways[0], &source, &[]).await;
        assert_eq!(first.status(), 200);
        assert_eq!(header(&first, "x-cache"), "MISS");
        let owner = header(&first, "x-served-by").to_string();
        assert!(owner.starts_with("worker-"), "served by {owner:?}");
        let etag = header(&first, "etag").to_string();
        let body = first.bytes().await.unwrap();
        assert_eq!(
            &body[..],
            &png(&format!("cat{i}.png"), 16, 12)[..],
            "bytes pass through unchanged"
        );
        for g in &cluster.gateways {
            let again = get_image(g, &source, &[]).await;
            assert_eq!(again.status(), 200);
            assert_eq!(header(&again, "x-cache"), "HIT");
            assert_eq!(
                header(&again, "x-served-by"),
                owner,
                "gateways disagree on the owner"
            );
            assert_eq!(header(&again, "etag"), etag);
            assert_eq!(&again.bytes().await.unwrap()[..], &body[..]);
        }
        assert_eq!(
            origin.hits(&path),
            1,
            "origin must see one request for {path}"
        );
        owners.insert(owner);
    }
    assert!(owners.len() >= 2, "12 URLs all landed on {owners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_image_answer_carries_type_length_etag_and_max_age() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 1, &[]).await;
    let r = get_image(&cluster.gateways[0], &origin.url("/img/h.png"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "image/png");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let etag = header(&r, "etag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 2, "etag {etag:?}");
    let cc = header(&r, "cache-control").to_string();
    assert!(cc.starts_with("public, max-age="), "{cc}");
    let max_age: u64 = cc.trim_start_matches("public, max-age=").parse().unwrap();
    assert!(max_age > 3500 && max_age <= 3600, "{cc}");
    let len: usize = header(&r, "content-length").parse().unwrap();
    assert_eq!(len, r.bytes().await.unwrap().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_holding_the_bytes_gets_304_with_the_cache_headers() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 1, &[]).await;
    let gw = &cluster.gateways[0];
    let source = origin.url("/img/cat0.png");
    let r = get_image(gw, &source, &[]).await;
    let etag = header(&r, "etag").to_string();
    let nm = client()
        .get(gw.url("/image"))
        .query(&[("url", source.as_str())])
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(nm.status(), 304);
    assert_eq!(header(&nm, "etag"), etag);
    assert_eq!(header(&nm, "x-cache"), "HIT");
    assert_eq!(header(&nm, "x-served-by"), "worker-0");
}

/// The request id the user sent is echoed, and logged by the gateway and
/// by the worker that did the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_request_id_is_echoed_and_logged_by_gateway_and_worker() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 1, &[]).await;
    let r = client()
        .get(cluster.gateways[0].url("/image"))
        .query(&[("url", origin.url("/img/traced.png").as_str())])
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-request-id"), "trace-me-42");
    let owner = cluster.worker(header(&r, "x-served-by"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        owner.logs().contains("trace-me-42"),
        "worker log lacks the request id"
    );
    assert!(cluster.gateways[0].logs().contains("trace-me-42"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_gateway_answers_and_worker_hits_and_misses() {
    let origin = Origin::start().await;
    // Every request reaches a worker: no gateway cache in front.
    let cluster = Cluster::start(1, 2, &[("GATEWAY_CACHE_BYTES", "0".into())]).await;
    let g = &cluster.gateways[0];
    for i in 0..4 {
        let source = origin.url(&format!("/img/m{i}.png"));
        for _ in 0..3 {
            assert_eq!(get_image(g, &source, &[]).await.status(), 200);
        }
    }
    assert_eq!(
        g.metric("img_proxy_gateway_requests_total{status=\"200\"}")
            .await,
        12.0
    );
    assert_eq!(g.metric("img_proxy_gateway_live_workers").await, 2.0);
    let mut hits = 0.0;
    let mut misses = 0.0;
    for w in &cluster.workers {
        hits += w.metric("img_proxy_cache_hits_total").await;
        misses += w.metric("img_proxy_cache_misses_total").await;
    }
    assert_eq!(misses, 4.0);
    // Each repeat is a hit; a gateway's probe of a worker busy with a miss
    // (a cache lookup, see src/gateway/attempt.rs) may add one.
    assert!((8.0..=12.0).contains(&hits), "{hits} hits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_misses_make_one_origin_request() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(2, 3, &[]).await;
    let source = origin.url("/slowimg/rush.png");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let gw = &cluster.gateways[i % 2];
        let url = gw.url("/image");
        let source = source.clone();
        tasks.push(tokio::spawn(async move {
            client()
                .get(url)
                .query(&[("url", source)])
                .send()
                .await
                .unwrap()
        }));
    }
    let mut served_by = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status(), 200);
        served_by.insert(header(&r, "x-served-by").to_string());
        assert_eq!(&r.bytes().await.unwrap()[..], &png("rush.png", 16, 12)[..]);
    }
    assert_eq!(served_by.len(), 1, "one owner expected, got {served_by:?}");
    assert_eq!(origin.hits("/slowimg/rush.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeds_may_be_dns_names_and_joining_retries_until_the_seed_is_up() {
    let origin = Origin::start().await;
    // The gateway starts first, with a seed that nothing listens on yet,
    // named through /etc/hosts.
    let seed_port = free_udp_port();
    let gw = Node::spawn(
        "gateway",
        "gateway-dns",
        &[
            ("CLUSTER_SECRET", SECRET.to_string()),
            ("KNOWN_HOSTS", format!("localhost:{seed_port}")),
        ],
    );
    gw.wait_up().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(gw.members("worker").await.is_empty());
    let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let gossip = format!("127.0.0.1:{seed_port}").parse().unwrap();
    let worker = Node::spawn_at(
        "worker",
        "late-worker",
        http,
        gossip,
        &[("CLUSTER_SECRET", SECRET.to_string())],
    );
    worker.wait_up().await;
    gw.wait_members("worker", &["late-worker"], Duration::from_secs(10))
        .await;
    let r = get_image(&gw, &origin.url("/img/late.png"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-served-by"), "late-worker");
}
