//! AVIF sources through `GET /image`, shown as browsers show them: rotated
//! and mirrored (`irot`/`imir`), cropped (`clap`), tiled (`grid`), stored in
//! `idat`, animated (`.avifs`: the first frame), layered (the operating
//! point and layer the file selects). Files are built box by box around AV1
//! stills from our own encoder (`common::heif_fixtures`); the layered one
//! around a real layered AV1 stream (no encoder we can build here writes
//! spatial layers; see `tests/fixtures/avif/README.md`).
#![cfg(feature = "avif-decode")]

mod common;

use common::*;
use img_proxy_test_support::heif::*;
use img_proxy_test_support::*;

/// Serves `file` and asks for it with `query`; returns status and body.
async fn ask(file: Vec<u8>, query: &[(&str, &str)]) -> (u16, bytes::Bytes) {
    let origin = Origin::start().await;
    let node = Node::spawn("", "avif", &[]);
    node.wait_up().await;
    let src = origin.url(&origin.put("x.avif", file, "image/avif"));
    let r = get_image_with(&node, &src, query, &[]).await;
    (r.status().as_u16(), r.bytes().await.unwrap())
}

fn rgba(c: [u8; 3]) -> [u8; 4] {
    [c[0], c[1], c[2], 255]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_and_mirrored_avif_is_served_upright() {
    // Stored quadrants, shown turned a quarter anti-clockwise (`irot` 1)
    // and then mirrored left-right (`imir` 0).
    let av1 = av1_rgb(&quadrants(64, 32), 64, 32);
    let file = Heif::single(
        Item::av1(1, av1, 64, 32)
            .with(irot(1), true)
            .with(imir(0), true),
    )
    .build();
    let (status, body) = ask(file, &[("w", "16"), ("format", "png")]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let img = decode(&body);
    // Turned: 32 wide, 64 tall, scaled to 16x32.
    assert_eq!(img.dimensions(), (16, 32));
    // Anti-clockwise quarter turn of [[R, G], [B, W]] is [[G, W], [R, B]];
    // mirrored left-right: [[W, G], [B, R]].
    for (x, y, c) in [(4, 8, WHITE), (12, 8, GREEN), (4, 24, BLUE), (12, 24, RED)] {
        let got = img.get_pixel(x, y).0;
        assert!(close(got, rgba(c), 40), "at {x},{y}: {got:?} want {c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_aperture_crop_is_applied() {
    // Keep the top-right quadrant only (32x16, centre moved +16, -8).
    let av1 = av1_rgb(&quadrants(64, 32), 64, 32);
    let file = Heif::single(Item::av1(1, av1, 64, 32).with(clap(32, 16, 16, -8), true)).build();
    let (status, body) = ask(file, &[("format", "png")]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let img = decode(&body);
    assert_eq!(img.dimensions(), (32, 16));
    for (x, y) in [(2, 2), (29, 2), (2, 13), (29, 13)] {
        assert!(close(img.get_pixel(x, y).0, rgba(GREEN), 40), "{x},{y}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grid_avif_is_stitched_and_resized() {
    let file = solid_grid(64, 32);
    let (status, body) = ask(file, &[("w", "32"), ("format", "png")]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let img = decode(&body);
    assert_eq!(img.dimensions(), (32, 16));
    assert_quadrants(&img, 40, "grid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idat_only_avif_is_served_as_is() {
    let mut item = Item::av1(1, av1_rgb(&quadrants(32, 32), 32, 32), 32, 32);
    item.in_idat = true;
    let file = Heif::single(item).build();
    let (status, body) = ask(file.clone(), &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(&body[..], &file[..], "the original bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animated_avif_gives_its_first_frame() {
    let frames = vec![av1_solid(32, 16, BLUE), av1_solid(32, 16, RED)];
    let (status, body) = ask(sequence(&frames, 32, 16), &[("w", "16"), ("format", "png")]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let img = decode(&body);
    assert_eq!(img.dimensions(), (16, 8));
    assert!(close(img.get_pixel(8, 4).0, rgba(BLUE), 40));
}

/// Three spatial layers' first two (360x182 and 718x366) of a real
/// layered AV1 stream whose operating points are 0 (layers 0-2), 1
/// (layers 0-1) and 2 (layer 0).
const LAYERED: &[u8] = include_bytes!("fixtures/avif/quebec-layers-0-1.obu");

/// The layered stream as one item of `w` x `h` with `props`.
fn layered(w: u32, h: u32, props: Vec<Vec<u8>>) -> Vec<u8> {
    let item = props
        .into_iter()
        .fold(Item::av1(1, LAYERED.to_vec(), w, h), |i, p| i.with(p, true));
    Heif::single(item).build()
}

/// `lsel`: the layer to show.
fn lsel(layer: u16) -> Vec<u8> {
    bx(b"lsel", &layer.to_be_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layered_avif_decodes_the_operating_point_it_selects() {
    let png = [("format", "png")];
    // Operating point 2 holds only the base layer.
    let (status, body) = ask(layered(360, 182, vec![a1op(2)]), &png).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let base = decode(&body);
    assert_eq!(base.dimensions(), (360, 182), "op 2: the 360x182 layer");
    // Operating point 1: its highest layer, then layer 0 chosen by `lsel`.
    let (status, body) = ask(layered(718, 366, vec![a1op(1)]), &png).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        decode(&body).dimensions(),
        (718, 366),
        "op 1: the 718x366 layer"
    );
    let (status, body) = ask(layered(360, 182, vec![a1op(1), lsel(0)]), &png).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(decode(&body).dimensions(), (360, 182), "op 1, lsel 0");
    // Both layers show the same picture (not some other frame): the upper
    // one brought down to 360 px wide differs from the base layer only by
    // the base layer's coarser coding.
    let (status, body) = ask(
        layered(718, 366, vec![a1op(1)]),
        &[
            ("w", "360"),
            ("h", "182"),
            ("fit", "fill"),
            ("format", "png"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let upper = decode(&body);
    assert_eq!(upper.dimensions(), base.dimensions());
    let diff: u64 = upper
        .as_raw()
        .iter()
        .zip(base.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean = diff as f64 / base.as_raw().len() as f64;
    assert!(mean < 8.0, "mean difference {mean:.1} per channel");
}
