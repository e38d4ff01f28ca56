//! Header names of the internal protocol and of image answers.
//!
//! Every name a worker sets on an image answer is listed in [`RELAYED`],
//! which is what a gateway copies from a worker's answer to its own: a
//! header missing there would be silently dropped in cluster mode only.

pub use crate::cluster::auth::AUTH_HEADER as CLUSTER_AUTH;

/// Whether the answer came from the cache (`HIT`), was just made (`MISS`)
/// or is an expired copy served while it is revalidated (`STALE`).
pub const X_CACHE: &str = "x-cache";
/// `gateway` on an answer served from the gateway's own cache
/// (`GATEWAY_CACHE_BYTES`); absent otherwise.
pub const X_CACHE_TIER: &str = "x-cache-tier";
/// The name of the worker that answered.
pub const X_SERVED_BY: &str = "x-served-by";
/// Ties the gateway's log line to the worker's for one request.
pub const X_REQUEST_ID: &str = "x-request-id";
/// Worker to worker (peer fill answers, hand-offs): when the entry was
/// fetched or made, in Unix milliseconds, so a copy keeps its remaining
/// freshness. Never relayed to users.
pub const X_STORED_AT: &str = "x-stored-at";
/// Gateway to worker, on a fill: the workers ahead of this one in the
/// URL's order that the gateway skips (ejected, or failed this request),
/// comma-separated. The worker then does not wait on them for a peer fill
/// (see `worker::unreachable_peers`). Never relayed.
pub const X_UNREACHABLE_WORKERS: &str = "x-unreachable-workers";
/// `nosniff`: browsers must trust our sniffed `Content-Type`.
pub const X_CONTENT_TYPE_OPTIONS: &str = "x-content-type-options";

/// Headers of a worker's answer that the user gets too: the standard ones
/// an image or error answer carries, and ours.
pub const RELAYED: [&str; 9] = [
    "content-type",
    "content-length",
    "etag",
    "cache-control",
    "vary",
    "retry-after",
    X_CACHE,
    X_SERVED_BY,
    X_CONTENT_TYPE_OPTIONS,
];

/// Headers of ours that a `304 Not Modified` keeps from the full answer.
pub const KEPT_ON_NOT_MODIFIED: [&str; 3] = [X_CACHE, X_SERVED_BY, X_CACHE_TIER];
