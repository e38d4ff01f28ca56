//! The label of the edge's counters that are split by a short reason
//! (connections closed, requests refused). Its own file so that the
//! connection registry and the edge's metrics can both use it without
//! depending on each other.

use prometheus_client::encoding::EncodeLabelSet;

/// Label for counters split by a short reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}
