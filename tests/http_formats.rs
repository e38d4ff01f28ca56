//! Output formats through `GET /image` on a standalone node: `format`,
//! `format=auto` against `Accept`, animated and AVIF sources, and what is
//! never served. Pixels are checked once per output format; how each
//! source kind decodes is the transform tests' subject.

mod common;

use common::answer::*;
use common::*;
use img_proxy_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_output_format_is_what_content_type_says_with_the_picture_intact() {
    let (_origin, src, node) = quadrant_png_source("formats").await;
    for (format, mime) in [
        ("jpeg", "image/jpeg"),
        ("png", "image/png"),
        ("webp", "image/webp"),
        ("avif", "image/avif"),
    ] {
        let a = ask(&node, &src, &[("w", "32"), ("format", format)]).await;
        a.image(mime, (32, 24), format);
        if mime != "image/avif" {
            assert_quadrants(&a.decode(), 40, format);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_alone_converts_at_the_source_size() {
    let (_origin, src, node) = quadrant_png_source("convert").await;
    for (format, mime) in [
        ("jpeg", "image/jpeg"),
        ("webp", "image/webp"),
        ("avif", "image/avif"),
    ] {
        ask(&node, &src, &[("format", format)])
            .await
            .image(mime, (64, 48), format);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_source_stays_jpeg() {
    let origin = Origin::start().await;
    let node = standalone("jpeg-source", &[]).await;
    let src = origin.url(&origin.put("q.jpg", quadrant_jpeg(64, 48), "image/jpeg"));
    let a = ask(&node, &src, &[("w", "32")]).await;
    a.image("image/jpeg", (32, 24), "jpeg source");
    assert_quadrants(&a.decode(), 40, "jpeg source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_auto_follows_accept_and_varies_on_it() {
    let (_origin, src, node) = quadrant_png_source("auto").await;
    let q = [("w", "32"), ("format", "auto")];
    for (accept, mime) in [
        (Some(AVIF_FIRST), "image/avif"),
        (Some(WEBP_ONLY), "image/webp"),
        (Some("image/avif;q=0, image/webp"), "image/webp"),
        (None, "image/png"),
        (Some("image/*,*/*;q=0.8"), "image/png"),
    ] {
        let what = format!("Accept {accept:?}");
        let a = ask_with(&node, &src, &q, accept).await;
        a.image(mime, (32, 24), &what);
        assert_eq!(a.h("vary"), "Accept", "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_negotiated_format_is_its_own_cache_entry() {
    let (origin, src, node) = quadrant_png_source("auto-entries").await;
    let q = [("w", "32"), ("format", "auto")];
    for (accept, mime) in [
        (Some(AVIF_FIRST), "image/avif"),
        (Some(WEBP_ONLY), "image/webp"),
        (None, "image/png"),
    ] {
        let what = format!("Accept {accept:?}");
        let first = ask_with(&node, &src, &q, accept).await;
        let again = ask_with(&node, &src, &q, accept).await;
        again.image(mime, (32, 24), &what);
        assert_eq!(again.h("x-cache"), "HIT", "{what}");
        assert_eq!(again.h("vary"), "Accept", "{what}");
        assert_eq!(again.body, first.body, "{what}");
    }
    assert_eq!(node.metric("img_proxy_cache_misses_total").await, 3.0);
    assert_eq!(origin.hits("/files/q.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_format_ignores_accept_and_does_not_vary() {
    let (_origin, src, node) = quadrant_png_source("explicit").await;
    let q = [("w", "32"), ("format", "webp")];
    let a = ask_with(&node, &src, &q, Some(AVIF_FIRST)).await;
    a.image("image/webp", (32, 24), "format=webp");
    assert_eq!(a.h("vary"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_auto_gives_avif_browsers_an_avif_source_as_is() {
    let origin = Origin::start().await;
    let node = standalone("avif-auto", &[]).await;
    let avif_bytes = avif(32, 16);
    let asrc = origin.url(&origin.put("photo.avif", avif_bytes.clone(), "image/avif"));
    let a = ask_with(&node, &asrc, &[("format", "auto")], Some(AVIF_FIRST)).await;
    a.image("image/avif", (32, 16), "auto on an AVIF source");
    assert_eq!(a.h("vary"), "Accept");
    assert_eq!(&a.body[..], &avif_bytes[..]);
}

/// Without the AV1 decoder, anything but the AVIF source itself is
/// refused clearly.
#[cfg(not(feature = "avif-decode"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avif_source_that_needs_decoding_is_refused_without_the_decoder() {
    let origin = Origin::start().await;
    let node = standalone("avif-refused", &[]).await;
    let asrc = origin.url(&origin.put("photo.avif", avif(32, 16), "image/avif"));
    for (query, accept) in [
        (&[("format", "auto")][..], Some(WEBP_ONLY)),
        (&[("w", "16"), ("format", "auto")], Some(AVIF_FIRST)),
        (&[("w", "16")], None),
    ] {
        ask_with(&node, &asrc, query, accept).await.refused(
            422,
            "AVIF",
            &format!("{query:?} {accept:?}"),
        );
    }
}

#[cfg(feature = "avif-decode")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avif_source_is_resized_and_converted_with_the_decoder() {
    let origin = Origin::start().await;
    let node = standalone("avif-decoded", &[]).await;
    let asrc = origin.url(&origin.put("photo.avif", avif(32, 16), "image/avif"));
    for (query, accept, mime, size) in [
        (
            &[("format", "auto")][..],
            Some(WEBP_ONLY),
            "image/webp",
            (32, 16),
        ),
        (
            &[("w", "16"), ("format", "auto")],
            Some(AVIF_FIRST),
            "image/avif",
            (16, 8),
        ),
        (&[("w", "16")], None, "image/avif", (16, 8)),
    ] {
        let what = format!("AVIF source, {query:?} {accept:?}");
        ask_with(&node, &asrc, query, accept)
            .await
            .image(mime, size, &what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exif_orientation_is_applied_and_exif_is_not_passed_on() {
    let origin = Origin::start().await;
    let node = standalone("exif", &[]).await;
    let src = origin.url(&origin.put("exif6.jpg", oriented_jpeg(6, 32, 16), "image/jpeg"));
    // `w` refers to the displayed (rotated) width.
    let a = ask(&node, &src, &[("w", "16")]).await;
    a.image("image/jpeg", (16, 8), "orientation 6");
    assert!(
        !a.body.windows(4).any(|w| w == b"Exif"),
        "EXIF left in the answer"
    );
    assert_quadrants(&a.decode(), 40, "orientation 6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_animated_gif_to_png_is_its_first_frame_and_its_original_stays_a_gif() {
    let origin = Origin::start().await;
    let node = standalone("gif", &[]).await;
    let g = gif(3);
    let src = origin.url(&origin.put("anim.gif", g.clone(), "image/gif"));
    ask(&node, &src, &[("w", "6")])
        .await
        .image("image/png", (6, 5), "gif");
    let a = ask(&node, &src, &[]).await;
    a.image("image/gif", (12, 10), "gif original");
    assert_eq!(&a.body[..], &g[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_animated_gif_stays_animated_as_webp_asked_for_or_negotiated() {
    let origin = Origin::start().await;
    let node = standalone("gif-webp", &[]).await;
    let src = origin.url(&origin.put("anim.gif", gif(3), "image/gif"));
    for (query, accept) in [
        (&[("w", "6"), ("format", "webp")][..], None),
        (&[("w", "6"), ("format", "auto")], Some(WEBP_ONLY)),
    ] {
        let a = ask_with(&node, &src, query, accept).await;
        a.image("image/webp", (6, 5), "animated webp");
        let frames = webp_frames(&a.body);
        assert!(frames.len() >= 2, "{query:?}: {} frames", frames.len());
        assert!(frames.iter().all(|(f, _)| f.dimensions() == (6, 5)));
        assert_eq!(frames.iter().map(|f| f.1).sum::<u32>(), 300, "total time");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svg_is_never_served_as_svg_whatever_its_content_type_claims() {
    let origin = Origin::start().await;
    let node = standalone("svg", &[]).await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#;
    let fake = origin.url(&origin.put("fake.png", svg.to_vec(), "image/png"));
    for source in [origin.url("/svg"), fake] {
        for query in [&[][..], &[("w", "16")], &[("format", "png")]] {
            let a = ask(&node, &source, query).await;
            assert_eq!(a.status, 200, "{source} {query:?}: {}", a.text());
            assert_eq!(a.h("content-type"), "image/png", "rasterised");
            assert!(!a.text().contains("<svg") && !a.text().contains("script"));
        }
    }
}
