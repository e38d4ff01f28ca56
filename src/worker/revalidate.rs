//! Stale-while-revalidate: an expired entry still in its stale window
//! (`STALE_TTL`) is answered at once, marked `X-Cache: STALE`, and its
//! original is revalidated in the background, once per URL however many
//! requests meet it meanwhile.
//!
//! The revalidation is a conditional request (`If-None-Match` /
//! `If-Modified-Since` from the origin's stored `ETag` / `Last-Modified`),
//! through the same client, address guard, redirect limit, deadline and
//! fetch slots as a fill. A 304, or a full answer with the same bytes,
//! renews the original and its variants without re-encoding anything;
//! changed bytes replace the original and drop its variants, which are
//! made again on demand; a 404 or 410 drops every copy (counted as
//! `changed`); a failure (origin down, 5xx, timeout) leaves the
//! stale entry to be served until its stale window runs out, after which
//! requests get the fill's usual error.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::{info, warn};
use url::Url;

use super::fetch::{Conditional, FetchError};
use super::revalidations::Release;
use super::{Worker, WorkerError};
use crate::metrics::RevalidationLabel;

/// What a revalidation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 304, or the same bytes again: renewed.
    NotModified,
    /// New bytes: the original replaced, its variants dropped.
    Changed,
}

impl Outcome {
    /// The `result` label of `img_proxy_cache_revalidations_total`.
    fn label(self) -> &'static str {
        match self {
            Outcome::NotModified => "304",
            Outcome::Changed => "changed",
        }
    }
}

impl Worker {
    /// Counts a stale answer for `url` and starts its revalidation.
    pub(super) fn served_stale(self: &Arc<Self>, url: &Url) {
        self.metrics.stale_answers.inc();
        self.revalidate_in_background(url);
    }

    /// Starts the revalidation of `url`'s original in the background,
    /// unless one is running already.
    pub(super) fn revalidate_in_background(self: &Arc<Self>, url: &Url) {
        if !self.revalidations.start(url.as_str()) {
            return;
        }
        let this = Arc::clone(self);
        let url = url.clone();
        // Its own task: it completes even if every request goes away.
        tokio::spawn(async move {
            let result = {
                let _release = Release {
                    set: &this.revalidations,
                    url: url.as_str(),
                };
                this.revalidate(&url).await
            };
            let label = match &result {
                Ok(outcome) => {
                    info!(url = %url, result = outcome.label(), "revalidated");
                    outcome.label()
                }
                Err(e) => {
                    warn!(url = %url, error = %e, "revalidation failed; serving stale copies meanwhile");
                    "failed"
                }
            };
            this.metrics
                .revalidations
                .get_or_create(&RevalidationLabel {
                    result: label.to_string(),
                })
                .inc();
        });
    }

    /// The origin says the image is gone (404, 410): every copy of it held
    /// here is dropped, as by a purge (local only), so requests get the
    /// origin's 404 instead of an image it no longer serves.
    async fn drop_gone(&self, url: &Url) {
        self.tiers.purges().record(url.as_str(), SystemTime::now());
        let removed = self.tiers.remove_source(url.as_str()).await;
        info!(url = %url, removed, "origin no longer has the image; dropped");
    }

    /// Asks the origin whether the original of `url` changed, and renews
    /// or replaces what the tiers hold accordingly.
    async fn revalidate(&self, url: &Url) -> Result<Outcome, WorkerError> {
        let held = self
            .tiers
            .lookup(url.as_str(), url.as_str())
            .await
            .map(|found| found.image);
        let known = held
            .as_ref()
            .map(|h| h.validators.clone())
            .unwrap_or_default();
        let host = url.host_str().unwrap_or("");
        let _slot = self
            .fetch_slots
            .try_acquire(host)
            .inspect_err(|_| self.count_error("busy"))?;
        let started = Instant::now();
        let result = self.origin.fetch_if_changed(url, &known).await;
        self.metrics
            .fetch_duration
            .observe(started.elapsed().as_secs_f64());
        let answer = match result {
            Ok(answer) => answer,
            Err(FetchError::NotFound) => {
                self.count_error(FetchError::NotFound.kind());
                self.drop_gone(url).await;
                return Ok(Outcome::Changed);
            }
            Err(e) => {
                self.count_error(e.kind());
                return Err(e.into());
            }
        };
        match (answer, held) {
            (Conditional::NotModified(fresh), Some(held)) => {
                // A 304 may update the validators; keep ours otherwise.
                let validators = if fresh.is_empty() {
                    held.validators.clone()
                } else {
                    fresh
                };
                self.tiers.renew(url.as_str(), &held, validators).await;
                Ok(Outcome::NotModified)
            }
            (Conditional::NotModified(_), None) => Err(WorkerError::Internal(
                "origin answered 304 to an unconditional request".into(),
            )),
            (Conditional::Changed(fetched), held) => {
                let img = self.checked_image(fetched)?;
                match held {
                    Some(held) if held.etag == img.etag => {
                        self.tiers.renew(url.as_str(), &held, img.validators).await;
                        Ok(Outcome::NotModified)
                    }
                    _ => {
                        self.tiers.replace(url.as_str(), Arc::new(img)).await;
                        Ok(Outcome::Changed)
                    }
                }
            }
        }
    }
}
