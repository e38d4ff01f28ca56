//! The rules for a source URL, applied by gateways before routing, by
//! workers before filling and by the origin client before every hop, so all
//! three refuse the same inputs with the same words.

use url::Url;

/// Why a source URL is refused. The client's fault (400), or for a
/// redirect hop, the origin's (502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceUrlError {
    #[error("the `url` parameter is empty")]
    Empty,
    #[error("invalid url: {0}")]
    Unparsable(#[from] url::ParseError),
    #[error("unsupported url scheme {0:?}: only http and https are allowed")]
    Scheme(String),
    #[error("invalid url: it has no host")]
    NoHost,
    #[error("invalid url: credentials in urls are not allowed")]
    Credentials,
}

/// Parses a source URL as users give it and applies [`check_source_url`].
pub fn parse_source_url(raw: &str) -> Result<Url, SourceUrlError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(SourceUrlError::Empty);
    }
    let url = Url::parse(raw)?;
    check_source_url(&url)?;
    Ok(url)
}

/// Absolute, http or https, with a host and without credentials.
pub fn check_source_url(url: &Url) -> Result<(), SourceUrlError> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(SourceUrlError::Scheme(url.scheme().to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SourceUrlError::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SourceUrlError::Credentials);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https_with_a_host() {
        assert!(parse_source_url("https://example.com/cat.jpg").is_ok());
        assert!(parse_source_url(" http://example.com:8080/a?b=c ").is_ok());
    }

    #[test]
    fn refuses_everything_else_with_its_reason() {
        for (bad, want) in [
            ("", SourceUrlError::Empty),
            ("  ", SourceUrlError::Empty),
            ("ftp://example.com/x", SourceUrlError::Scheme("ftp".into())),
            ("file:///etc/passwd", SourceUrlError::Scheme("file".into())),
            (
                "javascript:alert(1)",
                SourceUrlError::Scheme("javascript".into()),
            ),
            (
                "data:image/png;base64,AA",
                SourceUrlError::Scheme("data".into()),
            ),
            ("http://user:pw@example.com/", SourceUrlError::Credentials),
            ("http://user@example.com/", SourceUrlError::Credentials),
        ] {
            assert_eq!(parse_source_url(bad), Err(want), "{bad:?}");
        }
        assert!(matches!(
            parse_source_url("cat.jpg"),
            Err(SourceUrlError::Unparsable(_))
        ));
    }
}
