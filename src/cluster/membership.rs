//! Cluster membership: which nodes are up, what they do, where to reach them.
//!
//! Gateways place each URL on a worker by rendezvous hashing over the live
//! workers, so every node needs the same, current list. This module runs
//! chitchat (scuttlebutt gossip with a phi-accrual failure detector) over the
//! sealed UDP transport ([`super::sealed`]) and turns its state into a sorted
//! list of [`Member`]s.
//!
//! Each node publishes two keys: `role` and `http_addr`. A node that is
//! shutting down sets a third, `leaving`; the liveness predicate hides it at
//! once so gateways stop routing to it before it actually stops, instead of
//! waiting for the failure detector.
//!
//! Identity is `ChitchatId { node_id: name, generation_id: start time in ms,
//! gossip_advertise_addr }`. A restarted node (same name) is a new chitchat
//! node with a larger generation; while the old incarnation has not yet timed
//! out, both are live in chitchat, and [`Membership::live_members`] keeps only
//! the newest generation per name, so the restart replaces the old entry
//! immediately and the name never appears twice.
//!
//! # Failure detection budget
//!
//! Requirement: a SIGKILLed node leaves every other node's view within 10 s;
//! a healthy node never flaps, even on a loaded 2-core machine.
//!
//! chitchat's "phi" is `elapsed since last heartbeat / mean interval`, and a
//! node is declared dead when phi exceeds the threshold at a liveness check
//! (done at the end of each of the *observer's* gossip rounds). The mean is
//! additively smoothed with a prior: `mean = (sum + 5 * initial_interval) /
//! (n + 5)` over the last `sampling_window_size` intervals, and intervals
//! longer than `max_interval` are discarded. Hence, with our settings
//! (see `failure_detector_config` below):
//!
//! * upper bound: every sample is `<= max_interval = 1 s` and the prior is
//!   `1 s`, so `mean <= 1 s` and a silent node is declared dead at most
//!   `8 * 1 s = 8 s` after its last heartbeat, plus at most one gossip
//!   interval (`<= 1 s`) until the observer's next liveness check: `<= 9 s`.
//! * lower bound: the window holds only 5 samples, so the prior always
//!   weighs half: `mean >= 5 * 1 s / 10 = 0.5 s`, and no node is declared
//!   dead before 4 s of silence, however fast heartbeats usually arrive. In a
//!   small cluster an observer sees a peer's heartbeat advance several times
//!   per round (every SYN and SYN-ACK carries it), so with chitchat's default
//!   window of 1000 the learned mean would drop to ~1/4 of the gossip
//!   interval and the timeout to about a second: one scheduler hiccup on a
//!   busy 2-core box would flap the node. The floor prevents that.
//! * measured (3 nodes on one 2-core machine, two CPU hogs running): gone
//!   after 6.0 s at the default 500 ms interval, 7.0 s at 1 s, 4.3 s at the
//!   100 ms the unit tests use; no view change at all over 20 s of load
//!   (`production_intervals_detect_within_budget_without_flapping`).
//!
//! This only holds for gossip intervals up to 1 s, which [`Membership::start`]
//! enforces.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::{
    spawn_chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, NodeState,
};
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::sealed::SealedTransport;
use super::Role;

/// chitchat cluster id: a SYN with another id is answered "bad cluster".
/// The sealed transport already keeps other clusters (other secrets) out; the
/// id additionally stops a cluster sharing a secret with another product.
pub const CLUSTER_ID: &str = "img-proxy";

/// Gossip interval the binary should use unless told otherwise: fast enough
/// that joins and leaves spread in about a second, slow enough to be
/// negligible load (a few small datagrams per node per round).
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(500);

/// Largest accepted gossip interval: the 10 s detection budget (see the
/// module doc) assumes each observer checks liveness at least once a second.
pub const MAX_GOSSIP_INTERVAL: Duration = Duration::from_secs(1);

/// Node key holding the [`Role`] name.
const KEY_ROLE: &str = "role";
/// Node key holding the advertised HTTP `SocketAddr`.
const KEY_HTTP_ADDR: &str = "http_addr";
/// Node key set by [`Membership::leave`]; its presence hides the node.
const KEY_LEAVING: &str = "leaving";

/// How long chitchat keeps a dead node's state before forgetting it, and how
/// long deleted keys are kept as tombstones.
///
/// Long enough that every node has long declared the node dead before anyone
/// forgets it (otherwise a node that forgot could re-learn it from one that
/// has not). Short enough that the state of nodes replaced by restarts
/// (every restart is a new generation) does not pile up in digests:
/// chitchat stops gossiping a dead node after half this period.
const DEAD_NODE_GRACE_PERIOD: Duration = Duration::from_secs(60 * 60);

/// One live node, as seen by this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Unique node name (`NODE_NAME`); the identity used for hashing.
    pub name: String,
    /// What the node does; gateways route only to workers.
    #[serde(serialize_with = "serialize_role")]
    pub role: Role,
    /// Where the node's HTTP server is reachable by other nodes.
    pub http_addr: SocketAddr,
    /// Where the node gossips (for diagnostics, e.g. `/health`).
    pub gossip_addr: SocketAddr,
}

fn serialize_role<S: serde::Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

/// Everything [`Membership::start`] needs; built by the binary from its
/// command line and environment.
pub struct MembershipConfig {
    /// This node's unique name; restarts must keep it so they replace the
    /// old incarnation instead of appearing as a new member.
    pub name: String,
    /// This node's role, published to the cluster.
    pub role: Role,
    /// Local UDP address to bind (`GOSSIP_ADDR`). Port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// Address peers use to reach our gossip port (may differ from
    /// `listen_addr` behind NAT or when binding `0.0.0.0`). Port 0 means
    /// "the port actually bound". Must not be an unspecified IP.
    pub advertise_gossip: SocketAddr,
    /// Our HTTP address as other nodes must dial it. Must not be an
    /// unspecified IP.
    pub advertise_http: SocketAddr,
    /// Bootstrap peers, `host[:port]` (IPv6 as `[addr]:port` or a bare
    /// address). A missing port means our own advertised gossip port. A DNS
    /// name stands for all the addresses it resolves to; chitchat resolves
    /// it at start and again every 60 s, so seeds that come up later (a
    /// headless service filling in) are still found.
    pub seeds: Vec<String>,
    /// AEAD key for gossip datagrams (`ClusterKeys::gossip`).
    pub gossip_key: [u8; 32],
    /// Incremented for every gossip datagram dropped as unauthentic or
    /// undecodable; registered by the caller in its metrics registry.
    pub rejected_datagrams: Counter,
    /// Gossip round period, at most [`MAX_GOSSIP_INTERVAL`];
    /// [`DEFAULT_GOSSIP_INTERVAL`] in production, shorter in tests.
    pub gossip_interval: Duration,
}

/// Why membership could not start.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The gossip UDP port could not be bound (in use, no permission, no such
    /// local address).
    #[error("cannot bind gossip UDP socket to {addr}: {cause}")]
    Bind {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// What the OS said.
        cause: std::io::Error,
    },
    /// A seed is not `host[:port]`.
    #[error("invalid gossip seed {seed:?}: {reason}")]
    InvalidSeed {
        /// The seed as given.
        seed: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Some other setting cannot work (named in the message).
    #[error("invalid membership configuration: {0}")]
    InvalidConfig(String),
    /// chitchat failed to start (should not happen once the socket is bound).
    #[error("cannot start gossip: {0:#}")]
    Start(anyhow::Error),
}

/// A running membership: gossips in the background until [`Membership::leave`]
/// or drop.
///
/// Dropping it without `leave` stops gossip abruptly; peers then treat the
/// node as crashed and drop it after the failure-detection delay.
pub struct Membership {
    handle: ChitchatHandle,
    members_rx: watch::Receiver<Vec<Member>>,
    members_tx: Arc<watch::Sender<Vec<Member>>>,
    publisher: JoinHandle<()>,
    gossip_interval: Duration,
    left: AtomicBool,
    self_name: String,
}

/// The failure-detector settings; see the module doc for the arithmetic.
///
/// * `phi_threshold = 8`: dead after 8 mean intervals of silence.
/// * `initial_interval = 1 s`: the prior mean, i.e. the worst-case heartbeat
///   interval we accept at a 1 s gossip interval.
/// * `max_interval = 1 s`: longer gaps are not learned, which caps the mean
///   (and so the timeout, 8 s) no matter how irregular heartbeats get.
/// * `sampling_window_size = 5`: keeps the prior at half the weight, which
///   floors the timeout at 4 s so fast gossip cannot make it twitchy.
/// * `dead_node_grace_period = 1 h`: see [`DEAD_NODE_GRACE_PERIOD`].
fn failure_detector_config() -> FailureDetectorConfig {
    FailureDetectorConfig {
        phi_threshold: 8.0,
        sampling_window_size: 5,
        max_interval: Duration::from_secs(1),
        initial_interval: Duration::from_secs(1),
        dead_node_grace_period: DEAD_NODE_GRACE_PERIOD,
    }
}

/// Refuses settings that would break gossip or the failure-detection
/// budget, naming the value at fault.
fn validate(cfg: &MembershipConfig) -> Result<(), MembershipError> {
    if cfg.name.is_empty() {
        return Err(MembershipError::InvalidConfig(
            "node name is empty".to_string(),
        ));
    }
    if cfg.gossip_interval.is_zero() || cfg.gossip_interval > MAX_GOSSIP_INTERVAL {
        return Err(MembershipError::InvalidConfig(format!(
            "gossip interval {:?} must be > 0 and <= {:?} (failure detection budget)",
            cfg.gossip_interval, MAX_GOSSIP_INTERVAL
        )));
    }
    for (what, addr) in [
        ("advertised gossip", cfg.advertise_gossip),
        ("advertised HTTP", cfg.advertise_http),
    ] {
        if addr.ip().is_unspecified() {
            return Err(MembershipError::InvalidConfig(format!(
                "{what} address {addr} is unspecified; peers need a reachable IP"
            )));
        }
    }
    Ok(())
}

/// The gossip socket and the address it is bound to (the port may have
/// been 0).
async fn bind(
    listen_addr: SocketAddr,
) -> Result<(tokio::net::UdpSocket, SocketAddr), MembershipError> {
    let bind_error = |cause| MembershipError::Bind {
        addr: listen_addr,
        cause,
    };
    let socket = tokio::net::UdpSocket::bind(listen_addr)
        .await
        .map_err(bind_error)?;
    let bound = socket.local_addr().map_err(bind_error)?;
    Ok((socket, bound))
}

/// chitchat's settings: ours for failure detection, and a liveness
/// predicate that hides leaving or incomplete nodes.
fn chitchat_config(
    chitchat_id: ChitchatId,
    gossip_interval: Duration,
    listen_addr: SocketAddr,
    seed_nodes: Vec<String>,
) -> ChitchatConfig {
    ChitchatConfig {
        chitchat_id,
        cluster_id: CLUSTER_ID.to_string(),
        gossip_interval,
        listen_addr,
        seed_nodes,
        failure_detector_config: failure_detector_config(),
        marked_for_deletion_grace_period: DEAD_NODE_GRACE_PERIOD,
        catchup_callback: None,
        extra_liveness_predicate: Some(Box::new(|state: &NodeState| {
            state.get(KEY_LEAVING).is_none() && member_keys(state).is_some()
        })),
    }
}

impl Membership {
    /// Binds the gossip socket, publishes our keys and starts gossiping.
    ///
    /// Returns once the socket is bound; discovering peers happens in the
    /// background (watch [`Membership::watch`]). Errors are configuration
    /// problems the operator must fix, so they name the offending value.
    pub async fn start(cfg: MembershipConfig) -> Result<Membership, MembershipError> {
        validate(&cfg)?;
        let (socket, bound) = bind(cfg.listen_addr).await?;
        let mut advertise_gossip = cfg.advertise_gossip;
        if advertise_gossip.port() == 0 {
            advertise_gossip.set_port(bound.port());
        }
        let seeds = cfg
            .seeds
            .iter()
            .map(|seed| normalize_seed(seed, advertise_gossip.port()))
            .collect::<Result<Vec<_>, _>>()?;
        let generation_id = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let chitchat_id = ChitchatId::new(cfg.name.clone(), generation_id, advertise_gossip);
        let config = chitchat_config(chitchat_id, cfg.gossip_interval, bound, seeds);
        let initial_keys = vec![
            (KEY_ROLE.to_string(), cfg.role.as_str().to_string()),
            (KEY_HTTP_ADDR.to_string(), cfg.advertise_http.to_string()),
        ];
        let transport =
            SealedTransport::with_bound_socket(&cfg.gossip_key, cfg.rejected_datagrams, socket);
        let handle = spawn_chitchat(config, initial_keys, &transport)
            .await
            .map_err(MembershipError::Start)?;

        // Until chitchat's first round, the view is just us.
        let me = Member {
            name: cfg.name.clone(),
            role: cfg.role,
            http_addr: cfg.advertise_http,
            gossip_addr: advertise_gossip,
        };
        let (members_tx, members_rx) = watch::channel(vec![me]);
        let members_tx = Arc::new(members_tx);
        let live_nodes = handle.chitchat().lock().await.live_nodes_watcher();
        let publisher = tokio::spawn(publish_members(
            live_nodes,
            members_tx.clone(),
            handle.termination_watcher(),
        ));
        info!(
            name = %cfg.name,
            role = %cfg.role,
            gossip = %advertise_gossip,
            listen = %bound,
            http = %cfg.advertise_http,
            generation_id,
            "gossip membership started"
        );

        Ok(Membership {
            handle,
            members_rx,
            members_tx,
            publisher,
            gossip_interval: cfg.gossip_interval,
            left: AtomicBool::new(false),
            self_name: cfg.name,
        })
    }

    /// Live members including this node, sorted by name, one per name (the
    /// newest generation). Members that announced leaving or do not (yet)
    /// publish a valid role and HTTP address are left out, so every entry can
    /// be dialed.
    pub fn live_members(&self) -> Vec<Member> {
        self.members_rx.borrow().clone()
    }

    /// Live members with role [`Role::Worker`], sorted by name: the input to
    /// consistent hashing. Standalone nodes are not included; they serve
    /// their own requests and never receive forwarded ones.
    pub fn live_workers(&self) -> Vec<Member> {
        self.members_rx
            .borrow()
            .iter()
            .filter(|m| m.role == Role::Worker)
            .cloned()
            .collect()
    }

    /// A receiver that changes whenever [`Membership::live_members`] does
    /// (and only then), so watchers wake only on real change.
    pub fn watch(&self) -> watch::Receiver<Vec<Member>> {
        self.members_rx.clone()
    }

    /// Sets `key` to `value` in this node's gossip state (e.g. purge
    /// records, see [`super::purges`]).
    pub async fn publish(&self, key: &str, value: &str) {
        self.handle
            .with_chitchat(|chitchat| chitchat.self_node_state().set(key, value))
            .await;
    }

    /// Deletes `key` from this node's gossip state.
    pub async fn unpublish(&self, key: &str) {
        self.handle
            .with_chitchat(|chitchat| chitchat.self_node_state().delete(key))
            .await;
    }

    /// A receiver of the live nodes' whole states, changed on every key
    /// change anywhere in the cluster.
    pub async fn states(&self) -> watch::Receiver<BTreeMap<ChitchatId, NodeState>> {
        self.handle.chitchat().lock().await.live_nodes_watcher()
    }

    /// This node's name.
    pub fn self_name(&self) -> &str {
        &self.self_name
    }

    /// Every node gossip knows of, live or not, newest generation per
    /// name, sorted by name: the dashboard's member list. Dead nodes stay
    /// known for chitchat's grace period (an hour).
    pub async fn known_nodes(&self) -> Vec<KnownNode> {
        self.handle
            .with_chitchat(|chitchat| {
                let live: std::collections::HashSet<&ChitchatId> = chitchat.live_nodes().collect();
                let mut newest: BTreeMap<String, KnownNode> = BTreeMap::new();
                for (id, state) in chitchat.node_states() {
                    let node = known_node(id, state, live.contains(id));
                    match newest.get(&node.name) {
                        Some(n) if n.started_ms >= node.started_ms => {}
                        _ => {
                            newest.insert(node.name.clone(), node);
                        }
                    }
                }
                newest.into_values().collect()
            })
            .await
    }

    /// Announces that this node is leaving, waits two gossip rounds for the
    /// news to spread, then stops gossiping.
    ///
    /// Peers hide a leaving node as soon as they hear of it, so in-flight
    /// routing moves away before the process exits; without this they would
    /// keep sending to it until the failure detector fires (4-9 s). Peers
    /// that miss the announcement still drop the node by failure detection.
    /// Calling it twice is harmless.
    pub async fn leave(&self) {
        if self.left.swap(true, Ordering::SeqCst) {
            return;
        }
        self.handle
            .with_chitchat(|chitchat| chitchat.self_node_state().set(KEY_LEAVING, "true"))
            .await;
        // We are no longer a member: do not wait for the next round to say so.
        let name = self.self_name.clone();
        self.members_tx.send_if_modified(|members| {
            let before = members.len();
            members.retain(|m| m.name != name);
            members.len() != before
        });
        info!(name = %self.self_name, "leaving the cluster");
        tokio::time::sleep(self.gossip_interval * 2 + self.gossip_interval / 2).await;
        if let Err(err) = self.handle.initiate_shutdown() {
            warn!(error = %err, "gossip already stopped");
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Abrupt stop: the background tasks must not outlive the handle
        // (chitchat would otherwise keep gossiping until its next select).
        self.handle.abort();
        self.publisher.abort();
    }
}

/// Republishes chitchat's live-node set as our member list, only when the
/// list actually changes. chitchat notifies on joins, deaths and any key
/// change (a version bump), which includes the `leaving` announcement.
async fn publish_members(
    mut live_nodes: watch::Receiver<BTreeMap<ChitchatId, NodeState>>,
    members_tx: Arc<watch::Sender<Vec<Member>>>,
    terminated: impl std::future::Future<Output = anyhow::Result<()>>,
) {
    tokio::pin!(terminated);
    loop {
        tokio::select! {
            changed = live_nodes.changed() => {
                if changed.is_err() {
                    return;
                }
                let members = members_from_states(&live_nodes.borrow_and_update());
                members_tx.send_if_modified(|current| {
                    if *current == members {
                        false
                    } else {
                        *current = members;
                        true
                    }
                });
            }
            result = &mut terminated => {
                // Gossip stopped: on purpose after leave() (Ok), or because
                // the socket broke. Either way the view is frozen from now.
                if let Err(err) = result {
                    error!(error = %err, "gossip stopped; membership view is frozen");
                }
                return;
            }
        }
    }
}

/// The role and HTTP address a node publishes, if both are present and valid.
fn member_keys(state: &NodeState) -> Option<(Role, SocketAddr)> {
    let role = state.get(KEY_ROLE)?.parse::<Role>().ok()?;
    let http_addr = state.get(KEY_HTTP_ADDR)?.parse::<SocketAddr>().ok()?;
    Some((role, http_addr))
}

/// A node as gossip knows it, live or not (see [`Membership::known_nodes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownNode {
    pub name: String,
    /// `None` while the node has not published a valid role and address.
    pub role: Option<Role>,
    pub http_addr: Option<SocketAddr>,
    /// Start of this incarnation (its gossip generation), Unix ms.
    pub started_ms: u64,
    pub state: Liveness,
}

/// Where a known node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Heartbeating and serving: routed to.
    Live,
    /// Heartbeating, but announced it is leaving: no longer routed to.
    Leaving,
    /// Stopped after announcing it was leaving.
    Left,
    /// Silent without having said goodbye (crashed, cut off).
    Dead,
    /// Heartbeating but has not published its role and address yet.
    Joining,
}

impl Liveness {
    /// The name shown on the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Live => "live",
            Liveness::Leaving => "leaving",
            Liveness::Left => "left",
            Liveness::Dead => "dead",
            Liveness::Joining => "joining",
        }
    }
}

fn known_node(id: &ChitchatId, state: &NodeState, heartbeating: bool) -> KnownNode {
    let keys = member_keys(state);
    let leaving = state.get(KEY_LEAVING).is_some();
    let status = match (heartbeating, leaving, keys.is_some()) {
        (true, true, _) => Liveness::Leaving,
        (true, false, true) => Liveness::Live,
        (true, false, false) => Liveness::Joining,
        (false, true, _) => Liveness::Left,
        (false, false, _) => Liveness::Dead,
    };
    KnownNode {
        name: id.node_id.to_string(),
        role: keys.map(|(role, _)| role),
        http_addr: keys.map(|(_, addr)| addr),
        started_ms: id.generation_id,
        state: status,
    }
}

/// Builds the member list from chitchat's live nodes (already filtered by the
/// failure detector and the liveness predicate): newest generation per name,
/// sorted by name.
fn members_from_states(states: &BTreeMap<ChitchatId, NodeState>) -> Vec<Member> {
    let mut newest: BTreeMap<&str, (u64, Member)> = BTreeMap::new();
    for (id, state) in states {
        if state.get(KEY_LEAVING).is_some() {
            continue;
        }
        let Some((role, http_addr)) = member_keys(state) else {
            continue;
        };
        let member = Member {
            name: id.node_id.to_string(),
            role,
            http_addr,
            gossip_addr: id.gossip_advertise_addr,
        };
        match newest.get(&*id.node_id) {
            Some((generation, _)) if *generation >= id.generation_id => {}
            _ => {
                newest.insert(&id.node_id, (id.generation_id, member));
            }
        }
    }
    newest.into_values().map(|(_, m)| m).collect()
}

/// Turns `host[:port]` into what chitchat expects: a `SocketAddr` string, or
/// `host:port` for it to resolve (and re-resolve) through DNS.
fn normalize_seed(seed: &str, default_port: u16) -> Result<String, MembershipError> {
    let invalid = |reason: &str| MembershipError::InvalidSeed {
        seed: seed.to_string(),
        reason: reason.to_string(),
    };
    let s = seed.trim();
    if s.is_empty() {
        return Err(invalid("empty"));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr.to_string());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port).to_string());
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let ip = inner
            .parse::<IpAddr>()
            .map_err(|_| invalid("not an IPv6 address between brackets"))?;
        return Ok(SocketAddr::new(ip, default_port).to_string());
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| invalid("port is not a number between 0 and 65535"))?;
            (host, port)
        }
        None => (s, default_port),
    };
    if host.is_empty() || host.contains(':') || host.contains('[') || host.contains(']') {
        return Err(invalid("expected host[:port]"));
    }
    if port == 0 {
        return Err(invalid("port 0"));
    }
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::keys::ClusterKeys;
    use std::time::Instant;

    const ROUND: Duration = Duration::from_millis(100);

    fn config(name: &str, role: Role, secret: &str, seeds: Vec<String>) -> MembershipConfig {
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        MembershipConfig {
            name: name.to_string(),
            role,
            listen_addr: lo,
            advertise_gossip: lo,
            advertise_http: format!("127.0.0.1:{}", 8000 + name.len()).parse().unwrap(),
            seeds,
            gossip_key: ClusterKeys::derive(secret).gossip,
            rejected_datagrams: Counter::default(),
            gossip_interval: ROUND,
        }
    }

    fn gossip_addr(m: &Membership) -> SocketAddr {
        m.handle.chitchat_id().gossip_advertise_addr
    }

    fn names(m: &Membership) -> Vec<String> {
        m.live_members().into_iter().map(|m| m.name).collect()
    }

    /// Polls `cond` every 50 ms until it holds or `limit` passes; returns the
    /// time it took.
    async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if cond() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cond().then(|| start.elapsed())
    }

    /// Starts `a` (seed, gateway) plus `b` and `c` (workers) seeded by `a`;
    /// also returns each node's rejected-datagram counter.
    async fn three(secret: &str) -> (Membership, Membership, Membership, [Counter; 3]) {
        let cfg = config("a", Role::Gateway, secret, vec![]);
        let ra = cfg.rejected_datagrams.clone();
        let a = Membership::start(cfg).await.unwrap();
        let seed = vec![gossip_addr(&a).to_string()];
        let cfg = config("bb", Role::Worker, secret, seed.clone());
        let rb = cfg.rejected_datagrams.clone();
        let b = Membership::start(cfg).await.unwrap();
        let cfg = config("ccc", Role::Worker, secret, seed);
        let rc = cfg.rejected_datagrams.clone();
        let c = Membership::start(cfg).await.unwrap();
        (a, b, c, [ra, rb, rc])
    }

    async fn all_see(nodes: &[&Membership], expected: &[&str], limit: Duration) -> bool {
        wait_until(limit, || nodes.iter().all(|n| names(n) == expected))
            .await
            .is_some()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_members_find_each_other_through_one_seed() {
        let (a, b, c, _) = three("s3cret").await;
        assert!(
            all_see(&[&a, &b, &c], &["a", "bb", "ccc"], Duration::from_secs(5)).await,
            "views: {:?} {:?} {:?}",
            names(&a),
            names(&b),
            names(&c)
        );
        for n in [&a, &b, &c] {
            let members = n.live_members();
            assert_eq!(
                members,
                vec![
                    Member {
                        name: "a".into(),
                        role: Role::Gateway,
                        http_addr: "127.0.0.1:8001".parse().unwrap(),
                        gossip_addr: gossip_addr(&a),
                    },
                    Member {
                        name: "bb".into(),
                        role: Role::Worker,
                        http_addr: "127.0.0.1:8002".parse().unwrap(),
                        gossip_addr: gossip_addr(&b),
                    },
                    Member {
                        name: "ccc".into(),
                        role: Role::Worker,
                        http_addr: "127.0.0.1:8003".parse().unwrap(),
                        gossip_addr: gossip_addr(&c),
                    },
                ]
            );
            let workers: Vec<_> = n.live_workers().into_iter().map(|m| m.name).collect();
            assert_eq!(workers, ["bb", "ccc"]);
        }
        let json = serde_json::to_value(&a.live_members()[0]).unwrap();
        assert_eq!(json["role"], "gateway");
        assert_eq!(json["http_addr"], "127.0.0.1:8001");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn member_with_another_secret_never_appears() {
        let (a, b, c, rejects) = three("s3cret").await;
        assert!(all_see(&[&a, &b, &c], &["a", "bb", "ccc"], Duration::from_secs(5)).await);
        let before: Vec<u64> = rejects.iter().map(Counter::get).collect();
        assert_eq!(before, [0, 0, 0], "same-secret traffic is never rejected");

        // The intruder knows every member's address (and is a seed of none).
        let cfg = config(
            "zz-intruder",
            Role::Worker,
            "wrong",
            [&a, &b, &c]
                .iter()
                .map(|n| gossip_addr(n).to_string())
                .collect(),
        );
        let outsider_rejects = cfg.rejected_datagrams.clone();
        let outsider = Membership::start(cfg).await.unwrap();

        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            for n in [&a, &b, &c] {
                assert_eq!(names(n), ["a", "bb", "ccc"]);
            }
            assert_eq!(names(&outsider), ["zz-intruder"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Every member dropped and counted the intruder's SYNs (it gossips
        // with its seeds every round).
        for (counter, name) in rejects.iter().zip(["a", "bb", "ccc"]) {
            assert!(counter.get() >= 3, "{name} counted {}", counter.get());
        }
        // Nobody could open its SYNs, so nobody answered: nothing came back.
        assert_eq!(outsider_rejects.get(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leave_removes_node_quickly() {
        let (a, b, c, _) = three("s3cret").await;
        assert!(all_see(&[&a, &b, &c], &["a", "bb", "ccc"], Duration::from_secs(5)).await);
        let mut watch_a = a.watch();
        watch_a.borrow_and_update();

        let start = Instant::now();
        c.leave().await;
        assert_eq!(names(&c), ["a", "bb"], "a leaving node drops itself");
        let took = wait_until(Duration::from_secs(2), || {
            names(&a) == ["a", "bb"] && names(&b) == ["a", "bb"]
        })
        .await;
        eprintln!("leave propagated in {:?}", start.elapsed());
        assert!(took.is_some(), "{:?} {:?}", names(&a), names(&b));
        assert!(watch_a.has_changed().unwrap(), "watchers are notified");
        assert_eq!(a.live_workers().len(), 1);
        // Leaving twice is a no-op.
        c.leave().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_node_disappears_within_ten_seconds() {
        let (a, b, c, _) = three("s3cret").await;
        assert!(all_see(&[&a, &b, &c], &["a", "bb", "ccc"], Duration::from_secs(5)).await);
        // Let the failure detector learn real intervals first.
        tokio::time::sleep(Duration::from_secs(1)).await;

        drop(c); // abrupt stop, no announcement: like SIGKILL
        let took = wait_until(Duration::from_secs(10), || {
            names(&a) == ["a", "bb"] && names(&b) == ["a", "bb"]
        })
        .await;
        eprintln!("dead node disappeared after {took:?}");
        let took = took.expect("dead node still listed after 10 s");
        assert!(
            took >= Duration::from_secs(3),
            "suspiciously fast: {took:?}"
        );
    }

    /// Measures detection time and checks for flapping at production gossip
    /// intervals. Slow (about a minute), so not part of the default run:
    /// `cargo test --lib membership -- --ignored --nocapture`, ideally with
    /// the machine loaded (e.g. two `yes > /dev/null`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn production_intervals_detect_within_budget_without_flapping() {
        for interval in [DEFAULT_GOSSIP_INTERVAL, MAX_GOSSIP_INTERVAL] {
            let start = |name: &str, role, seeds| {
                let mut cfg = config(name, role, "s3cret", seeds);
                cfg.gossip_interval = interval;
                Membership::start(cfg)
            };
            let a = start("a", Role::Gateway, vec![]).await.unwrap();
            let seed = vec![gossip_addr(&a).to_string()];
            let b = start("bb", Role::Worker, seed.clone()).await.unwrap();
            let c = start("ccc", Role::Worker, seed).await.unwrap();
            assert!(all_see(&[&a, &b, &c], &["a", "bb", "ccc"], Duration::from_secs(10)).await);

            // No flapping: the view must not change at all for 20 s.
            let mut wa = a.watch();
            let mut wb = b.watch();
            wa.borrow_and_update();
            wb.borrow_and_update();
            tokio::time::sleep(Duration::from_secs(20)).await;
            assert!(
                !wa.has_changed().unwrap() && !wb.has_changed().unwrap(),
                "flapped"
            );

            drop(c);
            let took = wait_until(Duration::from_secs(10), || {
                names(&a) == ["a", "bb"] && names(&b) == ["a", "bb"]
            })
            .await;
            eprintln!("gossip interval {interval:?}: dead node gone after {took:?}");
            assert!(took.is_some(), "not gone within 10 s");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restart_with_same_name_replaces_old_generation() {
        let (a, b, c, _) = three("s3cret").await;
        assert!(all_see(&[&a, &b, &c], &["a", "bb", "ccc"], Duration::from_secs(5)).await);
        let old_addr = gossip_addr(&c);
        drop(c);
        // Generation ids are start times in ms: make sure they differ.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut cfg = config(
            "ccc",
            Role::Worker,
            "s3cret",
            vec![gossip_addr(&a).to_string()],
        );
        cfg.advertise_http = "127.0.0.1:9999".parse().unwrap();
        let c2 = Membership::start(cfg).await.unwrap();
        let new_addr = gossip_addr(&c2);
        assert_ne!(old_addr, new_addr);

        // Well before the old incarnation could time out (>= 4 s), the new
        // one has replaced it and the name is listed once.
        let took = wait_until(Duration::from_secs(3), || {
            [&a, &b].iter().all(|n| {
                let m = n.live_members();
                m.len() == 3
                    && m[2].name == "ccc"
                    && m[2].gossip_addr == new_addr
                    && m[2].http_addr.port() == 9999
            })
        })
        .await;
        assert!(took.is_some(), "{:?}", a.live_members());
    }

    #[tokio::test]
    async fn bind_failure_names_the_address() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let mut cfg = config("a", Role::Worker, "s", vec![]);
        cfg.listen_addr = addr;
        let err = Membership::start(cfg).await.err().expect("port is taken");
        assert!(matches!(err, MembershipError::Bind { .. }));
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[tokio::test]
    async fn bad_settings_are_rejected() {
        let mut cfg = config("a", Role::Worker, "s", vec![]);
        cfg.gossip_interval = Duration::from_secs(2);
        assert!(matches!(
            Membership::start(cfg).await,
            Err(MembershipError::InvalidConfig(_))
        ));
        let mut cfg = config("a", Role::Worker, "s", vec![]);
        cfg.advertise_gossip = "0.0.0.0:7946".parse().unwrap();
        assert!(matches!(
            Membership::start(cfg).await,
            Err(MembershipError::InvalidConfig(_))
        ));
        let cfg = config("a", Role::Worker, "s", vec!["host:notaport".into()]);
        assert!(matches!(
            Membership::start(cfg).await,
            Err(MembershipError::InvalidSeed { .. })
        ));
    }

    #[test]
    fn membership_can_be_shared_across_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Membership>();
    }

    #[test]
    fn seeds_are_normalized() {
        let n = |s: &str| normalize_seed(s, 7946);
        assert_eq!(n("10.0.0.1").unwrap(), "10.0.0.1:7946");
        assert_eq!(n("10.0.0.1:1234").unwrap(), "10.0.0.1:1234");
        assert_eq!(n(" ::1 ").unwrap(), "[::1]:7946");
        assert_eq!(n("[::1]").unwrap(), "[::1]:7946");
        assert_eq!(n("[::1]:99").unwrap(), "[::1]:99");
        assert_eq!(n("workers.svc").unwrap(), "workers.svc:7946");
        assert_eq!(n("workers.svc:1234").unwrap(), "workers.svc:1234");
        for bad in [
            "",
            "host:",
            "host:99999",
            "host:0",
            ":7946",
            "[::1",
            "a:b:c:zz",
        ] {
            assert!(n(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn newest_generation_wins_and_incomplete_or_leaving_nodes_are_hidden() {
        let id = |name: &str, generation: u64, port: u16| {
            ChitchatId::new(name, generation, ([127, 0, 0, 1], port).into())
        };
        let state = |role: &str, http: &str| {
            let mut s = NodeState::for_test();
            s.set(KEY_ROLE, role);
            s.set(KEY_HTTP_ADDR, http);
            s
        };
        let mut leaving = state("worker", "127.0.0.1:81");
        leaving.set(KEY_LEAVING, "true");
        let mut deleted_role = state("worker", "127.0.0.1:82");
        deleted_role.delete(KEY_ROLE);

        let mut states = BTreeMap::new();
        states.insert(id("w", 2, 2), state("worker", "127.0.0.1:2"));
        states.insert(id("w", 1, 1), state("worker", "127.0.0.1:1"));
        states.insert(id("w", 3, 3), state("bogus", "127.0.0.1:3")); // newest, but invalid
        states.insert(id("g", 1, 4), state("gateway", "127.0.0.1:4"));
        states.insert(id("left", 1, 5), leaving);
        states.insert(id("norole", 1, 6), deleted_role);
        states.insert(id("nohttp", 1, 7), state("worker", "not an address"));
        states.insert(id("empty", 1, 8), NodeState::for_test());

        let members = members_from_states(&states);
        assert_eq!(
            members,
            vec![
                Member {
                    name: "g".into(),
                    role: Role::Gateway,
                    http_addr: "127.0.0.1:4".parse().unwrap(),
                    gossip_addr: "127.0.0.1:4".parse().unwrap(),
                },
                Member {
                    name: "w".into(),
                    role: Role::Worker,
                    http_addr: "127.0.0.1:2".parse().unwrap(),
                    gossip_addr: "127.0.0.1:2".parse().unwrap(),
                },
            ]
        );
        assert!(members_from_states(&BTreeMap::new()).is_empty());
    }
}
