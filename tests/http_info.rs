//! `GET /info?url=U`: the image's size as displayed, format, frames,
//! alpha, orientation, source bytes, dominant colour and two placeholders;
//! cached on the owner under the URL's entry (one origin fetch for the info
//! and every variant; a purge removes it), forwarded by gateways, behind
//! the same edge checks and with the same errors as `/image`.

mod common;

use common::answer::Answer;
use common::*;
use img_proxy_test_support::*;
use serde_json::Value;

async fn info(node: &Node, source: &str) -> Answer {
    let r = client()
        .get(node.url("/info"))
        .query(&[("url", source)])
        .send()
        .await
        .unwrap();
    Answer::read(r).await
}

fn json(a: &Answer) -> Value {
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.h("content-type"), "application/json");
    serde_json::from_slice(&a.body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_an_oriented_jpeg_is_as_displayed_and_shares_one_fetch() {
    let origin = Origin::start().await;
    let jpeg = oriented_jpeg(6, 64, 48);
    let path = origin.put("o.jpg", jpeg.clone(), "image/jpeg");
    let src = origin.url(&path);
    let node = common::answer::standalone("info", &[]).await;
    let a = info(&node, &src).await;
    assert_eq!(a.h("x-cache"), "MISS");
    let v = json(&a);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(64), Some(48))
    );
    assert_eq!(v["format"], "jpeg");
    assert_eq!(v["frames"], 1);
    assert_eq!(v["has_alpha"], false);
    assert_eq!(v["orientation"], 6);
    assert_eq!(v["source_bytes"].as_u64(), Some(jpeg.len() as u64));
    let colour = v["dominant_color"].as_str().unwrap();
    assert!(colour.starts_with('#') && colour.len() == 7, "{colour}");
    for p in ["thumbhash", "blurhash"] {
        let s = v[p].as_str().unwrap();
        assert!(!s.is_empty() && s.len() < 100, "{p}: {s}");
    }
    // Cached, and the variants come from the same original.
    assert_eq!(info(&node, &src).await.h("x-cache"), "HIT");
    let img = common::answer::ask(&node, &src, &[("w", "32")]).await;
    img.image("image/jpeg", (32, 24), "variant");
    assert_eq!(
        origin.hits(&path),
        1,
        "one fetch for the info and the variant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_has_the_errors_of_image() {
    let origin = Origin::start().await;
    let node = common::answer::standalone("info-errors", &[]).await;
    info(&node, &origin.url("/html"))
        .await
        .refused(422, "not a supported image", "html");
    info(&node, &origin.url("/status/404"))
        .await
        .refused(404, "", "404");
    let r = client().get(node.url("/info")).send().await.unwrap();
    Answer::read(r).await.refused(400, "`url`", "no url");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_forwards_info_to_the_owner_and_a_purge_removes_it() {
    let origin = Origin::start().await;
    let path = origin.put("p.png", quadrant_png(64, 48), "image/png");
    let src = origin.url(&path);
    let token = "info-admin-token";
    let cluster = Cluster::start(1, 2, &[("ADMIN_TOKEN", token.to_string())]).await;
    let gw = &cluster.gateways[0];
    let first = info(gw, &src).await;
    let v = json(&first);
    assert_eq!(
        (v["width"].as_u64(), v["format"].as_str()),
        (Some(64), Some("png"))
    );
    assert!(first.h("x-served-by").starts_with("worker-"));
    let again = info(gw, &src).await;
    assert_eq!(again.h("x-cache"), "HIT");
    assert_eq!(again.body, first.body);
    let purge = client()
        .delete(gw.url("/image"))
        .query(&[("url", src.as_str())])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(purge.status(), 200);
    assert_eq!(info(gw, &src).await.h("x-cache"), "MISS");
    assert_eq!(origin.hits(&path), 2, "fetched again after the purge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_is_signed_like_image() {
    let key = "info-signing-key-0001";
    let origin = Origin::start().await;
    let src = origin.url(&origin.put("s.png", quadrant_png(8, 8), "image/png"));
    let node =
        common::answer::standalone("info-signed", &[("URL_SIGNING_KEYS", key.to_string())]).await;
    info(&node, &src)
        .await
        .refused(403, "`sig` parameter is missing", "unsigned");
    assert_eq!(origin.total(), 0);
    let out = std::process::Command::new(binary())
        .args(["sign", "--key", key, &src])
        .env_clear()
        .output()
        .unwrap();
    let signed = String::from_utf8(out.stdout).unwrap();
    let path = signed.trim().replacen("/image?", "/info?", 1);
    let r = client().get(node.url(&path)).send().await.unwrap();
    assert_eq!(json(&Answer::read(r).await)["width"], 8);
}
