//! Resource limits for one transform, so the worker's memory and CPU per
//! request stay bounded whatever the origin serves.

/// Default largest source we decode (50 MP: a large camera photo). Bigger
/// inputs are refused from the header, before decoding.
pub const MAX_SOURCE_PIXELS: u64 = 50_000_000;
/// Default largest number of frames an animation may declare; a file that
/// claims more is refused, so hostile inputs cannot make even the frame
/// walk expensive. (Redoing every frame, for animated WebP output, is
/// further bounded by the pixel budget: see `animation`.)
pub const DEFAULT_MAX_FRAMES: u32 = 1000;

/// The limits in force for one transform.
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

/// The `image` crate's own limits, derived from ours: sides no larger than
/// the pixel budget, and decoder allocations bounded by `max_alloc`.
pub(crate) fn image_limits(max_pixels: u64, max_alloc: u64) -> image::Limits {
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    let mut l = image::Limits::default();
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    l.max_alloc = Some(max_alloc);
    l
}
