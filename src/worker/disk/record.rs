//! The bytes of one disk entry, and the checks that make a damaged entry a
//! miss instead of a wrong image.
//!
//! foyer checksums each entry too, but a mismatch there is a silent miss we
//! cannot count, and foyer knows nothing of our format. So every record
//! carries its own header and an xxh3-64 of everything before it:
//!
//! ```text
//! "IPXC" | version u8 | stored_at ms u64 | fresh_until ms u64
//!        | origin ETag (u16 len + bytes) | origin Last-Modified (u16 len + bytes)
//!        | body (u32 len + bytes) | xxh3_64 of all the above (u64)
//! ```
//!
//! Integers are little-endian. Times are wall-clock milliseconds since the
//! Unix epoch, so an expiry still means the same instant after a restart.
//! A record from another format version, a truncated one, one with a
//! flipped bit, or one whose body is not an image we serve is refused with
//! [`RecordError`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::worker::cache::stored_type;

const MAGIC: &[u8; 4] = b"IPXC";
/// Bumped whenever the layout changes; other versions are refused.
pub const FORMAT_VERSION: u8 = 1;
const CHECKSUM_LEN: usize = 8;

/// One cached image as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRecord {
    /// The image bytes.
    pub body: Bytes,
    /// When the bytes were fetched or made.
    pub stored_at: SystemTime,
    /// Until when they may be served as fresh (`CACHE_TTL` after fetching).
    pub fresh_until: SystemTime,
    /// The origin's `ETag`, kept for conditional revalidation.
    pub origin_etag: Option<String>,
    /// The origin's `Last-Modified`, kept for conditional revalidation.
    pub origin_last_modified: Option<String>,
}

/// Why stored bytes are not a usable record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not an img-proxy cache record (bad magic)")]
    Magic,
    #[error("cache record format {0}, this build reads format {FORMAT_VERSION}")]
    Version(u8),
    #[error("cache record truncated")]
    Truncated,
    #[error("cache record checksum mismatch")]
    Checksum,
    #[error("cache record body is not an image we serve")]
    NotAnImage,
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    // Validators longer than 64 KiB are not worth keeping: drop them.
    let s = s.filter(|s| s.len() <= usize::from(u16::MAX)).unwrap_or("");
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl DiskRecord {
    /// Encoded length, for foyer's size estimate.
    pub fn encoded_len(&self) -> usize {
        let strs = self.origin_etag.as_deref().map_or(0, str::len)
            + self.origin_last_modified.as_deref().map_or(0, str::len);
        4 + 1 + 8 + 8 + 2 + 2 + strs + 4 + self.body.len() + CHECKSUM_LEN
    }

    /// The record's bytes, checksum last.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&millis(self.stored_at).to_le_bytes());
        out.extend_from_slice(&millis(self.fresh_until).to_le_bytes());
        put_str(&mut out, self.origin_etag.as_deref());
        put_str(&mut out, self.origin_last_modified.as_deref());
        // Bodies are capped far below 4 GiB (MAX_SOURCE_BYTES, pixel limits).
        out.extend_from_slice(&(self.body.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.body);
        let sum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses and verifies a record; anything short of a whole, intact
    /// record of this format holding an image is an error.
    pub fn decode(data: &[u8]) -> Result<DiskRecord, RecordError> {
        if data.len() < MAGIC.len() + 1 {
            return Err(RecordError::Truncated);
        }
        if &data[..4] != MAGIC {
            return Err(RecordError::Magic);
        }
        if data[4] != FORMAT_VERSION {
            return Err(RecordError::Version(data[4]));
        }
        if data.len() < MAGIC.len() + 1 + CHECKSUM_LEN {
            return Err(RecordError::Truncated);
        }
        let (content, sum) = data.split_at(data.len() - CHECKSUM_LEN);
        let mut r = Reader(&content[5..]);
        // Parse before checking the sum, so a cut-off record reads as
        // truncated; either way it is refused.
        let stored_at = from_millis(r.u64()?);
        let fresh_until = from_millis(r.u64()?);
        let origin_etag = r.str()?;
        let origin_last_modified = r.str()?;
        let len = r.u32()? as usize;
        let body = r.take(len)?;
        if !r.0.is_empty() {
            return Err(RecordError::Truncated);
        }
        let expected = u64::from_le_bytes(sum.try_into().map_err(|_| RecordError::Truncated)?);
        if xxhash_rust::xxh3::xxh3_64(content) != expected {
            return Err(RecordError::Checksum);
        }
        if stored_type(body).is_none() {
            return Err(RecordError::NotAnImage);
        }
        Ok(DiskRecord {
            body: Bytes::copy_from_slice(body),
            stored_at,
            fresh_until,
            origin_etag,
            origin_last_modified,
        })
    }
}

/// A cursor over record bytes; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| RecordError::Truncated)?,
        ))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(
            b.try_into().map_err(|_| RecordError::Truncated)?,
        ))
    }

    fn str(&mut self) -> Result<Option<String>, RecordError> {
        let b = self.take(2)?;
        let len = u16::from_le_bytes([b[0], b[1]]) as usize;
        let s = self.take(len)?;
        // A validator that is not UTF-8 cannot have come from us.
        let s = std::str::from_utf8(s).map_err(|_| RecordError::Checksum)?;
        Ok((!s.is_empty()).then(|| s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DiskRecord {
        let mut body = b"\x89PNG\r\n\x1a\n".to_vec();
        body.extend(std::iter::repeat_n(7u8, 100));
        DiskRecord {
            body: body.into(),
            stored_at: from_millis(1_700_000_000_000),
            fresh_until: from_millis(1_700_000_360_000),
            origin_etag: Some("\"abc\"".into()),
            origin_last_modified: None,
        }
    }

    #[test]
    fn round_trips() {
        let r = record();
        let bytes = r.encode();
        assert_eq!(bytes.len(), r.encoded_len());
        assert_eq!(DiskRecord::decode(&bytes), Ok(r));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let bytes = record().encode();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                assert!(DiskRecord::decode(&bad).is_err(), "byte {i} bit {bit:#x}");
            }
        }
    }

    #[test]
    fn truncated_and_extended_records_are_refused() {
        let bytes = record().encode();
        for len in 0..bytes.len() {
            assert!(DiskRecord::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(DiskRecord::decode(&longer).is_err());
    }

    #[test]
    fn other_format_versions_are_refused() {
        let mut bytes = record().encode();
        bytes[4] = FORMAT_VERSION + 1;
        assert_eq!(
            DiskRecord::decode(&bytes),
            Err(RecordError::Version(FORMAT_VERSION + 1))
        );
    }

    #[test]
    fn a_body_that_is_not_an_image_is_refused() {
        let mut r = record();
        r.body = Bytes::from_static(b"<html>");
        assert_eq!(
            DiskRecord::decode(&r.encode()),
            Err(RecordError::NotAnImage)
        );
    }
}
