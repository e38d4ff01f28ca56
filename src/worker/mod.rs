//! Worker: downloads images from third-party origins, caches and serves them.
//!
//! The worker is the only part of the cluster that talks to the open
//! internet on a user's behalf, so everything that leaves the process goes
//! through the SSRF-hardened fetcher in [`fetch`], whose address rules live
//! in [`netguard`].

pub mod fetch;
pub mod netguard;
