//! A DC-only decoder for progressive JPEGs: the 1/8-scale image straight
//! from the DC scans.
//!
//! Why: at 1/8 scale every output pixel is the average of an 8x8 block,
//! i.e. the block's DC coefficient. libjpeg gets there too (and
//! `jpeg::without_ac_scans` already spares it the AC scans), but a
//! progressive decode in libjpeg allocates and zeroes a whole-image
//! coefficient buffer — 88 MB for a 5120x2880 4:4:4 photo — and the page
//! faults alone cost more than everything else. Here only one `i16` per
//! block is kept and the DC scans are decoded directly: 5–10x faster on
//! large progressive files, which is what mozjpeg and most CDNs emit.
//!
//! Scope is deliberately narrow — 8-bit, Huffman, 1 (gray) or 3 (YCbCr)
//! components — and *any* surprise returns `None` so the caller falls back
//! to libjpeg, which also owns error reporting: this path never turns a
//! bad file into an image libjpeg would have refused (it requires the EOI
//! marker and fails on any entropy-coding error). Output differs from
//! libjpeg's 1/8 decode only for subsampled chroma, which libjpeg scales up
//! with a small IDCT and we interpolate bilinearly from the DC values.

use super::bytes::be16;
use super::jpeg_segments::{Segments, EOI, SOS};
use super::pixels::Pixels;

/// Code lengths resolved by one table lookup; longer codes (rare: DC
/// tables hold at most 12 symbols) take the canonical search.
const LOOKUP_BITS: u32 = 9;

#[derive(Clone)]
struct Huffman {
    maxcode: [i32; 17],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
    /// By the next [`LOOKUP_BITS`] bits: `(code length, symbol)` of the
    /// code they start with, or length 0 when that code is longer (or the
    /// bits start no code, or a symbol the table lacks): then the
    /// canonical search decides.
    lookup: Vec<(u8, u8)>,
}

impl Huffman {
    fn new(counts: &[u8], values: &[u8]) -> Option<Huffman> {
        let mut h = Huffman {
            maxcode: [-1; 17],
            valptr: [0; 17],
            mincode: [0; 17],
            values: values.to_vec(),
            lookup: Vec::new(),
        };
        let mut code = 0i32;
        let mut k = 0i32;
        for len in 1..=16 {
            let n = i32::from(counts[len - 1]);
            h.valptr[len] = k;
            h.mincode[len] = code;
            code += n;
            k += n;
            h.maxcode[len] = if n > 0 { code - 1 } else { -1 };
            if code > (1 << len) {
                return None; // over-subscribed code
            }
            code <<= 1;
        }
        if k as usize != values.len() {
            return None;
        }
        h.lookup = (0..1u32 << LOOKUP_BITS)
            .map(
                |bits| match h.search(bits << (16 - LOOKUP_BITS), LOOKUP_BITS) {
                    Some((len, Some(symbol))) => (len as u8, symbol),
                    _ => (0, 0),
                },
            )
            .collect();
        Some(h)
    }

    /// The canonical search over the 16 bits `next` (first bit highest),
    /// trying code lengths up to `max_len`: the code's length and its
    /// symbol (`None` if the table lacks it), or `None` if no code of
    /// those lengths starts these bits.
    fn search(&self, next: u32, max_len: u32) -> Option<(u32, Option<u8>)> {
        (1..=max_len).find_map(|len| {
            let code = (next >> (16 - len)) as i32;
            let l = len as usize;
            (code <= self.maxcode[l]).then(|| {
                let i = self.valptr[l] + code - self.mincode[l];
                (
                    len,
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| self.values.get(i))
                        .copied(),
                )
            })
        })
    }
}

/// The entropy-coded bits of one scan, read ahead a few bytes at a time.
struct Bits<'a> {
    d: &'a [u8],
    /// The next byte not yet in `acc`.
    pos: usize,
    /// The last `n` bits of `acc` are the next bits of the scan.
    acc: u64,
    n: u32,
}

impl<'a> Bits<'a> {
    fn new(d: &'a [u8]) -> Bits<'a> {
        Bits {
            d,
            pos: 0,
            acc: 0,
            n: 0,
        }
    }

    /// Moves whole bytes into `acc` until it holds more than 56 bits, the
    /// data ends or a marker is next (only a stuffed zero may follow an
    /// `FF` inside entropy data; whatever else follows ends what can be
    /// read before a restart).
    fn fill(&mut self) {
        while self.n <= 56 {
            let Some(&b) = self.d.get(self.pos) else {
                return;
            };
            if b == 0xFF {
                if self.d.get(self.pos + 1) != Some(&0) {
                    return;
                }
                self.pos += 2;
            } else {
                self.pos += 1;
            }
            self.acc = (self.acc << 8) | u64::from(b);
            self.n += 8;
        }
    }

    /// The next `k` (at most 16) bits without taking them, padded with
    /// zeros when fewer are left; [`Bits::take`] then refuses the padding.
    fn peek(&mut self, k: u32) -> u32 {
        if self.n < k {
            self.fill();
        }
        let mask = (1u64 << k) - 1;
        let bits = match self.n >= k {
            true => self.acc >> (self.n - k),
            false => self.acc << (k - self.n),
        };
        (bits & mask) as u32
    }

    /// Takes `k` bits; `None` if fewer are left before the data ends or a
    /// marker (the data ran out while bits were needed).
    fn take(&mut self, k: u32) -> Option<()> {
        self.n = self.n.checked_sub(k)?;
        Some(())
    }

    fn bit(&mut self) -> Option<u32> {
        self.bits(1)
    }

    fn bits(&mut self, n: u8) -> Option<u32> {
        let k = u32::from(n);
        if k == 0 {
            return Some(0);
        }
        let v = self.peek(k);
        self.take(k)?;
        Some(v)
    }

    fn decode(&mut self, h: &Huffman) -> Option<u8> {
        let next = self.peek(16);
        let (len, symbol) = match h.lookup[(next >> (16 - LOOKUP_BITS)) as usize] {
            (0, _) => {
                let (len, symbol) = h.search(next, 16)?;
                (len, symbol?)
            }
            (len, symbol) => (u32::from(len), symbol),
        };
        self.take(len)?;
        Some(symbol)
    }

    /// Skips to just after the next RSTn marker. Only the padding bits of
    /// the last byte may be left before it: a whole unread byte there is
    /// an error, as it is to libjpeg's strict reading.
    fn restart(&mut self) -> Option<()> {
        if self.n >= 8 {
            return None;
        }
        self.n = 0;
        while self.d.get(self.pos) == Some(&0xFF) && self.d.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        match (self.d.get(self.pos), self.d.get(self.pos + 1)) {
            (Some(0xFF), Some(0xD0..=0xD7)) => {
                self.pos += 2;
                Some(())
            }
            _ => None,
        }
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per row / rows, padded to whole MCUs.
    bw: usize,
    bh: usize,
    /// Blocks actually covered by the image (non-interleaved scans).
    cw: usize,
    ch: usize,
    quant: Option<u16>,
    seen_dc: bool,
    dc: Vec<i16>,
}

fn extend(v: u32, t: u8) -> i32 {
    if t == 0 {
        return 0;
    }
    let v = v as i32;
    if v < (1 << (t - 1)) {
        v - (1 << t) + 1
    } else {
        v
    }
}

/// The frame header (SOF2): size, components and MCU grid.
struct Frame {
    comps: Vec<Component>,
    width: usize,
    height: usize,
    mcus_x: usize,
    mcus_y: usize,
}

impl Frame {
    /// 8-bit precision, 1 or 3 (not RGB-labelled) components only.
    fn parse(seg: &[u8]) -> Option<Frame> {
        if seg.len() < 6 || seg[0] != 8 {
            return None;
        }
        let height = usize::from(be16(seg, 1)?);
        let width = usize::from(be16(seg, 3)?);
        let n = usize::from(seg[5]);
        if width == 0 || height == 0 || !(n == 1 || n == 3) || seg.len() < 6 + 3 * n {
            return None;
        }
        let mut comps = Vec::with_capacity(n);
        for c in seg[6..6 + 3 * n].chunks_exact(3) {
            let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
                return None;
            }
            comps.push(Component {
                id: c[0],
                h,
                v,
                tq: usize::from(c[2]),
                bw: 0,
                bh: 0,
                cw: 0,
                ch: 0,
                quant: None,
                seen_dc: false,
                dc: Vec::new(),
            });
        }
        if n == 3 && comps.iter().map(|c| c.id).eq([b'R', b'G', b'B']) {
            return None; // RGB JPEG
        }
        let max_h = comps.iter().map(|c| c.h).max()?;
        let max_v = comps.iter().map(|c| c.v).max()?;
        let (mcus_x, mcus_y) = (width.div_ceil(8 * max_h), height.div_ceil(8 * max_v));
        for c in &mut comps {
            c.bw = mcus_x * c.h;
            c.bh = mcus_y * c.v;
            c.cw = (width * c.h).div_ceil(max_h).div_ceil(8);
            c.ch = (height * c.v).div_ceil(max_v).div_ceil(8);
            c.dc = vec![0; c.bw * c.bh];
        }
        Some(Frame {
            comps,
            width,
            height,
            mcus_x,
            mcus_y,
        })
    }
}

/// The DC Huffman tables, quantisation DC values and restart interval in
/// force.
#[derive(Default)]
struct Tables {
    dc: [Option<Huffman>; 4],
    quant: [Option<u16>; 4],
    restart_interval: usize,
}

impl Tables {
    /// DHT: keeps the DC tables (class 0).
    fn read_huffman(&mut self, mut s: &[u8]) -> Option<()> {
        while !s.is_empty() {
            let (tc, th) = (s[0] >> 4, usize::from(s[0] & 15));
            let counts = s.get(1..17)?;
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = s.get(17..17 + n)?;
            if th > 3 || n > 256 {
                return None;
            }
            if tc == 0 {
                self.dc[th] = Some(Huffman::new(counts, values)?);
            }
            s = &s[17 + n..];
        }
        Some(())
    }

    /// DQT: keeps each table's DC entry.
    fn read_quant(&mut self, mut s: &[u8]) -> Option<()> {
        while !s.is_empty() {
            let (pq, tq) = (s[0] >> 4, usize::from(s[0] & 15));
            if tq > 3 || pq > 1 {
                return None;
            }
            let size = if pq == 0 { 64 } else { 128 };
            let t = s.get(1..1 + size)?;
            self.quant[tq] = Some(if pq == 0 {
                u16::from(t[0])
            } else {
                be16(t, 0)?
            });
            s = &s[1 + size..];
        }
        Some(())
    }
}

/// One scan: its components (index into the frame, DC table) and the
/// successive-approximation bits, over its entropy-coded data.
struct Scan<'a> {
    sel: Vec<(usize, usize)>,
    /// Spectral selection start: 0 for DC scans.
    ss: u8,
    ah: u8,
    al: u8,
    data: &'a [u8],
}

impl<'a> Scan<'a> {
    fn parse(seg: &[u8], comps: &[Component], data: &'a [u8]) -> Option<Scan<'a>> {
        let ns = usize::from(*seg.first()?);
        let sel = (0..ns)
            .map(|i| {
                let id = *seg.get(1 + 2 * i)?;
                let td = usize::from(*seg.get(2 + 2 * i)? >> 4);
                Some((comps.iter().position(|c| c.id == id)?, td))
            })
            .collect::<Option<_>>()?;
        let (ss, ah_al) = (*seg.get(1 + 2 * ns)?, *seg.get(3 + 2 * ns)?);
        Some(Scan {
            sel,
            ss,
            ah: ah_al >> 4,
            al: ah_al & 15,
            data,
        })
    }
}

/// Decodes a progressive JPEG at 1/8 scale from its DC scans, or `None`
/// when the file is outside this decoder's scope or malformed.
pub(crate) fn decode(d: &[u8]) -> Option<Pixels> {
    let mut frame: Option<Frame> = None;
    let mut tables = Tables::default();
    let mut adobe = false;
    for seg in Segments::new(d) {
        let seg = seg.ok()?;
        let payload = &d[seg.payload.clone()];
        match seg.marker {
            0xC2 if frame.is_none() => frame = Some(Frame::parse(payload)?),
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xC4 => tables.read_huffman(payload)?,
            0xDB => tables.read_quant(payload)?,
            0xDD => tables.restart_interval = usize::from(be16(payload, 0)?),
            0xEE if payload.starts_with(b"Adobe") => adobe = true,
            SOS => {
                let frame = frame.as_mut()?;
                let scan = Scan::parse(payload, &frame.comps, &d[seg.scan_data?])?;
                if scan.ss == 0 {
                    dc_scan(frame, &scan, &tables)?;
                }
            }
            EOI => {
                let f = frame?;
                if f.comps.iter().any(|c| !c.seen_dc) || (adobe && f.comps.len() == 3) {
                    return None;
                }
                return Some(to_pixels(&f.comps, f.width, f.height));
            }
            _ => {}
        }
    }
    None
}

/// Counts MCUs between restart markers: before each MCU, [`Restarts::next`]
/// reads the marker that ends an interval and resets the predictions.
struct Restarts {
    interval: usize,
    left: usize,
}

impl Restarts {
    fn next(&mut self, bits: &mut Bits, pred: &mut [i32]) -> Option<()> {
        if self.interval == 0 {
            return Some(());
        }
        if self.left == 0 {
            bits.restart()?;
            pred.iter_mut().for_each(|p| *p = 0);
            self.left = self.interval;
        }
        self.left -= 1;
        Some(())
    }
}

fn dc_scan(frame: &mut Frame, scan: &Scan, tables: &Tables) -> Option<()> {
    let (al, sel) = (scan.al, &scan.sel);
    if al > 13 || sel.is_empty() {
        return None;
    }
    let first = scan.ah == 0;
    for &(ci, _) in sel {
        let c = &mut frame.comps[ci];
        if first {
            c.quant = Some(tables.quant[c.tq]?);
            c.seen_dc = true;
        } else if !c.seen_dc {
            return None;
        }
    }
    // Per scan component: its DC table in a first pass; `None` in a
    // refinement, which codes one raw bit per block.
    let huffman: Vec<Option<&Huffman>> = sel
        .iter()
        .map(|&(_, td)| match first {
            true => tables.dc.get(td)?.as_ref().map(Some),
            false => Some(None),
        })
        .collect::<Option<_>>()?;
    let mut bits = Bits::new(scan.data);
    let mut pred = vec![0i32; sel.len()];
    // The first MCU starts an interval without a marker before it.
    let mut restarts = Restarts {
        interval: tables.restart_interval,
        left: tables.restart_interval,
    };
    if let [(ci, _)] = sel[..] {
        // Non-interleaved: one block per MCU, only the blocks inside the
        // image.
        let c = &mut frame.comps[ci];
        for by in 0..c.ch {
            for bx in 0..c.cw {
                restarts.next(&mut bits, &mut pred)?;
                unit(&mut bits, c, huffman[0], &mut pred[0], al, by * c.bw + bx)?;
            }
        }
        return Some(());
    }
    // Interleaved: whole MCUs, each component's h x v blocks in turn.
    for my in 0..frame.mcus_y {
        for mx in 0..frame.mcus_x {
            restarts.next(&mut bits, &mut pred)?;
            for (k, &(ci, _)) in sel.iter().enumerate() {
                let c = &mut frame.comps[ci];
                for y in 0..c.v {
                    let row = (my * c.v + y) * c.bw + mx * c.h;
                    for x in 0..c.h {
                        unit(&mut bits, c, huffman[k], &mut pred[k], al, row + x)?;
                    }
                }
            }
        }
    }
    Some(())
}

/// Decodes the DC (first pass, with `table`) or the refinement bit of the
/// block at index `at` of component `c`.
fn unit(
    bits: &mut Bits,
    c: &mut Component,
    table: Option<&Huffman>,
    pred: &mut i32,
    al: u8,
    at: usize,
) -> Option<()> {
    match table {
        Some(table) => {
            let t = bits.decode(table)?;
            if t > 11 {
                return None;
            }
            *pred += extend(bits.bits(t)?, t);
            *c.dc.get_mut(at)? = i16::try_from(*pred << al).ok()?;
        }
        None => {
            if bits.bit()? == 1 {
                *c.dc.get_mut(at)? |= 1 << al;
            }
        }
    }
    Some(())
}

/// One component's 1/8-scale plane: `(dc * q + 4) >> 3`, plus 128,
/// clamped — exactly libjpeg's 1x1 IDCT.
fn plane(c: &Component) -> Vec<f32> {
    let q = i32::from(c.quant.unwrap_or(1));
    c.dc.iter()
        .map(|&v| (((i32::from(v) * q + 4) >> 3) + 128).clamp(0, 255) as f32)
        .collect()
}

fn to_pixels(comps: &[Component], width: usize, height: usize) -> Pixels {
    let (ow, oh) = (width.div_ceil(8), height.div_ceil(8));
    let max_h = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let max_v = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let planes: Vec<Vec<f32>> = comps.iter().map(plane).collect();
    // Sample subsampled component `i` at output pixel (x, y), bilinear
    // with centred alignment.
    let sample = |i: usize, x: usize, y: usize| -> f32 {
        let c = &comps[i];
        let p = &planes[i];
        let fx = ((x as f32 + 0.5) * c.h as f32 / max_h as f32 - 0.5).max(0.0);
        let fy = ((y as f32 + 0.5) * c.v as f32 / max_v as f32 - 0.5).max(0.0);
        let (x0, y0) = ((fx as usize).min(c.cw - 1), (fy as usize).min(c.ch - 1));
        let (x1, y1) = ((x0 + 1).min(c.cw - 1), (y0 + 1).min(c.ch - 1));
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let at = |x: usize, y: usize| p[y * c.bw + x];
        let top = at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx;
        let bot = at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx;
        top * (1.0 - ty) + bot * ty
    };
    // Rounds half away from zero like `f32::round` (the value is not
    // negative once clamped), without its libm call: baseline x86-64 has no
    // rounding instruction, and this ran three times per output pixel.
    let to_u8 = |v: f32| (v.clamp(0.0, 255.0) + 0.5) as u8;
    // Each component at the output's size first (full-resolution ones
    // are row copies), so the colour conversion below is one pass over
    // three slices instead of three samplings per pixel.
    let full: Vec<Vec<f32>> = (0..comps.len())
        .map(|i| {
            let (c, p) = (&comps[i], &planes[i]);
            match c.h == max_h && c.v == max_v {
                true => (0..oh)
                    .flat_map(|y| &p[y * c.bw..y * c.bw + ow])
                    .copied()
                    .collect(),
                false => (0..oh)
                    .flat_map(|y| (0..ow).map(move |x| (x, y)))
                    .map(|(x, y)| sample(i, x, y))
                    .collect(),
            }
        })
        .collect();
    if let [gray] = &full[..] {
        let data = gray.iter().map(|&v| to_u8(v)).collect();
        return Pixels::new(ow as u32, oh as u32, 1, data);
    }
    let mut data = Vec::with_capacity(ow * oh * 3);
    for ((&yy, &cb), &cr) in full[0].iter().zip(&full[1]).zip(&full[2]) {
        let (cb, cr) = (cb - 128.0, cr - 128.0);
        data.push(to_u8(yy + 1.402 * cr));
        data.push(to_u8(yy - 0.344_136 * cb - 0.714_136 * cr));
        data.push(to_u8(yy + 1.772 * cb));
    }
    Pixels::new(ow as u32, oh as u32, 3, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::jpeg as libjpeg;
    use crate::pipeline::limits::Limits;
    use crate::pipeline::options::TransformOptions;
    use crate::pipeline::probe::{probe as probe_header, Probe};
    use crate::pipeline::resize::{stored_plan, Plan};
    use crate::pipeline::sniff::SourceFormat;
    use img_proxy_test_support::{cmyk_samples, jpeg};
    use jpeg_encoder::{ColorType as JColor, SamplingFactor};

    fn probe(src: &[u8]) -> Probe {
        probe_header(src, SourceFormat::Jpeg, &Limits::default()).expect("probe")
    }

    /// A plan small enough for the 1/8-scale decode.
    fn eighth(src: &[u8]) -> Plan {
        let p = probe(src);
        let opts = TransformOptions {
            w: Some(8),
            ..TransformOptions::default()
        };
        stored_plan(p.width, p.height, 1, &opts.normalized())
    }

    /// Progressive encodings of `data` (RGB) and `gray`, with the mean
    /// difference from libjpeg each may have.
    fn progressive_cases(data: &[u8], gray: &[u8], w: u16, h: u16) -> Vec<(Vec<u8>, f64)> {
        vec![
            (
                jpeg(data, w, h, JColor::Rgb, |e| e.set_progressive(true)),
                0.5,
            ),
            (
                jpeg(data, w, h, JColor::Rgb, |e| {
                    e.set_progressive(true);
                    e.set_restart_interval(3);
                }),
                0.5,
            ),
            (
                jpeg(data, w, h, JColor::Rgb, |e| {
                    e.set_progressive(true);
                    e.set_sampling_factor(SamplingFactor::F_2_1);
                }),
                1.5,
            ),
            (
                jpeg(data, w, h, JColor::Rgb, |e| {
                    e.set_progressive(true);
                    e.set_sampling_factor(SamplingFactor::F_2_2);
                    e.set_restart_interval(5);
                }),
                1.5,
            ),
            (
                jpeg(gray, w, h, JColor::Luma, |e| e.set_progressive(true)),
                0.5,
            ),
        ]
    }

    #[test]
    fn dc_only_decoder_matches_libjpeg() {
        let (w, h) = (203usize, 77usize); // not multiples of 8 or 16
        let data: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                // smooth gradients: chroma interpolation is compared, not aliasing
                [x as u8, (y * 3) as u8, ((x + 2 * y) / 2) as u8]
            })
            .collect();
        let gray: Vec<u8> = data.chunks(3).map(|p| p[0]).collect();
        let with_libjpeg = |d: &[u8]| match libjpeg::decode(d, 1, true).expect("libjpeg") {
            libjpeg::JpegPixels::Ready(p) => p,
            libjpeg::JpegPixels::Cmyk(p) => p,
        };
        let cases = progressive_cases(&data, &gray, w as u16, h as u16);
        for (i, (src, max_mean)) in cases.iter().enumerate() {
            let ours = decode(src).unwrap_or_else(|| panic!("case {i}: not decoded"));
            let reference = with_libjpeg(src);
            assert_eq!(
                (ours.w, ours.h, ours.ch),
                (reference.w, reference.h, reference.ch),
                "case {i}"
            );
            let diffs: Vec<u8> = ours
                .data
                .iter()
                .zip(&reference.data)
                .map(|(a, b)| a.abs_diff(*b))
                .collect();
            let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
            let max = diffs.iter().copied().max().unwrap_or(0);
            // full-resolution planes: libjpeg's fixed-point colour conversion
            // rounds differently by at most 1
            // Full-resolution planes match exactly (colour conversion may round
            // differently by 1); subsampled chroma is interpolated from DC
            // values where libjpeg replicates or uses a 2x2 IDCT.
            let max_allowed = if *max_mean > 1.0 { 16 } else { 1 };
            assert!(
                mean <= *max_mean && max <= max_allowed,
                "case {i}: mean {mean} max {max}"
            );
        }
        // out of scope or broken -> None (caller falls back to libjpeg)
        let baseline = jpeg(&data, w as u16, h as u16, JColor::Rgb, |_| {});
        assert!(decode(&baseline).is_none());
        let cmyk = jpeg(&cmyk_samples(), 16, 8, JColor::Cmyk, |e| {
            e.set_progressive(true)
        });
        assert!(decode(&cmyk).is_none());
        let src = &cases[0].0;
        for cut in [src.len() / 4, src.len() / 2, src.len() - 3] {
            assert!(decode(&src[..cut]).is_none(), "cut {cut}");
            let r = libjpeg::decode_scaled(&src[..cut], &probe(src), &eighth(src));
            assert!(r.is_err(), "cut {cut} accepted");
        }
    }
}
