//! AVIF sources: refused without the `avif-decode` feature (but served as
//! they are when nothing needs doing); with it, decoded in a child process,
//! which here is the `img-proxy` binary itself.

mod transform_support;

#[cfg(feature = "avif-decode")]
use img_proxy::pipeline::options::DEFAULT_QUALITY;
use transform_support::*;

/// The decoder child is `img-proxy __decode-avif`; this test binary is not
/// it. Set once, before any transform runs, in the one test that decodes.
#[cfg(feature = "avif-decode")]
fn use_the_real_decoder() {
    std::env::set_var(
        img_proxy::pipeline::avif::child::DECODER_ENV,
        env!("CARGO_BIN_EXE_img-proxy"),
    );
}

#[cfg(not(feature = "avif-decode"))]
#[test]
fn avif_sources_are_refused_clearly() {
    let avif = run(
        &quadrant_jpeg(8, 8),
        &opts(None, None, Fit::Inside, Some(OutputFormat::Avif)),
    )
    .bytes;
    let o = opts(Some(8), None, Fit::Inside, None);
    let e = transform(&avif, &o, &Limits::default()).expect_err("avif source");
    assert!(e.to_string().contains("AVIF"), "{e}");
    assert!(e.is_client_error());
    // AVIF to AVIF at the same size (what format=auto asks of an AVIF
    // source in a browser that accepts AVIF) needs no decoder.
    for format in [None, Some(OutputFormat::Avif)] {
        let t = run(&avif, &opts(None, None, Fit::Inside, format));
        assert_eq!((t.format, &t.bytes), (OutputFormat::Avif, &avif));
    }
    let e = transform(
        &avif,
        &opts(None, None, Fit::Inside, Some(OutputFormat::WebP)),
        &Limits::default(),
    )
    .expect_err("avif to webp");
    assert!(e.to_string().contains("AVIF"), "{e}");
}

#[cfg(feature = "avif-decode")]
#[test]
fn avif_sources_decode_with_alpha() {
    use_the_real_decoder();
    let to_avif = opts(None, None, Fit::Inside, Some(OutputFormat::Avif));
    let src = quadrant_jpeg(32, 16);
    let avif = run(&src, &to_avif).bytes;
    assert_eq!(sniff(&avif), Some(SourceFormat::Avif));
    // default output format for an AVIF source is AVIF
    assert_eq!(
        run(&avif, &opts(Some(16), None, Fit::Inside, None)).format,
        OutputFormat::Avif
    );
    let img = decode(
        &run(
            &avif,
            &opts(Some(16), None, Fit::Inside, Some(OutputFormat::Png)),
        )
        .bytes,
    );
    assert_eq!(img.dimensions(), (16, 8));
    assert_quadrants(&img, 40, "AVIF source");
    // alpha survives AVIF -> PNG
    let avif_alpha = run(&rgba_png_soft_column(), &to_avif).bytes;
    let img = decode(
        &run(
            &avif_alpha,
            &opts(None, None, Fit::Inside, Some(OutputFormat::Png)),
        )
        .bytes,
    );
    assert!(
        close(px(&img, 2, 4), [255, 0, 0, 255], 40),
        "{:?}",
        px(&img, 2, 4)
    );
    assert!(px(&img, 14, 4)[3] < 10, "{:?}", px(&img, 14, 4));
    // AVIF to AVIF at its own size and the default quality is the source
    // itself; an explicit quality re-encodes.
    let mut default_q = to_avif.clone();
    default_q.quality = DEFAULT_QUALITY;
    assert_eq!(run(&avif, &default_q).bytes, avif);
    let mut q40 = to_avif.clone();
    q40.quality = 40;
    let t = run(&avif, &q40);
    assert_eq!(t.format, OutputFormat::Avif);
    assert_ne!(t.bytes, avif);
    // truncated AVIF is an error, not a panic
    for cut in [avif.len() / 2, avif.len() - 10] {
        let r = transform(
            &avif[..cut],
            &opts(Some(8), None, Fit::Inside, None),
            &Limits::default(),
        );
        assert!(
            r.as_ref().is_err_and(|e| e.is_client_error()),
            "cut {cut}: {r:?}"
        );
    }
}
