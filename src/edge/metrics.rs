//! Metrics of the edge: connections closed by the node, requests refused
//! by policy or limits, replays rejected. Registered on every node.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::connections::ConnectionMetrics;
use super::reason::ReasonLabel;

/// The edge's metrics.
#[derive(Clone, Default)]
pub struct EdgeMetrics {
    /// Client connections.
    pub connections: ConnectionMetrics,
    /// Requests refused before any work, by reason (`signature`,
    /// `source_not_allowed`, `in_flight`, ...).
    pub refused: Family<ReasonLabel, Counter>,
}

impl EdgeMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> EdgeMetrics {
        let m = EdgeMetrics::default();
        registry.register(
            "client_connections",
            "Client connections open now",
            m.connections.open.clone(),
        );
        registry.register(
            "client_connections_closed",
            "Client connections closed by the node, by reason (header_timeout, idle_timeout, shed, refused)",
            m.connections.closed.clone(),
        );
        registry.register(
            "requests_refused",
            "Requests refused before any work, by reason",
            m.refused.clone(),
        );
        m
    }

    /// Counts one request refused for `reason`.
    pub fn count_refusal(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}
