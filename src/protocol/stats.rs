//! `GET /v1/stats`: a worker's cache figures, for the gateways' dashboard.
//!
//! An extension of the internal API, signed like the rest. The gateway
//! asks every live worker when `/dashboard.json` is read, so the page shows
//! each worker's own numbers (all gateways' traffic), not one gateway's.

use serde::{Deserialize, Serialize};

/// Worker: its cache figures ([`WorkerStats`]).
pub const STATS_PATH: &str = "/v1/stats";

/// What a worker reports about its cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Entries in the memory tier.
    pub entries: u64,
    /// Bytes weighed into the memory tier.
    pub bytes: u64,
    /// Requests answered from the cache (memory or disk).
    pub hits: u64,
    /// Requests that found nothing cached (each then filled).
    pub misses: u64,
}
