//! Signed image URLs (`URL_SIGNING_KEYS`).
//!
//! Without signatures anyone can make the node fetch and transcode any
//! image in any variant. With keys set, `/image` needs
//! `sig = base64url_nopad(HMAC-SHA256(key, canonical))`, where `canonical`
//! is every query parameter except `sig`: each name and value
//! percent-decoded, then encoded again with RFC 3986 unreserved characters
//! (`A-Z a-z 0-9 - . _ ~`) kept and every other byte as `%XX` (upper-case
//! hex), written `name=value`, these items sorted (byte order) and joined
//! with `&`. Re-encoding keeps the form unambiguous: a `url` containing
//! `&w=300` cannot stand for a separate `w` option. Any key verifies, so
//! keys can be rotated (see the README). Comparison is constant-time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::EdgeError;
use super::query;

type HmacSha256 = Hmac<Sha256>;

/// The query parameter that carries the signature.
pub const SIG_PARAM: &str = "sig";

/// Shortest key accepted: shorter ones can be guessed offline from one
/// signed URL.
pub const MIN_KEY_LEN: usize = 16;

/// The keys any of which verifies a signature.
#[derive(Clone)]
pub struct SigningKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({} keys)", self.0.len())
    }
}

impl SigningKeys {
    /// Keys from `URL_SIGNING_KEYS` items (empty items ignored); `None`
    /// when there are none, i.e. signing is off.
    pub fn parse(items: &[String]) -> Result<Option<SigningKeys>, String> {
        let keys: Vec<Vec<u8>> = items
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec())
            .collect();
        if let Some(short) = keys.iter().position(|k| k.len() < MIN_KEY_LEN) {
            return Err(format!(
                "URL_SIGNING_KEYS: key {} is shorter than {MIN_KEY_LEN} characters",
                short + 1
            ));
        }
        Ok((!keys.is_empty()).then_some(SigningKeys(keys)))
    }

    /// Checks the `sig` among `pairs` against the other pairs.
    pub fn verify(&self, pairs: &[(String, String)]) -> Result<(), EdgeError> {
        let sig = query::first(pairs, SIG_PARAM).ok_or(EdgeError::MissingSignature)?;
        if pairs.iter().filter(|(k, _)| k == SIG_PARAM).count() > 1 {
            return Err(EdgeError::BadSignature);
        }
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| EdgeError::BadSignature)?;
        let canonical = canonical(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let verified = self
            .0
            .iter()
            .any(|key| mac(key, &canonical).verify_slice(&tag).is_ok());
        verified.then_some(()).ok_or(EdgeError::BadSignature)
    }
}

/// RFC 3986 encoding: unreserved bytes kept, every other byte `%XX`.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical string of decoded query pairs, `sig` left out.
pub fn canonical<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut items: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| *k != SIG_PARAM)
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    items.sort();
    items.join("&")
}

fn mac(key: &[u8], canonical: &str) -> HmacSha256 {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(canonical.as_bytes());
    m
}

/// The `sig` value for `canonical` under `key`.
pub fn sign(key: &[u8], canonical: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mac(key, canonical).finalize().into_bytes())
}

/// A ready signed path: `/image?url=...&NAME=VALUE...&sig=...`, the
/// options in the order given.
pub fn signed_path(key: &[u8], url: &str, options: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("url", url)];
    pairs.extend(options.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let sig = sign(key, &canonical(pairs.iter().copied()));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        q.append_pair(k, v);
    }
    q.append_pair(SIG_PARAM, &sig);
    format!("/image?{}", q.finish())
}

/// Middleware: refuses `/image` requests without a valid signature, before
/// anything is fetched.
pub async fn require(State(keys): State<Arc<SigningKeys>>, req: Request, next: Next) -> Response {
    match keys.verify(&query::pairs(req.uri())) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::edge::query::owned;

    /// The README's worked example.
    #[test]
    fn readme_example() {
        let pairs = [
            ("url", "https://images.example.com/cats/tabby.jpg"),
            ("w", "300"),
            ("format", "webp"),
        ];
        let c = canonical(pairs);
        assert_eq!(
            c,
            "format=webp&url=https%3A%2F%2Fimages.example.com%2Fcats%2Ftabby.jpg&w=300"
        );
        assert_eq!(
            sign(b"docs-example-key-0123", &c),
            "5o6m8Zxfnp5Pj9muhgw6UFJQuQyws8o9tCydfEXxkiE"
        );
    }

    #[test]
    fn canonical_form_is_unambiguous_and_order_free() {
        let a = canonical([("url", "http://h/?a"), ("w", "300")]);
        let b = canonical([("url", "http://h/?a&w=300")]);
        assert_ne!(a, b);
        assert_eq!(
            canonical([("w", "1"), ("url", "u")]),
            canonical([("url", "u"), ("w", "1"), ("sig", "x")])
        );
        assert_eq!(encode("a b~*'é"), "a%20b~%2A%27%C3%A9");
        // Items sort as whole strings: `w2=` before `w=`.
        assert_eq!(canonical([("w", "1"), ("w2", "1")]), "w2=1&w=1");
    }

    #[test]
    fn any_key_verifies_and_tampering_fails() {
        let keys = SigningKeys::parse(&["old-key-0123456789".into(), "new-key-0123456789".into()])
            .unwrap()
            .unwrap();
        let mut pairs = owned(&[("url", "https://a.example/x.jpg"), ("w", "300")]);
        for key in ["old-key-0123456789", "new-key-0123456789"] {
            let sig = sign(
                key.as_bytes(),
                &canonical(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            );
            let mut signed = pairs.clone();
            signed.push(("sig".into(), sig));
            assert_eq!(keys.verify(&signed), Ok(()));
        }
        let sig = sign(
            b"new-key-0123456789",
            &canonical([("url", "https://a.example/x.jpg"), ("w", "300")]),
        );
        pairs.push(("w".into(), "301".into()));
        pairs.push(("sig".into(), sig.clone()));
        assert_eq!(keys.verify(&pairs), Err(EdgeError::BadSignature));
        let unsigned = owned(&[("url", "https://a.example/x.jpg")]);
        assert_eq!(keys.verify(&unsigned), Err(EdgeError::MissingSignature));
        let garbage = owned(&[("url", "u"), ("sig", "!!!")]);
        assert_eq!(keys.verify(&garbage), Err(EdgeError::BadSignature));
        let other = SigningKeys::parse(&["another-key-0123456".into()])
            .unwrap()
            .unwrap();
        let signed = owned(&[
            ("url", "https://a.example/x.jpg"),
            ("w", "300"),
            ("sig", &sig),
        ]);
        assert_eq!(other.verify(&signed), Err(EdgeError::BadSignature));
    }

    #[test]
    fn keys_are_optional_but_not_short() {
        assert!(SigningKeys::parse(&[]).unwrap().is_none());
        assert!(SigningKeys::parse(&["".into()]).unwrap().is_none());
        let err = SigningKeys::parse(&["long-enough-key-123".into(), "short".into()]).unwrap_err();
        assert!(
            err.contains("URL_SIGNING_KEYS") && err.contains("key 2"),
            "{err}"
        );
    }

    #[test]
    fn signed_path_round_trips_through_the_query_parser() {
        let key = b"docs-example-key-0123";
        let path = signed_path(
            key,
            "https://images.example.com/a b.jpg?x=1&y=2",
            &[("w".into(), "300".into()), ("format".into(), "webp".into())],
        );
        assert!(path.starts_with("/image?url=https%3A%2F%2Fimages.example.com%2Fa+b.jpg%3Fx%3D1%26y%3D2&w=300&format=webp&sig="), "{path}");
        let uri: axum::http::Uri = path.parse().unwrap();
        let keys = SigningKeys(vec![key.to_vec()]);
        assert_eq!(keys.verify(&query::pairs(&uri)), Ok(()));
    }
}
