//! Writes the seed corpora of the fuzz targets (`fuzz/`) from the test
//! fixtures: `cargo run -p img-proxy-test-support --example fuzz_seeds --
//! fuzz/corpus`. `scripts/fuzz.sh` runs it before fuzzing. Seeds are small
//! images (the fuzzer mutates faster on short inputs), queries as the
//! tests write them, and URLs and addresses from the SSRF tests.

use std::fs;
use std::path::Path;

use img_proxy_test_support as ts;

/// Small images of every source format and the shapes the tests use.
fn images() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("quadrant.jpg", ts::quadrant_jpeg(16, 8)),
        ("progressive.jpg", ts::progressive_jpeg(16, 8)),
        ("oriented6.jpg", ts::oriented_jpeg(6, 8, 16)),
        ("cmyk.jpg", ts::cmyk_jpeg(false)),
        ("ycck.jpg", ts::cmyk_jpeg(true)),
        ("quadrant.png", ts::quadrant_png(16, 8)),
        ("png16.png", ts::png16(8, 8)),
        ("palette.png", ts::palette_png(8, 8)),
        ("rgba.png", ts::rgba_png(8, 8)),
        ("bomb.png", ts::png_bomb(4000)),
        ("rgba.webp", ts::rgba_webp(8, 8)),
        ("one.gif", ts::gif(1)),
        ("three.gif", ts::gif(3)),
        ("no-palette.gif", ts::no_palette_gif()),
        ("small.avif", ts::avif(8, 8)),
        ("grid.avif", ts::heif::solid_grid(16, 16)),
    ]
}

const QUERIES: &[&str] = &[
    "url=https%3A%2F%2Fexample.com%2Fcat.jpg",
    "url=https://example.com/a.jpg&w=300&h=200&fit=cover&format=webp",
    "url=http://example.com/a.png&w=64&dpr=2.5&q=80&format=auto",
    "url=https://example.com/a.jpg&blur=1.5&sharpen=0.8&fit=contain",
    "url=https://example.com/a.jpg&preset=thumb&w=10",
    "url=https://example.com/a.jpg&preset=avatar&sig=abc",
    "url=https://example.com/a.jpg&w=1&w=2",
    "url=https://example.com/a.jpg&h=99999&fit=fill&format=avif&q=1",
];

const URLS: &[&str] = &[
    "https://images.example.com/cat.jpg",
    "http://a.cdn.example.com./x.png?y=1#z",
    "https://example.com@evil.com/",
    "https://images.example.com.evil.com/",
    "https://EXAMPLE.com./%2e%2e/",
    "http://127.0.0.1:8080/",
    "http://[::ffff:169.254.169.254]/latest/meta-data",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:7f00:1::1]/",
    "http://0x7f.1/",
    "http://2130706433/",
    "http://017700000001/",
    "http://xn--n3h.example/",
    "file:///etc/passwd",
];

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("corpus directory");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let root = Path::new(&root);
    for (name, bytes) in images() {
        write(&root.join("complete"), name, &bytes);
        // transform: three option bytes (w=32, h=16, cover, WebP), then the image.
        let mut t = vec![0x40 | 31, 0x40 | 15, 0x01 | 0x0c];
        t.extend_from_slice(&bytes);
        write(&root.join("transform"), name, &t);
        if name.ends_with(".avif") {
            write(&root.join("avif_container"), name, &bytes);
        }
    }
    for (i, q) in QUERIES.iter().enumerate() {
        write(&root.join("query_options"), &format!("q{i}"), q.as_bytes());
    }
    for (i, u) in URLS.iter().enumerate() {
        write(&root.join("source_url"), &format!("u{i}"), u.as_bytes());
    }
    write(&root.join("source_url"), "v4", &[169, 254, 169, 254]);
    write(
        &root.join("source_url"),
        "v6",
        &std::net::Ipv6Addr::LOCALHOST.octets(),
    );
    println!("seeds written under {}", root.display());
}
