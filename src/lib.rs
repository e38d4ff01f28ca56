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
//! - [`server`]: builds a node for its role and serves HTTP.
//! - [`edge`]: connection limits and the checks a request passes before any
//!   work is done for it.
//! - [`gateway`]: `GET /image`, routing and failover.
//! - [`cluster`]: gossip membership, placement, and the keys and signatures
//!   that keep outsiders out.
//! - [`worker`]: the internal API, the cache, and the guarded origin fetch.
//! - [`pipeline`]: what looks inside image bytes.
//! - [`metrics`]: Prometheus metrics, one registry per node.
//! - [`error`]: the one place where errors become HTTP statuses.

pub mod cluster;
pub mod config;
pub mod edge;
pub mod error;
pub mod gateway;
pub mod metrics;
pub mod pipeline;
pub mod server;
pub mod worker;

pub use server::RequestId;
