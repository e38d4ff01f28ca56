//! The AVIF container (ISO-BMFF / HEIF): which AV1 payloads make up the
//! picture, and how to lay them out, crop and turn them to show it as
//! browsers do.
//!
//! Our own reader rather than a crate: avif-parse 2.1 refuses grid images
//! and exposes none of `irot`, `imir`, `clap`, `a1op`, `lsel` or image
//! sequences; mp4parse 0.17 reads rotation and mirroring but flags grids,
//! `clap`, `a1op` and `lsel` as unsupported. The boxes needed for a still
//! picture (or a sequence's first frame) are few and simple, and reading
//! them here keeps every size check in our hands. Pure Rust, no decoding:
//! used by the AVIF decoder (both sides of the child process) and by the
//! truncation check in every build.
//!
//! What is honoured: the primary item (`pitm`), a single AV1 item or a
//! `grid` of AV1 tiles; its alpha auxiliary (`auxl` + `auxC`, itself a
//! single item or a grid) and `prem`; data in `mdat` (file offsets) or in
//! `idat`, over any number of extents; `clap` (applied first), `irot` and
//! `imir` (reported as the EXIF orientation they amount to); `a1op`
//! (operating point) and `lsel` (layer); an ICC profile in `colr`. Without
//! a primary item, the first frame of the first AV1 video track (`moov`,
//! as in `.avifs` sequences), with its alpha track. Boxes and properties we
//! do not know are skipped, unless a property is marked essential for the
//! item we would show (then the file is refused, as the format requires).

use crate::pipeline::bytes::{be32, be64};
use crate::pipeline::error::PipelineError;

/// Most items (or tiles, or properties) a file may declare: bounds the work
/// a hostile file can ask for. Real grids stay far below (a 48 MP camera
/// picture is about 200 tiles of 512x512).
const MAX_ITEMS: usize = 4096;

pub(super) fn corrupt(what: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(format!("AVIF: {what}"))
}

/// One AV1 payload and how to decode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Av1Item {
    /// The OBUs of one temporal unit (all extents, in order).
    pub data: Vec<u8>,
    /// The operating point to decode (`a1op`, default 0).
    pub operating_point: u8,
    /// The spatial layer to show (`lsel`); `None` for the highest layer
    /// of the operating point.
    pub layer: Option<u16>,
}

/// A tiled image: `rows` x `cols` tiles of equal size, in row-major order,
/// stitched and then cut to `width` x `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grid {
    pub rows: u32,
    pub cols: u32,
    pub width: u32,
    pub height: u32,
    pub tiles: Vec<Av1Item>,
}

/// The coded form of a picture (colour or alpha).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Coded {
    Single(Av1Item),
    Grid(Grid),
}

/// A crop rectangle in the reconstructed image's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Crop {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Everything needed to turn the file into the picture a browser shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Avif {
    pub color: Coded,
    pub alpha: Option<Coded>,
    /// Colour samples are premultiplied by alpha (`prem`).
    pub premultiplied: bool,
    /// Declared size of the reconstructed picture, before `clap` and
    /// rotation: the item's `ispe`, the grid's output size or the track's
    /// sample size. Checked against the pixel limit before decoding.
    pub width: u32,
    pub height: u32,
    /// `clap`, when valid (an invalid one is ignored, as browsers do).
    pub crop: Option<Crop>,
    /// `irot` and `imir` as the EXIF orientation (1..=8) with the same
    /// effect, applied after the crop.
    pub orientation: u8,
    /// ICC profile from `colr` (`prof` or `rICC`).
    pub icc: Option<Vec<u8>>,
    /// Frames in the file: 1 for a still, the sample count for a sequence.
    pub frames: u32,
}

/// A box: its four-character type and its body.
#[derive(Clone, Copy)]
pub(super) struct Bmff<'a> {
    pub ty: [u8; 4],
    pub body: &'a [u8],
}

/// The boxes in `d`, in order; an error for a box that runs past the end.
pub(super) fn boxes(d: &[u8]) -> impl Iterator<Item = Result<Bmff<'_>, PipelineError>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= d.len() {
            return None;
        }
        let r = box_at(d, pos).map(|(b, len)| {
            pos += len;
            b
        });
        if r.is_err() {
            pos = d.len();
        }
        Some(r)
    })
}

/// The box starting at `pos` and its whole length (header included).
fn box_at(d: &[u8], pos: usize) -> Result<(Bmff<'_>, usize), PipelineError> {
    let (Some(size), Some(ty)) = (be32(d, pos), d.get(pos + 4..pos + 8)) else {
        return Err(corrupt("a box header is cut short"));
    };
    let mut header = 8usize;
    let len = match size {
        0 => d.len() - pos,
        1 => {
            header = 16;
            let big = be64(d, pos + 8).ok_or_else(|| corrupt("a box header is cut short"))?;
            usize::try_from(big).unwrap_or(usize::MAX)
        }
        n => n as usize,
    };
    if ty == b"uuid" {
        header += 16;
    }
    if len < header || pos.saturating_add(len) > d.len() {
        return Err(corrupt(format!(
            "box '{}' runs past the end",
            String::from_utf8_lossy(ty)
        )));
    }
    let mut t = [0u8; 4];
    t.copy_from_slice(ty);
    Ok((
        Bmff {
            ty: t,
            body: &d[pos + header..pos + len],
        },
        len,
    ))
}

/// The first child box of type `ty`, if any (errors in other boxes found
/// on the way count).
pub(super) fn child<'a>(d: &'a [u8], ty: &[u8; 4]) -> Result<Option<Bmff<'a>>, PipelineError> {
    for b in boxes(d) {
        let b = b?;
        if &b.ty == ty {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// A bounds-checked big-endian reader over a box body.
pub(super) struct Reader<'a> {
    d: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(d: &'a [u8]) -> Self {
        Reader { d, pos: 0 }
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], PipelineError> {
        let s = self
            .d
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| corrupt("a box is shorter than its fields"))?;
        self.pos += n;
        Ok(s)
    }

    pub(super) fn uint(&mut self, n: usize) -> Result<u64, PipelineError> {
        Ok(self
            .bytes(n)?
            .iter()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    }

    pub(super) fn u8(&mut self) -> Result<u8, PipelineError> {
        Ok(self.bytes(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, PipelineError> {
        Ok(self.uint(2)? as u16)
    }

    pub(super) fn u32(&mut self) -> Result<u32, PipelineError> {
        Ok(self.uint(4)? as u32)
    }

    /// An item id: 32 bits in `wide` box versions, else 16.
    pub(super) fn id(&mut self, wide: bool) -> Result<u32, PipelineError> {
        if wide {
            self.u32()
        } else {
            Ok(self.u16()?.into())
        }
    }

    /// A full box's version and flags.
    pub(super) fn full(&mut self) -> Result<(u8, u32), PipelineError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }

    /// The rest of the body.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.d.get(self.pos..).unwrap_or(&[])
    }
}

/// Where an item's bytes are: (offset, length) pairs in the file
/// (construction method 0) or in `idat` (method 1).
#[derive(Debug, Clone, Default)]
struct Location {
    in_idat: bool,
    extents: Vec<(u64, u64)>,
}

/// An item property we act on; `Other` keeps the slot so indices line up.
#[derive(Debug, Clone)]
enum Property {
    Ispe(u32, u32),
    Irot(u8),
    Imir(u8),
    Clap([i64; 8]),
    A1op(u8),
    Lsel(u16),
    AuxType(Vec<u8>),
    Icc(Vec<u8>),
    /// Known and harmless to ignore (av1C, pixi, colr nclx, ...).
    Ignored,
    /// Unknown to us: refused only when essential for the shown item.
    Unknown([u8; 4]),
}

fn property(b: Bmff<'_>) -> Result<Property, PipelineError> {
    let mut r = Reader::new(b.body);
    Ok(match &b.ty {
        b"ispe" => {
            r.full()?;
            Property::Ispe(r.u32()?, r.u32()?)
        }
        b"irot" => Property::Irot(r.u8()? & 3),
        b"imir" => Property::Imir(r.u8()? & 1),
        b"clap" => {
            let mut v = [0i64; 8];
            for (i, slot) in v.iter_mut().enumerate() {
                let n = r.u32()?;
                // Offsets' numerators (4 and 6) are signed.
                *slot = if i == 4 || i == 6 {
                    i64::from(n as i32)
                } else {
                    i64::from(n)
                };
            }
            Property::Clap(v)
        }
        b"a1op" => Property::A1op(r.u8()?),
        b"lsel" => Property::Lsel(r.u16()?),
        b"auxC" => {
            r.full()?;
            let rest = r.rest();
            let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            Property::AuxType(rest[..end].to_vec())
        }
        b"colr" => match r.bytes(4)? {
            b"prof" | b"rICC" => Property::Icc(r.rest().to_vec()),
            _ => Property::Ignored,
        },
        b"av1C" | b"pixi" | b"pasp" | b"clli" | b"mdcv" | b"cclv" | b"amve" | b"a1lx" | b"free"
        | b"skip" => Property::Ignored,
        other => Property::Unknown(*other),
    })
}

/// One property of an item (`ipma`).
#[derive(Clone, Copy)]
struct Association {
    /// 1-based index into `ipco`; 0 means none.
    index: u16,
    /// A reader that does not understand the property must not show the
    /// item.
    essential: bool,
}

/// The contents of `meta` that matter.
#[derive(Default)]
pub(super) struct Meta<'a> {
    /// The primary item's id (`pitm`); absent in a bare image sequence.
    pub(super) primary: Option<u32>,
    /// Item id and type, in `iinf` order.
    items: Vec<(u32, [u8; 4])>,
    locations: Vec<(u32, Location)>,
    /// (type, from, to list)
    refs: Vec<([u8; 4], u32, Vec<u32>)>,
    properties: Vec<Property>,
    /// item id -> its properties, in order.
    associations: Vec<(u32, Vec<Association>)>,
    idat: Option<&'a [u8]>,
}

pub(super) fn read_meta(body: &[u8]) -> Result<Meta<'_>, PipelineError> {
    let mut r = Reader::new(body);
    r.full()?;
    let mut m = Meta::default();
    for b in boxes(r.rest()) {
        let b = b?;
        match &b.ty {
            b"hdlr" => {
                let mut h = Reader::new(b.body);
                h.full()?;
                h.u32()?;
                if h.bytes(4)? != b"pict" {
                    return Err(corrupt("the meta box is not for a picture"));
                }
            }
            b"pitm" => {
                let mut p = Reader::new(b.body);
                let (v, _) = p.full()?;
                m.primary = Some(p.id(v > 0)?);
            }
            b"iloc" => m.locations = read_iloc(b.body)?,
            b"iinf" => m.items = read_iinf(b.body)?,
            b"iref" => m.refs = read_iref(b.body)?,
            b"iprp" => read_iprp(b.body, &mut m)?,
            b"idat" => m.idat = Some(b.body),
            _ => {}
        }
    }
    Ok(m)
}

fn read_iloc(body: &[u8]) -> Result<Vec<(u32, Location)>, PipelineError> {
    let mut r = Reader::new(body);
    let (v, _) = r.full()?;
    if v > 2 {
        return Err(PipelineError::Unsupported(format!(
            "AVIF: iloc version {v}"
        )));
    }
    let sizes = r.u16()?;
    let (off, len, base) = (
        usize::from(sizes >> 12),
        usize::from((sizes >> 8) & 15),
        usize::from((sizes >> 4) & 15),
    );
    let index = if v >= 1 { usize::from(sizes & 15) } else { 0 };
    if [off, len, base, index]
        .iter()
        .any(|s| ![0, 4, 8].contains(s))
    {
        return Err(corrupt("iloc field sizes"));
    }
    let count = r.id(v >= 2)? as usize;
    if count > MAX_ITEMS {
        return Err(corrupt("too many items"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.id(v >= 2)?;
        let method = if v >= 1 { r.u16()? & 15 } else { 0 };
        r.u16()?; // data reference index: this file
        let base_offset = r.uint(base)?;
        let n = usize::from(r.u16()?);
        let mut loc = Location {
            in_idat: method == 1,
            extents: Vec::with_capacity(n),
        };
        for _ in 0..n {
            r.uint(index)?;
            let o = base_offset.saturating_add(r.uint(off)?);
            loc.extents.push((o, r.uint(len)?));
        }
        if method > 1 {
            // Item-offset construction: not used by AVIF writers. Kept
            // out of `out`, so using such an item reports "no data".
            continue;
        }
        out.push((id, loc));
    }
    Ok(out)
}

fn read_iinf(body: &[u8]) -> Result<Vec<(u32, [u8; 4])>, PipelineError> {
    let mut r = Reader::new(body);
    let (v, _) = r.full()?;
    r.id(v > 0)?; // entry count: the boxes say it
    let mut items = Vec::new();
    for b in boxes(r.rest()) {
        let b = b?;
        if &b.ty != b"infe" {
            continue;
        }
        if items.len() >= MAX_ITEMS {
            return Err(corrupt("too many items"));
        }
        let mut e = Reader::new(b.body);
        let (v, _) = e.full()?;
        if v < 2 {
            continue; // no item type: not an image item
        }
        let id = e.id(v > 2)?;
        e.u16()?; // protection index
        let mut ty = [0u8; 4];
        ty.copy_from_slice(e.bytes(4)?);
        items.push((id, ty));
    }
    Ok(items)
}

type Refs = Vec<([u8; 4], u32, Vec<u32>)>;

fn read_iref(body: &[u8]) -> Result<Refs, PipelineError> {
    let mut r = Reader::new(body);
    let (v, _) = r.full()?;
    let mut refs = Vec::new();
    for b in boxes(r.rest()) {
        let b = b?;
        let mut e = Reader::new(b.body);
        let from = e.id(v > 0)?;
        let n = usize::from(e.u16()?);
        if n > MAX_ITEMS || refs.len() >= MAX_ITEMS {
            return Err(corrupt("too many item references"));
        }
        let mut to = Vec::with_capacity(n);
        for _ in 0..n {
            to.push(e.id(v > 0)?);
        }
        refs.push((b.ty, from, to));
    }
    Ok(refs)
}

fn read_iprp<'a>(body: &'a [u8], m: &mut Meta<'a>) -> Result<(), PipelineError> {
    for b in boxes(body) {
        let b = b?;
        match &b.ty {
            b"ipco" => {
                for p in boxes(b.body) {
                    if m.properties.len() >= MAX_ITEMS {
                        return Err(corrupt("too many properties"));
                    }
                    m.properties.push(property(p?)?);
                }
            }
            b"ipma" => {
                let mut r = Reader::new(b.body);
                let (v, flags) = r.full()?;
                let n = r.u32()? as usize;
                if n > MAX_ITEMS {
                    return Err(corrupt("too many property associations"));
                }
                for _ in 0..n {
                    let id = r.id(v >= 1)?;
                    let k = r.u8()?;
                    let mut list = Vec::with_capacity(usize::from(k));
                    for _ in 0..k {
                        list.push(if flags & 1 != 0 {
                            let x = r.u16()?;
                            Association {
                                index: x & 0x7FFF,
                                essential: x & 0x8000 != 0,
                            }
                        } else {
                            let x = r.u8()?;
                            Association {
                                index: u16::from(x & 0x7F),
                                essential: x & 0x80 != 0,
                            }
                        });
                    }
                    m.associations.push((id, list));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl<'a> Meta<'a> {
    fn item_type(&self, id: u32) -> Option<[u8; 4]> {
        self.items.iter().find(|i| i.0 == id).map(|i| i.1)
    }

    /// The properties of `id`, in association order; refuses an unknown
    /// property marked essential.
    fn props(&self, id: u32) -> Result<Vec<&Property>, PipelineError> {
        let mut out = Vec::new();
        for (_, list) in self.associations.iter().filter(|a| a.0 == id) {
            for &Association { index, essential } in list {
                // Index 0 means "no property".
                let Some(p) = usize::from(index)
                    .checked_sub(1)
                    .and_then(|i| self.properties.get(i))
                else {
                    continue;
                };
                if let (Property::Unknown(ty), true) = (p, essential) {
                    return Err(PipelineError::Unsupported(format!(
                        "AVIF: essential property '{}' is not supported",
                        String::from_utf8_lossy(ty)
                    )));
                }
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The item's extents, as slices of the file or of `idat`.
    fn extents<'f>(&'f self, file: &'f [u8], id: u32) -> Result<Vec<&'f [u8]>, PipelineError> {
        let loc = self
            .locations
            .iter()
            .find(|l| l.0 == id)
            .map(|l| &l.1)
            .ok_or_else(|| corrupt(format!("item {id} has no data")))?;
        let src = if loc.in_idat {
            self.idat
                .ok_or_else(|| corrupt("item data in a missing idat box"))?
        } else {
            file
        };
        loc.extents
            .iter()
            .map(|&(off, len)| {
                let start = usize::try_from(off).unwrap_or(usize::MAX);
                let len = match len {
                    0 => src.len().saturating_sub(start), // "to the end"
                    n => usize::try_from(n).unwrap_or(usize::MAX),
                };
                src.get(start..start.saturating_add(len))
                    .ok_or_else(|| corrupt(format!("item {id} data runs past the end")))
            })
            .collect()
    }

    /// The item's bytes, all extents concatenated.
    fn data(&self, file: &[u8], id: u32) -> Result<Vec<u8>, PipelineError> {
        let parts = self.extents(file, id)?;
        let mut out = Vec::new();
        out.try_reserve_exact(parts.iter().map(|p| p.len()).sum())
            .map_err(|_| corrupt("item data is too large"))?;
        for p in parts {
            out.extend_from_slice(p);
        }
        Ok(out)
    }

    /// Items referring to `to` with a reference of type `ty`.
    fn referring(&self, ty: &[u8; 4], to: u32) -> impl Iterator<Item = u32> + '_ {
        let ty = *ty;
        self.refs
            .iter()
            .filter(move |r| r.0 == ty && r.2.contains(&to))
            .map(|r| r.1)
    }
}

/// The primary item, its alpha and its transformations.
pub(super) fn still(file: &[u8], m: &Meta<'_>, frames: u32) -> Result<Avif, PipelineError> {
    let id = m.primary.ok_or_else(|| corrupt("no primary item"))?;
    let (color, (width, height)) = coded(file, m, id)?;
    let alpha_id = m.referring(b"auxl", id).find(|&a| {
        m.props(a).is_ok_and(|ps| {
            ps.iter().any(|p| {
                matches!(p, Property::AuxType(t) if t == b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"
                    || t == b"urn:mpeg:hevc:2015:auxid:1")
            })
        })
    });
    let alpha = match alpha_id {
        Some(a) => Some(coded(file, m, a)?.0),
        None => None,
    };
    let premultiplied = alpha_id.is_some_and(|a| {
        m.refs
            .iter()
            .any(|r| &r.0 == b"prem" && r.1 == id && r.2.contains(&a))
    });
    let (mut crop, mut rot, mut mir, mut icc) = (None, 0u8, None, None);
    for p in m.props(id)? {
        match p {
            Property::Clap(c) => crop = clean_aperture(c, width, height),
            Property::Irot(a) => rot = *a,
            Property::Imir(a) => mir = Some(*a),
            Property::Icc(i) => icc = Some(i.clone()),
            _ => {}
        }
    }
    Ok(Avif {
        color,
        alpha,
        premultiplied,
        width,
        height,
        crop,
        orientation: orientation(rot, mir),
        icc,
        frames,
    })
}

/// An item as coded data, with its declared size (`ispe`; for a grid, its
/// output size).
fn coded(file: &[u8], m: &Meta<'_>, id: u32) -> Result<(Coded, (u32, u32)), PipelineError> {
    let ispe = m.props(id)?.into_iter().find_map(|p| match p {
        Property::Ispe(w, h) => Some((*w, *h)),
        _ => None,
    });
    match m.item_type(id).as_ref() {
        Some(b"av01") => {
            let size = ispe.ok_or_else(|| corrupt("the image has no size (ispe)"))?;
            if size.0 == 0 || size.1 == 0 {
                return Err(corrupt(format!(
                    "the image is {}x{} (ispe)",
                    size.0, size.1
                )));
            }
            Ok((Coded::Single(av1_item(file, m, id)?), size))
        }
        Some(b"grid") => {
            let grid = grid(file, m, id)?;
            let size = (grid.width, grid.height);
            Ok((Coded::Grid(grid), size))
        }
        Some(t) => Err(PipelineError::Unsupported(format!(
            "AVIF: '{}' items are not supported",
            String::from_utf8_lossy(t)
        ))),
        None => Err(corrupt(format!("item {id} is not described"))),
    }
}

fn av1_item(file: &[u8], m: &Meta<'_>, id: u32) -> Result<Av1Item, PipelineError> {
    let mut item = Av1Item {
        data: m.data(file, id)?,
        operating_point: 0,
        layer: None,
    };
    for p in m.props(id)? {
        match p {
            Property::A1op(op) => item.operating_point = *op,
            // 0xFFFF: "the highest layer of the operating point".
            Property::Lsel(l) if *l != 0xFFFF => item.layer = Some(*l),
            _ => {}
        }
    }
    Ok(item)
}

/// A `grid` item: its header (ISO 23008-12 6.6.2.3) and its tiles, the
/// `dimg` references in order.
fn grid(file: &[u8], m: &Meta<'_>, id: u32) -> Result<Grid, PipelineError> {
    let header = m.data(file, id)?;
    let mut r = Reader::new(&header);
    r.u8()?; // version
    let wide = r.u8()? & 1 != 0;
    let rows = u32::from(r.u8()?) + 1;
    let cols = u32::from(r.u8()?) + 1;
    let field = if wide { 4 } else { 2 };
    let (width, height) = (r.uint(field)? as u32, r.uint(field)? as u32);
    let tiles_ids: Vec<u32> = m
        .refs
        .iter()
        .filter(|r| &r.0 == b"dimg" && r.1 == id)
        .flat_map(|r| r.2.iter().copied())
        .collect();
    if tiles_ids.len() != (rows * cols) as usize || width == 0 || height == 0 {
        return Err(corrupt(format!(
            "grid of {rows}x{cols} has {} tiles for {width}x{height}",
            tiles_ids.len()
        )));
    }
    let mut tiles = Vec::with_capacity(tiles_ids.len());
    for t in tiles_ids {
        if m.item_type(t).as_ref() != Some(b"av01") {
            return Err(corrupt("a grid tile is not an AV1 image"));
        }
        tiles.push(av1_item(file, m, t)?);
    }
    Ok(Grid {
        rows,
        cols,
        width,
        height,
        tiles,
    })
}

/// The crop a `clap` box describes on a `w` x `h` image (HEIF 6.5.9:
/// centred at `(w - 1) / 2 + horizOff`), or `None` when it is not a whole
/// pixel rectangle inside the image: browsers then ignore it.
fn clean_aperture(c: &[i64; 8], w: u32, h: u32) -> Option<Crop> {
    let [wn, wd, hn, hd, xn, xd, yn, yd] = *c;
    if wd <= 0 || hd <= 0 || xd <= 0 || yd <= 0 || wn % wd != 0 || hn % hd != 0 {
        return None;
    }
    let (cw, ch) = (wn / wd, hn / hd);
    // left = horizOff + (w - cw) / 2, in halves to stay exact.
    let left = |off_n: i64, off_d: i64, full: i64, part: i64| -> Option<i64> {
        let twice = 2 * off_n + (full - part) * off_d; // = 2 * left * off_d
        (twice % (2 * off_d) == 0).then_some(twice / (2 * off_d))
    };
    let x = left(xn, xd, w.into(), cw)?;
    let y = left(yn, yd, h.into(), ch)?;
    let inside = cw > 0 && ch > 0 && x >= 0 && y >= 0 && x + cw <= w.into() && y + ch <= h.into();
    inside.then_some(Crop {
        x: x as u32,
        y: y as u32,
        w: cw as u32,
        h: ch as u32,
    })
}

/// The EXIF orientation equal to "rotate `rot` quarter turns
/// anti-clockwise (`irot`), then mirror about a vertical (`imir` axis 0:
/// left and right swap) or horizontal axis (1: top and bottom swap)".
pub(crate) fn orientation(rot: u8, mirror: Option<u8>) -> u8 {
    match (rot & 3, mirror) {
        (0, None) => 1,
        (1, None) => 8,
        (2, None) => 3,
        (3, None) => 6,
        (0, Some(0)) | (2, Some(1)) => 2,
        (0, Some(_)) | (2, Some(_)) => 4,
        (1, Some(0)) | (3, Some(1)) => 7,
        _ => 5, // (1, axis 1) and (3, axis 0)
    }
}

/// Is the file all there? Every top-level box fits, and every item's data
/// lies inside the file (or its `idat`); for files without items (a
/// sequence), a media data box must be present.
pub(crate) fn complete(file: &[u8]) -> bool {
    let mut meta = None;
    let mut mdat = false;
    for b in boxes(file) {
        let Ok(b) = b else {
            return false;
        };
        mdat |= &b.ty == b"mdat";
        if &b.ty == b"meta" && meta.is_none() {
            meta = Some(b.body);
        }
    }
    let Some(Ok(m)) = meta.map(read_meta) else {
        return mdat;
    };
    if m.locations.is_empty() {
        return mdat;
    }
    m.locations
        .iter()
        .all(|(id, _)| m.extents(file, *id).is_ok())
}

#[cfg(test)]
#[path = "heif_tests.rs"]
mod tests;
