//! `GET /ready`: whether this node should be sent traffic now.
//!
//! `/health` answers as long as the process serves HTTP (liveness: restart
//! me if it stops). `/ready` answers 200 only when the node can do its job,
//! so that load balancers, compose's `service_healthy` and Kubernetes
//! readiness probes hold traffic back until then:
//!
//! - a worker once it is a live member of its own gossip view (gossip is
//!   up and it has not announced leaving). It does not wait for peers: the
//!   first worker of a new cluster has none, and gateways wait for it;
//! - a gateway once it is a member and also sees at least one live worker,
//!   without which every request would be a 503;
//! - a standalone node always (it needs no one).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::cluster::membership::Membership;
use crate::cluster::Role;

/// What `/ready` looks at.
#[derive(Clone)]
pub struct Readiness {
    pub name: String,
    pub role: Role,
    pub membership: Option<Arc<Membership>>,
}

/// Why a node is not ready; the 503's one-line body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("not ready: not (or no longer) a live member of the cluster")]
    NotAMember,
    #[error("not ready: no live worker")]
    NoWorker,
}

impl Readiness {
    /// `Ok` when the node can take traffic.
    pub fn check(&self) -> Result<(), NotReady> {
        let Some(membership) = &self.membership else {
            return Ok(());
        };
        let members = membership.live_members();
        if !members.iter().any(|m| m.name == self.name) {
            return Err(NotReady::NotAMember);
        }
        if self.role == Role::Gateway && !members.iter().any(|m| m.role == Role::Worker) {
            return Err(NotReady::NoWorker);
        }
        Ok(())
    }
}

/// The `/ready` route.
pub fn routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> (StatusCode, String) {
    match readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_gossip_is_ready() {
        let r = Readiness {
            name: "solo".into(),
            role: Role::Standalone,
            membership: None,
        };
        assert_eq!(r.check(), Ok(()));
    }
}
