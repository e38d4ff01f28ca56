//! Alpha: kept where the output format has it, flattened on white where
//! not; `contain` pads with transparency or white.

mod transform_support;

use transform_support::*;

#[test]
fn alpha_kept_for_png_webp_avif_and_flattened_for_jpeg() {
    let src = rgba_png_soft_column();
    for f in [OutputFormat::Png, OutputFormat::WebP] {
        let img = decode(&run(&src, &opts(None, None, Fit::Inside, Some(f))).bytes);
        assert!(
            close(px(&img, 2, 4), [255, 0, 0, 255], 30),
            "{f:?}: {:?}",
            px(&img, 2, 4)
        );
        assert_eq!(px(&img, 14, 4)[3], 0, "{f:?} lost transparency");
    }
    let img = decode(
        &run(
            &src,
            &opts(None, None, Fit::Inside, Some(OutputFormat::Jpeg)),
        )
        .bytes,
    );
    assert!(
        close(px(&img, 14, 4), [255, 255, 255, 255], 8),
        "transparent -> white: {:?}",
        px(&img, 14, 4)
    );
    assert!(close(px(&img, 2, 4), [255, 0, 0, 255], 40));
    // AVIF: no decoder here, but the file must carry an alpha auxiliary image.
    let avif = run(
        &src,
        &opts(None, None, Fit::Inside, Some(OutputFormat::Avif)),
    )
    .bytes;
    assert!(
        avif.windows(15).any(|w| w == b"auxiliary:alpha"),
        "AVIF without alpha plane"
    );
}

#[test]
fn contain_pads_transparent_or_white() {
    let src = quadrant_jpeg(32, 16);
    let img = decode(
        &run(
            &src,
            &opts(Some(20), Some(20), Fit::Contain, Some(OutputFormat::Png)),
        )
        .bytes,
    );
    assert_eq!(img.dimensions(), (20, 20));
    assert_eq!(px(&img, 10, 0)[3], 0, "padding is transparent");
    assert_eq!(px(&img, 10, 10)[3], 255);
    let img = decode(
        &run(
            &src,
            &opts(Some(20), Some(20), Fit::Contain, Some(OutputFormat::Jpeg)),
        )
        .bytes,
    );
    assert!(close(px(&img, 10, 0), [255, 255, 255, 255], 8));
    // cover and fill: exact size, may enlarge with explicit sizes
    let img = decode(&run(&src, &opts(Some(40), Some(40), Fit::Cover, None)).bytes);
    assert_eq!(img.dimensions(), (40, 40));
    let img = decode(&run(&src, &opts(Some(64), Some(10), Fit::Fill, None)).bytes);
    assert_eq!(img.dimensions(), (64, 10));
    // inside never enlarges
    let img = decode(&run(&src, &opts(Some(64), None, Fit::Inside, None)).bytes);
    assert_eq!(img.dimensions(), (32, 16));
}
