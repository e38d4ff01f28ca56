//! An 8-bit interleaved pixel buffer and the cheap whole-image operations
//! the pipeline needs between decode, resize and encode.
//!
//! One tiny type instead of `image::DynamicImage` so that buffers produced
//! by libjpeg, libwebp and the `image` crate flow through without
//! conversion copies, and so channel count (gray, gray+alpha, RGB, RGBA) is
//! kept: a gray PNG stays gray and small.

use super::error::PipelineError;

/// Interleaved 8-bit pixels: 1 = gray, 2 = gray+alpha, 3 = RGB, 4 = RGBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pixels {
    pub w: u32,
    pub h: u32,
    pub ch: u8,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn new(w: u32, h: u32, ch: u8, data: Vec<u8>) -> Pixels {
        debug_assert_eq!(data.len(), w as usize * h as usize * ch as usize);
        Pixels { w, h, ch, data }
    }

    /// A zeroed buffer of `len` bytes for a decoder to fill, or an error
    /// (not an abort) when the machine cannot hold it.
    pub fn zeroed_buffer(len: u64) -> Result<Vec<u8>, PipelineError> {
        let len = usize::try_from(len).map_err(|_| PipelineError::too_large_for_machine())?;
        let mut v = Vec::new();
        v.try_reserve_exact(len)
            .map_err(|_| PipelineError::too_large_for_machine())?;
        v.resize(len, 0);
        Ok(v)
    }

    pub fn has_alpha(&self) -> bool {
        self.ch == 2 || self.ch == 4
    }

    /// Whether every alpha value is 255, so the alpha channel can be dropped.
    pub fn is_opaque(&self) -> bool {
        match self.ch {
            2 => self.data.chunks_exact(2).all(|p| p[1] == 255),
            4 => self.data.chunks_exact(4).all(|p| p[3] == 255),
            _ => true,
        }
    }

    /// Drops the alpha channel without compositing (only for opaque images).
    pub fn drop_alpha(self) -> Pixels {
        if !self.has_alpha() {
            return self;
        }
        let ch = self.ch as usize;
        let data = self
            .data
            .chunks_exact(ch)
            .flat_map(|p| p[..ch - 1].iter().copied())
            .collect();
        Pixels::new(self.w, self.h, self.ch - 1, data)
    }

    /// Composites onto white and drops alpha: what a browser shows for a
    /// transparent image on a default page, and what JPEG output needs.
    pub fn flatten_on_white(self) -> Pixels {
        if !self.has_alpha() {
            return self;
        }
        let ch = self.ch as usize;
        let mut data = Vec::with_capacity(self.data.len() / ch * (ch - 1));
        for p in self.data.chunks_exact(ch) {
            let a = u32::from(p[ch - 1]);
            for &c in &p[..ch - 1] {
                // c*a + 255*(255-a), divided by 255 with rounding
                let v = u32::from(c) * a + 255 * (255 - a);
                data.push(((v + 127) / 255) as u8);
            }
        }
        Pixels::new(self.w, self.h, self.ch - 1, data)
    }

    /// Expands gray to RGB (keeping alpha), for encoders without gray input.
    pub fn into_rgb_family(self) -> Pixels {
        match self.ch {
            1 => {
                let data = self.data.iter().flat_map(|&g| [g, g, g]).collect();
                Pixels::new(self.w, self.h, 3, data)
            }
            2 => {
                let data = self
                    .data
                    .chunks_exact(2)
                    .flat_map(|p| [p[0], p[0], p[0], p[1]])
                    .collect();
                Pixels::new(self.w, self.h, 4, data)
            }
            _ => self,
        }
    }

    /// Adds an alpha channel (fully opaque).
    pub fn with_alpha(self) -> Pixels {
        if self.has_alpha() {
            return self;
        }
        let ch = self.ch as usize;
        let mut data = Vec::with_capacity(self.data.len() / ch * (ch + 1));
        for p in self.data.chunks_exact(ch) {
            data.extend_from_slice(p);
            data.push(255);
        }
        Pixels::new(self.w, self.h, self.ch + 1, data)
    }

    /// Places the image centred on a `w` x `h` canvas filled with
    /// `background` (one value per channel).
    pub fn pad(self, w: u32, h: u32, background: &[u8]) -> Pixels {
        let ch = self.ch as usize;
        debug_assert_eq!(background.len(), ch);
        if self.w == w && self.h == h {
            return self;
        }
        let mut data = Vec::with_capacity(w as usize * h as usize * ch);
        for _ in 0..w as usize * h as usize {
            data.extend_from_slice(background);
        }
        let x0 = (w.saturating_sub(self.w) / 2) as usize;
        let y0 = (h.saturating_sub(self.h) / 2) as usize;
        let row = self.w.min(w) as usize * ch;
        for y in 0..self.h.min(h) as usize {
            let src = &self.data[y * self.w as usize * ch..][..row];
            let at = ((y0 + y) * w as usize + x0) * ch;
            data[at..at + row].copy_from_slice(src);
        }
        Pixels::new(w, h, self.ch, data)
    }

    /// Applies an EXIF orientation (1..=8) so the pixels are upright and
    /// the tag can be dropped.
    pub fn orient(self, orientation: u8) -> Pixels {
        if !(2..=8).contains(&orientation) {
            return self;
        }
        let (w, h, ch) = (self.w as usize, self.h as usize, self.ch as usize);
        let transpose = orientation >= 5;
        let (ow, oh) = if transpose { (h, w) } else { (w, h) };
        let mut out = vec![0u8; self.data.len()];
        // For each destination pixel (x, y), find its source pixel.
        for y in 0..oh {
            for x in 0..ow {
                let (sx, sy) = match orientation {
                    2 => (w - 1 - x, y),         // mirror horizontal
                    3 => (w - 1 - x, h - 1 - y), // rotate 180
                    4 => (x, h - 1 - y),         // mirror vertical
                    5 => (y, x),                 // transpose
                    6 => (y, h - 1 - x),         // rotate 90 CW
                    7 => (w - 1 - y, h - 1 - x), // transverse
                    _ => (w - 1 - y, x),         // 8: rotate 270 CW
                };
                let s = (sy * w + sx) * ch;
                let d = (y * ow + x) * ch;
                out[d..d + ch].copy_from_slice(&self.data[s..s + ch]);
            }
        }
        Pixels::new(ow as u32, oh as u32, self.ch, out)
    }
}

/// Converts 16-bit native-endian samples (as the `image` crate hands them
/// out) to 8-bit with rounding.
pub(crate) fn u16_to_u8(bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks_exact(2)
        .map(|b| {
            let v = u32::from(u16::from_ne_bytes([b[0], b[1]]));
            ((v * 255 + 32767) / 65535) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_maps_corners() {
        // 3x2 image, gray values 0..6:
        // 0 1 2
        // 3 4 5
        let p = Pixels::new(3, 2, 1, (0..6).collect());
        let cases: [(u8, u32, Vec<u8>); 8] = [
            (1, 3, vec![0, 1, 2, 3, 4, 5]),
            (2, 3, vec![2, 1, 0, 5, 4, 3]),
            (3, 3, vec![5, 4, 3, 2, 1, 0]),
            (4, 3, vec![3, 4, 5, 0, 1, 2]),
            (5, 2, vec![0, 3, 1, 4, 2, 5]),
            (6, 2, vec![3, 0, 4, 1, 5, 2]),
            (7, 2, vec![5, 2, 4, 1, 3, 0]),
            (8, 2, vec![2, 5, 1, 4, 0, 3]),
        ];
        for (o, w, data) in cases {
            let r = p.clone().orient(o);
            assert_eq!((r.w, r.data.clone()), (w, data), "orientation {o}");
        }
    }

    #[test]
    fn flatten_and_pad() {
        let p = Pixels::new(1, 1, 4, vec![0, 0, 0, 0]).flatten_on_white();
        assert_eq!(p.data, vec![255, 255, 255]);
        let p = Pixels::new(1, 1, 4, vec![0, 100, 200, 255]).flatten_on_white();
        assert_eq!(p.data, vec![0, 100, 200]);
        let p = Pixels::new(1, 1, 2, vec![0, 128]).flatten_on_white();
        assert_eq!(p.data, vec![127]);
        let p = Pixels::new(1, 1, 1, vec![9]).pad(3, 1, &[0]);
        assert_eq!(p.data, vec![0, 9, 0]);
        assert_eq!(u16_to_u8(&0xFFFFu16.to_ne_bytes()), vec![255]);
        assert_eq!(u16_to_u8(&0x8080u16.to_ne_bytes()), vec![128]);
    }
}
