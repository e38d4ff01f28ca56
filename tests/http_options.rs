//! `w`, `h`, `fit`, `dpr` and `q` through `GET /image` on a standalone
//! node: what is refused, the sizes that come out, and which spellings
//! share a cache entry.

mod common;

use common::answer::*;
use common::*;
use img_proxy_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_are_refused_with_400_naming_the_option_before_any_fetch() {
    let (origin, src, node) = quadrant_png_source("opts").await;
    for (query, name) in [
        (&[("w", "-5")][..], "w"),
        (&[("w", "abc")], "w"),
        (&[("w", "100000")], "w"),
        (&[("w", "0")], "w"),
        (&[("h", "8193")], "h"),
        (&[("h", "1.5")], "h"),
        (&[("fit", "sideways")], "fit"),
        (&[("format", "bmp9")], "format"),
        (&[("q", "0")], "q"),
        (&[("q", "101")], "q"),
        (&[("dpr", "9")], "dpr"),
        (&[("dpr", "0.5")], "dpr"),
        (&[("w", "10"), ("w", "20")], "w"),
        // one bad option among good ones
        (&[("w", "100"), ("fit", "cover"), ("q", "abc")], "q"),
    ] {
        ask(&node, &src, query)
            .await
            .refused(400, &format!("`{name}`"), &format!("{query:?}"));
    }
    assert_eq!(origin.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_and_smallest_allowed_values_are_accepted() {
    let (_origin, src, node) = quadrant_png_source("bounds").await;
    // w=8192 never enlarges here
    let a = ask(&node, &src, &[("w", "8192"), ("h", "3"), ("dpr", "4")]).await;
    a.image("image/png", (16, 12), "w=8192&h=3&dpr=4");
    let a = ask(&node, &src, &[("q", "1"), ("format", "jpeg")]).await;
    a.image("image/jpeg", (64, 48), "q=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_options_pass_the_original_byte_for_byte() {
    let (_origin, src, node) = quadrant_png_source("original").await;
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (64, 48), "original");
    assert_eq!(&a.body[..], &quadrant_png(64, 48)[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_keeps_the_aspect_ratio_and_never_enlarges() {
    let (_origin, src, node) = quadrant_png_source("inside").await;
    for (query, size) in [
        (&[("w", "32")][..], (32, 24)),
        (&[("h", "12")], (16, 12)),
        (&[("w", "32"), ("h", "32")], (32, 24)),
        (&[("w", "16"), ("h", "30"), ("fit", "inside")], (16, 12)),
        (&[("w", "200")], (64, 48)),
        (&[("h", "100")], (64, 48)),
        (&[("w", "8192"), ("h", "8192")], (64, 48)),
    ] {
        let a = ask(&node, &src, query).await;
        a.image("image/png", size, &format!("{query:?}"));
    }
    assert_quadrants(&ask(&node, &src, &[("w", "32")]).await.decode(), 40, "w=32");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cover_contain_and_fill_give_the_exact_box_enlarging_if_asked() {
    let (_origin, src, node) = quadrant_png_source("boxes").await;
    for (query, size) in [
        (&[("w", "32"), ("h", "32"), ("fit", "cover")][..], (32, 32)),
        (&[("w", "128"), ("h", "100"), ("fit", "cover")], (128, 100)),
        (&[("w", "32"), ("h", "32"), ("fit", "contain")], (32, 32)),
        (
            &[("w", "100"), ("h", "100"), ("fit", "contain")],
            (100, 100),
        ),
        (&[("w", "20"), ("h", "40"), ("fit", "fill")], (20, 40)),
        (&[("w", "100"), ("h", "50"), ("fit", "fill")], (100, 50)),
    ] {
        let a = ask(&node, &src, query).await;
        a.image("image/png", size, &format!("{query:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cover_crops_the_centre() {
    let (_origin, src, node) = quadrant_png_source("cover").await;
    let a = ask(&node, &src, &[("w", "32"), ("h", "32"), ("fit", "cover")]).await;
    assert_quadrants(&a.decode(), 40, "cover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contain_pads_png_with_transparency_and_jpeg_with_white() {
    let (_origin, src, node) = quadrant_png_source("contain").await;
    let a = ask(&node, &src, &[("w", "40"), ("h", "40"), ("fit", "contain")]).await;
    let img = a.decode();
    assert_eq!(px(&img, 20, 1)[3], 0, "contain pads PNG with transparency");
    assert_eq!(px(&img, 20, 20)[3], 255);
    let query = [
        ("w", "40"),
        ("h", "40"),
        ("fit", "contain"),
        ("format", "jpeg"),
    ];
    let a = ask(&node, &src, &query).await;
    a.image("image/jpeg", (40, 40), "contain jpeg");
    let pad = px(&a.decode(), 20, 1);
    assert!(close(pad, [255, 255, 255, 255], 8), "{pad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpr_multiplies_both_sides() {
    let (_origin, src, node) = quadrant_png_source("dpr").await;
    for (query, size) in [
        (&[("w", "10"), ("dpr", "2")][..], (20, 15)),
        (&[("h", "10"), ("dpr", "1.5")], (20, 15)),
        (
            &[("w", "5"), ("h", "5"), ("fit", "fill"), ("dpr", "4")],
            (20, 20),
        ),
        (&[("w", "60"), ("dpr", "4")], (64, 48)),
    ] {
        let a = ask(&node, &src, query).await;
        a.image("image/png", size, &format!("{query:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_variant_is_a_hit_with_the_same_bytes_and_etag() {
    let (_origin, src, node) = quadrant_png_source("repeat").await;
    for query in [
        &[("w", "32")][..],
        &[("w", "20"), ("h", "20"), ("fit", "cover")],
        &[("w", "10"), ("dpr", "2")],
    ] {
        let what = format!("{query:?}");
        let first = ask(&node, &src, query).await;
        assert_eq!(first.h("x-cache"), "MISS", "{what}");
        assert_eq!(first.h("vary"), "", "{what}: only format=auto varies");
        let again = ask(&node, &src, query).await;
        assert_eq!(again.h("x-cache"), "HIT", "{what}");
        assert_eq!(again.body, first.body, "{what}");
        assert_eq!(again.h("etag"), first.h("etag"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_spellings_share_one_cache_entry() {
    let (_origin, src, node) = quadrant_png_source("spellings").await;
    ask(&node, &src, &[("w", "32")])
        .await
        .image("image/png", (32, 24), "w=32");
    ask(&node, &src, &[("w", "200")])
        .await
        .image("image/png", (64, 48), "w=200");
    // dpr folded into the size, the default q and fit spelled out,
    // parameters in any order; a fit with one side cannot matter.
    for (query, entry) in [
        (&[("w", "16"), ("dpr", "2")][..], "w=32"),
        (&[("w", "32"), ("q", "80")], "w=32"),
        (&[("q", "80"), ("w", "32")], "w=32"),
        (&[("fit", "inside"), ("w", "32")], "w=32"),
        (&[("w", "200"), ("fit", "cover")], "w=200"),
        (&[("fit", "fill"), ("w", "200")], "w=200"),
    ] {
        let a = ask(&node, &src, query).await;
        assert_eq!(a.status, 200, "{query:?}");
        assert_eq!(a.h("x-cache"), "HIT", "{query:?} is the entry of {entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q_reaches_the_encoder_and_is_its_own_entry() {
    let origin = Origin::start().await;
    let node = standalone("quality", &[]).await;
    let photo = origin.url(&origin.put("grad.png", png("gradient", 96, 64), "image/png"));
    for format in ["jpeg", "webp"] {
        let low = ask(&node, &photo, &[("format", format), ("q", "10")]).await;
        let high = ask(&node, &photo, &[("format", format), ("q", "95")]).await;
        assert_eq!(high.h("x-cache"), "MISS", "{format}");
        assert!(
            low.body.len() < high.body.len(),
            "{format}: q=10 gave {} bytes, q=95 {}",
            low.body.len(),
            high.body.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variant_of_a_source_costs_one_origin_fetch() {
    let (origin, src, node) = quadrant_png_source("one-fetch").await;
    for query in [
        &[("w", "32")][..],
        &[("h", "10")],
        &[("w", "20"), ("h", "20"), ("fit", "fill")],
        &[("format", "webp")],
        &[],
    ] {
        assert_eq!(ask(&node, &src, query).await.status, 200, "{query:?}");
    }
    assert_eq!(origin.hits("/files/q.png"), 1);
}
