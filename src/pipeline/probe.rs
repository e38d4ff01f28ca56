//! Header probing: dimensions, frame counts and metadata read straight
//! from the container, before any decoder allocates pixel memory.
//!
//! This is what makes the pixel and frame limits safe: a 20000x20000 PNG
//! bomb is refused after reading 24 bytes, not after inflating 400 MB.
//! Every reader here is bounds-checked and stops at the first thing it
//! does not understand; a probe failure is reported as corrupt input.

use super::avif;
use super::bytes::{be16, be32, le16, le24, le32};
use super::error::{check_pixels, PipelineError};
use super::gif;
use super::jpeg_segments::{SegmentError, Segments, EOI, SOS};
use super::jxl;
use super::limits::Limits;
use super::sniff::SourceFormat;
use super::svg;
use super::webp;

/// What the container says about the image.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    /// Width in stored (un-rotated) orientation.
    pub width: u32,
    /// Height in stored (un-rotated) orientation.
    pub height: u32,
    /// Number of frames (1 for still images).
    pub frames: u32,
    /// EXIF orientation 1..=8 when it is visible from the header
    /// (JPEG, WebP); PNG's comes from the decoder.
    pub orientation: u8,
    /// Embedded ICC profile, if the header carries one (JPEG, WebP).
    pub icc: Option<Vec<u8>>,
    /// JPEG only: an Adobe APP14 marker was present, which means CMYK
    /// samples are stored inverted.
    pub adobe: bool,
    /// JPEG only: number of colour components in the frame header.
    pub components: u8,
    /// JPEG only: progressive (SOF2).
    pub progressive: bool,
    /// WebP only: the file is an animation (decoded via the demuxer).
    pub animated: bool,
    /// WebP only: the bitstream carries alpha.
    pub has_alpha: bool,
}

fn corrupt(what: &str) -> PipelineError {
    PipelineError::corrupt(what)
}

/// Probes `data` of the given (sniffed) format and refuses it when it
/// declares more pixels or frames than `limits` allow. The frame walk
/// stops as soon as the frame limit is exceeded.
pub(crate) fn probe(
    data: &[u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<Probe, PipelineError> {
    let info = match format {
        SourceFormat::Jpeg => probe_jpeg(data),
        SourceFormat::Png => probe_png(data),
        SourceFormat::Gif => probe_gif(data, limits.max_frames),
        SourceFormat::WebP => probe_webp(data),
        SourceFormat::Avif => probe_avif(data),
        SourceFormat::Svg => probe_svg(data, limits.max_pixels),
        SourceFormat::Jxl => probe_jxl(data),
    }?;
    check_pixels(info.width, info.height, limits.max_pixels)?;
    if info.frames > limits.max_frames {
        return Err(PipelineError::TooManyFrames {
            max: limits.max_frames,
        });
    }
    Ok(info)
}

/// SVG: the default size (see `svg::default_size`), already fitted into
/// the pixel limit.
fn probe_svg(d: &[u8], max_pixels: u64) -> Result<Probe, PipelineError> {
    let (width, height) = svg::default_size(&svg::parse(d)?, max_pixels);
    Ok(Probe {
        width,
        height,
        frames: 1,
        orientation: 1,
        has_alpha: true,
        ..Probe::default()
    })
}

/// JPEG XL: the image header's size and orientation, read before any
/// frame. An animation counts as 2 frames here (the decoder counts them
/// all against the limit).
fn probe_jxl(d: &[u8]) -> Result<Probe, PipelineError> {
    let h = jxl::header(d)?;
    Ok(Probe {
        width: h.width,
        height: h.height,
        frames: if h.animated { 2 } else { 1 },
        orientation: h.orientation,
        has_alpha: h.has_alpha,
        ..Probe::default()
    })
}

/// AVIF: the size its AV1 sequence header declares (the container parser
/// reads it; builds without an AV1 decoder refuse here).
fn probe_avif(d: &[u8]) -> Result<Probe, PipelineError> {
    let (width, height) = avif::dimensions(d)?;
    Ok(Probe {
        width,
        height,
        frames: 1,
        orientation: 1,
        ..Probe::default()
    })
}

/// Walks the JPEG header segments up to the first SOS: frame size,
/// component count, EXIF orientation, ICC chunks (APP2, reassembled in
/// sequence order) and the Adobe APP14 marker.
fn probe_jpeg(d: &[u8]) -> Result<Probe, PipelineError> {
    let mut p = Probe {
        frames: 1,
        orientation: 1,
        ..Probe::default()
    };
    let mut icc = IccChunks::default();
    let mut seen_sof = false;
    for seg in Segments::headers(d) {
        let seg = seg.map_err(|e| match e {
            SegmentError::Truncated => corrupt("JPEG header is truncated"),
            SegmentError::BadLength => corrupt("JPEG marker length is invalid"),
        })?;
        let payload = &d[seg.payload];
        match seg.marker {
            // SOFn, except DHT (C4), JPG (C8) and DAC (CC)
            m @ 0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC => {
                read_frame_header(&mut p, m, payload)?;
                seen_sof = true;
            }
            0xE1 if payload.starts_with(b"Exif\0\0") => {
                if let Some(o) = exif_orientation(&payload[6..]) {
                    p.orientation = o;
                }
            }
            0xE2 => icc.add(payload),
            0xEE if payload.starts_with(b"Adobe") => p.adobe = true,
            EOI => return Err(corrupt("JPEG has no image data")),
            SOS => break,
            _ => {}
        }
    }
    if !seen_sof {
        return Err(corrupt("JPEG has no frame header"));
    }
    if p.width == 0 || p.height == 0 {
        return Err(PipelineError::Unsupported(
            "JPEGs that declare their height later (DNL) are not supported".into(),
        ));
    }
    if !matches!(p.components, 1 | 3 | 4) {
        return Err(PipelineError::Unsupported(format!(
            "JPEG with {} colour components",
            p.components
        )));
    }
    p.icc = icc.profile();
    Ok(p)
}

/// SOFn: size, components, progressive; only baseline, extended and
/// progressive Huffman coding are decoded.
fn read_frame_header(p: &mut Probe, marker: u8, seg: &[u8]) -> Result<(), PipelineError> {
    if seg.len() < 6 {
        return Err(corrupt("JPEG frame header is truncated"));
    }
    p.height = u32::from(be16(seg, 1).unwrap_or(0));
    p.width = u32::from(be16(seg, 3).unwrap_or(0));
    p.components = seg[5];
    p.progressive = marker == 0xC2;
    if !matches!(marker, 0xC0..=0xC2) {
        return Err(PipelineError::Unsupported(
            "lossless, hierarchical and arithmetic-coded JPEGs are not supported".into(),
        ));
    }
    Ok(())
}

/// An ICC profile split over APP2 segments, numbered 1..=N.
#[derive(Default)]
struct IccChunks<'a> {
    chunks: Vec<(u8, &'a [u8])>,
    total: u8,
}

impl<'a> IccChunks<'a> {
    fn add(&mut self, seg: &'a [u8]) {
        if seg.starts_with(b"ICC_PROFILE\0") && seg.len() >= 14 {
            self.total = seg[13];
            self.chunks.push((seg[12], &seg[14..]));
        }
    }

    /// The profile, only if every chunk is present.
    fn profile(mut self) -> Option<Vec<u8>> {
        if self.chunks.is_empty() || self.chunks.len() != usize::from(self.total) {
            return None;
        }
        self.chunks.sort_by_key(|c| c.0);
        let in_order = self
            .chunks
            .iter()
            .enumerate()
            .all(|(i, c)| usize::from(c.0) == i + 1);
        in_order.then(|| {
            self.chunks
                .iter()
                .flat_map(|c| c.1.iter().copied())
                .collect()
        })
    }
}

/// Reads the Orientation tag (0x0112) from IFD0 of a TIFF-structured EXIF
/// block. `None` if absent or malformed: a broken EXIF block must not make
/// an otherwise good image fail.
pub(crate) fn exif_orientation(tiff: &[u8]) -> Option<u8> {
    // Some writers (PNG eXIf from old tools) keep the "Exif\0\0" prefix.
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = [*tiff.get(at)?, *tiff.get(at + 1)?];
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = [
            *tiff.get(at)?,
            *tiff.get(at + 1)?,
            *tiff.get(at + 2)?,
            *tiff.get(at + 3)?,
        ];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count.min(512) {
        let e = ifd.checked_add(2 + i * 12)?;
        if u16_at(e)? == 0x0112 {
            // type SHORT (3), count 1: the value sits in the first 2 bytes
            if u16_at(e + 2)? != 3 {
                return None;
            }
            let v = u16_at(e + 8)?;
            return (1..=8).contains(&v).then_some(v as u8);
        }
    }
    None
}

/// PNG: IHDR size, and the APNG frame count from `acTL` if it precedes the
/// image data.
fn probe_png(d: &[u8]) -> Result<Probe, PipelineError> {
    if d.len() < 33 || &d[12..16] != b"IHDR" {
        return Err(corrupt("PNG header is truncated"));
    }
    let mut p = Probe {
        width: be32(d, 16).unwrap_or(0),
        height: be32(d, 20).unwrap_or(0),
        frames: 1,
        orientation: 1,
        ..Probe::default()
    };
    if p.width == 0 || p.height == 0 {
        return Err(corrupt("PNG has a zero dimension"));
    }
    let mut pos = 8usize;
    while let (Some(len), Some(ty)) = (be32(d, pos), d.get(pos + 4..pos + 8)) {
        if ty == b"IDAT" {
            break;
        }
        if ty == b"acTL" {
            p.frames = be32(d, pos + 8).unwrap_or(1).max(1);
        }
        pos = match pos.checked_add(12 + len as usize) {
            Some(n) => n,
            None => break,
        };
    }
    Ok(p)
}

/// GIF: logical screen size, and a structural walk over the blocks that
/// counts frames and checks each frame's own size (a frame may be larger
/// than the screen) without decompressing anything.
fn probe_gif(d: &[u8], max_frames: u32) -> Result<Probe, PipelineError> {
    let (Some(w), Some(h), Some(_)) = (le16(d, 6), le16(d, 8), d.get(10)) else {
        return Err(corrupt("GIF header is truncated"));
    };
    let mut p = Probe {
        width: u32::from(w),
        height: u32::from(h),
        frames: 0,
        orientation: 1,
        ..Probe::default()
    };
    let mut max_frame_pixels = 0u64;
    // Whatever ends the walk (trailer, garbage, end of data, the frame
    // limit), the frames counted so far are what the probe reports.
    gif::walk_blocks(d, |fw, fh| {
        max_frame_pixels = max_frame_pixels.max(u64::from(fw) * u64::from(fh));
        p.frames += 1;
        p.frames <= max_frames
    });
    if p.frames == 0 {
        return Err(corrupt("GIF has no image"));
    }
    if p.width == 0 || p.height == 0 {
        return Err(corrupt("GIF has a zero dimension"));
    }
    // The decoder allocates the first frame at its own size; make the
    // pixel limit see the largest frame too.
    if max_frame_pixels > u64::from(p.width) * u64::from(p.height) {
        let side = (max_frame_pixels as f64).sqrt().ceil() as u32;
        p.width = p.width.max(side);
        p.height = p.height.max(side);
    }
    Ok(p)
}

/// WebP: RIFF chunk walk for VP8X canvas size, ICCP, EXIF and ANMF frame
/// count; simple (VP8/VP8L-only) files get their size from libwebp's
/// header parser, which allocates nothing.
fn probe_webp(d: &[u8]) -> Result<Probe, PipelineError> {
    let mut p = Probe {
        frames: 1,
        orientation: 1,
        ..Probe::default()
    };
    let mut pos = 12usize;
    let mut anmf = 0u32;
    let mut vp8x = false;
    while let (Some(ty), Some(len)) = (d.get(pos..pos + 4), le32(d, pos + 4)) {
        let body = pos + 8;
        let end = body.saturating_add(len as usize);
        let chunk = d.get(body..end.min(d.len())).unwrap_or(&[]);
        match ty {
            b"VP8X" => {
                let (Some(&flags), Some(w), Some(h)) =
                    (chunk.first(), le24(chunk, 4), le24(chunk, 7))
                else {
                    return Err(corrupt("WebP VP8X header is truncated"));
                };
                vp8x = true;
                p.width = w + 1;
                p.height = h + 1;
                p.animated = flags & 0x02 != 0;
                p.has_alpha = flags & 0x10 != 0;
            }
            b"ICCP" if end <= d.len() => p.icc = Some(chunk.to_vec()),
            b"EXIF" if end <= d.len() => {
                if let Some(o) = exif_orientation(chunk) {
                    p.orientation = o;
                }
            }
            b"ANMF" => anmf += 1,
            _ => {}
        }
        pos = end.saturating_add(len as usize & 1);
    }
    if p.animated {
        p.frames = anmf.max(1);
    }
    if !vp8x {
        let f = webp::features(d)?;
        p.width = f.width;
        p.height = f.height;
        p.has_alpha = f.has_alpha;
    }
    if p.width == 0 || p.height == 0 {
        return Err(corrupt("WebP has a zero dimension"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn exif_with_orientation(o: u16, big_endian: bool) -> Vec<u8> {
        let mut t = Vec::new();
        let p16 = |t: &mut Vec<u8>, v: u16| {
            t.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let p32 = |t: &mut Vec<u8>, v: u32| {
            t.extend_from_slice(&if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        t.extend_from_slice(if big_endian { b"MM\0*" } else { b"II*\0" });
        p32(&mut t, 8);
        p16(&mut t, 1);
        p16(&mut t, 0x0112);
        p16(&mut t, 3);
        p32(&mut t, 1);
        p16(&mut t, o);
        p16(&mut t, 0);
        p32(&mut t, 0);
        t
    }

    #[test]
    fn reads_exif_orientation_both_byte_orders() {
        for o in 1..=8 {
            assert_eq!(
                exif_orientation(&exif_with_orientation(o, true)),
                Some(o as u8)
            );
            assert_eq!(
                exif_orientation(&exif_with_orientation(o, false)),
                Some(o as u8)
            );
        }
        assert_eq!(exif_orientation(&exif_with_orientation(9, false)), None);
        assert_eq!(exif_orientation(b"II*\0\xff\xff\xff\xff"), None);
        assert_eq!(exif_orientation(b""), None);
    }

    #[test]
    fn garbage_headers_are_errors_not_panics() {
        for data in [
            &b"\xFF\xD8\xFF"[..],
            b"\xFF\xD8\xFF\xE0\x00",
            b"\xFF\xD8\xFF\xE0\xFF\xFF",
            b"\xFF\xD8\xFF\xD9",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            b"GIF89a\x01",
            b"GIF89a\x01\x00\x01\x00\x80",
            b"RIFF\x10\0\0\0WEBPVP8X\xff\xff\xff\xff",
            b"RIFF\x10\0\0\0WEBP",
        ] {
            let f = crate::pipeline::sniff::sniff(data).unwrap_or(SourceFormat::Jpeg);
            let limits = Limits {
                max_pixels: 1 << 20,
                max_frames: 10,
            };
            assert!(probe(data, f, &limits).is_err(), "{data:?}");
        }
    }
}
