//! The disk tier (`CACHE_DIR`): what survives a restart and what a damaged
//! entry does. Start-up errors about it are in `startup.rs`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// A worker (in a standalone node, which runs the same worker code without
/// gossip) caching into `dir`.
async fn node_on(dir: &Path, http: std::net::SocketAddr) -> Node {
    node_with(dir, http, &[]).await
}

/// [`node_on`] with further settings.
async fn node_with(dir: &Path, http: std::net::SocketAddr, extra: &[(&str, String)]) -> Node {
    let gossip = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let mut env = vec![
        ("CACHE_DIR", dir.display().to_string()),
        ("CACHE_DISK_BYTES", "64MiB".into()),
    ];
    env.extend(extra.iter().cloned());
    let node = Node::spawn_at("", "disk", http, gossip, &env);
    node.wait_up().await;
    node
}

/// Waits for the process to exit by itself (after SIGTERM).
async fn wait_exit(node: &mut Node) {
    let mut child = node.child.take().expect("running");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("node did not exit after SIGTERM")
        .unwrap();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        node.logs()
    );
}

/// Fetches the original and one variant, both misses, and returns their bytes.
async fn warm(node: &Node, source: &str) -> (Vec<u8>, Vec<u8>) {
    let r = get_image(node, source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");
    let original = r.bytes().await.unwrap().to_vec();
    let r = get_image(node, source, &[("w", "8"), ("format", "png")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");
    (original, r.bytes().await.unwrap().to_vec())
}

/// Asks again after the restart: both must be hits with the same bytes.
async fn expect_hits(node: &Node, source: &str, original: &[u8], variant: &[u8]) {
    let r = get_image(node, source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "HIT", "log:\n{}", node.logs());
    assert_eq!(&r.bytes().await.unwrap()[..], original);
    let r = get_image(node, source, &[("w", "8"), ("format", "png")]).await;
    assert_eq!(header(&r, "x-cache"), "HIT");
    assert_eq!(&r.bytes().await.unwrap()[..], variant);
    assert!(node.metric("img_proxy_cache_disk_hits_total").await >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_sigterm_serves_disk_entries_as_hits() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let mut node = node_on(dir.path(), http).await;
    let source = origin.url("/img/term.png");
    let (original, variant) = warm(&node, &source).await;
    node.signal("TERM");
    wait_exit(&mut node).await;

    let node = node_on(dir.path(), http).await;
    // The original and the variant, counted across the graceful restart.
    assert_eq!(node.metric("img_proxy_cache_disk_entries").await, 2.0);
    expect_hits(&node, &source, &original, &variant).await;
    assert_eq!(origin.hits("/img/term.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_sigkill_serves_disk_entries_as_hits() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let mut node = node_on(dir.path(), http).await;
    let source = origin.url("/img/kill.png");
    let (original, variant) = warm(&node, &source).await;
    // Writes go to disk in the background right after the answer; give
    // them a moment, as a crash a second after a request would.
    tokio::time::sleep(Duration::from_secs(1)).await;
    node.kill().await;

    let node = node_on(dir.path(), http).await;
    expect_hits(&node, &source, &original, &variant).await;
    assert_eq!(origin.hits("/img/kill.png"), 1);
}

/// Flips one byte in the middle of `needle` wherever the cache files hold
/// it; returns how many copies were damaged.
fn damage(dir: &Path, needle: &[u8]) -> usize {
    let mut damaged = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let mut data = std::fs::read(&path).unwrap();
        let mut changed = false;
        let mut from = 0;
        while let Some(pos) = data[from..].windows(needle.len()).position(|w| w == needle) {
            let at = from + pos + needle.len() / 2;
            data[at] ^= 0x10;
            damaged += 1;
            changed = true;
            from = at + 1;
        }
        if changed {
            std::fs::write(&path, &data).unwrap();
        }
    }
    damaged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_disk_entry_is_refetched_never_served() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let mut node = node_on(dir.path(), http).await;
    let source = origin.url("/img/flip.png");
    let r = get_image(&node, &source, &[]).await;
    let original = r.bytes().await.unwrap().to_vec();
    node.signal("TERM");
    wait_exit(&mut node).await;
    assert!(
        damage(dir.path(), &original) >= 1,
        "entry not found on disk"
    );

    let node = node_on(dir.path(), http).await;
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(&r.bytes().await.unwrap()[..], &original[..]);
    assert_eq!(origin.hits("/img/flip.png"), 2);
    assert_eq!(node.metric("img_proxy_cache_disk_corrupt_total").await, 1.0);
    assert!(node.logs().contains("damaged disk cache entry"));
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(header(&r, "x-cache"), "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_expired_while_the_worker_was_down_is_fetched_again() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    // No stale window: the expired copy may not be served at all.
    let ttl = [
        ("CACHE_TTL", "2s".to_string()),
        ("STALE_TTL", "0s".to_string()),
    ];
    let mut node = node_with(dir.path(), http, &ttl).await;
    let source = origin.url("/img/expire.png");
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");
    node.signal("TERM");
    wait_exit(&mut node).await;
    // Down for longer than the TTL: the disk copy is stale on return.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let node = node_with(dir.path(), http, &ttl).await;
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS", "log:\n{}", node.logs());
    assert_eq!(origin.hits("/img/expire.png"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_expired_while_the_worker_was_down_is_served_stale_then_revalidated() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let ttl = [
        ("CACHE_TTL", "2s".to_string()),
        ("STALE_TTL", "1h".to_string()),
    ];
    let mut node = node_with(dir.path(), http, &ttl).await;
    let source = origin.url("/img/stale.png");
    let (original, _) = warm(&node, &source).await;
    node.signal("TERM");
    wait_exit(&mut node).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Not a hit: expired; in the stale window, so answered at once as
    // STALE while the origin is asked again in the background.
    let node = node_with(dir.path(), http, &ttl).await;
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "STALE", "log:\n{}", node.logs());
    assert_eq!(&r.bytes().await.unwrap()[..], &original[..]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    // This origin sends no validators: the same bytes again count as 304.
    while node
        .metric("img_proxy_cache_revalidations_total{result=\"304\"}")
        .await
        < 1.0
    {
        assert!(std::time::Instant::now() < deadline, "not revalidated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.hits("/img/stale.png"), 2);
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(header(&r, "x-cache"), "HIT");
}
