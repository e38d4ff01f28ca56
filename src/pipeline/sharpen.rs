//! Sharpening (`sharpen=SIGMA`): an unsharp mask applied after the image
//! is scaled down, as imgproxy does, to restore the crispness that
//! downscaling filters soften.
//!
//! `out = in + AMOUNT * (in - gaussian(in, sigma))`, per colour channel
//! (premultiplied by alpha; alpha itself is left alone). Sigma sets the
//! size of the detail that is boosted: 0.5-1 for thumbnails.

use super::blur::{blur_planes, from_premultiplied, to_premultiplied};
use super::options::Sigma;
use super::pixels::Pixels;

/// Strength of the mask: the detail (image minus its blur) is added once.
pub const AMOUNT: f32 = 1.0;

/// The `sharpen` render step: `px` sharpened when a sigma is asked.
pub(crate) fn step(px: Pixels, sigma: Option<Sigma>) -> Pixels {
    match sigma {
        Some(s) => sharpen(px, s.pixels()),
        None => px,
    }
}

/// Sharpens `px` with an unsharp mask of radius `sigma` pixels.
pub(crate) fn sharpen(px: Pixels, sigma: f32) -> Pixels {
    let (w, h, ch) = (px.w as usize, px.h as usize, px.ch as usize);
    let orig = to_premultiplied(&px);
    let mut low = orig.clone();
    blur_planes(&mut low, w, h, ch, sigma);
    let alpha = px.has_alpha();
    let mut out = orig.clone();
    for (i, (o, l)) in out.iter_mut().zip(&low).enumerate() {
        if alpha && i % ch == ch - 1 {
            continue; // alpha is not sharpened
        }
        *o += AMOUNT * (*o - l);
        if alpha {
            // Premultiplied colour cannot exceed its alpha.
            let a = orig[i - i % ch + ch - 1];
            *o = o.clamp(0.0, a);
        }
    }
    from_premultiplied(&out, px)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::blur::tests::{card, reference};

    #[test]
    fn sharpen_matches_an_unsharp_mask_reference() {
        let (w, h) = (48, 40);
        let src = card(w, h);
        for sigma in [0.5f32, 1.0, 3.0, 10.0] {
            let got = sharpen(Pixels::new(w as u32, h as u32, 1, src.clone()), sigma);
            let low = reference(&src, w, h, f64::from(sigma));
            let mut max = 0f64;
            for ((g, s), l) in got.data.iter().zip(&src).zip(&low) {
                let s = f64::from(*s);
                let want = (s + f64::from(AMOUNT) * (s - l)).round().clamp(0.0, 255.0);
                max = max.max((f64::from(*g) - want).abs());
            }
            // The exact kernel (sigma <= 10): rounding only.
            assert!(max <= 1.0, "sigma {sigma}: max {max}");
        }
    }

    #[test]
    fn edges_get_steeper_and_flat_areas_stay() {
        let row: Vec<u8> = (0..16).map(|x| if x < 8 { 100 } else { 150 }).collect();
        let out = sharpen(Pixels::new(16, 1, 1, row), 1.0);
        assert!(out.data[7] < 100 && out.data[8] > 150, "{:?}", out.data);
        assert_eq!((out.data[0], out.data[15]), (100, 150));
    }
}
