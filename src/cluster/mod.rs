//! Cluster: who is in it (gossip membership) and who owns a URL (placement).

pub mod auth;
pub mod keys;
pub mod membership;
pub mod node_name;
pub mod placement;
pub mod placement_demo;
pub mod purge_sync;
pub mod purges;
pub mod replay;
pub mod sealed;

use std::fmt;
use std::str::FromStr;

/// What a node does. Published in gossip so gateways know which members
/// can hold cache entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Accepts user requests and forwards them to the owning worker.
    Gateway,
    /// Fetches, transforms and caches images; serves the internal API.
    Worker,
    /// Gateway and worker in one process, for a single-node deployment.
    Standalone,
}

impl Role {
    /// The name used on the command line, in gossip and in `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Worker => "worker",
            Role::Standalone => "standalone",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gateway" => Ok(Role::Gateway),
            "worker" => Ok(Role::Worker),
            "standalone" => Ok(Role::Standalone),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}
