//! Where a `fit=cover` crop sits: the `gravity` option turned into an
//! anchor in the stored (not yet rotated) pixels the resample step crops.
//!
//! An anchor is, per axis, the fraction of the room left beside the crop
//! that lies before it: 0 keeps the left (top) edge, 1 the right (bottom)
//! edge, 0.5 centres. Compass gravities and focal points are meant in
//! displayed orientation, so the anchor is mapped through the EXIF
//! orientation (a mirrored axis turns `a` into `1 - a`, a transposition
//! swaps the axes); `smart` looks at the stored pixels directly, where the
//! crop is made.

use super::gravity::Gravity;
use super::pixels::Pixels;
use super::resize::Plan;
use super::smart;

/// A centred crop.
pub(crate) const CENTRED: (f64, f64) = (0.5, 0.5);

/// The anchor of `plan`'s crop (stored orientation) in `px` for `gravity`.
pub(crate) fn anchor(px: &Pixels, plan: &Plan, orientation: u8, gravity: Gravity) -> (f64, f64) {
    if plan.crop_fw >= 1.0 && plan.crop_fh >= 1.0 {
        return CENTRED;
    }
    let Some(f) = gravity.fractions() else {
        return smart::anchor(px, plan.crop_fw, plan.crop_fh);
    };
    let shown = if orientation >= 5 {
        plan.transposed()
    } else {
        *plan
    };
    let displayed = match gravity {
        Gravity::Focal(..) => (focal(f.0, shown.crop_fw), focal(f.1, shown.crop_fh)),
        _ => f,
    };
    to_stored(displayed, orientation)
}

/// The anchor that puts point `p` (a fraction of the side) as near the
/// middle of a crop of `c` (a fraction of the side) as the image allows.
fn focal(p: f64, c: f64) -> f64 {
    if c >= 1.0 {
        return 0.5;
    }
    ((p - c / 2.0) / (1.0 - c)).clamp(0.0, 1.0)
}

/// A displayed anchor in stored orientation (see `Pixels::orient`).
fn to_stored((x, y): (f64, f64), orientation: u8) -> (f64, f64) {
    match orientation {
        2 => (1.0 - x, y),
        3 => (1.0 - x, 1.0 - y),
        4 => (x, 1.0 - y),
        5 => (y, x),
        6 => (y, 1.0 - x),
        7 => (1.0 - y, 1.0 - x),
        8 => (1.0 - y, x),
        _ => (x, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focal_points_centre_what_they_can() {
        assert_eq!(focal(0.5, 0.5), 0.5);
        assert_eq!(focal(0.0, 0.5), 0.0);
        assert_eq!(focal(0.25, 0.5), 0.0);
        assert_eq!(focal(0.6, 0.4), 2.0 / 3.0);
        assert_eq!(focal(1.0, 0.5), 1.0);
        assert_eq!(focal(0.1, 1.0), 0.5);
    }

    /// The stored anchor lands the crop where the displayed one says: a
    /// 4x2 stored image, crop of one column (displayed: one row or
    /// column), checked by orienting a marked pixel.
    #[test]
    fn anchors_follow_the_orientation() {
        for o in 1..=8u8 {
            for displayed in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
                let (sx, sy) = to_stored(displayed, o);
                // Mark the stored corner the anchor points at.
                let (w, h) = (4usize, 2usize);
                let (mx, my) = ((sx * 3.0) as usize, (sy * 1.0) as usize);
                let mut data = vec![0u8; w * h];
                data[my * w + mx] = 255;
                let shown = Pixels::new(4, 2, 1, data).orient(o);
                let (dw, dh) = (shown.w as usize, shown.h as usize);
                let want_x = (displayed.0 * (dw - 1) as f64) as usize;
                let want_y = (displayed.1 * (dh - 1) as f64) as usize;
                assert_eq!(shown.data[want_y * dw + want_x], 255, "o={o} {displayed:?}");
            }
        }
    }
}
