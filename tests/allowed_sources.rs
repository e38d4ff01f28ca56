//! `ALLOWED_SOURCES`: only listed hosts are fetched.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_host_is_served_and_look_alikes_are_refused_before_any_fetch() {
    let origin = Origin::start().await;
    let node = Node::spawn(
        "",
        "sources",
        &[("ALLOWED_SOURCES", format!("images.example.com,{ORIGIN_IP}"))],
    );
    node.wait_up().await;
    let r = get_image(&node, &origin.url("/img/allowed.png"), &[]).await;
    assert_eq!(r.status(), 200);
    let port = origin.addr.port();
    for (source, host) in [
        (
            format!("http://{ORIGIN_IP}:{port}@evil.example/img/a.png"),
            "evil.example",
        ),
        (
            format!("http://{ORIGIN_IP}.evil.example:{port}/img/a.png"),
            "127.0.0.2.evil.example",
        ),
        (
            "http://images.example.com.evil.example/a.png".to_string(),
            "images.example.com.evil.example",
        ),
        ("http://127.0.0.3/img/a.png".to_string(), "127.0.0.3"),
    ] {
        let r = get_image(&node, &source, &[]).await;
        assert_eq!(r.status(), 403, "{source}");
        let body = r.text().await.unwrap();
        assert_eq!(
            body.trim(),
            format!("source host {host} is not allowed (ALLOWED_SOURCES)")
        );
    }
    assert_eq!(origin.total(), 1);
    assert!(node.logs().contains("not allowed (ALLOWED_SOURCES)"));
}
