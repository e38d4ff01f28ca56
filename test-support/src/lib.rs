//! Image fixtures generated in memory, and independent decoders for what
//! the proxy answers.
//!
//! A dev-dependency of img-proxy (`img-proxy-test-support`), shared by its
//! unit tests and its integration tests (`tests/common` re-exports it as
//! `fixtures`). It knows nothing of img-proxy itself, so its decoders are
//! independent checks: EXIF-oriented and CMYK JPEGs, progressive JPEG,
//! hand-built PNGs (16-bit, palette, interlaced), RGBA PNG, animated GIF
//! and WebP, AVIF and the PNG bomb. All are small so debug builds stay
//! fast.

pub mod heif;

use jpeg_encoder::{ColorType as JColor, Encoder as JEncoder, SamplingFactor};

pub const RED: [u8; 3] = [230, 20, 20];
pub const GREEN: [u8; 3] = [20, 200, 40];
pub const BLUE: [u8; 3] = [20, 40, 220];
pub const WHITE: [u8; 3] = [250, 250, 250];

/// The colour at `x`,`y` of a `w` x `h` image of four quadrants (TL red,
/// TR green, BL blue, BR white): asymmetric under every rotation and flip.
pub fn quadrant_color(x: u32, y: u32, w: u32, h: u32) -> [u8; 3] {
    match (x < w / 2, y < h / 2) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => WHITE,
    }
}

/// Interleaved RGB samples of a `w` x `h` quadrant image.
pub fn quadrants(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&quadrant_color(x, y, w, h));
        }
    }
    v
}

/// A JPEG of `data` (`ct` samples), quality 95, no chroma subsampling;
/// `f` can add metadata or make it progressive.
pub fn jpeg(
    data: &[u8],
    w: u16,
    h: u16,
    ct: JColor,
    f: impl FnOnce(&mut JEncoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = JEncoder::new(&mut out, 95);
    e.set_sampling_factor(SamplingFactor::F_1_1);
    f(&mut e);
    e.encode(data, w, h, ct).expect("encode fixture");
    out
}

/// A plain baseline JPEG of a `w` x `h` quadrant image.
pub fn quadrant_jpeg(w: u16, h: u16) -> Vec<u8> {
    jpeg(
        &quadrants(u32::from(w), u32::from(h)),
        w,
        h,
        JColor::Rgb,
        |_| {},
    )
}

/// The same, progressive (SOF2).
pub fn progressive_jpeg(w: u16, h: u16) -> Vec<u8> {
    let j = jpeg(
        &quadrants(u32::from(w), u32::from(h)),
        w,
        h,
        JColor::Rgb,
        |e| e.set_progressive(true),
    );
    assert!(j.windows(2).any(|m| m == [0xFF, 0xC2]), "not progressive");
    j
}

/// A little-endian TIFF block holding only an Orientation tag.
pub fn exif_orientation_block(o: u16) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&o.to_le_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

/// A JPEG tagged with EXIF orientation `o` whose pixels are stored so that
/// a viewer applying the tag shows a `w` x `h` quadrant image. For 5..=8
/// the stored image is `h` x `w`.
pub fn oriented_jpeg(o: u16, w: u32, h: u32) -> Vec<u8> {
    let (sw, sh) = if o >= 5 { (h, w) } else { (w, h) };
    // For each stored pixel (a, b): the displayed pixel it becomes.
    let shown = |a: u32, b: u32| -> (u32, u32) {
        match o {
            1 => (a, b),
            2 => (w - 1 - a, b),
            3 => (w - 1 - a, h - 1 - b),
            4 => (a, h - 1 - b),
            5 => (b, a),
            6 => (w - 1 - b, a),
            7 => (w - 1 - b, h - 1 - a),
            8 => (b, h - 1 - a),
            _ => panic!("orientation {o}"),
        }
    };
    let mut data = Vec::with_capacity((sw * sh * 3) as usize);
    for b in 0..sh {
        for a in 0..sw {
            let (x, y) = shown(a, b);
            data.extend_from_slice(&quadrant_color(x, y, w, h));
        }
    }
    let exif = exif_orientation_block(o);
    jpeg(&data, sw as u16, sh as u16, JColor::Rgb, |e| {
        e.add_exif_metadata(&exif).expect("exif");
    })
}

/// A 16x8 CMYK JPEG (Adobe APP14, inverted samples as Photoshop writes
/// them): left half pure cyan, right half magenta with 50% black. As sRGB
/// that is about (0,255,255) and (127,0,127).
pub fn cmyk_jpeg(ycck: bool) -> Vec<u8> {
    let ct = if ycck {
        JColor::CmykAsYcck
    } else {
        JColor::Cmyk
    };
    jpeg(&cmyk_samples(), 16, 8, ct, |_| {})
}

/// The samples of [`cmyk_jpeg`], 16x8 plain CMYK (0 = no ink): left half
/// cyan, right half magenta with 50% black.
pub fn cmyk_samples() -> Vec<u8> {
    let (w, h) = (16usize, 8usize);
    let mut v = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            v.extend_from_slice(if x < w / 2 {
                &[255, 0, 0, 0]
            } else {
                &[0, 255, 0, 128]
            });
        }
    }
    v
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn png_chunk(out: &mut Vec<u8>, ty: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut c = ty.to_vec();
    c.extend_from_slice(data);
    out.extend_from_slice(&c);
    out.extend_from_slice(&crc32(&c).to_be_bytes());
}

/// zlib stream of stored (uncompressed) deflate blocks.
pub fn zlib_stored(raw: &[u8]) -> Vec<u8> {
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = if raw.is_empty() {
        vec![&[][..]]
    } else {
        raw.chunks(65535).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        z.push(u8::from(i + 1 == chunks.len()));
        z.extend_from_slice(&(c.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(c.len() as u16)).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    z
}

/// Hand-built PNG of any bit depth and colour type, its image data in
/// stored (uncompressed) deflate blocks. `pixel(x, y)` returns the raw
/// sample bytes of one pixel (for depths below 8, one byte holding the
/// value). Interlaced images are written as the seven Adam7 passes.
pub fn raw_png(
    w: u32,
    h: u32,
    depth: u8,
    color: u8,
    interlace: bool,
    extra: &[(&[u8; 4], Vec<u8>)],
    pixel: impl Fn(u32, u32) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, u8::from(interlace)]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    for (ty, data) in extra {
        png_chunk(&mut out, ty, data);
    }
    let passes: Vec<(u32, u32, u32, u32)> = if interlace {
        vec![
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ]
    } else {
        vec![(0, 0, 1, 1)]
    };
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in passes {
        let xs: Vec<u32> = (x0..w).step_by(dx as usize).collect();
        if xs.is_empty() {
            continue;
        }
        for y in (y0..h).step_by(dy as usize) {
            raw.push(0); // filter: none
            if depth < 8 {
                let mut acc = 0u16;
                let mut nbits = 0;
                for &x in &xs {
                    acc = (acc << depth) | u16::from(pixel(x, y)[0]);
                    nbits += depth;
                    if nbits == 8 {
                        raw.push(acc as u8);
                        acc = 0;
                        nbits = 0;
                    }
                }
                if nbits > 0 {
                    raw.push((acc << (8 - nbits)) as u8);
                }
            } else {
                for &x in &xs {
                    raw.extend_from_slice(&pixel(x, y));
                }
            }
        }
    }
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// 16-bit RGB quadrants.
pub fn png16(w: u32, h: u32) -> Vec<u8> {
    raw_png(w, h, 16, 2, false, &[], |x, y| {
        quadrant_color(x, y, w, h)
            .iter()
            .flat_map(|&c| (u16::from(c) * 257).to_be_bytes())
            .collect()
    })
}

/// 4-bit palette quadrants whose bottom-right (white) entry is fully
/// transparent through `tRNS`.
pub fn palette_png(w: u32, h: u32) -> Vec<u8> {
    let plte: Vec<u8> = [RED, GREEN, BLUE, WHITE].concat();
    raw_png(
        w,
        h,
        4,
        3,
        false,
        &[(b"PLTE", plte), (b"tRNS", vec![255, 255, 255, 0])],
        |x, y| vec![u8::from(x >= w / 2) + 2 * u8::from(y >= h / 2)],
    )
}

/// A `w` x `h` RGBA PNG: left half opaque red, right half fully
/// transparent.
pub fn rgba_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            image::Rgba([255, 0, 0, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    encode_png(&image::DynamicImage::ImageRgba8(img))
}

/// The same as a lossless WebP (VP8L with alpha).
pub fn rgba_webp(w: u32, h: u32) -> Vec<u8> {
    let img = image::load_from_memory(&rgba_png(w, h)).expect("fixture");
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::WebP)
        .expect("encode WebP fixture");
    out.into_inner()
}

/// Quadrants as an 8-bit RGB PNG.
pub fn quadrant_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_raw(w, h, quadrants(w, h)).expect("size");
    encode_png(&image::DynamicImage::ImageRgb8(img))
}

/// An RGB PNG of noise that deflate cannot shrink, so decoding and
/// resampling it take real time (for the overload test).
pub fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        image::Rgb([s as u8, (s >> 8) as u8, (s >> 16) as u8])
    });
    encode_png(&image::DynamicImage::ImageRgb8(img))
}

fn encode_png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG fixture");
    out.into_inner()
}

/// A 12x10 GIF of `frames` frames: the first red, the others blue.
pub fn gif(frames: usize) -> Vec<u8> {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let mut out = Vec::new();
    {
        let mut e = GifEncoder::new(&mut out);
        for i in 0..frames {
            let c = if i == 0 {
                [255, 0, 0, 255]
            } else {
                [0, 0, 255, 255]
            };
            let img = RgbaImage::from_pixel(12, 10, image::Rgba(c));
            e.encode_frame(Frame::from_parts(
                img,
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            ))
            .expect("gif frame");
        }
    }
    out
}

/// A `w` x `h` AVIF of quadrants, encoded with ravif.
pub fn avif(w: u32, h: u32) -> Vec<u8> {
    let px: Vec<rgb::RGB8> = quadrants(w, h)
        .chunks_exact(3)
        .map(|c| rgb::RGB8::new(c[0], c[1], c[2]))
        .collect();
    ravif::Encoder::new()
        .with_speed(10)
        .with_num_threads(Some(1))
        .encode_rgb(ravif::Img::new(&px[..], w as usize, h as usize))
        .expect("encode AVIF fixture")
        .avif_file
}

/// A PNG declaring `side` x `side` 8-bit gray whose IDAT really inflates
/// to `side * (side + 1)` bytes of zeros (see [`zlib_zeros`]). 20000 gives
/// ~400 MB from a few hundred KB.
pub fn png_bomb(side: u32) -> Vec<u8> {
    let z = zlib_zeros(u64::from(side) * (u64::from(side) + 1));
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A zlib stream that inflates to `total` zero bytes at ~1000:1: one
/// dynamic-Huffman deflate block in which a 258-byte match costs 2 bits.
pub fn zlib_zeros(total: u64) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, v: u64, n: u32) {
            self.acc |= v << self.n;
            self.n += n;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        // Huffman codes go most-significant bit first.
        fn code(&mut self, code: u64, len: u32) {
            let mut r = 0;
            for i in 0..len {
                r |= ((code >> i) & 1) << (len - 1 - i);
            }
            self.put(r, len);
        }
    }
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // final block
    b.put(2, 2); // dynamic Huffman
    b.put(29, 5); // HLIT: 286 literal/length codes
    b.put(0, 5); // HDIST: 1 distance code
    b.put(14, 4); // HCLEN: 18 code-length codes
                  // code-length code lengths, in the spec's permuted order
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        b.put(
            match sym {
                18 => 1,
                1 | 2 => 2,
                _ => 0,
            },
            3,
        );
    }
    // code-length codes: 18 -> "0", 1 -> "10", 2 -> "11"
    let (cl1, cl2) = ((0b10, 2), (0b11, 2));
    b.code(cl2.0, cl2.1); // lit 0: length 2
    b.code(0, 1);
    b.put(127, 7); // 138 zeros (1..=138)
    b.code(0, 1);
    b.put(106, 7); // 117 zeros (139..=255)
    b.code(cl2.0, cl2.1); // 256 (end of block): length 2
    b.code(0, 1);
    b.put(17, 7); // 28 zeros (257..=284)
    b.code(cl1.0, cl1.1); // 285 (length 258): length 1
    b.code(cl1.0, cl1.1); // distance 0: length 1
                          // literal/length codes: 285 -> "0", 0 -> "10", 256 -> "11"
    b.code(0b10, 2); // one literal zero
    let rest = total - 1;
    for _ in 0..rest / 258 {
        b.put(0, 2); // length 258 ("0"), distance 1 ("0")
    }
    for _ in 0..rest % 258 {
        b.code(0b10, 2);
    }
    b.code(0b11, 2); // end of block
    b.put(0, 7);
    let mut z = b.out;
    let adler = ((total % 65521) << 16) | 1;
    z.extend_from_slice(&(adler as u32).to_be_bytes());
    z
}

// --- reading answers ----------------------------------------------------------

/// The format of `bytes` by magic number, as a MIME type; `None` for
/// anything else.
pub fn magic(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..12] == b"ftypavif" {
        Some("image/avif")
    } else {
        None
    }
}

/// Decodes a JPEG, PNG, GIF or WebP answer to RGBA, independently of the
/// proxy's own pipeline: JPEG with plain libjpeg-turbo (zune-jpeg
/// 0.5.15 mis-decodes single-code Huffman tables, which flat images produce),
/// the rest with the `image` crate.
pub fn decode(bytes: &[u8]) -> image::RgbaImage {
    if magic(bytes) == Some("image/jpeg") {
        let d = mozjpeg::Decompress::new_mem(bytes).expect("jpeg header");
        let mut s = d.rgba().expect("jpeg start");
        let (w, h) = (s.width() as u32, s.height() as u32);
        let data: Vec<u8> = s.read_scanlines().expect("jpeg data");
        return image::RgbaImage::from_raw(w, h, data).expect("jpeg size");
    }
    image::load_from_memory(bytes)
        .expect("decodable answer")
        .to_rgba8()
}

/// Width and height of any answer; for AVIF (the `image` crate here has no
/// AV1 decoder) from the `ispe` property of the primary image.
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    if magic(bytes) == Some("image/avif") {
        let at = bytes
            .windows(4)
            .position(|w| w == b"ispe")
            .expect("AVIF without ispe");
        let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
        // box type, then version/flags (4), width (4), height (4)
        return (be(at + 8), be(at + 12));
    }
    decode(bytes).dimensions()
}

/// Whether two RGBA pixels differ by at most `tol` per channel.
pub fn close(a: [u8; 4], b: [u8; 4], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

/// Pixel `x`,`y` as RGBA.
pub fn px(img: &image::RgbaImage, x: u32, y: u32) -> [u8; 4] {
    img.get_pixel(x, y).0
}

/// Asserts that `img` shows upright quadrants (sampled at their centres).
pub fn assert_quadrants(img: &image::RgbaImage, tol: u8, what: &str) {
    let (w, h) = img.dimensions();
    for (x, y, c) in [
        (w / 4, h / 4, RED),
        (3 * w / 4, h / 4, GREEN),
        (w / 4, 3 * h / 4, BLUE),
        (3 * w / 4, 3 * h / 4, WHITE),
    ] {
        let got = px(img, x, y);
        assert!(
            close(got, [c[0], c[1], c[2], 255], tol),
            "{what}: at {x},{y} got {got:?}, want {c:?}"
        );
    }
}

/// The frames of an animated WebP answer and how long each shows (ms),
/// decoded with the `image` crate (libwebp is the proxy's encoder, so an
/// independent decoder checks it). A still WebP is one frame of 0 ms.
pub fn webp_frames(bytes: &[u8]) -> Vec<(image::RgbaImage, u32)> {
    use image::AnimationDecoder;
    let dec =
        image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(bytes)).expect("WebP header");
    if !dec.has_animation() {
        return vec![(decode(bytes), 0)];
    }
    dec.into_frames()
        .map(|f| {
            let f = f.expect("WebP frame");
            let (n, d) = f.delay().numer_denom_ms();
            (f.into_buffer(), n / d.max(1))
        })
        .collect()
}

/// The stored RGB pixels (and their size) of a picture whose displayed
/// form is `shown` (`w` x `h`), for EXIF orientation `o`: applying `o` to
/// the result gives `shown` back. Written from the EXIF definition (a
/// transposition, then mirrors), independently of the proxy's code.
pub fn store_oriented(shown: &[u8], w: u32, h: u32, o: u16) -> (Vec<u8>, u32, u32) {
    // (transpose, mirror x, mirror y) taking a displayed pixel to its
    // stored place, per orientation 1..=8.
    let (transpose, mirror_x, mirror_y) = match o {
        2 => (false, true, false),
        3 => (false, true, true),
        4 => (false, false, true),
        5 => (true, false, false),
        6 => (true, false, true),
        7 => (true, true, true),
        8 => (true, true, false),
        _ => (false, false, false),
    };
    let (sw, sh) = if transpose { (h, w) } else { (w, h) };
    let mut stored = vec![0u8; shown.len()];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = if transpose { (y, x) } else { (x, y) };
            let sx = if mirror_x { sw - 1 - a } else { a };
            let sy = if mirror_y { sh - 1 - b } else { b };
            let from = ((y * w + x) * 3) as usize;
            let to = ((sy * sw + sx) * 3) as usize;
            stored[to..to + 3].copy_from_slice(&shown[from..from + 3]);
        }
    }
    (stored, sw, sh)
}

/// A 2x1 GIF without any colour table (allowed by GIF89a; browsers show
/// black): index 0, then index 1, which is transparent.
pub fn no_palette_gif() -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&[2, 0, 1, 0, 0x00, 0, 0]);
    // Graphic Control Extension: transparent index 1.
    g.extend_from_slice(&[0x21, 0xF9, 4, 0x01, 0, 0, 1, 0]);
    // Image descriptor, no local table.
    g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 2, 0, 1, 0, 0x00]);
    // LZW, minimum code size 2: 3-bit codes clear (4), 0, 1, end (5),
    // packed from the least significant bit: 0x44, 0x0A.
    g.extend_from_slice(&[2, 2, 0x44, 0x0A, 0]);
    g.push(0x3B);
    g
}

// --- JPEG XL ----------------------------------------------------------------

/// A 64x48 JPEG XL of [`quadrants`], lossless (modular). Made with Debian
/// 12's `libjxl-tools` 0.7.0 from a PNG of `quadrants(64, 48)`:
/// `cjxl quadrants.png quadrants-64x48-lossless.jxl -d 0 -e 7`.
pub const JXL_LOSSLESS: &[u8] = include_bytes!("../fixtures/quadrants-64x48-lossless.jxl");

/// The same picture, lossy (VarDCT, XYB): `cjxl ... -d 1 -e 7`.
pub const JXL_LOSSY: &[u8] = include_bytes!("../fixtures/quadrants-64x48-lossy.jxl");

/// A bare JPEG XL codestream whose header declares `w` x `h` (up to 2^30
/// a side) with default metadata, and no frame: what a bomb looks like
/// to a decoder that trusts it.
pub fn jxl_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    let mut put = |v: u32, n: u32| (0..n).for_each(|i| bits.push(v >> i & 1 == 1));
    put(0, 1); // not "small"
    put(3, 2); // height - 1 in 30 bits
    put(h - 1, 30);
    put(0, 3); // no aspect ratio: the width follows
    put(3, 2);
    put(w - 1, 30);
    put(1, 1); // image metadata: all default
    let mut out = vec![0xFF, 0x0A];
    out.extend(bits.chunks(8).map(|c| {
        c.iter()
            .enumerate()
            .fold(0u8, |b, (i, &on)| b | (u8::from(on) << i))
    }));
    out.extend_from_slice(&[0; 64]);
    out
}
