//! A standalone node (the default with no subcommand): gateway and worker
//! in one process, without gossip.

mod common;

use std::process::Stdio;

use common::*;

async fn solo() -> Node {
    let node = Node::spawn("", "solo", &[]);
    node.wait_up().await;
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_node_fetches_once_and_then_answers_from_its_cache() {
    let origin = Origin::start().await;
    let node = solo().await;
    let source = origin.url("/img/solo.png");
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(header(&r, "x-served-by"), "solo");
    assert!(!header(&r, "x-request-id").is_empty());
    assert_eq!(&r.bytes().await.unwrap()[..], &png("solo.png", 16, 12)[..]);
    let r = get_image(&node, &source, &[]).await;
    assert_eq!(header(&r, "x-cache"), "HIT");
    assert_eq!(origin.hits("/img/solo.png"), 1);
}

/// Threads of process `pid` whose name is `name` (`/proc/<pid>/task/*/comm`).
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_threads_sets_how_many_threads_serve_http() {
    let origin = Origin::start().await;
    let source = origin.url("/img/threads.png");
    for threads in [1usize, 3] {
        let node = Node::spawn("", "threads", &[("IO_THREADS", threads.to_string())]);
        node.wait_up().await;
        let r = get_image(&node, &source, &[]).await;
        assert_eq!(r.status(), 200);
        let pid = node.child.as_ref().and_then(|c| c.id()).expect("node runs");
        assert_eq!(threads_named(pid, "tokio-rt-worker"), threads);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_the_node_as_its_only_member() {
    let node = solo().await;
    let health: serde_json::Value = client()
        .get(node.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["name"], "solo");
    assert_eq!(health["role"], "standalone");
    assert_eq!(health["members"][0]["name"], "solo");
}

/// The edge checks wrap only the methods `/image` serves: any other method
/// is 405 with the methods it allows, even where the checks would refuse
/// the request (here: no URL signature), and reaches no origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_image_does_not_serve_is_405_before_the_edge_checks() {
    let origin = Origin::start().await;
    let keys = ("URL_SIGNING_KEYS", "k".repeat(32));
    let node = Node::spawn("", "methods", &[keys]);
    node.wait_up().await;
    let source = origin.url("/img/methods.png");
    let r = client()
        .post(node.url("/image"))
        .query(&[("url", &source)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let allow = header(&r, "allow");
    assert!(allow.contains("GET") && allow.contains("DELETE"), "{allow}");
    // The same request as a GET meets the signature check.
    let r = client()
        .get(node.url("/image"))
        .query(&[("url", &source)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(origin.hits("/img/methods.png"), 0);
}

/// No secret, no internal API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_node_serves_no_internal_api() {
    let origin = Origin::start().await;
    let node = solo().await;
    let r = client()
        .get(node.url("/v1/image"))
        .query(&[("url", origin.url("/img/solo.png"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_prometheus_text_counting_the_traffic() {
    let origin = Origin::start().await;
    let node = solo().await;
    let source = origin.url("/img/solo.png");
    get_image(&node, &source, &[]).await;
    get_image(&node, &source, &[]).await;
    let r = client().get(node.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for name in [
        "img_proxy_gateway_requests_total",
        "img_proxy_gateway_request_duration_seconds_bucket",
        "img_proxy_cache_hits_total 1",
        "img_proxy_cache_misses_total 1",
        "img_proxy_cache_entries 1",
        "img_proxy_origin_fetch_duration_seconds_count 1",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    check_with_promtool(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_names_the_request_id() {
    let origin = Origin::start().await;
    let node = solo().await;
    let r = client()
        .get(node.url("/image"))
        .query(&[("url", origin.url("/img/logged.png").as_str())])
        .header("x-request-id", "logged-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = node.logs();
    assert!(
        logs.contains("request_id") && logs.contains("logged-7"),
        "{logs}"
    );
}

/// Runs `promtool check metrics` when promtool is installed (CI installs it).
fn check_with_promtool(text: &str) {
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(std::env::var("CI").is_err(), "promtool is required in CI");
        eprintln!("promtool not found; skipping the format lint");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool rejected the metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
