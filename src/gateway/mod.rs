//! Gateway: the public `GET /image` endpoint.
//!
//! A gateway validates the request, ranks the live workers for the source
//! URL (see [`crate::cluster::placement`]), and asks the owner in one round
//! trip, `POST /v1/cache` (the cached image, or fetched and cached now):
//! the internal protocol of [`crate::protocol`].
//! If the owner is slow to answer, a cache lookup is hedged to the next
//! worker ([`attempt`]); if it cannot be reached (refused, reset, timed out,
//! frozen) it is ejected for a back-off ([`outliers`]) and the gateway moves
//! on to the next worker in that URL's hash order, so a dead or frozen
//! worker costs a little latency, not failed requests. In a standalone node
//! the "cluster" is the worker in the same process, called directly.

mod attempt;
mod client_hints;
pub mod dashboard;
mod forward;
mod hedge_delay;
mod hot_cache;
mod internal;
mod merge;
mod outliers;
mod probes;
mod purge;
mod worker_client;
mod worker_urls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};

pub use client_hints::{ClientHints, ACCEPT_CH, DPR_BUCKETS, WIDTH_BUCKETS};

use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::Membership;
use crate::cluster::purges::PurgeList;
use crate::error::ApiError;
use crate::metrics::{GatewayMetrics, StatusLabel};
use crate::protocol::header::KEPT_ON_NOT_MODIFIED;
use crate::protocol::{
    parse_image_query, LocalWorker, Product, RequestId, PUBLIC_IMAGE_PATH, PUBLIC_INFO_PATH,
};
use hedge_delay::HedgeDelay;
use outliers::Outliers;
use probes::Probes;

/// Where a gateway sends work.
pub enum Backends {
    /// Standalone: the worker in this process.
    Local(Box<dyn LocalWorker>),
    /// Cluster: the live workers in gossip membership.
    Cluster {
        membership: Arc<Membership>,
        keys: ClusterKeys,
    },
}

/// A gateway's state, shared by its handlers.
pub struct Gateway {
    backends: Backends,
    client: worker_client::WorkerClient,
    metrics: GatewayMetrics,
    /// Deadline for asking a worker to fetch: the origin deadline plus room
    /// for queueing and transforming.
    fill_timeout: Duration,
    /// `ADMIN_TOKEN`: purges are refused (403) without one.
    admin_token: Option<String>,
    /// Purge records this gateway made or heard, published in gossip.
    purges: Arc<PurgeList>,
    /// `/image` requests answered, whatever the status (the dashboard's
    /// request rate).
    answered: AtomicU64,
    /// `CLIENT_HINTS`: whether hint headers fill in options.
    client_hints: ClientHints,
    /// Workers this gateway skips for a while (ejected).
    outliers: Outliers,
    /// How long to wait for a worker before hedging.
    hedge_delay: HedgeDelay,
    /// The probes in flight, one per worker.
    probes: Probes,
    /// Hedged lookups in flight (see `attempt::MAX_HEDGES_IN_FLIGHT`).
    hedges_in_flight: std::sync::atomic::AtomicUsize,
    /// Hot images kept on this gateway (`GATEWAY_CACHE_BYTES`).
    hot: hot_cache::HotCache,
    /// Each worker's parsed fill URL.
    fill_urls: worker_urls::FillUrls,
}

impl Gateway {
    /// A gateway over `backends`; `fetch_timeout` is the workers' origin deadline.
    pub fn new(
        backends: Backends,
        metrics: GatewayMetrics,
        fetch_timeout: Duration,
        admin_token: Option<String>,
        purges: Arc<PurgeList>,
        client_hints: ClientHints,
        cache_bytes: u64,
    ) -> Arc<Gateway> {
        let hot = hot_cache::HotCache::new(cache_bytes, Arc::clone(&purges), metrics.clone());
        Arc::new(Gateway {
            backends,
            client: Default::default(),
            metrics,
            fill_timeout: fetch_timeout + Duration::from_secs(30),
            admin_token,
            purges,
            answered: AtomicU64::new(0),
            client_hints,
            outliers: Outliers::default(),
            hedge_delay: HedgeDelay::default(),
            probes: Probes::default(),
            hedges_in_flight: Default::default(),
            hot,
            fill_urls: Default::default(),
        })
    }

    /// The workers this gateway can route to, for the live-workers gauge.
    pub fn live_worker_count(&self) -> usize {
        match &self.backends {
            Backends::Local(_) => 1,
            Backends::Cluster { membership, .. } => membership.live_workers().len(),
        }
    }

    /// The gateway's cache of hot images.
    pub fn hot_cache(&self) -> &hot_cache::HotCache {
        &self.hot
    }

    /// `/image` requests answered since start, whatever the status.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// The workers this gateway skips now, for the ejected-workers gauge.
    pub fn ejected_worker_count(&self) -> usize {
        self.outliers.ejected_count(Instant::now())
    }
}

/// The public routes: `GET /image` and `GET /info` (and HEAD, which axum
/// derives) behind `guard` (the edge's request checks: signature, sources,
/// presets...), and `DELETE /image` (purge), which `ADMIN_TOKEN`
/// authenticates instead, so a purge needs no URL signature.
pub fn routes(
    gateway: Arc<Gateway>,
    guard: impl Fn(MethodRouter<Arc<Gateway>>) -> MethodRouter<Arc<Gateway>>,
) -> Router {
    Router::new()
        // The guard's layers wrap only the methods routed before it.
        .route(PUBLIC_IMAGE_PATH, guard(get(image)).delete(purge::purge))
        .route(PUBLIC_INFO_PATH, guard(get(info)))
        .with_state(gateway)
}

/// `GET /info?url=U`: the image's info JSON, from the owner's cache like a
/// variant (one origin fetch for the info and every variant). Image
/// options in the query are checked as for `/image`, and otherwise unused.
async fn info(
    State(gw): State<Arc<Gateway>>,
    Extension(request_id): Extension<RequestId>,
    RawQuery(query): RawQuery,
) -> Response {
    let started = Instant::now();
    let resp = match info_answer(&gw, query.as_deref(), &request_id).await {
        Ok(r) | Err(r) => r,
    };
    gw.count(resp.status(), started);
    resp
}

async fn info_answer(
    gw: &Arc<Gateway>,
    query: Option<&str>,
    request_id: &RequestId,
) -> Result<Response, Response> {
    let (url, _) = parse_image_query(query).map_err(|e| ApiError::from(e).into_response())?;
    match &gw.backends {
        Backends::Local(worker) => worker.info(&url).await,
        Backends::Cluster { membership, keys } => {
            let workers = membership.live_workers();
            gw.metrics.live_workers.set(workers.len() as i64);
            forward::forward(gw, keys, &workers, &url, Product::Info, request_id)
                .await
                .map_err(IntoResponse::into_response)
        }
    }
}

impl Gateway {
    /// Counts an answer by status, with its duration.
    fn count(&self, status: StatusCode, started: Instant) {
        self.metrics
            .requests
            .get_or_create(&StatusLabel {
                status: status.as_u16(),
            })
            .inc();
        self.metrics
            .request_duration
            .observe(started.elapsed().as_secs_f64());
    }
}

async fn image(
    State(gw): State<Arc<Gateway>>,
    Extension(request_id): Extension<RequestId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let mut resp = match handle(&gw, query.as_deref(), &headers, &request_id).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if resp.status() == StatusCode::OK {
        resp = not_modified_if_matching(resp, &headers);
    }
    if gw.client_hints == ClientHints::On {
        resp.headers_mut()
            .insert("accept-ch", HeaderValue::from_static(ACCEPT_CH));
    }
    gw.metrics
        .requests
        .get_or_create(&StatusLabel {
            status: resp.status().as_u16(),
        })
        .inc();
    gw.metrics
        .request_duration
        .observe(started.elapsed().as_secs_f64());
    gw.answered.fetch_add(1, Ordering::Relaxed);
    resp
}

async fn handle(
    gw: &Arc<Gateway>,
    query: Option<&str>,
    headers: &HeaderMap,
    request_id: &RequestId,
) -> Result<Response, ApiError> {
    let (url, requested) = parse_image_query(query)?;
    // `format=auto` and Client Hints are settled here, so the negotiated
    // format and the hint buckets are part of the options the worker
    // caches under.
    let hinted = client_hints::resolve(&requested, headers, gw.client_hints);
    let opts = &hinted.resolved.options;
    let mut resp = match &gw.backends {
        Backends::Local(worker) => match worker.get_or_fill(&url, opts).await {
            Ok(image) => image,
            // As before the cluster was involved: no `Vary` on errors.
            Err(error_answer) => return Ok(error_answer),
        },
        Backends::Cluster { membership, keys } => {
            let forwarded = async {
                let workers = membership.live_workers();
                gw.metrics.live_workers.set(workers.len() as i64);
                forward::forward(gw, keys, &workers, &url, Product::Image(opts), request_id).await
            };
            gw.hot.through(&url, opts, forwarded).await?
        }
    };
    hinted.decorate(resp.headers_mut());
    Ok(resp)
}

/// Answers 304 when the client already holds these exact bytes.
fn not_modified_if_matching(resp: Response, req_headers: &HeaderMap) -> Response {
    let (Some(etag), Some(inm)) = (
        resp.headers().get(header::ETAG),
        req_headers.get(header::IF_NONE_MATCH),
    ) else {
        return resp;
    };
    let Ok(inm) = inm.to_str() else { return resp };
    let matches = inm
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || etag.to_str().is_ok_and(|e| e == t));
    if !matches {
        return resp;
    }
    let mut nm = StatusCode::NOT_MODIFIED.into_response();
    for name in [header::ETAG, header::CACHE_CONTROL, header::VARY] {
        if let Some(v) = resp.headers().get(&name) {
            nm.headers_mut().insert(name, v.clone());
        }
    }
    for name in KEPT_ON_NOT_MODIFIED {
        if let Some(v) = resp.headers().get(name) {
            nm.headers_mut().insert(name, v.clone());
        }
    }
    nm
}
