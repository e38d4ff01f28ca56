//! Content sniffing by magic bytes.
//!
//! Origins lie about `Content-Type` (or omit it), and an image proxy that
//! trusts the header can be turned into a way to serve HTML or SVG from our
//! domain. So the decision "is this an image we serve?" is made from the
//! bytes alone. SVG and JPEG XL are recognised as *sources* only: an SVG is
//! a document that can carry script, and most browsers cannot show JPEG XL,
//! so both are always rasterised or re-encoded, never served as they are
//! (see [`SourceFormat::served_as_is`]).

/// A raster format we accept from origins and can name in `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
    Avif,
    /// An SVG document, by content (`<svg` as the root element after an
    /// optional XML prolog), whatever the origin's `Content-Type` says.
    Svg,
    /// JPEG XL, bare codestream or ISO-BMFF container.
    Jxl,
}

impl SourceFormat {
    /// Whether the original bytes may be answered as they are: never for
    /// SVG (script, external references) nor JPEG XL (few browsers).
    pub fn served_as_is(self) -> bool {
        !matches!(self, SourceFormat::Svg | SourceFormat::Jxl)
    }

    /// The short name used by `GET /info`.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Gif => "gif",
            SourceFormat::WebP => "webp",
            SourceFormat::Avif => "avif",
            SourceFormat::Svg => "svg",
            SourceFormat::Jxl => "jxl",
        }
    }

    /// The MIME type we answer with, derived from the sniffed bytes so the
    /// header always matches the body.
    pub fn mime(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "image/jpeg",
            SourceFormat::Png => "image/png",
            SourceFormat::Gif => "image/gif",
            SourceFormat::WebP => "image/webp",
            SourceFormat::Avif => "image/avif",
            SourceFormat::Svg => "image/svg+xml",
            SourceFormat::Jxl => "image/jxl",
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
    if data.starts_with(&[0xFF, 0x0A]) || data.starts_with(JXL_CONTAINER) {
        return Some(SourceFormat::Jxl);
    }
    if is_svg(data) {
        return Some(SourceFormat::Svg);
    }
    None
}

/// The signature box that opens a JPEG XL container.
const JXL_CONTAINER: &[u8] = b"\0\0\0\x0cJXL \r\n\x87\n";

/// How far into the file the root element may start (XML declaration,
/// comments and a DOCTYPE with its entity declarations before it).
const SVG_PROLOG_MAX: usize = 64 * 1024;

/// SVG: after an optional BOM, whitespace, XML declaration, comments,
/// processing instructions and DOCTYPE, the first element is `<svg`.
/// An HTML page (`<!DOCTYPE html><html>...<svg>`) is not an SVG.
fn is_svg(data: &[u8]) -> bool {
    let mut d = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let start = d.len();
    loop {
        if start - d.len() > SVG_PROLOG_MAX {
            return false;
        }
        d = trim_xml_space(d);
        let end = if d.starts_with(b"<?") {
            find(d, b"?>").map(|i| i + 2)
        } else if d.starts_with(b"<!--") {
            find(d, b"-->").map(|i| i + 3)
        } else if d.starts_with(b"<!DOCTYPE") || d.starts_with(b"<!doctype") {
            doctype_end(d)
        } else {
            let rest = d.strip_prefix(b"<svg").unwrap_or(b"");
            return d.starts_with(b"<svg")
                && rest
                    .first()
                    .is_some_and(|&c| c == b'>' || c == b'/' || c.is_ascii_whitespace());
        };
        match end {
            Some(e) => d = &d[e..],
            None => return false,
        }
    }
}

fn trim_xml_space(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &d[n..]
}

fn find(d: &[u8], needle: &[u8]) -> Option<usize> {
    d.windows(needle.len()).position(|w| w == needle)
}

/// The end of a DOCTYPE, past its internal subset (`[...]`) if any.
fn doctype_end(d: &[u8]) -> Option<usize> {
    let gt = find(d, b">")?;
    match find(d, b"[") {
        Some(open) if open < gt => find(&d[open..], b"]").and_then(|close| {
            let after = open + close;
            find(&d[after..], b">").map(|i| after + i + 1)
        }),
        _ => Some(gt + 1),
    }
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
    fn recognises_svg_by_content_and_jpeg_xl() {
        let svg = Some(SourceFormat::Svg);
        assert_eq!(sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), svg);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><svg/>"), svg);
        assert_eq!(
            sniff(b"\xEF\xBB\xBF <!-- c --><!DOCTYPE svg [<!ENTITY a \"b>\">]>\n<svg>"),
            svg
        );
        assert_eq!(sniff(b"\xFF\x0A\xFA"), Some(SourceFormat::Jxl));
        assert_eq!(
            sniff(b"\0\0\0\x0cJXL \r\n\x87\n\0"),
            Some(SourceFormat::Jxl)
        );
    }

    #[test]
    fn refuses_documents_and_junk() {
        assert_eq!(sniff(b"<!DOCTYPE html><html><svg></svg>"), None);
        assert_eq!(sniff(b"<html><svg></svg></html>"), None);
        assert_eq!(sniff(b"<svgx/>"), None);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><rss/>"), None);
        assert_eq!(sniff(b"<!-- unterminated <svg>"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        let mut mp4 = vec![0, 0, 0, 0x18];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0isommp41");
        assert_eq!(sniff(&mp4), None);
    }
}
