//! `/dashboard.json` and `/dashboard` on a real cluster (one gateway, two
//! workers as processes on loopback) and on a standalone node.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

async fn dashboard(node: &Node) -> Value {
    let r = client()
        .get(node.url("/dashboard.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/json");
    assert_eq!(header(&r, "cache-control"), "no-store");
    r.json().await.unwrap()
}

fn worker<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {d:#}"))
}

fn sum(d: &Value, field: &str) -> f64 {
    d["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{field} in {w}"))
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_reports_both_workers_and_their_numbers_move_with_traffic() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 2, &[]).await;
    let gw = &cluster.gateways[0];

    let before = dashboard(gw).await;
    assert_eq!(before["node"], "gateway-0");
    assert_eq!(before["role"], "gateway");
    assert_eq!(before["hash_share_keys"], 4096);
    let members = before["members"].as_array().unwrap();
    for name in ["gateway-0", "worker-0", "worker-1"] {
        let m = members.iter().find(|m| m["name"] == name).unwrap();
        assert_eq!(m["state"], "live", "{m}");
        assert!(m["addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{m}");
        assert!(m["uptime_seconds"].as_u64().is_some(), "{m}");
    }
    for name in ["worker-0", "worker-1"] {
        let w = worker(&before, name);
        let share = w["hash_share"].as_f64().unwrap();
        assert!((0.4..0.6).contains(&share) && share != 0.5, "{w}");
        assert_eq!(w["requests"], 0, "{w}");
        assert_eq!(w["entries"], 0, "{w}");
        assert_eq!(w["hit_ratio"], Value::Null, "{w}");
    }
    assert!((sum(&before, "hash_share") - 1.0).abs() < 1e-9);

    for round in 0..2 {
        for i in 0..20 {
            let r = get_image(gw, &origin.url(&format!("/img/d{i}.png")), &[]).await;
            assert_eq!(r.status(), 200, "round {round}");
        }
    }
    // Reports are reused for a second; the rate needs a sample a second old.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = dashboard(gw).await;
    assert_eq!(after["requests"]["total"], 40);
    let rate = after["requests"]["per_second"].as_f64().unwrap();
    assert!(rate > 0.0, "{after:#}");
    assert_eq!(sum(&after, "requests"), 40.0, "{after:#}");
    assert_eq!(sum(&after, "routed"), 40.0, "{after:#}");
    assert_eq!(sum(&after, "entries"), 20.0, "{after:#}");
    assert_eq!(sum(&after, "hits"), 20.0, "{after:#}");
    assert!((sum(&after, "request_share") - 1.0).abs() < 1e-9);
    for name in ["worker-0", "worker-1"] {
        let w = worker(&after, name);
        let served = cluster
            .worker(name)
            .metric("img_proxy_cache_misses_total")
            .await;
        assert!(served > 0.0, "{name} got no URL of 20: {after:#}");
        assert_eq!(w["requests"].as_f64().unwrap(), 2.0 * served, "{w}");
        assert_eq!(w["entries"].as_f64().unwrap(), served, "{w}");
        assert_eq!(w["routed"].as_f64().unwrap(), 2.0 * served, "{w}");
        assert!(w["bytes"].as_u64().unwrap() > 0, "{w}");
        assert_eq!(w["hit_ratio"], 0.5, "{w}");
        assert_eq!(w["error"], Value::Null, "{w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_is_served_under_a_strict_content_security_policy() {
    let node = Node::spawn("standalone", "solo", &[]);
    node.wait_up().await;
    let r = client().get(node.url("/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    let csp = header(&r, "content-security-policy").to_string();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<table id=\"workers\">"), "{html}");

    let d = dashboard(&node).await;
    assert_eq!(d["role"], "standalone");
    assert_eq!(d["members"][0]["name"], "solo");
    assert_eq!(d["members"][0]["state"], "live");
    assert_eq!(d["workers"][0]["name"], "solo");
    assert_eq!(d["workers"][0]["hash_share"], 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_is_listed_dead_and_leaves_the_worker_rows() {
    let mut cluster = Cluster::start(1, 2, &[]).await;
    cluster.workers[1].kill().await;
    let gw = &cluster.gateways[0];
    gw.wait_members("worker", &["worker-0"], Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the reused report
    let d = dashboard(gw).await;
    let workers: Vec<&str> = d["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(workers, ["worker-0"], "{d:#}");
    assert_eq!(worker(&d, "worker-0")["hash_share"], 1.0);
    let dead = d["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "worker-1")
        .unwrap_or_else(|| panic!("worker-1 forgotten: {d:#}"));
    assert_eq!(dead["state"], "dead", "{d:#}");
    assert_eq!(dead["uptime_seconds"], 0, "{d:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stopped_with_sigterm_is_listed_left_not_dead() {
    let cluster = Cluster::start(1, 2, &[]).await;
    cluster.workers[1].signal("TERM");
    let gw = &cluster.gateways[0];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let d = dashboard(gw).await;
        let state = d["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "worker-1")
            .map(|m| m["state"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("worker-1 forgotten: {d:#}"));
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "left" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "states seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!seen.contains(&"dead".to_string()), "states seen: {seen:?}");
}
