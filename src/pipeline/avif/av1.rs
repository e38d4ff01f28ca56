//! AVIF sources: `avif-parse` finds the AV1 items in the HEIF container,
//! rav1d (dav1d ported to Rust, built without assembly so no nasm is
//! needed) decodes them, and the YUV planes are converted to RGB here.
//!
//! Scope: the colour item and an optional alpha item, any bit depth
//! (reduced to 8), 4:0:0/4:2:0/4:2:2/4:4:4, full or limited range, BT.601,
//! BT.709, BT.2020 or identity matrices. Not handled (the container
//! parser does not expose them): `irot`/`imir` orientation, `clap`
//! cropping and ICC profiles — pixels are taken as sRGB, which is what
//! nearly every AVIF on the web declares. Chroma is upsampled by
//! replication, which is invisible after the usual downscale.
//!
//! Compiled only with the `avif-decode` feature, and run in a child
//! process (`child.rs`): rav1d's only public API is its `extern "C"` dav1d
//! interface, and rav1d 1.1 has `unwrap()`s on error paths; a panic cannot
//! unwind out of `extern "C"`, so it would abort the whole worker. This is
//! the one file with rav1d `unsafe`.

use std::ptr::NonNull;

use avif_parse::AvifData;
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_MC_BT2020_CL, DAV1D_MC_BT2020_NCL, DAV1D_MC_BT709, DAV1D_MC_IDENTITY,
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib as dav1d;

use crate::pipeline::error::PipelineError;
use crate::pipeline::pixels::Pixels;

/// Linux's EAGAIN; dav1d returns it negated for "call the other function".
const EAGAIN: i32 = 11;

fn corrupt(what: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(format!("AVIF: {what}"))
}

/// A parsed AVIF container with the size its AV1 sequence header declares
/// (checked against the pixel limit before anything is decoded).
pub(crate) struct Parsed {
    data: AvifData,
    pub width: u32,
    pub height: u32,
}

pub(crate) fn parse(src: &[u8]) -> Result<Parsed, PipelineError> {
    // The parser has a few (debug) assertions reachable from bad input;
    // contain them here so they count as corrupt input, not as our bug.
    let data = std::panic::catch_unwind(|| avif_parse::read_avif(&mut &src[..]))
        .map_err(|_| corrupt("malformed container"))?
        .map_err(|e| corrupt(format!("{e:?}")))?;
    let meta = data
        .primary_item_metadata()
        .map_err(|e| corrupt(format!("{e:?}")))?;
    Ok(Parsed {
        width: meta.max_frame_width.get(),
        height: meta.max_frame_height.get(),
        data,
    })
}

/// One decoded AV1 frame, owned by dav1d until dropped.
struct Picture(Dav1dPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture was filled by dav1d_get_picture and is
        // released exactly once.
        unsafe { dav1d::dav1d_picture_unref(Some(NonNull::from(&mut self.0))) }
    }
}

impl Picture {
    fn plane(&self, i: usize) -> Result<(&[u8], usize), PipelineError> {
        let p = &self.0;
        let ptr = p.data[i].ok_or_else(|| corrupt("missing plane"))?;
        let stride = p.stride[usize::from(i > 0)];
        let (w, h) = (p.p.w as usize, p.p.h as usize);
        let (ssx, ssy) = self.subsampling();
        let rows = if i == 0 { h } else { (h + ssy) >> ssy };
        let row_bytes = if i == 0 { w } else { (w + ssx) >> ssx } * if p.p.bpc > 8 { 2 } else { 1 };
        if stride <= 0 || (stride as usize) < row_bytes || rows == 0 {
            return Err(corrupt("unexpected plane layout"));
        }
        let len = stride as usize * (rows - 1) + row_bytes;
        // SAFETY: dav1d guarantees `rows` rows of `stride` bytes (the last
        // one at least `row_bytes` long) behind each plane pointer while
        // the picture is referenced.
        Ok((
            unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast::<u8>(), len) },
            stride as usize,
        ))
    }

    fn subsampling(&self) -> (usize, usize) {
        match self.0.p.layout {
            DAV1D_PIXEL_LAYOUT_I420 => (1, 1),
            DAV1D_PIXEL_LAYOUT_I422 => (1, 0),
            _ => (0, 0),
        }
    }

    /// Sample `(x, y)` of plane `i`, scaled to 0..=255 as f32.
    fn sampler(&self, i: usize) -> Result<impl Fn(usize, usize) -> f32 + '_, PipelineError> {
        let (plane, stride) = self.plane(i)?;
        let bpc = self.0.p.bpc;
        let max = ((1u32 << bpc) - 1) as f32;
        let wide = bpc > 8;
        Ok(move |x: usize, y: usize| {
            let v = if wide {
                let at = y * stride + 2 * x;
                u16::from_ne_bytes([plane[at], plane[at + 1]]) as f32
            } else {
                plane[y * stride + x] as f32
            };
            v * 255.0 / max
        })
    }

    fn full_range(&self) -> bool {
        // SAFETY: seq_hdr points into data the picture keeps alive.
        self.0
            .seq_hdr
            .is_some_and(|h| unsafe { h.as_ref().color_range != 0 })
    }

    fn matrix(&self) -> u32 {
        // SAFETY: as in `full_range`.
        self.0.seq_hdr.map_or(2, |h| unsafe { h.as_ref().mtrx })
    }
}

/// Decodes one AV1 still (the first frame of the item's OBUs).
fn decode_av1(obus: &[u8], max_pixels: u64) -> Result<Picture, PipelineError> {
    // SAFETY: straightforward use of the dav1d C API: settings initialised
    // by dav1d, the context closed on every path, data handed over to
    // dav1d (which frees it) and pictures unreferenced by `Picture`.
    unsafe {
        let mut s: Dav1dSettings = std::mem::zeroed();
        dav1d::dav1d_default_settings(NonNull::from(&mut s));
        s.n_threads = 1; // the CPU pool provides the parallelism
        s.max_frame_delay = 1;
        s.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
        s.all_layers = 0;
        let mut ctx: Option<Dav1dContext> = None;
        if dav1d::dav1d_open(Some(NonNull::from(&mut ctx)), Some(NonNull::from(&mut s))).0 != 0 {
            return Err(PipelineError::Internal("AV1 decoder did not start".into()));
        }
        struct Ctx(Option<Dav1dContext>);
        impl Drop for Ctx {
            fn drop(&mut self) {
                // SAFETY: opened above, closed once.
                unsafe { dav1d::dav1d_close(Some(NonNull::from(&mut self.0))) }
            }
        }
        let ctx = Ctx(ctx);
        let mut data = Dav1dData::default();
        let buf = dav1d::dav1d_data_create(Some(NonNull::from(&mut data)), obus.len());
        if buf.is_null() {
            return Err(corrupt("empty image item"));
        }
        std::ptr::copy_nonoverlapping(obus.as_ptr(), buf, obus.len());
        let result = (|| {
            // Bounded: each round either feeds data or drains a picture.
            for _ in 0..64 {
                if data.sz > 0 {
                    let r = dav1d::dav1d_send_data(ctx.0, Some(NonNull::from(&mut data))).0;
                    if r != 0 && r != -EAGAIN {
                        return Err(corrupt(format!("AV1 data rejected ({r})")));
                    }
                }
                let mut pic = Picture(Dav1dPicture::default());
                let r = dav1d::dav1d_get_picture(ctx.0, Some(NonNull::from(&mut pic.0))).0;
                if r == 0 {
                    return Ok(pic);
                }
                std::mem::forget(pic); // nothing to unref
                if r != -EAGAIN {
                    return Err(corrupt(format!("AV1 decoding failed ({r})")));
                }
                if data.sz == 0 {
                    return Err(corrupt("AV1 data is truncated"));
                }
            }
            Err(corrupt("AV1 decoder made no progress"))
        })();
        dav1d::dav1d_data_unref(Some(NonNull::from(&mut data)));
        drop(ctx);
        result
    }
}

/// Decodes the colour (and alpha) items to 8-bit gray, gray+alpha, RGB or
/// RGBA pixels.
pub(crate) fn decode(p: &Parsed, max_pixels: u64) -> Result<Pixels, PipelineError> {
    let color = decode_av1(&p.data.primary_item, max_pixels)?;
    let (w, h) = (color.0.p.w as usize, color.0.p.h as usize);
    if w == 0 || h == 0 || (w as u64) * (h as u64) > max_pixels {
        return Err(corrupt("bad frame size"));
    }
    let alpha = match &p.data.alpha_item {
        Some(a) => {
            let pic = decode_av1(a, max_pixels)?;
            if (pic.0.p.w as usize, pic.0.p.h as usize) != (w, h) {
                return Err(corrupt("alpha plane size differs from the image"));
            }
            Some(pic)
        }
        None => None,
    };
    let gray = color.0.p.layout == DAV1D_PIXEL_LAYOUT_I400;
    let ch = match (gray, alpha.is_some()) {
        (true, false) => 1,
        (true, true) => 2,
        (false, false) => 3,
        (false, true) => 4,
    };
    let (ssx, ssy) = color.subsampling();
    let ycc = Ycc::of(&color);
    let ys = color.sampler(0)?;
    let (us, vs) = if gray {
        (None, None)
    } else {
        (Some(color.sampler(1)?), Some(color.sampler(2)?))
    };
    let a_sampler = match &alpha {
        Some(a) => Some((a.sampler(0)?, a.full_range())),
        None => None,
    };
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let mut out = Vec::new();
    out.try_reserve_exact(w * h * ch)
        .map_err(|_| corrupt("image is too large for this machine"))?;
    for y in 0..h {
        for x in 0..w {
            let yv = ycc.luma(ys(x, y));
            if let (Some(us), Some(vs)) = (&us, &vs) {
                let (cx, cy) = (x >> ssx, y >> ssy);
                let (r, g, b) = ycc.rgb(yv, us(cx, cy), vs(cx, cy));
                out.extend_from_slice(&[clamp(r), clamp(g), clamp(b)]);
            } else {
                out.push(clamp(yv));
            }
            if let Some((a, a_full)) = &a_sampler {
                let av = a(x, y);
                out.push(clamp(if *a_full {
                    av
                } else {
                    (av - 16.0) * 255.0 / 219.0
                }));
            }
        }
    }
    let mut px = Pixels::new(w as u32, h as u32, ch as u8, out);
    if alpha.is_some() && p.data.premultiplied_alpha {
        unpremultiply(&mut px);
    }
    Ok(px)
}

/// The YCbCr to RGB conversion a picture's sequence header asks for.
struct Ycc {
    /// Luma offset and scale, chroma scale: identity for full range, the
    /// 8-bit limited-range terms otherwise.
    y_off: f32,
    y_scale: f32,
    c_scale: f32,
    /// Matrix coefficients.
    kr: f32,
    kb: f32,
    /// The identity matrix: the planes are G, B, R.
    identity: bool,
}

impl Ycc {
    fn of(p: &Picture) -> Ycc {
        let (y_off, y_scale, c_scale) = if p.full_range() {
            (0.0, 1.0, 1.0)
        } else {
            (16.0, 255.0 / 219.0, 255.0 / 224.0)
        };
        let (kr, kb) = match p.matrix() {
            DAV1D_MC_BT709 => (0.2126, 0.0722),
            DAV1D_MC_BT2020_NCL | DAV1D_MC_BT2020_CL => (0.2627, 0.0593),
            _ => (0.299, 0.114),
        };
        Ycc {
            y_off,
            y_scale,
            c_scale,
            kr,
            kb,
            identity: p.matrix() == DAV1D_MC_IDENTITY,
        }
    }

    fn luma(&self, y: f32) -> f32 {
        (y - self.y_off) * self.y_scale
    }

    /// RGB from a luma value (already through [`Ycc::luma`]) and chroma.
    fn rgb(&self, yv: f32, u: f32, v: f32) -> (f32, f32, f32) {
        if self.identity {
            // GBR: Y = G, U = B, V = R
            return (self.luma(v), yv, self.luma(u));
        }
        let (cb, cr) = ((u - 128.0) * self.c_scale, (v - 128.0) * self.c_scale);
        let r = yv + 2.0 * (1.0 - self.kr) * cr;
        let b = yv + 2.0 * (1.0 - self.kb) * cb;
        let g = (yv - self.kr * r - self.kb * b) / (1.0 - self.kr - self.kb);
        (r, g, b)
    }
}

fn unpremultiply(px: &mut Pixels) {
    let ch = px.ch as usize;
    for p in px.data.chunks_exact_mut(ch) {
        let a = u32::from(p[ch - 1]);
        if a > 0 && a < 255 {
            for c in &mut p[..ch - 1] {
                *c = ((u32::from(*c) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
}
