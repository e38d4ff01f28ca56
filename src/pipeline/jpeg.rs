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

use super::pixels::Pixels;
use super::transform::PipelineError;

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
pub(crate) fn without_ac_scans(d: &[u8]) -> Result<Vec<u8>, PipelineError> {
    let truncated = || PipelineError::Corrupt("JPEG is truncated".into());
    let mut out = Vec::with_capacity(d.len() / 4);
    out.extend_from_slice(d.get(..2).ok_or_else(truncated)?);
    let mut dc_only: Vec<u8> = Vec::new();
    let mut pos = 2usize;
    loop {
        if d.get(pos) != Some(&0xFF) {
            return Err(PipelineError::Corrupt("JPEG marker expected".into()));
        }
        while d.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let m = *d.get(pos + 1).ok_or_else(truncated)?;
        match m {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(out);
            }
            0xD8 | 0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, m]);
                pos += 2;
                continue;
            }
            _ => {}
        }
        let len = d
            .get(pos + 2..pos + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(truncated)?;
        let seg_end = pos + 2 + len;
        if len < 2 || seg_end > d.len() {
            return Err(truncated());
        }
        if matches!(m, 0xC0..=0xC2) {
            dc_only = dc_only_components(&d[pos + 4..seg_end]);
        }
        if m != 0xDA {
            out.extend_from_slice(&d[pos..seg_end]);
            pos = seg_end;
            continue;
        }
        // SOS: header, then entropy-coded data up to the next marker that is
        // neither a stuffed 0xFF00 nor a restart marker.
        let ns = usize::from(*d.get(pos + 4).ok_or_else(truncated)?);
        let ss = *d.get(pos + 5 + 2 * ns).ok_or_else(truncated)?;
        let first_id = *d.get(pos + 5).ok_or_else(truncated)?;
        let skip = ss > 0 && ns == 1 && dc_only.contains(&first_id);
        let end = entropy_end(d, seg_end).ok_or_else(truncated)?;
        if !skip {
            out.extend_from_slice(&d[pos..end]);
        }
        pos = end;
    }
}

/// End of the entropy-coded data that starts at `from`: the next marker
/// that is neither a stuffed 0xFF00 nor a restart marker. `None` if the
/// data ends first (truncated file).
pub(crate) fn entropy_end(d: &[u8], from: usize) -> Option<usize> {
    let mut end = from;
    loop {
        end += d.get(end..)?.iter().position(|&b| b == 0xFF)?;
        match d.get(end + 1)? {
            0x00 | 0xD0..=0xD7 => end += 2,
            0xFF => end += 1,
            _ => return Some(end),
        }
    }
}

/// Most scans a progressive JPEG may have. Every scan makes libjpeg walk
/// all blocks of its components, so a small file with thousands of tiny
/// scans is a CPU bomb; real encoders emit about ten. 500 is TurboJPEG's
/// own recommended limit.
pub(crate) const MAX_SCANS: usize = 500;

/// Refuses progressive files with more than [`MAX_SCANS`] scans. Only
/// marker walking and a byte search per scan: cheap next to decoding.
/// A file that ends early passes here and is reported by the decoder.
pub(crate) fn check_scan_count(d: &[u8]) -> Result<(), PipelineError> {
    let mut pos = 2usize;
    let mut scans = 0usize;
    while d.get(pos) == Some(&0xFF) {
        while d.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&m) = d.get(pos + 1) else { break };
        match m {
            0xD9 => break,
            0xD8 | 0x01 | 0xD0..=0xD7 => {
                pos += 2;
                continue;
            }
            _ => {}
        }
        let Some(len) = d.get(pos + 2..pos + 4) else {
            break;
        };
        let seg_end = pos + 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        if m != 0xDA {
            pos = seg_end;
            continue;
        }
        scans += 1;
        if scans > MAX_SCANS {
            return Err(PipelineError::Unsupported(format!(
                "progressive JPEG with more than {MAX_SCANS} scans"
            )));
        }
        match entropy_end(d, seg_end) {
            Some(end) => pos = end,
            None => break,
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
