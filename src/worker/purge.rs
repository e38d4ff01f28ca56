//! `DELETE /v1/cache?url=U&at=T`: a gateway's purge reaching this worker.
//!
//! An extension of the internal API, signed like the rest. The worker
//! records the purge (time `T`, the gateway's, in Unix ms) in its purge
//! list, so copies it cannot enumerate (variants kept only on disk) are
//! refused when read, then removes the original and every variant of `U`
//! it holds. Answers `{"removed": N}`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tracing::info;

use super::{parse_source_url, Worker};
use crate::error::ApiError;

impl Worker {
    /// Forgets every cached copy of `url` stored at or before `at`; returns
    /// how many entries were removed.
    pub async fn purge(&self, url: &str, at: SystemTime) -> usize {
        self.tiers().purges().record(url, at);
        let removed = self.tiers().remove_source(url).await;
        self.metrics.purged.inc_by(removed as u64);
        info!(url, removed, "purged");
        removed
    }
}

/// The `url` and `at` parameters of a purge.
fn parse_purge_query(query: Option<&str>) -> Result<(String, SystemTime), ApiError> {
    let mut url = None;
    let mut at = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "url" => url = Some(v.into_owned()),
            "at" => at = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    let url = parse_source_url(
        &url.ok_or_else(|| ApiError::BadRequest("missing `url` query parameter".into()))?,
    )
    .map_err(ApiError::BadRequest)?;
    let at = at.ok_or_else(|| {
        ApiError::BadRequest("missing or invalid `at` (Unix milliseconds)".into())
    })?;
    Ok((url.to_string(), UNIX_EPOCH + Duration::from_millis(at)))
}

/// Handler of `DELETE /v1/cache`.
pub async fn purge(State(worker): State<Arc<Worker>>, RawQuery(query): RawQuery) -> Response {
    match parse_purge_query(query.as_deref()) {
        Ok((url, at)) => {
            let removed = worker.purge(&url, at).await;
            Json(serde_json::json!({ "removed": removed })).into_response()
        }
        Err(e) => e.into_response(),
    }
}
