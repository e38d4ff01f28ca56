//! The one walk over a JPEG's marker segments, shared by the probe, the
//! completeness check, the scan-count check, the AC-scan filter and the
//! DC-only decoder.
//!
//! Policy (the same for every caller, and the same as libjpeg's own
//! `next_marker`):
//! - **Stray bytes** between segments (anything before the next `0xFF`,
//!   and a stuffed `FF 00` outside scan data) are skipped: libjpeg skips
//!   them with a harmless warning and decodes the file.
//! - **Fill bytes** (runs of `0xFF` before a marker code) are skipped; a
//!   segment starts at the last `0xFF` before its code.
//! - **Length-less markers** are SOI (`D8`), TEM (`01`) and the restart
//!   markers (`D0`-`D7`): yielded with an empty payload. EOI (`D9`) is
//!   yielded likewise and ends the walk.
//! - Every other marker has a big-endian length (2 or more, counting
//!   itself); a segment that runs past the data is [`SegmentError::Truncated`].
//! - After SOS, the entropy-coded data runs to the next marker that is
//!   neither a stuffed `FF 00` nor a restart marker.
//! - Data that ends before EOI is [`SegmentError::Truncated`].

use std::ops::Range;

use super::bytes::be16;

/// End of image.
pub(crate) const EOI: u8 = 0xD9;
/// Start of scan.
pub(crate) const SOS: u8 = 0xDA;

/// One marker segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The marker code (the byte after `0xFF`).
    pub marker: u8,
    /// Where the segment starts (its `0xFF`).
    pub at: usize,
    /// The payload after the length field (empty for length-less markers).
    pub payload: Range<usize>,
    /// SOS only, when walking whole files: the entropy-coded data.
    pub scan_data: Option<Range<usize>>,
}

impl Segment {
    /// Where the next segment may start: after the scan data for SOS.
    pub(crate) fn end(&self) -> usize {
        self.scan_data
            .as_ref()
            .map_or(self.payload.end, |scan| scan.end)
    }
}

/// Why the walk stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentError {
    /// The data ends inside a segment or its scan data, or before EOI.
    Truncated,
    /// A length field below 2.
    BadLength,
}

/// An iterator over the segments after SOI (the caller has sniffed it).
/// After an error or EOI it yields nothing more.
pub(crate) struct Segments<'a> {
    d: &'a [u8],
    pos: usize,
    done: bool,
    /// False for [`Segments::headers`]: stop at the first SOS without
    /// looking for the end of its data.
    whole_file: bool,
}

impl<'a> Segments<'a> {
    /// Every segment up to EOI, with each scan's data.
    pub(crate) fn new(d: &'a [u8]) -> Self {
        Segments {
            d,
            pos: 2,
            done: false,
            whole_file: true,
        }
    }

    /// The header segments up to and including the first SOS (whose
    /// `scan_data` is `None`): what a probe reads, at the cost of the
    /// headers only.
    pub(crate) fn headers(d: &'a [u8]) -> Self {
        Segments {
            whole_file: false,
            ..Segments::new(d)
        }
    }

    fn segment(&mut self) -> Result<Segment, SegmentError> {
        let d = self.d;
        let (at, marker) = next_marker(d, self.pos).ok_or(SegmentError::Truncated)?;
        let after_code = at + 2;
        if matches!(marker, 0xD0..=0xD9 | 0x01) {
            self.done = marker == EOI;
            self.pos = after_code;
            return Ok(Segment {
                marker,
                at,
                payload: after_code..after_code,
                scan_data: None,
            });
        }
        let len = usize::from(be16(d, after_code).ok_or(SegmentError::Truncated)?);
        if len < 2 {
            return Err(SegmentError::BadLength);
        }
        let payload = after_code + 2..after_code + len;
        if payload.end > d.len() {
            return Err(SegmentError::Truncated);
        }
        let mut scan_data = None;
        if marker == SOS {
            if !self.whole_file {
                self.done = true;
            } else {
                let end = scan_end(d, payload.end).ok_or(SegmentError::Truncated)?;
                scan_data = Some(payload.end..end);
            }
        }
        let segment = Segment {
            marker,
            at,
            payload,
            scan_data,
        };
        self.pos = segment.end();
        Ok(segment)
    }
}

impl Iterator for Segments<'_> {
    type Item = Result<Segment, SegmentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.segment();
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

/// The next marker at or after `from`: the position of the `0xFF` just
/// before its code, and the code. Stray bytes, fill bytes and stuffed
/// zeros are skipped (see the module's policy).
fn next_marker(d: &[u8], mut from: usize) -> Option<(usize, u8)> {
    loop {
        from += d.get(from..)?.iter().position(|&b| b == 0xFF)?;
        while d.get(from + 1) == Some(&0xFF) {
            from += 1;
        }
        match *d.get(from + 1)? {
            0x00 => from += 2,
            code => return Some((from, code)),
        }
    }
}

/// End of the entropy-coded data that starts at `from`: the next marker
/// that is neither a stuffed `FF 00` nor a restart marker. `None` if the
/// data ends first (truncated file).
fn scan_end(d: &[u8], from: usize) -> Option<usize> {
    let mut end = from;
    loop {
        // memchr's vector search: a byte-by-byte scan cost 13 % of a
        // 5120x2880 photo's DC-only decode.
        end += memchr::memchr(0xFF, d.get(end..)?)?;
        match d.get(end + 1)? {
            0x00 | 0xD0..=0xD7 => end += 2,
            0xFF => end += 1,
            _ => return Some(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(d: &[u8]) -> Vec<Result<u8, SegmentError>> {
        Segments::new(d).map(|s| s.map(|s| s.marker)).collect()
    }

    #[test]
    fn walks_segments_scans_and_eoi() {
        // SOI, APP0 (len 4), SOS (len 3) + data with a stuffed zero and a
        // restart marker, EOI.
        let d =
            b"\xFF\xD8\xFF\xE0\x00\x04ab\xFF\xDA\x00\x03\x01\x12\xFF\x00\x34\xFF\xD0\x56\xFF\xD9";
        let segs: Vec<Segment> = Segments::new(d).map(|s| s.expect("segment")).collect();
        assert_eq!(segs.len(), 3);
        assert_eq!((segs[0].marker, segs[0].payload.clone()), (0xE0, 6..8));
        assert_eq!(segs[1].marker, SOS);
        assert_eq!(segs[1].scan_data, Some(13..20));
        assert_eq!((segs[2].marker, segs[2].at), (EOI, 20));
    }

    #[test]
    fn stray_and_fill_bytes_are_skipped() {
        let d = b"\xFF\xD8junk\xFF\x00\xFF\xFF\xFF\xE0\x00\x02\x01\xFF\xD9";
        assert_eq!(markers(d), vec![Ok(0xE0), Ok(EOI)]);
    }

    #[test]
    fn cuts_and_bad_lengths_are_errors() {
        assert_eq!(markers(b"\xFF\xD8\xFF"), vec![Err(SegmentError::Truncated)]);
        assert_eq!(
            markers(b"\xFF\xD8\xFF\xE0\x00\x09abc"),
            vec![Err(SegmentError::Truncated)]
        );
        assert_eq!(
            markers(b"\xFF\xD8\xFF\xE0\x00\x01"),
            vec![Err(SegmentError::BadLength)]
        );
        assert_eq!(
            markers(b"\xFF\xD8\xFF\xDA\x00\x02\x12\x34"),
            vec![Err(SegmentError::Truncated)]
        );
        assert_eq!(
            markers(b"\xFF\xD8\xFF\xE0\x00\x02"),
            vec![Ok(0xE0), Err(SegmentError::Truncated)]
        );
    }

    #[test]
    fn headers_stop_at_the_first_scan() {
        let d = b"\xFF\xD8\xFF\xDA\x00\x02\x12\x34";
        let segs: Vec<_> = Segments::headers(d).collect();
        assert_eq!(segs.len(), 1);
        let sos = segs[0].as_ref().expect("sos");
        assert_eq!((sos.marker, sos.scan_data.clone()), (SOS, None));
    }
}
