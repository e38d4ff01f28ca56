//! A worker for unit tests: memory tier only, no peers.

use std::sync::Arc;
use std::time::Duration;

use super::fetch::FetchConfig;
use super::{Worker, WorkerConfig};
use crate::cluster::purges::PurgeList;
use crate::metrics::Metrics;
use crate::pipeline::Limits;

/// A standalone worker whose entries stay fresh for `ttl`.
pub fn worker_with_ttl(ttl: Duration) -> Arc<Worker> {
    crate::worker::fetch::install_crypto_provider();
    let metrics = Metrics::new(false, true)
        .worker
        .clone()
        .unwrap_or_else(|| unreachable!("worker metrics were asked for"));
    let cfg = WorkerConfig {
        cache_max_bytes: 1 << 20,
        cache_ttl: ttl,
        stale_ttl: Duration::ZERO,
        fetch: FetchConfig {
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(1),
            max_redirects: 0,
            allowed_networks: vec![],
        },
        limits: Limits::default(),
        threads: 1,
        max_queue: 1,
        queue_timeout: std::time::Duration::from_secs(30),
        disk: None,
        purges: Arc::new(PurgeList::standalone(ttl)),
        max_fetches: 1,
        max_fetches_per_host: 1,
        peers: None,
    };
    Worker::new("test-worker".into(), cfg, metrics).unwrap_or_else(|e| panic!("{e}"))
}
