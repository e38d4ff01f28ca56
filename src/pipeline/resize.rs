//! Output geometry and resampling.
//!
//! Geometry is computed once, in *displayed* (EXIF-rotated) coordinates,
//! because that is what `w`/`h` refer to; resampling then runs on the
//! stored pixels (before rotation, so the rotation touches only the small
//! result): a crop's size only swaps axes under a transposition (EXIF
//! 5..8), and its position (the `gravity` anchor) is mapped to stored
//! orientation by `crop.rs`.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::error::PipelineError;
use super::options::{Fit, TransformOptions};
use super::pixels::Pixels;

/// What to do to get from the source to the output, in displayed
/// orientation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    /// Size the (cropped) source is resampled to. Equal to the source size
    /// when no resampling is needed.
    pub resize_w: u32,
    pub resize_h: u32,
    /// Crop of the source, as fractions of its width and height (1.0 = no
    /// crop); where it sits is the gravity's anchor (`crop.rs`).
    pub crop_fw: f64,
    pub crop_fh: f64,
    /// Final canvas when padding (`contain`); otherwise equals resize size.
    pub canvas_w: u32,
    pub canvas_h: u32,
}

impl Plan {
    /// Whether the source is used as-is (no resampling, no crop).
    pub fn keeps_size(&self, src_w: u32, src_h: u32) -> bool {
        self.resize_w == src_w
            && self.resize_h == src_h
            && self.crop_fw >= 1.0
            && self.crop_fh >= 1.0
    }

    /// The canvas in displayed orientation, after `orientation` is applied.
    pub fn displayed_canvas(&self, orientation: u8) -> (u32, u32) {
        if orientation >= 5 {
            (self.canvas_h, self.canvas_w)
        } else {
            (self.canvas_w, self.canvas_h)
        }
    }

    /// The same plan seen in stored orientation (axes swapped).
    pub fn transposed(self) -> Plan {
        Plan {
            resize_w: self.resize_h,
            resize_h: self.resize_w,
            crop_fw: self.crop_fh,
            crop_fh: self.crop_fw,
            canvas_w: self.canvas_h,
            canvas_h: self.canvas_w,
        }
    }
}

fn round_dim(v: f64) -> u32 {
    (v.round() as u32).max(1)
}

/// Computes the plan for a displayed source of `sw` x `sh`.
pub(crate) fn plan(sw: u32, sh: u32, o: &TransformOptions) -> Plan {
    let (fsw, fsh) = (f64::from(sw), f64::from(sh));
    let mut p = Plan {
        resize_w: sw,
        resize_h: sh,
        crop_fw: 1.0,
        crop_fh: 1.0,
        canvas_w: sw,
        canvas_h: sh,
    };
    match (o.w, o.h, o.fit) {
        (None, None, _) => {}
        (Some(w), Some(h), Fit::Fill) => {
            p.resize_w = w;
            p.resize_h = h;
        }
        (Some(w), Some(h), Fit::Cover) => {
            let (fw, fh) = (f64::from(w), f64::from(h));
            let scale = (fw / fsw).max(fh / fsh);
            p.resize_w = w;
            p.resize_h = h;
            p.crop_fw = (fw / scale / fsw).min(1.0);
            p.crop_fh = (fh / scale / fsh).min(1.0);
        }
        (Some(w), Some(h), Fit::Contain) => {
            let scale = (f64::from(w) / fsw).min(f64::from(h) / fsh);
            p.resize_w = round_dim(fsw * scale).min(w);
            p.resize_h = round_dim(fsh * scale).min(h);
            p.canvas_w = w;
            p.canvas_h = h;
            return p;
        }
        (w, h, _) => {
            // Inside (and any fit with a single side): shrink only.
            let sx = w.map_or(f64::INFINITY, |w| f64::from(w) / fsw);
            let sy = h.map_or(f64::INFINITY, |h| f64::from(h) / fsh);
            let scale = sx.min(sy);
            if scale < 1.0 {
                p.resize_w = match w {
                    Some(w) if sx <= sy => w,
                    _ => round_dim(fsw * scale),
                };
                p.resize_h = match h {
                    Some(h) if sy <= sx => h,
                    _ => round_dim(fsh * scale),
                };
            }
        }
    }
    p.canvas_w = p.resize_w;
    p.canvas_h = p.resize_h;
    p
}

/// The plan in stored orientation for a stored `w` x `h` source shown
/// with EXIF `orientation`.
pub(crate) fn stored_plan(w: u32, h: u32, orientation: u8, opts: &TransformOptions) -> Plan {
    if orientation >= 5 {
        plan(h, w, opts).transposed()
    } else {
        plan(w, h, opts)
    }
}

/// Picks the libjpeg scale numerator (8 = full size, 4, 2, 1 = 1/8) such
/// that the decoded, cropped region still has at least the pixels the
/// resize step needs — so DCT scaling never costs detail.
pub(crate) fn jpeg_scale(stored_w: u32, stored_h: u32, p: &Plan) -> u8 {
    for num in [1u8, 2, 4] {
        let dw = (u64::from(stored_w) * u64::from(num)).div_ceil(8) as f64;
        let dh = (u64::from(stored_h) * u64::from(num)).div_ceil(8) as f64;
        if (dw * p.crop_fw).floor() >= f64::from(p.resize_w)
            && (dh * p.crop_fh).floor() >= f64::from(p.resize_h)
        {
            return num;
        }
    }
    8
}

fn pixel_type(ch: u8) -> PixelType {
    match ch {
        1 => PixelType::U8,
        2 => PixelType::U8x2,
        3 => PixelType::U8x3,
        _ => PixelType::U8x4,
    }
}

/// Resamples `src` (stored orientation) according to `p` (also in stored
/// orientation): the crop placed at `(ax, ay)` (fractions of the room left
/// beside it: 0.5 centres), then Lanczos3 (alpha-aware: colour is
/// premultiplied during filtering so transparent pixels do not bleed).
pub(crate) fn resample(
    src: Pixels,
    p: &Plan,
    (ax, ay): (f64, f64),
) -> Result<Pixels, PipelineError> {
    if p.keeps_size(src.w, src.h) {
        return Ok(src);
    }
    let pt = pixel_type(src.ch);
    let src_img = ImageRef::new(src.w, src.h, &src.data, pt)
        .map_err(|e| PipelineError::Internal(format!("resize: {e}")))?;
    let mut dst = Image::new(p.resize_w, p.resize_h, pt);
    let (fw, fh) = (f64::from(src.w), f64::from(src.h));
    let (cw, ch) = (fw * p.crop_fw, fh * p.crop_fh);
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop((fw - cw) * ax, (fh - ch) * ay, cw, ch);
    Resizer::new()
        .resize(&src_img, &mut dst, &opts)
        .map_err(|e| PipelineError::Internal(format!("resize: {e}")))?;
    Ok(Pixels::new(p.resize_w, p.resize_h, src.ch, dst.into_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::options::TransformOptions;

    fn o(w: Option<u32>, h: Option<u32>, fit: Fit) -> TransformOptions {
        TransformOptions {
            w,
            h,
            fit,
            ..TransformOptions::default()
        }
    }

    #[test]
    fn inside_never_enlarges() {
        let p = plan(100, 50, &o(Some(200), None, Fit::Inside));
        assert_eq!((p.resize_w, p.resize_h), (100, 50));
        let p = plan(100, 50, &o(Some(50), Some(50), Fit::Inside));
        assert_eq!((p.resize_w, p.resize_h), (50, 25));
        let p = plan(100, 50, &o(None, Some(10), Fit::Inside));
        assert_eq!((p.resize_w, p.resize_h), (20, 10));
        let p = plan(3, 1000, &o(Some(100), Some(100), Fit::Inside));
        assert_eq!((p.resize_w, p.resize_h), (1, 100));
    }

    #[test]
    fn cover_contain_fill() {
        let p = plan(200, 100, &o(Some(50), Some(50), Fit::Cover));
        assert_eq!(
            (p.resize_w, p.resize_h, p.crop_fw, p.crop_fh),
            (50, 50, 0.5, 1.0)
        );
        // may enlarge with explicit sizes
        let p = plan(20, 10, &o(Some(100), Some(100), Fit::Cover));
        assert_eq!((p.resize_w, p.resize_h), (100, 100));
        let p = plan(200, 100, &o(Some(50), Some(50), Fit::Contain));
        assert_eq!(
            (p.resize_w, p.resize_h, p.canvas_w, p.canvas_h),
            (50, 25, 50, 50)
        );
        let p = plan(200, 100, &o(Some(30), Some(70), Fit::Fill));
        assert_eq!((p.resize_w, p.resize_h), (30, 70));
    }

    #[test]
    fn jpeg_scale_keeps_enough_pixels() {
        let p = plan(2560, 1600, &o(Some(300), None, Fit::Inside));
        assert_eq!(jpeg_scale(2560, 1600, &p), 1); // 320x200 >= 300x188
        let p = plan(2560, 1600, &o(Some(800), None, Fit::Inside));
        assert_eq!(jpeg_scale(2560, 1600, &p), 4); // 1280x800
        let p = plan(2560, 1600, &o(Some(2000), None, Fit::Inside));
        assert_eq!(jpeg_scale(2560, 1600, &p), 8);
        let p = plan(2560, 1600, &o(Some(300), Some(300), Fit::Cover));
        assert_eq!(jpeg_scale(2560, 1600, &p), 2); // crop 1600 wide needs 1/4
    }
}
