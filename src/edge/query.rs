//! The decoded query pairs of a request, as every edge check reads them.

use axum::http::Uri;

/// The `name=value` pairs of `uri`'s query, percent-decoded (`+` is a
/// space), in order.
pub fn pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The value of the first pair named `name`.
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
