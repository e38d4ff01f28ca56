//! EXIF orientation: applied (JPEG, PNG eXIf, WebP EXIF) and stripped.

mod transform_support;

use transform_support::*;

#[test]
fn exif_orientation_all_eight_applied_and_stripped() {
    // Displayed image: 32x16 quadrants, stored so that applying the tag
    // gives it back.
    let shown = quadrants(32, 16);
    for o in 1u16..=8 {
        let (stored, sw, sh) = store_oriented(&shown, 32, 16, o);
        let exif = exif_orientation_block(o);
        let src = jpeg(&stored, sw as u16, sh as u16, JColor::Rgb, |e| {
            e.add_exif_metadata(&exif).expect("exif");
        });
        for (w, expect) in [(None, (32, 16)), (Some(16), (16, 8))] {
            let t = run(&src, &opts(w, None, Fit::Inside, None));
            assert!(!has_metadata(&t.bytes), "orientation {o}: metadata left");
            let img = decode(&t.bytes);
            assert_eq!(img.dimensions(), expect, "orientation {o}");
            assert_quadrants(&img, 40, &format!("orientation {o}, w {w:?}"));
        }
    }
}

#[test]
fn png_and_webp_exif_orientation_applied() {
    // Stored 8x16 (portrait), tagged "rotate 90 CW" -> shown 16x8.
    let (stored, sw, sh) = store_oriented(&quadrants(16, 8), 16, 8, 6);
    assert_eq!((sw, sh), (8, 16));
    let exif = exif_orientation_block(6);
    let p = raw_png(sw, sh, 8, 2, false, &[(b"eXIf", exif.clone())], |x, y| {
        let i = ((y * sw + x) * 3) as usize;
        stored[i..i + 3].to_vec()
    });
    let img = decode(&run(&p, &opts(None, None, Fit::Inside, None)).bytes);
    assert_eq!(img.dimensions(), (16, 8));
    assert_quadrants(&img, 0, "PNG eXIf");
    // WebP: VP8X container with an EXIF chunk around a lossless frame.
    let mut out: *mut u8 = std::ptr::null_mut();
    // SAFETY: valid RGB buffer; output freed with WebPFree.
    let still = unsafe {
        let n = libwebp_sys::WebPEncodeLosslessRGB(stored.as_ptr(), 8, 16, 24, &mut out);
        let v = std::slice::from_raw_parts(out, n).to_vec();
        libwebp_sys::WebPFree(out.cast());
        v
    };
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0x08, 0, 0, 0, 7, 0, 0, 15, 0, 0]);
    body.extend_from_slice(&still[12..]);
    body.extend_from_slice(b"EXIF");
    body.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    body.extend_from_slice(&exif);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);
    let t = run(
        &webp,
        &opts(None, None, Fit::Inside, Some(OutputFormat::Png)),
    );
    let img = decode(&t.bytes);
    assert_eq!(img.dimensions(), (16, 8));
    assert_quadrants(&img, 0, "WebP EXIF");
}
