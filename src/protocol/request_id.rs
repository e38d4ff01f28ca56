//! The request id that ties a gateway's log line to the worker's.

use axum::http::{HeaderMap, HeaderValue};

use super::header::X_REQUEST_ID;

/// The id of one request, as carried in `X-Request-Id`: taken from the
/// caller's header when it is sane, else generated.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    /// The caller's id if it is short and plain (so it can be logged and
    /// forwarded without escaping), else a fresh one.
    pub fn from_headers(headers: &HeaderMap) -> RequestId {
        let id = headers
            .get(X_REQUEST_ID)
            .and_then(sane)
            .unwrap_or_else(RequestId::fresh);
        RequestId(id)
    }

    /// A random (version 4) UUID without dashes. Its bytes come from the
    /// thread's generator (seeded from the OS), not from `getrandom` on
    /// every request, which `Uuid::new_v4` calls: a system call per cached
    /// image served.
    pub fn fresh() -> String {
        let bytes: [u8; 16] = rand::random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .simple()
            .to_string()
    }
}

fn sane(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_for(value: &str) -> String {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_str(value).unwrap());
        RequestId::from_headers(&h).0
    }

    #[test]
    fn keeps_a_plain_id() {
        assert_eq!(id_for("abc-123_x.y:z"), "abc-123_x.y:z");
    }

    #[test]
    fn replaces_an_odd_or_long_id() {
        assert_ne!(id_for("a b"), "a b");
        assert_ne!(id_for(&"a".repeat(65)), "a".repeat(65));
        assert_eq!(RequestId::from_headers(&HeaderMap::new()).0.len(), 32);
    }

    #[test]
    fn fresh_ids_are_version_4_uuids_and_differ() {
        let (a, b) = (RequestId::fresh(), RequestId::fresh());
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(a, parsed.simple().to_string());
    }
}
