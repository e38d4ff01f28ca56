//! Keeping outsiders out of a cluster: gossip under another secret is
//! ignored, and the internal API answers only signed requests.

mod common;

use std::time::Duration;

use common::*;

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
async fn unsigned_internal_calls_are_refused_and_reach_no_origin() {
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
}

/// Public endpoints stay open on a worker; the gateway's `/image` is not
/// one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_serves_health_but_not_the_public_image_endpoint() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 1, &[]).await;
    let w = &cluster.workers[0];
    let c = client();
    assert_eq!(c.get(w.url("/health")).send().await.unwrap().status(), 200);
    let r = c
        .get(w.url("/image"))
        .query(&[("url", origin.url("/img/x.png"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(origin.total(), 0);
}
