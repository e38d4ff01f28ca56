//! `ALLOWED_SOURCES`: the origin hosts a node will fetch from.
//!
//! Patterns are exact hosts (`images.example.com`) or a leading `*.` for
//! any subdomain (`*.cdn.example.com` matches `a.cdn.example.com` and
//! `a.b.cdn.example.com`, not `cdn.example.com` itself: list both to allow
//! both). Matching is on the host as the URL parser normalises it (lower
//! case, IDNA, percent-decoded, one trailing dot dropped), never on the
//! text, so `https://images.example.com@evil.com/`,
//! `https://images.example.com.evil.com/` and `%2e` tricks cannot pass
//! for an allowed host, and `IMAGES.example.com.` still does.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

use super::error::EdgeError;
use super::query;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Subdomains(String),
}

/// The parsed `ALLOWED_SOURCES` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSources(Vec<Pattern>);

/// The host of `url` as it will be dialled: normalised, without the
/// trailing dot of a fully qualified name.
fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(host.strip_suffix('.').unwrap_or(host).to_string())
}

/// Normalises one host written in a pattern exactly as a URL's host is.
fn normalise(host: &str) -> Option<String> {
    if host.is_empty() || host.contains(['/', '@', ':', '?', '#', '*']) {
        return None;
    }
    let url = Url::parse(&format!("http://{host}/")).ok()?;
    host_of(&url).filter(|h| !h.is_empty())
}

impl AllowedSources {
    /// Patterns from `ALLOWED_SOURCES` items (empty ones ignored); `None`
    /// when there are none, i.e. every public host is allowed.
    pub fn parse(items: &[String]) -> Result<Option<AllowedSources>, String> {
        let mut patterns = Vec::new();
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let pattern = match item.strip_prefix("*.") {
                Some(suffix) => normalise(suffix).map(Pattern::Subdomains),
                None => normalise(item).map(Pattern::Exact),
            };
            patterns.push(pattern.ok_or_else(|| {
                format!("ALLOWED_SOURCES: {item:?} is not a host or *.domain pattern")
            })?);
        }
        Ok((!patterns.is_empty()).then_some(AllowedSources(patterns)))
    }

    /// Whether `url`'s host matches a pattern.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = host_of(url) else {
            return false;
        };
        self.0.iter().any(|p| match p {
            Pattern::Exact(h) => host == *h,
            Pattern::Subdomains(s) => host
                .strip_suffix(s.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        })
    }
}

/// Middleware: refuses `/image` requests for other hosts (403). A `url`
/// that does not parse is left for the handler to refuse with its 400.
pub async fn require(
    State(allowed): State<Arc<AllowedSources>>,
    req: Request,
    next: Next,
) -> Response {
    let pairs = query::pairs(req.uri());
    if let Some(Ok(url)) = query::first(&pairs, "url").map(|u| Url::parse(u.trim())) {
        if !allowed.allows(&url) {
            let host = url.host_str().unwrap_or("").to_string();
            return EdgeError::SourceNotAllowed(host).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedSources {
        AllowedSources::parse(&["images.example.com".into(), "*.cdn.example.com".into()])
            .unwrap()
            .unwrap()
    }

    fn allows(url: &str) -> bool {
        allowed().allows(&Url::parse(url).unwrap())
    }

    #[test]
    fn exact_and_subdomain_patterns_match_normalised_hosts() {
        for ok in [
            "https://images.example.com/a.jpg",
            "https://IMAGES.Example.COM/a.jpg",
            "https://images.example.com./a.jpg",
            "https://images.example.com:8443/a.jpg",
            "https://images%2Eexample.com/a.jpg",
            "https://%69mages.example.com/a.jpg",
            "https://a.cdn.example.com/x",
            "https://a.b.cdn.example.com/x",
            "https://A.CDN.example.com./x",
        ] {
            assert!(allows(ok), "{ok} refused");
        }
    }

    #[test]
    fn look_alike_hosts_do_not_match() {
        for bad in [
            "https://images.example.com@evil.com/a.jpg",
            "https://images.example.com.evil.com/a.jpg",
            "https://evil.com/images.example.com/a.jpg",
            "https://evil.com/?u=images.example.com",
            "https://evilimages.example.com/a.jpg",
            "https://images.example.co/a.jpg",
            "https://cdn.example.com/x",
            "https://xcdn.example.com/x",
            "https://a.cdn.example.com.evil.com/x",
            "https://images.example.com%40evil.com/a.jpg",
            "https://evil.com%23.images.example.com/a.jpg",
            "https://93.184.216.34/a.jpg",
        ] {
            let parsed = Url::parse(bad);
            assert!(
                parsed.map_or(true, |u| !allowed().allows(&u)),
                "{bad} allowed"
            );
        }
    }

    #[test]
    fn patterns_are_validated() {
        assert_eq!(AllowedSources::parse(&["".into()]), Ok(None));
        for bad in ["*.", "http://x.com", "a.com/b", "*", "a*.com", "user@a.com"] {
            let err = AllowedSources::parse(&[bad.into()]).unwrap_err();
            assert!(err.starts_with("ALLOWED_SOURCES"), "{err}");
        }
        let ip = AllowedSources::parse(&["127.0.0.2".into()])
            .unwrap()
            .unwrap();
        assert!(ip.allows(&Url::parse("http://127.0.0.2:8080/a").unwrap()));
        assert!(!ip.allows(&Url::parse("http://127.0.0.3/a").unwrap()));
    }
}
