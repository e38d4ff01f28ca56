//! `GET /info`: what an image is, and two placeholders to show while it
//! loads.
//!
//! The cost stays near a small thumbnail's whatever the source size: the
//! header gives the size, format, frames and orientation, and the pixels
//! for the placeholders and the dominant colour come from one decode at
//! [`PLACEHOLDER_SIDE`] (a JPEG decodes at 1/8 scale in the DCT domain, an
//! SVG is drawn at that size), run through the same render steps as a
//! thumbnail, so it is upright and sRGB.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::decode::decode;
use super::error::PipelineError;
use super::jxl;
use super::limits::Limits;
use super::options::{OutputFormat, TransformOptions};
use super::pixels::Pixels;
use super::probe::probe;
use super::render::Render;
use super::sniff::{sniff, SourceFormat};

/// The longest side of the image the placeholders are computed from
/// (ThumbHash takes at most 100x100).
pub const PLACEHOLDER_SIDE: u32 = 100;

/// The answer of `GET /info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Width as displayed (after the orientation is applied).
    pub width: u32,
    /// Height as displayed.
    pub height: u32,
    /// The source format: `jpeg`, `png`, `gif`, `webp`, `avif`, `svg`, `jxl`.
    pub format: String,
    /// Frames (1 for a still image).
    pub frames: u32,
    /// Whether some pixel is not fully opaque (seen at placeholder size).
    pub has_alpha: bool,
    /// EXIF orientation of the source, 1..=8 (already applied to
    /// `width`/`height` and to the placeholders).
    pub orientation: u8,
    /// Size of the source file in bytes.
    pub source_bytes: u64,
    /// The most common colour, `#rrggbb`.
    pub dominant_color: String,
    /// ThumbHash, standard base64 (about 25-35 characters).
    pub thumbhash: String,
    /// BlurHash, 4x3 components (3x4 for a portrait image): 28 characters.
    pub blurhash: String,
}

/// Describes `src` within `limits`: errors as a transform would give them.
pub fn describe(src: &[u8], limits: &Limits) -> Result<ImageInfo, PipelineError> {
    let format = sniff(src).ok_or_else(|| {
        PipelineError::Unsupported("not a JPEG, PNG, GIF, WebP, AVIF, SVG or JPEG XL image".into())
    })?;
    let header = probe(src, format, limits)?;
    let shown = displayed(header.width, header.height, header.orientation);
    let opts = TransformOptions {
        w: Some(PLACEHOLDER_SIDE.min(shown.0)),
        h: Some(PLACEHOLDER_SIDE.min(shown.1)),
        ..TransformOptions::default()
    };
    let frames = match format {
        SourceFormat::Jxl if header.frames > 1 => jxl::frame_count(src, limits)?,
        _ => header.frames,
    };
    let decoded = decode(src, format, header.clone(), &opts, limits)?;
    let orientation = match header.orientation {
        1 => decoded.orientation,
        o => o,
    };
    // AVIF's size is known after its decode (clean-aperture crop).
    let stored = match format {
        SourceFormat::Avif => decoded.geometry_size,
        _ => (header.width, header.height),
    };
    let (width, height) = displayed(stored.0, stored.1, orientation);
    let icc = decoded.icc.as_deref();
    let render = Render::new(
        decoded.geometry_size,
        decoded.orientation,
        icc,
        &opts,
        OutputFormat::Png,
        limits.max_pixels,
    )?;
    let rgba = to_rgba(render.run(decoded.pixels)?);
    Ok(ImageInfo {
        width,
        height,
        format: format.name().to_string(),
        frames,
        has_alpha: rgba.data.chunks_exact(4).any(|p| p[3] < 255),
        orientation,
        source_bytes: src.len() as u64,
        dominant_color: dominant_color(&rgba),
        thumbhash: thumbhash_of(&rgba),
        blurhash: blurhash_of(&rgba)?,
    })
}

fn displayed(w: u32, h: u32, orientation: u8) -> (u32, u32) {
    if orientation >= 5 {
        (h, w)
    } else {
        (w, h)
    }
}

/// Any channel layout as RGBA.
fn to_rgba(px: Pixels) -> Pixels {
    let data = match px.ch {
        4 => return px,
        3 => px
            .data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        2 => px
            .data
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        _ => px.data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
    };
    Pixels::new(px.w, px.h, 4, data)
}

fn thumbhash_of(rgba: &Pixels) -> String {
    let hash = thumbhash::rgba_to_thumb_hash(rgba.w as usize, rgba.h as usize, &rgba.data);
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// BlurHash ignores alpha, so transparent parts count as white, as a page
/// shows them.
fn blurhash_of(rgba: &Pixels) -> Result<String, PipelineError> {
    let flat = rgba.clone().flatten_on_white();
    let data: Vec<u8> = flat
        .data
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let (cx, cy) = if rgba.h > rgba.w { (3, 4) } else { (4, 3) };
    blurhash::encode(cx, cy, rgba.w, rgba.h, &data)
        .map_err(|e| PipelineError::Internal(format!("blurhash: {e}")))
}

/// The centre of the most populated cell of a 16x16x16 colour cube over
/// the visible pixels (all pixels when none is visible): a colour that is
/// really in the picture, unlike the mean of a two-colour image.
fn dominant_color(rgba: &Pixels) -> String {
    let mut cells = vec![(0u32, [0u64; 3]); 4096];
    let visible = rgba.data.chunks_exact(4).any(|p| p[3] >= 128);
    for p in rgba.data.chunks_exact(4) {
        if visible && p[3] < 128 {
            continue;
        }
        let i = usize::from(p[0] >> 4) << 8 | usize::from(p[1] >> 4) << 4 | usize::from(p[2] >> 4);
        let cell = &mut cells[i];
        cell.0 += 1;
        for (sum, &v) in cell.1.iter_mut().zip(&p[..3]) {
            *sum += u64::from(v);
        }
    }
    let (n, sum) = cells
        .iter()
        .max_by_key(|c| c.0)
        .copied()
        .unwrap_or((0, [0; 3]));
    let mean = |c: usize| sum[c].checked_div(u64::from(n)).unwrap_or(0);
    format!("#{:02x}{:02x}{:02x}", mean(0), mean(1), mean(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use img_proxy_test_support as fx;

    #[test]
    fn describes_an_oriented_jpeg_as_displayed() {
        let jpeg = fx::oriented_jpeg(6, 64, 48);
        let info = describe(&jpeg, &Limits::default()).unwrap();
        assert_eq!((info.width, info.height, info.orientation), (64, 48, 6));
        assert_eq!((info.format.as_str(), info.frames), ("jpeg", 1));
        assert!(!info.has_alpha);
        assert_eq!(info.source_bytes, jpeg.len() as u64);
        assert!(info.thumbhash.len() < 100 && info.blurhash.len() < 100);
        assert_eq!(info.blurhash.len(), 28);
        // Decoded back, the ThumbHash shows red at the top left.
        let hash = base64::engine::general_purpose::STANDARD
            .decode(&info.thumbhash)
            .unwrap();
        let (w, _, px) = thumbhash::thumb_hash_to_rgba(&hash).unwrap();
        assert!(px[0] > 150 && px[1] < 120 && px[2] < 120, "{:?}", &px[..4]);
        assert!(w > 0);
    }

    #[test]
    fn the_dominant_colour_is_the_largest_area() {
        let mut data = vec![];
        for i in 0..100 {
            data.extend_from_slice(if i < 70 {
                &[20, 40, 220, 255]
            } else {
                &[230, 20, 20, 255]
            });
        }
        assert_eq!(dominant_color(&Pixels::new(10, 10, 4, data)), "#1428dc");
    }

    #[test]
    fn transparency_and_svg_are_described() {
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"><rect width="150" height="200" fill="#00ff00"/></svg>"##;
        let info = describe(svg, &Limits::default()).unwrap();
        assert_eq!(
            (info.width, info.height, info.format.as_str()),
            (300, 200, "svg")
        );
        assert!(info.has_alpha);
        assert_eq!(info.dominant_color, "#00ff00");
    }
}
