//! What every node serves whatever its role: `/health` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::cluster::membership::Membership;
use crate::cluster::Role;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::worker::Worker;

/// What the node-wide handlers need.
#[derive(Clone)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub advertise_http: SocketAddr,
    pub membership: Option<Arc<Membership>>,
    pub metrics: Arc<Metrics>,
    pub worker: Option<Arc<Worker>>,
    pub gateway: Option<Arc<Gateway>>,
}

/// `/health` and `/metrics`.
pub fn routes(node: Node) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(node)
}

#[derive(Serialize)]
struct HealthMember {
    name: String,
    role: &'static str,
    addr: String,
}

#[derive(Serialize)]
struct Health {
    name: String,
    role: &'static str,
    members: Vec<HealthMember>,
}

async fn health(State(node): State<Node>) -> Json<Health> {
    let members = match &node.membership {
        Some(m) => m
            .live_members()
            .into_iter()
            .map(|m| HealthMember {
                name: m.name,
                role: m.role.as_str(),
                addr: m.http_addr.to_string(),
            })
            .collect(),
        None => vec![HealthMember {
            name: node.name.clone(),
            role: node.role.as_str(),
            addr: node.advertise_http.to_string(),
        }],
    };
    Json(Health {
        name: node.name,
        role: node.role.as_str(),
        members,
    })
}

async fn metrics_text(State(node): State<Node>) -> Response {
    if let Some(worker) = &node.worker {
        worker.update_gauges().await;
    }
    if let (Some(gateway), Some(gateway_metrics)) = (&node.gateway, &node.metrics.gateway) {
        gateway_metrics
            .live_workers
            .set(gateway.live_worker_count() as i64);
        gateway_metrics
            .ejected_workers
            .set(gateway.ejected_worker_count() as i64);
        gateway.hot_cache().update_gauges().await;
    }
    let mut resp = node.metrics.encode().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
