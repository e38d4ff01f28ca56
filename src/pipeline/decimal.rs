//! The one parser of the plain decimal numbers options carry (`dpr`,
//! sigmas, focal points), shared by `options` and `gravity` (which
//! `options` depends on, so it cannot live in either).

/// A plain decimal number: digits with at most one dot, at most 8
/// characters; refuses `inf`, `nan`, `1e0` and signs.
pub(super) fn decimal(v: &str) -> Option<f64> {
    let dots = v.bytes().filter(|&b| b == b'.').count();
    let plain = !v.is_empty()
        && v.len() <= 8
        && dots <= 1
        && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.bytes().any(|b| b.is_ascii_digit());
    plain.then(|| v.parse().ok()).flatten()
}
