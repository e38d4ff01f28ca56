//! The node's edge: what happens to a client's connection and request
//! before the gateway does any work for it.
//!
//! - [`serve`]: the accept loop, with deadlines for request heads and idle
//!   connections, bounded heads, and a cap on open connections
//!   ([`connections`], sized by [`fd_limit`]).
//! - [`Guard`]: the checks in front of `/image` and `/info`, in this order, one
//!   middleware per file: [`url_length`] (414), [`signature`] (403),
//!   [`presets`] (400), [`sources`] (403), [`in_flight`] (503).

pub mod connections;
pub mod error;
pub mod fd_limit;
pub mod in_flight;
pub mod metrics;
pub mod presets;
pub mod query;
pub mod reason;
pub mod serve;
pub mod sign_cli;
pub mod signature;
pub mod sources;
pub mod url_length;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;

use error::EdgeError;
use in_flight::InFlight;
use metrics::EdgeMetrics;
use presets::Presets;
use signature::SigningKeys;
use sources::AllowedSources;

/// The request policy of a gateway, from its configuration.
#[derive(Debug, Clone)]
pub struct EdgePolicy {
    /// `URL_SIGNING_KEYS`; `None` serves unsigned requests.
    pub signing: Option<SigningKeys>,
    /// `ALLOWED_SOURCES`; `None` allows every public host.
    pub sources: Option<AllowedSources>,
    /// `PRESETS` and `ONLY_PRESETS`.
    pub presets: Presets,
    /// `MAX_IN_FLIGHT`.
    pub max_in_flight: usize,
}

/// The edge checks of a gateway's public routes, built once from its
/// policy: every route it wraps shares their state, so `MAX_IN_FLIGHT`
/// bounds `/image` and `/info` together.
#[derive(Clone)]
pub struct Guard {
    in_flight: Arc<InFlight>,
    sources: Option<Arc<AllowedSources>>,
    presets: Option<Arc<Presets>>,
    signing: Option<Arc<SigningKeys>>,
    metrics: EdgeMetrics,
}

impl Guard {
    pub fn new(policy: &EdgePolicy, metrics: EdgeMetrics) -> Guard {
        Guard {
            in_flight: Arc::new(InFlight::new(policy.max_in_flight)),
            sources: policy.sources.clone().map(Arc::new),
            presets: Some(&policy.presets)
                .filter(|p| p.is_active())
                .map(|p| Arc::new(p.clone())),
            signing: policy.signing.clone().map(Arc::new),
            metrics,
        }
    }

    /// Wraps `routes` in the checks, and counts what they refuse. The
    /// checks are route layers of the routes' own method router (not a
    /// router nested in another): a request is routed once, and a method
    /// the routes do not serve is answered 405 without them.
    pub fn wrap<S>(&self, routes: MethodRouter<S>) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut r = routes.route_layer(middleware::from_fn_with_state(
            Arc::clone(&self.in_flight),
            in_flight::limit,
        ));
        if let Some(sources) = &self.sources {
            r = r.route_layer(middleware::from_fn_with_state(
                Arc::clone(sources),
                sources::require,
            ));
        }
        if let Some(presets) = &self.presets {
            r = r.route_layer(middleware::from_fn_with_state(
                Arc::clone(presets),
                presets::expand,
            ));
        }
        if let Some(keys) = &self.signing {
            r = r.route_layer(middleware::from_fn_with_state(
                Arc::clone(keys),
                signature::require,
            ));
        }
        r.route_layer(middleware::from_fn(url_length::limit))
            .route_layer(middleware::from_fn_with_state(
                self.metrics.clone(),
                count_refusals,
            ))
    }
}

/// Counts refusals by kind (`img_proxy_requests_refused_total`); the kind
/// travels as a response extension set where the error became a response.
async fn count_refusals(State(metrics): State<EdgeMetrics>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if let Some(e) = resp.extensions().get::<EdgeError>() {
        metrics.count_refusal(e.kind());
    }
    resp
}
