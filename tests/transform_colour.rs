//! Colour: CMYK and YCCK JPEGs and embedded ICC profiles come out as sRGB.

mod transform_support;

use transform_support::*;

fn assert_cmyk_colours(t: &Transformed) {
    let img = decode(&t.bytes);
    assert_eq!(img.dimensions(), (16, 8));
    assert!(
        close(px(&img, 3, 4), [0, 255, 255, 255], 30),
        "cyan: {:?}",
        px(&img, 3, 4)
    );
    // magenta at half black: (127, 0, 127)
    assert!(
        close(px(&img, 12, 4), [127, 0, 127, 255], 30),
        "magenta: {:?}",
        px(&img, 12, 4)
    );
}

#[test]
fn cmyk_and_ycck_jpegs_become_srgb() {
    let cmyk = cmyk_samples();
    // jpeg-encoder writes Adobe-style inverted CMYK with an APP14 marker.
    let adobe_cmyk = cmyk_jpeg(false);
    let adobe_ycck = cmyk_jpeg(true);
    assert_eq!(adobe_ycck.windows(5).filter(|w| w == b"Adobe").count(), 1);
    for src in [adobe_cmyk, adobe_ycck] {
        let t = run(
            &src,
            &opts(None, None, Fit::Inside, Some(OutputFormat::Png)),
        );
        assert_cmyk_colours(&t);
    }
    // Non-inverted CMYK without an Adobe marker: feed inverted samples so
    // the stored values are plain, then remove the APP14 segment.
    let inverted: Vec<u8> = cmyk.iter().map(|v| 255 - v).collect();
    let mut plain = jpeg(&inverted, 16, 8, JColor::Cmyk, |_| {});
    let at = plain
        .windows(9)
        .position(|w| w == b"\xFF\xEE\x00\x0EAdobe")
        .expect("APP14");
    plain.drain(at..at + 16);
    let t = run(
        &plain,
        &opts(None, None, Fit::Inside, Some(OutputFormat::Jpeg)),
    );
    assert_cmyk_colours(&t);
}

#[test]
fn icc_srgb_is_untouched_and_p3_is_converted() {
    let data = quadrants(16, 16);
    let plain = jpeg(&data, 16, 16, JColor::Rgb, |_| {});
    let srgb = moxcms::ColorProfile::new_srgb().encode().expect("profile");
    let tagged_srgb = jpeg(&data, 16, 16, JColor::Rgb, |e| {
        e.add_icc_profile(&srgb).expect("icc")
    });
    let o = opts(None, None, Fit::Inside, Some(OutputFormat::Png));
    let a = run(&plain, &o);
    let b = run(&tagged_srgb, &o);
    assert_eq!(a.bytes, b.bytes, "an sRGB profile must not change pixels");
    assert!(!has_metadata(&b.bytes));

    let p3 = moxcms::ColorProfile::new_display_p3()
        .encode()
        .expect("profile");
    let tagged_p3 = jpeg(&data, 16, 16, JColor::Rgb, |e| {
        e.add_icc_profile(&p3).expect("icc")
    });
    let c = decode(&run(&tagged_p3, &o).bytes);
    let a = decode(&a.bytes);
    // P3 green (20,200,40) is more saturated than sRGB green: red drops,
    // green stays high.
    let (pa, pc) = (px(&a, 12, 4), px(&c, 12, 4));
    assert!(
        pc[0] + 10 < pa[0] || pc[0] == 0,
        "P3 not converted: {pa:?} -> {pc:?}"
    );

    // PNG iCCP (zlib-compressed profile) is honoured too.
    let mut iccp = b"p3\0\0".to_vec();
    iccp.extend_from_slice(&zlib_stored(&p3));
    let png_p3 = raw_png(16, 16, 8, 2, false, &[(b"iCCP", iccp)], |x, y| {
        quadrant_color(x, y, 16, 16).to_vec()
    });
    let d = decode(&run(&png_p3, &o).bytes);
    assert!(
        px(&d, 12, 4)[0] < 10,
        "PNG P3 not converted: {:?}",
        px(&d, 12, 4)
    );
}
