//! The render step: decoded pixels in, output-ready pixels out. Shared by
//! still images and by every frame of an animation, so both get exactly
//! the same geometry, colour and canvas handling.
//!
//! The steps run in this order so the costly ones see as few pixels as
//! possible: resampling first, then colour conversion and rotation on the
//! already-small image. An operation such as blur or a gravity crop is one
//! new file with a function `(Pixels, ...) -> Result<Pixels, _>` and one
//! line in [`STEPS`].

use std::cell::OnceCell;

use super::blur;
use super::canvas;
use super::color;
use super::crop;
use super::error::{check_pixels, PipelineError};
use super::options::{OutputFormat, TransformOptions};
use super::pixels::Pixels;
use super::resize::{self, Plan};
use super::sharpen;

/// Everything a render step may look at, fixed once per image (and shared
/// by all frames of an animation).
pub(crate) struct Render<'a> {
    /// Geometry in stored (un-rotated) orientation.
    pub plan: Plan,
    /// EXIF orientation (1..=8) still to apply.
    pub orientation: u8,
    /// The source's ICC profile, when it has one.
    pub icc: Option<&'a [u8]>,
    /// The format the pixels are rendered for.
    pub out: OutputFormat,
    /// The normalised request (for operations that take parameters).
    pub opts: &'a TransformOptions,
    /// Where the crop sits, found on the first frame and kept for the
    /// others, so that a `smart` crop does not jump around in an animation.
    anchor: OnceCell<(f64, f64)>,
}

/// One render step.
type Step = fn(Pixels, &Render) -> Result<Pixels, PipelineError>;

/// The render steps, in order.
const STEPS: &[Step] = &[
    |px, r| {
        let anchor = r.anchor(&px);
        resize::resample(px, &r.plan, anchor)
    }, // crop placed by `gravity`, Lanczos3 to the planned size
    |px, r| Ok(blur::step(px, r.opts.blur)), // `blur`: Gaussian, on the output size
    |px, r| Ok(sharpen::step(px, r.opts.sharpen)), // `sharpen`: unsharp mask after downscaling
    |px, r| color::to_srgb_if(px, r.icc),    // embedded profile -> sRGB
    |px, r| Ok(px.orient(r.orientation)),    // upright, on the small image
    |px, r| {
        Ok(canvas::finish(
            px,
            r.plan.displayed_canvas(r.orientation),
            r.out,
        ))
    }, // alpha and padding
];

impl<'a> Render<'a> {
    /// The render for a source whose geometry is relative to a stored
    /// `w` x `h` image; refuses an output canvas over `max_pixels`.
    pub(crate) fn new(
        (w, h): (u32, u32),
        orientation: u8,
        icc: Option<&'a [u8]>,
        opts: &'a TransformOptions,
        out: OutputFormat,
        max_pixels: u64,
    ) -> Result<Self, PipelineError> {
        let plan = resize::stored_plan(w, h, orientation, opts);
        check_pixels(plan.canvas_w, plan.canvas_h, max_pixels)?;
        Ok(Render {
            plan,
            orientation,
            icc,
            out,
            opts,
            anchor: OnceCell::new(),
        })
    }

    /// The crop's anchor in `px` (computed once per image).
    fn anchor(&self, px: &Pixels) -> (f64, f64) {
        *self
            .anchor
            .get_or_init(|| crop::anchor(px, &self.plan, self.orientation, self.opts.gravity))
    }

    /// Runs every step on `px` (a still image or one animation frame).
    pub(crate) fn run(&self, px: Pixels) -> Result<Pixels, PipelineError> {
        STEPS.iter().try_fold(px, |px, step| step(px, self))
    }
}
