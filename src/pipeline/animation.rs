//! Animated output: an animated GIF or WebP asked for WebP output stays
//! animated, every frame rendered like a still image (the same
//! [`Render`]).
//!
//! Only WebP output animates: it is the one format we write that every
//! current browser plays (an animated AVIF needs an AV1 sequence encoder,
//! and JPEG has no animation). Any other output format, or an animation
//! too large to redo within the pixel budget, gets the first frame, as
//! before. The budget: the source canvas and the output canvas, each times
//! the number of frames, must stay within `MAX_SOURCE_PIXELS`, so that a
//! small file of many frames cannot buy minutes of CPU.
//!
//! Frames are decoded, rendered and handed to libwebp's animation encoder
//! one at a time; only the encoder's own state and one frame are held.

use super::error::PipelineError;
use super::gif::{self, Frame};
use super::limits::Limits;
use super::options::{OutputFormat, TransformOptions};
use super::probe::Probe;
use super::render::Render;
use super::resize::stored_plan;
use super::sniff::SourceFormat;
use super::webp;

/// An animated GIF/WebP redone frame by frame as an animated WebP, or
/// `None` when the output is not WebP, the source is a still, or the
/// frames times the source or output canvas exceed the pixel budget: the
/// caller then makes a still of the first frame.
pub(crate) fn animate(
    src: &[u8],
    format: SourceFormat,
    info: &Probe,
    opts: &TransformOptions,
    out: OutputFormat,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, PipelineError> {
    let animates = matches!(format, SourceFormat::Gif | SourceFormat::WebP);
    if info.frames <= 1 || out != OutputFormat::WebP || !animates {
        return Ok(None);
    }
    // The budget from the probe's size, which is never smaller than the
    // canvas the decoders composite on.
    let bound = stored_plan(info.width, info.height, info.orientation, opts);
    let canvas = u64::from(info.width) * u64::from(info.height);
    let output = u64::from(bound.canvas_w) * u64::from(bound.canvas_h);
    if u64::from(info.frames).saturating_mul(canvas.max(output)) > limits.max_pixels {
        return Ok(None);
    }
    // Geometry from the decoded canvas, as for a still; the encoder takes
    // its size from the first rendered frame.
    let mut render: Option<(Render, (u32, u32))> = None;
    let mut enc: Option<webp::AnimEncoder> = None;
    for_each_frame(src, format, limits.max_pixels, |f| {
        let size = (f.px.w, f.px.h);
        let (r, first) = match &mut render {
            Some(r) => r,
            None => render.insert((
                Render::new(
                    size,
                    info.orientation,
                    info.icc.as_deref(),
                    opts,
                    out,
                    limits.max_pixels,
                )?,
                size,
            )),
        };
        // Composited frames all have the canvas size.
        if size != *first {
            return Err(PipelineError::Corrupt(format!(
                "animation frame is {}x{}, canvas is {}x{}",
                size.0, size.1, first.0, first.1
            )));
        }
        let px = r.run(f.px)?;
        let e = match &mut enc {
            Some(e) => e,
            None => enc.insert(webp::AnimEncoder::new(
                px.w,
                px.h,
                opts.quality,
                f.loop_count,
            )?),
        };
        e.add(&px, f.ms)
    })?;
    match enc {
        Some(e) => e.finish().map(Some),
        None => Err(PipelineError::corrupt("animation has no frames")),
    }
}

/// Calls `each` with every frame of an animated GIF or WebP, in order.
fn for_each_frame(
    src: &[u8],
    format: SourceFormat,
    max_pixels: u64,
    each: impl FnMut(Frame) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    match format {
        SourceFormat::Gif => gif::for_each_frame(src, max_pixels, each),
        SourceFormat::WebP => webp_frames(src, each),
        _ => Err(PipelineError::Internal(
            "animation requested for a still format".into(),
        )),
    }
}

fn webp_frames(
    src: &[u8],
    mut each: impl FnMut(Frame) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let mut reader = webp::AnimReader::new(src)?;
    let loop_count = reader.loop_count();
    let mut shown_until = 0;
    while let Some((px, ends_at)) = reader.next_frame()? {
        let ms = u32::try_from(ends_at - shown_until).unwrap_or(0);
        shown_until = ends_at;
        each(Frame { px, ms, loop_count })?;
    }
    Ok(())
}
