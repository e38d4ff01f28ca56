//! # img-proxy
//!
//! A distributed image cache proxy. A client asks a **gateway** for
//! `GET /image?url=<image URL>`; the gateway picks the **worker** that owns
//! the URL by rendezvous hashing over the live workers and forwards the
//! request; the worker answers from its cache or downloads the image from
//! the origin (safely), caches it within a byte budget and a TTL, and
//! returns it. Membership is gossip: nodes find each other from seed hosts.
//!
//! Where a request goes, module by module:
//!
//! - [`config`]: flags and environment variables, validated at start-up.
//! - [`server`]: assembles a node for its role (membership, worker,
//!   gateway, router) and serves HTTP until a shutdown signal.
//! - [`edge`]: connection limits and the checks a request passes before any
//!   work is done for it.
//! - [`gateway`]: `GET /image`, routing and failover.
//! - [`protocol`]: the contract between gateways and workers: `/v1` paths,
//!   header names, the query and fill request, source-URL rules, the
//!   request id, image answers. Gateway and worker depend on it, not on
//!   each other.
//! - [`worker_api`]: the worker's HTTP face, serving the protocol.
//! - [`worker`]: the cache tiers (memory, disk, purges) and the guarded
//!   origin fetch (`get_or_fill`).
//! - [`cluster`]: gossip membership, placement, purge records carried in
//!   gossip, and the keys and signatures that keep outsiders out.
//! - [`pipeline`]: what looks inside image bytes, as a list of steps
//!   (probe, decode, render, encode; `pipeline/transform.rs` lists them).
//! - [`metrics`]: Prometheus metrics, one registry per node.
//! - [`error`]: the one place where errors become HTTP statuses;
//!   [`error_chain`] renders an error and its causes on one line for logs.
//! - [`probe`]: `img-proxy probe URL`, the image's own healthcheck.
//! - [`warm`]: `img-proxy warm URLS.txt --gateway ...`, fills the caches
//!   from a list of URLs.
//! - [`allocator`]: the process's allocator (mimalloc for small blocks,
//!   glibc for large buffers), which the binary installs.

pub mod allocator;
pub mod cluster;
pub mod config;
pub mod edge;
pub mod error;
pub mod error_chain;
pub mod gateway;
pub mod metrics;
pub mod pipeline;
pub mod probe;
pub mod protocol;
pub mod server;
pub mod warm;
pub mod worker;
pub mod worker_api;
