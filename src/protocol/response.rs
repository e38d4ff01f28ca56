//! Building an image answer, the same for the internal API and the
//! standalone gateway.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

use super::header::{X_CACHE, X_CONTENT_TYPE_OPTIONS, X_SERVED_BY};

/// Whether an answer came from the cache; sent as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// From the cache, expired but within `STALE_TTL`: being revalidated,
    /// or its origin is down.
    Stale,
}

impl CacheStatus {
    /// The `X-Cache` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
        }
    }
}

/// What an image answer says.
pub struct ImageAnswer<'a> {
    pub body: Bytes,
    pub content_type: &'static str,
    /// Quoted strong ETag.
    pub etag: &'a str,
    /// How long the answer may be reused: the entry's remaining TTL.
    pub max_age: Duration,
    pub cache: CacheStatus,
    /// The worker's name, for `X-Served-By`.
    pub served_by: &'a str,
}

/// An image answer with the headers every image answer carries: type,
/// length, ETag, `Cache-Control` with the remaining TTL, `X-Cache`,
/// `X-Served-By` and `X-Content-Type-Options`.
pub fn image_response(answer: ImageAnswer<'_>) -> Response {
    let len = answer.body.len();
    let mut resp = Response::new(Body::from(answer.body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(answer.etag) {
        h.insert(header::ETAG, v);
    }
    let cache_control = format!("public, max-age={}", answer.max_age.as_secs());
    if let Ok(v) = HeaderValue::from_str(&cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(X_CACHE, HeaderValue::from_static(answer.cache.as_str()));
    if let Ok(v) = HeaderValue::from_str(answer.served_by) {
        h.insert(X_SERVED_BY, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::RELAYED;

    #[test]
    fn every_header_of_an_image_answer_is_relayed_by_gateways() {
        let resp = image_response(ImageAnswer {
            body: Bytes::from_static(b"x"),
            content_type: "image/png",
            etag: "\"e\"",
            max_age: Duration::from_secs(5),
            cache: CacheStatus::Hit,
            served_by: "w1",
        });
        for name in resp.headers().keys() {
            assert!(RELAYED.contains(&name.as_str()), "{name} not relayed");
        }
        assert_eq!(resp.headers()[X_CACHE], "HIT");
    }
}
