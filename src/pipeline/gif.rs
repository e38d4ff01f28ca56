//! GIF: the block walker that the probe and the truncation check share,
//! and decoding through the `image` crate (first frame, or every frame for
//! animated output).

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::{AnimationDecoder, ImageDecoder};

use super::bytes::le16;
use super::error::{check_pixels, PipelineError};
use super::gif_palette::with_default_palette;
use super::limits::image_limits;
use super::pixels::Pixels;

/// Browsers play GIF frames with a delay of 10 ms or less at 100 ms; the
/// WebP we write must look the same, so such delays are rewritten.
const MIN_DELAY_MS: u32 = 20;
const SLOW_DELAY_MS: u32 = 100;

/// One frame of an animation, composited on the whole canvas (RGBA).
pub(crate) struct Frame {
    pub px: Pixels,
    /// How long it shows, in milliseconds.
    pub ms: u32,
    /// How often the animation plays (0: forever, as in WebP).
    pub loop_count: u32,
}

/// First frame of a GIF, composited onto the logical screen.
pub(crate) fn decode_first_frame(data: &[u8], max_pixels: u64) -> Result<Pixels, PipelineError> {
    let patched = with_default_palette(data);
    let data = patched.as_deref().unwrap_or(data);
    let mut dec = GifDecoder::new(Cursor::new(data)).map_err(PipelineError::from_image)?;
    // The GIF decoder allocates a first frame smaller than the screen itself.
    dec.set_limits(image_limits(max_pixels, max_pixels.saturating_mul(4)))
        .map_err(PipelineError::from_image)?;
    let (w, h) = dec.dimensions();
    check_pixels(w, h, max_pixels)?;
    let mut buf = Pixels::zeroed_buffer(dec.total_bytes())?;
    dec.read_image(&mut buf)
        .map_err(PipelineError::from_image)?;
    Ok(Pixels::new(w, h, 4, buf))
}

/// Calls `each` with every frame of an animated GIF, composited on the
/// logical screen, in order.
pub(crate) fn for_each_frame(
    src: &[u8],
    max_pixels: u64,
    mut each: impl FnMut(Frame) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let patched = with_default_palette(src);
    let src = patched.as_deref().unwrap_or(src);
    let mut dec = GifDecoder::new(Cursor::new(src)).map_err(PipelineError::from_image)?;
    // As for the first frame alone (`decode_first_frame`): the canvas and
    // the decoder's working frame.
    dec.set_limits(image_limits(max_pixels, max_pixels.saturating_mul(8)))
        .map_err(PipelineError::from_image)?;
    let loop_count = match dec.loop_count() {
        image::metadata::LoopCount::Infinite => 0,
        image::metadata::LoopCount::Finite(n) => n.get().min(u32::from(u16::MAX)),
    };
    for frame in dec.into_frames() {
        let frame = frame.map_err(PipelineError::from_image)?;
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

/// How a walk over a GIF's blocks ([`walk_blocks`]) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GifWalk {
    /// At the trailer byte.
    Trailer,
    /// The data ended exactly after a whole block.
    End,
    /// At a byte that starts no block: decoders stop there too.
    Junk,
    /// Inside a block: the file is cut short.
    Truncated,
    /// `on_image` asked to stop.
    Stopped,
}

/// Walks a GIF's blocks after the header without decompressing anything,
/// calling `on_image(width, height)` at each image descriptor (before its
/// data is skipped); the walk stops when it returns false. Shared by the
/// probe (frame count and sizes) and the truncation check.
pub(crate) fn walk_blocks(d: &[u8], mut on_image: impl FnMut(u16, u16) -> bool) -> GifWalk {
    let Some(&flags) = d.get(10) else {
        return GifWalk::Truncated;
    };
    let mut pos = 13usize;
    if flags & 0x80 != 0 {
        pos += 3 << ((flags & 7) + 1);
    }
    // Skips a chain of data sub-blocks; returns the position after the
    // terminator, or None when the data ends first.
    let skip_sub_blocks = |mut pos: usize| -> Option<usize> {
        loop {
            let n = *d.get(pos)? as usize;
            pos += 1 + n;
            if n == 0 {
                return Some(pos);
            }
        }
    };
    loop {
        match d.get(pos) {
            Some(0x3B) => return GifWalk::Trailer,
            None if pos == d.len() => return GifWalk::End,
            None => return GifWalk::Truncated,
            Some(0x21) => match skip_sub_blocks(pos + 2) {
                Some(n) => pos = n,
                None => return GifWalk::Truncated,
            },
            Some(0x2C) => {
                let (Some(fw), Some(fh), Some(&lflags)) =
                    (le16(d, pos + 5), le16(d, pos + 7), d.get(pos + 9))
                else {
                    return GifWalk::Truncated;
                };
                if !on_image(fw, fh) {
                    return GifWalk::Stopped;
                }
                pos += 10;
                if lflags & 0x80 != 0 {
                    pos += 3 << ((lflags & 7) + 1);
                }
                // LZW minimum code size, then the image data sub-blocks.
                match skip_sub_blocks(pos + 1) {
                    Some(n) => pos = n,
                    None => return GifWalk::Truncated,
                }
            }
            Some(_) => return GifWalk::Junk,
        }
    }
}
