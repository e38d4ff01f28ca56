//! Encoders. None of them is given any metadata, so outputs carry no EXIF,
//! XMP, ICC or comments: pixels are already upright and sRGB.
//!
//! Choices: `jpeg-encoder` (pure Rust, AVX2, optimised Huffman tables; at
//! thumbnail sizes it is faster than non-SIMD libjpeg), the `image`
//! crate's PNG encoder, libwebp (the reference encoder, method 4 as
//! browsers' own tools use), and ravif/rav1e for AVIF at a speed setting
//! that keeps a cache miss under a second for typical web sizes.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use jpeg_encoder::{ColorType as JpegColor, Encoder as JpegEncoder, SamplingFactor};
use rgb::FromSlice;

use super::error::PipelineError;
use super::options::OutputFormat;
use super::pixels::Pixels;
use super::webp;

/// rav1e speed (1 slowest .. 10 fastest). `format=auto` gives AVIF to
/// every current browser, so this is the encode most cache misses pay.
/// Measured on the benchmark's 12 photos at q80 (rav1e without assembly):
/// 800 px took 5.6 s at speed 7 or 8, 2.9 s at 9, 2.0 s at 10, for 339,
/// 368 and 429 KB (WebP: 0.4 s, 397 KB). 9 halves the miss latency for 9%
/// more bytes and stays smaller than WebP; 10 does not.
const AVIF_SPEED: u8 = 9;

fn enc_err(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Internal(format!("{what} encoder failed: {e}"))
}

/// The largest side each output format can carry so that decoders read
/// it: libjpeg refuses JPEGs over 65,500 pixels a side (the format's own
/// field would allow 65,535), WebP's header stores 14 bits, libavif (what
/// browsers decode AVIF with) refuses sides over 32,768 by default, and
/// libpng's default limit is 1,000,000. Larger outputs are refused (422)
/// rather than written unreadable.
pub(crate) fn max_side(format: OutputFormat) -> u32 {
    match format {
        OutputFormat::Jpeg => 65_500,
        OutputFormat::WebP => webp::MAX_SIDE,
        OutputFormat::Avif => 32_768,
        OutputFormat::Png => 1_000_000,
    }
}

/// Encodes `px` as `format`. JPEG input must have no alpha (flattened by
/// the caller); WebP/AVIF get gray expanded to RGB here.
pub(crate) fn encode(
    px: Pixels,
    format: OutputFormat,
    quality: u8,
) -> Result<Vec<u8>, PipelineError> {
    let quality = quality.clamp(1, 100);
    let max = max_side(format);
    if px.w > max || px.h > max {
        return Err(PipelineError::Unsupported(format!(
            "{}x{} is too large for {} output (max {max} pixels a side)",
            px.w,
            px.h,
            format.as_str().to_uppercase()
        )));
    }
    match format {
        OutputFormat::Jpeg => encode_jpeg(&px, quality),
        OutputFormat::Png => encode_png(&px),
        OutputFormat::WebP => webp::encode(px.into_rgb_family(), quality),
        OutputFormat::Avif => encode_avif(px.into_rgb_family(), quality),
    }
}

fn encode_jpeg(px: &Pixels, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let (w, h) = (dim16(px.w)?, dim16(px.h)?);
    let ct = match px.ch {
        1 => JpegColor::Luma,
        3 => JpegColor::Rgb,
        _ => return Err(PipelineError::Internal("JPEG encoder got alpha".into())),
    };
    let mut out = Vec::with_capacity(px.data.len() / 8 + 1024);
    let mut enc = JpegEncoder::new(&mut out, quality);
    // 4:2:0 like every camera and libvips; 4:4:4 at very high quality.
    enc.set_sampling_factor(if quality >= 90 {
        SamplingFactor::F_1_1
    } else {
        SamplingFactor::F_2_2
    });
    enc.set_optimized_huffman_tables(true);
    enc.encode(&px.data, w, h, ct)
        .map_err(|e| enc_err("JPEG", e))?;
    Ok(out)
}

/// A side as JPEG's 16-bit field (within [`max_side`], checked first).
fn dim16(v: u32) -> Result<u16, PipelineError> {
    u16::try_from(v).map_err(|_| PipelineError::Internal(format!("{v} pixels for a JPEG side")))
}

fn encode_png(px: &Pixels) -> Result<Vec<u8>, PipelineError> {
    let ct = match px.ch {
        1 => ExtendedColorType::L8,
        2 => ExtendedColorType::La8,
        3 => ExtendedColorType::Rgb8,
        _ => ExtendedColorType::Rgba8,
    };
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive)
        .write_image(&px.data, px.w, px.h, ct)
        .map_err(|e| enc_err("PNG", e))?;
    Ok(out)
}

fn encode_avif(px: Pixels, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let enc = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(AVIF_SPEED)
        // The CPU pool already runs one job per core.
        .with_num_threads(Some(1));
    let (w, h) = (px.w as usize, px.h as usize);
    let res = if px.ch == 4 {
        enc.encode_rgba(ravif::Img::new(px.data.as_rgba(), w, h))
    } else {
        enc.encode_rgb(ravif::Img::new(px.data.as_rgb(), w, h))
    };
    res.map(|e| e.avif_file).map_err(|e| enc_err("AVIF", e))
}
