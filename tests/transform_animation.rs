//! Animations: the first frame as a still, or every frame as animated WebP;
//! the frame limit and the pixel budget.

mod transform_support;

use transform_support::*;

/// Animated WebP: a RIFF container of ANMF chunks, each wrapping a lossless
/// frame produced by libwebp.
fn animated_webp(colors: &[[u8; 4]], w: u32, h: u32) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02 | 0x10, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let chunk = |out: &mut Vec<u8>, ty: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(ty);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
    };
    chunk(&mut body, b"VP8X", &vp8x);
    chunk(&mut body, b"ANIM", &[0, 0, 0, 0, 0, 0]);
    for c in colors {
        let rgba: Vec<u8> = (0..w * h).flat_map(|_| *c).collect();
        let mut out: *mut u8 = std::ptr::null_mut();
        // SAFETY: valid buffer of w*h*4 bytes; output freed with WebPFree.
        let still = unsafe {
            let n = libwebp_sys::WebPEncodeLosslessRGBA(
                rgba.as_ptr(),
                w as i32,
                h as i32,
                (w * 4) as i32,
                &mut out,
            );
            let v = std::slice::from_raw_parts(out, n).to_vec();
            libwebp_sys::WebPFree(out.cast());
            v
        };
        let vp8l = &still[12..]; // skip RIFF header: the VP8L chunk
        let mut anmf = vec![0u8; 6];
        anmf.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        anmf.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        anmf.extend_from_slice(&[100, 0, 0, 0]);
        anmf.extend_from_slice(vp8l);
        chunk(&mut body, b"ANMF", &anmf);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn animations_give_their_first_frame_and_respect_frame_limit() {
    let g = gif(3);
    let t = run(&g, &opts(Some(6), None, Fit::Inside, None));
    assert_eq!(t.format, OutputFormat::Png, "GIF output becomes PNG");
    let img = decode(&t.bytes);
    assert_eq!(img.dimensions(), (6, 5));
    assert!(
        close(px(&img, 3, 2), [255, 0, 0, 255], 4),
        "{:?}",
        px(&img, 3, 2)
    );

    let wp = animated_webp(&[[255, 0, 0, 255], [0, 0, 255, 255]], 12, 10);
    assert_eq!(sniff(&wp), Some(SourceFormat::WebP));
    let t = run(&wp, &opts(Some(6), None, Fit::Inside, None));
    assert_eq!(t.format, OutputFormat::WebP);
    let img = decode(&t.bytes);
    assert_eq!(img.dimensions(), (6, 5));
    assert!(
        close(px(&img, 3, 2), [255, 0, 0, 255], 30),
        "{:?}",
        px(&img, 3, 2)
    );

    let limits = Limits {
        max_frames: 2,
        ..Limits::default()
    };
    let o = opts(Some(6), None, Fit::Inside, None);
    assert_eq!(
        transform(&g, &o, &limits),
        Err(PipelineError::TooManyFrames { max: 2 })
    );
    let wp3 = animated_webp(&[[1, 2, 3, 255]; 3], 4, 4);
    assert_eq!(
        transform(&wp3, &o, &limits),
        Err(PipelineError::TooManyFrames { max: 2 })
    );
}

#[test]
fn animations_stay_animated_as_webp() {
    let webp6 = opts(Some(6), None, Fit::Inside, Some(OutputFormat::WebP));
    let red = [255, 0, 0, 255];
    let blue = [0, 0, 255, 255];
    // GIF (red, blue, blue; 100 ms each) to WebP: every frame resized and
    // the timing kept (libwebp may merge the identical last two frames).
    let g = gif(3);
    let t = run(&g, &webp6);
    assert_eq!(t.format, OutputFormat::WebP);
    let frames = webp_frames(&t.bytes);
    assert!(frames.len() >= 2, "{} frames", frames.len());
    for (img, _) in &frames {
        assert_eq!(img.dimensions(), (6, 5));
    }
    assert!(close(px(&frames[0].0, 3, 2), red, 30), "first frame");
    assert_eq!(frames[0].1, 100);
    let last = &frames[frames.len() - 1].0;
    assert!(close(px(last, 3, 2), blue, 30), "last frame");
    assert_eq!(frames.iter().map(|f| f.1).sum::<u32>(), 300, "total time");

    // An animated WebP stays animated by default (its output is WebP).
    let wp = animated_webp(&[red, blue], 12, 10);
    let frames = webp_frames(&run(&wp, &opts(Some(6), None, Fit::Inside, None)).bytes);
    assert_eq!(frames.len(), 2);
    assert!(close(px(&frames[0].0, 3, 2), red, 30));
    assert!(close(px(&frames[1].0, 3, 2), blue, 30));
    assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), [100, 100]);

    // Crops and pads apply to every frame.
    for fit in [Fit::Cover, Fit::Contain, Fit::Fill] {
        let t = run(&g, &opts(Some(8), Some(8), fit, Some(OutputFormat::WebP)));
        for (img, _) in webp_frames(&t.bytes) {
            assert_eq!(img.dimensions(), (8, 8), "{fit:?}");
        }
    }

    // A frame larger than the GIF's logical screen (the probe widens its
    // size estimate for the pixel limit; the decoders composite on the
    // screen): still animated, sized from the frames actually decoded.
    let mut small_screen = g.clone();
    small_screen[6..10].copy_from_slice(&[8, 0, 6, 0]);
    let still = run(
        &small_screen,
        &opts(None, None, Fit::Inside, Some(OutputFormat::Png)),
    );
    let (sw, sh) = decode(&still.bytes).dimensions();
    let frames = webp_frames(&run(&small_screen, &webp6).bytes);
    assert!(frames.len() >= 2, "{} frames", frames.len());
    let want = (6, (6 * sh + sw / 2) / sw);
    assert!(
        frames.iter().all(|(f, _)| f.dimensions() == want),
        "{want:?}"
    );

    // Frames x canvas over the pixel budget: a still of the first frame.
    let tight = Limits {
        max_pixels: 300, // one 12x10 frame fits, three do not
        ..Limits::default()
    };
    let t = transform(&g, &webp6, &tight).expect("still");
    let frames = webp_frames(&t.bytes);
    assert_eq!(frames.len(), 1);
    assert!(close(px(&frames[0].0, 3, 2), red, 30));

    // Other output formats are stills of the first frame.
    let t = run(
        &g,
        &opts(Some(6), None, Fit::Inside, Some(OutputFormat::Png)),
    );
    assert_eq!(t.format, OutputFormat::Png);

    // Truncated animations: an answer or a clear error, never a panic.
    for cut in [20, g.len() / 2, g.len() - 3] {
        let r = transform(&g[..cut], &webp6, &Limits::default());
        assert!(!matches!(r, Err(PipelineError::Internal(_))), "{r:?}");
    }
}
