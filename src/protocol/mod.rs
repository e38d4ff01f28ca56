//! The internal protocol between gateways and workers, in one place.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/image?url=U&w=..` ([`LOOKUP_PATH`]) | 200 with the cached image, or 404 when not cached |
//! | `POST /v1/cache` `{"url": U, "w": ..}` ([`FILL_PATH`], [`FillRequest`]) | fetches, caches and returns the image, or the error |
//! | `GET /v1/stats` ([`STATS_PATH`]) | the worker's cache figures ([`WorkerStats`]), for the dashboard |
//! | `PUT /v1/cache?url=U&w=..` (worker to worker, hand-off), body: the bytes, `x-stored-at` | `{"stored": bool}` |
//!
//! Extension for `GET /info`: the same two requests with [`INFO_PARAM`]
//! (`info=1` in the query, `"info": "1"` in the body) ask for the URL's
//! info JSON instead of an image ([`Product`]).
//!
//! Both carry the cluster signature ([`header::CLUSTER_AUTH`]) and the
//! request id ([`RequestId`]). A worker's answer carries the headers of
//! [`image_response`]; a gateway passes on exactly [`header::RELAYED`], the
//! list built from the same constants the worker sets, so a header added
//! here reaches users without a second edit.
//!
//! Gateways and workers both depend on this module and never on each
//! other: the standalone gateway reaches its in-process worker through
//! [`LocalWorker`].

pub mod header;
mod local;
pub mod purge;
mod request;
mod request_id;
mod response;
mod source_url;
mod stats;

/// Worker: is this image cached? Answers the image or 404.
pub const LOOKUP_PATH: &str = "/v1/image";
/// Worker: fetch, cache and return this image (the "fill").
pub const FILL_PATH: &str = "/v1/cache";
/// Largest entry a worker accepts in a hand-off (`PUT /v1/cache`); larger
/// entries are not handed off.
pub const MAX_HANDOFF_BYTES: usize = 32 << 20;
/// Gateway: the public image endpoint.
pub const PUBLIC_IMAGE_PATH: &str = "/image";
/// Gateway: the public info endpoint.
pub const PUBLIC_INFO_PATH: &str = "/info";

pub use local::{FillFuture, LocalWorker, PurgeFuture, StatsFuture};
pub use request::{
    parse_image_query, parse_internal_query, Asked, FillRequest, Product, RequestError, INFO_PARAM,
};
pub use request_id::RequestId;
pub use response::{image_response, CacheStatus, ImageAnswer};
pub use source_url::{check_source_url, parse_source_url, SourceUrlError};
pub use stats::{WorkerStats, STATS_PATH};
