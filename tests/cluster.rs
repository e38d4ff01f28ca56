//! End-to-end tests of a real cluster: two gateways and three workers as
//! processes on loopback, gossiping with each other, against a local origin
//! that counts its requests.

mod common;

use std::time::{Duration, Instant};

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
        assert_eq!(header(&first, "content-type"), "image/png");
        let etag = header(&first, "etag").to_string();
        assert!(etag.starts_with('"') && etag.len() > 2, "etag {etag:?}");
        let cc = header(&first, "cache-control").to_string();
        assert!(cc.starts_with("public, max-age="), "{cc}");
        let max_age: u64 = cc.trim_start_matches("public, max-age=").parse().unwrap();
        assert!(max_age > 3500 && max_age <= 3600, "{cc}");
        let len: usize = header(&first, "content-length").parse().unwrap();
        let body = first.bytes().await.unwrap();
        assert_eq!(len, body.len());
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

    // Conditional request: the client already has these bytes.
    let source = origin.url("/img/cat0.png");
    let r = get_image(&cluster.gateways[1], &source, &[]).await;
    let etag = header(&r, "etag").to_string();
    let nm = client()
        .get(cluster.gateways[1].url("/image"))
        .query(&[("url", source.as_str())])
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(nm.status(), 304);

    // The request id the user sent is echoed and logged by the gateway and
    // by the worker that did the work.
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

    // Metrics reflect the traffic.
    let g = &cluster.gateways[0];
    assert!(
        g.metric("img_proxy_gateway_requests_total{status=\"200\"}")
            .await
            >= 24.0
    );
    assert_eq!(g.metric("img_proxy_gateway_live_workers").await, 3.0);
    let mut hits = 0.0;
    let mut misses = 0.0;
    for w in &cluster.workers {
        hits += w.metric("img_proxy_cache_hits_total").await;
        misses += w.metric("img_proxy_cache_misses_total").await;
    }
    assert_eq!(misses, 13.0);
    assert!(hits >= 24.0);
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
async fn killing_a_worker_fails_no_request_and_gossip_drops_it() {
    let origin = Origin::start().await;
    // The default gossip interval: the 10 s bound is promised for defaults.
    let mut cluster = Cluster::start(2, 3, &[("GOSSIP_INTERVAL", "500ms".into())]).await;
    let sources: Vec<String> = (0..30)
        .map(|i| origin.url(&format!("/img/k{i}.png")))
        .collect();
    let mut owner_of = std::collections::HashMap::new();
    for s in &sources {
        let r = get_image(&cluster.gateways[0], s, &[]).await;
        assert_eq!(r.status(), 200);
        owner_of.insert(s.clone(), header(&r, "x-served-by").to_string());
    }
    // Kill a worker that owns something (not the seed, so the others keep
    // a seed to talk to; the seed is covered by the leave test).
    let victim = owner_of
        .values()
        .find(|w| *w != "worker-0")
        .cloned()
        .unwrap_or_else(|| "worker-1".into());
    let idx = cluster
        .workers
        .iter()
        .position(|w| w.name == victim)
        .unwrap();
    cluster.workers[idx].kill().await;
    let killed_at = Instant::now();

    // Requests keep succeeding while gossip has not noticed yet.
    let mut rounds = 0;
    while killed_at.elapsed() < Duration::from_secs(3) || rounds < 2 {
        for (i, s) in sources.iter().enumerate() {
            let r = get_image(&cluster.gateways[i % 2], s, &[]).await;
            assert_eq!(
                r.status(),
                200,
                "request for {s} failed after killing {victim}"
            );
            assert_ne!(header(&r, "x-served-by"), victim);
        }
        rounds += 1;
    }
    let failovers = cluster.gateways[0]
        .metric("img_proxy_gateway_failovers_total")
        .await
        + cluster.gateways[1]
            .metric("img_proxy_gateway_failovers_total")
            .await;
    assert!(failovers >= 1.0, "expected failovers to be counted");

    // Gossip removes the dead worker from every gateway within 10 s.
    let remaining: Vec<&str> = cluster
        .workers
        .iter()
        .filter(|w| w.name != victim)
        .map(|w| w.name.as_str())
        .collect();
    for g in &cluster.gateways {
        let left = Duration::from_secs(10).saturating_sub(killed_at.elapsed());
        g.wait_members("worker", &remaining, left).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_the_wrong_secret_never_joins_or_gets_traffic() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 2, &[]).await;
    let seed = cluster.workers[0].gossip.to_string();
    let intruder = Node::spawn(
        "worker",
        "intruder",
        &[
            (
                "CLUSTER_SECRET",
                "a-completely-different-secret".to_string(),
            ),
            ("KNOWN_HOSTS", seed),
        ],
    );
    intruder.wait_up().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let gw = &cluster.gateways[0];
    assert_eq!(gw.members("worker").await, vec!["worker-0", "worker-1"]);
    assert_eq!(
        intruder.members("worker").await,
        vec!["intruder"],
        "intruder must not see the cluster"
    );
    for i in 0..20 {
        let r = get_image(gw, &origin.url(&format!("/img/i{i}.png")), &[]).await;
        assert_eq!(r.status(), 200);
        assert_ne!(header(&r, "x-served-by"), "intruder");
    }
    assert_eq!(intruder.metric("img_proxy_cache_misses_total").await, 0.0);
    assert!(
        cluster.workers[0]
            .metric("img_proxy_gossip_rejected_datagrams_total")
            .await
            > 0.0,
        "the seed should have counted the intruder's datagrams"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_api_requires_cluster_credentials() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 1, &[]).await;
    let w = &cluster.workers[0];
    let source = origin.url("/img/secret.png");
    let c = client();
    let r = c
        .get(w.url("/v1/image"))
        .query(&[("url", &source)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(w.url("/v1/cache"))
        .json(&serde_json::json!({ "url": source }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("credentials"));
    let r = c
        .post(w.url("/v1/cache"))
        .header("x-cluster-auth", "t=1,s=00")
        .json(&serde_json::json!({ "url": source }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        origin.total(),
        0,
        "unauthenticated calls must not reach the origin"
    );
    // Public endpoints stay open; the gateway's /image is not on a worker.
    assert_eq!(c.get(w.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(
        c.get(w.url("/image"))
            .query(&[("url", &source)])
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_status_in_the_api_table() {
    let origin = Origin::start().await;
    // A listener on 127.0.0.1 that must never be asked anything.
    let forbidden = Origin::start_on("127.0.0.1").await;
    let cluster = Cluster::start(
        1,
        2,
        &[
            ("MAX_SOURCE_BYTES", "1MiB".into()),
            ("FETCH_TIMEOUT", "2s".into()),
        ],
    )
    .await;
    let gw = &cluster.gateways[0];
    let c = client();

    let r = c.get(gw.url("/image")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("url"));
    for bad in [
        "not a url",
        "ftp://example.com/cat.jpg",
        "file:///etc/passwd",
        "http://user:pw@example.com/a.png",
    ] {
        let r = get_image(gw, bad, &[]).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(!r.text().await.unwrap().trim().is_empty());
    }

    // Loopback and private origins are refused, directly and via redirect.
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
        let r = get_image(gw, &src, &[]).await;
        assert_eq!(r.status(), 403, "{src}");
        assert!(!r.text().await.unwrap().trim().is_empty());
    }
    assert_eq!(forbidden.total(), 0, "a forbidden address was contacted");

    // A redirect to an allowed address is followed.
    let r = get_image(
        gw,
        &origin.url(&format!("/redirect?to={}", origin.url("/img/hop.png"))),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);

    let r = get_image(gw, &origin.url("/status/404"), &[]).await;
    assert_eq!(r.status(), 404);
    for p in ["/html", "/svg", "/big"] {
        let r = get_image(gw, &origin.url(p), &[]).await;
        assert_eq!(r.status(), 422, "{p}");
    }
    for p in ["/status/500", "/status/403", "/status/503"] {
        let r = get_image(gw, &origin.url(p), &[]).await;
        assert_eq!(r.status(), 502, "{p}");
    }
    // Nothing listens on this allowed address: the origin failed.
    let r = get_image(
        gw,
        &format!("http://{ORIGIN_IP}:{}/x.png", free_tcp_port()),
        &[],
    )
    .await;
    assert_eq!(r.status(), 502);

    let started = Instant::now();
    let r = get_image(gw, &origin.url("/hang"), &[]).await;
    assert_eq!(r.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "timeout took {:?}",
        started.elapsed()
    );

    // Errors are never cached: the origin's 500 now does not stop a 200 later.
    let flaky = origin.url("/flaky/f.png");
    assert_eq!(get_image(gw, &flaky, &[]).await.status(), 502);
    let r = get_image(gw, &flaky, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");

    // Errors are counted by kind on the workers.
    let mut errors = 0.0;
    for w in &cluster.workers {
        errors += w.metric("img_proxy_origin_fetch_errors_total").await;
    }
    assert!(errors >= 8.0, "fetch errors counted: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_without_workers_answers_503() {
    let origin = Origin::start().await;
    let gw = Node::spawn(
        "gateway",
        "lonely",
        &[("CLUSTER_SECRET", SECRET.to_string())],
    );
    gw.wait_up().await;
    let r = get_image(&gw, &origin.url("/img/a.png"), &[]).await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("no worker"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_leaves_the_cluster_quickly_and_exits() {
    let origin = Origin::start().await;
    let mut cluster = Cluster::start(1, 2, &[]).await;
    let gw = &cluster.gateways[0];
    assert_eq!(
        get_image(gw, &origin.url("/img/t.png"), &[]).await.status(),
        200
    );
    let w = &mut cluster.workers[1];
    w.signal("TERM");
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), w.child.as_mut().unwrap().wait())
        .await
        .expect("worker did not exit within 10 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    cluster.gateways[0]
        .wait_members("worker", &["worker-0"], Duration::from_secs(5))
        .await;
    for i in 0..10 {
        let r = get_image(
            &cluster.gateways[0],
            &origin.url(&format!("/img/after{i}.png")),
            &[],
        )
        .await;
        assert_eq!(r.status(), 200);
    }
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
