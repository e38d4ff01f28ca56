//! `blur` and `sharpen` through `GET /image`: applied to the output (the
//! quadrants' hard edges soften or steepen), validated with a 400 naming
//! the option, and part of the cache key (each variant is its own entry,
//! from one origin fetch). Pixel accuracy against a reference Gaussian is
//! tested beside the code (`pipeline/blur.rs`, `pipeline/sharpen.rs`).

mod common;

use common::answer::*;
use img_proxy_test_support::*;

/// Spread of the red channel along the middle row around the vertical
/// edge between the red and green quadrants (x = 32 of 64): how many
/// pixels are neither clearly red nor clearly green.
fn soft_pixels(img: &image::RgbaImage) -> usize {
    let y = img.height() / 4;
    (20..44)
        .filter(|&x| {
            let r = px(img, x, y)[0];
            r > 40 && r < 210
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blur_softens_the_output_and_is_its_own_variant() {
    let (origin, src, node) = quadrant_png_source("blur").await;
    let plain = ask(&node, &src, &[("format", "png")]).await;
    plain.image("image/png", (64, 48), "plain");
    let blurred = ask(&node, &src, &[("format", "png"), ("blur", "3")]).await;
    blurred.image("image/png", (64, 48), "blurred");
    assert_eq!(soft_pixels(&plain.decode()), 0, "quadrants are hard-edged");
    assert!(
        soft_pixels(&blurred.decode()) >= 6,
        "blur=3 spreads the edge"
    );
    // Same value spelled differently: the same cache entry.
    let again = ask(&node, &src, &[("format", "png"), ("blur", "3.00")]).await;
    assert_eq!(again.body, blurred.body);
    assert_eq!(
        origin.hits("/files/q.png"),
        1,
        "one fetch for every variant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharpen_steepens_edges_after_downscaling() {
    let (_origin, src, node) = quadrant_png_source("sharpen").await;
    let soft = ask(&node, &src, &[("format", "png"), ("w", "40")]).await;
    let sharp = ask(
        &node,
        &src,
        &[("format", "png"), ("w", "40"), ("sharpen", "1")],
    )
    .await;
    sharp.image("image/png", (40, 30), "sharpened");
    assert_ne!(soft.body, sharp.body);
    // Overshoot at the edge: the unsharp mask darkens the dark side.
    let (a, b) = (soft.decode(), sharp.decode());
    let min_green_red = |img: &image::RgbaImage| (20..40).map(|x| px(img, x, 7)[0]).min();
    assert!(
        min_green_red(&b) <= min_green_red(&a),
        "sharpened edge overshoots"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_are_400_naming_the_option() {
    let (_origin, src, node) = quadrant_png_source("badsigma").await;
    for (k, v) in [
        ("blur", "0.1"),
        ("blur", "101"),
        ("sharpen", "11"),
        ("sharpen", "x"),
    ] {
        let a = ask(&node, &src, &[(k, v)]).await;
        a.refused(400, &format!("`{k}`"), &format!("{k}={v}"));
    }
}
