//! AVIF sources: our container reader ([`heif`]) says which AV1 payloads
//! make the picture, rav1d (dav1d ported to Rust, built without assembly
//! so no nasm is needed) decodes them, and the YUV planes are converted to
//! RGB here; grid tiles, alpha and the clean-aperture crop are put
//! together by [`compose`]. Rotation and mirroring are left to the
//! caller as an EXIF orientation, so they run on the resized image.
//!
//! Scope: any bit depth (reduced to 8), 4:0:0/4:2:0/4:2:2/4:4:4, full or
//! limited range, BT.601, BT.709, BT.2020 or identity matrices; ICC
//! profiles are returned for the caller to apply, CICP-only colour is
//! taken as sRGB (HDR transfer functions are not tone-mapped). Chroma is
//! upsampled by replication, which is invisible after the usual downscale.
//!
//! Compiled only with the `avif-decode` feature: rav1d's only public API is
//! its `extern "C"` dav1d interface, and rav1d 1.1 has `unwrap()`s on
//! error paths (found by this module's byte-flip test within a hundred
//! mutations of a tiny file); a panic cannot unwind out of `extern "C"`, so
//! it aborts the whole process. This is why `decode` runs in a child
//! process (see `child.rs`).

use std::ptr::NonNull;

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_MC_BT2020_CL, DAV1D_MC_BT2020_NCL, DAV1D_MC_BT709, DAV1D_MC_IDENTITY,
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib as dav1d;

use super::compose;
use super::file;
use super::heif::{Av1Item, Avif, Coded};
use crate::pipeline::error::PipelineError;
use crate::pipeline::pixels::Pixels;

/// Linux's EAGAIN; dav1d returns it negated for "call the other function".
const EAGAIN: i32 = 11;

fn corrupt(what: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(format!("AVIF: {what}"))
}

/// Parses the container (our own reader: no panics to contain).
pub(crate) fn parse(src: &[u8]) -> Result<Avif, PipelineError> {
    file::parse(src)
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

/// Decodes one AV1 still (the first frame of the item's OBUs) at the
/// item's operating point; with a selected layer (`lsel`), the frame of
/// that spatial layer, else the highest layer of the operating point.
fn decode_av1(item: &Av1Item, max_pixels: u64) -> Result<Picture, PipelineError> {
    let obus = &item.data[..];
    // SAFETY: straightforward use of the dav1d C API: settings initialised
    // by dav1d, the context closed on every path, data handed over to
    // dav1d (which frees it) and pictures unreferenced by `Picture`.
    unsafe {
        let mut s: Dav1dSettings = std::mem::zeroed();
        dav1d::dav1d_default_settings(NonNull::from(&mut s));
        s.n_threads = 1; // the CPU pool provides the parallelism
        s.max_frame_delay = 1;
        s.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
        s.operating_point = i32::from(item.operating_point.min(31));
        s.all_layers = i32::from(item.layer.is_some());
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
                    if wanted_layer(&pic, item.layer) {
                        return Ok(pic);
                    }
                    continue; // another layer: dropped (unreferenced)
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

/// Whether `pic` is the layer asked for (any layer when none is).
fn wanted_layer(pic: &Picture, layer: Option<u16>) -> bool {
    let Some(layer) = layer else {
        return true;
    };
    // SAFETY: frame_hdr points into data the picture keeps alive.
    pic.0
        .frame_hdr
        .is_some_and(|h| unsafe { u16::from(h.as_ref().spatial_id) == layer })
}

/// Decodes the picture: colour (and alpha), grids stitched, premultiplied
/// alpha undone, the clean aperture cut out. Pixels stay in stored
/// orientation (`p.orientation` is for the caller).
pub(crate) fn decode(p: &Avif, max_pixels: u64) -> Result<Pixels, PipelineError> {
    let color = decode_coded(&p.color, Plane::Color, max_pixels)?;
    let px = match &p.alpha {
        Some(a) => {
            let alpha = decode_coded(a, Plane::Alpha, max_pixels)?;
            let mut px = compose::merge_alpha(color, &alpha)?;
            if p.premultiplied {
                compose::unpremultiply(&mut px);
            }
            px
        }
        None => color,
    };
    // The caller bounds the answer by the declared size.
    if u64::from(px.w) * u64::from(px.h) > u64::from(p.width) * u64::from(p.height) {
        return Err(corrupt(format!(
            "decoded {}x{} is larger than the declared {}x{}",
            px.w, px.h, p.width, p.height
        )));
    }
    Ok(match p.crop {
        Some(c) => compose::crop(px, c),
        None => px,
    })
}

/// What an AV1 picture holds: colour, or an alpha plane (its luma).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plane {
    Color,
    Alpha,
}

fn decode_coded(c: &Coded, plane: Plane, max_pixels: u64) -> Result<Pixels, PipelineError> {
    match c {
        Coded::Single(item) => to_pixels(&decode_av1(item, max_pixels)?, plane, max_pixels),
        Coded::Grid(g) => {
            let mut canvas: Option<compose::Canvas> = None;
            for (i, t) in g.tiles.iter().enumerate() {
                let tile = to_pixels(&decode_av1(t, max_pixels)?, plane, max_pixels)?;
                let canvas = match &mut canvas {
                    Some(c) => c,
                    None => canvas.insert(compose::Canvas::new(g, &tile, max_pixels)?),
                };
                canvas.place(i, &tile)?;
            }
            canvas
                .map(compose::Canvas::finish)
                .ok_or_else(|| corrupt("grid without tiles"))
        }
    }
}

/// Converts a decoded picture to 8-bit gray or RGB ([`Plane::Color`]), or
/// to one full-range alpha channel ([`Plane::Alpha`]).
fn to_pixels(pic: &Picture, plane: Plane, max_pixels: u64) -> Result<Pixels, PipelineError> {
    let (w, h) = (pic.0.p.w as usize, pic.0.p.h as usize);
    if w == 0 || h == 0 || (w as u64) * (h as u64) > max_pixels {
        return Err(corrupt("bad frame size"));
    }
    let full = pic.full_range();
    // Luma/chroma offsets and scales for limited range (8-bit terms).
    let (y_off, y_scale, c_scale) = if full {
        (0.0, 1.0, 1.0)
    } else {
        (16.0, 255.0 / 219.0, 255.0 / 224.0)
    };
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let ys = pic.sampler(0)?;
    let gray = plane == Plane::Alpha || pic.0.p.layout == DAV1D_PIXEL_LAYOUT_I400;
    let ch = if gray { 1 } else { 3 };
    let mut out = Vec::new();
    out.try_reserve_exact(w * h * ch)
        .map_err(|_| corrupt("image is too large for this machine"))?;
    if gray {
        for y in 0..h {
            out.extend((0..w).map(|x| clamp((ys(x, y) - y_off) * y_scale)));
        }
        return Ok(Pixels::new(w as u32, h as u32, 1, out));
    }
    let (ssx, ssy) = pic.subsampling();
    let (kr, kb) = match pic.matrix() {
        DAV1D_MC_BT709 => (0.2126, 0.0722),
        DAV1D_MC_BT2020_NCL | DAV1D_MC_BT2020_CL => (0.2627, 0.0593),
        _ => (0.299, 0.114),
    };
    let identity = pic.matrix() == DAV1D_MC_IDENTITY;
    let kg = 1.0 - kr - kb;
    let (us, vs) = (pic.sampler(1)?, pic.sampler(2)?);
    for y in 0..h {
        for x in 0..w {
            let yv = (ys(x, y) - y_off) * y_scale;
            let (cx, cy) = (x >> ssx, y >> ssy);
            let (u, v) = (us(cx, cy), vs(cx, cy));
            let (r, g, b) = if identity {
                // GBR: Y = G, U = B, V = R
                ((v - y_off) * y_scale, yv, (u - y_off) * y_scale)
            } else {
                let (cb, cr) = ((u - 128.0) * c_scale, (v - 128.0) * c_scale);
                let r = yv + 2.0 * (1.0 - kr) * cr;
                let b = yv + 2.0 * (1.0 - kb) * cb;
                let g = (yv - kr * r - kb * b) / kg;
                (r, g, b)
            };
            out.extend_from_slice(&[clamp(r), clamp(g), clamp(b)]);
        }
    }
    Ok(Pixels::new(w as u32, h as u32, 3, out))
}
