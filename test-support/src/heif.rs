//! AVIF files built box by box, to test what real encoders rarely write
//! together: rotation and mirroring, clean-aperture crops, grids, data in
//! `idat`, operating points, unknown and extended boxes, sequences.
//!
//! The AV1 payloads come from our own encoder (ravif): the `mdat` of a
//! ravif file of an opaque image is exactly one AV1 still.

/// A box: 32-bit size, type, body.
pub fn bx(ty: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(ty);
    v.extend_from_slice(body);
    v
}

/// A full box: version and flags before the body.
pub fn full(ty: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = ((u32::from(version) << 24) | (flags & 0xFF_FFFF))
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(body);
    bx(ty, &b)
}

/// The AV1 still inside a ravif file of an opaque image (its `mdat`).
pub fn av1_payload(avif: &[u8]) -> Vec<u8> {
    let mut pos = 0;
    while pos + 8 <= avif.len() {
        let size = u32::from_be_bytes(avif[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if &avif[pos + 4..pos + 8] == b"mdat" {
            return avif[pos + 8..pos + size].to_vec();
        }
        pos += size;
    }
    panic!("no mdat in the ravif output")
}

/// An AV1 still of interleaved RGB `rgb` (`w` x `h`), encoded by ravif.
pub fn av1_rgb(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let px: Vec<rgb::RGB8> = rgb
        .chunks_exact(3)
        .map(|c| rgb::RGB8::new(c[0], c[1], c[2]))
        .collect();
    let file = ravif::Encoder::new()
        .with_quality(95.0)
        .with_speed(10)
        .with_num_threads(Some(1))
        .encode_rgb(ravif::Img::new(&px[..], w as usize, h as usize))
        .expect("encode AV1 fixture")
        .avif_file;
    av1_payload(&file)
}

/// An AV1 still of one colour.
pub fn av1_solid(w: u32, h: u32, c: [u8; 3]) -> Vec<u8> {
    av1_rgb(&c.repeat((w * h) as usize), w, h)
}

/// `ispe`: the image's size.
pub fn ispe(w: u32, h: u32) -> Vec<u8> {
    let mut b = w.to_be_bytes().to_vec();
    b.extend_from_slice(&h.to_be_bytes());
    full(b"ispe", 0, 0, &b)
}

/// `irot`: `quarter_turns` anti-clockwise.
pub fn irot(quarter_turns: u8) -> Vec<u8> {
    bx(b"irot", &[quarter_turns & 3])
}

/// `imir`: axis 0 swaps left and right, 1 top and bottom.
pub fn imir(axis: u8) -> Vec<u8> {
    bx(b"imir", &[axis & 1])
}

/// `clap` of a `w` x `h` window whose centre is `dx`,`dy` pixels off the
/// image's centre (denominators 1).
pub fn clap(w: u32, h: u32, dx: i32, dy: i32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [w, 1, h, 1, dx as u32, 1, dy as u32, 1] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    bx(b"clap", &b)
}

/// `a1op`: the operating point to decode.
pub fn a1op(op: u8) -> Vec<u8> {
    bx(b"a1op", &[op])
}

/// `auxC` marking an alpha plane.
pub fn alpha_aux() -> Vec<u8> {
    full(
        b"auxC",
        0,
        0,
        b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0",
    )
}

/// A `pixi` of version 1 with extra per-channel fields, as newer libavif
/// writes for some files (older parsers refuse any version but 0).
pub fn pixi_extended() -> Vec<u8> {
    full(b"pixi", 1, 0, &[3, 8, 8, 8, 0, 0, 0, 0])
}

/// A `grid` item's data: `rows` x `cols` tiles making `w` x `h`.
pub fn grid_header(rows: u8, cols: u8, w: u16, h: u16) -> Vec<u8> {
    let mut b = vec![0, 0, rows - 1, cols - 1];
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b
}

/// One item: its data, where that is stored, and its properties (box
/// bytes, essential or not) in association order.
pub struct Item {
    pub id: u16,
    pub ty: [u8; 4],
    pub data: Vec<u8>,
    pub in_idat: bool,
    pub props: Vec<(Vec<u8>, bool)>,
}

impl Item {
    /// An `av01` item in `mdat` with its `ispe`.
    pub fn av1(id: u16, data: Vec<u8>, w: u32, h: u32) -> Item {
        Item {
            id,
            ty: *b"av01",
            data,
            in_idat: false,
            props: vec![(ispe(w, h), false)],
        }
    }

    /// Adds a property.
    pub fn with(mut self, prop: Vec<u8>, essential: bool) -> Item {
        self.props.push((prop, essential));
        self
    }
}

/// A HEIF file: items, the primary one, references, and extra top-level
/// boxes placed between `ftyp` and `meta`.
pub struct Heif {
    pub items: Vec<Item>,
    pub primary: u16,
    /// (type, from, to)
    pub refs: Vec<([u8; 4], u16, Vec<u16>)>,
    pub extra: Vec<Vec<u8>>,
}

impl Heif {
    /// One item, primary.
    pub fn single(item: Item) -> Heif {
        Heif {
            primary: item.id,
            items: vec![item],
            refs: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// The file: `ftyp`, extra boxes, `meta`, then `mdat` (left out when
    /// every item is in `idat`).
    pub fn build(&self) -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"avif\0\0\0\0avifmif1miaf");
        let extra: Vec<u8> = self.extra.concat();
        // Offsets are fixed-size fields, so the meta box's length does not
        // depend on them: build once to measure, once for real.
        let first = self.meta(0);
        let mdat_body_at = (ftyp.len() + extra.len() + first.len() + 8) as u32;
        let mut out = ftyp;
        out.extend_from_slice(&extra);
        out.extend_from_slice(&self.meta(mdat_body_at));
        let mdat: Vec<u8> = self
            .items
            .iter()
            .filter(|i| !i.in_idat)
            .flat_map(|i| i.data.iter().copied())
            .collect();
        if self.items.iter().any(|i| !i.in_idat) {
            out.extend_from_slice(&bx(b"mdat", &mdat));
        }
        out
    }

    fn meta(&self, mdat_body_at: u32) -> Vec<u8> {
        let mut hdlr = vec![0; 4];
        hdlr.extend_from_slice(b"pict");
        hdlr.extend_from_slice(&[0; 13]);
        let mut body = full(b"hdlr", 0, 0, &hdlr);
        body.extend_from_slice(&full(b"pitm", 0, 0, &self.primary.to_be_bytes()));
        let mut iinf = (self.items.len() as u16).to_be_bytes().to_vec();
        for i in &self.items {
            let mut e = i.id.to_be_bytes().to_vec();
            e.extend_from_slice(&[0, 0]);
            e.extend_from_slice(&i.ty);
            e.push(0);
            iinf.extend_from_slice(&full(b"infe", 2, 0, &e));
        }
        body.extend_from_slice(&full(b"iinf", 0, 0, &iinf));
        if !self.refs.is_empty() {
            let mut iref = Vec::new();
            for (ty, from, to) in &self.refs {
                let mut r = from.to_be_bytes().to_vec();
                r.extend_from_slice(&(to.len() as u16).to_be_bytes());
                for t in to {
                    r.extend_from_slice(&t.to_be_bytes());
                }
                iref.extend_from_slice(&bx(ty, &r));
            }
            body.extend_from_slice(&full(b"iref", 0, 0, &iref));
        }
        body.extend_from_slice(&self.iprp());
        body.extend_from_slice(&self.iloc(mdat_body_at));
        let idat: Vec<u8> = self
            .items
            .iter()
            .filter(|i| i.in_idat)
            .flat_map(|i| i.data.iter().copied())
            .collect();
        if !idat.is_empty() {
            body.extend_from_slice(&bx(b"idat", &idat));
        }
        full(b"meta", 0, 0, &body)
    }

    fn iprp(&self) -> Vec<u8> {
        let (mut ipco, mut ipma) = (Vec::new(), Vec::new());
        let mut index = 0u8;
        ipma.extend_from_slice(&(self.items.len() as u32).to_be_bytes());
        for i in &self.items {
            ipma.extend_from_slice(&i.id.to_be_bytes());
            ipma.push(i.props.len() as u8);
            for (p, essential) in &i.props {
                ipco.extend_from_slice(p);
                index += 1;
                ipma.push(index | if *essential { 0x80 } else { 0 });
            }
        }
        let mut iprp = bx(b"ipco", &ipco);
        iprp.extend_from_slice(&full(b"ipma", 0, 0, &ipma));
        bx(b"iprp", &iprp)
    }

    /// Version 1, 4-byte offsets and lengths, one extent per item.
    fn iloc(&self, mdat_body_at: u32) -> Vec<u8> {
        let mut b = vec![0x44, 0x00];
        b.extend_from_slice(&(self.items.len() as u16).to_be_bytes());
        let (mut in_mdat, mut in_idat) = (0u32, 0u32);
        for i in &self.items {
            b.extend_from_slice(&i.id.to_be_bytes());
            b.extend_from_slice(&[0, u8::from(i.in_idat)]);
            b.extend_from_slice(&[0, 0, 0, 1]); // data ref, one extent
            let at = if i.in_idat {
                in_idat += i.data.len() as u32;
                in_idat - i.data.len() as u32
            } else {
                in_mdat += i.data.len() as u32;
                mdat_body_at + in_mdat - i.data.len() as u32
            };
            b.extend_from_slice(&at.to_be_bytes());
            b.extend_from_slice(&(i.data.len() as u32).to_be_bytes());
        }
        full(b"iloc", 1, 0, &b)
    }
}

/// An image sequence (`avis`, no items): one AV1 track of `frames`, each
/// `w` x `h`.
pub fn sequence(frames: &[Vec<u8>], w: u16, h: u16) -> Vec<u8> {
    let ftyp = bx(b"ftyp", b"avis\0\0\0\0avismsf1iso8mif1miaf");
    let moov_len = sequence_moov(frames, w, h, 0).len();
    let mdat_body_at = (ftyp.len() + moov_len + 8) as u32;
    let mut out = ftyp;
    out.extend_from_slice(&sequence_moov(frames, w, h, mdat_body_at));
    out.extend_from_slice(&bx(b"mdat", &frames.concat()));
    out
}

fn sequence_moov(frames: &[Vec<u8>], w: u16, h: u16, mdat_body_at: u32) -> Vec<u8> {
    let mut tkhd = vec![0; 8];
    tkhd.extend_from_slice(&1u32.to_be_bytes()); // track id
    tkhd.extend_from_slice(&[0; 60]);
    tkhd.extend_from_slice(&(u32::from(w) << 16).to_be_bytes());
    tkhd.extend_from_slice(&(u32::from(h) << 16).to_be_bytes());
    let mut hdlr = vec![0; 4];
    hdlr.extend_from_slice(b"pict");
    hdlr.extend_from_slice(&[0; 13]);
    let mut entry = vec![0, 0, 0, 0, 0, 0, 0, 1];
    entry.extend_from_slice(&[0; 16]);
    entry.extend_from_slice(&w.to_be_bytes());
    entry.extend_from_slice(&h.to_be_bytes());
    entry.extend_from_slice(&[0, 0x48, 0, 0, 0, 0x48, 0, 0, 0, 0, 0, 0, 0, 1]);
    entry.extend_from_slice(&[0; 32]);
    entry.extend_from_slice(&[0, 0x18, 0xFF, 0xFF]);
    let mut stsd = 1u32.to_be_bytes().to_vec();
    stsd.extend_from_slice(&bx(b"av01", &entry));
    let n = frames.len() as u32;
    let mut stsz = vec![0; 4];
    let mut stco = n.to_be_bytes().to_vec();
    stsz.extend_from_slice(&n.to_be_bytes());
    let mut at = mdat_body_at;
    for f in frames {
        stsz.extend_from_slice(&(f.len() as u32).to_be_bytes());
        stco.extend_from_slice(&at.to_be_bytes());
        at += f.len() as u32;
    }
    let mut stsc = 1u32.to_be_bytes().to_vec();
    stsc.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
    let stbl = [
        full(b"stsd", 0, 0, &stsd),
        full(b"stsc", 0, 0, &stsc),
        full(b"stsz", 0, 0, &stsz),
        full(b"stco", 0, 0, &stco),
    ]
    .concat();
    let minf = bx(b"stbl", &stbl);
    let mdia = [full(b"hdlr", 0, 0, &hdlr), bx(b"minf", &minf)].concat();
    let trak = [full(b"tkhd", 0, 1, &tkhd), bx(b"mdia", &mdia)].concat();
    bx(b"moov", &bx(b"trak", &trak))
}

/// A 2x2 grid (data in `idat`) of solid 32x16 tiles, red, green, blue and
/// white in row-major order, making a `w` x `h` picture (at most 64x32).
pub fn solid_grid(w: u16, h: u16) -> Vec<u8> {
    let mut grid = Item::av1(1, grid_header(2, 2, w, h), w.into(), h.into());
    grid.ty = *b"grid";
    grid.in_idat = true;
    let mut items = vec![grid];
    for (i, c) in [super::RED, super::GREEN, super::BLUE, super::WHITE]
        .into_iter()
        .enumerate()
    {
        items.push(Item::av1(2 + i as u16, av1_solid(32, 16, c), 32, 16));
    }
    Heif {
        items,
        primary: 1,
        refs: vec![(*b"dimg", 1, vec![2, 3, 4, 5])],
        extra: Vec::new(),
    }
    .build()
}
