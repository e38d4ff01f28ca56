//! Source and output formats: PNG variants, progressive JPEG, every output
//! format without metadata, extreme sizes, and the `transform` command.

mod transform_support;

use transform_support::*;

#[test]
fn png_16bit_gray_palette_interlaced() {
    let (w, h) = (16u32, 16u32);
    let o = opts(Some(8), None, Fit::Inside, None);
    // 16-bit RGBA
    let p16 = raw_png(w, h, 16, 6, false, &[], |x, y| {
        quadrant_color(x, y, w, h)
            .iter()
            .flat_map(|&c| (u16::from(c) * 257).to_be_bytes())
            .chain([0xFF, 0xFF])
            .collect()
    });
    let t = run(&p16, &o);
    assert_eq!(t.format, OutputFormat::Png);
    assert_quadrants(&decode(&t.bytes), 30, "16-bit RGBA");
    // 8-bit gray, and 1-bit gray
    let gray = raw_png(w, h, 8, 0, false, &[], |x, _| {
        vec![if x < 8 { 10 } else { 240 }]
    });
    let img = decode(&run(&gray, &o).bytes);
    assert!(
        close(px(&img, 1, 1), [10, 10, 10, 255], 6)
            && close(px(&img, 6, 6), [240, 240, 240, 255], 6)
    );
    let bits = raw_png(w, h, 1, 0, false, &[], |x, _| vec![u8::from(x >= 8)]);
    let img = decode(&run(&bits, &opts(None, None, Fit::Inside, None)).bytes);
    assert_eq!(
        (px(&img, 1, 1), px(&img, 14, 1)),
        ([0, 0, 0, 255], [255, 255, 255, 255])
    );
    // palette with tRNS (index 3 transparent), 4-bit indices
    let pal = palette_png(w, h);
    let img = decode(&run(&pal, &opts(None, None, Fit::Inside, None)).bytes);
    assert!(close(px(&img, 2, 2), [RED[0], RED[1], RED[2], 255], 0));
    assert_eq!(px(&img, 12, 12)[3], 0);
    // Adam7 interlaced RGB
    let inter = raw_png(w, h, 8, 2, true, &[], |x, y| {
        quadrant_color(x, y, w, h).to_vec()
    });
    let img = decode(&run(&inter, &opts(None, None, Fit::Inside, None)).bytes);
    assert_quadrants(&img, 0, "interlaced");
    let img = decode(&run(&inter, &o).bytes);
    assert_eq!(img.dimensions(), (8, 8));
    assert_quadrants(&img, 30, "interlaced, resized");
}

#[test]
fn progressive_jpeg_decodes_like_baseline() {
    let base = quadrant_jpeg(64, 32);
    let prog = progressive_jpeg(64, 32);
    assert!(
        prog.windows(2).any(|w| w == [0xFF, 0xC2]),
        "fixture is progressive"
    );
    for w in [None, Some(16), Some(8)] {
        let o = opts(w, None, Fit::Inside, Some(OutputFormat::Png));
        let a = decode(&run(&base, &o).bytes);
        let b = decode(&run(&prog, &o).bytes);
        assert_eq!(a.dimensions(), b.dimensions());
        assert_quadrants(&b, 30, &format!("progressive, w {w:?}"));
    }
}

#[test]
fn every_output_format_matches_its_bytes_and_has_no_metadata() {
    let exif = exif_orientation_block(1);
    let src = jpeg(&quadrants(16, 16), 16, 16, JColor::Rgb, |e| {
        e.add_exif_metadata(&exif).expect("exif");
        e.add_icc_profile(&moxcms::ColorProfile::new_srgb().encode().expect("icc"))
            .expect("icc");
    });
    assert!(has_metadata(&src));
    for f in [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::WebP,
        OutputFormat::Avif,
    ] {
        let t = run(&src, &opts(Some(8), None, Fit::Inside, Some(f)));
        assert_eq!(t.format, f);
        assert!(!has_metadata(&t.bytes), "{f:?} kept metadata");
    }
}

#[test]
fn extreme_sizes() {
    let one = jpeg(&[10, 200, 30], 1, 1, JColor::Rgb, |_| {});
    let thin = raw_png(1, 300, 8, 0, false, &[], |_, y| vec![y as u8]);
    for f in [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::WebP,
        OutputFormat::Avif,
    ] {
        for (src, o, dims) in [
            (&one, opts(Some(1), None, Fit::Inside, Some(f)), (1, 1)),
            (&one, opts(Some(3), Some(2), Fit::Fill, Some(f)), (3, 2)),
            (&thin, opts(None, Some(10), Fit::Inside, Some(f)), (1, 10)),
            (&thin, opts(Some(5), Some(5), Fit::Cover, Some(f)), (5, 5)),
            (&thin, opts(Some(4), Some(4), Fit::Contain, Some(f)), (4, 4)),
        ] {
            let t = run(src, &o);
            if f != OutputFormat::Avif {
                assert_eq!(decode(&t.bytes).dimensions(), dims, "{f:?} {o:?}");
            }
        }
    }
}

#[test]
fn cli_writes_one_file_or_a_directory() {
    use img_proxy::pipeline::cli::{run as cli_run, TransformArgs};
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.jpg");
    let b = dir.path().join("b.png");
    std::fs::write(&a, quadrant_jpeg(32, 16)).expect("write");
    std::fs::write(&b, rgba_png_soft_column()).expect("write");
    let args = |inputs: Vec<std::path::PathBuf>, output: std::path::PathBuf| TransformArgs {
        inputs,
        output,
        width: Some(8),
        height: None,
        fit: None,
        format: None,
        quality: Some(70),
        blur: None,
        sharpen: None,
        gravity: None,
    };
    // one input: output is a file
    let single = dir.path().join("single.jpg");
    cli_run(args(vec![a.clone()], single.clone())).expect("single");
    assert_eq!(
        decode(&std::fs::read(&single).expect("read")).dimensions(),
        (8, 4)
    );
    // several: output is a directory, extension from the output format
    let out = dir.path().join("out");
    cli_run(args(vec![a.clone(), b.clone()], out.clone())).expect("batch");
    assert!(out.join("a.jpg").is_file() && out.join("b.png").is_file());
    let mut webp = args(vec![a.clone(), b.clone()], dir.path().join("w"));
    webp.format = Some("webp".into());
    cli_run(webp).expect("webp batch");
    assert_eq!(
        sniff(&std::fs::read(dir.path().join("w/b.webp")).expect("read")),
        Some(SourceFormat::WebP)
    );
    // a bad input fails the run but the good one is still written
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, b"not an image").expect("write");
    let out2 = dir.path().join("out2");
    let e = cli_run(args(vec![bad, a.clone()], out2.clone())).expect_err("bad input");
    assert!(e.to_string().contains("1 of 2"), "{e}");
    assert!(out2.join("a.jpg").is_file());
    // invalid option values are refused with the option's name
    let mut wide = args(vec![a], single);
    wide.width = Some(100_000);
    assert!(cli_run(wide)
        .expect_err("width")
        .to_string()
        .contains("`w`"));
}
