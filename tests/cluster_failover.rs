//! A cluster losing workers: a crash costs no request, a graceful stop
//! leaves the view at once, and no workers at all is a clear 503.

mod common;

use std::time::{Duration, Instant};

use common::*;

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
