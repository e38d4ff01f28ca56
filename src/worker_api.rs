//! The worker's HTTP face: the internal API of [`crate::protocol`],
//! served to gateways and nobody else, and the same answers for the
//! standalone gateway's in-process calls ([`LocalWorker`]).
//!
//! Every request must carry a valid [`crate::cluster::auth`] signature,
//! checked by middleware before any handler runs: without it, a worker would
//! be an open fetcher for anyone who can reach its port.
//!
//! Besides the lookup and the fill, `DELETE /v1/cache?url=U&at=T` is the
//! purge extension (see [`crate::protocol::purge`]): `{"removed": N}`.
//!
//! It sits beside [`crate::worker`], not inside it, because it turns the
//! worker's errors into HTTP answers through [`crate::error`], which itself
//! reads the worker's error types.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use url::Url;

use crate::cluster::auth;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::replay::NonceWindow;
use crate::edge::metrics::EdgeMetrics;
use crate::error::ApiError;
use crate::pipeline::TransformOptions;
use crate::protocol::header::{CLUSTER_AUTH, X_SERVED_BY};
use crate::protocol::purge::parse_purge_query;
use crate::protocol::RequestError;
use crate::protocol::{
    image_response, parse_internal_query, Asked, CacheStatus, FillRequest, ImageAnswer,
    LocalWorker, FILL_PATH, LOOKUP_PATH,
};
use crate::worker::cache::CachedImage;
use crate::worker::Worker;

/// Largest internal request body accepted (a JSON object naming a URL).
const MAX_BODY: usize = 64 * 1024;

/// What the signature check needs: the keys, the nonces already accepted
/// (replays are refused), and the refusal counter.
struct InternalAuth {
    keys: ClusterKeys,
    seen: NonceWindow,
    metrics: EdgeMetrics,
}

/// The `/v1` routes, behind signature checking.
pub fn routes(worker: Arc<Worker>, keys: ClusterKeys, metrics: EdgeMetrics) -> Router {
    let auth = InternalAuth {
        keys,
        seen: auth::nonce_window(),
        metrics,
    };
    Router::new()
        .route(LOOKUP_PATH, get(lookup))
        .route(FILL_PATH, post(fill).delete(purge))
        .with_state(worker)
        .layer(middleware::from_fn_with_state(
            Arc::new(auth),
            require_signature,
        ))
}

async fn require_signature(
    State(internal): State<Arc<InternalAuth>>,
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
    let header = parts
        .headers
        .get(CLUSTER_AUTH)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = auth::verify(
        &internal.keys,
        parts.method.as_str(),
        path_and_query,
        &body,
        header,
        auth::unix_now(),
        &internal.seen,
    ) {
        internal.metrics.count_refusal(e.kind());
        return ApiError::Auth(e).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// `GET /v1/image`: the cached image (or info, with `info=1`) or 404.
async fn lookup(State(worker): State<Arc<Worker>>, req: Request) -> Response {
    let (url, asked) = match parse_internal_query(req.uri().query()) {
        Ok(parsed) => parsed,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let cached = match &asked {
        Asked::Image(opts) => worker.lookup(&url, opts).await,
        Asked::Info => worker.lookup_info(&url).await,
    };
    match cached {
        Some(img) => answer(&worker, &img, CacheStatus::Hit),
        None => ApiError::NotCached.into_response(),
    }
}

/// `POST /v1/cache`: the image, cached or filled now; an error answer
/// names the worker too.
async fn fill(State(worker): State<Arc<Worker>>, body: Bytes) -> Response {
    let (url, asked) = match FillRequest::parse_asked(&body) {
        Ok(parsed) => parsed,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let filled = match &asked {
        Asked::Image(opts) => get_or_fill(&worker, &url, opts).await,
        Asked::Info => get_info(&worker, &url).await,
    };
    match filled {
        Ok(resp) => resp,
        Err(mut resp) => {
            if let Ok(v) = HeaderValue::from_str(&worker.name) {
                resp.headers_mut().insert(X_SERVED_BY, v);
            }
            resp
        }
    }
}

async fn get_or_fill(
    worker: &Arc<Worker>,
    url: &Url,
    opts: &TransformOptions,
) -> Result<Response, Response> {
    match worker.get_or_fill(url, opts).await {
        Ok(filled) => Ok(answer(worker, &filled.image, filled.cache)),
        Err(e) => Err(ApiError::Worker(e).into_response()),
    }
}

async fn get_info(worker: &Arc<Worker>, url: &Url) -> Result<Response, Response> {
    match worker.get_or_fill_info(url).await {
        Ok(filled) => Ok(answer(worker, &filled.image, filled.cache)),
        Err(e) => Err(ApiError::Worker(e).into_response()),
    }
}

fn answer(worker: &Worker, img: &CachedImage, cache: CacheStatus) -> Response {
    image_response(ImageAnswer {
        body: img.body.clone(),
        content_type: img.content_type,
        etag: &img.etag,
        max_age: worker.cache().remaining_ttl(img),
        cache,
        served_by: &worker.name,
    })
}

/// Standalone: the gateway gets the same answers as over `/v1/cache`,
/// except that an error answer does not name the worker (there is only
/// one).
pub struct InProcess(pub Arc<Worker>);

/// `DELETE /v1/cache?url=U&at=T`: the purge extension of the internal API.
async fn purge(State(worker): State<Arc<Worker>>, RawQuery(query): RawQuery) -> Response {
    match parse_purge_query(query.as_deref()) {
        Ok((url, Some(at))) => {
            let removed = worker.purge(url.as_str(), at).await;
            Json(serde_json::json!({ "removed": removed })).into_response()
        }
        Ok((_, None)) => ApiError::Request(RequestError::PurgeTime).into_response(),
        Err(e) => ApiError::Request(e).into_response(),
    }
}

impl LocalWorker for InProcess {
    fn get_or_fill<'a>(
        &'a self,
        url: &'a Url,
        options: &'a TransformOptions,
    ) -> crate::protocol::FillFuture<'a> {
        Box::pin(get_or_fill(&self.0, url, options))
    }

    fn info<'a>(&'a self, url: &'a Url) -> crate::protocol::FillFuture<'a> {
        Box::pin(get_info(&self.0, url))
    }

    fn purge<'a>(&'a self, url: &'a Url, at: SystemTime) -> crate::protocol::PurgeFuture<'a> {
        Box::pin(self.0.purge(url.as_str(), at))
    }
}
