//! `gravity` through `GET /image`: validated with a 400 naming it, part of
//! the normalised cache key (the default and its spellings are one entry
//! with no gravity at all), and carried from gateway to worker. Where each
//! gravity crops is tested on pixels in `transform_gravity.rs`.

mod common;

use common::answer::*;
use common::*;

const COVER: [(&str, &str); 4] = [
    ("w", "24"),
    ("h", "24"),
    ("fit", "cover"),
    ("format", "png"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut q = COVER.to_vec();
    q.extend_from_slice(extra);
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gravities_are_400_naming_the_option() {
    let (origin, src, node) = quadrant_png_source("gravity-bad").await;
    for v in ["up", "fp:2:0", "fp:0.5", "NORTH", "fp:0.1:0.2:0.3"] {
        ask(&node, &src, &with(&[("gravity", v)]))
            .await
            .refused(400, "`gravity`", v);
    }
    assert_eq!(origin.total(), 0, "refused before any fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_gravity_and_its_spellings_are_one_entry() {
    let (origin, src, node) = quadrant_png_source("gravity-key").await;
    let plain = ask(&node, &src, &COVER).await;
    plain.image("image/png", (24, 24), "cover");
    for v in ["center", "fp:0.5:0.5", "fp:0.50:.5"] {
        let a = ask(&node, &src, &with(&[("gravity", v)])).await;
        assert_eq!((a.h("x-cache"), &a.body), ("HIT", &plain.body), "{v}");
    }
    // Without a crop, gravity changes nothing and keys nothing.
    let w = ask(&node, &src, &[("w", "24")]).await;
    let wg = ask(&node, &src, &[("w", "24"), ("gravity", "smart")]).await;
    assert_eq!((wg.h("x-cache"), &wg.body), ("HIT", &w.body));
    let west = ask(&node, &src, &with(&[("gravity", "west")])).await;
    assert_eq!(west.h("x-cache"), "MISS");
    assert_ne!(west.body, plain.body, "west moves the crop");
    assert_eq!(origin.hits("/files/q.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gravity_travels_from_gateway_to_worker_normalised() {
    let origin = Origin::start().await;
    let src = origin.url(&origin.put(
        "q.png",
        img_proxy_test_support::quadrant_png(64, 48),
        "image/png",
    ));
    let cluster = Cluster::start(1, 1, &[]).await;
    let gw = &cluster.gateways[0];
    let centre = ask(gw, &src, &COVER).await;
    let east = ask(gw, &src, &with(&[("gravity", "east")])).await;
    east.image("image/png", (24, 24), "east");
    assert_eq!(east.h("x-cache"), "MISS");
    assert_ne!(east.body, centre.body, "the worker cropped at the east");
    // `fp:1:0.5` is `east`: the worker's entry for it.
    let fp = ask(gw, &src, &with(&[("gravity", "fp:1:0.5")])).await;
    assert_eq!((fp.h("x-cache"), &fp.body), ("HIT", &east.body));
    let smart = ask(gw, &src, &with(&[("gravity", "smart")])).await;
    smart.image("image/png", (24, 24), "smart");
    assert_eq!(origin.hits("/files/q.png"), 1);
}
