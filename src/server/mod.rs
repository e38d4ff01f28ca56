//! Assembling a node: one HTTP server whose routes depend on the role.
//!
//! Every node serves `/health` and `/metrics` ([`node_routes`]) and
//! `/ready` ([`ready`]). A gateway
//! (or standalone node) adds the public `/image` and `/dashboard`; a worker adds the
//! internal `/v1/*` API. Cluster roles also join gossip. On SIGTERM or
//! Ctrl-C a node leaves as [`shutdown`] describes. This module only builds
//! the parts and wires them together; each part lives in its own module.

mod access_log;
mod node_routes;
mod ready;
mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use axum::http::StatusCode;
use axum::{middleware, Router};
use tracing::info;

use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::{Membership, MembershipConfig, MembershipError};
use crate::cluster::purge_sync;
use crate::cluster::purges::PurgeList;
use crate::cluster::Role;
use crate::config::Config;
use crate::edge::{self, connections::Connections, metrics::EdgeMetrics};
use crate::gateway::{self, Backends, Gateway};
use crate::metrics::{GatewayMetrics, Metrics};
use crate::pipeline::Limits;
use crate::worker::disk::DiskTier;
use crate::worker::fetch::{install_crypto_provider, FetchConfig};
use crate::worker::peers::Peers;
use crate::worker::{Worker, WorkerConfig};
use crate::worker_api::{self, InProcess};
use node_routes::Node;
pub use shutdown::SHUTDOWN_DEADLINE;

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
            Some(build_membership(&cfg, keys, advertise_http, &metrics).await?)
        }
        _ => None,
    };
    let purges = purge_list(&cfg, &membership);
    let worker = match metrics.worker.clone().filter(|_| has_worker) {
        Some(worker_metrics) => {
            let peers = peers(&membership, &keys)?;
            Some(build_worker(&cfg, worker_metrics, Arc::clone(&purges), peers).await?)
        }
        None => None,
    };
    let stopping = worker.clone();
    let gateway = match metrics.gateway.clone().filter(|_| has_gateway) {
        Some(gateway_metrics) => {
            let backends = backends(&cfg, &worker, &membership, &keys)?;
            Some(build_gateway(&cfg, backends, gateway_metrics, &purges))
        }
        None => None,
    };

    let connections = Connections::new(cfg.max_connections, metrics.edge.connections.clone());
    let edge_metrics = metrics.edge.clone();
    let node = Node {
        name: cfg.name.clone(),
        role: cfg.role,
        advertise_http,
        membership: membership.clone(),
        metrics,
        worker: worker.clone(),
        gateway: gateway.clone(),
    };
    let worker_api = match (worker, keys, cfg.role) {
        (Some(w), Some(k), Role::Worker) => Some((w, k)),
        _ => None,
    };
    let public = gateway.map(|g| {
        let dashboard = gateway::dashboard::Dashboard::start(
            Arc::clone(&g),
            cfg.name.clone(),
            cfg.role,
            advertise_http,
        );
        let guard = edge::Guard::new(&cfg.edge, edge_metrics.clone());
        gateway::routes(g, |routes| guard.wrap(routes)).merge(gateway::dashboard::routes(dashboard))
    });
    let app = router(node, public, worker_api, edge_metrics);
    info!(
        name = %cfg.name,
        role = %cfg.role,
        http = %cfg.http_addr,
        advertise = %advertise_http,
        max_connections = cfg.max_connections,
        "img-proxy node started"
    );
    serve(&cfg, listener, app, connections, membership, stopping).await
}

/// The gateway half of a node, over `backends`.
fn build_gateway(
    cfg: &Config,
    backends: Backends,
    metrics: GatewayMetrics,
    purges: &Arc<PurgeList>,
) -> Arc<Gateway> {
    let client_hints = match cfg.client_hints {
        true => gateway::ClientHints::On,
        false => gateway::ClientHints::Off,
    };
    Gateway::new(
        backends,
        metrics,
        cfg.fetch_timeout,
        cfg.admin_token.clone(),
        Arc::clone(purges),
        client_hints,
        cfg.gateway_cache_bytes,
    )
}

/// A worker's hand-off on its way out (`HANDOFF_TIMEOUT`).
fn handoff(cfg: &Config, worker: &Option<Arc<Worker>>) -> Option<shutdown::Farewell> {
    let worker = Arc::clone(worker.as_ref()?);
    let budget = cfg.handoff_timeout;
    Some(Box::pin(async move {
        worker.hand_off(budget).await;
    }))
}

/// Serves until a shutdown signal, then (a worker) hands its entries off
/// and gives the disk tier its last writes.
async fn serve(
    cfg: &Config,
    listener: tokio::net::TcpListener,
    app: Router,
    connections: Arc<Connections>,
    membership: Option<Arc<Membership>>,
    worker: Option<Arc<Worker>>,
) -> anyhow::Result<()> {
    let disk: Option<Arc<DiskTier>> = worker.as_ref().and_then(|w| w.tiers().disk().cloned());
    let leaving = shutdown::Leaving {
        membership,
        handoff: handoff(cfg, &worker),
    };
    let serve_cfg = edge::serve::ServeConfig {
        deadlines: edge::connections::Deadlines {
            header_read: cfg.header_read_timeout,
            keep_alive: cfg.keep_alive_timeout,
        },
    };
    let served = shutdown::serve_until_signal(listener, app, connections, serve_cfg, leaving).await;
    if let Some(disk) = disk {
        disk.close_within(CLOSE_DISK_DEADLINE).await;
    }
    served
}

/// Time left to the disk tier for its last writes after the HTTP server
/// stopped.
const CLOSE_DISK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// The node's purge records, kept in step with the cluster's gossip when
/// there is a cluster. They outlive every entry they can cover (see
/// [`crate::cluster::purges`]).
fn purge_list(cfg: &Config, membership: &Option<Arc<Membership>>) -> Arc<PurgeList> {
    match membership {
        Some(m) => {
            let list = Arc::new(PurgeList::new(cfg.cache_ttl + cfg.stale_ttl));
            tokio::spawn(purge_sync::run(Arc::clone(m), Arc::clone(&list)));
            list
        }
        None => Arc::new(PurgeList::standalone(cfg.cache_ttl + cfg.stale_ttl)),
    }
}

/// A worker's view of the other workers (peer fill and hand-off), in a
/// cluster.
fn peers(
    membership: &Option<Arc<Membership>>,
    keys: &Option<ClusterKeys>,
) -> anyhow::Result<Option<Peers>> {
    match (membership, keys) {
        (Some(m), Some(k)) => Ok(Some(
            Peers::new(Arc::clone(m), k.clone()).context("cannot build the HTTP client")?,
        )),
        _ => Ok(None),
    }
}

/// Joins gossip; errors name the setting at fault.
async fn build_membership(
    cfg: &Config,
    keys: &ClusterKeys,
    advertise_http: SocketAddr,
    metrics: &Metrics,
) -> anyhow::Result<Arc<Membership>> {
    let membership = Membership::start(MembershipConfig {
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
    Ok(Arc::new(membership))
}

/// The worker: cache tiers, origin client and image pool, from the
/// settings. Opening the disk tier recovers what an earlier run left there.
async fn build_worker(
    cfg: &Config,
    metrics: crate::metrics::WorkerMetrics,
    purges: Arc<PurgeList>,
    peers: Option<Peers>,
) -> anyhow::Result<Arc<Worker>> {
    let disk = match &cfg.cache_dir {
        Some(dir) => Some(
            DiskTier::open(dir, cfg.cache_disk_bytes, metrics.disk.clone())
                .await
                .map_err(|e| anyhow!("{e}"))?,
        ),
        None => None,
    };
    let worker_cfg = WorkerConfig {
        cache_max_bytes: cfg.cache_max_bytes,
        cache_ttl: cfg.cache_ttl,
        stale_ttl: cfg.stale_ttl,
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
        threads: crate::config::cpus(),
        max_queue: cfg.max_queue,
        queue_timeout: cfg.queue_timeout,
        disk,
        purges,
        max_fetches: cfg.max_origin_fetches,
        max_fetches_per_host: cfg.max_fetches_per_host,
        peers,
    };
    Worker::new(cfg.name.clone(), worker_cfg, metrics)
        .map_err(|e| anyhow!("cannot start the worker: {e}"))
}

/// Where the gateway sends work: the worker in this process (standalone)
/// or the cluster's workers.
fn backends(
    cfg: &Config,
    worker: &Option<Arc<Worker>>,
    membership: &Option<Arc<Membership>>,
    keys: &Option<ClusterKeys>,
) -> anyhow::Result<Backends> {
    match (worker, membership, keys) {
        (Some(w), _, _) if cfg.role == Role::Standalone => {
            Ok(Backends::Local(Box::new(InProcess(Arc::clone(w)))))
        }
        (_, Some(m), Some(k)) => Ok(Backends::Cluster {
            membership: Arc::clone(m),
            keys: k.clone(),
        }),
        _ => Err(anyhow!("a gateway needs CLUSTER_SECRET and gossip")),
    }
}

/// The node's routes for its role, behind the access log; `public` is the
/// gateway's `/image`, already behind the [`edge::Guard`] checks.
fn router(
    node: Node,
    public: Option<Router>,
    worker_api: Option<(Arc<Worker>, ClusterKeys)>,
    edge_metrics: EdgeMetrics,
) -> Router {
    let readiness = ready::Readiness {
        name: node.name.clone(),
        role: node.role,
        membership: node.membership.clone(),
    };
    let mut app = node_routes::routes(node).merge(ready::routes(readiness));
    if let Some(p) = public {
        app = app.merge(p);
    }
    if let Some((w, k)) = worker_api {
        app = app.merge(worker_api::routes(w, k, edge_metrics));
    }
    app.fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .layer(middleware::from_fn(access_log::log_request))
}
