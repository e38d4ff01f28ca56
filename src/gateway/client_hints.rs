//! Client Hints and `Save-Data` (`CLIENT_HINTS=true`): the request's
//! `Sec-CH-Width`/`Width`, `Sec-CH-DPR`/`DPR` and `Save-Data` headers stand
//! in for options the URL leaves out.
//!
//! Resolved here, on the gateway, before routing (like `format=auto`
//! against `Accept`), so workers and cache keys only ever see ordinary
//! options. Hint values are snapped to a few buckets first, so hints
//! cannot multiply cache entries: widths up to the next of
//! [`WIDTH_BUCKETS`], DPR up to the next of [`DPR_BUCKETS`]. Hints never
//! touch the query string, so signed URLs verify as before.
//!
//! Which hint is consulted (and so named in `Vary`, whether the request
//! carried it or not, since its absence chose the answer too):
//! - `Sec-CH-Width`, `Width` (physical pixels) when the URL has no `w`;
//! - `Sec-CH-DPR`, `DPR` when the URL has no `dpr` and a size it would
//!   scale (`w` or `h` from the URL);
//! - `Save-Data` when the answer is transformed anyway: `on` lowers the
//!   quality to [`save_data_quality`]. An untouched original stays
//!   untouched (re-encoding it could lose an animation or grow a PNG).

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::pipeline::options::{Resolved, MAX_DIMENSION};
use crate::pipeline::RequestedOptions;

/// `Accept-CH` on every `/image` answer when hints are on.
pub const ACCEPT_CH: &str = "Sec-CH-DPR, Sec-CH-Width, Save-Data, DPR, Width";
/// Widths a `Width` hint snaps up to (the largest caps bigger hints).
pub const WIDTH_BUCKETS: [u32; 13] = [
    64, 128, 256, 384, 512, 640, 768, 1024, 1280, 1536, 1920, 2560, 3840,
];
/// Device pixel ratios a `DPR` hint snaps up to (3 caps bigger hints).
pub const DPR_BUCKETS: [f64; 4] = [1.0, 1.5, 2.0, 3.0];

/// `CLIENT_HINTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientHints {
    /// Hint headers are ignored (the default).
    Off,
    /// Hint headers fill in `w`, `dpr` and lower `q` (see the module doc).
    On,
}

/// The options a request resolves to, and what its answer must say about
/// the headers that chose them.
pub struct Hinted {
    /// The concrete options (hints applied, buckets only).
    pub resolved: Resolved,
    /// Request headers the answer depends on, for `Vary`.
    pub vary: Vec<&'static str>,
    /// The DPR bucket a `DPR` hint scaled the answer by, for `Content-DPR`.
    pub content_dpr: Option<f64>,
}

/// `Save-Data: on` quality: 65% of the asked (or default) quality, but not
/// below 30 (nor above what was asked): 80 becomes 52.
pub fn save_data_quality(q: u8) -> u8 {
    let lowered = (f64::from(q) * 0.65).round() as u8;
    lowered.max(30).min(q)
}

/// Resolves `requested` against the request's `headers` (`Accept` for
/// `format=auto`, and the hints when `policy` is on).
pub fn resolve(requested: &RequestedOptions, headers: &HeaderMap, policy: ClientHints) -> Hinted {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok());
    let mut vary = Vec::new();
    if policy == ClientHints::Off {
        let resolved = requested.resolve(accept);
        if resolved.varies_on_accept {
            vary.push("Accept");
        }
        return Hinted {
            resolved,
            vary,
            content_dpr: None,
        };
    }
    let mut req = requested.clone();
    let mut content_dpr = None;
    let width = if req.w.is_none() {
        vary.extend(["Sec-CH-Width", "Width"]);
        hint(headers, "sec-ch-width", "width").and_then(width_bucket)
    } else {
        None
    };
    let dpr = if req.dpr.is_none() && (req.w.is_some() || req.h.is_some()) {
        vary.extend(["Sec-CH-DPR", "DPR"]);
        hint(headers, "sec-ch-dpr", "dpr").and_then(dpr_bucket)
    } else {
        None
    };
    if let Some(d) = dpr {
        content_dpr = Some(d);
        req.dpr = Some(d);
    }
    if let Some(w) = width {
        // A width hint is in physical pixels already: only the URL's `h`
        // is scaled by the DPR.
        let scale = req.dpr.take().unwrap_or(1.0);
        req.h = req
            .h
            .map(|h| ((f64::from(h) * scale).round() as u32).clamp(1, MAX_DIMENSION));
        req.w = Some(w);
    }
    let mut resolved = req.resolve(accept);
    if resolved.varies_on_accept {
        vary.insert(0, "Accept");
    }
    if !resolved.options.is_identity() {
        vary.push("Save-Data");
        if save_data(headers) {
            let o = &mut resolved.options;
            o.quality = save_data_quality(o.quality);
            resolved.options = o.clone().normalized();
        }
    }
    Hinted {
        resolved,
        vary,
        content_dpr,
    }
}

impl Hinted {
    /// Adds `Vary` and `Content-DPR` to a successful answer.
    pub fn decorate(&self, headers: &mut HeaderMap) {
        if !self.vary.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&self.vary.join(", ")) {
                headers.insert(axum::http::header::VARY, v);
            }
        }
        if let Some(d) = self.content_dpr {
            if let Ok(v) = HeaderValue::from_str(&d.to_string()) {
                headers.insert(HeaderName::from_static("content-dpr"), v);
            }
        }
    }
}

/// The first of `names` the request carries, as text.
fn hint<'a>(headers: &'a HeaderMap, modern: &str, legacy: &str) -> Option<&'a str> {
    headers
        .get(modern)
        .or_else(|| headers.get(legacy))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A width hint (plain digits, at least 1) snapped up to its bucket;
/// anything else is ignored.
fn width_bucket(v: &str) -> Option<u32> {
    if v.is_empty() || v.len() > 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w: u32 = v.parse().ok().filter(|&w| w >= 1)?;
    Some(
        WIDTH_BUCKETS
            .into_iter()
            .find(|&b| b >= w)
            .unwrap_or(WIDTH_BUCKETS[WIDTH_BUCKETS.len() - 1]),
    )
}

/// A DPR hint (a plain positive decimal) snapped up to its bucket;
/// anything else is ignored.
fn dpr_bucket(v: &str) -> Option<f64> {
    let plain = !v.is_empty()
        && v.len() <= 8
        && v.bytes().filter(|&b| b == b'.').count() <= 1
        && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.bytes().any(|b| b.is_ascii_digit());
    let d: f64 = plain
        .then(|| v.parse().ok())
        .flatten()
        .filter(|&d| d > 0.0)?;
    Some(
        DPR_BUCKETS
            .into_iter()
            .find(|&b| b >= d - 1e-9)
            .unwrap_or(DPR_BUCKETS[DPR_BUCKETS.len() - 1]),
    )
}

/// Whether `Save-Data` says `on` (its first token, any case).
fn save_data(headers: &HeaderMap) -> bool {
    headers
        .get("save-data")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("on"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hinted(query: &str, hs: &[(&'static str, &str)]) -> Hinted {
        let requested = RequestedOptions::from_query(
            query
                .split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| kv.split_once('=').unwrap_or((kv, ""))),
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in hs {
            headers.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        resolve(&requested, &headers, ClientHints::On)
    }

    #[test]
    fn buckets_snap_up_and_cap() {
        assert_eq!(width_bucket("1"), Some(64));
        assert_eq!(width_bucket("64"), Some(64));
        assert_eq!(width_bucket("65"), Some(128));
        assert_eq!(width_bucket("700"), Some(768));
        assert_eq!(width_bucket("99999"), Some(3840));
        for bad in ["", "0", "-5", "1.5", "abc", "1234567"] {
            assert_eq!(width_bucket(bad), None, "{bad}");
        }
        assert_eq!(dpr_bucket("0.5"), Some(1.0));
        assert_eq!(dpr_bucket("1"), Some(1.0));
        assert_eq!(dpr_bucket("1.25"), Some(1.5));
        assert_eq!(dpr_bucket("2.625"), Some(3.0));
        assert_eq!(dpr_bucket("7"), Some(3.0));
        for bad in ["", "0", "nan", "-1", "1e1", "inf"] {
            assert_eq!(dpr_bucket(bad), None, "{bad}");
        }
        assert_eq!(save_data_quality(80), 52);
        assert_eq!(save_data_quality(40), 30);
        assert_eq!(save_data_quality(20), 20);
    }

    #[test]
    fn width_hint_stands_in_for_w_only() {
        let h = hinted("", &[("sec-ch-width", "700"), ("width", "100")]);
        assert_eq!(h.resolved.options.w, Some(768));
        assert_eq!(h.vary, ["Sec-CH-Width", "Width", "Save-Data"]);
        assert_eq!(h.content_dpr, None);
        let h = hinted("", &[("width", "100")]);
        assert_eq!(h.resolved.options.w, Some(128));
        let h = hinted("w=50", &[("width", "700")]);
        assert_eq!(h.resolved.options.w, Some(50));
        // The URL's h is CSS pixels: scaled by the DPR, the width is not.
        let h = hinted("h=100", &[("width", "700"), ("dpr", "2")]);
        assert_eq!(
            (h.resolved.options.w, h.resolved.options.h),
            (Some(768), Some(200))
        );
        assert_eq!(h.content_dpr, Some(2.0));
    }

    #[test]
    fn dpr_hint_scales_the_urls_sizes() {
        let h = hinted("w=100", &[("sec-ch-dpr", "2.625")]);
        assert_eq!(h.resolved.options.w, Some(300));
        assert_eq!(h.content_dpr, Some(3.0));
        assert_eq!(h.vary, ["Sec-CH-DPR", "DPR", "Save-Data"]);
        // The URL's own dpr wins and nothing varies on the hint.
        let h = hinted("w=100&dpr=1.5", &[("dpr", "3")]);
        assert_eq!(h.resolved.options.w, Some(150));
        assert_eq!(h.vary, ["Save-Data"]);
        // Nothing to scale: DPR is not consulted.
        let h = hinted("format=png", &[("dpr", "3")]);
        assert_eq!(h.vary, ["Sec-CH-Width", "Width", "Save-Data"]);
        assert!(h.resolved.options.w.is_none());
    }

    #[test]
    fn save_data_lowers_quality_of_transformed_answers_only() {
        let h = hinted(
            "w=100&format=auto",
            &[("save-data", "on"), ("accept", "image/webp")],
        );
        assert_eq!(h.resolved.options.quality, 52);
        assert_eq!(h.vary, ["Accept", "Sec-CH-DPR", "DPR", "Save-Data"]);
        let h = hinted("w=100&q=90", &[("save-data", "On; x=1")]);
        assert_eq!(h.resolved.options.quality, 59);
        let h = hinted("w=100", &[("save-data", "off")]);
        assert_eq!(h.resolved.options.quality, 80);
        let h = hinted("", &[("save-data", "on")]);
        assert!(h.resolved.options.is_identity());
        assert_eq!(h.vary, ["Sec-CH-Width", "Width"]);
    }

    #[test]
    fn off_ignores_every_hint() {
        let mut headers = HeaderMap::new();
        headers.insert("width", HeaderValue::from_static("700"));
        headers.insert("save-data", HeaderValue::from_static("on"));
        let requested = RequestedOptions::from_query([("w", "10")]).unwrap();
        let h = resolve(&requested, &headers, ClientHints::Off);
        assert_eq!(h.resolved.options.w, Some(10));
        assert_eq!(h.resolved.options.quality, 80);
        assert!(h.vary.is_empty());
    }
}
