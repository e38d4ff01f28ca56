//! What each output format can carry: a source larger than a format's
//! limit is refused with a 422 that names the limit, never answered with a
//! file no decoder reads; and a GIF without any colour table is shown as
//! browsers show it (black), not refused.

mod common;

use common::answer::*;
use common::*;
use img_proxy_test_support::*;

/// A 1 x 65535 gray PNG: within the pixel limit, over JPEG's side limit.
fn tall_png() -> Vec<u8> {
    raw_png(1, 65535, 8, 0, false, &[], |_, y| vec![(y % 251) as u8])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_over_a_formats_limit_is_refused_naming_it() {
    let origin = Origin::start().await;
    let node = standalone("limits", &[]).await;
    let src = origin.url(&origin.put("tall.png", tall_png(), "image/png"));
    for (format, limit) in [("jpeg", "65500"), ("webp", "16383"), ("avif", "32768")] {
        let a = ask(&node, &src, &[("format", format)]).await;
        assert_eq!(a.status, 422, "{format}: {}", a.text());
        assert!(a.text().contains(limit), "{format}: {}", a.text());
    }
    // PNG carries it: a readable 1 x 65535 image.
    let a = ask(&node, &src, &[("format", "png")]).await;
    a.image("image/png", (1, 65535), "png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gif_without_colour_table_shows_black_like_browsers() {
    let origin = Origin::start().await;
    let node = standalone("nopalette", &[]).await;
    let src = origin.url(&origin.put("n.gif", no_palette_gif(), "image/gif"));
    let a = ask(&node, &src, &[("format", "png")]).await;
    a.image("image/png", (2, 1), "no palette");
    let img = a.decode();
    assert_eq!(px(&img, 0, 0), [0, 0, 0, 255], "index 0 is black");
    assert_eq!(
        px(&img, 1, 0)[3],
        0,
        "the transparent index stays transparent"
    );
}
