//! The pipeline's one error type, its constructors and the pixel-limit
//! check every stage shares.
//!
//! Stage modules depend on this file, never on `transform`, so the stages
//! form no import cycle with the module that lists them.

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

    /// Malformed or truncated input.
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> PipelineError {
        PipelineError::Corrupt(what.to_string())
    }

    /// A pixel buffer the declared size asks for cannot be allocated.
    pub(crate) fn too_large_for_machine() -> PipelineError {
        PipelineError::Corrupt("image is too large for this machine".into())
    }

    /// The `image` crate's errors, sorted into ours.
    pub(crate) fn from_image(e: image::ImageError) -> PipelineError {
        match e {
            image::ImageError::Unsupported(u) => PipelineError::Unsupported(u.to_string()),
            image::ImageError::Limits(l) => PipelineError::Corrupt(format!("decoder limit: {l}")),
            other => PipelineError::Corrupt(other.to_string()),
        }
    }
}

/// Refuses a `w` x `h` image (source, decoded frame or output canvas)
/// with more than `max_pixels` pixels.
pub(crate) fn check_pixels(w: u32, h: u32, max_pixels: u64) -> Result<(), PipelineError> {
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(PipelineError::TooManyPixels {
            width: w.into(),
            height: h.into(),
            max: max_pixels,
        });
    }
    Ok(())
}
