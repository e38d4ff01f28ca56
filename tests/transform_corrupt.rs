//! Corrupt, truncated and unsupported input: a client error, never a panic.

mod transform_support;

use transform_support::*;

#[test]
fn truncated_and_corrupt_inputs_are_errors_not_panics() {
    let j = quadrant_jpeg(64, 64);
    let prog = progressive_jpeg(64, 64);
    let p = raw_png(32, 32, 8, 2, false, &[], |x, y| {
        quadrant_color(x, y, 32, 32).to_vec()
    });
    // One frame: only the first frame is decoded, so a cut in a later frame
    // of an animation leaves a complete (first-frame) result.
    let g = gif(1);
    let o = opts(Some(16), None, Fit::Inside, None);
    for (name, src) in [
        ("jpeg", &j),
        ("progressive", &prog),
        ("png", &p),
        ("gif", &g),
    ] {
        for cut in [src.len() / 3, src.len() / 2, src.len() * 9 / 10] {
            let r = transform(&src[..cut], &o, &Limits::default());
            assert!(
                r.is_err(),
                "{name} truncated at {cut}/{} was accepted",
                src.len()
            );
            assert!(r.unwrap_err().is_client_error());
        }
    }
    // JPEG missing only its EOI marker is a complete image.
    assert!(transform(&j[..j.len() - 2], &o, &Limits::default()).is_ok());
    // Byte flips anywhere: any result is fine, a panic is not (transform
    // catches panics, so check that no Internal error shows up either).
    // AVIF sources are not flipped here: unit tests decode AVIF in-process
    // (their executable is the test harness, not `img-proxy`), and rav1d
    // 1.1 aborts the process on some corrupt streams. The flips run through
    // the real binary's child-process decoder in tests/pipeline.rs.
    let avif = run(&p, &opts(None, None, Fit::Inside, Some(OutputFormat::Avif))).bytes;
    let webp = run(&p, &opts(None, None, Fit::Inside, Some(OutputFormat::WebP))).bytes;
    if !cfg!(feature = "avif-decode") {
        let e = transform(&avif, &o, &Limits::default()).expect_err("avif");
        assert!(e.is_client_error());
    }
    for (name, src) in [("jpeg", &j), ("png", &p), ("gif", &g), ("webp", &webp)] {
        for i in (0..src.len()).step_by(7) {
            let mut bad = src.to_vec();
            bad[i] ^= 0x5A;
            if let Err(e) = transform(&bad, &o, &Limits::default()) {
                assert!(e.is_client_error(), "{name} flip at {i}: {e}");
            }
        }
    }
}

#[test]
fn malformed_svg_is_refused_clearly() {
    let o = opts(Some(8), None, Fit::Inside, None);
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect></svg>"#;
    let e = transform(svg, &o, &Limits::default()).expect_err("svg");
    assert!(matches!(e, PipelineError::Corrupt(_)) && e.is_client_error());
}
