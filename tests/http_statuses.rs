//! Every status of the README's API table, as a user gets it from a
//! gateway in front of a worker: bad requests, refused addresses, origin
//! failures and timeouts.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// A gateway and one worker with a small body limit and a short deadline.
async fn cluster() -> Cluster {
    let env = [
        ("MAX_SOURCE_BYTES", "1MiB".to_string()),
        ("FETCH_TIMEOUT", "2s".to_string()),
    ];
    Cluster::start(1, 1, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_without_url_is_400() {
    let cluster = cluster().await;
    let r = client()
        .get(cluster.gateways[0].url("/image"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_url_that_is_not_http_is_400() {
    let cluster = cluster().await;
    for bad in [
        "not a url",
        "ftp://example.com/cat.jpg",
        "file:///etc/passwd",
        "http://user:pw@example.com/a.png",
    ] {
        let r = get_image(&cluster.gateways[0], bad, &[]).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(!r.text().await.unwrap().trim().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loopback_and_private_origins_are_403_directly_and_via_redirects() {
    let origin = Origin::start().await;
    // A listener on 127.0.0.1 that must never be asked anything.
    let forbidden = Origin::start_on("127.0.0.1").await;
    let cluster = cluster().await;
    let port = forbidden.addr.port();
    for src in [
        format!("http://127.0.0.1:{port}/img/x.png"),
        format!("http://localhost:{port}/img/x.png"),
        format!("http://[::1]:{port}/img/x.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/img/x.png"),
        "http://10.0.0.1/x.png".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://192.168.1.1/x.png".to_string(),
        origin.url(&format!("/redirect?to=http://127.0.0.1:{port}/img/x.png")),
        origin.url("/redirect?to=http://10.1.2.3/x.png"),
    ] {
        let r = get_image(&cluster.gateways[0], &src, &[]).await;
        assert_eq!(r.status(), 403, "{src}");
        assert!(!r.text().await.unwrap().trim().is_empty());
    }
    assert_eq!(forbidden.total(), 0, "a forbidden address was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redirect_to_an_allowed_address_is_followed() {
    let origin = Origin::start().await;
    let cluster = cluster().await;
    let hop = origin.url(&format!("/redirect?to={}", origin.url("/img/hop.png")));
    let r = get_image(&cluster.gateways[0], &hop, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(origin.hits("/img/hop.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_image_the_origin_does_not_have_is_404() {
    let origin = Origin::start().await;
    let cluster = cluster().await;
    let r = get_image(&cluster.gateways[0], &origin.url("/status/404"), &[]).await;
    assert_eq!(r.status(), 404);
}

/// HTML (whatever its `Content-Type`) and a body over `MAX_SOURCE_BYTES`
/// (SVG is rasterised: `http_svg.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_is_not_a_servable_image_is_422() {
    let origin = Origin::start().await;
    let cluster = cluster().await;
    for p in ["/html", "/big"] {
        let r = get_image(&cluster.gateways[0], &origin.url(p), &[]).await;
        assert_eq!(r.status(), 422, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_origin_error_or_an_unreachable_origin_is_502() {
    let origin = Origin::start().await;
    let cluster = cluster().await;
    // Nothing listens on this allowed address.
    let nobody = format!("http://{ORIGIN_IP}:{}/x.png", free_tcp_port());
    for src in [
        origin.url("/status/500"),
        origin.url("/status/403"),
        origin.url("/status/503"),
        nobody,
    ] {
        let r = get_image(&cluster.gateways[0], &src, &[]).await;
        assert_eq!(r.status(), 502, "{src}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_origin_slower_than_fetch_timeout_is_504_on_time() {
    let origin = Origin::start().await;
    let cluster = cluster().await;
    let started = Instant::now();
    let r = get_image(&cluster.gateways[0], &origin.url("/hang"), &[]).await;
    assert_eq!(r.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "timeout took {:?}",
        started.elapsed()
    );
}

/// The origin's 500 now does not stop a 200 later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_are_not_cached() {
    let origin = Origin::start().await;
    let cluster = cluster().await;
    let gw = &cluster.gateways[0];
    let flaky = origin.url("/flaky/f.png");
    assert_eq!(get_image(gw, &flaky, &[]).await.status(), 502);
    let r = get_image(gw, &flaky, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn origin_errors_are_counted_by_kind_on_the_worker() {
    let origin = Origin::start().await;
    let cluster = cluster().await;
    for p in ["/status/404", "/status/500", "/html", "/big"] {
        get_image(&cluster.gateways[0], &origin.url(p), &[]).await;
    }
    let w = &cluster.workers[0];
    for (kind, count) in [
        ("not_found", 1.0),
        ("upstream", 1.0),
        ("not_image", 1.0),
        ("too_large", 1.0),
    ] {
        let sample = format!("img_proxy_origin_fetch_errors_total{{kind=\"{kind}\"}}");
        assert_eq!(w.metric(&sample).await, count, "{kind}");
    }
}
