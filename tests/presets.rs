//! `PRESETS`, `preset=NAME` and `ONLY_PRESETS`.

mod common;

use common::answer::Answer;
use common::*;

const PRESETS: &str = "thumb=w:8,h:8,fit:cover;avatar=w:4,h:4,fit:cover,format:webp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preset_is_its_options() {
    let origin = Origin::start().await;
    let node = Node::spawn("", "presets", &[("PRESETS", PRESETS.into())]);
    node.wait_up().await;
    let source = origin.url("/img/preset.png");
    let r = get_image(&node, &source, &[("preset", "avatar")]).await;
    Answer::read(r)
        .await
        .image("image/webp", (4, 4), "preset=avatar");
    // The same variant spelled out is the same cache entry.
    let r = get_image(
        &node,
        &source,
        &[("w", "4"), ("h", "4"), ("fit", "cover"), ("format", "webp")],
    )
    .await;
    assert_eq!(header(&r, "x-cache"), "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_preset_is_400_naming_it() {
    let origin = Origin::start().await;
    let node = Node::spawn("", "presets-unknown", &[("PRESETS", PRESETS.into())]);
    node.wait_up().await;
    let r = get_image(&node, &origin.url("/img/p.png"), &[("preset", "poster")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap().trim(), "unknown preset `poster`");
    assert_eq!(origin.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_presets_refuses_options_of_the_request() {
    let origin = Origin::start().await;
    let node = Node::spawn(
        "",
        "presets-only",
        &[("PRESETS", PRESETS.into()), ("ONLY_PRESETS", "true".into())],
    );
    node.wait_up().await;
    let source = origin.url("/img/only.png");
    let r = get_image(&node, &source, &[("w", "100")]).await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("option `w` is not allowed"));
    let r = get_image(&node, &source, &[("preset", "thumb"), ("q", "20")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(origin.total(), 0);
    let r = get_image(&node, &source, &[("preset", "thumb")]).await;
    Answer::read(r)
        .await
        .image("image/png", (8, 8), "preset=thumb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_covers_the_preset_name() {
    let origin = Origin::start().await;
    let key = "preset-signing-key-01";
    let node = Node::spawn(
        "",
        "presets-signed",
        &[
            ("PRESETS", PRESETS.into()),
            ("URL_SIGNING_KEYS", key.into()),
        ],
    );
    node.wait_up().await;
    let out = std::process::Command::new(binary())
        .args([
            "sign",
            "--key",
            key,
            &origin.url("/img/ps.png"),
            "preset=thumb",
        ])
        .output()
        .unwrap();
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let r = client().get(node.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let swapped = path.replace("preset=thumb", "preset=avatar");
    let r = client().get(node.url(&swapped)).send().await.unwrap();
    assert_eq!(r.status(), 403);
}
