//! Gaussian blur (`blur=SIGMA`), and the low-pass that `sharpen` subtracts.
//!
//! Exact separable convolution up to sigma 10 (61 taps); above, three
//! successive box blurs whose widths bring the total variance within a
//! few percent of sigma² (the approximation SVG's `feGaussianBlur` allows
//! browsers). That costs the same per pixel whatever the sigma, so
//! `blur=100` on a large output cannot take minutes. Colour is blurred
//! premultiplied by alpha, so transparent pixels do not darken edges.
//! Edges repeat the border pixel.

use super::options::Sigma;
use super::pixels::Pixels;

/// Above this sigma three box blurs replace the exact kernel.
const EXACT_UP_TO: f32 = 10.0;

/// The `blur` render step: `px` blurred when a sigma is asked.
pub(crate) fn step(px: Pixels, sigma: Option<Sigma>) -> Pixels {
    match sigma {
        Some(s) => blur(px, s.pixels()),
        None => px,
    }
}

/// Blurs `px` with a Gaussian of standard deviation `sigma` pixels.
pub(crate) fn blur(px: Pixels, sigma: f32) -> Pixels {
    let (w, h, ch) = (px.w as usize, px.h as usize, px.ch as usize);
    let mut buf = to_premultiplied(&px);
    blur_planes(&mut buf, w, h, ch, sigma);
    from_premultiplied(&buf, px)
}

/// Blurs interleaved `ch`-channel samples in place, rows then columns.
pub(crate) fn blur_planes(buf: &mut Vec<f32>, w: usize, h: usize, ch: usize, sigma: f32) {
    if w == 0 || h == 0 || sigma <= 0.0 {
        return;
    }
    blur_rows(buf, w, h, ch, sigma);
    let mut t = transpose(buf, w, h, ch);
    blur_rows(&mut t, h, w, ch, sigma);
    *buf = transpose(&t, h, w, ch);
}

fn blur_rows(buf: &mut [f32], w: usize, h: usize, ch: usize, sigma: f32) {
    if sigma <= EXACT_UP_TO {
        let k = kernel(sigma);
        let mut line = vec![0f32; w * ch];
        for row in buf.chunks_exact_mut(w * ch).take(h) {
            line.copy_from_slice(row);
            convolve(&line, row, w, ch, &k);
        }
        return;
    }
    // The three passes run on a line padded once by their total radius,
    // so the edges repeat as they would for one Gaussian (repeating them
    // at every pass would over-weight the border).
    let radii = box_sizes(sigma).map(|n| n / 2);
    let pad = radii.iter().sum::<usize>();
    let pw = w + 2 * pad;
    let (mut a, mut b) = (vec![0f32; pw * ch], vec![0f32; pw * ch]);
    for row in buf.chunks_exact_mut(w * ch).take(h) {
        for x in 0..pw {
            let sx = x.saturating_sub(pad).min(w - 1);
            a[x * ch..(x + 1) * ch].copy_from_slice(&row[sx * ch..(sx + 1) * ch]);
        }
        for &r in &radii {
            box_pass(&a, &mut b, pw, ch, r);
            std::mem::swap(&mut a, &mut b);
        }
        row.copy_from_slice(&a[pad * ch..(pad + w) * ch]);
    }
}

/// Normalised Gaussian weights for offsets `-r..=r`, `r = ceil(3 sigma)`.
pub(crate) fn kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as i32;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

fn convolve(src: &[f32], dst: &mut [f32], w: usize, ch: usize, k: &[f32]) {
    let r = (k.len() / 2) as isize;
    for x in 0..w {
        for c in 0..ch {
            let mut acc = 0.0;
            for (i, &wt) in k.iter().enumerate() {
                let sx = (x as isize + i as isize - r).clamp(0, w as isize - 1) as usize;
                acc += wt * src[sx * ch + c];
            }
            dst[x * ch + c] = acc;
        }
    }
}

/// Odd box widths for three passes whose variances add up to sigma²
/// (each box of width `n` has variance `(n² - 1) / 12`).
fn box_sizes(sigma: f32) -> [usize; 3] {
    let s2 = f64::from(sigma) * f64::from(sigma);
    let ideal = (12.0 * s2 / 3.0 + 1.0).sqrt();
    let mut lower = ideal.floor() as i64;
    if lower % 2 == 0 {
        lower -= 1;
    }
    let upper = lower + 2;
    let l = lower as f64;
    // How many passes use the lower width.
    let m = ((12.0 * s2 - 3.0 * l * l - 12.0 * l - 9.0) / (-4.0 * l - 4.0)).round() as i64;
    let size = |i: i64| (if i < m { lower } else { upper }).max(1) as usize;
    [size(0), size(1), size(2)]
}

/// One box blur of radius `r` along a row (running sum, edges repeated).
fn box_pass(src: &[f32], dst: &mut [f32], w: usize, ch: usize, r: usize) {
    let norm = 1.0 / (2 * r + 1) as f32;
    let at = |x: isize, c: usize| src[(x.clamp(0, w as isize - 1) as usize) * ch + c];
    for c in 0..ch {
        let mut sum: f32 = (-(r as isize)..=r as isize).map(|x| at(x, c)).sum();
        for x in 0..w {
            dst[x * ch + c] = sum * norm;
            let (out, inn) = (x as isize - r as isize, x as isize + r as isize + 1);
            sum += at(inn, c) - at(out, c);
        }
    }
}

fn transpose(buf: &[f32], w: usize, h: usize, ch: usize) -> Vec<f32> {
    let mut out = vec![0f32; buf.len()];
    for y in 0..h {
        for x in 0..w {
            let (s, d) = ((y * w + x) * ch, (x * h + y) * ch);
            out[d..d + ch].copy_from_slice(&buf[s..s + ch]);
        }
    }
    out
}

/// Samples as f32, colour multiplied by alpha when there is alpha.
pub(crate) fn to_premultiplied(px: &Pixels) -> Vec<f32> {
    let ch = px.ch as usize;
    if !px.has_alpha() {
        return px.data.iter().map(|&v| f32::from(v)).collect();
    }
    let mut out = Vec::with_capacity(px.data.len());
    for p in px.data.chunks_exact(ch) {
        let a = f32::from(p[ch - 1]) / 255.0;
        out.extend(p[..ch - 1].iter().map(|&v| f32::from(v) * a));
        out.push(f32::from(p[ch - 1]));
    }
    out
}

/// Back to 8-bit samples in `like`'s layout (undoing premultiplication).
pub(crate) fn from_premultiplied(buf: &[f32], like: Pixels) -> Pixels {
    let ch = like.ch as usize;
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let alpha = like.has_alpha();
    let mut data = like.data;
    if !alpha {
        for (d, &v) in data.iter_mut().zip(buf) {
            *d = q(v);
        }
        return Pixels::new(like.w, like.h, like.ch, data);
    }
    for (d, s) in data.chunks_exact_mut(ch).zip(buf.chunks_exact(ch)) {
        let a = s[ch - 1];
        let scale = if a > 0.0 { 255.0 / a } else { 0.0 };
        for c in 0..ch - 1 {
            d[c] = q(s[c] * scale);
        }
        d[ch - 1] = q(a);
    }
    Pixels::new(like.w, like.h, like.ch, data)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The reference: a direct 2-D Gaussian convolution (not separable,
    /// no box approximation), edges repeated, on one channel.
    pub(crate) fn reference(src: &[u8], w: usize, h: usize, sigma: f64) -> Vec<f64> {
        let r = (3.0 * sigma).ceil() as isize;
        let mut out = vec![0.0; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let (mut acc, mut norm) = (0.0, 0.0);
                for dy in -r..=r {
                    for dx in -r..=r {
                        let wt = (-((dx * dx + dy * dy) as f64) / (2.0 * sigma * sigma)).exp();
                        let sx = (x + dx).clamp(0, w as isize - 1) as usize;
                        let sy = (y + dy).clamp(0, h as isize - 1) as usize;
                        acc += wt * f64::from(src[sy * w + sx]);
                        norm += wt;
                    }
                }
                out[y as usize * w + x as usize] = acc / norm;
            }
        }
        out
    }

    /// A gray test card: a hard-edged square, a gradient and fine stripes.
    pub(crate) fn card(w: usize, h: usize) -> Vec<u8> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if (8..24).contains(&x) && (8..24).contains(&y) {
                    240
                } else if x % 4 < 2 && y > h / 2 {
                    20
                } else {
                    (x * 255 / w) as u8 / 2 + 40
                }
            })
            .collect()
    }

    #[test]
    fn blur_matches_a_direct_gaussian() {
        let (w, h) = (48, 40);
        let src = card(w, h);
        for sigma in [0.3f32, 0.8, 1.5, 3.0, 10.0, 14.0] {
            let got = blur(Pixels::new(w as u32, h as u32, 1, src.clone()), sigma);
            let want = reference(&src, w, h, f64::from(sigma));
            let (mut max, mut sum) = (0f64, 0f64);
            for (g, r) in got.data.iter().zip(&want) {
                let d = (f64::from(*g) - r).abs();
                max = max.max(d);
                sum += d;
            }
            let mean = sum / want.len() as f64;
            // Exact kernel: rounding only. Three boxes: a few levels at
            // the hard edges, well under one on average.
            let (max_ok, mean_ok) = if sigma <= EXACT_UP_TO {
                (1.0, 0.5)
            } else {
                (6.0, 1.0)
            };
            assert!(
                max <= max_ok && mean <= mean_ok,
                "sigma {sigma}: max {max:.2}, mean {mean:.3}"
            );
        }
    }

    #[test]
    fn box_widths_add_up_to_the_variance() {
        for sigma in [10.5f32, 14.0, 30.0, 100.0] {
            let v: f64 = box_sizes(sigma)
                .iter()
                .map(|&n| ((n * n) as f64 - 1.0) / 12.0)
                .sum();
            let want = f64::from(sigma) * f64::from(sigma);
            assert!(
                (v - want).abs() / want < 0.05,
                "sigma {sigma}: {v} vs {want}"
            );
        }
    }

    #[test]
    fn transparent_pixels_do_not_darken_the_edge() {
        // Opaque red next to fully transparent black.
        let mut data = Vec::new();
        for x in 0..16 {
            data.extend_from_slice(if x < 8 {
                &[255, 0, 0, 255]
            } else {
                &[0, 0, 0, 0]
            });
        }
        let out = blur(Pixels::new(16, 1, 4, data), 2.0);
        for p in out.data.chunks_exact(4).filter(|p| p[3] > 8) {
            assert!(p[0] >= 250, "colour stays red where visible: {p:?}");
        }
        // A flat image stays flat.
        let flat = Pixels::new(9, 7, 3, vec![77; 9 * 7 * 3]);
        assert_eq!(blur(flat.clone(), 5.0), flat);
    }
}
