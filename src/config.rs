//! Configuration: every setting is both an environment variable and a flag.
//!
//! Containers are configured through the environment and people at a shell
//! through flags, so each setting is declared once here with clap's `env`
//! support and shows up, with its default, in `--help`. Values are parsed
//! and validated at start-up: a node that would misbehave later because of a
//! typo in `CACHE_TTL` refuses to start instead, naming the variable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::cluster::{node_name, Role};
use crate::edge::presets::Presets;
use crate::edge::signature::SigningKeys;
use crate::edge::sources::AllowedSources;
use crate::edge::{fd_limit, EdgePolicy};

/// Command line of the `img-proxy` binary.
#[derive(Debug, Parser)]
#[command(
    name = "img-proxy",
    version,
    about = "A distributed image cache proxy: gateways route image URLs by consistent hashing to the workers that fetch, transform and cache them.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to run; with no subcommand, a standalone node.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings for the default (standalone) node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The roles of the one binary, plus its command-line front end to the
/// image pipeline.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gateway and worker in one process, no gossip: the easy first run.
    Standalone(NodeArgs),
    /// Accepts user requests and forwards each to the worker that owns its URL.
    Gateway(NodeArgs),
    /// Fetches, transforms and caches images for the gateways.
    Worker(NodeArgs),
    /// Resizes/converts image files with exactly the worker's pipeline
    /// (batch thumbnails: several inputs use every core).
    Transform(crate::pipeline::cli::TransformArgs),
    /// Exits 0 when a URL answers 2xx, 1 otherwise: the image's healthcheck
    /// (`img-proxy probe http://127.0.0.1:8080/ready`), no curl needed.
    Probe(ProbeArgs),
    /// Compares SHA-256 mod N with our rendezvous hashing on synthetic
    /// URLs: spread over workers and keys moved when one joins or leaves.
    Placement(crate::cluster::placement_demo::PlacementArgs),
    /// Prints a signed `/image` path for a source URL and options
    /// (e.g. `img-proxy sign --key K https://example.com/a.jpg w=300 format=webp`).
    Sign(crate::edge::sign_cli::SignArgs),
    /// Asks a gateway for every URL of a list (one per line) to fill the
    /// caches before traffic arrives, with progress and a summary
    /// (e.g. `img-proxy warm urls.txt --gateway http://localhost:8080 w=300`).
    Warm(crate::warm::WarmArgs),
    /// Internal: decodes one AVIF from stdin to raw pixels on stdout. The
    /// workers run it as a child process so that a crash of the AV1
    /// decoder on hostile input cannot take the worker down.
    #[cfg(feature = "avif-decode")]
    #[command(name = "__decode-avif", hide = true)]
    DecodeAvif(crate::pipeline::avif::child::DecodeAvifArgs),
}

/// Arguments of `img-proxy probe` (see [`crate::probe`]).
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to ask, e.g. http://127.0.0.1:8080/ready.
    pub url: String,

    /// Give up after this long (accepts `500ms`, `2s`).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Settings shared by every role. Each is an environment variable (the
/// upper-case name) and a `--flag`.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// HTTP listen address.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Gossip (UDP) listen address.
    #[arg(long, env = "GOSSIP_ADDR", default_value = "0.0.0.0:7946")]
    pub gossip_addr: SocketAddr,

    /// The IP other nodes use to reach this node's HTTP and gossip ports
    /// [default: the bind IP if specific, else the first non-loopback interface address].
    #[arg(long, env = "ADVERTISE_ADDR")]
    pub advertise_addr: Option<IpAddr>,

    /// Comma-separated gossip seeds `host[:port]`; a DNS name counts for all its
    /// addresses; joining retries until it succeeds.
    #[arg(long, env = "KNOWN_HOSTS", value_delimiter = ',', default_value = "")]
    pub known_hosts: Vec<String>,

    /// Shared secret that authenticates and encrypts gossip and authenticates
    /// gateway-to-worker requests. Required for `gateway` and `worker`.
    #[arg(long, env = "CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,

    /// Node name, unique in the cluster [default: host name; in a Docker
    /// container named by its id, the container's name].
    #[arg(long, env = "NAME")]
    pub name: Option<String>,

    /// Worker cache budget in bytes (accepts `512MiB`, `2GiB`, plain bytes).
    #[arg(long, env = "CACHE_MAX_BYTES", default_value = "256MiB", value_parser = parse_bytes)]
    pub cache_max_bytes: u64,

    /// How long a cache entry may be served (accepts `30s`, `10m`, `1h`, `7d`).
    #[arg(long, env = "CACHE_TTL", default_value = "1h", value_parser = parse_duration)]
    pub cache_ttl: Duration,

    /// How long after expiry (`CACHE_TTL`) an entry may still be served,
    /// marked `X-Cache: STALE`, while it is revalidated in the background
    /// or while its origin is down (`0s`: never).
    #[arg(long, env = "STALE_TTL", default_value = "1d", value_parser = parse_duration)]
    pub stale_ttl: Duration,

    /// Directory of the worker's disk cache tier (it must exist and be
    /// writable); empty: memory only. Entries there survive restarts.
    #[arg(long, env = "CACHE_DIR", default_value = "")]
    pub cache_dir: String,

    /// Disk cache budget (the cache files never exceed it).
    #[arg(long, env = "CACHE_DISK_BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    pub cache_disk_bytes: u64,

    /// Worker: on SIGTERM, time spent handing cached entries (most recently
    /// used first) to the workers that own them next; `0` disables it. At
    /// most 7s, within the 9 s shutdown deadline.
    #[arg(long, env = "HANDOFF_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub handoff_timeout: Duration,
    /// Gateway cache of hot images (asked for repeatedly), in bytes; `0`
    /// disables it. Ignored by standalone nodes, whose worker cache is in
    /// the process already.
    #[arg(long, env = "GATEWAY_CACHE_BYTES", default_value = "64MiB", value_parser = parse_bytes)]
    pub gateway_cache_bytes: u64,

    /// Bearer token that enables `DELETE /image` (purge) on gateways;
    /// unset: purge is disabled (403).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Largest origin body accepted.
    #[arg(long, env = "MAX_SOURCE_BYTES", default_value = "20MiB", value_parser = parse_bytes)]
    pub max_source_bytes: u64,

    /// Whole origin fetch deadline, redirects included.
    #[arg(long, env = "FETCH_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub fetch_timeout: Duration,

    /// Redirects followed, each re-checked against the address policy.
    #[arg(long, env = "MAX_REDIRECTS", default_value_t = 5)]
    pub max_redirects: u32,

    /// Comma-separated CIDRs exempted from the private-address block
    /// (e.g. `127.0.0.2/32` for a known internal origin).
    #[arg(long, env = "ALLOWED_SOURCE_NETWORKS", value_delimiter = ',', default_value = "", value_parser = parse_network)]
    pub allowed_source_networks: Vec<Option<IpNet>>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Largest source image accepted for transformation, in pixels (checked
    /// from the header, before decoding).
    #[arg(long, env = "MAX_SOURCE_PIXELS", default_value_t = 50_000_000)]
    pub max_source_pixels: u64,

    /// Most frames an animated source may declare; more is refused (422)
    /// from the header, so hostile files cannot make even the frame walk
    /// expensive.
    #[arg(long, env = "MAX_ANIMATION_FRAMES", default_value_t = crate::pipeline::transform::DEFAULT_MAX_FRAMES)]
    pub max_animation_frames: u32,

    /// Transformations allowed to wait for a CPU; beyond that, 503 with
    /// `Retry-After`.
    #[arg(long, env = "MAX_QUEUE", default_value_t = 64)]
    pub max_queue: usize,

    /// How long an accepted transformation may wait for a CPU; past it,
    /// 503 with `Retry-After` (the queue bounds how many wait, this how
    /// long). At most 30s, so that it ends before a gateway gives up on
    /// the worker (`FETCH_TIMEOUT` + 30 s).
    #[arg(long, env = "QUEUE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub queue_timeout: Duration,

    /// Deadline for a client to send a complete request head after
    /// connecting; slower connections are closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// How long a client connection may stay idle between requests.
    #[arg(long, env = "KEEP_ALIVE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,

    /// Most client connections open at once; at the cap the connection that
    /// has waited longest for a request head is closed
    /// [default: the descriptor limit (RLIMIT_NOFILE) minus a quarter, at least 256, kept for other sockets].
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Threads that serve HTTP, gossip and the calls between nodes; image
    /// work has a pool of its own (one thread per CPU). At most 1024
    /// [default: the number of CPUs].
    #[arg(long, env = "IO_THREADS")]
    pub io_threads: Option<usize>,

    /// Comma-separated keys for signed URLs; when set, `/image` requires a
    /// valid `sig` (any key verifies, for rotation). Each at least 16 characters.
    #[arg(
        long,
        env = "URL_SIGNING_KEYS",
        value_delimiter = ',',
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub url_signing_keys: Vec<String>,

    /// Comma-separated source host patterns (`images.example.com`,
    /// `*.cdn.example.com`); when set, any other host is refused (403).
    #[arg(
        long,
        env = "ALLOWED_SOURCES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub allowed_sources: Vec<String>,

    /// Named option sets for `preset=NAME`, e.g.
    /// `thumb=w:300,h:300,fit:cover;avatar=w:64,h:64,fit:cover,format:webp`.
    #[arg(long, env = "PRESETS", default_value = "")]
    pub presets: String,

    /// Refuse (400) any image option outside a preset.
    #[arg(long, env = "ONLY_PRESETS", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub only_presets: bool,

    /// Gateways answer `/image` with `Accept-CH` and use the `Sec-CH-Width`,
    /// `Width`, `Sec-CH-DPR`, `DPR` and `Save-Data` request headers when the
    /// URL gives no `w` or `dpr` (bucketed; see the README).
    #[arg(long, env = "CLIENT_HINTS", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub client_hints: bool,

    /// Most `/image` requests a gateway answers at once; beyond, 503 with
    /// `Retry-After` at once.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 512)]
    pub max_in_flight: usize,

    /// Origin fetches a worker runs at once; beyond, 503 with `Retry-After`.
    #[arg(long, env = "MAX_ORIGIN_FETCHES", default_value_t = 64)]
    pub max_origin_fetches: usize,

    /// Fetches from one origin host a worker runs at once, so one slow host
    /// cannot hold every fetch slot; beyond, 503 with `Retry-After`.
    #[arg(long, env = "MAX_FETCHES_PER_HOST", default_value_t = 8)]
    pub max_fetches_per_host: usize,

    /// How often a node gossips with a peer; failure detection scales with it.
    #[arg(long, env = "GOSSIP_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub gossip_interval: Duration,
}

/// Everything a node needs, validated: what `NodeArgs` becomes once the role
/// is known and defaults that depend on the machine are filled in.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    pub name: String,
    pub http_addr: SocketAddr,
    pub gossip_addr: SocketAddr,
    pub advertise_ip: IpAddr,
    pub known_hosts: Vec<String>,
    pub cluster_secret: Option<String>,
    pub cache_max_bytes: u64,
    pub cache_ttl: Duration,
    /// Stale window after `cache_ttl` (`STALE_TTL`).
    pub stale_ttl: Duration,
    /// `None`: memory only.
    pub cache_dir: Option<std::path::PathBuf>,
    pub cache_disk_bytes: u64,
    /// Hand-off budget on SIGTERM; zero: no hand-off.
    pub handoff_timeout: Duration,
    /// 0: no gateway cache (always 0 on a standalone node).
    pub gateway_cache_bytes: u64,
    /// `None`: purge disabled.
    pub admin_token: Option<String>,
    pub max_source_bytes: u64,
    pub fetch_timeout: Duration,
    pub max_redirects: u32,
    pub allowed_source_networks: Vec<IpNet>,
    pub json_logs: bool,
    pub gossip_interval: Duration,
    pub max_source_pixels: u64,
    pub max_animation_frames: u32,
    pub max_queue: usize,
    pub queue_timeout: Duration,
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    /// `IO_THREADS`: the async runtime's worker threads.
    pub io_threads: usize,
    pub edge: EdgePolicy,
    pub max_origin_fetches: usize,
    pub max_fetches_per_host: usize,
    /// `CLIENT_HINTS` (gateways).
    pub client_hints: bool,
}

/// A setting that parses but cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "CLUSTER_SECRET is required for the {0} role (set CLUSTER_SECRET or --cluster-secret)"
    )]
    MissingSecret(Role),
    #[error("CLUSTER_SECRET must be at least 16 characters")]
    WeakSecret,
    #[error("NAME is empty and the host name could not be read; set NAME")]
    NoName,
    #[error("ADVERTISE_ADDR is not set and no non-loopback interface address was found; set ADVERTISE_ADDR")]
    NoAdvertiseAddr,
    #[error("CACHE_DISK_BYTES must be at least 4MiB")]
    DiskTooSmall,
    #[error(transparent)]
    CacheDir(#[from] crate::worker::disk::DiskError),
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("GOSSIP_INTERVAL must be at most 1s, so that dead nodes leave every view within 10 s")]
    GossipTooSlow,
    #[error("HANDOFF_TIMEOUT must be at most 7s, to fit the 9 s shutdown deadline")]
    HandoffTooLong,
    #[error("QUEUE_TIMEOUT must be at most 30s, to end before a gateway gives up on the worker")]
    QueueTimeoutTooLong,
    #[error("ADVERTISE_ADDR {0} is unspecified; other nodes need an address they can reach")]
    UnspecifiedAdvertise(IpAddr),
    #[error("{0}")]
    Edge(String),
    #[error("IO_THREADS {0} is more than {MAX_IO_THREADS}")]
    TooManyIoThreads(usize),
    #[error("MAX_CONNECTIONS {max} leaves too few of the {limit} file descriptors (RLIMIT_NOFILE) for origin, worker and gossip sockets; use at most {most} or raise the limit")]
    TooManyConnections { max: usize, limit: u64, most: u64 },
}

/// Longest `HANDOFF_TIMEOUT`: the hand-off runs inside the shutdown
/// deadline (9 s), after which the disk tier gets its last writes.
const MAX_HANDOFF_TIMEOUT: Duration = Duration::from_secs(7);

/// Longest `QUEUE_TIMEOUT`: a gateway waits `FETCH_TIMEOUT` + 30 s for a
/// worker's fill, so a longer wait for a CPU would be answered to no one.
const MAX_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

impl NodeArgs {
    /// Durations that must stay under a bound another part relies on: the
    /// failure detector's interval, the hand-off within the shutdown
    /// deadline, the queue wait within the gateway's fill deadline.
    fn check_upper_bounds(&self) -> Result<(), ConfigError> {
        if self.gossip_interval > Duration::from_secs(1) {
            return Err(ConfigError::GossipTooSlow);
        }
        if self.handoff_timeout > MAX_HANDOFF_TIMEOUT {
            return Err(ConfigError::HandoffTooLong);
        }
        if self.queue_timeout > MAX_QUEUE_TIMEOUT {
            return Err(ConfigError::QueueTimeoutTooLong);
        }
        Ok(())
    }

    /// `CLUSTER_SECRET`: required by gateways and workers, at least 16
    /// bytes when given; empty counts as unset.
    fn cluster_secret(&self, role: Role) -> Result<Option<String>, ConfigError> {
        let secret = self.cluster_secret.clone().filter(|s| !s.is_empty());
        match (&secret, role) {
            (None, Role::Gateway | Role::Worker) => Err(ConfigError::MissingSecret(role)),
            (Some(s), _) if s.len() < 16 => Err(ConfigError::WeakSecret),
            _ => Ok(secret),
        }
    }

    /// `CACHE_DIR`, checked usable (with a large enough `CACHE_DISK_BYTES`)
    /// by the roles that keep a cache; empty counts as unset.
    fn cache_dir(&self, role: Role) -> Result<Option<std::path::PathBuf>, ConfigError> {
        let cache_dir = Some(self.cache_dir.clone())
            .filter(|d| !d.trim().is_empty())
            .map(std::path::PathBuf::from);
        if let (Some(dir), Role::Worker | Role::Standalone) = (&cache_dir, role) {
            if self.cache_disk_bytes < crate::worker::disk::MIN_DISK_BYTES {
                return Err(ConfigError::DiskTooSmall);
            }
            crate::worker::disk::check_dir(dir)?;
        }
        Ok(cache_dir)
    }

    /// The address other nodes reach us at: `ADVERTISE_ADDR`, else the
    /// address `HTTP_ADDR` binds, else (bound to every interface) the one
    /// on the route to the first seed, else the first non-loopback
    /// interface's.
    fn advertise_ip(&self, role: Role) -> Result<IpAddr, ConfigError> {
        Ok(match self.advertise_addr {
            Some(ip) if ip.is_unspecified() => return Err(ConfigError::UnspecifiedAdvertise(ip)),
            Some(ip) => ip,
            None if self.http_addr.ip().is_unspecified() => match route_to_seeds(&self.known_hosts)
            {
                Some(ip) => ip,
                None => default_advertise_ip(self.http_addr.ip(), role)?,
            },
            None => self.http_addr.ip(),
        })
    }

    /// Validates the arguments for `role` and fills machine-dependent defaults.
    pub fn into_config(self, role: Role) -> Result<Config, ConfigError> {
        self.check_not_zero()?;
        self.check_upper_bounds()?;
        let cluster_secret = self.cluster_secret(role)?;
        let cache_dir = self.cache_dir(role)?;
        let max_connections = max_connections(self.max_connections)?;
        let edge = EdgePolicy {
            signing: SigningKeys::parse(&self.url_signing_keys).map_err(ConfigError::Edge)?,
            sources: AllowedSources::parse(&self.allowed_sources).map_err(ConfigError::Edge)?,
            presets: Presets::parse(&self.presets, self.only_presets).map_err(ConfigError::Edge)?,
            max_in_flight: self.max_in_flight,
        };
        let advertise_ip = self.advertise_ip(role)?;
        let name = match self.name.filter(|n| !n.trim().is_empty()) {
            Some(n) => n.trim().to_string(),
            None => node_name::default_name(advertise_ip).ok_or(ConfigError::NoName)?,
        };
        Ok(Config {
            role,
            name,
            http_addr: self.http_addr,
            gossip_addr: self.gossip_addr,
            advertise_ip,
            known_hosts: self
                .known_hosts
                .into_iter()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
            cluster_secret,
            cache_max_bytes: self.cache_max_bytes,
            cache_ttl: self.cache_ttl,
            stale_ttl: self.stale_ttl,
            cache_dir,
            cache_disk_bytes: self.cache_disk_bytes,
            handoff_timeout: self.handoff_timeout,
            gateway_cache_bytes: match role {
                Role::Gateway => self.gateway_cache_bytes,
                _ => 0,
            },
            admin_token: self.admin_token.filter(|t| !t.is_empty()),
            max_source_bytes: self.max_source_bytes,
            fetch_timeout: self.fetch_timeout,
            max_redirects: self.max_redirects,
            allowed_source_networks: self.allowed_source_networks.into_iter().flatten().collect(),
            json_logs: self.log_format == "json",
            gossip_interval: self.gossip_interval,
            max_source_pixels: self.max_source_pixels,
            max_animation_frames: self.max_animation_frames,
            max_queue: self.max_queue,
            queue_timeout: self.queue_timeout,
            header_read_timeout: self.header_read_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
            max_connections,
            io_threads: io_threads(self.io_threads)?,
            edge,
            max_origin_fetches: self.max_origin_fetches,
            max_fetches_per_host: self.max_fetches_per_host,
            client_hints: self.client_hints,
        })
    }
}

impl NodeArgs {
    /// Settings for which zero means nothing sensible (an empty cache, a
    /// deadline already passed, no slot for any work): each is refused by
    /// name rather than accepted and failing later.
    fn check_not_zero(&self) -> Result<(), ConfigError> {
        not_zero("CACHE_MAX_BYTES", self.cache_max_bytes)?;
        not_zero_time("CACHE_TTL", self.cache_ttl)?;
        not_zero("MAX_SOURCE_BYTES", self.max_source_bytes)?;
        not_zero_time("FETCH_TIMEOUT", self.fetch_timeout)?;
        not_zero_time("QUEUE_TIMEOUT", self.queue_timeout)?;
        not_zero_time("GOSSIP_INTERVAL", self.gossip_interval)?;
        not_zero("MAX_SOURCE_PIXELS", self.max_source_pixels)?;
        not_zero("MAX_ANIMATION_FRAMES", u64::from(self.max_animation_frames))?;
        not_zero_time("HEADER_READ_TIMEOUT", self.header_read_timeout)?;
        not_zero_time("KEEP_ALIVE_TIMEOUT", self.keep_alive_timeout)?;
        not_zero("MAX_ORIGIN_FETCHES", self.max_origin_fetches as u64)?;
        not_zero("MAX_FETCHES_PER_HOST", self.max_fetches_per_host as u64)?;
        not_zero("MAX_IN_FLIGHT", self.max_in_flight as u64)
    }
}

fn not_zero(name: &'static str, value: u64) -> Result<(), ConfigError> {
    match value {
        0 => Err(ConfigError::Zero(name)),
        _ => Ok(()),
    }
}

fn not_zero_time(name: &'static str, value: Duration) -> Result<(), ConfigError> {
    match value.is_zero() {
        true => Err(ConfigError::Zero(name)),
        false => Ok(()),
    }
}

/// Most `IO_THREADS`: far more than any machine's CPUs, so a larger value
/// is a typo, not a choice.
const MAX_IO_THREADS: usize = 1024;

/// The CPUs this process may use (1 if that cannot be read): the default
/// of `IO_THREADS` and the size of the image pool.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `IO_THREADS`, or one per CPU.
fn io_threads(explicit: Option<usize>) -> Result<usize, ConfigError> {
    match explicit {
        None => Ok(cpus()),
        Some(0) => Err(ConfigError::Zero("IO_THREADS")),
        Some(n) if n > MAX_IO_THREADS => Err(ConfigError::TooManyIoThreads(n)),
        Some(n) => Ok(n),
    }
}

/// `MAX_CONNECTIONS`, or its default from the descriptor limit; an explicit
/// value must leave [`fd_limit::HARD_RESERVE`] descriptors free.
fn max_connections(explicit: Option<usize>) -> Result<usize, ConfigError> {
    let Some(max) = explicit else {
        return Ok(fd_limit::default_max_connections());
    };
    if max == 0 {
        return Err(ConfigError::Zero("MAX_CONNECTIONS"));
    }
    if let Some(limit) = fd_limit::descriptor_limit() {
        let most = limit.saturating_sub(fd_limit::HARD_RESERVE);
        if max as u64 > most {
            return Err(ConfigError::TooManyConnections { max, limit, most });
        }
    }
    Ok(max)
}

/// The bind IP when it names one interface; otherwise the first
/// non-loopback interface address, which is what peers on the same network
/// can reach. A standalone node never gossips, so any answer will do there.
/// The local address on the way to the first seed (`KNOWN_HOSTS`, in
/// order) that resolves to an address other than our own: on a node with
/// several networks (a compose gateway is on the load balancer's and the
/// workers'), the one the cluster is on. Asking the kernel for the route
/// (a UDP socket connected to the seed; nothing is sent) avoids guessing
/// from interface order, which Docker does not keep stable.
fn route_to_seeds(known_hosts: &[String]) -> Option<IpAddr> {
    let own: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    known_hosts
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .flat_map(|h| {
            let with_port = match h.rsplit_once(':') {
                Some((_, port)) if port.parse::<u16>().is_ok() => h.to_string(),
                _ => format!("{h}:1"),
            };
            std::net::ToSocketAddrs::to_socket_addrs(&with_port)
                .map(|addrs| addrs.collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .filter(|seed| !own.contains(&seed.ip()))
        .find_map(|seed| {
            let any: IpAddr = match seed {
                SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
            };
            let socket = std::net::UdpSocket::bind((any, 0)).ok()?;
            socket.connect(seed).ok()?;
            Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
        })
}

fn default_advertise_ip(bind: IpAddr, role: Role) -> Result<IpAddr, ConfigError> {
    if !bind.is_unspecified() {
        return Ok(bind);
    }
    let found = if_addrs::get_if_addrs().ok().and_then(|ifs| {
        let mut addrs: Vec<IpAddr> = ifs
            .into_iter()
            .filter(|i| !i.is_loopback())
            .map(|i| i.ip())
            .collect();
        // Prefer IPv4: compose networks and most LANs route it.
        addrs.sort_by_key(|ip| ip.is_ipv6());
        addrs.into_iter().next()
    });
    match (found, role) {
        (Some(ip), _) => Ok(ip),
        (None, Role::Standalone) => Ok(IpAddr::from([127, 0, 0, 1])),
        (None, _) => Err(ConfigError::NoAdvertiseAddr),
    }
}

/// Parses `512MiB`, `2GiB`, `10MB`, `1024` (bytes). IEC units (KiB, MiB,
/// GiB, TiB) are powers of 1024 and SI units (KB, MB, GB, TB) powers of
/// 1000, as the symbols say.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a size (expected e.g. 512MiB, 2GiB or plain bytes)"
        ));
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ))
        }
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (expected e.g. 512MiB, 2GiB or plain bytes)"))?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes as u64)
}

/// Parses `30s`, `10m`, `1h`, `7d`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{s:?} is not a duration (expected e.g. 30s, 10m, 1h, 7d): {e}"))
}

/// Parses one CIDR (`10.1.0.0/16`) or a bare IP (a /32 or /128); an empty
/// item, as in an unset variable, is `None`.
pub fn parse_network(s: &str) -> Result<Option<IpNet>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(Some(net.trunc()));
    }
    t.parse::<IpAddr>()
        .map(|ip| Some(IpNet::from(ip)))
        .map_err(|_| {
            format!("{s:?} is not a CIDR network (expected e.g. 127.0.0.2/32 or 10.0.0.0/8)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512mib"), Ok(512 << 20));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert!(parse_bytes("abc").is_err());
        assert!(parse_bytes("12XB").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("-5").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn networks() {
        assert_eq!(parse_network(""), Ok(None));
        assert_eq!(
            parse_network("127.0.0.2/32"),
            Ok(Some("127.0.0.2/32".parse().unwrap()))
        );
        assert_eq!(
            parse_network("10.1.2.3/8"),
            Ok(Some("10.0.0.0/8".parse().unwrap()))
        );
        assert_eq!(parse_network("::1"), Ok(Some("::1/128".parse().unwrap())));
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("example.com").is_err());
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("img-proxy").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_and_roles() {
        let cli = parse(&["--name", "n1"]).unwrap();
        assert!(cli.command.is_none());
        let cfg = cli.node.into_config(Role::Standalone).unwrap();
        assert_eq!(cfg.http_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(cfg.gossip_addr, "0.0.0.0:7946".parse().unwrap());
        assert_eq!(cfg.cache_max_bytes, 256 << 20);
        assert_eq!(cfg.cache_ttl, Duration::from_secs(3600));
        assert_eq!(cfg.stale_ttl, Duration::from_secs(86_400));
        assert_eq!(cfg.max_source_bytes, 20 << 20);
        assert_eq!(cfg.fetch_timeout, Duration::from_secs(10));
        assert_eq!(cfg.max_redirects, 5);
        assert!(cfg.known_hosts.is_empty());
        assert!(cfg.allowed_source_networks.is_empty());
        assert!(!cfg.json_logs);

        let cli = parse(&[
            "worker",
            "--name",
            "w",
            "--known-hosts",
            "a,b:7000",
            "--cluster-secret",
            "0123456789abcdef",
        ])
        .unwrap();
        let Some(Command::Worker(args)) = cli.command else {
            panic!("expected worker")
        };
        let cfg = args.into_config(Role::Worker).unwrap();
        assert_eq!(cfg.known_hosts, vec!["a".to_string(), "b:7000".to_string()]);
    }

    #[test]
    fn the_queue_deadline_defaults_to_5s_and_ends_before_the_gateway_gives_up() {
        let cfg = parse(&["--name", "n"]).unwrap().node;
        let cfg = cfg.into_config(Role::Standalone).unwrap();
        assert_eq!(cfg.queue_timeout, Duration::from_secs(5));
        for (value, refused) in [("0", "QUEUE_TIMEOUT"), ("31s", "at most 30s")] {
            let args = parse(&["--name", "n", "--queue-timeout", value]).unwrap();
            let err = args
                .node
                .into_config(Role::Standalone)
                .unwrap_err()
                .to_string();
            assert!(err.contains(refused), "{value}: {err}");
        }
        let args = parse(&["--name", "n", "--queue-timeout", "250ms"]).unwrap();
        let cfg = args.node.into_config(Role::Standalone).unwrap();
        assert_eq!(cfg.queue_timeout, Duration::from_millis(250));
    }

    #[test]
    fn the_handoff_budget_defaults_to_5s_and_must_fit_the_shutdown_deadline() {
        let cfg = parse(&["--name", "n"]).unwrap().node;
        assert_eq!(
            cfg.into_config(Role::Standalone).unwrap().handoff_timeout,
            Duration::from_secs(5)
        );
        let cfg = parse(&["--name", "n", "--handoff-timeout", "0"])
            .unwrap()
            .node;
        assert!(cfg
            .into_config(Role::Standalone)
            .unwrap()
            .handoff_timeout
            .is_zero());
        let cfg = parse(&["--name", "n", "--handoff-timeout", "8s"])
            .unwrap()
            .node;
        let err = cfg.into_config(Role::Standalone).unwrap_err().to_string();
        assert!(err.contains("HANDOFF_TIMEOUT"), "{err}");
    }

    #[test]
    fn cluster_roles_need_a_secret() {
        let cli = parse(&["gateway", "--name", "g", "--http-addr", "127.0.0.1:1"]).unwrap();
        let Some(Command::Gateway(args)) = cli.command else {
            panic!("expected gateway")
        };
        let err = args.into_config(Role::Gateway).unwrap_err();
        assert!(err.to_string().contains("CLUSTER_SECRET"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = parse(&["--cache-max-bytes", "lots"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CACHE_MAX_BYTES"), "{err}");
        let err = parse(&["--cache-ttl", "forever"]).unwrap_err().to_string();
        assert!(err.contains("CACHE_TTL"), "{err}");
        let err = parse(&["--log-format", "xml"]).unwrap_err().to_string();
        assert!(err.contains("LOG_FORMAT"), "{err}");
    }

    #[test]
    fn io_threads_default_to_the_cpus_and_are_bounded() {
        let config = |args: &[&str]| {
            let mut all = vec!["--name", "n"];
            all.extend_from_slice(args);
            parse(&all).unwrap().node.into_config(Role::Standalone)
        };
        assert_eq!(config(&[]).unwrap().io_threads, cpus());
        assert_eq!(config(&["--io-threads", "3"]).unwrap().io_threads, 3);
        for bad in ["0", "1025"] {
            let err = config(&["--io-threads", bad]).unwrap_err().to_string();
            assert!(err.contains("IO_THREADS"), "{bad}: {err}");
        }
    }

    #[test]
    fn advertise_defaults_to_specific_bind_ip() {
        let cli = parse(&["--name", "n", "--http-addr", "127.0.0.5:9000"]).unwrap();
        let cfg = cli.node.into_config(Role::Standalone).unwrap();
        assert_eq!(cfg.advertise_ip, IpAddr::from([127, 0, 0, 5]));
    }

    #[test]
    fn the_advertised_address_is_the_one_on_the_way_to_a_seed() {
        let seeds = |hosts: &[&str]| hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        // 127.0.0.2 is not one of our interface addresses: the kernel's
        // route to it leaves from 127.0.0.1.
        assert_eq!(
            route_to_seeds(&seeds(&["127.0.0.2:7946"])),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(
            route_to_seeds(&seeds(&["", "127.0.0.2"])),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        // Our own address is skipped (a gateway resolving its own service
        // name), and nothing routable gives no answer.
        assert_eq!(route_to_seeds(&seeds(&["127.0.0.1:7946"])), None);
        assert_eq!(route_to_seeds(&seeds(&[])), None);
    }
}
