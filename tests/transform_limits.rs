//! Limits: the output canvas and progressive scan counts.

mod transform_support;

use transform_support::*;

#[test]
fn output_canvas_is_limited_too() {
    let src = quadrant_jpeg(8, 8);
    let limits = Limits {
        max_pixels: 10_000,
        ..Limits::default()
    };
    let r = transform(&src, &opts(Some(200), Some(200), Fit::Fill, None), &limits);
    assert!(
        matches!(r, Err(PipelineError::TooManyPixels { .. })),
        "{r:?}"
    );
}

#[test]
fn progressive_scan_bomb_is_refused() {
    let prog = progressive_jpeg(16, 16);
    // Repeat the last (AC refinement) scan until there are > 500 scans.
    let sos: Vec<usize> = prog
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[0xFF, 0xDA])
        .map(|(i, _)| i)
        .collect();
    let last = *sos.last().expect("scans");
    let eoi = prog.len() - 2;
    let mut bomb = prog[..eoi].to_vec();
    for _ in 0..600 {
        bomb.extend_from_slice(&prog[last..eoi]);
    }
    bomb.extend_from_slice(&[0xFF, 0xD9]);
    let e = transform(
        &bomb,
        &opts(Some(8), None, Fit::Inside, None),
        &Limits::default(),
    )
    .expect_err("bomb");
    assert!(e.to_string().contains("scans"), "{e}");
    assert!(transform(
        &prog,
        &opts(Some(8), None, Fit::Inside, None),
        &Limits::default()
    )
    .is_ok());
}
