//! The decode step: the source's pixels, as small as the plan allows, and
//! the metadata the render step needs (profile, orientation).
//!
//! JPEG decodes at a reduced DCT scale when the output is small (see
//! `jpeg::decode_scaled`); the others decode at full size. Every decoder
//! runs after the probe checked the declared size against the limits.

use super::avif;
use super::error::{check_pixels, PipelineError};
use super::gif;
use super::jpeg;
use super::jxl;
use super::limits::Limits;
use super::options::TransformOptions;
use super::pixels::Pixels;
use super::png;
use super::probe::Probe;
use super::resize::stored_plan;
use super::sniff::SourceFormat;
use super::svg;
use super::webp;

/// Decoded pixels and what the render step needs to know about them.
pub(crate) struct Decoded {
    pub pixels: Pixels,
    /// The stored size the output geometry is relative to: the source's
    /// own size, also when the decoder produced a reduced one.
    pub geometry_size: (u32, u32),
    /// EXIF orientation (1..=8).
    pub orientation: u8,
    /// The source's ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

/// Decodes `src` (sniffed as `format`, probed as `info`) for `opts`.
pub(crate) fn decode(
    src: &[u8],
    format: SourceFormat,
    info: Probe,
    opts: &TransformOptions,
    limits: &Limits,
) -> Result<Decoded, PipelineError> {
    let max = limits.max_pixels;
    let (pixels, icc, orientation) = match format {
        SourceFormat::Jpeg => {
            let plan = stored_plan(info.width, info.height, info.orientation, opts);
            check_pixels(plan.canvas_w, plan.canvas_h, max)?;
            let px = jpeg::decode_scaled(src, &info, &plan)?;
            return Ok(Decoded {
                pixels: px,
                geometry_size: (info.width, info.height),
                orientation: info.orientation,
                icc: info.icc,
            });
        }
        SourceFormat::Png => {
            let d = png::decode(src, max)?;
            (d.pixels, d.icc, d.orientation.unwrap_or(1))
        }
        SourceFormat::Gif => (gif::decode_first_frame(src, max)?, None, 1),
        SourceFormat::WebP if info.animated => {
            (webp::decode_first_frame(src)?, info.icc, info.orientation)
        }
        SourceFormat::WebP => {
            let px = webp::decode(src, info.width, info.height, info.has_alpha)?;
            (px, info.icc, info.orientation)
        }
        SourceFormat::Avif => {
            let a = avif::decode(src, max)?;
            (a.pixels, a.icc, a.orientation)
        }
        SourceFormat::Svg => return decode_svg(src, &info, opts, max),
        SourceFormat::Jxl => {
            // Upright already: jxl-oxide applies the orientation.
            let (px, icc) = jxl::decode(src, limits)?;
            (px, icc, 1)
        }
    };
    Ok(Decoded {
        geometry_size: (pixels.w, pixels.h),
        pixels,
        orientation,
        icc,
    })
}

/// SVG: drawn at the size the plan needs (see `svg::rasterise`), its
/// geometry enlarged to the requested size.
fn decode_svg(
    src: &[u8],
    info: &Probe,
    opts: &TransformOptions,
    max: u64,
) -> Result<Decoded, PipelineError> {
    let tree = svg::parse(src)?;
    let size = svg::geometry_size((info.width, info.height), opts.w, opts.h, max);
    let plan = stored_plan(size.0, size.1, 1, opts);
    check_pixels(plan.canvas_w, plan.canvas_h, max)?;
    Ok(Decoded {
        pixels: svg::rasterise(&tree, size, &plan, max)?,
        geometry_size: size,
        orientation: 1,
        icc: None,
    })
}
