//! Forwarding one request to the workers that own its URL, in hash order.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use reqwest::Method;
use tracing::warn;
use url::Url;

use super::Gateway;
use crate::cluster::auth;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::Member;
use crate::cluster::placement;
use crate::error::ApiError;
use crate::error_chain::one_line;
use crate::metrics::WorkerLabel;
use crate::protocol::header::{CLUSTER_AUTH, RELAYED, X_REQUEST_ID};
use crate::protocol::{Product, RequestId, FILL_PATH, LOOKUP_PATH};

/// Deadline for the cache lookup: it never touches an origin.
pub(super) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a worker did not answer; the gateway then tries the next one.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreachable {
    /// Refused, reset, timed out...: the message names the cause, not
    /// only reqwest's "error sending request".
    #[error("{}", one_line(.0))]
    Transport(#[from] reqwest::Error),
    #[error("worker refused our credentials")]
    Unauthorized,
    #[error("worker address {0} does not form a URL")]
    BadAddress(String),
}

/// Asks the ranked workers for `url` until one answers.
pub(super) async fn forward(
    gw: &Arc<Gateway>,
    keys: &ClusterKeys,
    workers: &[Member],
    url: &Url,
    product: Product<'_>,
    request_id: &RequestId,
) -> Result<Response, ApiError> {
    let ranked = placement::rank(url.as_str(), workers, |m| m.name.as_str());
    for (i, worker) in ranked.iter().enumerate() {
        match ask(gw, keys, worker, url, product, request_id).await {
            Ok(resp) => {
                gw.metrics
                    .routed
                    .get_or_create(&WorkerLabel {
                        worker: worker.name.clone(),
                    })
                    .inc();
                return Ok(resp);
            }
            Err(e) => {
                warn!(request_id = %request_id.0, worker = %worker.name, error = %e, "worker unreachable");
                if i + 1 < ranked.len() {
                    gw.metrics.failovers.inc();
                }
            }
        }
    }
    Err(ApiError::NoWorker)
}

/// One worker: lookup, then fill on a miss.
async fn ask(
    gw: &Gateway,
    keys: &ClusterKeys,
    worker: &Member,
    url: &Url,
    product: Product<'_>,
    request_id: &RequestId,
) -> Result<Response, Unreachable> {
    let base = format!("http://{}", worker.http_addr);
    let endpoint = |path: &str| {
        Url::parse(&format!("{base}{path}")).map_err(|_| Unreachable::BadAddress(base.clone()))
    };
    let mut lookup = endpoint(LOOKUP_PATH)?;
    {
        let mut q = lookup.query_pairs_mut();
        q.append_pair("url", url.as_str());
        for (k, v) in product.query() {
            q.append_pair(k, &v);
        }
    }
    let resp = send(
        gw,
        keys,
        Method::GET,
        lookup,
        Bytes::new(),
        request_id,
        LOOKUP_TIMEOUT,
    )
    .await?;
    if resp.status() != reqwest::StatusCode::NOT_FOUND {
        return relay(resp).await;
    }
    let fill = endpoint(FILL_PATH)?;
    let body = serde_json::to_vec(&product.fill_request(url)).unwrap_or_default();
    let resp = send(
        gw,
        keys,
        Method::POST,
        fill,
        Bytes::from(body),
        request_id,
        gw.fill_timeout,
    )
    .await?;
    relay(resp).await
}

pub(super) async fn send(
    gw: &Gateway,
    keys: &ClusterKeys,
    method: Method,
    url: Url,
    body: Bytes,
    request_id: &RequestId,
    timeout: Duration,
) -> Result<reqwest::Response, Unreachable> {
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{}", url.path(), q),
        None => url.path().to_string(),
    };
    let signature = auth::sign(
        keys,
        method.as_str(),
        &path_and_query,
        &body,
        auth::unix_now(),
    );
    let mut req = gw
        .client
        .request(method, url)
        .timeout(timeout)
        .header(CLUSTER_AUTH, signature)
        .header(X_REQUEST_ID, &request_id.0);
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().await?;
    if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
        return Err(Unreachable::Unauthorized);
    }
    Ok(resp)
}

/// Turns a worker's answer into ours, reading the whole body first so that
/// a worker dying mid-answer is a failover, not a truncated image.
async fn relay(resp: reqwest::Response) -> Result<Response, Unreachable> {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = resp.headers().clone();
    let body = resp.bytes().await?;
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for name in RELAYED {
        if let Some(v) = headers.get(name) {
            out.headers_mut()
                .insert(HeaderName::from_static(name), v.clone());
        }
    }
    Ok(out)
}
