//! PNG decoding through the `image` crate: a pure-Rust, memory-safe
//! parser for untrusted input, run only after the probe checked the size,
//! with the crate's allocation limits as a second line of defence.

use std::io::Cursor;

use image::codecs::png::PngDecoder;
use image::{ColorType, ImageDecoder};

use super::error::{check_pixels, PipelineError};
use super::limits::image_limits;
use super::pixels::{u16_to_u8, Pixels};
use super::probe::exif_orientation;

/// Pixels plus the metadata only the decoder could see.
pub(crate) struct DecodedPng {
    pub pixels: Pixels,
    pub icc: Option<Vec<u8>>,
    /// EXIF orientation, when the file has one.
    pub orientation: Option<u8>,
}

/// Budget for the PNG decoder's *own* allocations (row buffers, inflate
/// state, iCCP and text chunks); the pixel buffer is ours and bounded by
/// the pixel limit. Keeps zTXt/iCCP decompression bombs small.
const PNG_INTERNAL_ALLOC: u64 = 64 << 20;

/// Decodes a PNG (8 or 16 bits, any colour type but indexed, which the
/// decoder expands) to 8-bit pixels, with its ICC profile and orientation.
pub(crate) fn decode(data: &[u8], max_pixels: u64) -> Result<DecodedPng, PipelineError> {
    let mut dec = PngDecoder::with_limits(
        Cursor::new(data),
        image_limits(max_pixels, PNG_INTERNAL_ALLOC),
    )
    .map_err(PipelineError::from_image)?;
    let icc = dec.icc_profile().ok().flatten();
    let orientation = dec
        .exif_metadata()
        .ok()
        .flatten()
        .and_then(|e| exif_orientation(&e));
    let (w, h) = dec.dimensions();
    // Defence in depth: the probe checked already, but the decoder must
    // not depend on being called after it.
    check_pixels(w, h, max_pixels)?;
    let ct = dec.color_type();
    let mut buf = Pixels::zeroed_buffer(dec.total_bytes())?;
    dec.read_image(&mut buf)
        .map_err(PipelineError::from_image)?;
    let (ch, wide) = match ct {
        ColorType::L8 => (1, false),
        ColorType::La8 => (2, false),
        ColorType::Rgb8 => (3, false),
        ColorType::Rgba8 => (4, false),
        ColorType::L16 => (1, true),
        ColorType::La16 => (2, true),
        ColorType::Rgb16 => (3, true),
        ColorType::Rgba16 => (4, true),
        other => {
            return Err(PipelineError::Unsupported(format!(
                "PNG colour type {other:?}"
            )));
        }
    };
    let data = if wide { u16_to_u8(&buf) } else { buf };
    Ok(DecodedPng {
        pixels: Pixels::new(w, h, ch, data),
        icc,
        orientation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use img_proxy_test_support::png_bomb;
    use std::time::{Duration, Instant};

    /// The decoder's own limits refuse a bomb if it ever gets past the
    /// probe (tests/transform_memory.rs checks the allocations).
    #[test]
    fn decoder_limits_refuse_a_bomb_quickly() {
        let bomb = png_bomb(20_000);
        let t0 = Instant::now();
        assert!(decode(&bomb, 1_000_000).is_err());
        assert!(t0.elapsed() < Duration::from_millis(500));
    }
}
