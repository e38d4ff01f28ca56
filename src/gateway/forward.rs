//! Forwarding one request to the workers that own its URL, in hash order,
//! workers this gateway ejected last ([`super::outliers`]).

use std::sync::Arc;
use std::time::Instant;

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
        .order(ranked, |m| m.name.as_str(), Instant::now());
    let call = Call::new(gw, keys, request_id, url, product);
    for (i, worker) in order.iter().enumerate() {
        match attempt(&call, worker, order.get(i + 1).copied()).await {
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
