//! JPEG XL sources, decoded by jxl-oxide (pure Rust).
//!
//! The limits hold as for the other formats: the image header alone gives
//! the size, checked against the pixel limit before any frame is parsed;
//! the decoder's allocations are tracked and capped; an animation counts
//! against the frame limit and yields its first frame; a file that ends
//! before its frames do is refused as truncated (jxl-oxide would render
//! the part it has). Pixels come out upright (jxl-oxide applies the
//! orientation) and 8-bit; a colour space other than sRGB travels as its
//! ICC profile to the colour step.

use jxl_bitstream::{Bitstream, ContainerParser, ParseEvent};
use jxl_oxide::{
    AllocTracker, ImageHeader, InitializeResult, JxlImage, JxlThreadPool, PixelFormat,
};
use jxl_oxide_common::Bundle;

use super::error::{check_pixels, PipelineError};
use super::limits::Limits;
use super::pixels::Pixels;

/// Prefixes of the file read in turn until the image header is complete.
const HEADER_PREFIXES: &[usize] = &[256, 4096, 64 * 1024];

/// What the header says.
pub(crate) struct Header {
    /// Stored (un-rotated) size.
    pub width: u32,
    pub height: u32,
    /// EXIF-style orientation, 1..=8.
    pub orientation: u8,
    pub has_alpha: bool,
    pub animated: bool,
}

fn corrupt(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::corrupt(format!("JPEG XL: {e}"))
}

/// Reads the image header from the first bytes of `data`, without the
/// decoder (which would start on the frames, sized by the header).
pub(crate) fn header(data: &[u8]) -> Result<Header, PipelineError> {
    let all = [data.len()];
    for &len in HEADER_PREFIXES
        .iter()
        .filter(|&&l| l < data.len())
        .chain(&all)
    {
        let mut codestream = Vec::new();
        let mut parser = ContainerParser::new();
        for event in parser.feed_bytes(&data[..len]) {
            if let ParseEvent::Codestream(b) = event.map_err(corrupt)? {
                codestream.extend_from_slice(b);
            }
        }
        match ImageHeader::parse(&mut Bitstream::new(&codestream), ()) {
            Ok(h) => {
                return Ok(Header {
                    width: h.size.width,
                    height: h.size.height,
                    orientation: u8::try_from(h.metadata.orientation)
                        .unwrap_or(1)
                        .clamp(1, 8),
                    has_alpha: h.metadata.ec_info.iter().any(|e| e.is_alpha()),
                    animated: h.metadata.animation.is_some(),
                })
            }
            Err(e) if e.unexpected_eof() => continue,
            Err(e) => return Err(corrupt(e)),
        }
    }
    Err(corrupt("the header is truncated"))
}

/// A decoder fed all of `data`, its allocations capped by `tracker`.
fn init(data: &[u8], tracker: AllocTracker) -> Result<JxlImage, PipelineError> {
    let builder = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .alloc_tracker(tracker);
    let mut uninit = builder.build_uninit();
    uninit.feed_bytes(data).map_err(corrupt)?;
    match uninit.try_init().map_err(corrupt)? {
        InitializeResult::Initialized(image) => Ok(image),
        InitializeResult::NeedMoreData(_) => Err(corrupt("the header is truncated")),
    }
}

/// A decoder with every frame of `data` loaded (not yet rendered), after
/// the header's size and the frame count passed `limits`.
fn load(data: &[u8], limits: &Limits) -> Result<JxlImage, PipelineError> {
    let h = header(data)?;
    check_pixels(h.width, h.height, limits.max_pixels)?;
    // Room for the decoder's float planes of every channel, five times.
    let budget = limits.max_pixels.saturating_mul(4 * 4 * 5);
    let tracker = AllocTracker::with_limit(usize::try_from(budget).unwrap_or(usize::MAX));
    let image = init(data, tracker)?;
    if !image.is_loading_done() || image.num_loaded_keyframes() == 0 {
        return Err(corrupt("the file is truncated"));
    }
    if image.num_loaded_keyframes() > limits.max_frames as usize {
        return Err(PipelineError::TooManyFrames {
            max: limits.max_frames,
        });
    }
    Ok(image)
}

/// The number of frames shown (keyframes) of an animation.
pub(crate) fn frame_count(data: &[u8], limits: &Limits) -> Result<u32, PipelineError> {
    let n = load(data, limits)?.num_loaded_keyframes();
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Decodes the first frame of `data`, upright, within `limits`. Returns the
/// pixels and the ICC profile they are in (`None`: sRGB).
pub(crate) fn decode(
    data: &[u8],
    limits: &Limits,
) -> Result<(Pixels, Option<Vec<u8>>), PipelineError> {
    let image = load(data, limits)?;
    let ch: u8 = match image.pixel_format() {
        PixelFormat::Gray => 1,
        PixelFormat::Graya => 2,
        PixelFormat::Rgb => 3,
        PixelFormat::Rgba => 4,
        _ => {
            return Err(PipelineError::Unsupported(
                "CMYK JPEG XL images are not supported".into(),
            ))
        }
    };
    let render = image.render_frame(0).map_err(corrupt)?;
    let mut stream = render.stream();
    let (w, h) = (stream.width(), stream.height());
    check_pixels(w, h, limits.max_pixels)?;
    if stream.channels() != u32::from(ch) {
        return Err(corrupt("unexpected channel count"));
    }
    let mut buf = Pixels::zeroed_buffer(u64::from(w) * u64::from(h) * u64::from(ch))?;
    let written = stream.write_to_buffer::<u8>(&mut buf);
    if written != buf.len() {
        return Err(corrupt("the frame is incomplete"));
    }
    let icc = (image.rendered_cicp() != Some([1, 13, 0, 1])).then(|| image.rendered_icc());
    Ok((Pixels::new(w, h, ch, buf), icc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use img_proxy_test_support as fx;

    #[test]
    fn decodes_the_fixtures_to_their_size_and_colours() {
        for (what, data, tol) in [
            ("lossless", fx::JXL_LOSSLESS, 0),
            ("lossy", fx::JXL_LOSSY, 12),
        ] {
            let (px, _) = decode(data, &Limits::default()).expect(what);
            assert_eq!((px.w, px.h), (64, 48), "{what}");
            let ch = usize::from(px.ch);
            let at = |x: usize, y: usize| &px.data[(y * 64 + x) * ch..][..3];
            for (x, y, c) in [
                (16, 12, fx::RED),
                (48, 12, fx::GREEN),
                (16, 36, fx::BLUE),
                (48, 36, fx::WHITE),
            ] {
                let got = at(x, y);
                assert!(
                    got.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= tol),
                    "{what} {x},{y}: {got:?} vs {c:?}"
                );
            }
        }
    }

    #[test]
    fn the_header_gives_the_size_before_any_frame() {
        let h = header(&fx::jxl_declaring(100_000, 70_000)).expect("header");
        assert_eq!((h.width, h.height), (100_000, 70_000));
        let err = decode(&fx::jxl_declaring(100_000, 70_000), &Limits::default()).unwrap_err();
        assert!(matches!(err, PipelineError::TooManyPixels { .. }), "{err}");
    }

    #[test]
    fn a_truncated_file_is_refused() {
        for cut in [2, 10, fx::JXL_LOSSY.len() / 2, fx::JXL_LOSSY.len() - 3] {
            let r = decode(&fx::JXL_LOSSY[..cut], &Limits::default());
            assert!(
                matches!(r, Err(PipelineError::Corrupt(_))),
                "cut at {cut}: {:?}",
                r.map(|p| p.0.w)
            );
        }
    }
}
