//! JPEG XL sources through `GET /image`: decoded (jxl-oxide) to the right
//! size and colours, served as WebP without options (never as JPEG XL);
//! a truncated file and one declaring a huge size are 422.

mod common;

use common::answer::{ask, standalone};
use common::*;
use img_proxy_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_xl_decodes_to_its_size_and_colours() {
    let origin = Origin::start().await;
    let node = standalone("jxl", &[]).await;
    for (name, data, tol) in [
        ("lossless.jxl", JXL_LOSSLESS, 2),
        ("lossy.jxl", JXL_LOSSY, 16),
    ] {
        let src = origin.url(&origin.put(name, data.to_vec(), "application/octet-stream"));
        let a = ask(&node, &src, &[("format", "png")]).await;
        a.image("image/png", (64, 48), name);
        assert_quadrants(&a.decode(), tol, name);
        let a = ask(&node, &src, &[]).await;
        a.image("image/webp", (64, 48), "no options: WebP");
        let a = ask(&node, &src, &[("w", "32"), ("format", "jpeg")]).await;
        a.image("image/jpeg", (32, 24), name);
        assert_quadrants(&a.decode(), tol + 8, name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_or_huge_jpeg_xl_is_422() {
    let origin = Origin::start().await;
    let node = standalone("jxl-bad", &[]).await;
    let cut = JXL_LOSSY[..JXL_LOSSY.len() / 2].to_vec();
    let src = origin.url(&origin.put("cut.jxl", cut, "image/jxl"));
    ask(&node, &src, &[("w", "10")])
        .await
        .refused(422, "truncated", "truncated");
    let src = origin.url(&origin.put("huge.jxl", jxl_declaring(100_000, 70_000), "image/jxl"));
    ask(&node, &src, &[("w", "10")])
        .await
        .refused(422, "100000x70000", "huge");
}
