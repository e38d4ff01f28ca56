//! Request limits at the edge: `url` length and `MAX_IN_FLIGHT`, and the
//! new settings in `--help` and start-up errors.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_longer_than_8_kib_is_414() {
    let origin = Origin::start().await;
    let node = Node::spawn("", "long-url", &[]);
    node.wait_up().await;
    let long = origin.url(&format!("/img/{}.png", "a".repeat(8 * 1024)));
    let r = get_image(&node, &long, &[]).await;
    assert_eq!(r.status(), 414);
    assert!(r.text().await.unwrap().contains("at most 8192"));
    let fits = origin.url(&format!("/img/{}.png", "a".repeat(8000)));
    assert_eq!(get_image(&node, &fits, &[]).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_the_answer_is_503_at_once() {
    let origin = Origin::start().await;
    let path = origin.put("held.png", png("held", 8, 8), "image/png");
    let node = Node::spawn("", "in-flight", &[("MAX_IN_FLIGHT", "2".into())]);
    node.wait_up().await;
    origin.hold();
    let held = start_held(&node, &origin, &path, 2).await;
    let started = Instant::now();
    let r = get_image(&node, &origin.url("/img/third.png"), &[]).await;
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(header(&r, "retry-after"), "1");
    assert!(r.text().await.unwrap().contains("MAX_IN_FLIGHT 2"));
    assert_eq!(origin.hits("/img/third.png"), 0);
    // `/info` counts against the same budget as `/image`.
    let r = client()
        .get(node.url("/info"))
        .query(&[("url", origin.url("/img/third.png"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(origin.hits("/img/third.png"), 0);
    // Health is not an image request and is never held back.
    assert_eq!(
        client()
            .get(node.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    origin.release();
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(
        get_image(&node, &origin.url("/img/third.png"), &[])
            .await
            .status(),
        200
    );
}

#[test]
fn help_lists_the_edge_settings_with_their_defaults() {
    let out = std::process::Command::new(binary())
        .args(["gateway", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (var, default) in [
        ("HEADER_READ_TIMEOUT", "[default: 10s]"),
        ("KEEP_ALIVE_TIMEOUT", "[default: 60s]"),
        ("MAX_CONNECTIONS", "RLIMIT_NOFILE"),
        ("URL_SIGNING_KEYS", "URL_SIGNING_KEYS"),
        ("ALLOWED_SOURCES", "ALLOWED_SOURCES"),
        ("PRESETS", "PRESETS"),
        ("ONLY_PRESETS", "[default: false]"),
        ("MAX_IN_FLIGHT", "[default: 512]"),
        ("MAX_ORIGIN_FETCHES", "[default: 64]"),
        ("MAX_FETCHES_PER_HOST", "[default: 8]"),
    ] {
        assert!(
            help.contains(&format!("env: {var}")),
            "{var} missing from help:\n{help}"
        );
        assert!(
            help.contains(default),
            "{default} of {var} missing:\n{help}"
        );
    }
}

#[test]
fn bad_edge_settings_stop_start_up_with_one_line_naming_them() {
    for (var, value) in [
        ("URL_SIGNING_KEYS", "short"),
        ("ALLOWED_SOURCES", "http://x.com/"),
        ("PRESETS", "thumb=w:0"),
        ("ONLY_PRESETS", "perhaps"),
        ("MAX_IN_FLIGHT", "0"),
        ("MAX_ORIGIN_FETCHES", "0"),
        ("MAX_FETCHES_PER_HOST", "0"),
        ("HEADER_READ_TIMEOUT", "0s"),
        ("KEEP_ALIVE_TIMEOUT", "soon"),
        ("MAX_CONNECTIONS", "100000000"),
    ] {
        let out = std::process::Command::new(binary())
            .env_clear()
            .env(var, value)
            .env("NAME", "x")
            .env("HTTP_ADDR", format!("127.0.0.1:{}", free_tcp_port()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {err}");
        assert!(
            err.contains(var) && err.trim().lines().count() == 1,
            "{var}={value}: {err}"
        );
    }
}
