//! The worker's cache figures for `GET /v1/stats` (the dashboard).

use crate::protocol::WorkerStats;

use super::Worker;

impl Worker {
    /// Entries and bytes of the memory tier (pending evictions applied
    /// first) and the hit and miss counts since the worker started.
    pub async fn stats(&self) -> WorkerStats {
        let (entries, bytes) = self.tiers.memory().usage().await;
        WorkerStats {
            entries,
            bytes,
            hits: self.metrics.cache_hits.get(),
            misses: self.metrics.cache_misses.get(),
        }
    }
}
