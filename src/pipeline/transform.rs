//! The transform, as the list of its steps: bytes in, bytes out.
//!
//! This is the only module that knows every step; each step is its own
//! module and depends only on the pipeline's shared parts (`error`,
//! `pixels`, `options`, `limits`). Order of work, chosen so the expensive
//! steps see as few pixels as possible: the header is probed (limits
//! checked) before any pixel is allocated, JPEGs decode at a reduced scale
//! when the output is small, and colour conversion and rotation run on the
//! already-resampled image (see `render`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::animation;
use super::avif;
use super::decode::decode;
use super::encode::encode;
use super::error::PipelineError;
use super::options::{OutputFormat, TransformOptions};
use super::probe::probe;
use super::render::Render;
use super::sniff::{sniff, SourceFormat};

pub use super::limits::{Limits, DEFAULT_MAX_FRAMES, MAX_SOURCE_PIXELS};

/// The result: encoded bytes and what they are, so `Content-Type` comes
/// from what we produced rather than from what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transformed {
    /// The encoded image, without metadata.
    pub bytes: Vec<u8>,
    /// The encoding of `bytes`.
    pub format: OutputFormat,
}

/// The format produced when the options do not name one: the source's,
/// except that GIF becomes PNG (we do not encode GIF), SVG becomes PNG
/// (never served as SVG) and JPEG XL becomes WebP (which few browsers lack,
/// and which keeps alpha).
pub fn default_output(src: SourceFormat) -> OutputFormat {
    match src {
        SourceFormat::Jpeg => OutputFormat::Jpeg,
        SourceFormat::Png | SourceFormat::Gif | SourceFormat::Svg => OutputFormat::Png,
        SourceFormat::Jxl => OutputFormat::WebP,
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
/// which comes back as is (see `avif::serve_as_is`).
/// Animated sources stay animated as WebP output within the pixel budget
/// and otherwise yield their first frame. Never panics: a panic inside a
/// codec is caught and reported as [`PipelineError::Internal`].
pub fn transform(
    src: &[u8],
    opts: &TransformOptions,
    limits: &Limits,
) -> Result<Transformed, PipelineError> {
    match catch_unwind(AssertUnwindSafe(|| steps(src, opts, limits))) {
        Ok(r) => r,
        Err(_) => Err(PipelineError::Internal("image codec panicked".into())),
    }
}

/// The steps: sniff -> pass through? -> probe -> animate? -> decode
/// (scaled) -> render -> encode.
fn steps(
    src: &[u8],
    opts: &TransformOptions,
    limits: &Limits,
) -> Result<Transformed, PipelineError> {
    let format = sniff(src).ok_or_else(|| {
        PipelineError::Unsupported("not a JPEG, PNG, GIF, WebP, AVIF, SVG or JPEG XL image".into())
    })?;
    if format == SourceFormat::Avif && avif::serve_as_is(opts) {
        return done(src.to_vec(), OutputFormat::Avif);
    }
    let info = probe(src, format, limits)?;
    let opts = opts.clone().normalized();
    let out = opts.format.unwrap_or_else(|| default_output(format));
    if let Some(bytes) = animation::animate(src, format, &info, &opts, out, limits)? {
        return done(bytes, out);
    }
    let decoded = decode(src, format, info, &opts, limits)?;
    let icc = decoded.icc.as_deref();
    let (size, orientation) = (decoded.geometry_size, decoded.orientation);
    let render = Render::new(size, orientation, icc, &opts, out, limits.max_pixels)?;
    let px = render.run(decoded.pixels)?;
    done(encode(px, out, opts.quality)?, out)
}

fn done(bytes: Vec<u8>, format: OutputFormat) -> Result<Transformed, PipelineError> {
    Ok(Transformed { bytes, format })
}
