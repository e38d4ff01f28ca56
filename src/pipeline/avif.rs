//! AVIF sources, in every build: the one place that knows whether this
//! build can decode them (feature `avif-decode`).
//!
//! With the feature, `avif-parse` reads the container in-process (its
//! panics contained, so size limits are checked before anything runs) and
//! the AV1 decoding runs in a child process (`child.rs`, then `av1.rs`
//! inside the child), so that a crash of rav1d costs one request instead
//! of the worker. Without it, every answer here is "unsupported" (422).

use super::error::PipelineError;
use super::options::{TransformOptions, DEFAULT_QUALITY};
use super::pixels::Pixels;

#[cfg(feature = "avif-decode")]
mod av1;
/// The hidden `__decode-avif` subcommand and its parent side: not an API.
#[cfg(feature = "avif-decode")]
#[doc(hidden)]
pub mod child;

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
        && (!CAN_DECODE || opts.quality == DEFAULT_QUALITY)
}

/// The size the AV1 sequence header declares, read from the container
/// without decoding (checked against the pixel limit before decoding).
pub(crate) fn dimensions(src: &[u8]) -> Result<(u32, u32), PipelineError> {
    #[cfg(feature = "avif-decode")]
    {
        let parsed = av1::parse(src)?;
        Ok((parsed.width, parsed.height))
    }
    #[cfg(not(feature = "avif-decode"))]
    {
        let _ = src;
        Err(unsupported())
    }
}

/// Decodes the image (colour and alpha items) to 8-bit pixels, in a child
/// process.
pub(crate) fn decode(src: &[u8], max_pixels: u64) -> Result<Pixels, PipelineError> {
    #[cfg(feature = "avif-decode")]
    {
        let parsed = av1::parse(src)?;
        child::decode(src, &parsed, max_pixels)
    }
    #[cfg(not(feature = "avif-decode"))]
    {
        let _ = (src, max_pixels);
        Err(unsupported())
    }
}
