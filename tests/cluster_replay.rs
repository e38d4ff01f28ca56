//! A captured gateway-to-worker request cannot be replayed.

mod common;

use common::*;
use img_proxy::cluster::auth;
use img_proxy::cluster::keys::ClusterKeys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_internal_request_is_refused_and_counted() {
    let origin = Origin::start().await;
    let worker = Node::spawn("worker", "replay-w", &[("CLUSTER_SECRET", SECRET.into())]);
    worker.wait_up().await;
    let body = serde_json::json!({ "url": origin.url("/img/replay.png") }).to_string();
    // What a gateway sends, as someone sniffing the network would capture it.
    let captured = auth::sign(
        &ClusterKeys::derive(SECRET),
        "POST",
        "/v1/cache",
        body.as_bytes(),
        auth::unix_now(),
    );
    let send = || {
        client()
            .post(worker.url("/v1/cache"))
            .header("x-cluster-auth", &captured)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    let replay = send().await.unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("replayed"));
    assert_eq!(origin.hits("/img/replay.png"), 1);
    assert_eq!(
        worker
            .metric("img_proxy_requests_refused_total{reason=\"auth_replayed\"}")
            .await,
        1.0
    );
    assert!(worker.logs().contains("replayed request"));
}
