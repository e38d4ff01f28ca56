//! `GET /dashboard` (an HTML page) and `GET /dashboard.json` (what it
//! shows) on gateways and standalone nodes.
//!
//! The page polls the JSON every few seconds: members with role, address,
//! state and uptime; each live worker's share of the hash space
//! ([`hash_share`], measured by placing sample keys) and of requests, its
//! cache entries, bytes and hit ratio; this node's request rate
//! ([`rate`]). A gateway asks each live worker for its figures over the
//! signed internal API (`GET /v1/stats`); a standalone node asks its own
//! worker. Reports are reused for a second, so a busy dashboard (or
//! someone polling it hard) costs the workers at most one request each per
//! second.

mod hash_share;
mod page;
mod rate;
mod report;

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Gateway;
use crate::cluster::Role;
use rate::RateWindow;
use report::{Report, Requests, SelfNode};

/// The page's path.
pub const PAGE_PATH: &str = "/dashboard";
/// The JSON's path.
pub const JSON_PATH: &str = "/dashboard.json";

/// How long a report is reused.
const REUSE: Duration = Duration::from_secs(1);

/// The dashboard's state: the gateway it reports on, and its last report.
pub struct Dashboard {
    gateway: Arc<Gateway>,
    me: SelfNode,
    rate: RateWindow,
    page: page::Page,
    last: tokio::sync::Mutex<Option<(Instant, Arc<String>)>>,
}

impl Dashboard {
    /// A dashboard for `gateway`, named as this node; starts sampling the
    /// request rate (the sampler stops when the dashboard is dropped).
    pub fn start(
        gateway: Arc<Gateway>,
        name: String,
        role: Role,
        addr: SocketAddr,
    ) -> Arc<Dashboard> {
        let dashboard = Arc::new(Dashboard {
            gateway,
            me: SelfNode {
                name,
                role,
                addr: addr.to_string(),
                started_ms: report::unix_ms(),
            },
            rate: RateWindow::default(),
            page: page::build(),
            last: tokio::sync::Mutex::new(None),
        });
        tokio::spawn(sample(Arc::downgrade(&dashboard)));
        dashboard
    }

    async fn report(&self) -> Report {
        let now_ms = report::unix_ms();
        let total = self.gateway.answered();
        let (members, workers) = report::members_and_workers(&self.gateway, &self.me, now_ms).await;
        Report {
            node: self.me.name.clone(),
            role: self.me.role.as_str(),
            time_ms: now_ms,
            requests: Requests {
                total,
                per_second: self.rate.per_second(Instant::now(), total),
                window_seconds: rate::WINDOW.as_secs(),
            },
            hash_share_keys: hash_share::SAMPLE_KEYS,
            members,
            workers,
        }
    }

    /// The JSON of a report at most [`REUSE`] old; concurrent callers wait
    /// for one report instead of each asking the workers.
    async fn json(&self) -> Arc<String> {
        let mut last = self.last.lock().await;
        if let Some((at, json)) = last.as_ref() {
            if at.elapsed() < REUSE {
                return Arc::clone(json);
            }
        }
        let json = Arc::new(serde_json::to_string(&self.report().await).unwrap_or_default());
        *last = Some((Instant::now(), Arc::clone(&json)));
        json
    }
}

/// Records the answered-requests counter once a second.
async fn sample(dashboard: Weak<Dashboard>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(d) = dashboard.upgrade() else { return };
        d.rate.record(Instant::now(), d.gateway.answered());
    }
}

/// `/dashboard` and `/dashboard.json`.
pub fn routes(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route(PAGE_PATH, get(page))
        .route(JSON_PATH, get(json))
        .with_state(dashboard)
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

async fn page(State(d): State<Arc<Dashboard>>) -> Response {
    let mut resp = d.page.html.clone().into_response();
    no_store(&mut resp);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&d.page.csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

async fn json(State(d): State<Arc<Dashboard>>) -> Response {
    let mut resp = d.json().await.as_str().to_string().into_response();
    no_store(&mut resp);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
