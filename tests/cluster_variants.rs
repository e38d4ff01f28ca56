//! Image options through a cluster: the gateway validates and negotiates,
//! the owner of the source URL makes and caches every variant from one
//! origin fetch.

mod common;

use common::answer::*;
use common::*;
use img_proxy_test_support::*;

/// Ten variants of a 64x48 JPEG, with the type and size each must have.
const VARIANTS: [(Query, &str, (u32, u32)); 10] = [
    (&[("w", "32")], "image/jpeg", (32, 24)),
    (&[("h", "12")], "image/jpeg", (16, 12)),
    (
        &[("w", "20"), ("h", "20"), ("fit", "cover")],
        "image/jpeg",
        (20, 20),
    ),
    (
        &[("w", "20"), ("h", "20"), ("fit", "contain")],
        "image/jpeg",
        (20, 20),
    ),
    (
        &[("w", "30"), ("h", "10"), ("fit", "fill")],
        "image/jpeg",
        (30, 10),
    ),
    (&[("w", "8"), ("dpr", "3")], "image/jpeg", (24, 18)),
    (&[("w", "16"), ("format", "png")], "image/png", (16, 12)),
    (&[("w", "16"), ("format", "webp")], "image/webp", (16, 12)),
    (&[("w", "16"), ("format", "avif")], "image/avif", (16, 12)),
    (&[("w", "100"), ("q", "80")], "image/jpeg", (64, 48)),
];

/// The photo on the origin: its path and URL.
fn photo(origin: &Origin) -> (String, String) {
    let path = origin.put("photo.jpg", quadrant_jpeg(64, 48), "image/jpeg");
    let src = origin.url(&path);
    (path, src)
}

/// Asks for every variant through alternating gateways; returns the
/// owner's name and the bodies, in [`VARIANTS`] order.
async fn make_all_variants(cluster: &Cluster, src: &str) -> (String, Vec<bytes::Bytes>) {
    let mut owner = String::new();
    let mut bodies = Vec::new();
    for (i, (query, mime, size)) in VARIANTS.iter().enumerate() {
        let what = format!("{query:?}");
        let a = ask(&cluster.gateways[i % 2], src, query).await;
        a.image(mime, *size, &what);
        assert_eq!(a.h("x-cache"), "MISS", "{what}");
        if i == 0 {
            owner = a.h("x-served-by").to_string();
            assert!(owner.starts_with("worker-"), "served by {owner:?}");
        }
        assert_eq!(
            a.h("x-served-by"),
            owner,
            "{what}: routed by more than the URL"
        );
        bodies.push(a.body);
    }
    (owner, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_refuses_bad_options_before_routing() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 1, &[]).await;
    let (_, src) = photo(&origin);
    ask(&cluster.gateways[0], &src, &[("fit", "sideways")])
        .await
        .refused(400, "`fit`", "fit=sideways");
    assert_eq!(origin.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_alone_makes_every_variant_from_one_origin_fetch() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(2, 3, &[]).await;
    let (path, src) = photo(&origin);
    let (owner, bodies) = make_all_variants(&cluster, &src).await;
    assert_quadrants(&decode(&bodies[0]), 40, "w=32 through the cluster");
    assert_eq!(origin.hits(&path), 1, "one origin request for all variants");
    for w in &cluster.workers {
        let misses = w.metric("img_proxy_cache_misses_total").await;
        let expected = if w.name == owner { 10.0 } else { 0.0 };
        assert_eq!(misses, expected, "{} ({owner} owns the photo)", w.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn variants_and_the_original_are_hits_through_either_gateway() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(2, 3, &[]).await;
    let (path, src) = photo(&origin);
    let (owner, bodies) = make_all_variants(&cluster, &src).await;
    // The original was cached on the way: a hit, byte for byte.
    let a = ask(&cluster.gateways[1], &src, &[]).await;
    a.image("image/jpeg", (64, 48), "original");
    assert_eq!(a.h("x-cache"), "HIT");
    assert_eq!(a.h("x-served-by"), owner);
    assert_eq!(&a.body[..], &quadrant_jpeg(64, 48)[..]);
    for g in &cluster.gateways {
        for ((query, _, _), body) in VARIANTS.iter().zip(&bodies) {
            let a = ask(g, &src, query).await;
            assert_eq!(a.h("x-cache"), "HIT", "{query:?} via {}", g.name);
            assert_eq!(a.h("x-served-by"), owner);
            assert_eq!(&a.body, body);
        }
    }
    // Parameter order and the default q do not make new entries.
    for query in [&[("q", "80"), ("w", "100")][..], &[("w", "100")]] {
        let a = ask(&cluster.gateways[1], &src, query).await;
        assert_eq!(a.h("x-cache"), "HIT", "{query:?}");
        assert_eq!(a.body, bodies[9]);
    }
    assert_eq!(origin.total(), 1, "{path} fetched once, nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn format_auto_is_negotiated_by_the_gateway_and_cached_per_format_by_the_owner() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(2, 2, &[]).await;
    let (path, src) = photo(&origin);
    let gw = &cluster.gateways;
    let q = [("w", "28"), ("format", "auto")];
    let mut owner = String::new();
    for (accept, mime) in [
        (Some(AVIF_FIRST), "image/avif"),
        (Some(WEBP_ONLY), "image/webp"),
        (None, "image/jpeg"),
    ] {
        let a = ask_with(&gw[0], &src, &q, accept).await;
        a.image(mime, (28, 21), &format!("auto {accept:?}"));
        assert_eq!(a.h("vary"), "Accept");
        assert_eq!(a.h("x-cache"), "MISS", "auto {accept:?}");
        if owner.is_empty() {
            owner = a.h("x-served-by").to_string();
        }
        assert_eq!(a.h("x-served-by"), owner);
        let again = ask_with(&gw[1], &src, &q, accept).await;
        again.image(mime, (28, 21), &format!("auto {accept:?} again"));
        assert_eq!(again.h("x-cache"), "HIT");
        assert_eq!(again.h("vary"), "Accept");
        assert_eq!(again.body, a.body);
    }
    assert_eq!(origin.hits(&path), 1);
}
