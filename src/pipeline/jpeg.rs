//! JPEG decoding through libjpeg-turbo (the `mozjpeg` crate), with
//! DCT-domain downscaling and strict error handling.
//!
//! Why libjpeg and not a pure-Rust decoder: `scale_num/scale_denom` lets
//! the IDCT produce a 1/2, 1/4 or 1/8 size image directly, skipping most of
//! the IDCT, upsampling and colour conversion work for thumbnails — the
//! single biggest speed win for the common case.
//!
//! Why a custom error manager: libjpeg treats a truncated file as a
//! *warning* and pads it with grey, which would let us cache a half image.
//! Here corruption warnings unwind like errors, and every call into libjpeg
//! runs under `catch_unwind`, turning both into [`PipelineError::Corrupt`].

use std::cell::Cell;
use std::mem;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys as ffi;

use super::color;
use super::error::PipelineError;
use super::jpeg_dc;
use super::jpeg_segments::{Segments, EOI, SOS};
use super::pixels::Pixels;
use super::probe::Probe;
use super::resize::{self, Plan};

/// libjpeg warnings that mean the pixel data is damaged or missing. Other
/// warnings (extraneous bytes, odd JFIF versions, bogus ICC markers) are
/// common in real files and harmless.
///
/// Running out of input (`JWRN_JPEG_EOF`) is special: libjpeg reads ahead,
/// so a baseline file that merely lacks its EOI marker hits EOF after all
/// its data was used; real truncation then shows up as `JWRN_HIT_MARKER`
/// when the decoder needs bits that are not there. A progressive file cut
/// between two scans produces no other warning, so there EOF is fatal.
const FATAL_WARNINGS: [c_int; 5] = [
    ffi::JWRN_HIT_MARKER as c_int,
    ffi::JWRN_MUST_RESYNC as c_int,
    ffi::JWRN_HUFF_BAD_CODE as c_int,
    ffi::JWRN_NOT_SEQUENTIAL as c_int,
    ffi::JWRN_BOGUS_PROGRESSION as c_int,
];

fn message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    // SAFETY: `err` was set by `Decompress` to our error manager, which
    // lives as long as the decompressor; `format_message` writes at most
    // JMSG_LENGTH_MAX (80) bytes into the buffer.
    unsafe {
        let Some(err) = cinfo.err.as_ref() else {
            return "libjpeg error".into();
        };
        let code = err.msg_code;
        match err.format_message {
            Some(fmt) => {
                let mut buf = [0u8; 80];
                // The binding declares the buffer `&[u8; 80]`, but libjpeg
                // writes into it; pass it through a raw pointer.
                let f: unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, *mut u8) =
                    mem::transmute(fmt);
                f(cinfo, buf.as_mut_ptr());
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            }
            None => format!("libjpeg error {code}"),
        }
    }
}

extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let msg = message(cinfo);
    // resume_unwind skips the panic hook: no noise on stderr.
    std::panic::resume_unwind(Box::new(msg));
}

thread_local! {
    /// Whether the file being decoded on this thread is progressive (EOF
    /// is then fatal, see [`FATAL_WARNINGS`]).
    static PROGRESSIVE: Cell<bool> = const { Cell::new(false) };
}

extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // SAFETY: see `message`.
    let code = unsafe { cinfo.err.as_ref().map_or(0, |e| e.msg_code) };
    let eof_fatal = code == ffi::JWRN_JPEG_EOF as c_int && PROGRESSIVE.with(Cell::get);
    if level < 0 && (FATAL_WARNINGS.contains(&code) || eof_fatal) {
        let msg = message(cinfo);
        std::panic::resume_unwind(Box::new(msg));
    }
}

fn strict_error_mgr() -> ffi::jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is plain data (pointers, ints, Option<fn>),
    // valid when zeroed; jpeg_std_error fills in the defaults.
    unsafe {
        let mut err: ffi::jpeg_error_mgr = mem::zeroed();
        ffi::jpeg_std_error(&mut err);
        err.error_exit = Some(error_exit);
        err.emit_message = Some(emit_message);
        err
    }
}

/// What the decoder produced, before CMYK conversion.
pub(crate) enum JpegPixels {
    /// Gray (1 channel) or RGB (3 channels).
    Ready(Pixels),
    /// 4 channels of CMYK as libjpeg outputs them (YCCK already converted
    /// to CMYK); whether they are inverted depends on the Adobe marker.
    Cmyk(Pixels),
}

/// Decodes a JPEG whose probe is `info` at the smallest DCT scale that
/// still gives `plan` (stored orientation) all the pixels it needs: 1/2,
/// 1/4 or 1/8 of the size when it can, which skips most of the IDCT,
/// upsampling and colour work. A progressive file at 1/8 goes to the
/// DC-only decoder when it is in its scope, otherwise to libjpeg on a copy
/// without the AC scans it would not use. CMYK comes out as RGB.
pub(crate) fn decode_scaled(
    src: &[u8],
    info: &Probe,
    plan: &Plan,
) -> Result<Pixels, PipelineError> {
    let num = resize::jpeg_scale(info.width, info.height, plan);
    if info.progressive {
        check_scan_count(src)?;
    }
    let dc_only = info.progressive && num == 1;
    if dc_only {
        if let Some(px) = jpeg_dc::decode(src) {
            return Ok(px);
        }
    }
    let filtered;
    let data = if dc_only {
        filtered = without_ac_scans(src)?;
        &filtered[..]
    } else {
        src
    };
    Ok(match decode(data, num, info.progressive)? {
        JpegPixels::Ready(px) => px,
        JpegPixels::Cmyk(px) => color::cmyk_to_rgb(px, info.adobe, info.icc.as_deref()),
    })
}

/// Decodes `data` at `scale_num / 8` of its size (1, 2, 4 or 8).
/// `progressive` comes from the probe (SOF2).
pub(crate) fn decode(
    data: &[u8],
    scale_num: u8,
    progressive: bool,
) -> Result<JpegPixels, PipelineError> {
    PROGRESSIVE.with(|p| p.set(progressive));
    let result = catch_unwind(AssertUnwindSafe(|| decode_inner(data, scale_num)));
    match result {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "JPEG decoder failed".into());
            Err(PipelineError::Corrupt(msg))
        }
    }
}

/// For a progressive JPEG decoded at 1/8 scale, most components only use
/// the DC coefficient of each block (the 1x1 IDCT is the block average),
/// but libjpeg would still entropy-decode every AC scan — most of the file
/// and most of the time. This returns a copy of the file without the AC
/// scans of those components: a valid progressive JPEG whose 1/8 decode is
/// identical. Subsampled chroma is kept whole, because libjpeg scales it up
/// with a 2x2 (or larger) IDCT that does read AC coefficients; the rule
/// below mirrors `jdmaster.c`'s choice of per-component IDCT size.
///
/// The walk requires the EOI marker at the end, so a file truncated inside
/// a skipped scan is still refused.
fn without_ac_scans(d: &[u8]) -> Result<Vec<u8>, PipelineError> {
    let truncated = || PipelineError::corrupt("JPEG is truncated");
    let mut out = Vec::with_capacity(d.len() / 4);
    out.extend_from_slice(d.get(..2).ok_or_else(truncated)?);
    let mut dc_only: Vec<u8> = Vec::new();
    for seg in Segments::new(d) {
        let seg = seg.map_err(|_| truncated())?;
        let payload = &d[seg.payload.clone()];
        if matches!(seg.marker, 0xC0..=0xC2) {
            dc_only = dc_only_components(payload);
        }
        if seg.marker == SOS {
            let ns = usize::from(*payload.first().ok_or_else(truncated)?);
            let ss = *payload.get(1 + 2 * ns).ok_or_else(truncated)?;
            let first_id = *payload.get(1).ok_or_else(truncated)?;
            if ss > 0 && ns == 1 && dc_only.contains(&first_id) {
                continue;
            }
        }
        out.extend_from_slice(&d[seg.at..seg.end()]);
        if seg.marker == EOI {
            return Ok(out);
        }
    }
    Err(truncated())
}

/// Most scans a progressive JPEG may have. Every scan makes libjpeg walk
/// all blocks of its components, so a small file with thousands of tiny
/// scans is a CPU bomb; real encoders emit about ten. 500 is TurboJPEG's
/// own recommended limit.
const MAX_SCANS: usize = 500;

/// Refuses progressive files with more than [`MAX_SCANS`] scans. Only
/// marker walking and a byte search per scan: cheap next to decoding.
/// A file that ends early passes here and is reported by the decoder.
fn check_scan_count(d: &[u8]) -> Result<(), PipelineError> {
    let mut scans = 0usize;
    // A walk that stops early (truncated file) is the decoder's to report.
    for seg in Segments::new(d).map_while(Result::ok) {
        if seg.marker == SOS {
            scans += 1;
            if scans > MAX_SCANS {
                return Err(PipelineError::Unsupported(format!(
                    "progressive JPEG with more than {MAX_SCANS} scans"
                )));
            }
        }
    }
    Ok(())
}

/// Component ids whose IDCT at 1/8 scale is 1x1 (libjpeg's rule: a
/// component is scaled up by IDCT only when both its sampling factors
/// divide the maximum by two).
fn dc_only_components(sof: &[u8]) -> Vec<u8> {
    let n = usize::from(sof.get(5).copied().unwrap_or(0));
    let comps: Vec<(u8, u8, u8)> = (0..n)
        .filter_map(|i| {
            let c = sof.get(6 + 3 * i..9 + 3 * i)?;
            Some((c[0], c[1] >> 4, c[1] & 15))
        })
        .collect();
    let max_h = comps.iter().map(|c| c.1).max().unwrap_or(1);
    let max_v = comps.iter().map(|c| c.2).max().unwrap_or(1);
    comps
        .iter()
        .filter(|&&(_, h, v)| h == 0 || v == 0 || max_h % (h * 2) != 0 || max_v % (v * 2) != 0)
        .map(|c| c.0)
        .collect()
}

fn decode_inner(data: &[u8], scale_num: u8) -> Result<JpegPixels, PipelineError> {
    let io = |e: std::io::Error| PipelineError::Corrupt(format!("JPEG: {e}"));
    let mut d = Decompress::builder()
        .with_err(strict_error_mgr())
        .from_mem(data)
        .map_err(io)?;
    d.scale(scale_num.clamp(1, 8));
    // Block smoothing only guesses missing AC coefficients of incomplete
    // progressive files; complete files are unaffected, and files filtered
    // by `without_ac_scans` must not get guessed coefficients.
    d.do_block_smoothing(false);
    let (cs, cmyk) = match d.color_space() {
        ffi::J_COLOR_SPACE::JCS_GRAYSCALE => (ColorSpace::JCS_GRAYSCALE, false),
        ffi::J_COLOR_SPACE::JCS_CMYK | ffi::J_COLOR_SPACE::JCS_YCCK => (ColorSpace::JCS_CMYK, true),
        _ => (ColorSpace::JCS_RGB, false),
    };
    let mut started = d.to_colorspace(cs).map_err(io)?;
    let (w, h) = (started.width() as u32, started.height() as u32);
    let data: Vec<u8> = started.read_scanlines().map_err(io)?;
    let ch = if cmyk {
        4
    } else if cs == ColorSpace::JCS_GRAYSCALE {
        1
    } else {
        3
    };
    if data.len() != w as usize * h as usize * ch {
        return Err(PipelineError::Corrupt(
            "JPEG image data is incomplete".into(),
        ));
    }
    // Not calling finish(): all scanlines are in, and a file that merely
    // lacks its EOI marker is still a complete image.
    drop(started);
    let px = Pixels::new(w, h, ch as u8, data);
    Ok(if cmyk {
        JpegPixels::Cmyk(px)
    } else {
        JpegPixels::Ready(px)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use img_proxy_test_support::jpeg;
    use jpeg_encoder::{ColorType as JColor, SamplingFactor};

    #[test]
    fn progressive_dc_only_shortcut_is_exact() {
        // A textured image so the AC scans carry real data.
        let (w, h) = (96usize, 64usize);
        let data: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [
                    (x * 7 + y * 3) as u8,
                    ((x ^ y) * 5) as u8,
                    ((x * y) % 251) as u8,
                ]
            })
            .collect();
        let pixels = |d: &[u8]| match decode(d, 1, true).expect("decode") {
            JpegPixels::Ready(p) => p,
            JpegPixels::Cmyk(p) => p,
        };
        let mut prog = Vec::new();
        for sampling in [
            SamplingFactor::F_2_2,
            SamplingFactor::F_2_1,
            SamplingFactor::F_1_1,
        ] {
            prog = jpeg(&data, w as u16, h as u16, JColor::Rgb, |e| {
                e.set_progressive(true);
                e.set_sampling_factor(sampling);
            });
            let slim = without_ac_scans(&prog).expect("filter");
            assert!(
                slim.len() * 2 < prog.len(),
                "{} vs {}",
                slim.len(),
                prog.len()
            );
            assert_eq!(pixels(&prog), pixels(&slim), "{sampling:?}");
        }
        // Truncation inside a skipped scan is still an error.
        assert!(without_ac_scans(&prog[..prog.len() * 3 / 4]).is_err());
    }
}
