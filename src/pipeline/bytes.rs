//! Bounds-checked fixed-width integer readers for container headers. Each
//! returns `None` when the bytes run out, so a truncated header is an
//! ordinary "no" rather than a panic.

/// Big-endian u16 at `at`.
pub(crate) fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(array(d, at)?))
}

/// Big-endian u32 at `at`.
pub(crate) fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(array(d, at)?))
}

/// Big-endian u64 at `at`.
pub(crate) fn be64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(array(d, at)?))
}

/// Little-endian u16 at `at`.
pub(crate) fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(array(d, at)?))
}

/// Little-endian 24-bit value at `at` (WebP's canvas sizes).
pub(crate) fn le24(d: &[u8], at: usize) -> Option<u32> {
    let [a, b, c] = array(d, at)?;
    Some(u32::from_le_bytes([a, b, c, 0]))
}

/// Little-endian u32 at `at`.
pub(crate) fn le32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(array(d, at)?))
}

fn array<const N: usize>(d: &[u8], at: usize) -> Option<[u8; N]> {
    d.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_byte_orders_and_stops_at_the_end() {
        let d = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(be16(&d, 0), Some(0x0102));
        assert_eq!(le16(&d, 0), Some(0x0201));
        assert_eq!(le24(&d, 1), Some(0x040302));
        assert_eq!(be32(&d, 4), Some(0x05060708));
        assert_eq!(le32(&d, 4), Some(0x08070605));
        assert_eq!(be64(&d, 0), Some(0x0102030405060708));
        assert_eq!(be32(&d, 5), None);
        assert_eq!(le16(&d, usize::MAX), None);
    }
}
