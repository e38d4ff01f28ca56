//! AVIF sources, in every build: the one place that knows whether this
//! build can decode them (feature `avif-decode`).
//!
//! The container is read by our own `heif.rs` (and `track.rs` for image
//! sequences) in every build: in-process, so size limits are checked
//! before anything runs, and by the truncation check. With the feature,
//! the AV1 decoding runs in a child process (`child.rs`, then `av1.rs` and
//! `compose.rs` inside the child), so that a crash of rav1d costs one
//! request instead of the worker. Without it, every decode here is
//! "unsupported" (422).

use super::error::PipelineError;
use super::options::{TransformOptions, DEFAULT_QUALITY};
use super::pixels::Pixels;

#[cfg(feature = "avif-decode")]
mod av1;
/// The hidden `__decode-avif` subcommand and its parent side: not an API.
#[cfg(feature = "avif-decode")]
#[doc(hidden)]
pub mod child;
#[cfg(feature = "avif-decode")]
mod compose;
mod file;
pub(crate) mod heif;
#[cfg(all(test, feature = "avif-decode"))]
mod tests;
mod track;

/// Whether this build decodes AVIF sources.
const CAN_DECODE: bool = cfg!(feature = "avif-decode");

/// The refusal for AVIF sources in builds without `avif-decode`.
#[cfg(not(feature = "avif-decode"))]
fn unsupported() -> PipelineError {
    PipelineError::Unsupported(
        "AVIF sources cannot be transformed by this build (no safe AV1 decoder)".into(),
    )
}

/// AVIF to AVIF at the same size: the source already is the answer.
///
/// This is what `format=auto` asks of an AVIF source for any browser that
/// accepts AVIF. Re-encoding would cost a decode and a slow AV1 encode to
/// get a lossier copy; without a decoder it would fail although nothing
/// needs doing. With a decoder, an explicit `q` (other than the default)
/// is honoured by re-encoding. `opts` as requested, before normalising.
pub(crate) fn serve_as_is(opts: &TransformOptions) -> bool {
    opts.w.is_none()
        && opts.h.is_none()
        && opts
            .format
            .is_none_or(|f| f == super::options::OutputFormat::Avif)
        && opts.blur.is_none()
        && opts.sharpen.is_none()
        && (!CAN_DECODE || opts.quality == DEFAULT_QUALITY)
}

/// Reads the container (the primary item with its grid, alpha and
/// transforms, or a sequence's first frame) without decoding anything, and
/// returns the picture's size as stored. What [`dimensions`] and
/// [`decode`] start with; public so that the `avif_container` fuzz target
/// reaches the parser in builds without the AV1 decoder.
pub fn read_container(src: &[u8]) -> Result<(u32, u32), PipelineError> {
    let parsed = file::parse(src)?;
    Ok((parsed.width, parsed.height))
}

/// The declared size of the picture (before its clean-aperture crop and
/// rotation), read from the container without decoding, so the pixel
/// limit is checked before anything is decoded.
pub(crate) fn dimensions(src: &[u8]) -> Result<(u32, u32), PipelineError> {
    #[cfg(feature = "avif-decode")]
    {
        read_container(src)
    }
    #[cfg(not(feature = "avif-decode"))]
    {
        let _ = src;
        Err(unsupported())
    }
}

/// A decoded AVIF: pixels in stored orientation (grid stitched, alpha
/// merged, clean aperture applied), and what the render step applies.
pub(crate) struct Picture {
    pub pixels: Pixels,
    /// `irot`/`imir` as an EXIF orientation (1..=8).
    pub orientation: u8,
    /// ICC profile from `colr`, if any.
    pub icc: Option<Vec<u8>>,
}

/// Decodes the picture (colour and alpha items, or a sequence's first
/// frame) to 8-bit pixels, in a child process.
pub(crate) fn decode(src: &[u8], max_pixels: u64) -> Result<Picture, PipelineError> {
    #[cfg(feature = "avif-decode")]
    {
        let parsed = file::parse(src)?;
        Ok(Picture {
            pixels: child::decode(src, &parsed, max_pixels)?,
            orientation: parsed.orientation,
            icc: parsed.icc,
        })
    }
    #[cfg(not(feature = "avif-decode"))]
    {
        let _ = (src, max_pixels);
        Err(unsupported())
    }
}
