//! Content sniffing by magic bytes.
//!
//! Origins lie about `Content-Type` (or omit it), and an image proxy that
//! trusts the header can be turned into a way to serve HTML or SVG from our
//! domain. So the decision "is this an image we serve?" is made from the
//! bytes alone, and only formats a browser renders as a plain raster image
//! are accepted. SVG is never in that list: it is a document that can carry
//! script.

/// A raster format we accept from origins and can name in `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
    Avif,
}

impl SourceFormat {
    /// The MIME type we answer with, derived from the sniffed bytes so the
    /// header always matches the body.
    pub fn mime(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "image/jpeg",
            SourceFormat::Png => "image/png",
            SourceFormat::Gif => "image/gif",
            SourceFormat::WebP => "image/webp",
            SourceFormat::Avif => "image/avif",
        }
    }
}

/// Identifies the image format from the first bytes of `data`, or `None`
/// when it is not one we serve.
pub fn sniff(data: &[u8]) -> Option<SourceFormat> {
    if data.len() >= 3 && data[..3] == [0xFF, 0xD8, 0xFF] {
        return Some(SourceFormat::Jpeg);
    }
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(SourceFormat::Png);
    }
    if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        return Some(SourceFormat::Gif);
    }
    if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        return Some(SourceFormat::WebP);
    }
    if is_avif(data) {
        return Some(SourceFormat::Avif);
    }
    None
}

/// AVIF is an ISO-BMFF file whose `ftyp` box names `avif` or `avis` as the
/// major brand or one of the compatible brands.
fn is_avif(data: &[u8]) -> bool {
    if data.len() < 16 || &data[4..8] != b"ftyp" {
        return false;
    }
    let box_len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if !(16..=4096).contains(&box_len) {
        return false;
    }
    let ftyp = &data[8..box_len.min(data.len())];
    // major brand (4), minor version (4), then compatible brands (4 each)
    let brands = std::iter::once(&ftyp[..4]).chain(ftyp.get(8..).unwrap_or(&[]).chunks_exact(4));
    brands.into_iter().any(|b| b == b"avif" || b == b"avis")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_format() {
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(SourceFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(SourceFormat::Png)
        );
        assert_eq!(sniff(b"GIF89a\x01\x00"), Some(SourceFormat::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(SourceFormat::WebP));
        let mut avif = vec![0, 0, 0, 0x1c];
        avif.extend_from_slice(b"ftypavif\0\0\0\0avifmif1miaf");
        assert_eq!(sniff(&avif), Some(SourceFormat::Avif));
    }

    #[test]
    fn refuses_documents_and_junk() {
        assert_eq!(sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), None);
        assert_eq!(sniff(b"<!DOCTYPE html><html>"), None);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><svg/>"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        let mut mp4 = vec![0, 0, 0, 0x18];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0isommp41");
        assert_eq!(sniff(&mp4), None);
    }
}
