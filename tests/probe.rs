//! `img-proxy probe URL`: the image's healthcheck, exit 0 on 2xx only.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

async fn probe(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = tokio::process::Command::new(binary())
        .arg("probe")
        .args(args)
        .output()
        .await
        .unwrap();
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_succeeds_on_a_ready_node() {
    let node = Node::spawn("", "probe-ok", &[]);
    node.wait_up().await;
    let (out, _) = probe(&[&node.url("/ready")]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_on_a_gateway_that_sees_no_worker() {
    let env = [
        ("CLUSTER_SECRET", SECRET.to_string()),
        ("KNOWN_HOSTS", String::new()),
    ];
    let gateway = Node::spawn("gateway", "probe-gw", &env);
    gateway.wait_up().await;
    let (out, _) = probe(&[&gateway.url("/ready")]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("503"), "{err}");
    // The same node is alive.
    let (out, _) = probe(&[&gateway.url("/health")]).await;
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_fast_when_nothing_listens() {
    let url = format!("http://127.0.0.1:{}/ready", free_tcp_port());
    let (out, took) = probe(&[&url]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_gives_up_after_its_timeout() {
    let origin = Origin::start().await;
    let (out, took) = probe(&["--timeout", "500ms", &origin.url("/hang")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
