//! The image pipeline through the real HTTP interface: `GET /image` with
//! `w`, `h`, `fit`, `q`, `format` and `dpr` on standalone nodes and on a
//! cluster, the limits and the overload answer, and the `transform`
//! command. Assertions are about what a user sees: statuses, headers,
//! decoded pixels and the origin's request counts.

mod common;

use std::time::{Duration, Instant};

use common::*;
use img_proxy_test_support::*;

/// One answer, read in full so headers and body can be checked together.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    async fn read(r: reqwest::Response) -> Answer {
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap(),
        }
    }

    fn h(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a 200 whose `Content-Type` and magic bytes both say `mime`
    /// and whose pixels are `w` x `h`.
    fn image(&self, mime: &str, size: (u32, u32), what: &str) -> &Self {
        assert_eq!(self.status, 200, "{what}: {}", self.text());
        assert_eq!(self.h("content-type"), mime, "{what}: Content-Type");
        assert_eq!(magic(&self.body), Some(mime), "{what}: magic bytes");
        assert_eq!(dimensions(&self.body), size, "{what}: dimensions");
        self
    }

    fn decode(&self) -> image::RgbaImage {
        decode(&self.body)
    }
}

async fn ask(node: &Node, source: &str, extra: &[(&str, &str)]) -> Answer {
    ask_with(node, source, extra, None).await
}

async fn ask_with(
    node: &Node,
    source: &str,
    extra: &[(&str, &str)],
    accept: Option<&str>,
) -> Answer {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    Answer::read(get_image_with(node, source, extra, &headers).await).await
}

/// Sends one `GET /image` per value of `key`, all at once (a task each),
/// for tests about simultaneous arrivals; each task yields its value and
/// the answer.
fn ask_all_at_once(
    node: &Node,
    source: &str,
    key: &'static str,
    values: impl IntoIterator<Item = String>,
) -> Vec<tokio::task::JoinHandle<(String, Answer)>> {
    values
        .into_iter()
        .map(|v| {
            let url = node.url("/image");
            let source = source.to_string();
            tokio::spawn(async move {
                let r = client()
                    .get(url)
                    .query(&[("url", source.as_str()), (key, v.as_str())])
                    .send()
                    .await
                    .unwrap();
                (v, Answer::read(r).await)
            })
        })
        .collect()
}

async fn standalone(name: &str, env: &[(&str, String)]) -> Node {
    let node = Node::spawn("", name, env);
    node.wait_up().await;
    node
}

/// Query pairs besides `url`.
type Query = &'static [(&'static str, &'static str)];

const AVIF_FIRST: &str = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";
const WEBP_ONLY: &str = "image/webp,image/*,*/*;q=0.8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_are_refused_with_400_naming_the_option() {
    let origin = Origin::start().await;
    let source = origin.url(&origin.put("o.png", quadrant_png(64, 48), "image/png"));
    let node = standalone("opts", &[]).await;
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
        let a = ask(&node, &source, query).await;
        assert_eq!(a.status, 400, "{query:?}: {}", a.text());
        assert!(
            a.text().contains(&format!("`{name}`")),
            "{query:?}: body {:?} does not name `{name}`",
            a.text()
        );
        assert!(a.h("content-type").starts_with("text/plain"));
    }
    // Validation happens before anything is fetched.
    assert_eq!(origin.total(), 0);
    // The limits themselves are accepted (w=8192 never enlarges here).
    let a = ask(&node, &source, &[("w", "8192"), ("h", "3"), ("dpr", "4")]).await;
    a.image("image/png", (16, 12), "w=8192&h=3&dpr=4");
    let a = ask(&node, &source, &[("q", "1"), ("format", "jpeg")]).await;
    a.image("image/jpeg", (64, 48), "q=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_fits_dpr_and_formats_through_http() {
    let origin = Origin::start().await;
    let png_bytes = quadrant_png(64, 48);
    let src = origin.url(&origin.put("q.png", png_bytes.clone(), "image/png"));
    let node = standalone("sizes", &[]).await;

    // No options: the origin's bytes, untouched.
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (64, 48), "original");
    assert_eq!(
        &a.body[..],
        &png_bytes[..],
        "original must pass byte for byte"
    );

    let png_mime = "image/png";
    for (query, size) in [
        // inside (the default) keeps the aspect ratio and never enlarges
        (&[("w", "32")][..], (32, 24)),
        (&[("h", "12")], (16, 12)),
        (&[("w", "32"), ("h", "32")], (32, 24)),
        (&[("w", "16"), ("h", "30"), ("fit", "inside")], (16, 12)),
        (&[("w", "200")], (64, 48)),
        (&[("h", "100")], (64, 48)),
        (&[("w", "8192"), ("h", "8192")], (64, 48)),
        // explicit boxes: exact sizes, enlarging allowed
        (&[("w", "32"), ("h", "32"), ("fit", "cover")], (32, 32)),
        (&[("w", "128"), ("h", "100"), ("fit", "cover")], (128, 100)),
        (&[("w", "32"), ("h", "32"), ("fit", "contain")], (32, 32)),
        (
            &[("w", "100"), ("h", "100"), ("fit", "contain")],
            (100, 100),
        ),
        (&[("w", "20"), ("h", "40"), ("fit", "fill")], (20, 40)),
        (&[("w", "100"), ("h", "50"), ("fit", "fill")], (100, 50)),
        // dpr multiplies both sides
        (&[("w", "10"), ("dpr", "2")], (20, 15)),
        (&[("h", "10"), ("dpr", "1.5")], (20, 15)),
        (
            &[("w", "5"), ("h", "5"), ("fit", "fill"), ("dpr", "4")],
            (20, 20),
        ),
        (&[("w", "60"), ("dpr", "4")], (64, 48)),
    ] {
        let what = format!("{query:?}");
        let a = ask(&node, &src, query).await;
        a.image(png_mime, size, &what);
        assert_eq!(a.h("x-cache"), "MISS", "{what}");
        assert_eq!(a.h("vary"), "", "{what}: only format=auto varies");
        let again = ask(&node, &src, query).await;
        assert_eq!(again.h("x-cache"), "HIT", "{what}");
        assert_eq!(again.body, a.body, "{what}");
        assert_eq!(again.h("etag"), a.h("etag"), "{what}");
    }

    // Geometry keeps the picture: cover crops the centre, contain pads
    // with transparency (PNG) or white (JPEG).
    let a = ask(&node, &src, &[("w", "32"), ("h", "32"), ("fit", "cover")]).await;
    assert_quadrants(&a.decode(), 40, "cover");
    let a = ask(&node, &src, &[("w", "40"), ("h", "40"), ("fit", "contain")]).await;
    let img = a.decode();
    assert_eq!(px(&img, 20, 1)[3], 0, "contain pads PNG with transparency");
    assert_eq!(px(&img, 20, 20)[3], 255);
    let a = ask(
        &node,
        &src,
        &[
            ("w", "40"),
            ("h", "40"),
            ("fit", "contain"),
            ("format", "jpeg"),
        ],
    )
    .await;
    a.image("image/jpeg", (40, 40), "contain jpeg");
    let img = a.decode();
    assert!(
        close(px(&img, 20, 1), [255, 255, 255, 255], 8),
        "{:?}",
        px(&img, 20, 1)
    );
    assert_quadrants(&ask(&node, &src, &[("w", "32")]).await.decode(), 40, "w=32");

    // Equivalent spellings are one cache entry: dpr folded into the size,
    // the default q and fit spelled out, parameters in any order.
    for query in [
        &[("w", "16"), ("dpr", "2")][..],
        &[("w", "32"), ("q", "80")],
        &[("q", "80"), ("w", "32")],
        &[("fit", "inside"), ("w", "32")],
    ] {
        let a = ask(&node, &src, query).await;
        a.image(png_mime, (32, 24), &format!("{query:?}"));
        assert_eq!(a.h("x-cache"), "HIT", "{query:?} is the entry of w=32");
    }
    // A fit with one side cannot matter: it is the entry of that side.
    for query in [
        &[("w", "200"), ("fit", "cover")][..],
        &[("fit", "fill"), ("w", "200")],
    ] {
        let a = ask(&node, &src, query).await;
        a.image(png_mime, (64, 48), &format!("{query:?}"));
        assert_eq!(a.h("x-cache"), "HIT", "{query:?} is the entry of w=200");
    }

    // Every output format: Content-Type matches the bytes.
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
        // format alone converts at the source size
        let a = ask(&node, &src, &[("format", format)]).await;
        a.image(mime, (64, 48), format);
    }

    // q reaches the encoder: lower quality, fewer bytes, different entry.
    let photo = origin.url(&origin.put("grad.png", png("gradient", 96, 64), "image/png"));
    let low = ask(&node, &photo, &[("format", "jpeg"), ("q", "10")]).await;
    low.image("image/jpeg", (96, 64), "q=10");
    let high = ask(&node, &photo, &[("format", "jpeg"), ("q", "95")]).await;
    high.image("image/jpeg", (96, 64), "q=95");
    assert_eq!(high.h("x-cache"), "MISS");
    assert!(
        low.body.len() < high.body.len(),
        "q=10 gave {} bytes, q=95 {}",
        low.body.len(),
        high.body.len()
    );
    let webp_low = ask(&node, &photo, &[("format", "webp"), ("q", "10")]).await;
    let webp_high = ask(&node, &photo, &[("format", "webp"), ("q", "95")]).await;
    assert!(webp_low.body.len() < webp_high.body.len());

    // A JPEG source stays JPEG.
    let jsrc = origin.url(&origin.put("q.jpg", quadrant_jpeg(64, 48), "image/jpeg"));
    let a = ask(&node, &jsrc, &[("w", "32")]).await;
    a.image("image/jpeg", (32, 24), "jpeg source");
    assert_quadrants(&a.decode(), 40, "jpeg source");

    // However many variants, each source was fetched once.
    for p in ["/files/q.png", "/files/grad.png", "/files/q.jpg"] {
        assert_eq!(origin.hits(p), 1, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_auto_follows_accept_and_varies_on_it() {
    let origin = Origin::start().await;
    let src = origin.url(&origin.put("auto.png", quadrant_png(64, 48), "image/png"));
    let node = standalone("auto", &[]).await;
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
        // Each negotiated format is its own entry, and a repeat is a hit
        // with the same format.
        let again = ask_with(&node, &src, &q, accept).await;
        again.image(mime, (32, 24), &what);
        assert_eq!(again.h("x-cache"), "HIT", "{what}");
        assert_eq!(again.h("vary"), "Accept", "{what}");
        assert_eq!(again.body, a.body, "{what}");
    }
    // Three formats were made: avif, webp and png. The rest were hits.
    assert_eq!(node.metric("img_proxy_cache_misses_total").await, 3.0);

    // An AVIF source: what AVIF browsers negotiate is the source itself, so
    // they get it as is; anything else needs the AV1 decoder (and is refused
    // clearly by builds without it).
    let avif_bytes = avif(32, 16);
    let asrc = origin.url(&origin.put("photo.avif", avif_bytes.clone(), "image/avif"));
    let a = ask_with(&node, &asrc, &[("format", "auto")], Some(AVIF_FIRST)).await;
    a.image("image/avif", (32, 16), "auto on an AVIF source");
    assert_eq!(a.h("vary"), "Accept");
    assert_eq!(&a.body[..], &avif_bytes[..]);
    #[cfg(not(feature = "avif-decode"))]
    for (query, accept) in [
        (&[("format", "auto")][..], Some(WEBP_ONLY)),
        (&[("w", "16"), ("format", "auto")], Some(AVIF_FIRST)),
        (&[("w", "16")], None),
    ] {
        let a = ask_with(&node, &asrc, query, accept).await;
        assert_eq!(a.status, 422, "{query:?} {accept:?}: {}", a.text());
        assert!(a.text().contains("AVIF"), "{}", a.text());
    }
    #[cfg(feature = "avif-decode")]
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

    // An explicit format ignores Accept and does not vary.
    let a = ask_with(
        &node,
        &src,
        &[("w", "32"), ("format", "webp")],
        Some(AVIF_FIRST),
    )
    .await;
    a.image("image/webp", (32, 24), "format=webp");
    assert_eq!(a.h("vary"), "");
    assert_eq!(origin.hits("/files/auto.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixels_come_out_right_through_http() {
    let origin = Origin::start().await;
    let node = standalone("pixels", &[]).await;

    // EXIF orientation: the picture is shown upright and `w` refers to the
    // displayed (rotated) width.
    for o in [1u16, 3, 5, 6, 8] {
        let src = origin.url(&origin.put(
            &format!("exif{o}.jpg"),
            oriented_jpeg(o, 32, 16),
            "image/jpeg",
        ));
        for (query, size) in [
            (&[("w", "16")][..], (16, 8)),
            (&[("format", "png")], (32, 16)),
        ] {
            let what = format!("orientation {o} {query:?}");
            let a = ask(&node, &src, query).await;
            let mime = if query[0].0 == "format" {
                "image/png"
            } else {
                "image/jpeg"
            };
            a.image(mime, size, &what);
            assert!(
                !a.body.windows(4).any(|w| w == b"Exif"),
                "{what}: EXIF left in the answer"
            );
            assert_quadrants(&a.decode(), 40, &what);
        }
    }

    // CMYK and YCCK JPEGs come out in the right sRGB colours.
    for ycck in [false, true] {
        let src =
            origin.url(&origin.put(&format!("cmyk-{ycck}.jpg"), cmyk_jpeg(ycck), "image/jpeg"));
        for (query, mime, size) in [
            (&[("format", "png")][..], "image/png", (16, 8)),
            (&[("w", "8")], "image/jpeg", (8, 4)),
        ] {
            let what = format!("cmyk ycck={ycck} {query:?}");
            let a = ask(&node, &src, query).await;
            a.image(mime, size, &what);
            let img = a.decode();
            let (w, h) = img.dimensions();
            let cyan = px(&img, w / 4, h / 2);
            let magenta = px(&img, 3 * w / 4, h / 2);
            assert!(close(cyan, [0, 255, 255, 255], 30), "{what}: cyan {cyan:?}");
            assert!(
                close(magenta, [127, 0, 127, 255], 30),
                "{what}: dark magenta {magenta:?}"
            );
        }
    }

    // Alpha: kept by PNG and WebP, composited on white for JPEG.
    let src = origin.url(&origin.put("alpha.png", rgba_png(32, 16), "image/png"));
    for (format, mime) in [("png", "image/png"), ("webp", "image/webp")] {
        let a = ask(&node, &src, &[("w", "16"), ("format", format)]).await;
        a.image(mime, (16, 8), format);
        let img = a.decode();
        assert!(
            close(px(&img, 2, 4), [255, 0, 0, 255], 30),
            "{format}: {:?}",
            px(&img, 2, 4)
        );
        assert_eq!(px(&img, 13, 4)[3], 0, "{format} lost transparency");
    }
    let a = ask(&node, &src, &[("w", "16"), ("format", "jpeg")]).await;
    a.image("image/jpeg", (16, 8), "alpha to jpeg");
    let img = a.decode();
    assert!(
        close(px(&img, 2, 4), [255, 0, 0, 255], 40),
        "{:?}",
        px(&img, 2, 4)
    );
    assert!(
        close(px(&img, 13, 4), [255, 255, 255, 255], 8),
        "transparent must become white: {:?}",
        px(&img, 13, 4)
    );
    // Without a format the source's is kept, alpha included.
    let a = ask(&node, &src, &[("w", "16")]).await;
    a.image("image/png", (16, 8), "alpha png");
    assert_eq!(px(&a.decode(), 13, 4)[3], 0);
    let wsrc = origin.url(&origin.put("alpha.webp", rgba_webp(32, 16), "image/webp"));
    let a = ask(&node, &wsrc, &[("w", "16")]).await;
    a.image("image/webp", (16, 8), "alpha webp");
    let img = a.decode();
    assert!(
        close(px(&img, 2, 4), [255, 0, 0, 255], 30),
        "{:?}",
        px(&img, 2, 4)
    );
    assert_eq!(px(&img, 13, 4)[3], 0, "WebP source lost transparency");

    // Progressive JPEG, 16-bit PNG and palette PNG resize like any other.
    let src = origin.url(&origin.put("prog.jpg", progressive_jpeg(64, 32), "image/jpeg"));
    let a = ask(&node, &src, &[("w", "16")]).await;
    a.image("image/jpeg", (16, 8), "progressive");
    assert_quadrants(&a.decode(), 40, "progressive");
    let src = origin.url(&origin.put("deep.png", png16(32, 32), "image/png"));
    let a = ask(&node, &src, &[("w", "16")]).await;
    a.image("image/png", (16, 16), "16-bit");
    assert_quadrants(&a.decode(), 30, "16-bit");
    let src = origin.url(&origin.put("pal.png", palette_png(32, 32), "image/png"));
    let a = ask(&node, &src, &[("w", "16")]).await;
    a.image("image/png", (16, 16), "palette");
    let img = a.decode();
    assert!(
        close(px(&img, 4, 4), [RED[0], RED[1], RED[2], 255], 8),
        "{:?}",
        px(&img, 4, 4)
    );
    assert!(close(
        px(&img, 12, 4),
        [GREEN[0], GREEN[1], GREEN[2], 255],
        8
    ));
    assert_eq!(px(&img, 12, 12)[3], 0, "palette transparency lost");

    // Animated GIF: the first frame, as PNG; the original stays a GIF.
    let g = gif(3);
    let src = origin.url(&origin.put("anim.gif", g.clone(), "image/gif"));
    let a = ask(&node, &src, &[("w", "6")]).await;
    a.image("image/png", (6, 5), "gif");
    let p = px(&a.decode(), 3, 2);
    assert!(close(p, [255, 0, 0, 255], 4), "not the first frame: {p:?}");
    let a = ask(&node, &src, &[]).await;
    a.image("image/gif", (12, 10), "gif original");
    assert_eq!(&a.body[..], &g[..]);
    // As WebP (asked for, or negotiated by `auto`) it stays animated: every
    // frame resized, the timing kept.
    for (query, accept) in [
        (&[("w", "6"), ("format", "webp")][..], None),
        (&[("w", "6"), ("format", "auto")], Some(WEBP_ONLY)),
    ] {
        let a = ask_with(&node, &src, query, accept).await;
        a.image("image/webp", (6, 5), "animated webp");
        let frames = webp_frames(&a.body);
        assert!(frames.len() >= 2, "{query:?}: {} frames", frames.len());
        assert!(frames.iter().all(|(f, _)| f.dimensions() == (6, 5)));
        let first = px(&frames[0].0, 3, 2);
        let last = px(&frames[frames.len() - 1].0, 3, 2);
        assert!(close(first, [255, 0, 0, 255], 30), "first frame {first:?}");
        assert!(close(last, [0, 0, 255, 255], 30), "last frame {last:?}");
        assert_eq!(frames.iter().map(|f| f.1).sum::<u32>(), 300, "total time");
    }

    // SVG is never served, whatever its Content-Type claims.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#;
    let fake = origin.url(&origin.put("fake.png", svg.to_vec(), "image/png"));
    for source in [origin.url("/svg"), fake] {
        for query in [&[][..], &[("w", "16")], &[("format", "png")]] {
            let a = ask(&node, &source, query).await;
            assert_eq!(a.status, 422, "{source} {query:?}");
            assert!(a.h("content-type").starts_with("text/plain"));
            assert!(!a.text().contains("<svg"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_broken_images_are_422_quickly() {
    let origin = Origin::start().await;
    let node = standalone("broken", &[]).await;

    // 20000x20000 (400 MP) in a few hundred KB: refused from the header.
    let bomb = png_bomb(20_000);
    assert!(bomb.len() < 500_000, "bomb is {} bytes", bomb.len());
    let src = origin.url(&origin.put("bomb.png", bomb, "image/png"));
    for query in [&[("w", "100")][..], &[("format", "webp")]] {
        let started = Instant::now();
        let a = ask(&node, &src, query).await;
        let took = started.elapsed();
        assert_eq!(a.status, 422, "{query:?}: {}", a.text());
        assert!(a.text().contains("too large"), "{}", a.text());
        assert!(a.text().contains("20000x20000"), "{}", a.text());
        assert!(
            took < Duration::from_millis(1000),
            "{query:?} took {took:?}"
        );
    }

    // Truncated and corrupt images: 422 with a reason, never 5xx or a hang.
    let j = quadrant_jpeg(64, 64);
    let prog = progressive_jpeg(64, 64);
    let p = quadrant_png(64, 64);
    let g = gif(1);
    let wp = rgba_webp(64, 64);
    let mut bad: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, full) in [
        ("jpeg", &j),
        ("progressive", &prog),
        ("png", &p),
        ("gif", &g),
        ("webp", &wp),
    ] {
        for cut in [full.len() / 3, full.len() / 2, full.len() * 9 / 10] {
            bad.push((format!("{name}-cut{cut}"), full[..cut].to_vec()));
        }
    }
    // Right magic, nothing behind it.
    bad.push(("jpeg-soi".into(), vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00]));
    bad.push(("png-sig".into(), b"\x89PNG\r\n\x1a\n".to_vec()));
    bad.push((
        "webp-riff".into(),
        b"RIFF\x10\0\0\0WEBPVP8 \xff\xff".to_vec(),
    ));
    // Valid header, scrambled image data.
    let mut scrambled = p.clone();
    let idat = scrambled.windows(4).position(|w| w == b"IDAT").unwrap() + 6;
    for b in &mut scrambled[idat..idat + 40] {
        *b ^= 0xA5;
    }
    bad.push(("png-scrambled".into(), scrambled));
    for (name, bytes) in bad {
        let src = origin.url(&origin.put(&name, bytes, "image/jpeg"));
        // Truncated files are refused even untransformed (a browser would
        // show half a picture); a whole file with damaged image data is
        // found when it is decoded for a transformation.
        let queries: &[&[(&str, &str)]] = if name == "png-scrambled" {
            &[&[("w", "16")]]
        } else {
            &[&[("w", "16")], &[]]
        };
        for query in queries {
            let started = Instant::now();
            let a = ask(&node, &src, query).await;
            assert_eq!(a.status, 422, "{name} {query:?}: {} {}", a.status, a.text());
            let reason = a.text();
            assert!(
                reason.contains("corrupt") || reason.contains("not a supported image"),
                "{name}: no reason in {reason:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{name} was slow"
            );
        }
    }
    // A truncated original is not cached: once the origin has the whole
    // file, the next request gets it.
    let whole = quadrant_png(64, 64);
    let path = origin.put("late.png", whole[..whole.len() / 2].to_vec(), "image/png");
    let src = origin.url(&path);
    let a = ask(&node, &src, &[]).await;
    assert_eq!(a.status, 422, "{}", a.text());
    assert!(
        a.text().contains("PNG (no IEND chunk) is truncated"),
        "{}",
        a.text()
    );
    origin.put("late.png", whole.clone(), "image/png");
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (64, 64), "whole file after a truncated one");
    assert_eq!(&a.body[..], &whole[..]);
    assert_eq!(origin.hits(&path), 2);
    // The node is fine afterwards.
    let good = origin.url(&origin.put("good.jpg", j, "image/jpeg"));
    ask(&node, &good, &[("w", "16")])
        .await
        .image("image/jpeg", (16, 16), "after the broken ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixel_and_frame_limits_apply_to_transforms_but_not_originals() {
    let origin = Origin::start().await;
    let node = standalone(
        "limited",
        &[
            ("MAX_SOURCE_PIXELS", "10000".into()),
            ("MAX_ANIMATION_FRAMES", "2".into()),
        ],
    )
    .await;
    let big = quadrant_png(200, 200);
    let src = origin.url(&origin.put("big.png", big.clone(), "image/png"));
    let a = ask(&node, &src, &[("w", "50")]).await;
    assert_eq!(a.status, 422, "{}", a.text());
    assert!(a.text().contains("too large"), "{}", a.text());
    assert!(
        a.text().contains("10000"),
        "the limit is named: {}",
        a.text()
    );
    // The original bytes are not transformed, so no limit applies.
    let a = ask(&node, &src, &[]).await;
    a.image("image/png", (200, 200), "original");
    assert_eq!(&a.body[..], &big[..]);
    // Exactly at the limit is fine.
    let edge = origin.url(&origin.put("edge.png", quadrant_png(100, 100), "image/png"));
    ask(&node, &edge, &[("w", "50")])
        .await
        .image("image/png", (50, 50), "100x100");
    // The output canvas counts too: enlarging past the limit is refused.
    let a = ask(&node, &edge, &[("w", "200"), ("h", "200"), ("fit", "fill")]).await;
    assert_eq!(a.status, 422, "{}", a.text());

    // MAX_ANIMATION_FRAMES: three frames are one too many to transform,
    // two are fine; the original passes untouched either way.
    let three = gif(3);
    let src = origin.url(&origin.put("three.gif", three.clone(), "image/gif"));
    for format in ["webp", "png"] {
        let a = ask(&node, &src, &[("w", "6"), ("format", format)]).await;
        assert_eq!(a.status, 422, "{}", a.text());
        assert!(a.text().contains("too many frames"), "{}", a.text());
    }
    let a = ask(&node, &src, &[]).await;
    a.image("image/gif", (12, 10), "original animation");
    assert_eq!(&a.body[..], &three[..]);
    let two = origin.url(&origin.put("two.gif", gif(2), "image/gif"));
    ask(&node, &two, &[("w", "6"), ("format", "webp")])
        .await
        .image("image/webp", (6, 5), "two frames");
}

/// A full pool sheds load with 503 and `Retry-After`. Deterministic: the
/// origin holds the one shared original back until every request is
/// waiting for it, so all transforms reach the pool at the same moment;
/// with `MAX_QUEUE=0` at most one per thread is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_answers_503_with_retry_after() {
    let origin = Origin::start().await;
    let node = standalone("busy", &[("MAX_QUEUE", "0".into())]).await;
    // Decoding ~3 MB of noise takes long enough for every job to arrive
    // while the first ones still run.
    let path = origin.put("noise.png", noise_png(1000, 1000), "image/png");
    let src = origin.url(&path);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = threads * 3 + 2;
    origin.hold();
    let tasks = ask_all_at_once(&node, &src, "w", (0..n).map(|i| (20 + i).to_string()));
    // Every request is waiting on the one origin fetch, which is held...
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.metric("img_proxy_cache_misses_total").await < n as f64 || origin.hits(&path) == 0 {
        assert!(Instant::now() < deadline, "requests did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(origin.hits(&path), 1);
    // ...and now all of them want a pool thread at once.
    origin.release();
    let mut busy = Vec::new();
    let mut ok = 0;
    for t in tasks {
        let (w, a) = t.await.unwrap();
        match a.status {
            200 => {
                ok += 1;
                assert_eq!(dimensions(&a.body).0, w.parse::<u32>().unwrap());
            }
            503 => {
                assert_eq!(a.h("retry-after"), "1", "503 without Retry-After");
                assert!(a.text().contains("retry"));
                busy.push(w);
            }
            other => panic!("w={w}: unexpected {other}: {}", a.text()),
        }
    }
    assert!(!busy.is_empty(), "{n} simultaneous transforms and no 503");
    // Exactly one job per thread was taken: the others needed a queue.
    assert_eq!(
        ok, threads,
        "{ok} of {n} accepted with {threads} idle threads"
    );
    // Overload is not cached: the refused variants work when retried.
    for w in busy {
        let a = ask(&node, &src, &[("w", &w)]).await;
        assert_eq!(a.status, 200, "w={w} after the burst: {}", a.text());
        assert_eq!(a.h("x-cache"), "MISS");
    }
    assert_eq!(origin.hits(&path), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_serves_all_variants_from_the_owner_with_one_fetch() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(2, 3, &[]).await;
    let gw = &cluster.gateways;
    let original = quadrant_jpeg(64, 48);
    let path = origin.put("photo.jpg", original.clone(), "image/jpeg");
    let src = origin.url(&path);

    // The gateway validates options before routing anywhere.
    for g in gw {
        let a = ask(g, &src, &[("fit", "sideways")]).await;
        assert_eq!(a.status, 400);
        assert!(a.text().contains("`fit`"), "{}", a.text());
    }
    assert_eq!(origin.total(), 0);

    let variants: [(Query, &str, (u32, u32)); 10] = [
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
    let mut owner = String::new();
    let mut bodies = Vec::new();
    for (i, (query, mime, size)) in variants.iter().enumerate() {
        let what = format!("{query:?}");
        let a = ask(&gw[i % 2], &src, query).await;
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
        assert_eq!(
            origin.hits(&path),
            1,
            "{what}: the original was fetched again"
        );
        bodies.push(a.body);
    }
    assert_quadrants(&decode(&bodies[0]), 40, "w=32 through the cluster");

    // The original was cached on the way: a hit, byte for byte.
    let a = ask(&gw[1], &src, &[]).await;
    a.image("image/jpeg", (64, 48), "original");
    assert_eq!(a.h("x-cache"), "HIT");
    assert_eq!(a.h("x-served-by"), owner);
    assert_eq!(&a.body[..], &original[..]);

    // Every variant is a hit through either gateway.
    for g in gw {
        for ((query, _, _), body) in variants.iter().zip(&bodies) {
            let a = ask(g, &src, query).await;
            assert_eq!(a.h("x-cache"), "HIT", "{query:?} via {}", g.name);
            assert_eq!(a.h("x-served-by"), owner);
            assert_eq!(&a.body, body);
        }
    }
    // Parameter order and the default q do not make new entries.
    for query in [&[("q", "80"), ("w", "100")][..], &[("w", "100")]] {
        let a = ask(&gw[1], &src, query).await;
        assert_eq!(a.h("x-cache"), "HIT", "{query:?}");
        assert_eq!(a.body, bodies[9]);
    }

    // format=auto: negotiated by the gateway, cached per format by the owner.
    let q = [("w", "28"), ("format", "auto")];
    for (accept, mime) in [
        (Some(AVIF_FIRST), "image/avif"),
        (Some(WEBP_ONLY), "image/webp"),
        (None, "image/jpeg"),
    ] {
        let a = ask_with(&gw[0], &src, &q, accept).await;
        a.image(mime, (28, 21), &format!("auto {accept:?}"));
        assert_eq!(a.h("vary"), "Accept");
        assert_eq!(a.h("x-cache"), "MISS", "auto {accept:?}");
        assert_eq!(a.h("x-served-by"), owner);
        let again = ask_with(&gw[1], &src, &q, accept).await;
        again.image(mime, (28, 21), &format!("auto {accept:?} again"));
        assert_eq!(again.h("x-cache"), "HIT");
        assert_eq!(again.h("vary"), "Accept");
        assert_eq!(again.body, a.body);
    }

    assert_eq!(origin.hits(&path), 1, "one origin request for all variants");
    assert_eq!(origin.total(), 1);
    // Only the owner did any work.
    for w in &cluster.workers {
        let misses = w.metric("img_proxy_cache_misses_total").await;
        if w.name == owner {
            assert_eq!(misses, 13.0, "10 variants + 3 negotiated formats");
        } else {
            assert_eq!(misses, 0.0, "{} did work for {path}", w.name);
        }
    }
}

/// Runs `img-proxy transform` with `args`; returns success and stderr.
fn transform_cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_img-proxy"))
        .arg("transform")
        .args(args)
        .env_clear()
        .output()
        .expect("run img-proxy transform");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_transforms_one_file_or_many_into_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().expect("UTF-8 temp dir").to_string();
    let write = |name: &str, bytes: &[u8]| {
        let p = format!("{dir}/{name}");
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let read = |path: &str| std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let jpg = write("photo.jpg", &quadrant_jpeg(64, 48));
    let png_in = write("alpha.png", &rgba_png(32, 16));
    let gif_in = write("anim.gif", &gif(2));
    let other_photo = write("photo.png", &quadrant_png(64, 48));
    let broken = write("broken.jpg", &quadrant_jpeg(64, 48)[..300]);

    // One file: --width and --format.
    let out = format!("{dir}/thumb.webp");
    let (ok, err) = transform_cli(&[&jpg, "-o", &out, "--width", "32", "--format", "webp"]);
    assert!(ok, "{err}");
    let bytes = read(&out);
    assert_eq!(magic(&bytes), Some("image/webp"));
    assert_eq!(dimensions(&bytes), (32, 24));
    assert_quadrants(&decode(&bytes), 40, "cli webp");
    // Without --format the output's extension decides; a name that names
    // no format keeps the source's format.
    for (name, mime) in [
        ("thumb.png", "image/png"),
        ("thumb.WEBP", "image/webp"),
        ("thumb.jpeg", "image/jpeg"),
        ("thumb", "image/jpeg"),
        ("thumb.out", "image/jpeg"),
    ] {
        let out = format!("{dir}/{name}");
        let (ok, err) = transform_cli(&[&jpg, "-o", &out, "--width", "16"]);
        assert!(ok, "{name}: {err}");
        let bytes = read(&out);
        assert_eq!(magic(&bytes), Some(mime), "{name}");
        assert_eq!(dimensions(&bytes), (16, 12), "{name}");
    }
    // A name for a format we cannot write is refused, not filled with JPEG.
    let out = format!("{dir}/thumb.gif");
    let (ok, err) = transform_cli(&[&jpg, "-o", &out, "--width", "16"]);
    assert!(!ok);
    assert!(err.contains(".gif") && err.contains("--format"), "{err}");
    assert!(!std::path::Path::new(&out).exists());
    // `-o dir/` names a directory, created if missing, also for one input.
    let (ok, err) = transform_cli(&[&png_in, "-o", &format!("{dir}/single/"), "-W", "8"]);
    assert!(ok, "{err}");
    assert_eq!(
        dimensions(&read(&format!("{dir}/single/alpha.png"))),
        (8, 4)
    );

    // Several files into a directory (created), one result per input,
    // named after the input with the output format's extension.
    let outdir = format!("{dir}/thumbs");
    let (ok, err) = transform_cli(&[
        &jpg,
        &png_in,
        &gif_in,
        "-o",
        &format!("{outdir}/"),
        "--width",
        "8",
    ]);
    assert!(ok, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["alpha.png", "anim.png", "photo.jpg"]);
    for (name, mime, size) in [
        ("photo.jpg", "image/jpeg", (8, 6)),
        ("alpha.png", "image/png", (8, 4)),
        ("anim.png", "image/png", (8, 7)),
    ] {
        let bytes = read(&format!("{outdir}/{name}"));
        assert_eq!(magic(&bytes), Some(mime), "{name}");
        assert_eq!(dimensions(&bytes), size, "{name}");
    }
    // Two inputs that would land on one output name: refused before any
    // work, instead of one result silently overwriting the other.
    let clash = format!("{dir}/clash");
    let (ok, err) = transform_cli(&[&jpg, &other_photo, "-o", &clash, "--format", "webp"]);
    assert!(!ok, "two inputs, one output name: accepted");
    assert!(
        err.contains("photo.jpg") && err.contains("photo.png") && err.contains("photo.webp"),
        "{err}"
    );
    assert!(!std::path::Path::new(&clash).exists());

    // A corrupt input: non-zero exit and a message naming file and reason.
    let out = format!("{dir}/never.jpg");
    let (ok, err) = transform_cli(&[&broken, "-o", &out, "--width", "16"]);
    assert!(!ok);
    assert!(
        err.contains("broken.jpg") && err.contains("corrupt"),
        "{err}"
    );
    assert!(
        !std::path::Path::new(&out).exists(),
        "output for a corrupt input"
    );
    // In a batch the good inputs are still done, and the exit says failure.
    let batch = format!("{dir}/batch");
    let (ok, err) = transform_cli(&[&jpg, &broken, "-o", &batch, "--width", "8"]);
    assert!(!ok);
    assert!(
        err.contains("broken.jpg") && err.contains("corrupt"),
        "{err}"
    );
    assert!(err.contains("1 of 2 inputs failed"), "{err}");
    assert_eq!(dimensions(&read(&format!("{batch}/photo.jpg"))), (8, 6));
    // Bad options are refused as the HTTP API refuses them.
    let (ok, err) = transform_cli(&[&jpg, "-o", &out, "--width", "100000"]);
    assert!(!ok);
    assert!(err.contains("`w`"), "{err}");
}

/// AVIF sources are decoded in a child process (`img-proxy __decode-avif`):
/// resized and converted correctly, and corrupt files — some of which make
/// rav1d abort — cost a 422, never the node.
#[cfg(feature = "avif-decode")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avif_sources_decode_and_corrupt_ones_cannot_crash_the_node() {
    let origin = Origin::start().await;
    let node = standalone("avif", &[]).await;
    let good = avif(64, 48);
    let src = origin.url(&origin.put("q.avif", good.clone(), "image/avif"));
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
    assert_quadrants(&a.decode(), 40, "full-size png");

    // Truncated anywhere: 422.
    for cut in [
        20,
        good.len() / 3,
        good.len() / 2,
        good.len() - 20,
        good.len() - 1,
    ] {
        let s = origin.url(&origin.put(
            &format!("cut{cut}.avif"),
            good[..cut].to_vec(),
            "image/avif",
        ));
        let a = ask(&node, &s, &[("w", "16"), ("format", "png")]).await;
        assert_eq!(a.status, 422, "cut at {cut}/{}: {}", a.text(), good.len());
    }
    // Byte flips everywhere (rav1d 1.1 aborts on some of these): each one
    // is a 422 or, when the flip is harmless, an image; never a 5xx or a
    // dropped connection.
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
    // The node is still there and still decodes.
    let h = client().get(node.url("/health")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let a = ask(&node, &src, &[("w", "16"), ("format", "webp")]).await;
    a.image("image/webp", (16, 12), "after the flips");
}

#[cfg(feature = "avif-decode")]
#[test]
fn cli_transforms_avif_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().expect("UTF-8 temp dir").to_string();
    let x = format!("{dir}/x.avif");
    std::fs::write(&x, avif(100, 70)).unwrap();
    let y = format!("{dir}/y.png");
    // `-o y.png`: a PNG, decoded from the AVIF.
    let (ok, err) = transform_cli(&[&x, "-o", &y, "--width", "50"]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&y).unwrap();
    assert_eq!(magic(&bytes), Some("image/png"));
    assert_eq!(dimensions(&bytes), (50, 35));
    assert_quadrants(&decode(&bytes), 40, "cli avif");
    // An explicit --format wins over the name.
    let (ok, err) = transform_cli(&[&x, "-o", &y, "--width", "50", "--format", "webp"]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&y).unwrap();
    assert_eq!(magic(&bytes), Some("image/webp"));
    assert_eq!(dimensions(&bytes), (50, 35));
    // A name without a format keeps AVIF.
    let z = format!("{dir}/z");
    let (ok, err) = transform_cli(&[&x, "-o", &z, "--width", "50"]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&z).unwrap();
    assert_eq!(magic(&bytes), Some("image/avif"));
    assert_eq!(dimensions(&bytes), (50, 35));
    // A truncated AVIF: a clear failure, not a crash of the command.
    std::fs::write(&x, &avif(100, 70)[..200]).unwrap();
    let (ok, err) = transform_cli(&[&x, "-o", &y, "--width", "50"]);
    assert!(!ok);
    assert!(err.contains("x.avif") && err.contains("corrupt"), "{err}");
}

/// Peak resident memory of a running node, from `/proc/<pid>/status`.
fn peak_rss_bytes(node: &Node) -> u64 {
    let pid = node.child.as_ref().and_then(|c| c.id()).expect("node runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb * 1024
}

/// 32 requests for large photos at once: the pool decodes only one per CPU
/// at a time and the rest wait as compressed bytes, so the worker's peak
/// memory grows by a few decodes' worth, not by 32. Self-calibrating: one
/// request alone first measures what a single decode costs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peak_memory_stays_bounded_when_32_large_photos_arrive_at_once() {
    let origin = Origin::start().await;
    let node = standalone("memory", &[]).await;
    // 3000x2000 (6 MP, 18 MB as RGB), re-encoded at 32 qualities: each
    // variant is a full-size decode and encode (no DCT scaling, no resize,
    // which keeps the debug-build test fast).
    let (sw, sh) = (3000u16, 2000u16);
    let path = origin.put("big.jpg", quadrant_jpeg(sw, sh), "image/jpeg");
    let src = origin.url(&path);
    let base = peak_rss_bytes(&node);
    let a = ask(&node, &src, &[("q", "49")]).await;
    a.image("image/jpeg", (3000, 2000), "single");
    let single = peak_rss_bytes(&node).saturating_sub(base).max(1);
    let frame = u64::from(sw) * u64::from(sh) * 3;
    assert!(
        single >= frame,
        "one full-size decode grew the node by only {single} bytes"
    );

    let n = 32;
    let tasks = ask_all_at_once(&node, &src, "q", (0..n).map(|i| (50 + i).to_string()));
    for t in tasks {
        let (q, a) = t.await.unwrap();
        a.image("image/jpeg", (3000, 2000), &format!("q={q}"));
    }
    assert_eq!(origin.hits(&path), 1, "one fetch for every variant");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let burst = peak_rss_bytes(&node).saturating_sub(base);
    eprintln!(
        "peak growth: one decode {} MB, {n} at once {} MB ({threads} pool threads)",
        single >> 20,
        burst >> 20
    );
    // Unbounded, 32 decodes would need >= 32 x single. Allow every pool
    // thread one decode plus as much again for allocator slack.
    assert!(
        burst <= (threads + 1) * single + frame,
        "{n} simultaneous large photos grew the node by {} MB; one grew it by {} MB",
        burst >> 20,
        single >> 20
    );
}
