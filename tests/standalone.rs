//! A standalone node (the default with no subcommand) and start-up errors.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_node_fetches_caches_and_reports() {
    let origin = Origin::start().await;
    let node = Node::spawn("", "solo", &[]);
    node.wait_up().await;
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

    // No secret, no internal API.
    let r = client()
        .get(node.url("/v1/image"))
        .query(&[("url", &source)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

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

    // The request log names the request id.
    assert!(node.logs().contains("request_id"));
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

async fn start_error(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.args(args).env_clear().stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .expect("start-up error must not hang")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn startup_errors_name_the_variable_and_exit_non_zero() {
    let (code, err) = start_error(&["gateway"], &[("NAME", "g")]).await;
    assert_ne!(code, 0);
    assert!(err.contains("CLUSTER_SECRET"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (code, err) = start_error(
        &["worker"],
        &[("CACHE_TTL", "forever"), ("CLUSTER_SECRET", SECRET)],
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("CACHE_TTL"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (code, err) = start_error(&[], &[("CACHE_MAX_BYTES", "huge")]).await;
    assert_ne!(code, 0);
    assert!(err.contains("CACHE_MAX_BYTES"), "{err}");

    for var in ["MAX_SOURCE_PIXELS", "MAX_ANIMATION_FRAMES"] {
        let (code, err) = start_error(&[], &[(var, "0")]).await;
        assert_ne!(code, 0);
        assert!(err.contains(var), "{err}");
    }

    let (code, err) = start_error(&[], &[("ALLOWED_SOURCE_NETWORKS", "10.0.0.0/99")]).await;
    assert_ne!(code, 0);
    assert!(err.contains("ALLOWED_SOURCE_NETWORKS"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, err) = start_error(&[], &[("HTTP_ADDR", addr.as_str()), ("NAME", "n")]).await;
    assert_ne!(code, 0);
    assert!(err.contains("HTTP_ADDR"), "{err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("img-proxy:"))
            .count(),
        1,
        "{err}"
    );
}

#[tokio::test]
async fn help_lists_every_variable_with_its_default() {
    let out = std::process::Command::new(binary())
        .args(["worker", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (var, default) in [
        ("HTTP_ADDR", "0.0.0.0:8080"),
        ("GOSSIP_ADDR", "0.0.0.0:7946"),
        ("ADVERTISE_ADDR", ""),
        ("KNOWN_HOSTS", ""),
        ("CLUSTER_SECRET", ""),
        ("NAME", ""),
        ("CACHE_MAX_BYTES", "256MiB"),
        ("CACHE_TTL", "1h"),
        ("CACHE_DIR", ""),
        ("CACHE_DISK_BYTES", "1GiB"),
        ("ADMIN_TOKEN", ""),
        ("MAX_SOURCE_BYTES", "20MiB"),
        ("FETCH_TIMEOUT", "10s"),
        ("MAX_REDIRECTS", "5"),
        ("ALLOWED_SOURCE_NETWORKS", ""),
        ("LOG_FORMAT", "text"),
        ("MAX_SOURCE_PIXELS", "50000000"),
        ("MAX_ANIMATION_FRAMES", "1000"),
        ("MAX_QUEUE", "64"),
        ("GOSSIP_INTERVAL", "500ms"),
    ] {
        assert!(
            help.contains(&format!("env: {var}")),
            "{var} missing from help:\n{help}"
        );
        assert!(help.contains(default), "default {default} of {var} missing");
    }
}
