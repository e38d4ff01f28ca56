//! What a gateway asks a worker: the image query (shared with the public
//! `GET /image`) and the fill request body.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::source_url::{parse_source_url, SourceUrlError};
use crate::pipeline::{OptionError, RequestedOptions, TransformOptions};

/// Why an image request is malformed: always the caller's fault (400).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("missing `url` query parameter")]
    MissingUrl,
    #[error("`url` given more than once")]
    RepeatedUrl,
    #[error(transparent)]
    SourceUrl(#[from] SourceUrlError),
    /// An image option is invalid; the message names the option.
    #[error(transparent)]
    Option(#[from] OptionError),
    #[error("invalid request body: {0}")]
    Body(#[from] serde_json::Error),
    #[error("missing or invalid `at` (the purge time in Unix milliseconds)")]
    PurgeTime,
}

/// Parses `url` and the image options from a query string, with the same
/// rules for user requests (gateway) and internal ones (worker).
pub fn parse_image_query(query: Option<&str>) -> Result<(Url, RequestedOptions), RequestError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut urls = pairs.iter().filter(|(k, _)| k == "url");
    let raw = urls.next().ok_or(RequestError::MissingUrl)?;
    if urls.next().is_some() {
        return Err(RequestError::RepeatedUrl);
    }
    let url = parse_source_url(&raw.1)?;
    let requested =
        RequestedOptions::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok((url, requested))
}

/// The internal marker of an info request (`GET /info`): `info=1` in the
/// lookup's query, `"info": "1"` in the fill body.
pub const INFO_PARAM: &str = "info";

/// What a gateway asks a worker for about a URL: an image (the original or
/// a variant) or the URL's info.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Product<'a> {
    Image(&'a TransformOptions),
    Info,
}

impl Product<'_> {
    /// The lookup's query pairs besides `url`.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        match self {
            Product::Image(opts) => opts.to_query(),
            Product::Info => vec![(INFO_PARAM, "1".to_string())],
        }
    }

    /// The fill request for `url`.
    pub fn fill_request(&self, url: &Url) -> FillRequest {
        let mut req = FillRequest::new(url, &TransformOptions::default());
        req.options = self
            .query()
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect();
        req
    }
}

/// [`Product`] as a worker reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    Image(TransformOptions),
    Info,
}

/// A worker's reading of a lookup query: the URL and what is asked.
pub fn parse_internal_query(query: Option<&str>) -> Result<(Url, Asked), RequestError> {
    let (url, requested) = parse_image_query(query)?;
    let info =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| k == INFO_PARAM);
    Ok(match info {
        true => (url, Asked::Info),
        false => (url, Asked::Image(requested.resolve(None).options)),
    })
}

/// The body of `POST /v1/cache`: the URL and, as further fields, the
/// image options under their query names (`w`, `h`, `fit`, `q`, `format`).
#[derive(Debug, Deserialize, Serialize)]
pub struct FillRequest {
    /// The source URL to fetch and cache.
    pub url: String,
    /// Image options; absent means the original bytes.
    #[serde(flatten)]
    pub options: BTreeMap<String, serde_json::Value>,
}

impl FillRequest {
    /// The request for `url` transformed by `opts`.
    pub fn new(url: &Url, opts: &TransformOptions) -> FillRequest {
        FillRequest {
            url: url.to_string(),
            options: opts
                .to_query()
                .into_iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                .collect(),
        }
    }

    /// Reads a request body and validates the URL and options exactly as a
    /// query string would be.
    pub fn parse(body: &[u8]) -> Result<(Url, TransformOptions), RequestError> {
        let req: FillRequest = serde_json::from_slice(body)?;
        let url = parse_source_url(&req.url)?;
        let values: Vec<(&str, String)> = req
            .options
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k.as_str(), s.clone()),
                other => (k.as_str(), other.to_string()),
            })
            .collect();
        let requested = RequestedOptions::from_query(values.iter().map(|(k, v)| (*k, v.as_str())))?;
        Ok((url, requested.resolve(None).options))
    }

    /// Reads a request body for an image or, with [`INFO_PARAM`], an info.
    pub fn parse_asked(body: &[u8]) -> Result<(Url, Asked), RequestError> {
        let (url, opts) = FillRequest::parse(body)?;
        let req: FillRequest = serde_json::from_slice(body)?;
        Ok(match req.options.contains_key(INFO_PARAM) {
            true => (url, Asked::Info),
            false => (url, Asked::Image(opts)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_request_round_trips_url_and_options() {
        let (url, requested) = parse_image_query(Some(
            "url=http://x/a.jpg&w=100&format=png&blur=2.5&sharpen=0.5",
        ))
        .unwrap();
        let opts = requested.resolve(None).options;
        let body = serde_json::to_vec(&FillRequest::new(&url, &opts)).unwrap();
        let (back_url, back_opts) = FillRequest::parse(&body).unwrap();
        assert_eq!(opts.blur.map(|s| s.to_string()).as_deref(), Some("2.5"));
        assert_eq!((back_url, back_opts), (url, opts));
    }

    #[test]
    fn an_info_request_round_trips_as_query_and_body() {
        let url = Url::parse("http://x/a.jpg").unwrap();
        let body = serde_json::to_vec(&Product::Info.fill_request(&url)).unwrap();
        assert_eq!(
            FillRequest::parse_asked(&body).unwrap(),
            (url.clone(), Asked::Info)
        );
        let opts = TransformOptions::default();
        let body = serde_json::to_vec(&Product::Image(&opts).fill_request(&url)).unwrap();
        let image = (url.clone(), Asked::Image(opts));
        assert_eq!(FillRequest::parse_asked(&body).unwrap(), image);
        let q = format!("url={}&info=1", url);
        assert_eq!(parse_internal_query(Some(&q)).unwrap(), (url, Asked::Info));
    }

    #[test]
    fn query_without_or_with_two_urls_is_refused() {
        assert!(matches!(
            parse_image_query(Some("w=1")),
            Err(RequestError::MissingUrl)
        ));
        assert!(matches!(
            parse_image_query(Some("url=http://a/&url=http://b/")),
            Err(RequestError::RepeatedUrl)
        ));
    }

    #[test]
    fn body_that_is_not_json_is_refused() {
        assert!(matches!(
            FillRequest::parse(b"{"),
            Err(RequestError::Body(_))
        ));
    }
}
