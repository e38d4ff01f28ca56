//! A DC-only decoder for progressive JPEGs: the 1/8-scale image straight
//! from the DC scans.
//!
//! Why: at 1/8 scale every output pixel is the average of an 8x8 block,
//! i.e. the block's DC coefficient. libjpeg gets there too (and
//! [`super::jpeg::without_ac_scans`] already spares it the AC scans), but a
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

use super::pixels::Pixels;

#[derive(Clone)]
struct Huffman {
    maxcode: [i32; 17],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8], values: &[u8]) -> Option<Huffman> {
        let mut h = Huffman {
            maxcode: [-1; 17],
            valptr: [0; 17],
            mincode: [0; 17],
            values: values.to_vec(),
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
        (k as usize == values.len()).then_some(h)
    }
}

struct Bits<'a> {
    d: &'a [u8],
    pos: usize,
    acc: u32,
    n: u32,
}

impl<'a> Bits<'a> {
    fn bit(&mut self) -> Option<u32> {
        if self.n == 0 {
            let b = *self.d.get(self.pos)?;
            if b == 0xFF {
                // Only a stuffed zero may follow inside entropy data; a
                // marker here means the data ran out while bits are needed.
                if *self.d.get(self.pos + 1)? != 0 {
                    return None;
                }
                self.pos += 2;
            } else {
                self.pos += 1;
            }
            self.acc = u32::from(b);
            self.n = 8;
        }
        self.n -= 1;
        Some((self.acc >> self.n) & 1)
    }

    fn bits(&mut self, n: u8) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    fn decode(&mut self, h: &Huffman) -> Option<u8> {
        let mut code = 0i32;
        for len in 1..=16 {
            code = (code << 1) | self.bit()? as i32;
            if code <= h.maxcode[len] {
                let i = h.valptr[len] + code - h.mincode[len];
                return h.values.get(usize::try_from(i).ok()?).copied();
            }
        }
        None
    }

    /// Skips to just after the next RSTn marker.
    fn restart(&mut self) -> Option<()> {
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

/// Decodes a progressive JPEG at 1/8 scale from its DC scans, or `None`
/// when the file is outside this decoder's scope or malformed.
pub(crate) fn decode(d: &[u8]) -> Option<Pixels> {
    let mut dc_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut quant = [None::<u16>; 4];
    let mut comps: Vec<Component> = Vec::new();
    let (mut width, mut height) = (0usize, 0usize);
    let (mut mcus_x, mut mcus_y) = (0usize, 0usize);
    let mut restart_interval = 0usize;
    let mut adobe = false;
    let mut pos = 2usize;
    loop {
        if *d.get(pos)? != 0xFF {
            return None;
        }
        while d.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let m = *d.get(pos + 1)?;
        if m == 0xD9 {
            break;
        }
        if matches!(m, 0xD0..=0xD7 | 0x01) {
            pos += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*d.get(pos + 2)?, *d.get(pos + 3)?]));
        let seg = d.get(pos + 4..pos + 2 + len)?;
        let seg_end = pos + 2 + len;
        match m {
            0xC2 => {
                // 8-bit precision, 1 or 3 components only.
                if seg.len() < 6 || seg[0] != 8 || !comps.is_empty() {
                    return None;
                }
                height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
                width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
                let n = usize::from(seg[5]);
                if width == 0 || height == 0 || !(n == 1 || n == 3) || seg.len() < 6 + 3 * n {
                    return None;
                }
                for i in 0..n {
                    let c = &seg[6 + 3 * i..9 + 3 * i];
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
                mcus_x = width.div_ceil(8 * max_h);
                mcus_y = height.div_ceil(8 * max_v);
                for c in &mut comps {
                    c.bw = mcus_x * c.h;
                    c.bh = mcus_y * c.v;
                    c.cw = (width * c.h).div_ceil(max_h).div_ceil(8);
                    c.ch = (height * c.v).div_ceil(max_v).div_ceil(8);
                    c.dc = vec![0; c.bw * c.bh];
                }
            }
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xC4 => {
                let mut s = seg;
                while !s.is_empty() {
                    let (tc, th) = (s[0] >> 4, usize::from(s[0] & 15));
                    let counts = s.get(1..17)?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let values = s.get(17..17 + n)?;
                    if th > 3 || n > 256 {
                        return None;
                    }
                    if tc == 0 {
                        dc_tables[th] = Some(Huffman::new(counts, values)?);
                    }
                    s = &s[17 + n..];
                }
            }
            0xDB => {
                let mut s = seg;
                while !s.is_empty() {
                    let (pq, tq) = (s[0] >> 4, usize::from(s[0] & 15));
                    if tq > 3 || pq > 1 {
                        return None;
                    }
                    let size = if pq == 0 { 64 } else { 128 };
                    let t = s.get(1..1 + size)?;
                    quant[tq] = Some(if pq == 0 {
                        u16::from(t[0])
                    } else {
                        u16::from_be_bytes([t[0], t[1]])
                    });
                    s = &s[1 + size..];
                }
            }
            0xDD => {
                restart_interval = usize::from(u16::from_be_bytes([*seg.first()?, *seg.get(1)?]));
            }
            0xEE if seg.starts_with(b"Adobe") => adobe = true,
            _ => {}
        }
        if m != 0xDA {
            pos = seg_end;
            continue;
        }
        // SOS: find the end of its entropy-coded data first.
        let end = super::jpeg::entropy_end(d, seg_end)?;
        if comps.is_empty() {
            return None;
        }
        let ns = usize::from(*seg.first()?);
        let sel: Vec<(usize, usize)> = (0..ns)
            .map(|i| {
                let id = *seg.get(1 + 2 * i)?;
                let td = usize::from(*seg.get(2 + 2 * i)? >> 4);
                Some((comps.iter().position(|c| c.id == id)?, td))
            })
            .collect::<Option<_>>()?;
        let (ss, ah_al) = (*seg.get(1 + 2 * ns)?, *seg.get(3 + 2 * ns)?);
        if ss == 0 {
            let data = &d[seg_end..end];
            dc_scan(
                &mut comps,
                &sel,
                data,
                ah_al >> 4,
                ah_al & 15,
                restart_interval,
                &dc_tables,
                &quant,
                mcus_x,
                mcus_y,
            )?;
        }
        pos = end;
    }
    if comps.is_empty() || comps.iter().any(|c| !c.seen_dc) || (adobe && comps.len() == 3) {
        return None;
    }
    Some(render(&comps, width, height))
}

#[allow(clippy::too_many_arguments)]
fn dc_scan(
    comps: &mut [Component],
    sel: &[(usize, usize)],
    data: &[u8],
    ah: u8,
    al: u8,
    restart_interval: usize,
    tables: &[Option<Huffman>; 4],
    quant: &[Option<u16>; 4],
    mcus_x: usize,
    mcus_y: usize,
) -> Option<()> {
    if al > 13 || sel.is_empty() {
        return None;
    }
    let mut bits = Bits {
        d: data,
        pos: 0,
        acc: 0,
        n: 0,
    };
    let first = ah == 0;
    for &(ci, _) in sel {
        let c = &mut comps[ci];
        if first {
            c.quant = Some(quant[c.tq]?);
            c.seen_dc = true;
        } else if !c.seen_dc {
            return None;
        }
    }
    let mut pred = vec![0i32; sel.len()];
    let single = sel.len() == 1;
    let (cw, ch) = (comps[sel[0].0].cw, comps[sel[0].0].ch);
    // Non-interleaved scans code one block per MCU, covering only the
    // blocks inside the image; interleaved ones whole MCUs.
    let total = if single { cw * ch } else { mcus_x * mcus_y };
    for m in 0..total {
        if restart_interval > 0 && m > 0 && m % restart_interval == 0 {
            bits.restart()?;
            pred.iter_mut().for_each(|p| *p = 0);
        }
        if single {
            let (ci, td) = sel[0];
            unit(
                &mut bits,
                &mut comps[ci],
                td,
                &mut pred[0],
                first,
                al,
                tables,
                m % cw,
                m / cw,
            )?;
        } else {
            let (mx, my) = (m % mcus_x, m / mcus_x);
            for (k, &(ci, td)) in sel.iter().enumerate() {
                let c = &mut comps[ci];
                let (h, v) = (c.h, c.v);
                for y in 0..v {
                    for x in 0..h {
                        unit(
                            &mut bits,
                            c,
                            td,
                            &mut pred[k],
                            first,
                            al,
                            tables,
                            mx * h + x,
                            my * v + y,
                        )?;
                    }
                }
            }
        }
    }
    Some(())
}

/// Decodes one block's DC (first pass) or its refinement bit.
#[allow(clippy::too_many_arguments)]
fn unit(
    bits: &mut Bits,
    c: &mut Component,
    td: usize,
    pred: &mut i32,
    first: bool,
    al: u8,
    tables: &[Option<Huffman>; 4],
    bx: usize,
    by: usize,
) -> Option<()> {
    let at = by * c.bw + bx;
    if first {
        let t = bits.decode(tables.get(td)?.as_ref()?)?;
        if t > 11 {
            return None;
        }
        *pred += extend(bits.bits(t)?, t);
        *c.dc.get_mut(at)? = i16::try_from(*pred << al).ok()?;
    } else if bits.bit()? == 1 {
        *c.dc.get_mut(at)? |= 1 << al;
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

fn render(comps: &[Component], width: usize, height: usize) -> Pixels {
    let (ow, oh) = (width.div_ceil(8), height.div_ceil(8));
    let max_h = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let max_v = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let planes: Vec<Vec<f32>> = comps.iter().map(plane).collect();
    // Sample component `i` at output pixel (x, y), bilinear with centred
    // alignment when the component is subsampled.
    let sample = |i: usize, x: usize, y: usize| -> f32 {
        let c = &comps[i];
        let p = &planes[i];
        if c.h == max_h && c.v == max_v {
            return p[y * c.bw + x];
        }
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
    let to_u8 = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    if comps.len() == 1 {
        let data = (0..oh)
            .flat_map(|y| (0..ow).map(move |x| (x, y)))
            .map(|(x, y)| to_u8(sample(0, x, y)))
            .collect();
        return Pixels::new(ow as u32, oh as u32, 1, data);
    }
    let mut data = Vec::with_capacity(ow * oh * 3);
    for y in 0..oh {
        for x in 0..ow {
            let yy = sample(0, x, y);
            let cb = sample(1, x, y) - 128.0;
            let cr = sample(2, x, y) - 128.0;
            data.push(to_u8(yy + 1.402 * cr));
            data.push(to_u8(yy - 0.344_136 * cb - 0.714_136 * cr));
            data.push(to_u8(yy + 1.772 * cb));
        }
    }
    Pixels::new(ow as u32, oh as u32, 3, data)
}
