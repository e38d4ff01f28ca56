//! Client Hints and `Save-Data` (`CLIENT_HINTS=true`) through `GET
//! /image`: `Accept-CH` on answers, `Sec-CH-Width`/`Width` and
//! `Sec-CH-DPR`/`DPR` standing in for `w` and `dpr` the URL leaves out
//! (snapped up to buckets, so two widths in one bucket are one cache
//! entry), `Save-Data: on` lowering the quality, the matching `Vary` and
//! `Content-DPR`, signed URLs still verifying, and nothing of it by default.

mod common;

use common::answer::*;
use common::*;
use img_proxy_test_support::*;
use jpeg_encoder::ColorType as JColor;

const ACCEPT_CH: &str = "Sec-CH-DPR, Sec-CH-Width, Save-Data, DPR, Width";

/// A 512x384 photo-like JPEG (smooth gradients with grain), so quality
/// shows in the byte count.
fn photo() -> Vec<u8> {
    let (w, h) = (512u32, 384u32);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let grain = (s % 24) as u32;
            rgb.extend_from_slice(&[
                ((x * 200 / w) + grain) as u8,
                ((y * 200 / h) + grain) as u8,
                (((x + y) * 100 / (w + h)) + grain) as u8,
            ]);
        }
    }
    jpeg(&rgb, w as u16, h as u16, JColor::Rgb, |_| {})
}

/// An origin with the photo, its URL, and a standalone node with `env`.
async fn setup(name: &str, env: &[(&str, String)]) -> (Origin, String, Node) {
    let origin = Origin::start().await;
    let src = origin.url(&origin.put("p.jpg", photo(), "image/jpeg"));
    let node = standalone(name, env).await;
    (origin, src, node)
}

fn hints_on() -> Vec<(&'static str, String)> {
    vec![("CLIENT_HINTS", "true".to_string())]
}

async fn ask_hinted(
    node: &Node,
    src: &str,
    extra: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    Answer::read(get_image_with(node, src, extra, headers).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_are_ignored_by_default() {
    let (_origin, src, node) = setup("ch-off", &[]).await;
    let hints = [("sec-ch-width", "100"), ("dpr", "2"), ("save-data", "on")];
    let a = ask_hinted(&node, &src, &[], &hints).await;
    a.image("image/jpeg", (512, 384), "no hints used");
    assert_eq!(a.h("accept-ch"), "");
    assert_eq!(a.h("vary"), "");
    assert_eq!(&a.body[..], &photo()[..], "the original, untouched");
    let b = ask_hinted(&node, &src, &[("w", "100")], &hints).await;
    b.image("image/jpeg", (100, 75), "w=100 without DPR hint");
    assert_eq!(b.h("content-dpr"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_width_hint_snaps_up_to_its_bucket_and_one_bucket_is_one_entry() {
    let (origin, src, node) = setup("ch-width", &hints_on()).await;
    let a = ask_hinted(&node, &src, &[], &[("sec-ch-width", "100")]).await;
    a.image("image/jpeg", (128, 96), "Sec-CH-Width 100 -> 128");
    assert_eq!(a.h("accept-ch"), ACCEPT_CH);
    assert_eq!(a.h("vary"), "Sec-CH-Width, Width, Save-Data");
    assert_eq!(a.h("x-cache"), "MISS");
    // The legacy header, another width in the same bucket: the same entry.
    let b = ask_hinted(&node, &src, &[], &[("width", "120")]).await;
    b.image("image/jpeg", (128, 96), "Width 120 -> 128");
    assert_eq!(b.h("x-cache"), "HIT");
    assert_eq!(b.body, a.body);
    // And the same entry as asking for the bucket in the URL.
    let c = ask_hinted(&node, &src, &[("w", "128")], &[]).await;
    assert_eq!((c.h("x-cache"), &c.body), ("HIT", &a.body));
    // The URL's `w` wins over the hint.
    let d = ask_hinted(&node, &src, &[("w", "50")], &[("width", "300")]).await;
    d.image("image/jpeg", (50, 38), "w=50 in the URL");
    assert!(!d.h("vary").contains("Width"), "{}", d.h("vary"));
    // Without any hint the answer still says which headers chose it.
    let e = ask_hinted(&node, &src, &[], &[]).await;
    e.image("image/jpeg", (512, 384), "no hint sent");
    assert_eq!(e.h("vary"), "Sec-CH-Width, Width");
    assert_eq!(origin.hits("/files/p.jpg"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpr_hint_scales_the_urls_width_and_says_content_dpr() {
    let (_origin, src, node) = setup("ch-dpr", &hints_on()).await;
    let a = ask_hinted(&node, &src, &[("w", "100")], &[("sec-ch-dpr", "1.8")]).await;
    a.image("image/jpeg", (200, 150), "w=100 at DPR 1.8 -> 2");
    assert_eq!(a.h("content-dpr"), "2");
    assert_eq!(a.h("vary"), "Sec-CH-DPR, DPR, Save-Data");
    let b = ask_hinted(&node, &src, &[("w", "100")], &[("dpr", "2")]).await;
    assert_eq!((b.h("x-cache"), &b.body), ("HIT", &a.body), "one bucket");
    let c = ask_hinted(&node, &src, &[("w", "100")], &[("dpr", "2.625")]).await;
    c.image("image/jpeg", (300, 225), "DPR 2.625 -> 3");
    assert_eq!(c.h("content-dpr"), "3");
    // The URL's dpr wins; nothing varies on the hint then.
    let d = ask_hinted(
        &node,
        &src,
        &[("w", "100"), ("dpr", "1.5")],
        &[("dpr", "3")],
    )
    .await;
    d.image("image/jpeg", (150, 113), "dpr=1.5 in the URL");
    assert_eq!(d.h("content-dpr"), "");
    assert_eq!(d.h("vary"), "Save-Data");
    // A hint that is not a number is ignored, not an error.
    let e = ask_hinted(&node, &src, &[("w", "100")], &[("dpr", "lots")]).await;
    e.image("image/jpeg", (100, 75), "bad DPR ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_data_lowers_the_quality_of_transformed_answers() {
    let (_origin, src, node) = setup("ch-save", &hints_on()).await;
    let full = ask_hinted(&node, &src, &[("w", "300")], &[]).await;
    full.image("image/jpeg", (300, 225), "w=300");
    let saving = ask_hinted(&node, &src, &[("w", "300")], &[("save-data", "on")]).await;
    saving.image("image/jpeg", (300, 225), "w=300, Save-Data");
    assert_eq!(saving.h("x-cache"), "MISS", "its own entry");
    assert!(
        saving.h("vary").ends_with("Save-Data"),
        "{}",
        saving.h("vary")
    );
    assert!(
        saving.body.len() * 10 < full.body.len() * 9,
        "Save-Data: {} bytes, without: {}",
        saving.body.len(),
        full.body.len()
    );
    // q 80 becomes 52: the entry is the one `q=52` names.
    let q52 = ask_hinted(&node, &src, &[("w", "300"), ("q", "52")], &[]).await;
    assert_eq!((q52.h("x-cache"), &q52.body), ("HIT", &saving.body));
    // The untouched original stays untouched.
    let original = ask_hinted(&node, &src, &[], &[("save-data", "on")]).await;
    assert_eq!(&original.body[..], &photo()[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_leave_signed_urls_verifying() {
    let key = "client-hints-signing-key";
    let env = [
        ("CLIENT_HINTS", "true".to_string()),
        ("URL_SIGNING_KEYS", key.to_string()),
    ];
    let (_origin, src, node) = setup("ch-signed", &env).await;
    let out = std::process::Command::new(binary())
        .args(["sign", "--key", key, &src])
        .env_clear()
        .output()
        .unwrap();
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let r = client()
        .get(node.url(&path))
        .header("sec-ch-width", "200")
        .header("save-data", "on")
        .send()
        .await
        .unwrap();
    let a = Answer::read(r).await;
    a.image("image/jpeg", (256, 192), "signed, Width 200 -> 256");
    assert_eq!(a.h("vary"), "Sec-CH-Width, Width, Save-Data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_resolves_hints_before_routing_so_workers_cache_buckets() {
    let origin = Origin::start().await;
    let src = origin.url(&origin.put("p.jpg", photo(), "image/jpeg"));
    let cluster = Cluster::start(1, 2, &[("CLIENT_HINTS", "true".to_string())]).await;
    let gw = &cluster.gateways[0];
    let a = ask_hinted(
        gw,
        &src,
        &[],
        &[("sec-ch-width", "300"), ("sec-ch-dpr", "2")],
    )
    .await;
    a.image("image/jpeg", (384, 288), "Width 300 -> 384");
    assert_eq!(a.h("accept-ch"), ACCEPT_CH);
    assert_eq!(a.h("vary"), "Sec-CH-Width, Width, Save-Data");
    let b = ask_hinted(gw, &src, &[], &[("width", "290")]).await;
    assert_eq!(
        (b.h("x-cache"), &b.body),
        ("HIT", &a.body),
        "one bucket, one entry"
    );
    assert_eq!(origin.hits("/files/p.jpg"), 1);
}
