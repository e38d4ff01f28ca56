//! The purge requests: `DELETE /image?url=U` (public, with `ADMIN_TOKEN`)
//! and its internal form `DELETE /v1/cache?url=U&at=T` (gateway to worker,
//! signed), where `T` is the purge time in Unix milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

use super::request::RequestError;
use super::source_url::parse_source_url;

/// Parses `url` and, when present, `at` from a purge's query string.
pub fn parse_purge_query(query: Option<&str>) -> Result<(Url, Option<SystemTime>), RequestError> {
    let mut url = None;
    let mut at = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "url" if url.is_some() => return Err(RequestError::RepeatedUrl),
            "url" => url = Some(v.into_owned()),
            "at" => {
                let ms = v.parse::<u64>().map_err(|_| RequestError::PurgeTime)?;
                at = Some(UNIX_EPOCH + Duration::from_millis(ms));
            }
            _ => {}
        }
    }
    let url = parse_source_url(&url.ok_or(RequestError::MissingUrl)?)?;
    Ok((url, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_queries() {
        let (url, at) =
            parse_purge_query(Some("url=https%3A%2F%2Fa.example%2Fx.png&at=1500")).unwrap();
        assert_eq!(url.as_str(), "https://a.example/x.png");
        assert_eq!(at, Some(UNIX_EPOCH + Duration::from_millis(1500)));
        assert!(parse_purge_query(Some("url=https://a.example/x.png"))
            .unwrap()
            .1
            .is_none());
        assert!(parse_purge_query(Some("at=5")).is_err());
        assert!(parse_purge_query(Some("url=https://a.example/&at=soon")).is_err());
        assert!(parse_purge_query(Some("url=ftp://a.example/")).is_err());
    }
}
