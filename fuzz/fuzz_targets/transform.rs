//! The decode-transform pipeline on arbitrary bytes.
//!
//! Input: three option bytes, then the source image. The option bytes
//! choose `w`, `h` (1-64 or unset), `fit`, the output format (source's,
//! JPEG, PNG or WebP; AVIF encoding is slow and reads no input) and blur
//! or sharpen, parsed by the real option parser. The source runs through
//! `pipeline::transform` within small limits, so that executions stay fast
//! while every header is still checked before any pixel is allocated.
//!
//! Checks, beyond "never panics" (the fuzzer's panic hook aborts even on
//! the panics `transform` catches) and "never runs out of memory" (libFuzzer
//! enforces `-rss_limit_mb`): a success is a non-empty image whose magic
//! bytes are the format it claims.

#![no_main]

use img_proxy::pipeline::sniff::{sniff, SourceFormat};
use img_proxy::pipeline::{transform, Limits, OutputFormat, RequestedOptions};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits {
    max_pixels: 4_000_000,
    max_frames: 16,
};

/// The query the three option bytes stand for.
fn query(o: [u8; 3]) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if o[0] & 0x40 != 0 {
        q.push(("w", (u32::from(o[0] & 0x3f) + 1).to_string()));
    }
    if o[1] & 0x40 != 0 {
        q.push(("h", (u32::from(o[1] & 0x3f) + 1).to_string()));
    }
    let fit = ["inside", "cover", "contain", "fill"][usize::from(o[2] & 3)];
    q.push(("fit", fit.to_string()));
    if let Some(f) = [None, Some("jpeg"), Some("png"), Some("webp")][usize::from(o[2] >> 2 & 3)] {
        q.push(("format", f.to_string()));
    }
    if o[2] & 0x10 != 0 {
        q.push(("blur", "1.5".to_string()));
    }
    if o[2] & 0x20 != 0 {
        q.push(("sharpen", "0.8".to_string()));
    }
    if o[0] & 0x80 != 0 {
        q.push(("q", "30".to_string()));
    }
    q
}

fn claims(bytes: &[u8], format: OutputFormat) -> bool {
    let want = match format {
        OutputFormat::Jpeg => SourceFormat::Jpeg,
        OutputFormat::Png => SourceFormat::Png,
        OutputFormat::WebP => SourceFormat::WebP,
        OutputFormat::Avif => SourceFormat::Avif,
    };
    sniff(bytes) == Some(want)
}

fuzz_target!(|data: &[u8]| {
    let Some((o, src)) = data.split_first_chunk::<3>() else {
        return;
    };
    let q = query(*o);
    let requested = RequestedOptions::from_query(q.iter().map(|(k, v)| (*k, v.as_str())))
        .expect("the generated options parse");
    let opts = requested.resolve(None).options.normalized();
    if let Ok(out) = transform(src, &opts, &LIMITS) {
        assert!(!out.bytes.is_empty());
        assert!(
            claims(&out.bytes, out.format),
            "output is not {:?}",
            out.format
        );
    }
});
