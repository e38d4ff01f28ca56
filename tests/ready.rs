//! `GET /ready`: 503 until a node can do its job, 200 after; `/health`
//! stays the liveness answer throughout.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

async fn status(node: &Node, path: &str) -> (u16, String) {
    let r = client().get(node.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Polls `/ready` until it answers `want`, or fails after `within`.
async fn wait_ready_status(node: &Node, want: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (got, body) = status(node, "/ready").await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} /ready stayed {got} ({body:?}), expected {want}; log:\n{}",
            node.name,
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_is_ready_only_once_it_sees_a_worker() {
    let seed: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let env = [
        ("CLUSTER_SECRET", SECRET.to_string()),
        ("KNOWN_HOSTS", seed.to_string()),
    ];
    let gateway = Node::spawn("gateway", "ready-gw", &env);
    gateway.wait_up().await;
    // Alive, but with no worker every image request would be a 503.
    assert_eq!(status(&gateway, "/health").await.0, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (code, body) = status(&gateway, "/ready").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body, "not ready: no live worker\n");

    let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let worker = Node::spawn_at("worker", "ready-wk", http, seed, &env);
    worker.wait_up().await;
    wait_ready_status(&worker, 200, Duration::from_secs(10)).await;
    wait_ready_status(&gateway, 200, Duration::from_secs(15)).await;
    assert_eq!(status(&gateway, "/ready").await.1, "ready\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_is_not_ready_again_when_its_last_worker_leaves() {
    let cluster = Cluster::start(1, 1, &[]).await;
    let gateway = &cluster.gateways[0];
    wait_ready_status(gateway, 200, Duration::from_secs(10)).await;
    // SIGTERM: the worker announces it is leaving.
    cluster.workers[0].signal("TERM");
    wait_ready_status(gateway, 503, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_node_is_ready_at_once() {
    let node = Node::spawn("", "ready-solo", &[]);
    node.wait_up().await;
    assert_eq!(status(&node, "/ready").await, (200, "ready\n".to_string()));
}
