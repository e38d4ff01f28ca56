//! The worker's HTTP face: the internal API of [`crate::protocol`],
//! served to gateways and nobody else, and the same answers for the
//! standalone gateway's in-process calls ([`LocalWorker`]).
//!
//! Every request must carry a valid [`crate::cluster::auth`] signature,
//! checked by middleware before any handler runs: without it, a worker would
//! be an open fetcher for anyone who can reach its port.
//!
//! Besides the lookup and the fill, `DELETE /v1/cache?url=U&at=T` is the
//! purge extension (see [`crate::protocol::purge`]): `{"removed": N}`, and
//! `GET /v1/stats` the dashboard's (cache entries, bytes, hits, misses).
//! `PUT /v1/cache?url=U&<options>` with the bytes as body and
//! `x-stored-at` is the hand-off extension (a leaving worker's entry,
//! see [`crate::worker::handoff`]): `{"stored": bool}`. Lookup answers carry
//! `x-stored-at` too, for peer fills (see [`crate::worker::peer_fill`]).
//!
//! It sits beside [`crate::worker`], not inside it, because it turns the
//! worker's errors into HTTP answers through [`crate::error`], which itself
//! reads the worker's error types.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Semaphore;
use url::Url;

use crate::cluster::auth;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::replay::NonceWindow;
use crate::edge::metrics::EdgeMetrics;
use crate::error::ApiError;
use crate::pipeline::TransformOptions;
use crate::protocol::header::{CLUSTER_AUTH, X_SERVED_BY, X_STORED_AT, X_UNREACHABLE_WORKERS};
use crate::protocol::purge::parse_purge_query;
use crate::protocol::RequestError;
use crate::protocol::{
    image_response, parse_image_query, parse_internal_query, Asked, CacheStatus, FillRequest,
    ImageAnswer, LocalWorker, FILL_PATH, LOOKUP_PATH, MAX_HANDOFF_BYTES, STATS_PATH,
};
use crate::worker::cache::CachedImage;
use crate::worker::handoff::Received;
use crate::worker::peers::{parse_unix_ms, unix_ms, PeerCopy};
use crate::worker::Worker;

/// Largest internal request body accepted (a JSON object naming a URL),
/// except for hand-offs.
const MAX_BODY: usize = 64 * 1024;
/// Hand-off bodies (up to [`MAX_HANDOFF_BYTES`]) read at once: they are
/// read before their signature can be checked, so this bounds the memory
/// unauthenticated senders could hold.
const LARGE_BODIES: usize = 4;
/// How long a hand-off waits for one of those reads.
const LARGE_BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the signature check needs: the keys, the nonces already accepted
/// (replays are refused), and the refusal counter.
struct InternalAuth {
    keys: ClusterKeys,
    seen: NonceWindow,
    metrics: EdgeMetrics,
    large_bodies: Semaphore,
}

/// The `/v1` routes, behind signature checking.
pub fn routes(worker: Arc<Worker>, keys: ClusterKeys, metrics: EdgeMetrics) -> Router {
    let auth = InternalAuth {
        keys,
        seen: auth::nonce_window(),
        metrics,
        large_bodies: Semaphore::new(LARGE_BODIES),
    };
    Router::new()
        .route(LOOKUP_PATH, get(lookup))
        .route(FILL_PATH, post(fill).delete(purge).put(receive))
        .route(STATS_PATH, get(stats))
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
    let is_handoff = parts.method == axum::http::Method::PUT;
    let _permit = match is_handoff {
        true => {
            match tokio::time::timeout(LARGE_BODY_WAIT, internal.large_bodies.acquire()).await {
                Ok(Ok(permit)) => Some(permit),
                _ => {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many hand-offs at once\n",
                    )
                        .into_response()
                }
            }
        }
        false => None,
    };
    let limit = if is_handoff {
        MAX_HANDOFF_BYTES
    } else {
        MAX_BODY
    };
    let body = match axum::body::to_bytes(body, limit).await {
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
        Some(found) => {
            let mut resp = answer(&worker, &found.image, found.cache);
            resp.headers_mut().insert(
                X_STORED_AT,
                HeaderValue::from(unix_ms(found.image.stored_at)),
            );
            resp
        }
        None => ApiError::NotCached.into_response(),
    }
}

/// `PUT /v1/cache?url=U&<options>`: an entry handed off by a leaving
/// worker, its bytes as the body, its time of storage in `x-stored-at`.
async fn receive(State(worker): State<Arc<Worker>>, req: Request) -> Response {
    let (url, opts) = match parse_image_query(req.uri().query()) {
        Ok((url, requested)) => (url, requested.resolve(None).options),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let stored_at = req
        .headers()
        .get(X_STORED_AT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_unix_ms);
    let Some(stored_at) = stored_at else {
        let msg = "missing or invalid x-stored-at (Unix milliseconds)\n";
        return (StatusCode::BAD_REQUEST, msg).into_response();
    };
    // The signature check has read the whole body already, within its limit.
    let body = match axum::body::to_bytes(req.into_body(), MAX_HANDOFF_BYTES).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "entry too large\n").into_response(),
    };
    if crate::pipeline::sniff::sniff(&body).is_none() {
        let msg = "the body is not a supported image\n";
        return (StatusCode::UNPROCESSABLE_ENTITY, msg).into_response();
    }
    let copy = PeerCopy { body, stored_at };
    let stored = worker.receive(&url, &opts, copy).await == Received::Stored;
    Json(serde_json::json!({ "stored": stored })).into_response()
}

/// `POST /v1/cache`: the image, cached or filled now; an error answer
/// names the worker too.
async fn fill(State(worker): State<Arc<Worker>>, headers: HeaderMap, body: Bytes) -> Response {
    let (url, asked) = match FillRequest::parse_asked(&body) {
        Ok(parsed) => parsed,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(names) = headers
        .get(X_UNREACHABLE_WORKERS)
        .and_then(|v| v.to_str().ok())
    {
        worker.peers_unreachable(names.split(',').map(str::trim).filter(|n| !n.is_empty()));
    }
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

/// `GET /v1/stats`: the cache figures, for the gateways' dashboard.
async fn stats(State(worker): State<Arc<Worker>>) -> Json<crate::protocol::WorkerStats> {
    Json(worker.stats().await)
}

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

    fn stats(&self) -> crate::protocol::StatsFuture<'_> {
        Box::pin(self.0.stats())
    }
}
