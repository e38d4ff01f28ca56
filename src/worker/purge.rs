//! Purging one source URL from this worker: the original and every variant,
//! in every tier. The HTTP side is `DELETE /v1/cache` in
//! [`crate::worker_api`].

use std::time::SystemTime;

use tracing::info;

use super::Worker;

impl Worker {
    /// Records that every copy of `url` stored at or before `at` is gone (so
    /// copies the tiers cannot enumerate, such as variants kept only on
    /// disk, are refused when read), then removes what it holds. Returns
    /// how many entries were removed.
    pub async fn purge(&self, url: &str, at: SystemTime) -> usize {
        self.tiers().purges().record(url, at);
        let removed = self.tiers().remove_source(url).await;
        self.metrics.purged.inc_by(removed as u64);
        info!(url, removed, "purged");
        removed
    }
}
