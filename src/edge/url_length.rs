//! A bounded `url` parameter: 414 beyond [`MAX_URL_BYTES`].
//!
//! No image host needs longer URLs, and a bound keeps cache keys, log
//! lines and signed strings small.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::EdgeError;
use super::query;

/// Longest `url` accepted, in bytes after percent-decoding.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Middleware: refuses a `url` longer than [`MAX_URL_BYTES`] with 414.
pub async fn limit(req: Request, next: Next) -> Response {
    let pairs = query::pairs(req.uri());
    let longest = pairs
        .iter()
        .filter(|(k, _)| k == "url")
        .map(|(_, v)| v.len())
        .max();
    if let Some(len) = longest.filter(|&len| len > MAX_URL_BYTES) {
        return EdgeError::UrlTooLong {
            len,
            max: MAX_URL_BYTES,
        }
        .into_response();
    }
    next.run(req).await
}
