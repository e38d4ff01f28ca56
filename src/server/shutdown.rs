//! Serving until SIGTERM or Ctrl-C, then leaving gracefully: announce the
//! departure, stop accepting, let in-flight requests finish and (a worker)
//! hand its entries off to their next owners, all within
//! [`SHUTDOWN_DEADLINE`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::membership::Membership;
use crate::edge::{self, connections::Connections, serve::ServeConfig};

/// From the shutdown signal to exit, whatever is still in flight.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(9);

/// Work a node does on its way out, besides draining (a worker's hand-off).
pub type Farewell = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a node does when it leaves: announce it in gossip, and its
/// farewell work, at the same time.
pub struct Leaving {
    pub membership: Option<Arc<Membership>>,
    pub handoff: Option<Farewell>,
}

/// Serves `app` until the signal, then drains within the deadline.
pub async fn serve_until_signal(
    listener: TcpListener,
    app: Router,
    connections: Arc<Connections>,
    serve_cfg: ServeConfig,
    leaving: Leaving,
) -> anyhow::Result<()> {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    // On the signal: stop accepting at once, and tell the cluster we are
    // leaving so gateways stop routing here before the failure detector
    // would notice. The process waits for the announcement to go out.
    let farewell = tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutdown requested: leaving the cluster and draining requests");
        let _ = stop_tx.send(true);
        let announce = async {
            if let Some(m) = leaving.membership {
                m.leave().await;
            }
        };
        let handoff = async {
            if let Some(h) = leaving.handoff {
                h.await;
            }
        };
        tokio::join!(announce, handoff);
    });
    let mut drained = stop_rx.clone();
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
        _ = &mut deadline => warn!("shutdown deadline reached while leaving the cluster or handing off"),
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
