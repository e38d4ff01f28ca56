//! The image pipeline: everything that looks inside image bytes.
//!
//! The worker calls into this module after an origin fetch; nothing here
//! does I/O, so it can be exercised from unit tests and the `transform`
//! command without a network.
//!
//! Public surface: [`options`] (query parsing, cache keys), [`transform`]
//! (bytes in, bytes out), [`pool`] (where the CPU work runs), [`cli`] (the
//! `transform` subcommand), [`sniff`] (content sniffing) and [`complete`]
//! (truncation checks for bytes served as they are).

pub mod cli;
pub mod complete;
pub mod options;
pub mod pool;
pub mod sniff;
pub mod transform;

mod animation;
#[cfg(feature = "avif-decode")]
mod avif;
/// The hidden `__decode-avif` subcommand and its parent side: not an API.
#[cfg(feature = "avif-decode")]
#[doc(hidden)]
pub mod avif_child;
#[cfg(feature = "avif-decode")]
mod avif_compose;
mod color;
mod decode;
mod encode;
mod heif;
mod heif_track;
mod jpeg;
mod jpeg_dc;
mod pixels;
mod probe;
mod resize;

#[cfg(test)]
mod tests;

pub use options::{Fit, OptionError, OutputFormat, RequestedOptions, TransformOptions};
pub use pool::{Pool, PoolBusy, PoolError};
pub use transform::{transform, Limits, PipelineError, Transformed, MAX_SOURCE_PIXELS};
