//! Bounds on origin fetches: per worker, per origin host, and in time.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_host_cannot_take_every_fetch_slot() {
    let slow = Origin::start().await;
    let other = Origin::start_on("127.0.0.3").await;
    let path = slow.put("held.png", png("held", 8, 8), "image/png");
    let node = Node::spawn(
        "",
        "per-host",
        &[
            ("MAX_FETCHES_PER_HOST", "2".into()),
            (
                "ALLOWED_SOURCE_NETWORKS",
                "127.0.0.2/32,127.0.0.3/32".into(),
            ),
        ],
    );
    node.wait_up().await;
    slow.hold();
    let held = start_held(&node, &slow, &path, 2).await;
    let started = Instant::now();
    let r = get_image(&node, &slow.url(&format!("{path}?n=3")), &[]).await;
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(header(&r, "retry-after"), "1");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("MAX_FETCHES_PER_HOST 2") && body.contains("127.0.0.2"),
        "{body}"
    );
    assert_eq!(slow.hits(&path), 2);
    // Another host still gets a slot.
    let r = get_image(&node, &other.url("/img/other.png"), &[]).await;
    assert_eq!(r.status(), 200);
    slow.release();
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), 200);
    }
    assert!(node.logs().contains("MAX_FETCHES_PER_HOST 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_origin_fetches_the_answer_is_503_at_once() {
    let a = Origin::start().await;
    let b = Origin::start_on("127.0.0.3").await;
    let pa = a.put("a.png", png("a", 8, 8), "image/png");
    let node = Node::spawn(
        "",
        "fetch-cap",
        &[
            ("MAX_ORIGIN_FETCHES", "1".into()),
            (
                "ALLOWED_SOURCE_NETWORKS",
                "127.0.0.2/32,127.0.0.3/32".into(),
            ),
        ],
    );
    node.wait_up().await;
    a.hold();
    let held = start_held(&node, &a, &pa, 1).await;
    let r = get_image(&node, &b.url("/img/b.png"), &[]).await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("MAX_ORIGIN_FETCHES 1"));
    assert_eq!(b.total(), 0);
    assert!(
        node.metric("img_proxy_origin_fetch_errors_total{kind=\"busy\"}")
            .await
            >= 1.0
    );
    a.release();
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_origin_is_cut_at_fetch_timeout_and_counted() {
    // Headers at once, then one byte of body every 200 ms, for ever.
    let app = Router::new().route(
        "/trickle.png",
        get(|| async {
            let bytes = futures::stream::unfold(0u8, |n| async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((Ok::<_, std::io::Error>(vec![n]), n.wrapping_add(1)))
            });
            ([("content-type", "image/png")], Body::from_stream(bytes))
        }),
    );
    let listener = tokio::net::TcpListener::bind((ORIGIN_IP, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let node = Node::spawn("", "trickle", &[("FETCH_TIMEOUT", "1s".into())]);
    node.wait_up().await;
    let started = Instant::now();
    let r = get_image(&node, &format!("http://{addr}/trickle.png"), &[]).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 504);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        node.metric("img_proxy_origin_fetch_errors_total{kind=\"timeout\"}")
            .await,
        1.0
    );
    assert!(node.logs().contains("origin fetch timed out"));
}
