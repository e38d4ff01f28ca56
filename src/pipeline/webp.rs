//! Every call into libwebp, behind safe functions: the header parser,
//! the still decoder, the animation decoder (which composites frames on the
//! canvas) and both encoders. Like `jpeg.rs` for libjpeg, this is the one
//! file with libwebp `unsafe`.
//!
//! Why libwebp rather than the `image` crate's pure-Rust WebP: it is the
//! reference codec, several times faster, and the only one that encodes
//! lossy and animated WebP.

use super::error::PipelineError;
use super::pixels::Pixels;

/// WebP's format limit on either side.
pub(crate) const MAX_SIDE: u32 = 16383;

fn check_output_size(w: u32, h: u32) -> Result<(), PipelineError> {
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(PipelineError::Unsupported(format!(
            "{w}x{h} is too large for WebP output (max {MAX_SIDE})"
        )));
    }
    Ok(())
}

/// What a simple (VP8/VP8L-only) file's bitstream header says.
pub(crate) struct Features {
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
}

/// libwebp's header parser: allocates nothing, reads only `d`.
pub(crate) fn features(d: &[u8]) -> Result<Features, PipelineError> {
    let mut f = libwebp_sys::WebPBitstreamFeatures {
        width: 0,
        height: 0,
        has_alpha: 0,
        has_animation: 0,
        format: 0,
        pad: [0; 5],
    };
    // SAFETY: reads at most `d.len()` bytes from a valid slice and
    // writes only into `f`.
    let status = unsafe { libwebp_sys::WebPGetFeatures(d.as_ptr(), d.len(), &mut f) };
    if status != libwebp_sys::VP8StatusCode::VP8_STATUS_OK {
        return Err(PipelineError::corrupt("WebP header is invalid"));
    }
    Ok(Features {
        width: f.width.max(0) as u32,
        height: f.height.max(0) as u32,
        has_alpha: f.has_alpha != 0,
    })
}

/// Still WebP through libwebp's one-shot decoder, into a buffer we own.
pub(crate) fn decode(data: &[u8], w: u32, h: u32, alpha: bool) -> Result<Pixels, PipelineError> {
    let ch: u8 = if alpha { 4 } else { 3 };
    let stride = w as usize * ch as usize;
    let mut buf = Pixels::zeroed_buffer(stride as u64 * u64::from(h))?;
    let stride_c =
        i32::try_from(stride).map_err(|_| PipelineError::Unsupported("WebP is too wide".into()))?;
    let decode_into = if alpha {
        libwebp_sys::WebPDecodeRGBAInto
    } else {
        libwebp_sys::WebPDecodeRGBInto
    };
    // SAFETY: `buf` holds exactly stride * h bytes; libwebp writes at most
    // that (it checks the size we pass) and reads only `data`.
    let out = unsafe {
        decode_into(
            data.as_ptr(),
            data.len(),
            buf.as_mut_ptr(),
            buf.len(),
            stride_c,
        )
    };
    if out.is_null() {
        return Err(PipelineError::Corrupt(
            "WebP data is truncated or corrupt".into(),
        ));
    }
    Ok(Pixels::new(w, h, ch, buf))
}

/// First frame of an animated WebP, composited on its canvas.
pub(crate) fn decode_first_frame(data: &[u8]) -> Result<Pixels, PipelineError> {
    match AnimReader::new(data)?.next_frame()? {
        Some((px, _)) => Ok(px),
        None => Err(PipelineError::corrupt("animated WebP has no frames")),
    }
}

/// Lossy still WebP at `quality` (1..=100); `px` is RGB or RGBA.
pub(crate) fn encode(px: Pixels, quality: u8) -> Result<Vec<u8>, PipelineError> {
    check_output_size(px.w, px.h)?;
    let stride = (px.w * u32::from(px.ch)) as i32;
    let mut out: *mut u8 = std::ptr::null_mut();
    let encode = if px.ch == 4 {
        libwebp_sys::WebPEncodeRGBA
    } else {
        libwebp_sys::WebPEncodeRGB
    };
    // SAFETY: `px.data` holds w*h*ch bytes with the given stride; libwebp
    // allocates `out`, which we copy and free with WebPFree.
    unsafe {
        let (w, h, q) = (px.w as i32, px.h as i32, f32::from(quality));
        let len = encode(px.data.as_ptr(), w, h, stride, q, &mut out);
        if len == 0 || out.is_null() {
            if !out.is_null() {
                libwebp_sys::WebPFree(out.cast());
            }
            return Err(PipelineError::Internal(
                "WebP encoder failed: no output".into(),
            ));
        }
        let bytes = std::slice::from_raw_parts(out, len).to_vec();
        libwebp_sys::WebPFree(out.cast());
        Ok(bytes)
    }
}

/// libwebp's animation decoder, which composites every frame on the
/// canvas (blending and disposal done), as a safe iterator of frames.
pub(crate) struct AnimReader<'a> {
    dec: *mut libwebp_sys::WebPAnimDecoder,
    info: libwebp_sys::WebPAnimInfo,
    /// The decoder reads from these bytes until it is deleted.
    _src: std::marker::PhantomData<&'a [u8]>,
}

impl Drop for AnimReader<'_> {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimDecoderNew, deleted once.
        unsafe { libwebp_sys::WebPAnimDecoderDelete(self.dec) }
    }
}

fn webp_corrupt() -> PipelineError {
    PipelineError::Corrupt("animated WebP is truncated or corrupt".into())
}

impl<'a> AnimReader<'a> {
    /// A decoder over `src` (a WebP file, animated or not).
    pub(crate) fn new(src: &'a [u8]) -> Result<Self, PipelineError> {
        use libwebp_sys as w;
        // SAFETY: the options and info structs are initialised by libwebp
        // before use; the decoder borrows `src`, which the lifetime 'a
        // keeps alive until Drop deletes the decoder.
        unsafe {
            let mut opts: w::WebPAnimDecoderOptions = std::mem::zeroed();
            if w::WebPAnimDecoderOptionsInit(&mut opts) == 0 {
                return Err(PipelineError::Internal("libwebp version mismatch".into()));
            }
            opts.color_mode = w::WEBP_CSP_MODE::MODE_RGBA;
            opts.use_threads = 0;
            let data = w::WebPData {
                bytes: src.as_ptr(),
                size: src.len(),
            };
            let dec = w::WebPAnimDecoderNew(&data, &opts);
            if dec.is_null() {
                return Err(webp_corrupt());
            }
            let mut reader = AnimReader {
                dec,
                info: std::mem::zeroed(),
                _src: std::marker::PhantomData,
            };
            if w::WebPAnimDecoderGetInfo(reader.dec, &mut reader.info) == 0 {
                return Err(webp_corrupt());
            }
            Ok(reader)
        }
    }

    /// How often the animation plays (0: forever).
    pub(crate) fn loop_count(&self) -> u32 {
        self.info.loop_count
    }

    /// The next frame, composited on the whole canvas (RGBA), and the time
    /// in milliseconds at which it stops showing; `None` after the last.
    pub(crate) fn next_frame(&mut self) -> Result<Option<(Pixels, i32)>, PipelineError> {
        use libwebp_sys as w;
        let (cw, ch) = (self.info.canvas_width, self.info.canvas_height);
        // SAFETY: the decoder is alive; the frame buffer it returns holds
        // canvas_width * canvas_height * 4 bytes, belongs to the decoder
        // and is copied before the next call.
        unsafe {
            if w::WebPAnimDecoderHasMoreFrames(self.dec) == 0 {
                return Ok(None);
            }
            let mut frame: *mut u8 = std::ptr::null_mut();
            let mut ends_at = 0;
            if w::WebPAnimDecoderGetNext(self.dec, &mut frame, &mut ends_at) == 0 || frame.is_null()
            {
                return Err(webp_corrupt());
            }
            let len = cw as usize * ch as usize * 4;
            let mut buf = Vec::new();
            buf.try_reserve_exact(len)
                .map_err(|_| PipelineError::too_large_for_machine())?;
            buf.extend_from_slice(std::slice::from_raw_parts(frame, len));
            Ok(Some((Pixels::new(cw, ch, 4, buf), ends_at)))
        }
    }
}

/// libwebp's animation encoder, frame by frame.
pub(crate) struct AnimEncoder {
    enc: *mut libwebp_sys::WebPAnimEncoder,
    config: libwebp_sys::WebPConfig,
    w: u32,
    h: u32,
    /// When the next frame starts, in milliseconds.
    at_ms: i32,
}

impl Drop for AnimEncoder {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimEncoderNewInternal, deleted once.
        unsafe { libwebp_sys::WebPAnimEncoderDelete(self.enc) }
    }
}

impl AnimEncoder {
    /// An encoder for `w` x `h` frames at `quality` (lossy, like still WebP
    /// output) that loops `loop_count` times (0: forever).
    pub(crate) fn new(w: u32, h: u32, quality: u8, loop_count: u32) -> Result<Self, PipelineError> {
        use libwebp_sys as x;
        check_output_size(w, h)?;
        let version = |v: u32| v as std::ffi::c_int;
        // SAFETY: both structs are initialised by libwebp before use; the
        // encoder is deleted by Drop.
        unsafe {
            let mut opts: x::WebPAnimEncoderOptions = std::mem::zeroed();
            if x::WebPAnimEncoderOptionsInitInternal(&mut opts, version(x::WEBP_MUX_ABI_VERSION))
                == 0
            {
                return Err(PipelineError::Internal("libwebp version mismatch".into()));
            }
            opts.anim_params.loop_count = i32::try_from(loop_count).unwrap_or(0);
            // Transparent background, as browsers show an animation's
            // uncovered canvas.
            opts.anim_params.bgcolor = 0;
            let mut config: x::WebPConfig = std::mem::zeroed();
            if x::WebPConfigInitInternal(
                &mut config,
                x::WebPPreset::WEBP_PRESET_DEFAULT,
                f32::from(quality.clamp(1, 100)),
                version(x::WEBP_ENCODER_ABI_VERSION),
            ) == 0
                || x::WebPValidateConfig(&config) == 0
            {
                return Err(PipelineError::Internal("libwebp version mismatch".into()));
            }
            let enc = x::WebPAnimEncoderNewInternal(
                w as i32,
                h as i32,
                &opts,
                version(x::WEBP_MUX_ABI_VERSION),
            );
            if enc.is_null() {
                return Err(PipelineError::Internal(
                    "WebP animation encoder failed to start".into(),
                ));
            }
            Ok(AnimEncoder {
                enc,
                config,
                w,
                h,
                at_ms: 0,
            })
        }
    }

    /// Adds a frame shown for `ms` milliseconds. `px` must be RGB or RGBA
    /// at the encoder's size.
    pub(crate) fn add(&mut self, px: &Pixels, ms: u32) -> Result<(), PipelineError> {
        use libwebp_sys as x;
        if (px.w, px.h) != (self.w, self.h) || !(px.ch == 3 || px.ch == 4) {
            return Err(PipelineError::Internal(format!(
                "animation frame {}x{}x{} for a {}x{} canvas",
                px.w, px.h, px.ch, self.w, self.h
            )));
        }
        // SAFETY: the picture is initialised by libwebp, imports `px.data`
        // (w*h*ch bytes at the given stride) into its own buffers, and is
        // freed on every path after the encoder has copied it.
        unsafe {
            let mut pic: x::WebPPicture = std::mem::zeroed();
            if x::WebPPictureInitInternal(&mut pic, x::WEBP_ENCODER_ABI_VERSION as _) == 0 {
                return Err(PipelineError::Internal("libwebp version mismatch".into()));
            }
            pic.use_argb = 1;
            pic.width = self.w as i32;
            pic.height = self.h as i32;
            let stride = (self.w * u32::from(px.ch)) as i32;
            let imported = if px.ch == 4 {
                x::WebPPictureImportRGBA(&mut pic, px.data.as_ptr(), stride)
            } else {
                x::WebPPictureImportRGB(&mut pic, px.data.as_ptr(), stride)
            };
            let added = imported != 0
                && x::WebPAnimEncoderAdd(self.enc, &mut pic, self.at_ms, &self.config) != 0;
            x::WebPPictureFree(&mut pic);
            if !added {
                return Err(self.error());
            }
        }
        self.at_ms = self
            .at_ms
            .saturating_add(i32::try_from(ms).unwrap_or(i32::MAX));
        Ok(())
    }

    /// The finished file.
    pub(crate) fn finish(self) -> Result<Vec<u8>, PipelineError> {
        use libwebp_sys as x;
        // SAFETY: a null frame marks the end (its timestamp is the last
        // frame's end); the assembled data is copied, then freed by
        // libwebp's WebPFree through WebPDataClear.
        unsafe {
            if x::WebPAnimEncoderAdd(self.enc, std::ptr::null_mut(), self.at_ms, std::ptr::null())
                == 0
            {
                return Err(self.error());
            }
            let mut data = x::WebPData::default();
            if x::WebPAnimEncoderAssemble(self.enc, &mut data) == 0 || data.bytes.is_null() {
                return Err(self.error());
            }
            let out = std::slice::from_raw_parts(data.bytes, data.size).to_vec();
            x::WebPDataClear(&mut data);
            Ok(out)
        }
    }

    fn error(&self) -> PipelineError {
        // SAFETY: the encoder is alive; the message is a NUL-terminated
        // string owned by it, copied at once.
        let msg = unsafe {
            let p = libwebp_sys::WebPAnimEncoderGetError(self.enc);
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        PipelineError::Internal(format!("WebP animation encoder failed: {msg}"))
    }
}
