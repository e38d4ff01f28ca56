//! Decoders for the non-JPEG formats: PNG and GIF through the `image`
//! crate (pure Rust, memory-safe parsers for untrusted input), WebP through
//! libwebp (several times faster than the pure-Rust decoder; animations via
//! its demuxer, which composites the first frame for us).
//!
//! All are called only after [`super::probe`] has checked the size, and all
//! get the `image` crate's allocation limits as a second line of defence.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::{ColorType, ImageDecoder};

use super::pixels::{u16_to_u8, Pixels};
use super::probe::exif_orientation;
use super::transform::PipelineError;

/// Pixels plus the metadata only the decoder could see.
pub(crate) struct Decoded {
    pub pixels: Pixels,
    pub icc: Option<Vec<u8>>,
    /// EXIF orientation, when the decoder found one.
    pub orientation: Option<u8>,
}

pub(crate) fn img_err(e: image::ImageError) -> PipelineError {
    match e {
        image::ImageError::Unsupported(u) => PipelineError::Unsupported(u.to_string()),
        image::ImageError::Limits(l) => PipelineError::Corrupt(format!("decoder limit: {l}")),
        other => PipelineError::Corrupt(other.to_string()),
    }
}

fn alloc(len: u64) -> Result<Vec<u8>, PipelineError> {
    let len = usize::try_from(len)
        .map_err(|_| PipelineError::Corrupt("image is too large for this machine".into()))?;
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| PipelineError::Corrupt("image is too large for this machine".into()))?;
    v.resize(len, 0);
    Ok(v)
}

/// Defence in depth: the probe already checked, but the decoders must not
/// depend on being called after it.
fn check_size(w: u32, h: u32, max_pixels: u64) -> Result<(), PipelineError> {
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(PipelineError::TooManyPixels {
            width: w.into(),
            height: h.into(),
            max: max_pixels,
        });
    }
    Ok(())
}

/// Budget for the PNG decoder's *own* allocations (row buffers, inflate
/// state, iCCP and text chunks); the pixel buffer is ours and bounded by
/// the pixel limit. Keeps zTXt/iCCP decompression bombs small.
const PNG_INTERNAL_ALLOC: u64 = 64 << 20;

/// The `image` crate's own limits, derived from ours: sides no larger than
/// the pixel budget, and decoder allocations bounded by `max_alloc`.
pub(crate) fn image_limits(max_pixels: u64, max_alloc: u64) -> image::Limits {
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    let mut l = image::Limits::default();
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    l.max_alloc = Some(max_alloc);
    l
}

pub(crate) fn decode_png(data: &[u8], max_pixels: u64) -> Result<Decoded, PipelineError> {
    let mut dec = PngDecoder::with_limits(
        Cursor::new(data),
        image_limits(max_pixels, PNG_INTERNAL_ALLOC),
    )
    .map_err(img_err)?;
    let icc = dec.icc_profile().ok().flatten();
    let orientation = dec
        .exif_metadata()
        .ok()
        .flatten()
        .and_then(|e| exif_orientation(&e));
    let (w, h) = dec.dimensions();
    check_size(w, h, max_pixels)?;
    let ct = dec.color_type();
    let mut buf = alloc(dec.total_bytes())?;
    dec.read_image(&mut buf).map_err(img_err)?;
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
    Ok(Decoded {
        pixels: Pixels::new(w, h, ch, data),
        icc,
        orientation,
    })
}

/// First frame of a GIF, composited onto the logical screen.
pub(crate) fn decode_gif(data: &[u8], max_pixels: u64) -> Result<Decoded, PipelineError> {
    let mut dec = GifDecoder::new(Cursor::new(data)).map_err(img_err)?;
    // The GIF decoder allocates a first frame smaller than the screen itself.
    dec.set_limits(image_limits(max_pixels, max_pixels.saturating_mul(4)))
        .map_err(img_err)?;
    let (w, h) = dec.dimensions();
    check_size(w, h, max_pixels)?;
    let mut buf = alloc(dec.total_bytes())?;
    dec.read_image(&mut buf).map_err(img_err)?;
    Ok(Decoded {
        pixels: Pixels::new(w, h, 4, buf),
        icc: None,
        orientation: None,
    })
}

/// Still WebP through libwebp's one-shot decoder, into a buffer we own.
pub(crate) fn decode_webp(
    data: &[u8],
    w: u32,
    h: u32,
    alpha: bool,
) -> Result<Pixels, PipelineError> {
    let ch: u8 = if alpha { 4 } else { 3 };
    let stride = w as usize * ch as usize;
    let mut buf = alloc(stride as u64 * u64::from(h))?;
    let stride_c =
        i32::try_from(stride).map_err(|_| PipelineError::Unsupported("WebP is too wide".into()))?;
    // SAFETY: `buf` holds exactly stride * h bytes; libwebp writes at most
    // that (it checks the size we pass) and reads only `data`.
    let out = unsafe {
        if alpha {
            libwebp_sys::WebPDecodeRGBAInto(
                data.as_ptr(),
                data.len(),
                buf.as_mut_ptr(),
                buf.len(),
                stride_c,
            )
        } else {
            libwebp_sys::WebPDecodeRGBInto(
                data.as_ptr(),
                data.len(),
                buf.as_mut_ptr(),
                buf.len(),
                stride_c,
            )
        }
    };
    if out.is_null() {
        return Err(PipelineError::Corrupt(
            "WebP data is truncated or corrupt".into(),
        ));
    }
    Ok(Pixels::new(w, h, ch, buf))
}

/// First frame of an animated WebP, composited on its canvas by libwebp's
/// animation decoder.
pub(crate) fn decode_webp_first_frame(data: &[u8]) -> Result<Pixels, PipelineError> {
    match super::animation::WebPAnimReader::new(data)?.next_frame()? {
        Some((px, _)) => Ok(px),
        None => Err(PipelineError::Corrupt("animated WebP has no frames".into())),
    }
}
