//! Forwarding one request to the workers that own its URL, in hash order,
//! workers this gateway ejected last ([`super::outliers`]).

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderValue;
use axum::response::Response;
use url::Url;

use super::attempt::{attempt, worker_failed};
use super::internal::Call;
use super::Gateway;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::Member;
use crate::cluster::placement;
use crate::error::ApiError;
use crate::metrics::WorkerLabel;
use crate::protocol::{Product, RequestId};

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
    let order = gw
        .outliers
        .order(ranked.clone(), |m| m.name.as_str(), Instant::now());
    let call = Call::new(gw, keys, request_id, url, product);
    for (i, worker) in order.iter().enumerate() {
        let passed_over = passed_over(&ranked, worker);
        let next = order.get(i + 1).copied();
        match attempt(&call, worker, next, passed_over.as_ref()).await {
            Ok(answer) => {
                gw.outliers.answered(&answer.by.name);
                gw.metrics
                    .routed
                    .get_or_create(&WorkerLabel {
                        worker: answer.by.name.clone(),
                    })
                    .inc();
                return Ok(answer.response);
            }
            Err(e) => {
                worker_failed(gw, worker, &e, request_id);
                if i + 1 < order.len() {
                    gw.metrics.failovers.inc();
                }
            }
        }
    }
    Err(ApiError::NoWorker)
}

/// The names of the workers ahead of `worker` in the URL's ranking: the
/// ones this gateway skips (ejected, or failed for this request), for
/// [`crate::protocol::header::X_UNREACHABLE_WORKERS`]. `None` for the
/// owner itself, the usual case.
fn passed_over(ranked: &[&Member], worker: &Member) -> Option<HeaderValue> {
    let ahead = ranked.iter().position(|w| std::ptr::eq(*w, worker))?;
    if ahead == 0 {
        return None;
    }
    let names: Vec<&str> = ranked[..ahead].iter().map(|w| w.name.as_str()).collect();
    HeaderValue::from_str(&names.join(",")).ok()
}
