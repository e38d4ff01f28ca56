//! Colour management: embedded ICC profiles to sRGB, and CMYK to RGB.
//!
//! Outputs carry no profile (metadata is stripped), and browsers treat an
//! untagged image as sRGB, so anything that is not already sRGB must be
//! converted or its colours shift (Display P3 photos look washed out,
//! CMYK ones turn into negatives).
//!
//! Policy:
//! * RGB profiles: if the profile maps a grid of test colours to sRGB
//!   within ±1, it *is* sRGB for our purposes and the pixels are left
//!   untouched (no rounding drift, no cost); otherwise pixels go through a
//!   moxcms transform (relative colorimetric by default intent).
//! * Gray profiles are ignored: gray is served as sRGB gray.
//! * CMYK: with a CMYK profile, moxcms converts it; without one, the naive
//!   `(1-C)(1-K)` formula. Adobe-marked JPEGs store inverted CMYK.
//! * Unparseable profiles are ignored, as browsers do.
//!
//! Verdicts per profile are cached (keyed by a hash of its bytes) because
//! the same few profiles appear on most photos.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions};

use super::error::PipelineError;
use super::pixels::Pixels;

type Verdict = Option<Arc<Transform8BitExecutor>>;

/// (profile hash, layout channels) -> transform, or None when no
/// conversion is needed. Bounded: cleared when it grows past a few dozen.
fn cache() -> &'static Mutex<HashMap<(u64, u8), Verdict>> {
    static CACHE: OnceLock<Mutex<HashMap<(u64, u8), Verdict>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn layout(ch: u8) -> Layout {
    if ch == 4 {
        Layout::Rgba
    } else {
        Layout::Rgb
    }
}

/// Builds (or finds) the transform from an RGB profile to sRGB; `None`
/// when the profile is sRGB-equivalent, unparseable or not RGB.
fn rgb_transform(icc: &[u8], ch: u8) -> Verdict {
    let key = (xxhash_rust::xxh3::xxh3_64(icc), ch);
    if let Ok(c) = cache().lock() {
        if let Some(v) = c.get(&key) {
            return v.clone();
        }
    }
    let verdict = build_rgb_transform(icc, ch);
    if let Ok(mut c) = cache().lock() {
        if c.len() > 64 {
            c.clear();
        }
        c.insert(key, verdict.clone());
    }
    verdict
}

fn build_rgb_transform(icc: &[u8], ch: u8) -> Verdict {
    let src = ColorProfile::new_from_slice(icc).ok()?;
    if src.color_space != DataColorSpace::Rgb {
        return None;
    }
    let srgb = ColorProfile::new_srgb();
    let t = src
        .create_transform_8bit(layout(ch), &srgb, layout(ch), TransformOptions::default())
        .ok()?;
    // Probe a 6x6x6 grid; if nothing moves by more than 1, skip converting.
    let steps = [0u8, 51, 102, 153, 204, 255];
    let mut probe = Vec::new();
    for r in steps {
        for g in steps {
            for b in steps {
                probe.extend_from_slice(&[r, g, b]);
                if ch == 4 {
                    probe.push(255);
                }
            }
        }
    }
    let mut out = vec![0u8; probe.len()];
    t.transform(&probe, &mut out).ok()?;
    let max_diff = probe
        .iter()
        .zip(&out)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    (max_diff > 1).then_some(t)
}

/// Converts RGB(A) pixels described by `icc` to sRGB in place (alpha kept).
/// Gray images and sRGB-equivalent profiles are left alone.
pub(crate) fn to_srgb(px: &mut Pixels, icc: &[u8]) -> Result<(), PipelineError> {
    if px.ch < 3 {
        return Ok(());
    }
    let Some(t) = rgb_transform(icc, px.ch) else {
        return Ok(());
    };
    let mut out = vec![0u8; px.data.len()];
    t.transform(&px.data, &mut out)
        .map_err(|e| PipelineError::Internal(format!("colour conversion failed: {e:?}")))?;
    px.data = out;
    Ok(())
}

/// [`to_srgb`] when the source has a profile.
pub(crate) fn to_srgb_if(mut px: Pixels, icc: Option<&[u8]>) -> Result<Pixels, PipelineError> {
    if let Some(icc) = icc {
        to_srgb(&mut px, icc)?;
    }
    Ok(px)
}

/// Converts 4-channel CMYK (as libjpeg outputs it) to RGB. `inverted` is
/// true for Adobe-marked files, where 255 means "no ink".
pub(crate) fn cmyk_to_rgb(px: Pixels, inverted: bool, icc: Option<&[u8]>) -> Pixels {
    debug_assert_eq!(px.ch, 4);
    let (w, h) = (px.w, px.h);
    if let Some(t) = icc.and_then(cmyk_transform) {
        // ICC CMYK: 0 = no ink.
        let mut src = px.data;
        if inverted {
            src.iter_mut().for_each(|v| *v = 255 - *v);
        }
        let mut out = vec![0u8; w as usize * h as usize * 3];
        if t.transform(&src, &mut out).is_ok() {
            return Pixels::new(w, h, 3, out);
        }
        if inverted {
            src.iter_mut().for_each(|v| *v = 255 - *v);
        }
        return naive_cmyk(Pixels::new(w, h, 4, src), inverted);
    }
    naive_cmyk(px, inverted)
}

fn naive_cmyk(px: Pixels, inverted: bool) -> Pixels {
    let mut out = Vec::with_capacity(px.w as usize * px.h as usize * 3);
    for p in px.data.chunks_exact(4) {
        // With "no ink = 255" values: R = c' * k' / 255.
        let (c, m, y, k) = if inverted {
            (p[0], p[1], p[2], p[3])
        } else {
            (255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3])
        };
        let k = u32::from(k);
        for v in [c, m, y] {
            out.push(((u32::from(v) * k + 127) / 255) as u8);
        }
    }
    Pixels::new(px.w, px.h, 3, out)
}

fn cmyk_transform(icc: &[u8]) -> Verdict {
    let key = (xxhash_rust::xxh3::xxh3_64(icc), 0xC);
    if let Ok(c) = cache().lock() {
        if let Some(v) = c.get(&key) {
            return v.clone();
        }
    }
    let verdict = ColorProfile::new_from_slice(icc)
        .ok()
        .filter(|p| p.color_space == DataColorSpace::Cmyk)
        .and_then(|p| {
            p.create_transform_8bit(
                Layout::Rgba,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .ok()
        });
    if let Ok(mut c) = cache().lock() {
        if c.len() > 64 {
            c.clear();
        }
        c.insert(key, verdict.clone());
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_profile_is_a_no_op_and_p3_is_converted() {
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        let mut px = Pixels::new(2, 1, 3, vec![10, 200, 30, 250, 128, 0]);
        let before = px.clone();
        to_srgb(&mut px, &srgb).unwrap();
        assert_eq!(px, before);

        let p3 = ColorProfile::new_display_p3().encode().unwrap();
        let mut px = Pixels::new(1, 1, 3, vec![255, 0, 0]);
        to_srgb(&mut px, &p3).unwrap();
        // P3 red is outside sRGB: clipped to full red, but it must still
        // be red and the conversion must have happened (a mid tone moves).
        assert!(
            px.data[0] > 240 && px.data[1] < 20 && px.data[2] < 20,
            "{:?}",
            px.data
        );
        let mut px = Pixels::new(1, 1, 3, vec![200, 100, 50]);
        to_srgb(&mut px, &p3).unwrap();
        assert_ne!(px.data, vec![200, 100, 50]);
        assert!(
            px.data[0] > 200,
            "P3 orange is more saturated in sRGB: {:?}",
            px.data
        );

        // junk profiles are ignored
        let mut px = before.clone();
        to_srgb(&mut px, b"not a profile").unwrap();
        assert_eq!(px, before);
    }

    #[test]
    fn naive_cmyk_both_polarities() {
        // plain: C=255 (full cyan), others 0 -> cyan (0,255,255)
        let px = Pixels::new(1, 1, 4, vec![255, 0, 0, 0]);
        assert_eq!(cmyk_to_rgb(px, false, None).data, vec![0, 255, 255]);
        // Adobe-inverted: same colour stored as 255 - v
        let px = Pixels::new(1, 1, 4, vec![0, 255, 255, 255]);
        assert_eq!(cmyk_to_rgb(px, true, None).data, vec![0, 255, 255]);
        // full black
        let px = Pixels::new(1, 1, 4, vec![0, 0, 0, 255]);
        assert_eq!(cmyk_to_rgb(px, false, None).data, vec![0, 0, 0]);
    }
}
