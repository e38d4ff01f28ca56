//! Container-level tests of `heif`: files built box by box with fake AV1
//! payloads (nothing is decoded here; see `avif_tests` for pixels).

use super::*;
use crate::pipeline::avif::file::parse;
use crate::pipeline::pixels::Pixels;

use img_proxy_test_support::heif::*;

fn payload(tag: u8) -> Vec<u8> {
    vec![tag; 10]
}

fn single(c: &Coded) -> &Av1Item {
    match c {
        Coded::Single(i) => i,
        Coded::Grid(_) => panic!("expected a single item"),
    }
}

#[test]
fn plain_item_with_size() {
    let file = Heif::single(Item::av1(1, payload(7), 64, 32)).build();
    let a = parse(&file).expect("parses");
    assert_eq!((a.width, a.height, a.frames, a.orientation), (64, 32, 1, 1));
    assert_eq!(single(&a.color).data, payload(7));
    assert_eq!((a.crop, a.alpha.is_none()), (None, true));
    assert!(complete(&file));
}

#[test]
fn rotation_and_mirror_become_an_orientation() {
    let file = Heif::single(
        Item::av1(1, payload(1), 64, 32)
            .with(irot(1), true)
            .with(imir(0), true),
    )
    .build();
    assert_eq!(parse(&file).expect("parses").orientation, 7);
}

/// Explicit rotate-then-mirror, the way HEIF describes `irot` and `imir`.
fn rotate_ccw(p: &Pixels) -> Pixels {
    let (w, h) = (p.w as usize, p.h as usize);
    let mut out = Vec::with_capacity(w * h);
    for y in 0..w {
        for x in 0..h {
            out.push(p.data[x * w + (w - 1 - y)]);
        }
    }
    Pixels::new(p.h, p.w, 1, out)
}

fn mirror(p: &Pixels, axis: u8) -> Pixels {
    let (w, h) = (p.w as usize, p.h as usize);
    let out = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if axis == 0 {
                p.data[y * w + (w - 1 - x)]
            } else {
                p.data[(h - 1 - y) * w + x]
            }
        })
        .collect();
    Pixels::new(p.w, p.h, 1, out)
}

#[test]
fn orientation_table_matches_rotate_then_mirror() {
    let img = Pixels::new(3, 2, 1, (0..6).collect());
    for rot in 0..4u8 {
        for mir in [None, Some(0), Some(1)] {
            let mut want = img.clone();
            for _ in 0..rot {
                want = rotate_ccw(&want);
            }
            if let Some(axis) = mir {
                want = mirror(&want, axis);
            }
            let got = img.clone().orient(orientation(rot, mir));
            assert_eq!(got, want, "irot {rot} imir {mir:?}");
        }
    }
}

#[test]
fn clean_aperture_is_centred_and_checked() {
    // 40x20 window, centred, on 64x32: from (12, 6).
    let c = [40, 1, 20, 1, 0, 1, 0, 1];
    assert_eq!(
        clean_aperture(&c, 64, 32),
        Some(Crop {
            x: 12,
            y: 6,
            w: 40,
            h: 20
        })
    );
    // Offsets move the centre: -12 px to the left edge.
    let c = [40, 1, 20, 1, -12i64, 1, 6, 1];
    assert_eq!(
        clean_aperture(&c, 64, 32).map(|c| (c.x, c.y)),
        Some((0, 12))
    );
    // Fractional offsets that land on whole pixels are fine (-24/2).
    let c = [40, 1, 20, 1, -24, 2, 0, 1];
    assert_eq!(clean_aperture(&c, 64, 32).map(|c| c.x), Some(0));
    // Outside the image, half pixels, fractional sizes, zero denominators.
    for c in [
        [40, 1, 20, 1, -13, 1, 0, 1],
        [41, 1, 20, 1, 0, 1, 0, 1],
        [81, 2, 20, 1, 0, 1, 0, 1],
        [40, 0, 20, 1, 0, 1, 0, 1],
        [80, 1, 20, 1, 0, 1, 0, 1],
    ] {
        assert_eq!(clean_aperture(&c, 64, 32), None, "{c:?}");
    }
}

#[test]
fn clap_property_is_read() {
    let file =
        Heif::single(Item::av1(1, payload(1), 64, 32).with(clap(40, 20, 0, 0), true)).build();
    let crop = parse(&file).expect("parses").crop;
    assert_eq!(crop.map(|c| (c.x, c.y, c.w, c.h)), Some((12, 6, 40, 20)));
}

#[test]
fn data_in_idat_without_mdat() {
    let mut item = Item::av1(1, payload(9), 8, 8);
    item.in_idat = true;
    let file = Heif::single(item).build();
    assert!(!file.windows(4).any(|w| w == b"mdat"));
    assert_eq!(
        single(&parse(&file).expect("parses").color).data,
        payload(9)
    );
    assert!(complete(&file), "idat-only files are whole");
    // Every cut is still found.
    for cut in 1..file.len() {
        assert!(!complete(&file[..cut]), "cut at {cut}");
    }
}

#[test]
fn item_data_past_the_end_is_incomplete() {
    let file = Heif::single(Item::av1(1, payload(9), 8, 8)).build();
    // Drop the mdat box entirely: boxes fit, but the item's data is gone.
    let without = &file[..file.len() - 18];
    assert!(!complete(without));
    assert!(parse(without).is_err());
}

#[test]
fn operating_point_and_layer() {
    let file = Heif::single(
        Item::av1(1, payload(1), 8, 8)
            .with(a1op(1), true)
            .with(bx(b"lsel", &[0, 1]), true),
    )
    .build();
    let a = parse(&file).expect("parses");
    let item = single(&a.color);
    assert_eq!((item.operating_point, item.layer), (1, Some(1)));
    // lsel 0xFFFF means "the highest layer": no selection.
    let file =
        Heif::single(Item::av1(1, payload(1), 8, 8).with(bx(b"lsel", &[255, 255]), true)).build();
    assert_eq!(single(&parse(&file).expect("parses").color).layer, None);
}

#[test]
fn unknown_boxes_are_skipped_unless_essential() {
    let mut h = Heif::single(
        Item::av1(1, payload(1), 8, 8)
            .with(pixi_extended(), false)
            .with(bx(b"clli", &[0; 4]), false)
            .with(bx(b"zzzz", &[1, 2, 3]), false),
    );
    h.extra.push(bx(b"free", &[0; 5]));
    h.extra.push(bx(b"wxyz", &[0; 3]));
    parse(&h.build()).expect("unknown non-essential boxes are skipped");
    let file = Heif::single(Item::av1(1, payload(1), 8, 8).with(bx(b"zzzz", &[1]), true)).build();
    let e = parse(&file).expect_err("essential unknown");
    assert!(matches!(e, PipelineError::Unsupported(_)), "{e:?}");
}

#[test]
fn grid_of_tiles_in_reference_order() {
    let mut grid = Item::av1(1, grid_header(2, 3, 100, 50), 100, 50);
    grid.ty = *b"grid";
    grid.in_idat = true;
    let mut items = vec![grid.with(irot(2), true)];
    for t in 0..6 {
        items.push(Item::av1(10 + t, payload(t as u8), 40, 30));
    }
    // References deliberately not in id order.
    let file = Heif {
        items,
        primary: 1,
        refs: vec![(*b"dimg", 1, vec![15, 14, 13, 12, 11, 10])],
        extra: Vec::new(),
    }
    .build();
    let a = parse(&file).expect("parses");
    let Coded::Grid(g) = &a.color else {
        panic!("expected a grid")
    };
    assert_eq!((g.rows, g.cols, g.width, g.height), (2, 3, 100, 50));
    let tags: Vec<u8> = g.tiles.iter().map(|t| t.data[0]).collect();
    assert_eq!(tags, vec![5, 4, 3, 2, 1, 0]);
    assert_eq!((a.width, a.height, a.orientation), (100, 50, 3));
}

#[test]
fn grid_with_missing_tiles_is_corrupt() {
    let mut grid = Item::av1(1, grid_header(2, 2, 80, 60), 80, 60);
    grid.ty = *b"grid";
    let file = Heif {
        items: vec![grid, Item::av1(2, payload(1), 40, 30)],
        primary: 1,
        refs: vec![(*b"dimg", 1, vec![2])],
        extra: Vec::new(),
    }
    .build();
    assert!(matches!(parse(&file), Err(PipelineError::Corrupt(_))));
}

#[test]
fn alpha_auxiliary_and_premultiplication() {
    let file = Heif {
        items: vec![
            Item::av1(1, payload(1), 8, 8),
            Item::av1(2, payload(2), 8, 8).with(alpha_aux(), true),
        ],
        primary: 1,
        refs: vec![(*b"auxl", 2, vec![1]), (*b"prem", 1, vec![2])],
        extra: Vec::new(),
    }
    .build();
    let a = parse(&file).expect("parses");
    assert_eq!(a.alpha.as_ref().map(|c| single(c).data[0]), Some(2));
    assert!(a.premultiplied);
}

#[test]
fn sequence_first_frame_and_count() {
    let frames = vec![payload(1), payload(2), payload(3)];
    let file = sequence(&frames, 16, 8);
    let a = parse(&file).expect("parses");
    assert_eq!((a.width, a.height, a.frames), (16, 8, 3));
    assert_eq!(single(&a.color).data, payload(1));
    assert!(complete(&file));
    assert!(!complete(&file[..file.len() - 1]));
}

#[test]
fn hostile_headers_are_errors_not_panics() {
    let good = Heif::single(Item::av1(1, payload(1), 8, 8).with(clap(4, 4, 0, 0), true)).build();
    // Every single-byte change and every cut parses or fails cleanly.
    for i in 0..good.len() {
        for v in [0u8, 1, 0x7F, 0xFF] {
            let mut bad = good.clone();
            bad[i] = v;
            let _ = parse(&bad);
            let _ = complete(&bad);
        }
        let _ = parse(&good[..i]);
    }
    let file = sequence(&[payload(1)], 16, 8);
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0xFF;
        let _ = parse(&bad);
    }
}

#[test]
fn a_zero_sized_item_is_corrupt() {
    for (w, h) in [(0, 32), (64, 0), (0, 0)] {
        let file = Heif::single(Item::av1(1, payload(7), w, h)).build();
        let Err(err) = parse(&file) else {
            panic!("a {w}x{h} picture was accepted");
        };
        assert!(err.to_string().contains(&format!("{w}x{h}")), "{err}");
    }
}
