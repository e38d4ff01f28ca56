//! The internal API a worker serves to gateways, and nobody else.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/image?url=U` | 200 with the cached image, or 404 when not cached |
//! | `POST /v1/cache` `{"url": U}` | fetches, caches and returns the image, or the error |
//!
//! Every request must carry a valid [`crate::cluster::auth`] signature,
//! checked by middleware before any handler runs: without it, a worker would
//! be an open fetcher for anyone who can reach its port.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use url::Url;

use super::cache::CachedImage;
use super::{parse_source_url, Worker};
use crate::cluster::auth::{self, AUTH_HEADER};
use crate::cluster::keys::ClusterKeys;
use crate::error::ApiError;
use crate::pipeline::{RequestedOptions, TransformOptions};

/// Largest internal request body accepted (a JSON object naming a URL).
const MAX_BODY: usize = 64 * 1024;

/// The body of `POST /v1/cache`: the URL and, as further fields, the
/// image options under their query names (`w`, `h`, `fit`, `q`, `format`).
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct CacheRequest {
    /// The source URL to fetch and cache.
    pub url: String,
    /// Image options; absent means the original bytes.
    #[serde(flatten)]
    pub options: BTreeMap<String, serde_json::Value>,
}

impl CacheRequest {
    /// The request for `url` transformed by `opts`.
    pub fn new(url: &Url, opts: &TransformOptions) -> CacheRequest {
        CacheRequest {
            url: url.to_string(),
            options: opts
                .to_query()
                .into_iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                .collect(),
        }
    }

    /// Validates the URL and options exactly as a query string would be.
    fn parse(&self) -> Result<(Url, TransformOptions), ApiError> {
        let url = parse_source_url(&self.url).map_err(ApiError::BadRequest)?;
        let values: Vec<(&str, String)> = self
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
}

/// Parses `url` and the image options from a query string, with the same
/// rules for user requests (gateway) and internal ones (worker).
pub fn parse_image_query(query: Option<&str>) -> Result<(Url, RequestedOptions), ApiError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut urls = pairs.iter().filter(|(k, _)| k == "url");
    let raw = urls
        .next()
        .ok_or_else(|| ApiError::BadRequest("missing `url` query parameter".into()))?;
    if urls.next().is_some() {
        return Err(ApiError::BadRequest("`url` given more than once".into()));
    }
    let url = parse_source_url(&raw.1).map_err(ApiError::BadRequest)?;
    let requested =
        RequestedOptions::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok((url, requested))
}

/// The `/v1` routes, behind signature checking.
pub fn routes(worker: Arc<Worker>, keys: ClusterKeys) -> Router {
    Router::new()
        .route("/v1/image", get(lookup))
        .route("/v1/cache", post(cache))
        .with_state(worker)
        .layer(middleware::from_fn_with_state(
            Arc::new(keys),
            require_signature,
        ))
}

async fn require_signature(
    State(keys): State<Arc<ClusterKeys>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let header = parts.headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok());
    if let Err(e) = auth::verify(
        &keys,
        parts.method.as_str(),
        path_and_query,
        &body,
        header,
        auth::unix_now(),
    ) {
        return ApiError::Auth(e).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

async fn lookup(State(worker): State<Arc<Worker>>, req: Request) -> Response {
    let (url, opts) = match parse_image_query(req.uri().query()) {
        Ok((url, requested)) => (url, requested.resolve(None).options),
        Err(e) => return e.into_response(),
    };
    match worker.lookup(&url, &opts).await {
        Some(img) => image_response(&img, true, &worker.name, worker.cache().remaining_ttl(&img)),
        None => ApiError::NotCached.into_response(),
    }
}

async fn cache(State(worker): State<Arc<Worker>>, body: axum::body::Bytes) -> Response {
    let req: CacheRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::BadRequest(format!("invalid request body: {e}")).into_response()
        }
    };
    let (url, opts) = match req.parse() {
        Ok(parsed) => parsed,
        Err(e) => return e.into_response(),
    };
    match worker.fetch(&url, &opts).await {
        Ok((img, hit)) => {
            image_response(&img, hit, &worker.name, worker.cache().remaining_ttl(&img))
        }
        Err(e) => {
            let mut resp = ApiError::Worker(e).into_response();
            if let Ok(v) = HeaderValue::from_str(&worker.name) {
                resp.headers_mut().insert("x-served-by", v);
            }
            resp
        }
    }
}

/// An image answer with the headers every image answer carries: type,
/// length, ETag, `Cache-Control` with the remaining TTL, `X-Cache` and
/// `X-Served-By`. Shared by the internal API and the standalone gateway, so
/// both answer alike.
pub fn image_response(
    img: &CachedImage,
    hit: bool,
    served_by: &str,
    remaining: Duration,
) -> Response {
    let mut resp = Response::new(Body::from(img.body.clone()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(img.content_type),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(img.body.len()));
    if let Ok(v) = HeaderValue::from_str(&img.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", remaining.as_secs())) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        "x-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    if let Ok(v) = HeaderValue::from_str(served_by) {
        h.insert("x-served-by", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}
