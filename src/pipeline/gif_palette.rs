//! GIFs without a colour table, shown as browsers show them.
//!
//! The GIF89a specification lets a file carry neither a global nor a local
//! colour table ("the decoder may use a system default"). Chrome's decoder
//! (Wuffs) then treats every index as opaque black (transparency from the
//! Graphic Control Extension still applies), and so do we, rather than
//! refusing the file as corrupt as the `gif` crate would. The fix is a
//! byte-level one before decoding: a global table of 256 black entries is
//! inserted, which frames with their own local table ignore.

/// Size of the logical screen header: signature, version, screen
/// descriptor.
const HEADER: usize = 13;

/// `src` with an all-black global colour table when it has none; `None`
/// when it already has one (or is too short to be a GIF: the decoder
/// reports that).
pub(crate) fn with_default_palette(src: &[u8]) -> Option<Vec<u8>> {
    let flags = *src.get(10)?;
    if src.len() < HEADER || flags & 0x80 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(src.len() + 768);
    out.extend_from_slice(&src[..HEADER]);
    // Global table present, 2^(7+1) = 256 entries; colour resolution and
    // sort flag kept. Background index 0 is then black, as in browsers.
    out[10] = flags | 0x80 | 0x07;
    out.extend_from_slice(&[0u8; 768]);
    out.extend_from_slice(&src[HEADER..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use img_proxy_test_support::no_palette_gif as no_table_gif;

    #[test]
    fn a_table_is_added_only_when_missing() {
        let src = no_table_gif();
        let fixed = with_default_palette(&src).expect("patched");
        assert_eq!(fixed.len(), src.len() + 768);
        assert_eq!(fixed[10] & 0x87, 0x87);
        assert!(with_default_palette(&fixed).is_none(), "has a table now");
        assert!(with_default_palette(b"GIF").is_none());
    }

    #[test]
    fn patched_file_decodes_black_and_transparent() {
        let src = no_table_gif();
        assert!(
            image::load_from_memory(&src).is_err(),
            "the gif crate refuses"
        );
        let fixed = with_default_palette(&src).expect("patched");
        let img = image::load_from_memory(&fixed).expect("decodes").to_rgba8();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0, 255]);
        assert_eq!(img.get_pixel(1, 0).0[3], 0);
    }
}
