//! The transform entry point: bytes in, bytes out, no I/O.
//!
//! Order of work, chosen so the expensive steps see as few pixels as
//! possible: sniff → probe the header (limits checked here, before any
//! pixel allocation) → plan the geometry → decode (JPEG at 1/2, 1/4 or 1/8
//! scale when the plan allows) → resample → colour-convert → rotate per
//! EXIF → flatten/pad → encode. Colour conversion and rotation run on the
//! already-small image.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::animation::{self, WebPAnimation};
#[cfg(feature = "avif-decode")]
use super::avif;
#[cfg(feature = "avif-decode")]
use super::avif_child;
use super::color;
use super::decode;
use super::encode;
use super::jpeg::{self, JpegPixels};
use super::jpeg_dc;
use super::options::{OutputFormat, TransformOptions, DEFAULT_QUALITY};
use super::pixels::Pixels;
use super::probe::{probe, Probe};
use super::resize;
use super::sniff::{sniff, SourceFormat};

/// Default largest source we decode (50 MP: a large camera photo). Bigger
/// inputs are refused from the header, before decoding.
pub const MAX_SOURCE_PIXELS: u64 = 50_000_000;
/// Default largest number of frames an animation may declare; a file that
/// claims more is refused, so hostile inputs cannot make even the frame
/// walk expensive. (Redoing every frame, for animated WebP output, is
/// further bounded by the pixel budget: see `animation`.)
pub const DEFAULT_MAX_FRAMES: u32 = 1000;

/// Resource limits for one transform, so the worker's memory and CPU per
/// request stay bounded whatever the origin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `width * height` of the source (and of the output canvas).
    pub max_pixels: u64,
    /// Largest number of frames in an animated source.
    pub max_frames: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: MAX_SOURCE_PIXELS,
            max_frames: DEFAULT_MAX_FRAMES,
        }
    }
}

/// The result: encoded bytes and what they are, so `Content-Type` comes
/// from what we produced rather than from what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformed {
    /// The encoded image, without metadata.
    pub bytes: Vec<u8>,
    /// The encoding of `bytes`.
    pub format: OutputFormat,
}

/// Why an image could not be transformed. Everything except `Internal` is
/// about the input (answer 422); `Internal` is our fault (500). Neither is
/// cached: the worker caches only images.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// A format or feature we do not handle (AVIF sources, SVG, lossless
    /// JPEG, ...).
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The source (or requested output) has more pixels than allowed.
    #[error("image too large: {width}x{height} is over the limit of {max} pixels")]
    TooManyPixels {
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// The limit in force.
        max: u64,
    },
    /// The animation declares more frames than allowed.
    #[error("too many frames: more than {max}")]
    TooManyFrames {
        /// The limit in force.
        max: u32,
    },
    /// The data is truncated or malformed.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// An encoder or internal step failed on valid input: a bug or resource
    /// problem on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PipelineError {
    /// True for "this image can't be processed" (HTTP 422), false for our
    /// own failures (HTTP 500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, PipelineError::Internal(_))
    }
}

/// The format produced when the options do not name one: the source's,
/// except that GIF becomes PNG (we do not encode GIF).
pub fn default_output(src: SourceFormat) -> OutputFormat {
    match src {
        SourceFormat::Jpeg => OutputFormat::Jpeg,
        SourceFormat::Png | SourceFormat::Gif => OutputFormat::Png,
        SourceFormat::WebP => OutputFormat::WebP,
        SourceFormat::Avif => OutputFormat::Avif,
    }
}

/// Transforms `src` according to `opts`, within `limits`.
///
/// Always decodes and re-encodes (also for identity options: callers that
/// want the original bytes check [`TransformOptions::is_identity`] first),
/// so the output is upright, sRGB and free of metadata. The one exception
/// is an AVIF source asked for AVIF at its own size and default quality,
/// which comes back as is (builds without `avif-decode` refuse every other
/// AVIF request; with it, the AV1 decoding runs in a child process, see
/// `avif_child`).
/// Animated sources stay animated as WebP output within the pixel budget
/// and otherwise yield their first frame. Never panics: a panic inside a codec is caught
/// and reported as [`PipelineError::Internal`].
pub fn transform(
    src: &[u8],
    opts: &TransformOptions,
    limits: &Limits,
) -> Result<Transformed, PipelineError> {
    match catch_unwind(AssertUnwindSafe(|| transform_inner(src, opts, limits))) {
        Ok(r) => r,
        Err(_) => Err(PipelineError::Internal("image codec panicked".into())),
    }
}

/// The refusal for AVIF sources in builds without `avif-decode`.
pub(crate) fn avif_unsupported() -> PipelineError {
    PipelineError::Unsupported(
        "AVIF sources cannot be transformed by this build (no safe AV1 decoder)".into(),
    )
}

fn check_pixels(w: u32, h: u32, limits: &Limits) -> Result<(), PipelineError> {
    let n = u64::from(w) * u64::from(h);
    if n > limits.max_pixels {
        return Err(PipelineError::TooManyPixels {
            width: w.into(),
            height: h.into(),
            max: limits.max_pixels,
        });
    }
    Ok(())
}

fn transform_inner(
    src: &[u8],
    opts: &TransformOptions,
    limits: &Limits,
) -> Result<Transformed, PipelineError> {
    let format = sniff(src).ok_or_else(|| {
        PipelineError::Unsupported("not a JPEG, PNG, GIF, WebP or AVIF image".into())
    })?;
    if format == SourceFormat::Avif
        && opts.w.is_none()
        && opts.h.is_none()
        && opts.format.is_none_or(|f| f == OutputFormat::Avif)
        && (cfg!(not(feature = "avif-decode")) || opts.quality == DEFAULT_QUALITY)
    {
        // AVIF to AVIF at the same size: the source already is the answer.
        // This is what `format=auto` asks of an AVIF source for any browser
        // that accepts AVIF. Re-encoding would cost a decode and a slow AV1
        // encode to get a lossier copy; without a decoder it would fail
        // although nothing needs doing. With a decoder, an explicit `q`
        // (other than the default) is honoured by re-encoding.
        return Ok(Transformed {
            bytes: src.to_vec(),
            format: OutputFormat::Avif,
        });
    }
    #[cfg(feature = "avif-decode")]
    let avif = match format {
        SourceFormat::Avif => Some(avif::parse(src)?),
        _ => None,
    };
    #[cfg(feature = "avif-decode")]
    let info = match &avif {
        Some(a) => Probe {
            width: a.width,
            height: a.height,
            frames: 1,
            orientation: 1,
            ..Probe::default()
        },
        None => probe(src, format, limits.max_frames)?,
    };
    #[cfg(not(feature = "avif-decode"))]
    let info = probe(src, format, limits.max_frames)?;
    check_pixels(info.width, info.height, limits)?;
    if info.frames > limits.max_frames {
        return Err(PipelineError::TooManyFrames {
            max: limits.max_frames,
        });
    }
    let opts = opts.clone().normalized();
    let out_format = opts.format.unwrap_or_else(|| default_output(format));
    if info.frames > 1 && out_format == OutputFormat::WebP {
        if let Some(bytes) = animate(src, format, &info, &opts, limits)? {
            return Ok(Transformed {
                bytes,
                format: OutputFormat::WebP,
            });
        }
    }

    // Decode, possibly downscaled; learn orientation and profile.
    let (px, icc, orientation) = match format {
        SourceFormat::Jpeg => {
            let stored = stored_plan(info.width, info.height, info.orientation, &opts);
            check_pixels(stored.canvas_w, stored.canvas_h, limits)?;
            let num = resize::jpeg_scale(info.width, info.height, &stored);
            if info.progressive {
                jpeg::check_scan_count(src)?;
            }
            // Progressive at 1/8: the DC-only decoder when it can, else
            // libjpeg on a copy without the AC scans it would not use.
            let fast = if info.progressive && num == 1 {
                jpeg_dc::decode(src)
            } else {
                None
            };
            let px = match fast {
                Some(px) => px,
                None => {
                    let dc_only;
                    let data = if info.progressive && num == 1 {
                        dc_only = jpeg::without_ac_scans(src)?;
                        &dc_only[..]
                    } else {
                        src
                    };
                    match jpeg::decode(data, num, info.progressive)? {
                        JpegPixels::Ready(px) => px,
                        JpegPixels::Cmyk(px) => {
                            color::cmyk_to_rgb(px, info.adobe, info.icc.as_deref())
                        }
                    }
                }
            };
            (px, info.icc, info.orientation)
        }
        SourceFormat::Png => {
            let d = decode::decode_png(src, limits.max_pixels)?;
            (d.pixels, d.icc, d.orientation.unwrap_or(1))
        }
        SourceFormat::Gif => {
            let d = decode::decode_gif(src, limits.max_pixels)?;
            (d.pixels, None, 1)
        }
        SourceFormat::WebP => {
            let px = if info.animated {
                decode::decode_webp_first_frame(src)?
            } else {
                decode::decode_webp(src, info.width, info.height, info.has_alpha)?
            };
            (px, info.icc, info.orientation)
        }
        #[cfg(feature = "avif-decode")]
        SourceFormat::Avif => match &avif {
            Some(a) => (
                avif_child::decode(src, a, limits.max_pixels)?,
                a.icc.clone(),
                a.orientation,
            ),
            None => return Err(PipelineError::Internal("AVIF not parsed".into())),
        },
        #[cfg(not(feature = "avif-decode"))]
        SourceFormat::Avif => return Err(avif_unsupported()),
    };

    // Geometry relative to the (original) source size; resample applies it
    // to whatever size the decoder produced.
    let (sw, sh) = match format {
        SourceFormat::Jpeg => (info.width, info.height),
        _ => (px.w, px.h),
    };
    let plan = stored_plan(sw, sh, orientation, &opts);
    check_pixels(plan.canvas_w, plan.canvas_h, limits)?;
    let mut px = resize::resample(px, &plan)?;
    if let Some(icc) = &icc {
        color::to_srgb(&mut px, icc)?;
    }
    let px = finish(px.orient(orientation), &plan, orientation, out_format);
    let bytes = encode::encode(px, out_format, opts.quality)?;
    Ok(Transformed {
        bytes,
        format: out_format,
    })
}

/// An animated GIF/WebP redone frame by frame as an animated WebP (see
/// `animation`), or `None` when the frames times the source or output
/// canvas exceed the pixel budget: the caller then makes a still of the
/// first frame.
fn animate(
    src: &[u8],
    format: SourceFormat,
    info: &Probe,
    opts: &TransformOptions,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, PipelineError> {
    let orientation = info.orientation;
    // The budget from the probe's size, which is never smaller than the
    // canvas the decoders composite on.
    let bound = stored_plan(info.width, info.height, orientation, opts);
    let frames = u64::from(info.frames);
    let canvas = u64::from(info.width) * u64::from(info.height);
    let out = u64::from(bound.canvas_w) * u64::from(bound.canvas_h);
    if frames.saturating_mul(canvas.max(out)) > limits.max_pixels {
        return Ok(None);
    }
    // Geometry from the decoded canvas, as for a still; the encoder takes
    // its size from the first finished frame.
    let mut geometry: Option<(resize::Plan, (u32, u32))> = None;
    let mut enc: Option<WebPAnimation> = None;
    animation::for_each_frame(src, format, limits.max_pixels, |f| {
        let size = (f.px.w, f.px.h);
        let (plan, first) =
            geometry.get_or_insert_with(|| (stored_plan(size.0, size.1, orientation, opts), size));
        // Composited frames all have the canvas size.
        if size != *first {
            return Err(PipelineError::Corrupt(format!(
                "animation frame is {}x{}, canvas is {}x{}",
                size.0, size.1, first.0, first.1
            )));
        }
        let mut px = resize::resample(f.px, plan)?;
        if let Some(icc) = &info.icc {
            color::to_srgb(&mut px, icc)?;
        }
        let px = finish(
            px.orient(orientation),
            plan,
            orientation,
            OutputFormat::WebP,
        );
        let e = match &mut enc {
            Some(e) => e,
            None => enc.insert(WebPAnimation::new(px.w, px.h, opts.quality, f.loop_count)?),
        };
        e.add(&px, f.ms)
    })?;
    match enc {
        Some(e) => e.finish().map(Some),
        None => Err(PipelineError::Corrupt("animation has no frames".into())),
    }
}

/// The plan in stored orientation for a stored `w` x `h` source.
fn stored_plan(w: u32, h: u32, orientation: u8, opts: &TransformOptions) -> resize::Plan {
    if orientation >= 5 {
        resize::plan(h, w, opts).transposed()
    } else {
        resize::plan(w, h, opts)
    }
}

/// Alpha and canvas handling for the output format: JPEG gets white
/// instead of transparency; alpha that is fully opaque is dropped (smaller
/// files); `contain` pads to the canvas.
fn finish(px: Pixels, stored: &resize::Plan, orientation: u8, out: OutputFormat) -> Pixels {
    let (cw, ch) = if orientation >= 5 {
        (stored.canvas_h, stored.canvas_w)
    } else {
        (stored.canvas_w, stored.canvas_h)
    };
    let mut px = if !out.has_alpha() {
        px.flatten_on_white()
    } else if px.has_alpha() && px.is_opaque() {
        px.drop_alpha()
    } else {
        px
    };
    if (cw, ch) != (px.w, px.h) {
        let bg: &[u8] = if out.has_alpha() {
            px = px.with_alpha();
            &[0, 0, 0, 0]
        } else {
            &[255, 255, 255]
        };
        let n = px.ch as usize;
        let bg = if n <= 2 {
            &bg[bg.len() - n..]
        } else {
            &bg[..n]
        };
        px = px.pad(cw, ch, bg);
    }
    px
}
