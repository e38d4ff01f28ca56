//! What `/dashboard.json` answers: the cluster as this gateway sees it.
//! Field by field documentation is in the README ("Dashboard").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use bytes::Bytes;
use serde::Serialize;

use super::hash_share;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::{KnownNode, Liveness, Member, Membership};
use crate::cluster::Role;
use crate::gateway::internal::{endpoint, send, signed};
use crate::gateway::{Backends, Gateway};
use crate::metrics::WorkerLabel;
use crate::protocol::{RequestId, WorkerStats, STATS_PATH};

/// How long the gateway waits for a worker's figures.
const STATS_TIMEOUT: Duration = Duration::from_secs(1);

/// The whole answer.
#[derive(Debug, Serialize)]
pub struct Report {
    pub node: String,
    pub role: &'static str,
    pub time_ms: u64,
    pub requests: Requests,
    pub hash_share_keys: usize,
    pub members: Vec<MemberRow>,
    pub workers: Vec<WorkerRow>,
}

/// This node's `/image` answers.
#[derive(Debug, Serialize)]
pub struct Requests {
    pub total: u64,
    pub per_second: Option<f64>,
    pub window_seconds: u64,
}

/// One member, live or not.
#[derive(Debug, Serialize)]
pub struct MemberRow {
    pub name: String,
    pub role: Option<&'static str>,
    pub addr: Option<String>,
    pub state: &'static str,
    pub uptime_seconds: u64,
}

/// One live worker's shares and cache figures.
#[derive(Debug, Serialize)]
pub struct WorkerRow {
    pub name: String,
    pub addr: String,
    pub hash_share: f64,
    pub routed: u64,
    pub requests: Option<u64>,
    pub request_share: Option<f64>,
    pub entries: Option<u64>,
    pub bytes: Option<u64>,
    pub hits: Option<u64>,
    pub misses: Option<u64>,
    pub hit_ratio: Option<f64>,
    pub error: Option<String>,
}

/// Who is asking: this node.
pub struct SelfNode {
    pub name: String,
    pub role: Role,
    pub addr: String,
    pub started_ms: u64,
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MemberRow {
    fn from_known(n: KnownNode, now_ms: u64) -> MemberRow {
        MemberRow {
            uptime_seconds: match n.state {
                Liveness::Live | Liveness::Leaving | Liveness::Joining => {
                    now_ms.saturating_sub(n.started_ms) / 1000
                }
                Liveness::Left | Liveness::Dead => 0,
            },
            name: n.name,
            role: n.role.map(Role::as_str),
            addr: n.http_addr.map(|a| a.to_string()),
            state: n.state.as_str(),
        }
    }
}

impl WorkerRow {
    fn new(name: String, addr: String, hash_share: f64, routed: u64) -> WorkerRow {
        WorkerRow {
            name,
            addr,
            hash_share,
            routed,
            requests: None,
            request_share: None,
            entries: None,
            bytes: None,
            hits: None,
            misses: None,
            hit_ratio: None,
            error: None,
        }
    }

    fn set_stats(&mut self, stats: Result<WorkerStats, String>) {
        match stats {
            Ok(s) => {
                let requests = s.hits + s.misses;
                self.requests = Some(requests);
                self.entries = Some(s.entries);
                self.bytes = Some(s.bytes);
                self.hits = Some(s.hits);
                self.misses = Some(s.misses);
                self.hit_ratio = (requests > 0).then(|| s.hits as f64 / requests as f64);
            }
            Err(e) => self.error = Some(e),
        }
    }
}

/// Members and workers as this node sees them now.
pub async fn members_and_workers(
    gw: &Gateway,
    me: &SelfNode,
    now_ms: u64,
) -> (Vec<MemberRow>, Vec<WorkerRow>) {
    match &gw.backends {
        Backends::Local(worker) => {
            let member = MemberRow {
                name: me.name.clone(),
                role: Some(me.role.as_str()),
                addr: Some(me.addr.clone()),
                state: Liveness::Live.as_str(),
                uptime_seconds: now_ms.saturating_sub(me.started_ms) / 1000,
            };
            let mut row = WorkerRow::new(me.name.clone(), me.addr.clone(), 1.0, gw.answered());
            row.set_stats(Ok(worker.stats().await));
            (vec![member], shares_of_requests(vec![row]))
        }
        Backends::Cluster { membership, keys } => {
            let members = cluster_members(membership, now_ms).await;
            let workers = cluster_workers(gw, keys, &membership.live_workers()).await;
            (members, workers)
        }
    }
}

async fn cluster_members(membership: &Membership, now_ms: u64) -> Vec<MemberRow> {
    membership
        .known_nodes()
        .await
        .into_iter()
        .map(|n| MemberRow::from_known(n, now_ms))
        .collect()
}

async fn cluster_workers(gw: &Gateway, keys: &ClusterKeys, live: &[Member]) -> Vec<WorkerRow> {
    let names: Vec<String> = live.iter().map(|m| m.name.clone()).collect();
    let shares = hash_share::shares(&names);
    let asks = live.iter().map(|m| worker_stats(gw, keys, m));
    let stats = futures::future::join_all(asks).await;
    let rows = live
        .iter()
        .zip(stats)
        .map(|(m, stats)| {
            let routed = gw
                .metrics
                .routed
                .get(&WorkerLabel {
                    worker: m.name.clone(),
                })
                .map_or(0, |c| c.get());
            let share = shares.get(&m.name).copied().unwrap_or(0.0);
            let mut row = WorkerRow::new(m.name.clone(), m.http_addr.to_string(), share, routed);
            row.set_stats(stats);
            row
        })
        .collect();
    shares_of_requests(rows)
}

/// Each worker's share of the requests the workers report in all.
fn shares_of_requests(mut rows: Vec<WorkerRow>) -> Vec<WorkerRow> {
    let total: u64 = rows.iter().filter_map(|r| r.requests).sum();
    for row in &mut rows {
        row.request_share = row
            .requests
            .filter(|_| total > 0)
            .map(|n| n as f64 / total as f64);
    }
    rows
}

/// `GET /v1/stats` on one worker, signed; an error says why not.
async fn worker_stats(
    gw: &Gateway,
    keys: &ClusterKeys,
    worker: &Member,
) -> Result<WorkerStats, String> {
    let uri = endpoint(worker, STATS_PATH).map_err(|e| e.to_string())?;
    let id = RequestId(format!("dashboard-{}", RequestId::fresh()));
    let request = signed(keys, Method::GET, uri, Bytes::new(), &id, STATS_TIMEOUT);
    let resp = send(gw, request).await.map_err(|e| e.to_string())?;
    if !resp.status.is_success() {
        return Err(format!("answered {}", resp.status));
    }
    serde_json::from_slice::<WorkerStats>(&resp.body).map_err(|e| e.to_string())
}
