//! `gravity` for `fit=cover`: which part of the source the crop keeps.
//! Sources are three colour bands along their long side (red, green,
//! blue), so the kept band names where the crop sat; `smart` is shown a
//! flat grey scene with one subject away from the centre.

mod transform_support;

use img_proxy::pipeline::Gravity;
use transform_support::*;

const RED: [u8; 4] = [255, 0, 0, 255];
const GREEN: [u8; 4] = [0, 255, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];

/// `w` x `h` RGB pixels in three bands along the long side.
fn bands(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let along = if w >= h { x * 3 / w } else { y * 3 / h };
            out.extend_from_slice(&[[255, 0, 0], [0, 255, 0], [0, 0, 255]][along as usize]);
        }
    }
    out
}

fn png_of(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    raw_png(w, h, 8, 2, false, &[], |x, y| {
        let i = ((y * w + x) * 3) as usize;
        rgb[i..i + 3].to_vec()
    })
}

fn cover(gravity: &str, size: u32) -> TransformOptions {
    TransformOptions {
        gravity: Gravity::parse(gravity).expect(gravity),
        format: Some(OutputFormat::Png),
        ..opts(Some(size), Some(size), Fit::Cover, None)
    }
}

/// The colour at the middle of a `gravity` crop of `src`, 30x30.
fn kept(src: &[u8], gravity: &str) -> [u8; 4] {
    let img = decode(&run(src, &cover(gravity, 30)).bytes);
    assert_eq!(img.dimensions(), (30, 30), "{gravity}");
    px(&img, 15, 15)
}

#[test]
fn compass_gravities_keep_their_side() {
    let wide = png_of(&bands(300, 100), 300, 100);
    let tall = png_of(&bands(100, 300), 100, 300);
    // (gravity, kept from the wide source, kept from the tall one): on a
    // wide source only the horizontal part of a gravity can move the crop.
    for (g, w, t) in [
        ("center", GREEN, GREEN),
        ("north", GREEN, RED),
        ("south", GREEN, BLUE),
        ("east", BLUE, GREEN),
        ("west", RED, GREEN),
        ("north-east", BLUE, RED),
        ("north-west", RED, RED),
        ("south-east", BLUE, BLUE),
        ("south-west", RED, BLUE),
    ] {
        assert!(
            close(kept(&wide, g), w, 8),
            "wide {g}: {:?}",
            kept(&wide, g)
        );
        assert!(
            close(kept(&tall, g), t, 8),
            "tall {g}: {:?}",
            kept(&tall, g)
        );
    }
}

#[test]
fn a_compass_crop_is_flush_with_its_edge() {
    // west on the wide source keeps exactly the red third: red from the
    // left edge to the last few columns, where the Lanczos kernel reaches
    // over the crop's edge into the green.
    let wide = png_of(&bands(300, 100), 300, 100);
    let img = decode(&run(&wide, &cover("west", 30)).bytes);
    for x in [0, 25] {
        assert!(close(px(&img, x, 15), RED, 8), "column {x}");
    }
}

#[test]
fn focal_points_centre_the_point_as_far_as_the_image_allows() {
    let wide = png_of(&bands(300, 100), 300, 100);
    assert!(close(kept(&wide, "fp:0.1:0.5"), RED, 8));
    assert!(close(kept(&wide, "fp:0.9:0"), BLUE, 8));
    assert!(close(kept(&wide, "fp:0.5:0.9"), GREEN, 8));
    // fp 0.4: the 100-wide crop spans source x 70..170 (centred on 120
    // would pass 0; the anchor is (0.4 - 1/6) / (2/3) = 0.35 of the room),
    // so the output's left tenth (30 of 100 source columns) is red.
    let img = decode(&run(&wide, &cover("fp:0.4:0.5", 30)).bytes);
    assert!(close(px(&img, 3, 15), RED, 8), "{:?}", px(&img, 3, 15));
    assert!(close(px(&img, 20, 15), GREEN, 8), "{:?}", px(&img, 20, 15));
}

#[test]
fn gravity_is_meant_as_displayed_whatever_the_exif_orientation() {
    // The wide bands as shown; stored in each orientation as a JPEG.
    let shown = bands(96, 32);
    for o in 1u16..=8 {
        let (stored, sw, sh) = store_oriented(&shown, 96, 32, o);
        let exif = exif_orientation_block(o);
        let src = jpeg(&stored, sw as u16, sh as u16, JColor::Rgb, |e| {
            e.add_exif_metadata(&exif).expect("exif");
        });
        for (g, want) in [("west", RED), ("east", BLUE), ("fp:0.05:0.5", RED)] {
            let img = decode(&run(&src, &cover(g, 16)).bytes);
            assert_eq!(img.dimensions(), (16, 16));
            let got = px(&img, 8, 8);
            assert!(close(got, want, 40), "orientation {o}, {g}: {got:?}");
        }
    }
}

/// A 400x200 flat grey scene with `paint` inside (x0..x1, y0..y1).
fn scene(subject: (u32, u32, u32, u32), paint: fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let (w, h) = (400, 200);
    raw_png(w, h, 8, 2, false, &[], |x, y| {
        let (x0, y0, x1, y1) = subject;
        let inside = (x0..x1).contains(&x) && (y0..y1).contains(&y);
        if inside { paint(x, y) } else { [128, 128, 128] }.to_vec()
    })
}

/// Pixels of a 100x100 output that are clearly not the grey background.
fn subject_pixels(src: &[u8], gravity: &str) -> usize {
    let img = decode(&run(src, &cover(gravity, 100)).bytes);
    img.pixels()
        .filter(|p| p.0.iter().take(3).any(|&c| c.abs_diff(128) > 40))
        .count()
}

#[test]
fn smart_keeps_a_textured_subject_that_the_centre_cuts_off() {
    // A red/green checkerboard at the far left.
    let src = scene((10, 50, 90, 150), |x, y| {
        if (x / 4 + y / 4).is_multiple_of(2) {
            [220, 30, 30]
        } else {
            [30, 180, 40]
        }
    });
    assert_eq!(subject_pixels(&src, "center"), 0, "the centre misses it");
    // 80x100 of 200x200 source pixels: about 20% of the output.
    assert!(subject_pixels(&src, "smart") > 1500, "smart keeps it");
}

#[test]
fn smart_keeps_a_skin_coloured_subject_that_the_centre_cuts_off() {
    // A flat, skin-toned oval at the right.
    let src = scene((320, 40, 390, 160), |x, y| {
        let (dx, dy) = (f64::from(x) - 355.0, f64::from(y) - 100.0);
        if (dx / 35.0).powi(2) + (dy / 60.0).powi(2) <= 1.0 {
            [224, 172, 138]
        } else {
            [128, 128, 128]
        }
    });
    assert_eq!(subject_pixels(&src, "center"), 0, "the centre misses it");
    assert!(subject_pixels(&src, "smart") > 1000, "smart keeps it");
}
