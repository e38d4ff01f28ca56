//! The image pipeline: everything that looks inside image bytes.
//!
//! The worker calls into this module after an origin fetch. Nothing here
//! touches the network; the one piece of I/O is the AVIF decoder's child
//! process (`avif/child.rs`), so everything can be exercised from unit
//! tests and the `transform` command.
//!
//! Public surface: [`options`] (query parsing, cache keys), [`transform`]
//! (bytes in, bytes out), [`pool`] (where the CPU work runs), [`cli`] (the
//! `transform` subcommand), [`sniff`] (content sniffing), [`complete`]
//! (truncation checks for bytes served as they are) and [`avif`] (for the
//! hidden AVIF decoder subcommand).
//!
//! Map, in the order a transform runs (`transform.rs` lists the steps):
//! - `sniff` (format from magic bytes) -> `probe` (header: size, frames,
//!   orientation, ICC; limits checked before any pixel allocation);
//! - `animation` (animated WebP output, each frame through `render`);
//! - `decode` (one still: `jpeg` + `jpeg_dc`, `png`, `gif` (+
//!   `gif_palette`), `webp`, `avif` (its container read by `avif/heif.rs`),
//!   `svg` (resvg, drawn at the output size), `jxl` (jxl-oxide));
//! - `render` (the list of pixel steps: `resize` with the crop placed by
//!   `crop` (`gravity`, `smart`), `blur`, `sharpen`, `color`, orientation,
//!   `canvas`);
//! - `encode` (JPEG, PNG, AVIF here; WebP in `webp`).
//!
//! [`info`] (`GET /info`) runs sniff, probe, decode and render at
//! placeholder size and describes the result.
//!
//! Shared by the steps, depending on no step: `error` (the error type and
//! the pixel check), `limits`, `pixels`, `bytes` (endian readers),
//! `jpeg_segments` (the one JPEG marker walker). All libjpeg calls are in
//! `jpeg.rs`, all libwebp calls in `webp.rs`, all rav1d calls in
//! `avif/av1.rs`.

pub mod avif;
pub mod cli;
pub mod complete;
pub mod info;
pub mod options;
pub mod pool;
pub mod sniff;
pub mod transform;

mod animation;
mod blur;
mod bytes;
mod canvas;
mod color;
mod crop;
mod decimal;
mod decode;
mod encode;
mod error;
mod gif;
mod gif_palette;
mod gravity;
mod jpeg;
mod jpeg_dc;
mod jpeg_segments;
mod jxl;
mod limits;
mod pixels;
mod png;
mod probe;
mod render;
mod resize;
mod sharpen;
mod smart;
mod svg;
mod webp;

pub use error::PipelineError;
pub use gravity::Gravity;
pub use options::{Fit, OptionError, OutputFormat, RequestedOptions, Resolved, TransformOptions};
pub use pool::{Pool, PoolError};
pub use transform::{transform, Limits, Transformed, MAX_SOURCE_PIXELS};
