//! Assembling a node: one HTTP server whose routes depend on the role.
//!
//! Every node serves `/health` and `/metrics`. A gateway (or standalone
//! node) adds the public `/image`; a worker adds the internal `/v1/*` API.
//! Cluster roles also join gossip. On SIGTERM or Ctrl-C a node announces
//! that it is leaving, stops accepting connections, lets in-flight requests
//! finish and exits, all within [`SHUTDOWN_DEADLINE`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::{Membership, MembershipConfig, MembershipError};
use crate::cluster::Role;
use crate::config::Config;
use crate::edge::{
    self,
    connections::{Connections, Deadlines},
    serve::ServeConfig,
};
use crate::error::Failure;
use crate::gateway::{self, Backends, Gateway};
use crate::metrics::Metrics;
use crate::pipeline::Limits;
use crate::worker::fetch::{install_crypto_provider, FetchConfig};
use crate::worker::{self, Worker, WorkerConfig};

/// From the shutdown signal to exit, whatever is still in flight.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(9);

/// The id that ties a gateway's log line to the worker's for one request.
/// Taken from the caller's `X-Request-Id` when it is sane, else generated.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// What the node-wide handlers (`/health`, `/metrics`) need.
#[derive(Clone)]
struct Node {
    name: String,
    role: Role,
    advertise_http: SocketAddr,
    membership: Option<Arc<Membership>>,
    metrics: Arc<Metrics>,
    worker: Option<Arc<Worker>>,
    gateway: Option<Arc<Gateway>>,
}

/// Runs a node until it is told to stop.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    install_crypto_provider();
    let has_gateway = matches!(cfg.role, Role::Gateway | Role::Standalone);
    let has_worker = matches!(cfg.role, Role::Worker | Role::Standalone);
    let metrics = Metrics::new(has_gateway, has_worker);
    let keys = cfg.cluster_secret.as_deref().map(ClusterKeys::derive);

    let listener = edge::serve::bind(cfg.http_addr, cfg.header_read_timeout)
        .with_context(|| format!("HTTP_ADDR {}: cannot listen", cfg.http_addr))?;
    let http_port = listener
        .local_addr()
        .context("HTTP_ADDR: no local address")?
        .port();
    let advertise_http = SocketAddr::new(cfg.advertise_ip, http_port);

    let membership = match (&keys, cfg.role) {
        (Some(keys), Role::Gateway | Role::Worker) => {
            let m = Membership::start(MembershipConfig {
                name: cfg.name.clone(),
                role: cfg.role,
                listen_addr: cfg.gossip_addr,
                advertise_gossip: SocketAddr::new(cfg.advertise_ip, cfg.gossip_addr.port()),
                advertise_http,
                seeds: cfg.known_hosts.clone(),
                gossip_key: keys.gossip,
                rejected_datagrams: metrics.gossip_rejected.clone(),
                gossip_interval: cfg.gossip_interval,
            })
            .await
            .map_err(|e| match e {
                MembershipError::InvalidSeed { .. } => anyhow!("KNOWN_HOSTS: {e}"),
                MembershipError::InvalidConfig(_) => anyhow!("gossip settings: {e}"),
                _ => anyhow!("GOSSIP_ADDR {}: {e}", cfg.gossip_addr),
            })?;
            Some(Arc::new(m))
        }
        _ => None,
    };

    let worker = match metrics.worker.clone().filter(|_| has_worker) {
        Some(wm) => Some(
            Worker::new(
                cfg.name.clone(),
                WorkerConfig {
                    cache_max_bytes: cfg.cache_max_bytes,
                    cache_ttl: cfg.cache_ttl,
                    fetch: FetchConfig {
                        max_bytes: cfg.max_source_bytes,
                        timeout: cfg.fetch_timeout,
                        max_redirects: cfg.max_redirects,
                        allowed_networks: cfg.allowed_source_networks.clone(),
                    },
                    limits: Limits {
                        max_pixels: cfg.max_source_pixels,
                        max_frames: cfg.max_animation_frames,
                    },
                    threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                    max_queue: cfg.max_queue,
                    max_fetches: cfg.max_origin_fetches,
                    max_fetches_per_host: cfg.max_fetches_per_host,
                },
                wm,
            )
            .map_err(|e| anyhow!("cannot start the worker: {e}"))?,
        ),
        None => None,
    };

    let gateway = match metrics.gateway.clone().filter(|_| has_gateway) {
        Some(gm) => {
            let backends = match (&worker, &membership, &keys) {
                (Some(w), _, _) if cfg.role == Role::Standalone => Backends::Local(Arc::clone(w)),
                (_, Some(m), Some(k)) => Backends::Cluster {
                    membership: Arc::clone(m),
                    keys: k.clone(),
                },
                _ => return Err(anyhow!("a gateway needs CLUSTER_SECRET and gossip")),
            };
            Some(
                Gateway::new(backends, gm, cfg.fetch_timeout)
                    .context("cannot build the HTTP client")?,
            )
        }
        None => None,
    };

    let connections = Connections::new(cfg.max_connections, metrics.edge.connections.clone());
    let node_metrics = Arc::clone(&metrics);
    let node = Node {
        name: cfg.name.clone(),
        role: cfg.role,
        advertise_http,
        membership: membership.clone(),
        metrics,
        worker: worker.clone(),
        gateway: gateway.clone(),
    };
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(node);
    if let Some(g) = gateway {
        let public = edge::guard(gateway::routes(g), &cfg.edge, node_metrics.edge.clone());
        app = app.merge(public);
    }
    if let (Some(w), Some(k), Role::Worker) = (worker, keys, cfg.role) {
        app = app.merge(worker::api::routes(w, k));
    }
    let app = app
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .layer(middleware::from_fn(log_request));

    info!(
        name = %cfg.name,
        role = %cfg.role,
        http = %cfg.http_addr,
        max_connections = cfg.max_connections,
        advertise = %advertise_http,
        "img-proxy node started"
    );

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let leaving = membership.clone();
    // On the signal: stop accepting at once, and tell the cluster we are
    // leaving so gateways stop routing here before the failure detector
    // would notice. The process waits for the announcement to go out.
    let farewell = tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutdown requested: leaving the cluster and draining requests");
        let _ = stop_tx.send(true);
        if let Some(m) = leaving {
            m.leave().await;
        }
    });
    let mut drained = stop_rx.clone();
    let serve_cfg = ServeConfig {
        deadlines: Deadlines {
            header_read: cfg.header_read_timeout,
            keep_alive: cfg.keep_alive_timeout,
        },
    };
    let serve = edge::serve::serve(listener, app, connections, serve_cfg, async move {
        let _ = drained.wait_for(|stop| *stop).await;
    });
    let deadline = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_DEADLINE).await;
    };
    tokio::pin!(deadline);
    tokio::select! {
        _ = serve => {},
        _ = &mut deadline => warn!("shutdown deadline reached with requests still in flight"),
    }
    tokio::select! {
        _ = farewell => {},
        _ = &mut deadline => warn!("shutdown deadline reached while leaving the cluster"),
    }
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
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
    if let Some(w) = &node.worker {
        w.update_gauges().await;
    }
    if let (Some(g), Some(gm)) = (&node.gateway, &node.metrics.gateway) {
        gm.live_workers.set(g.live_worker_count() as i64);
    }
    let mut resp = node.metrics.encode().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// A request id from the caller is kept if it is short and plain, so it can
/// be logged and forwarded without escaping.
fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_string())
}

/// Assigns the request id and writes the one log line per request.
async fn log_request(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    // A failed request's line carries the reason the client was given, at
    // the level its cause deserves (see `ApiError::log_level`).
    let failure = resp.extensions().get::<Failure>().cloned();
    let (level, reason) = match &failure {
        Some(f) => (f.level, f.reason.as_str()),
        None => (tracing::Level::INFO, "-"),
    };
    macro_rules! request_line {
        ($mac:ident) => {
            $mac!(
                request_id = %id,
                method = %method,
                path = %path,
                status = resp.status().as_u16(),
                duration_ms = started.elapsed().as_millis() as u64,
                cache = %header("x-cache"),
                served_by = %header("x-served-by"),
                reason = %reason,
                "request"
            )
        };
    }
    match level {
        tracing::Level::ERROR => request_line!(error),
        tracing::Level::WARN => request_line!(warn),
        _ => request_line!(info),
    }
    resp
}
