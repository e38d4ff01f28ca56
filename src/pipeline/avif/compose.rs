//! Putting an AVIF picture together from decoded parts: grid tiles onto
//! one canvas, the alpha plane beside the colour, premultiplication undone,
//! the clean aperture cut out. Plain pixel work, kept apart from the AV1
//! decoder so it can be tested without one.

use super::heif::{Crop, Grid};
use crate::pipeline::error::PipelineError;
use crate::pipeline::pixels::Pixels;

fn corrupt(what: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(format!("AVIF: {what}"))
}

/// A grid's output image, filled tile by tile. Tiles are placed in
/// row-major order and clipped to the output size, which is the same as
/// stitching them all and cropping the result (HEIF 6.6.2.3), without the
/// oversized intermediate.
pub(crate) struct Canvas {
    px: Pixels,
    cols: u32,
    tile_w: u32,
    tile_h: u32,
}

impl Canvas {
    /// A canvas for `grid`, sized by its first decoded tile. As libavif
    /// requires, the tiles must cover the output with no whole row or
    /// column to spare; that also bounds the decoding work by the output
    /// size (checked against `max_pixels`).
    pub fn new(grid: &Grid, first: &Pixels, max_pixels: u64) -> Result<Canvas, PipelineError> {
        let (tw, th) = (first.w, first.h);
        let covers = |tile: u32, n: u32, out: u32| {
            let full = u64::from(tile) * u64::from(n);
            full >= u64::from(out) && full - u64::from(tile) < u64::from(out)
        };
        if !covers(tw, grid.cols, grid.width) || !covers(th, grid.rows, grid.height) {
            return Err(corrupt(format!(
                "{}x{} tiles of {tw}x{th} do not make {}x{}",
                grid.cols, grid.rows, grid.width, grid.height
            )));
        }
        let n = u64::from(grid.width) * u64::from(grid.height);
        if n > max_pixels {
            return Err(PipelineError::TooManyPixels {
                width: grid.width.into(),
                height: grid.height.into(),
                max: max_pixels,
            });
        }
        let len = n as usize * usize::from(first.ch);
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| corrupt("image is too large for this machine"))?;
        data.resize(len, 0);
        Ok(Canvas {
            px: Pixels::new(grid.width, grid.height, first.ch, data),
            cols: grid.cols,
            tile_w: tw,
            tile_h: th,
        })
    }

    /// Copies tile number `index` (row-major) into place.
    pub fn place(&mut self, index: usize, tile: &Pixels) -> Result<(), PipelineError> {
        if (tile.w, tile.h, tile.ch) != (self.tile_w, self.tile_h, self.px.ch) {
            return Err(corrupt("grid tiles differ in size or colour"));
        }
        let index = index as u32;
        let (x0, y0) = (
            (index % self.cols) * self.tile_w,
            (index / self.cols) * self.tile_h,
        );
        let ch = usize::from(self.px.ch);
        let (cw, chh) = (self.px.w, self.px.h);
        if x0 >= cw || y0 >= chh {
            return Ok(()); // wholly outside the output: nothing to copy
        }
        let row = (tile.w.min(cw - x0)) as usize * ch;
        for y in 0..tile.h.min(chh - y0) as usize {
            let src = &tile.data[y * tile.w as usize * ch..][..row];
            let at = ((y0 as usize + y) * cw as usize + x0 as usize) * ch;
            self.px.data[at..at + row].copy_from_slice(src);
        }
        Ok(())
    }

    pub fn finish(self) -> Pixels {
        self.px
    }
}

/// Adds `alpha` (one channel, same size) to gray or RGB `color`.
pub(crate) fn merge_alpha(color: Pixels, alpha: &Pixels) -> Result<Pixels, PipelineError> {
    if (alpha.w, alpha.h) != (color.w, color.h) || alpha.ch != 1 || color.has_alpha() {
        return Err(corrupt("alpha plane size differs from the image"));
    }
    let ch = usize::from(color.ch);
    let mut data = Vec::new();
    data.try_reserve_exact(color.data.len() + alpha.data.len())
        .map_err(|_| corrupt("image is too large for this machine"))?;
    for (c, &a) in color.data.chunks_exact(ch).zip(&alpha.data) {
        data.extend_from_slice(c);
        data.push(a);
    }
    Ok(Pixels::new(color.w, color.h, color.ch + 1, data))
}

/// Divides colour by alpha (for `prem` files).
pub(crate) fn unpremultiply(px: &mut Pixels) {
    let ch = px.ch as usize;
    for p in px.data.chunks_exact_mut(ch) {
        let a = u32::from(p[ch - 1]);
        if a > 0 && a < 255 {
            for c in &mut p[..ch - 1] {
                *c = ((u32::from(*c) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
}

/// Cuts out `c`; an image the rectangle does not fit (a decoded size that
/// differs from the declared one) is returned whole, as an invalid `clap`
/// is ignored.
pub(crate) fn crop(px: Pixels, c: Crop) -> Pixels {
    let fits = u64::from(c.x) + u64::from(c.w) <= u64::from(px.w)
        && u64::from(c.y) + u64::from(c.h) <= u64::from(px.h);
    if !fits || (c.w, c.h) == (px.w, px.h) || c.w == 0 || c.h == 0 {
        return px;
    }
    let ch = usize::from(px.ch);
    let row = c.w as usize * ch;
    let mut data = Vec::with_capacity(row * c.h as usize);
    for y in c.y..c.y + c.h {
        let at = (y as usize * px.w as usize + c.x as usize) * ch;
        data.extend_from_slice(&px.data[at..at + row]);
    }
    Pixels::new(c.w, c.h, px.ch, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: u32, cols: u32, width: u32, height: u32) -> Grid {
        Grid {
            rows,
            cols,
            width,
            height,
            tiles: Vec::new(),
        }
    }

    fn tile(w: u32, h: u32, v: u8) -> Pixels {
        Pixels::new(w, h, 1, vec![v; (w * h) as usize])
    }

    #[test]
    fn tiles_are_placed_row_major_and_clipped() {
        // 2x2 tiles of 3x2 make 5x3: the right column and bottom row are
        // clipped.
        let g = grid(2, 2, 5, 3);
        let mut c = Canvas::new(&g, &tile(3, 2, 1), 100).expect("canvas");
        for (i, v) in [1, 2, 3, 4].into_iter().enumerate() {
            c.place(i, &tile(3, 2, v)).expect("tile");
        }
        let px = c.finish();
        assert_eq!((px.w, px.h), (5, 3));
        assert_eq!(
            px.data,
            vec![1, 1, 1, 2, 2, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4],
            "rows: 11122 / 11122 / 33344"
        );
    }

    #[test]
    fn grids_that_do_not_cover_or_overshoot_are_refused() {
        // Too small: 2 tiles of 3 cannot make 7.
        assert!(Canvas::new(&grid(1, 2, 7, 2), &tile(3, 2, 0), 100).is_err());
        // A whole spare column: 3 tiles of 3 for 5.
        assert!(Canvas::new(&grid(1, 3, 5, 2), &tile(3, 2, 0), 100).is_err());
        // Over the pixel limit.
        let e = Canvas::new(&grid(1, 2, 6, 2), &tile(3, 2, 0), 11).err();
        assert!(
            matches!(e, Some(PipelineError::TooManyPixels { .. })),
            "{e:?}"
        );
        // Mismatched tile.
        let mut c = Canvas::new(&grid(1, 2, 6, 2), &tile(3, 2, 0), 100).expect("canvas");
        assert!(c.place(1, &tile(2, 2, 0)).is_err());
    }

    #[test]
    fn alpha_is_merged_and_unpremultiplied() {
        let color = Pixels::new(2, 1, 3, vec![100, 50, 0, 10, 20, 30]);
        let alpha = Pixels::new(2, 1, 1, vec![128, 255]);
        let mut px = merge_alpha(color, &alpha).expect("merge");
        assert_eq!(px.data, vec![100, 50, 0, 128, 10, 20, 30, 255]);
        unpremultiply(&mut px);
        assert_eq!(px.data, vec![199, 100, 0, 128, 10, 20, 30, 255]);
        let wrong = Pixels::new(1, 1, 1, vec![0]);
        assert!(merge_alpha(Pixels::new(2, 1, 1, vec![0, 0]), &wrong).is_err());
    }

    #[test]
    fn crop_cuts_and_ignores_what_does_not_fit() {
        let px = Pixels::new(3, 3, 1, (0..9).collect());
        let c = crop(
            px.clone(),
            Crop {
                x: 1,
                y: 1,
                w: 2,
                h: 1,
            },
        );
        assert_eq!((c.w, c.h, c.data), (2, 1, vec![4, 5]));
        let c = crop(
            px.clone(),
            Crop {
                x: 2,
                y: 0,
                w: 2,
                h: 1,
            },
        );
        assert_eq!(c, px);
    }
}
