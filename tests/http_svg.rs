//! SVG sources through `GET /image`: recognised by content, drawn at the
//! requested size to PNG (default), WebP or another raster format, never
//! served as SVG; and hostile files: references to local files or internal
//! URLs are never followed (a counting server on 127.0.0.1 sees nothing),
//! an entity bomb is refused at once, a huge size is fitted.

mod common;

use std::time::{Duration, Instant};

use common::answer::{ask, standalone};
use common::*;
use img_proxy_test_support::*;

/// 40x20: left half red, right half blue.
const HALVES: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 20" width="40" height="20"><rect width="20" height="20" fill="#ff0000"/><rect x="20" width="20" height="20" fill="#0000ff"/></svg>"##;

fn halves(img: &image::RgbaImage) {
    let (w, h) = img.dimensions();
    assert!(
        close(px(img, w / 4, h / 2), [255, 0, 0, 255], 8),
        "{:?}",
        px(img, w / 4, h / 2)
    );
    assert!(close(px(img, 3 * w / 4, h / 2), [0, 0, 255, 255], 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svg_is_drawn_at_the_requested_size_never_served_as_svg() {
    let origin = Origin::start().await;
    // The origin's type is ignored: the content says SVG.
    let path = origin.put("h.txt", HALVES.as_bytes().to_vec(), "text/plain");
    let src = origin.url(&path);
    let node = standalone("svg-size", &[]).await;
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (40, 20), "default size, PNG");
    halves(&a.decode());
    let a = ask(&node, &src, &[("w", "400")]).await;
    a.image("image/png", (400, 200), "drawn larger");
    let img = a.decode();
    halves(&img);
    // Drawn at 400 px, not scaled up: the edge between the halves is sharp.
    let soft = (190..210)
        .filter(|&x| {
            let r = px(&img, x, 100)[0];
            r > 30 && r < 225
        })
        .count();
    assert!(soft <= 1, "{soft} soft pixels at the edge");
    let a = ask(&node, &src, &[("w", "100"), ("format", "webp")]).await;
    a.image("image/webp", (100, 50), "WebP");
    halves(&a.decode());
    let a = ask(&node, &src, &[("w", "20"), ("h", "20"), ("fit", "cover")]).await;
    a.image("image/png", (20, 20), "cover");
    assert_eq!(origin.hits(&path), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_to_files_and_internal_urls_are_never_followed() {
    let origin = Origin::start().await;
    let internal = Origin::start_on("127.0.0.1").await;
    let secret = internal.url(&internal.put("secret.png", quadrant_png(8, 8), "image/png"));
    let node = standalone("svg-refs", &[]).await;
    let drawn = [
        format!(r#"<image href="{secret}" width="10" height="10"/>"#),
        r#"<image href="file:///etc/passwd" width="10" height="10"/>"#.to_string(),
        format!(r#"<use href="{secret}#x"/><use href="file:///etc/passwd#x"/>"#),
        format!(r#"<rect width="10" height="10" fill="url({secret}#g)"/>"#),
    ];
    for (i, body) in drawn.iter().enumerate() {
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">{body}</svg>"#
        );
        let src = origin.url(&origin.put(&format!("r{i}.svg"), svg.into_bytes(), "image/svg+xml"));
        let a = ask(&node, &src, &[("format", "png")]).await;
        a.image("image/png", (10, 10), body);
    }
    for (i, entity) in [secret.as_str(), "file:///etc/passwd"].iter().enumerate() {
        let svg = format!(
            r#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "{entity}">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&x;</text></svg>"#
        );
        let src = origin.url(&origin.put(&format!("e{i}.svg"), svg.into_bytes(), "image/svg+xml"));
        let a = ask(&node, &src, &[]).await;
        a.refused(422, "external entity", entity);
        assert!(!a.text().contains("root:"), "no file content in the answer");
    }
    assert_eq!(internal.total(), 0, "the internal server saw a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_bomb_is_refused_at_once() {
    let origin = Origin::start().await;
    let mut bomb =
        String::from(r#"<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY l0 "lollollollollollol">"#);
    for i in 1..=9 {
        bomb.push_str(&format!(
            "<!ENTITY l{i} \"{}\">",
            format!("&l{};", i - 1).repeat(10)
        ));
    }
    bomb.push_str(r#"]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><desc>&l9;</desc></svg>"#);
    let src = origin.url(&origin.put("bomb.svg", bomb.into_bytes(), "image/svg+xml"));
    let node = standalone("svg-bomb", &[]).await;
    let started = Instant::now();
    ask(&node, &src, &[("w", "10")])
        .await
        .refused(422, "entity", "billion laughs");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_declared_size_is_fitted_into_max_source_pixels() {
    let origin = Origin::start().await;
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000000000 1000000000"><rect width="1000000000" height="1000000000" fill="#00ff00"/></svg>"##;
    let src = origin.url(&origin.put("huge.svg", svg.as_bytes().to_vec(), "image/svg+xml"));
    let node = standalone("svg-huge", &[("MAX_SOURCE_PIXELS", "40000".to_string())]).await;
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (200, 200), "fitted default size");
    assert!(close(px(&a.decode(), 100, 100), [0, 255, 0, 255], 2));
    ask(&node, &src, &[("w", "50")])
        .await
        .image("image/png", (50, 50), "w=50");
    // Asked beyond the limit: refused like any output over it.
    ask(
        &node,
        &src,
        &[("w", "1000"), ("h", "1000"), ("fit", "fill")],
    )
    .await
    .refused(422, "too large", "over the limit");
}
