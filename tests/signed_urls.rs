//! Signed URLs (`URL_SIGNING_KEYS`) and `img-proxy sign`.

mod common;

use common::*;

const KEY: &str = "test-signing-key-0001";
const OLD_KEY: &str = "test-signing-key-0000";

/// `img-proxy sign --key K URL NAME=VALUE...`, as a user would run it.
fn sign_cli(key: &str, url: &str, options: &[&str]) -> String {
    let out = std::process::Command::new(binary())
        .arg("sign")
        .args(["--key", key, url])
        .args(options)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn signed_node() -> Node {
    let node = Node::spawn(
        "",
        "signed",
        &[("URL_SIGNING_KEYS", format!("{KEY},{OLD_KEY}"))],
    );
    node.wait_up().await;
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_request_is_refused_without_touching_the_origin() {
    let origin = Origin::start().await;
    let node = signed_node().await;
    let r = get_image(&node, &origin.url("/img/unsigned.png"), &[("w", "8")]).await;
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("`sig` parameter is missing"));
    assert_eq!(origin.total(), 0);
    assert!(
        node.logs().contains("sig` parameter is missing"),
        "{}",
        node.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_from_the_sign_command_is_served() {
    let origin = Origin::start().await;
    let node = signed_node().await;
    let path = sign_cli(KEY, &origin.url("/img/signed.png"), &["w=8", "format=webp"]);
    let r = client().get(node.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(header(&r, "content-type"), "image/webp");
    assert_eq!(origin.hits("/img/signed.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_by_the_previous_key_still_verifies() {
    let origin = Origin::start().await;
    let node = signed_node().await;
    let path = sign_cli(OLD_KEY, &origin.url("/img/rotated.png"), &[]);
    let r = client().get(node.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_foreign_signature_is_refused_without_touching_the_origin() {
    let origin = Origin::start().await;
    let node = signed_node().await;
    let path = sign_cli(KEY, &origin.url("/img/tampered.png"), &["w=8"]);
    for bad in [
        path.replace("w=8", "w=9"),
        format!("{path}&q=50"),
        sign_cli(
            "someone-elses-key-000",
            &origin.url("/img/tampered.png"),
            &["w=8"],
        ),
    ] {
        let r = client().get(node.url(&bad)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{bad}");
        assert!(r.text().await.unwrap().starts_with("invalid signature"));
    }
    assert_eq!(origin.total(), 0);
    assert!(
        node.metric("img_proxy_requests_refused_total{reason=\"bad_signature\"}")
            .await
            >= 3.0
    );
}

/// The worked example in the README, checked against the CLI.
#[test]
fn the_readme_example_is_what_the_sign_command_prints() {
    let path = sign_cli(
        "docs-example-key-0123",
        "https://images.example.com/cats/tabby.jpg",
        &["w=300", "format=webp"],
    );
    assert_eq!(
        path,
        "/image?url=https%3A%2F%2Fimages.example.com%2Fcats%2Ftabby.jpg&w=300&format=webp&sig=5o6m8Zxfnp5Pj9muhgw6UFJQuQyws8o9tCydfEXxkiE"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&path),
        "README lacks the signed example {path}"
    );
}
