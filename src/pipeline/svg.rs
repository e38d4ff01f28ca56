//! SVG sources: parsed by usvg, rasterised by resvg at the output size.
//!
//! An SVG is a document, not a picture, so it is never served as it is and
//! it is parsed under these rules (SECURITY.md lists them with their tests):
//! - nothing outside the file is read: external XML entities are not
//!   resolved (a reference to one is an error), `<image href>` resolves
//!   nothing (neither files nor URLs nor `data:` URIs: embedded raster
//!   images are left out), usvg has no resources directory, and `<use>`
//!   only follows references inside the document;
//! - no scripts run (resvg has no script engine) and no fonts are loaded:
//!   the build has no text support, so `<text>` is not drawn, and the
//!   output never depends on the fonts of the machine;
//! - entity expansion is bounded by roxmltree (depth 10, 255 references
//!   per reference: a "billion laughs" file is refused at once), and the
//!   element count by [`MAX_NODES`];
//! - the default size (from `width`/`height`, else the `viewBox`) is fitted
//!   into the pixel limit, keeping its aspect ratio: a vector image can be
//!   drawn at any size, so a huge declared size costs nothing more than the
//!   limit.

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg;

use super::error::{check_pixels, PipelineError};
use super::pixels::Pixels;
use super::resize::Plan;

/// Most XML nodes a document may have.
pub(crate) const MAX_NODES: u32 = 200_000;

/// Parses `data` under the rules above.
pub(crate) fn parse(data: &[u8]) -> Result<usvg::Tree, PipelineError> {
    let text = std::str::from_utf8(data).map_err(|_| PipelineError::corrupt("SVG is not UTF-8"))?;
    let xml = usvg::roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: MAX_NODES,
        // External entities (SYSTEM/PUBLIC) are never fetched.
        entity_resolver: Some(&|_, uri| Err(format!("external entity {uri:?} refused"))),
    };
    let doc = usvg::roxmltree::Document::parse_with_options(text, xml)
        .map_err(|e| PipelineError::corrupt(format!("SVG: {e}")))?;
    let opts = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    usvg::Tree::from_xmltree(&doc, &opts).map_err(|e| PipelineError::corrupt(format!("SVG: {e}")))
}

/// The default size: the document's own, rounded up, fitted into
/// `max_pixels` with its aspect ratio kept.
pub(crate) fn default_size(tree: &usvg::Tree, max_pixels: u64) -> (u32, u32) {
    let s = tree.size();
    let (w, h) = (f64::from(s.width()), f64::from(s.height()));
    let fit = ((max_pixels as f64) / (w * h)).sqrt().min(1.0);
    let side = |v: f64| (v * fit).floor().clamp(1.0, f64::from(u32::MAX)) as u32;
    let (mut sw, mut sh) = (side(w), side(h));
    while u64::from(sw) * u64::from(sh) > max_pixels {
        // Rounding never pushes it over by more than a row or a column.
        (sw, sh) = if sw >= sh { (sw - 1, sh) } else { (sw, sh - 1) };
    }
    (sw.max(1), sh.max(1))
}

/// The geometry size for a request: the default size, scaled up so the
/// requested `w`/`h` fit in it (a vector image is drawn larger without
/// loss, where a raster image is only ever shrunk).
pub(crate) fn geometry_size(
    (dw, dh): (u32, u32),
    w: Option<u32>,
    h: Option<u32>,
    max_pixels: u64,
) -> (u32, u32) {
    let kw = w.map_or(0.0, |w| f64::from(w) / f64::from(dw));
    let kh = h.map_or(0.0, |h| f64::from(h) / f64::from(dh));
    let k = kw.max(kh);
    if k <= 1.0 {
        return (dw, dh);
    }
    let (gw, gh) = (
        (f64::from(dw) * k).round().clamp(1.0, f64::from(u32::MAX)) as u32,
        (f64::from(dh) * k).round().clamp(1.0, f64::from(u32::MAX)) as u32,
    );
    if u64::from(gw) * u64::from(gh) > max_pixels {
        return (dw, dh);
    }
    (gw, gh)
}

/// Draws `tree` so that the plan's (cropped) region comes out at its
/// resize size: the whole document at `geometry` scaled by the plan, so
/// the resample step only crops. RGBA, not premultiplied.
pub(crate) fn rasterise(
    tree: &usvg::Tree,
    (gw, gh): (u32, u32),
    plan: &Plan,
    max_pixels: u64,
) -> Result<Pixels, PipelineError> {
    let sx = f64::from(plan.resize_w) / (f64::from(gw) * plan.crop_fw);
    let sy = f64::from(plan.resize_h) / (f64::from(gh) * plan.crop_fh);
    let rw = (f64::from(gw) * sx).round().max(1.0) as u32;
    let rh = (f64::from(gh) * sy).round().max(1.0) as u32;
    check_pixels(rw, rh, max_pixels)?;
    let mut pixmap = Pixmap::new(rw, rh).ok_or_else(PipelineError::too_large_for_machine)?;
    let size = tree.size();
    let t = Transform::from_scale(rw as f32 / size.width(), rh as f32 / size.height());
    resvg::render(tree, t, &mut pixmap.as_mut());
    let data = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    Ok(Pixels::new(rw, rh, 4, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_size_comes_from_width_height_or_view_box() {
        let t =
            parse(br#"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"/>"#).unwrap();
        assert_eq!(default_size(&t, 1 << 20), (40, 20));
        let t =
            parse(br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 150"/>"#).unwrap();
        assert_eq!(default_size(&t, 1 << 20), (300, 150));
    }

    #[test]
    fn a_huge_declared_size_is_fitted_into_the_limit() {
        let t =
            parse(br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1e9 5e8"/>"#).unwrap();
        let (w, h) = default_size(&t, 1_000_000);
        assert!(u64::from(w) * u64::from(h) <= 1_000_000, "{w}x{h}");
        assert!(
            (1410..=1415).contains(&w) && (705..=708).contains(&h),
            "{w}x{h}"
        );
    }

    #[test]
    fn requested_sizes_enlarge_the_geometry_within_the_limit() {
        assert_eq!(
            geometry_size((40, 20), Some(400), None, 1 << 20),
            (400, 200)
        );
        assert_eq!(geometry_size((40, 20), None, Some(10), 1 << 20), (40, 20));
        assert_eq!(geometry_size((40, 20), Some(4000), None, 1 << 20), (40, 20));
    }

    #[test]
    fn entity_bombs_and_external_entities_are_refused() {
        let mut bomb = String::from("<?xml version=\"1.0\"?><!DOCTYPE svg [<!ENTITY a0 \"lol\">");
        for i in 1..10 {
            let refs = format!("&a{};", i - 1).repeat(10);
            bomb.push_str(&format!("<!ENTITY a{i} \"{refs}\">"));
        }
        bomb.push_str("]><svg xmlns=\"http://www.w3.org/2000/svg\"><desc>&a9;</desc></svg>");
        let started = std::time::Instant::now();
        assert!(parse(bomb.as_bytes()).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let ext = br#"<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"><desc>&x;</desc></svg>"#;
        assert!(parse(ext).is_err());
    }
}
