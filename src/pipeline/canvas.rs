//! The last render step: alpha and canvas handling for the output format.

use super::options::OutputFormat;
use super::pixels::Pixels;

/// JPEG gets white instead of transparency; alpha that is fully opaque is
/// dropped (smaller files); `contain` pads to the `(w, h)` canvas
/// (displayed orientation) with transparency, or white without alpha.
pub(crate) fn finish(px: Pixels, (cw, ch): (u32, u32), out: OutputFormat) -> Pixels {
    let mut px = if !out.has_alpha() {
        px.flatten_on_white()
    } else if px.has_alpha() && px.is_opaque() {
        px.drop_alpha()
    } else {
        px
    };
    if (cw, ch) != (px.w, px.h) {
        let bg: &[u8] = if out.has_alpha() {
            px = px.with_alpha();
            &[0, 0, 0, 0]
        } else {
            &[255, 255, 255]
        };
        let n = px.ch as usize;
        let bg = if n <= 2 {
            &bg[bg.len() - n..]
        } else {
            &bg[..n]
        };
        px = px.pad(cw, ch, bg);
    }
    px
}
