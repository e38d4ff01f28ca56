//! AVIF sources through `GET /image`, shown as browsers show them: rotated
//! and mirrored (`irot`/`imir`), cropped (`clap`), tiled (`grid`), stored in
//! `idat`, animated (`.avifs`: the first frame). Files are built box by box
//! around AV1 stills from our own encoder (`common::heif_fixtures`).
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
