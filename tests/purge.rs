//! `DELETE /image?url=U` with `ADMIN_TOKEN`: who may purge, and that no node
//! serves the old bytes afterwards, even one that was down during the purge.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;

const TOKEN: &str = "admin-token-for-tests";

async fn purge(node: &Node, source: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .delete(node.url("/image"))
        .query(&[("url", source)]);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_is_disabled_without_admin_token() {
    let origin = Origin::start().await;
    let node = Node::spawn("", "solo", &[]);
    node.wait_up().await;
    let r = purge(&node, &origin.url("/img/a.png"), Some("anything")).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("purge is disabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_needs_the_right_token_and_removes_original_and_variants() {
    let origin = Origin::start().await;
    let node = Node::spawn("", "solo", &[("ADMIN_TOKEN", TOKEN.into())]);
    node.wait_up().await;
    let source = origin.url("/img/p.png");
    assert_eq!(get_image(&node, &source, &[]).await.status(), 200);
    assert_eq!(get_image(&node, &source, &[("w", "8")]).await.status(), 200);

    let r = purge(&node, &source, None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "www-authenticate"), "Bearer");
    assert_eq!(
        purge(&node, &source, Some("wrong-token")).await.status(),
        401
    );
    assert_eq!(
        get_image(&node, &source, &[]).await.headers()["x-cache"],
        "HIT"
    );

    let r = purge(&node, &source, Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["url"], source.as_str());
    assert_eq!(body["removed"], 2);
    let r = get_image(&node, &source, &[("w", "8")]).await;
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(origin.hits("/img/p.png"), 2);
    assert_eq!(
        node.metric("img_proxy_cache_purged_entries_total").await,
        2.0
    );
}

/// A worker with its own disk tier, joining through `seed`.
fn worker(name: &str, http: SocketAddr, gossip: SocketAddr, seed: SocketAddr, dir: &Path) -> Node {
    Node::spawn_at(
        "worker",
        name,
        http,
        gossip,
        &[
            ("CLUSTER_SECRET", SECRET.into()),
            ("KNOWN_HOSTS", seed.to_string()),
            ("CACHE_DIR", dir.display().to_string()),
            ("CACHE_DISK_BYTES", "16MiB".into()),
        ],
    )
}

fn addr() -> (SocketAddr, SocketAddr) {
    (
        format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap(),
        format!("127.0.0.1:{}", free_udp_port()).parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_reaches_every_node_and_a_worker_that_was_down() {
    let origin = Origin::start().await;
    let old = png("old", 40, 30);
    let path = origin.put("photo.png", old.clone(), "image/png");
    let source = origin.url(&path);

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let addrs: Vec<(SocketAddr, SocketAddr)> = (0..3).map(|_| addr()).collect();
    let seed = addrs[0].1;
    let names = ["worker-0", "worker-1", "worker-2"];
    let mut workers: Vec<Node> = (0..3)
        .map(|i| worker(names[i], addrs[i].0, addrs[i].1, seed, dirs[i].path()))
        .collect();
    let gw_env = [
        ("CLUSTER_SECRET", SECRET.to_string()),
        ("KNOWN_HOSTS", seed.to_string()),
        ("ADMIN_TOKEN", TOKEN.to_string()),
    ];
    let gateways = [
        Node::spawn("gateway", "gateway-0", &gw_env),
        Node::spawn("gateway", "gateway-1", &gw_env),
    ];
    for g in &gateways {
        g.wait_up().await;
        g.wait_members("worker", &names, Duration::from_secs(20))
            .await;
    }

    // Warm the original and a variant on the owner, then stop the owner.
    let r = get_image(&gateways[0], &source, &[]).await;
    assert_eq!(&r.bytes().await.unwrap()[..], &old[..]);
    let r = get_image(&gateways[0], &source, &[("w", "20")]).await;
    let owner = header(&r, "x-served-by").to_string();
    let old_variant = r.bytes().await.unwrap();
    let i = names.iter().position(|n| *n == owner).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    workers[i].signal("TERM");
    let mut child = workers[i].child.take().unwrap();
    tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    let rest: Vec<&str> = names.iter().copied().filter(|n| *n != owner).collect();
    for g in &gateways {
        g.wait_members("worker", &rest, Duration::from_secs(20))
            .await;
    }

    // The image changes at its origin and is purged through the other gateway.
    let new = png("new", 40, 30);
    origin.put("photo.png", new.clone(), "image/png");
    let r = purge(&gateways[1], &source, Some(TOKEN)).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);

    // The owner comes back from its disk tier and must not serve the old bytes.
    workers[i] = worker(&owner, addrs[i].0, addrs[i].1, seed, dirs[i].path());
    for g in &gateways {
        g.wait_members("worker", &names, Duration::from_secs(20))
            .await;
    }
    for g in &gateways {
        let r = get_image(g, &source, &[]).await;
        assert_eq!(header(&r, "x-served-by"), owner);
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            &new[..],
            "old bytes after purge"
        );
        let r = get_image(g, &source, &[("w", "20")]).await;
        assert_ne!(
            r.bytes().await.unwrap(),
            old_variant,
            "old variant after purge"
        );
    }
    assert_eq!(origin.hits(&path), 2);
}
