//! AVIF sources decoded as browsers show them: real AV1 payloads from our
//! encoder, wrapped in containers built box by box (`heif_fixtures`), run
//! through `transform` (which decodes in-process under `cfg(test)`).

use crate::pipeline::options::{OutputFormat, TransformOptions};
use crate::pipeline::transform::{transform, Limits};

use img_proxy_test_support::heif::*;
use img_proxy_test_support::{assert_quadrants, close, quadrants, BLUE, GREEN, RED, WHITE};

/// Transforms to PNG (lossless: colours are the decoder's) and decodes.
fn png(file: &[u8], w: Option<u32>) -> image::RgbaImage {
    let opts = TransformOptions {
        w,
        format: Some(OutputFormat::Png),
        ..TransformOptions::default()
    };
    let out = transform(file, &opts, &Limits::default()).expect("transform");
    image::load_from_memory(&out.bytes)
        .expect("decodes")
        .to_rgba8()
}

fn rgba(c: [u8; 3]) -> [u8; 4] {
    [c[0], c[1], c[2], 255]
}

/// The colour a viewer sees at the centre of each displayed quadrant,
/// for a stored quadrant image rotated `rot` quarter turns anti-clockwise
/// and then mirrored (axis 0: left-right, 1: top-bottom).
fn shown(rot: u8, mirror: Option<u8>) -> [[u8; 3]; 4] {
    // Quadrants as a 2x2 matrix [[TL, TR], [BL, BR]].
    let mut q = [[RED, GREEN], [BLUE, WHITE]];
    for _ in 0..rot {
        // Anti-clockwise: the right column becomes the top row.
        q = [[q[0][1], q[1][1]], [q[0][0], q[1][0]]];
    }
    match mirror {
        Some(0) => q = [[q[0][1], q[0][0]], [q[1][1], q[1][0]]],
        Some(_) => q = [q[1], q[0]],
        None => {}
    }
    [q[0][0], q[0][1], q[1][0], q[1][1]]
}

#[test]
fn rotation_and_mirroring_are_applied() {
    let av1 = av1_rgb(&quadrants(64, 32), 64, 32);
    for rot in 0..4u8 {
        for mir in [None, Some(0), Some(1)] {
            let mut item = Item::av1(1, av1.clone(), 64, 32).with(irot(rot), true);
            if let Some(axis) = mir {
                item = item.with(imir(axis), true);
            }
            let img = png(&Heif::single(item).build(), None);
            let want_size = if rot % 2 == 1 { (32, 64) } else { (64, 32) };
            assert_eq!(img.dimensions(), want_size, "irot {rot} imir {mir:?}");
            let (w, h) = img.dimensions();
            let at = [
                (w / 4, h / 4),
                (3 * w / 4, h / 4),
                (w / 4, 3 * h / 4),
                (3 * w / 4, 3 * h / 4),
            ];
            for ((x, y), c) in at.into_iter().zip(shown(rot, mir)) {
                let got = img.get_pixel(x, y).0;
                assert!(
                    close(got, rgba(c), 40),
                    "irot {rot} imir {mir:?}: at {x},{y} got {got:?}, want {c:?}"
                );
            }
        }
    }
}

#[test]
fn clean_aperture_crops_before_rotation() {
    // Keep the left half (red over blue), then turn it a quarter
    // anti-clockwise.
    let av1 = av1_rgb(&quadrants(64, 32), 64, 32);
    let file = Heif::single(
        Item::av1(1, av1, 64, 32)
            .with(clap(32, 32, -16, 0), true)
            .with(irot(1), true),
    )
    .build();
    let img = png(&file, None);
    assert_eq!(img.dimensions(), (32, 32));
    // Stored left half: red top, blue bottom. Anti-clockwise turn: the
    // top row goes to the left column.
    assert!(close(img.get_pixel(8, 16).0, rgba(RED), 40), "left is red");
    assert!(
        close(img.get_pixel(24, 16).0, rgba(BLUE), 40),
        "right is blue"
    );
}

#[test]
fn grid_tiles_are_stitched_and_cut_to_size() {
    let file = solid_grid(60, 30);
    let img = png(&file, None);
    assert_eq!(img.dimensions(), (60, 30));
    // Sampled inside each tile (the right column is 28 wide, the bottom
    // row 14 high).
    for (x, y, c) in [
        (10, 5, RED),
        (45, 5, GREEN),
        (10, 22, BLUE),
        (45, 22, WHITE),
    ] {
        assert!(close(img.get_pixel(x, y).0, rgba(c), 30), "{x},{y}");
    }
    // And resized, as a thumbnail would be.
    assert_eq!(png(&file, Some(30)).dimensions(), (30, 15));
}

#[test]
fn sequence_gives_its_first_frame() {
    let frames = vec![av1_solid(16, 8, GREEN), av1_solid(16, 8, RED)];
    let img = png(&sequence(&frames, 16, 8), None);
    assert_eq!(img.dimensions(), (16, 8));
    assert!(close(img.get_pixel(8, 4).0, rgba(GREEN), 30));
}

#[test]
fn idat_item_and_unknown_boxes_decode() {
    let mut item = Item::av1(1, av1_rgb(&quadrants(32, 32), 32, 32), 32, 32)
        .with(pixi_extended(), false)
        .with(bx(b"clli", &[0; 4]), false);
    item.in_idat = true;
    let mut h = Heif::single(item);
    h.extra.push(bx(b"zzzz", &[1, 2, 3]));
    assert_quadrants(&png(&h.build(), None), 40, "idat + unknown boxes");
}

/// Blur and sharpen change pixels, so an AVIF asked for either at its own
/// size and format is decoded, not passed through untouched.
#[test]
fn blur_or_sharpen_alone_is_not_served_as_is() {
    use crate::pipeline::options::RequestedOptions;
    let opts = |q: &[(&str, &str)]| {
        RequestedOptions::from_query(q.iter().copied())
            .expect("valid options")
            .resolve(None)
            .options
    };
    assert!(super::serve_as_is(&opts(&[])));
    assert!(super::serve_as_is(&opts(&[("format", "avif")])));
    assert!(!super::serve_as_is(&opts(&[("blur", "5")])));
    assert!(!super::serve_as_is(&opts(&[
        ("sharpen", "1"),
        ("format", "avif")
    ])));
}
