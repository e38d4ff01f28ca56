//! `gravity=smart`: where a crop keeps the most interesting region.
//!
//! The measure follows libvips' `smartcrop` attention strategy (itself from
//! smartcrop.js): every pixel scores for detail (the Laplacian of its
//! luma), for skin tone (its colour's direction close to a reference skin
//! colour, at a plausible brightness) and for saturation (vivid colour, not
//! near black or white). Transparent pixels score nothing. The crop window
//! of the requested shape that holds the highest total wins; among equal
//! windows the most central one.
//!
//! Two priors make the measure find subjects rather than texture (tried on
//! the photos in `docs/smart-crop/`: without them a wooden table's grain
//! pulled a crop off a coffee cup, and a cat's fur off its eyes):
//! - a window counts its pixels less the nearer they are to its edges
//!   (as smartcrop.js does), so a subject ends up inside the crop with
//!   some margin rather than cut by its border;
//! - a pixel counts less the further it is from the image's centre
//!   (photographers centre subjects; saliency models call it the centre
//!   prior), so texture spread over the whole frame does not drag the
//!   crop to a corner.
//!
//! All of it runs on a copy at most [`SIDE`] pixels on its longest side
//! (box-filtered, so texture still shows as detail), which costs a
//! fraction of the resize itself whatever the source size.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::pixels::Pixels;

/// Longest side of the copy the attention is measured on.
const SIDE: u32 = 128;
/// The skin colour's direction in RGB: smartcrop.js' reference
/// (0.78, 0.57, 0.44) made a unit vector, so that exact skin scores 1.
const SKIN: [f32; 3] = [0.7348, 0.5369, 0.4145];
/// Weights of the three measures in a pixel's score.
const DETAIL_WEIGHT: f32 = 1.0;
const SKIN_WEIGHT: f32 = 1.5;
const SATURATION_WEIGHT: f32 = 0.6;
/// How much less a pixel in a corner of the image counts than one in its
/// centre (falling off with the square of the distance).
const CENTRE_PRIOR: f32 = 0.5;
/// Along each axis of a crop window, the fraction of its length over which
/// a pixel's weight rises from 0 at the window's edge to 1.
const WINDOW_EDGE: f64 = 0.35;

/// Where a crop of `crop_fw` x `crop_fh` (fractions of the width and
/// height) keeps the most attention in `px`, as fractions of the room on
/// each axis (0 = flush left/top, 0.5 = centred).
pub(crate) fn anchor(px: &Pixels, crop_fw: f64, crop_fh: f64) -> (f64, f64) {
    let Some(small) = shrink(px) else {
        return (0.5, 0.5);
    };
    let scores = attention(&small);
    best_window(
        &scores,
        small.w as usize,
        small.h as usize,
        crop_fw,
        crop_fh,
    )
}

/// A box-filtered copy with the longest side at most [`SIDE`] (the image
/// itself when it is that small already); `None` if resizing fails.
fn shrink(px: &Pixels) -> Option<Pixels> {
    let scale = (f64::from(SIDE) / f64::from(px.w.max(px.h))).min(1.0);
    let w = ((f64::from(px.w) * scale).round() as u32).max(1);
    let h = ((f64::from(px.h) * scale).round() as u32).max(1);
    if (w, h) == (px.w, px.h) {
        return Some(px.clone());
    }
    let pt = match px.ch {
        1 => PixelType::U8,
        2 => PixelType::U8x2,
        3 => PixelType::U8x3,
        _ => PixelType::U8x4,
    };
    let src = ImageRef::new(px.w, px.h, &px.data, pt).ok()?;
    let mut dst = Image::new(w, h, pt);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
    Resizer::new().resize(&src, &mut dst, &opts).ok()?;
    Some(Pixels::new(w, h, px.ch, dst.into_vec()))
}

/// Colour (0..1) and opacity of pixel `i`, whatever the channel layout.
fn rgba(px: &Pixels, i: usize) -> ([f32; 3], f32) {
    let ch = px.ch as usize;
    let p = &px.data[i * ch..i * ch + ch];
    let f = |v: u8| f32::from(v) / 255.0;
    match ch {
        1 => ([f(p[0]); 3], 1.0),
        2 => ([f(p[0]); 3], f(p[1])),
        3 => ([f(p[0]), f(p[1]), f(p[2])], 1.0),
        _ => ([f(p[0]), f(p[1]), f(p[2])], f(p[3])),
    }
}

fn luma([r, g, b]: [f32; 3]) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// How close a colour is to skin: 0, or up to 1 within the threshold.
fn skin(c: [f32; 3], l: f32) -> f32 {
    let mag = (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt();
    if mag < 1e-3 || !(0.2..=1.0).contains(&l) {
        return 0.0;
    }
    let d: f32 = (0..3).map(|k| (c[k] / mag - SKIN[k]).powi(2)).sum();
    let closeness = 1.0 - d.sqrt();
    ((closeness - 0.8) / 0.2).clamp(0.0, 1.0)
}

/// Saturation (HSL), counted above 0.4 and away from black and white.
fn saturation(c: [f32; 3], l: f32) -> f32 {
    let (max, min) = (c[0].max(c[1]).max(c[2]), c[0].min(c[1]).min(c[2]));
    let light = (max + min) / 2.0;
    if !(0.05..=0.9).contains(&l) || max - min < 1e-3 {
        return 0.0;
    }
    let s = (max - min) / (1.0 - (2.0 * light - 1.0).abs()).max(1e-3);
    ((s - 0.4) / 0.6).clamp(0.0, 1.0)
}

/// Every pixel's score: detail + skin + saturation, weighted, times its
/// opacity; then only what stands out counts: the image's mean score is
/// taken off (a saturated sky or an evenly textured lawn is background,
/// not subject) and the rest squared, so that a small, very interesting
/// region outweighs a large, faintly interesting one; last, the centre
/// prior ([`CENTRE_PRIOR`]).
fn attention(px: &Pixels) -> Vec<f32> {
    let mut scores = raw_attention(px);
    let mean = scores.iter().sum::<f32>() / scores.len().max(1) as f32;
    let (w, h) = (px.w as usize, px.h as usize);
    for (i, s) in scores.iter_mut().enumerate() {
        let dx = ((i % w) as f32 + 0.5) / w as f32 - 0.5;
        let dy = ((i / w) as f32 + 0.5) / h as f32 - 0.5;
        let prior = 1.0 - CENTRE_PRIOR * 2.0 * (dx * dx + dy * dy);
        *s = (*s - mean).max(0.0).powi(2) * prior;
    }
    scores
}

/// [`attention`] before the background is taken off.
fn raw_attention(px: &Pixels) -> Vec<f32> {
    let (w, h) = (px.w as usize, px.h as usize);
    let colours: Vec<([f32; 3], f32)> = (0..w * h).map(|i| rgba(px, i)).collect();
    let l: Vec<f32> = colours.iter().map(|(c, _)| luma(*c)).collect();
    let mut scores = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let detail = if x > 0 && y > 0 && x + 1 < w && y + 1 < h {
                let lap = 4.0 * l[i] - l[i - 1] - l[i + 1] - l[i - w] - l[i + w];
                (lap.abs() * 4.0).min(1.0)
            } else {
                0.0
            };
            let (c, a) = colours[i];
            scores[i] = a
                * (DETAIL_WEIGHT * detail
                    + SKIN_WEIGHT * skin(c, l[i])
                    + SATURATION_WEIGHT * saturation(c, l[i]));
        }
    }
    scores
}

/// The position of the `crop_fw` x `crop_fh` window over a `w` x `h` score
/// map with the highest weighted total ([`edge_weights`] on each axis; the
/// most central among ties), as fractions of the room on each axis.
fn best_window(scores: &[f32], w: usize, h: usize, crop_fw: f64, crop_fh: f64) -> (f64, f64) {
    let ww = ((w as f64 * crop_fw).round() as usize).clamp(1, w);
    let wh = ((h as f64 * crop_fh).round() as usize).clamp(1, h);
    let (wx, wy) = (edge_weights(ww), edge_weights(wh));
    let total = scores.iter().map(|&s| f64::from(s)).sum::<f64>().max(1e-9);
    let (rx, ry) = (w - ww, h - wh);
    let mut best = (f64::NEG_INFINITY, f64::INFINITY, (rx / 2, ry / 2));
    let mut columns = vec![0.0f64; w];
    for y in 0..=ry {
        // Each column's total over the window's rows, weighted by row.
        columns.iter_mut().for_each(|c| *c = 0.0);
        for (j, &k) in wy.iter().enumerate() {
            let row = &scores[(y + j) * w..(y + j + 1) * w];
            for (c, &s) in columns.iter_mut().zip(row) {
                *c += k * f64::from(s);
            }
        }
        for x in 0..=rx {
            let s: f64 = columns[x..x + ww].iter().zip(&wx).map(|(c, k)| c * k).sum();
            let dx = x as f64 - rx as f64 / 2.0;
            let dy = y as f64 - ry as f64 / 2.0;
            let dist = dx * dx + dy * dy;
            let tie = (s - best.0).abs() <= 1e-6 * total;
            if (s > best.0 && !tie) || (tie && dist < best.1) {
                best = (s.max(best.0), dist, (x, y));
            }
        }
    }
    let frac = |p: usize, room: usize| {
        if room == 0 {
            0.5
        } else {
            p as f64 / room as f64
        }
    };
    (frac(best.2 .0, rx), frac(best.2 .1, ry))
}

/// The weight of each of a window's `n` pixels along one axis: rising from
/// 0 at its edges to 1 at [`WINDOW_EDGE`] of its length in, 1 between.
fn edge_weights(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let u = (i as f64 + 0.5) / n as f64;
            (u.min(1.0 - u) / WINDOW_EDGE).min(1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat grey `w` x `h` RGB image with `blob` (x0, y0, x1, y1) painted
    /// by `paint(x, y)`.
    fn scene(w: u32, h: u32, blob: (u32, u32, u32, u32), paint: fn(u32, u32) -> [u8; 3]) -> Pixels {
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let inside = x >= blob.0 && x < blob.2 && y >= blob.1 && y < blob.3;
                data.extend_from_slice(&if inside { paint(x, y) } else { [128, 128, 128] });
            }
        }
        Pixels::new(w, h, 3, data)
    }

    fn textured(x: u32, y: u32) -> [u8; 3] {
        if (x / 3 + y / 3).is_multiple_of(2) {
            [230, 40, 30]
        } else {
            [40, 200, 60]
        }
    }

    #[test]
    fn finds_a_textured_subject_at_the_left() {
        let px = scene(800, 400, (30, 120, 180, 280), textured);
        let (ax, ay) = anchor(&px, 0.5, 1.0);
        assert!(ax < 0.1, "{ax}");
        assert_eq!(ay, 0.5);
    }

    #[test]
    fn finds_a_flat_skin_coloured_subject_at_the_bottom() {
        let px = scene(300, 900, (100, 700, 200, 860), |_, _| [199, 145, 112]);
        let (ax, ay) = anchor(&px, 1.0, 1.0 / 3.0);
        assert_eq!(ax, 0.5);
        assert!(ay > 0.9, "{ay}");
    }

    /// Paints `textured` over `(x0, y0, x1, y1)` of a `width`-wide scene.
    fn paint_textured(px: &mut Pixels, width: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) {
        for y in y0..y1 {
            for x in x0..x1 {
                let i = ((y * width + x) * 3) as usize;
                px.data[i..i + 3].copy_from_slice(&textured(x, y));
            }
        }
    }

    #[test]
    fn a_subject_is_kept_off_the_crop_s_edge() {
        // A textured subject at 300..400 of 800, and a speck at 20..30: a
        // plain total would take both, leaving the subject at the border
        // of a flush-left crop; the edge weights centre the subject.
        let mut px = scene(800, 400, (300, 150, 400, 250), textured);
        paint_textured(&mut px, 800, (20, 195, 30, 205));
        let (ax, _) = anchor(&px, 0.5, 1.0);
        // The subject's middle (350) in the middle half of the crop.
        let left = ax * 400.0;
        assert!((50.0..=250.0).contains(&left), "crop starts at {left}");
    }

    #[test]
    fn a_subject_near_the_centre_beats_a_slightly_larger_one_at_the_border() {
        let mut px = scene(800, 400, (0, 140, 110, 260), textured);
        paint_textured(&mut px, 800, (450, 140, 550, 260));
        // A 300-pixel-wide crop holds one of them: the central one.
        let (ax, _) = anchor(&px, 300.0 / 800.0, 1.0);
        let left = ax * 500.0;
        assert!(left > 300.0 && left < 450.0, "crop starts at {left}");
    }

    #[test]
    fn a_flat_image_stays_centred() {
        let px = Pixels::new(400, 200, 1, vec![77; 400 * 200]);
        assert_eq!(anchor(&px, 0.5, 1.0), (0.5, 0.5));
    }

    #[test]
    fn transparent_pixels_do_not_count() {
        // A saturated blob on the right that is fully transparent, and a
        // faint textured one on the left that is opaque.
        let (w, h) = (400u32, 200u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let [r, g, b] = textured(x, y);
                let a = if x >= 300 { 0 } else { 255 };
                let px = if (20..100).contains(&x) || x >= 300 {
                    [r, g, b, a]
                } else {
                    [128, 128, 128, 255]
                };
                data.extend_from_slice(&px);
            }
        }
        let (ax, _) = anchor(&Pixels::new(w, h, 4, data), 0.5, 1.0);
        assert!(ax < 0.2, "{ax}");
    }
}
