//! AVIF sources through `GET /image`, decoded in a child process
//! (`img-proxy __decode-avif`): converted correctly, and corrupt files
//! (some of which make rav1d abort) cost a 422, never the node.

#![cfg(feature = "avif-decode")]

mod common;

use common::answer::*;
use common::*;
use img_proxy_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avif_source_converts_to_every_format() {
    let origin = Origin::start().await;
    let node = standalone("avif", &[]).await;
    let src = origin.url(&origin.put("q.avif", avif(64, 48), "image/avif"));
    for (format, mime) in [
        ("png", "image/png"),
        ("webp", "image/webp"),
        ("jpeg", "image/jpeg"),
    ] {
        let a = ask(&node, &src, &[("w", "32"), ("format", format)]).await;
        a.image(mime, (32, 24), format);
        assert_quadrants(&a.decode(), 40, format);
    }
    // No size, another format: decoded at full size.
    let a = ask(&node, &src, &[("format", "png")]).await;
    a.image("image/png", (64, 48), "full-size png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_avif_is_422() {
    let origin = Origin::start().await;
    let node = standalone("avif-cut", &[]).await;
    let good = avif(64, 48);
    for cut in [
        20,
        good.len() / 3,
        good.len() / 2,
        good.len() - 20,
        good.len() - 1,
    ] {
        let name = format!("cut{cut}.avif");
        let s = origin.url(&origin.put(&name, good[..cut].to_vec(), "image/avif"));
        let a = ask(&node, &s, &[("w", "16"), ("format", "png")]).await;
        assert_eq!(a.status, 422, "cut at {cut}/{}: {}", good.len(), a.text());
    }
}

/// Byte flips everywhere (rav1d 1.1 aborts on some of these): each one is
/// a 422 or, when the flip is harmless, an image; never a 5xx or a dropped
/// connection, and the node still decodes afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_flips_in_an_avif_cannot_crash_the_node() {
    let origin = Origin::start().await;
    let node = standalone("avif-flips", &[]).await;
    let good = avif(64, 48);
    let (mut ok, mut refused, mut crashed) = (0, 0, 0);
    for i in 0..good.len() {
        for x in [0x5A, 0xFF] {
            let mut bad = good.clone();
            bad[i] ^= x;
            let s = origin.url(&origin.put(&format!("flip{i}-{x}.avif"), bad, "image/avif"));
            let a = ask(&node, &s, &[("w", "16"), ("format", "png")]).await;
            match a.status {
                200 => ok += 1,
                422 => {
                    refused += 1;
                    crashed += usize::from(a.text().contains("crashed"));
                }
                other => panic!("flip {x:#x} at {i}: {other} {}", a.text()),
            }
        }
    }
    eprintln!("byte flips: {ok} decoded, {refused} refused ({crashed} decoder crashes)");
    assert!(refused > 0, "no flip was refused");
    let h = client().get(node.url("/health")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let src = origin.url(&origin.put("q.avif", good, "image/avif"));
    let a = ask(&node, &src, &[("w", "16"), ("format", "webp")]).await;
    a.image("image/webp", (16, 12), "after the flips");
}
