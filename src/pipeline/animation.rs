//! Animated output: an animated GIF or WebP asked for WebP output stays
//! animated, every frame resized, cropped or padded like a still image.
//!
//! Only WebP output animates: it is the one format we write that every
//! current browser plays (an animated AVIF needs an AV1 sequence encoder,
//! and JPEG has no animation). Any other output format, or an animation
//! too large to redo within the pixel budget, gets the first frame, as
//! before. The budget: the source canvas and the output canvas, each times
//! the number of frames, must stay within `MAX_SOURCE_PIXELS`, so that a
//! small file of many frames cannot buy minutes of CPU.
//!
//! Frames are decoded, resized and handed to libwebp's animation encoder
//! one at a time; only the encoder's own state and one frame are held.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::{AnimationDecoder, ImageDecoder};

use super::decode::{image_limits, img_err};
use super::pixels::Pixels;
use super::sniff::SourceFormat;
use super::transform::PipelineError;

/// Browsers play GIF frames with a delay of 10 ms or less at 100 ms; the
/// WebP we write must look the same, so such delays are rewritten.
const MIN_DELAY_MS: u32 = 20;
const SLOW_DELAY_MS: u32 = 100;

/// One frame as [`for_each_frame`] hands it over.
pub(crate) struct Frame {
    /// The whole canvas, composited, RGBA.
    pub px: Pixels,
    /// How long it shows, in milliseconds.
    pub ms: u32,
    /// How often the animation plays (0: forever, as in WebP).
    pub loop_count: u32,
}

/// Calls `each` with every frame of an animated GIF or WebP, in order.
pub(crate) fn for_each_frame(
    src: &[u8],
    format: SourceFormat,
    max_pixels: u64,
    each: impl FnMut(Frame) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    match format {
        SourceFormat::Gif => gif_frames(src, max_pixels, each),
        SourceFormat::WebP => webp_frames(src, each),
        _ => Err(PipelineError::Internal(
            "animation requested for a still format".into(),
        )),
    }
}

fn gif_frames(
    src: &[u8],
    max_pixels: u64,
    mut each: impl FnMut(Frame) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let mut dec = GifDecoder::new(Cursor::new(src)).map_err(img_err)?;
    // As for the first frame alone (decode::decode_gif): the canvas and
    // the decoder's working frame.
    dec.set_limits(image_limits(max_pixels, max_pixels.saturating_mul(8)))
        .map_err(img_err)?;
    let loop_count = match dec.loop_count() {
        image::metadata::LoopCount::Infinite => 0,
        image::metadata::LoopCount::Finite(n) => n.get().min(u32::from(u16::MAX)),
    };
    for frame in dec.into_frames() {
        let frame = frame.map_err(img_err)?;
        let (num, den) = frame.delay().numer_denom_ms();
        let ms = num / den.max(1);
        let ms = if ms < MIN_DELAY_MS { SLOW_DELAY_MS } else { ms };
        let buf = frame.into_buffer();
        let (w, h) = buf.dimensions();
        each(Frame {
            px: Pixels::new(w, h, 4, buf.into_raw()),
            ms,
            loop_count,
        })?;
    }
    Ok(())
}

fn webp_frames(
    src: &[u8],
    mut each: impl FnMut(Frame) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let mut reader = WebPAnimReader::new(src)?;
    let loop_count = reader.loop_count();
    let mut shown_until = 0;
    while let Some((px, ends_at)) = reader.next_frame()? {
        let ms = u32::try_from(ends_at - shown_until).unwrap_or(0);
        shown_until = ends_at;
        each(Frame { px, ms, loop_count })?;
    }
    Ok(())
}

/// libwebp's animation decoder, which composites every frame on the
/// canvas (blending and disposal done), as a safe iterator of frames.
pub(crate) struct WebPAnimReader<'a> {
    dec: *mut libwebp_sys::WebPAnimDecoder,
    info: libwebp_sys::WebPAnimInfo,
    /// The decoder reads from these bytes until it is deleted.
    _src: std::marker::PhantomData<&'a [u8]>,
}

impl Drop for WebPAnimReader<'_> {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimDecoderNew, deleted once.
        unsafe { libwebp_sys::WebPAnimDecoderDelete(self.dec) }
    }
}

fn webp_corrupt() -> PipelineError {
    PipelineError::Corrupt("animated WebP is truncated or corrupt".into())
}

impl<'a> WebPAnimReader<'a> {
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
            let mut reader = WebPAnimReader {
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
            buf.try_reserve_exact(len).map_err(|_| {
                PipelineError::Corrupt("image is too large for this machine".into())
            })?;
            buf.extend_from_slice(std::slice::from_raw_parts(frame, len));
            Ok(Some((Pixels::new(cw, ch, 4, buf), ends_at)))
        }
    }
}

/// libwebp's animation encoder, frame by frame.
pub(crate) struct WebPAnimation {
    enc: *mut libwebp_sys::WebPAnimEncoder,
    config: libwebp_sys::WebPConfig,
    w: u32,
    h: u32,
    /// When the next frame starts, in milliseconds.
    at_ms: i32,
}

impl Drop for WebPAnimation {
    fn drop(&mut self) {
        // SAFETY: created by WebPAnimEncoderNewInternal, deleted once.
        unsafe { libwebp_sys::WebPAnimEncoderDelete(self.enc) }
    }
}

impl WebPAnimation {
    /// An encoder for `w` x `h` frames at `quality` (lossy, like still WebP
    /// output) that loops `loop_count` times (0: forever).
    pub(crate) fn new(w: u32, h: u32, quality: u8, loop_count: u32) -> Result<Self, PipelineError> {
        use libwebp_sys as x;
        const MAX: u32 = 16383; // WebP's format limit
        if w > MAX || h > MAX {
            return Err(PipelineError::Unsupported(format!(
                "{w}x{h} is too large for WebP output (max {MAX})"
            )));
        }
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
            Ok(WebPAnimation {
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
