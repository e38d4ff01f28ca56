//! Helpers for the transform tests (`tests/transform_*.rs`), which drive
//! the public `img_proxy::pipeline::transform` over fixtures generated in
//! memory (`img-proxy-test-support`), so they need no files and stay fast
//! in debug builds.

#![allow(dead_code, unused_imports)]

pub use img_proxy::pipeline::sniff::{sniff, SourceFormat};
pub use img_proxy::pipeline::{
    transform, Fit, Limits, OutputFormat, PipelineError, TransformOptions, Transformed,
};
pub use img_proxy_test_support::*;
pub use jpeg_encoder::{ColorType as JColor, SamplingFactor};

pub fn opts(
    w: Option<u32>,
    h: Option<u32>,
    fit: Fit,
    format: Option<OutputFormat>,
) -> TransformOptions {
    TransformOptions {
        w,
        h,
        fit,
        quality: 90,
        format,
        blur: None,
        sharpen: None,
        gravity: Default::default(),
    }
}

/// Transforms with the default limits and checks that the bytes are what
/// the result says they are.
pub fn run(src: &[u8], o: &TransformOptions) -> Transformed {
    let t = transform(src, o, &Limits::default()).expect("transform");
    assert_eq!(
        sniff(&t.bytes).map(|f| f.mime()),
        Some(t.format.mime()),
        "bytes match format"
    );
    t
}

/// Whether any EXIF, XMP or ICC marker is left in `b`.
pub fn has_metadata(b: &[u8]) -> bool {
    let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
    has(b"Exif")
        || has(b"ICC_PROFILE")
        || has(b"iCCP")
        || has(b"eXIf")
        || has(b"ICCP")
        || has(b"EXIF")
        || has(b"http://ns.adobe.com/xap")
}

/// 16x8, hand-built: left half opaque red, right half fully transparent,
/// one column half-transparent blue (unlike the shared [`rgba_png`], whose
/// right half is all transparent).
pub fn rgba_png_soft_column() -> Vec<u8> {
    raw_png(16, 8, 8, 6, false, &[], |x, _| match x {
        0..=7 => vec![255, 0, 0, 255],
        8 => vec![0, 0, 255, 128],
        _ => vec![0, 0, 0, 0],
    })
}
