//! Is the file all there? A structural walk, without decoding, that finds
//! truncated downloads before they are cached and served.
//!
//! Untransformed originals are passed through byte for byte, so nothing
//! else would notice an origin that sent half a JPEG: browsers would show
//! the top half of a picture, and the cache would keep it for the whole
//! TTL. Every format we serve has an explicit end (JPEG's EOI marker,
//! PNG's IEND chunk, the sizes of RIFF and ISO-BMFF boxes, GIF's block
//! structure), so a cut anywhere is found by a linear walk that costs a
//! few milliseconds even for the largest accepted body. Data after the
//! end (a motion photo's video, padding) is allowed, as browsers allow it.
//!
//! This checks structure only: a complete file whose compressed data is
//! damaged is found when it is decoded for a transformation.

use super::bytes::{be32, le32};
use super::error::PipelineError;
use super::gif::{walk_blocks, GifWalk};
use super::jpeg_segments::{Segments, EOI};
use super::sniff::SourceFormat;

fn truncated(what: &str) -> PipelineError {
    PipelineError::Corrupt(format!("{what} is truncated"))
}

/// `Ok` when `data`, sniffed as `format`, runs to its format's end marker.
pub fn check_complete(data: &[u8], format: SourceFormat) -> Result<(), PipelineError> {
    let complete = match format {
        SourceFormat::Jpeg => jpeg_complete(data),
        SourceFormat::Png => png_complete(data),
        SourceFormat::Gif => gif_complete(data),
        SourceFormat::WebP => webp_complete(data),
        SourceFormat::Avif => super::avif::heif::complete(data),
        // Never served as they are: decoding them finds a truncation.
        SourceFormat::Svg | SourceFormat::Jxl => true,
    };
    if complete {
        Ok(())
    } else {
        Err(truncated(match format {
            SourceFormat::Jpeg => "JPEG (no end-of-image marker)",
            SourceFormat::Png => "PNG (no IEND chunk)",
            SourceFormat::Gif => "GIF",
            SourceFormat::WebP => "WebP (shorter than its RIFF size)",
            SourceFormat::Avif => "AVIF (a box or item data runs past the end)",
            SourceFormat::Svg => "SVG",
            SourceFormat::Jxl => "JPEG XL",
        }))
    }
}

/// Marker segments are skipped by their length (so an EXIF thumbnail's own
/// EOI is not mistaken for ours), and each scan's entropy-coded data to
/// the next marker (see `jpeg_segments` for the policy on stray bytes).
/// Complete once EOI is reached outside any segment.
fn jpeg_complete(d: &[u8]) -> bool {
    Segments::new(d).any(|seg| seg.is_ok_and(|s| s.marker == EOI))
}

/// Chunks are length-prefixed; complete once IEND has been reached.
fn png_complete(d: &[u8]) -> bool {
    let mut pos = 8;
    while let (Some(len), Some(ty)) = (be32(d, pos), d.get(pos + 4..pos + 8)) {
        let Some(end) = (len as usize).checked_add(pos + 12) else {
            return false;
        };
        if end > d.len() {
            return false;
        }
        if ty == b"IEND" {
            return true;
        }
        pos = end;
    }
    false
}

/// Extension and image blocks are chains of sized sub-blocks. Complete at
/// the trailer, or when the data ends exactly after a whole block with at
/// least one image: some old encoders leave the trailer out, and browsers
/// show such files in full.
fn gif_complete(d: &[u8]) -> bool {
    let mut images = 0;
    match walk_blocks(d, |_, _| {
        images += 1;
        true
    }) {
        GifWalk::Trailer | GifWalk::End | GifWalk::Junk => images > 0,
        GifWalk::Truncated | GifWalk::Stopped => false,
    }
}

/// The RIFF header says how long the file is.
fn webp_complete(d: &[u8]) -> bool {
    match le32(d, 4) {
        Some(riff) => riff >= 4 && (riff as usize).saturating_add(8) <= d.len(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sniff::sniff;

    fn jpeg(progressive: bool) -> Vec<u8> {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
        });
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
        enc.set_progressive(progressive);
        enc.set_restart_interval(if progressive { 0 } else { 2 });
        enc.encode(img.as_raw(), 64, 48, jpeg_encoder::ColorType::Rgb)
            .expect("encode");
        out
    }

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(40, 30, |x, y| {
            image::Rgba([(x * 6) as u8, (y * 8) as u8, 90, 200])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    /// Whole files pass, with trailing data too; every cut is refused
    /// (but for GIF's optional trailer, the last byte).
    fn every_cut_is_found(whole: &[u8]) {
        let format = sniff(whole).expect("sniffed");
        check_complete(whole, format).expect("whole file");
        let mut padded = whole.to_vec();
        padded.extend_from_slice(&[0; 64]);
        check_complete(&padded, format).expect("trailing data");
        let last = match format {
            SourceFormat::Gif => whole.len() - 1,
            _ => whole.len(),
        };
        for cut in 1..last {
            let part = &whole[..cut];
            if sniff(part) == Some(format) {
                assert!(
                    check_complete(part, format).is_err(),
                    "{format:?} cut at {cut} of {} accepted",
                    whole.len()
                );
            }
        }
    }

    #[test]
    fn jpeg_baseline_with_restarts_and_progressive() {
        every_cut_is_found(&jpeg(false));
        every_cut_is_found(&jpeg(true));
    }

    #[test]
    fn jpeg_thumbnail_eoi_inside_exif_is_not_the_end() {
        // An APP1 segment carrying a complete JPEG (as EXIF thumbnails do)
        // must be skipped whole, not read as the end of the file.
        let thumb = jpeg(false);
        let main = jpeg(false);
        let mut seg = b"Exif\0\0".to_vec();
        seg.extend_from_slice(&thumb);
        let mut file = vec![0xFF, 0xD8, 0xFF, 0xE1];
        file.extend_from_slice(&((seg.len() + 2) as u16).to_be_bytes());
        file.extend_from_slice(&seg);
        file.extend_from_slice(&main[2..]);
        check_complete(&file, SourceFormat::Jpeg).expect("whole");
        let cut = &file[..file.len() - main.len() / 2];
        assert!(check_complete(cut, SourceFormat::Jpeg).is_err());
    }

    #[test]
    fn png_gif_webp() {
        every_cut_is_found(&encoded(image::ImageFormat::Png));
        every_cut_is_found(&encoded(image::ImageFormat::Gif));
        every_cut_is_found(&encoded(image::ImageFormat::WebP));
    }

    #[test]
    fn gif_without_trailer_is_whole() {
        let gif = encoded(image::ImageFormat::Gif);
        assert_eq!(gif.last(), Some(&0x3B));
        check_complete(&gif[..gif.len() - 1], SourceFormat::Gif).expect("no trailer");
    }

    #[test]
    fn avif_boxes() {
        let mut avif = vec![0, 0, 0, 0x1c];
        avif.extend_from_slice(b"ftypavif\0\0\0\0avifmif1miaf");
        avif.extend_from_slice(&[0, 0, 0, 12]);
        avif.extend_from_slice(b"meta\0\0\0\0");
        avif.extend_from_slice(&[0, 0, 0, 16]);
        avif.extend_from_slice(b"mdat01234567");
        every_cut_is_found(&avif);
        // A last box that runs "to the end of the file" is whole.
        let n = avif.len();
        avif[n - 16..n - 12].copy_from_slice(&[0, 0, 0, 0]);
        check_complete(&avif, SourceFormat::Avif).expect("size 0");
    }
}
