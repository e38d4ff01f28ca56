//! Prometheus metrics, one registry per node.
//!
//! Each node owns its registry (no global default registry), so several
//! nodes can run in one process, as tests do, without mixing their numbers.
//! Metrics are registered by role: a gateway does not export cache gauges
//! that would always read zero, and vice versa.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry, Unit};

/// Label for counters split by HTTP status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: u16,
}

/// Label for counters split by worker name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabel {
    pub worker: String,
}

/// Label for counters split by error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// Label of `image_jobs_refused`: `queue_full` or `queue_timeout`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Label of `cache_revalidations`: `304`, `changed` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevalidationLabel {
    pub result: String,
}

/// Metrics a gateway exports.
#[derive(Clone)]
pub struct GatewayMetrics {
    /// User requests answered, by status.
    pub requests: Family<StatusLabel, Counter>,
    /// Time to answer a user request.
    pub request_duration: Histogram,
    /// Requests forwarded, by the worker that answered.
    pub routed: Family<WorkerLabel, Counter>,
    /// Times the owner could not be reached and the next worker was tried.
    pub failovers: Counter,
    /// Workers currently live in this gateway's view.
    pub live_workers: Gauge,
    /// Cache lookups sent to the next worker because the owner was slow.
    pub hedges: Counter,
    /// Of those, lookups whose answer was the one served.
    pub hedges_won: Counter,
    /// Times a worker was ejected (skipped for a back-off).
    pub ejections: Counter,
    /// Workers currently ejected by this gateway (sampled at scrape time).
    pub ejected_workers: Gauge,
    /// Requests answered from the gateway's own cache (`GATEWAY_CACHE_BYTES`).
    pub cache_hits: Counter,
    /// Requests the gateway's cache did not hold (forwarded).
    pub cache_misses: Counter,
    /// Entries in the gateway's cache (sampled at scrape time).
    pub cache_entries: Gauge,
    /// Bytes weighed into the gateway's cache (sampled at scrape time).
    pub cache_bytes: Gauge,
}

/// Counters and gauges of the worker's disk tier (`CACHE_DIR`).
#[derive(Clone, Default)]
pub struct DiskMetrics {
    /// Reads answered from disk.
    pub hits: Counter,
    /// Reads that found nothing on disk.
    pub misses: Counter,
    /// Records refused by a checksum, format or image check.
    pub corrupt: Counter,
    /// Reads or writes that failed or timed out.
    pub errors: Counter,
    /// Records handed to the disk to be written.
    pub writes: Counter,
    /// 1 while the disk refuses writes (full or failing), else 0.
    pub degraded: Gauge,
}

/// Metrics a worker exports.
#[derive(Clone)]
pub struct WorkerMetrics {
    /// Internal requests answered from the cache.
    pub cache_hits: Counter,
    /// Of those, answered from the memory tier (the rest came from disk).
    pub cache_memory_hits: Counter,
    /// Internal requests that found nothing cached.
    pub cache_misses: Counter,
    /// Entries removed for size or age.
    pub cache_evictions: Counter,
    /// Entries in the cache (sampled at scrape time).
    pub cache_entries: Gauge,
    /// Bytes weighed into the cache (sampled at scrape time).
    pub cache_bytes: Gauge,
    /// Cache entries removed by purges.
    pub purged: Counter,
    /// Answers of expired entries within `STALE_TTL` (`X-Cache: STALE`).
    pub stale_answers: Counter,
    /// Background revalidations, by result (`304`, `changed`, `failed`).
    pub revalidations: Family<RevalidationLabel, Counter>,
    /// Bytes the disk tier's files occupy (sampled at scrape time).
    pub cache_disk_bytes: Gauge,
    /// Entries in the disk tier (sampled at scrape time; see
    /// [`crate::worker::disk::DiskTier::entries`] for how it is counted).
    pub cache_disk_entries: Gauge,
    /// The disk tier's counters (registered even without `CACHE_DIR`, at 0).
    pub disk: DiskMetrics,
    /// Misses answered by a peer's copy instead of the origin.
    pub peer_fill_hits: Counter,
    /// Misses a peer could not answer (none held, timed out, refused).
    pub peer_fill_misses: Counter,
    /// Misses that did not ask the peer: it timed out here, or a gateway
    /// passed over it, within the last 2 s.
    pub peer_fill_skipped: Counter,
    /// Entries a leaving worker handed off and their new owner stored.
    pub handoff_sent: Counter,
    /// Entries this worker stored from a leaving worker's hand-off.
    pub handoff_received: Counter,
    /// Time to fetch an origin body, successful or not.
    pub fetch_duration: Histogram,
    /// Origin fetches that failed, by kind.
    pub fetch_errors: Family<KindLabel, Counter>,
    /// Transformations refused for overload: the queue was full
    /// (`MAX_QUEUE`) or no CPU was free within `QUEUE_TIMEOUT`.
    pub image_jobs_refused: Family<ReasonLabel, Counter>,
}

/// Registers `metric` under `name` and hands it back, so a metrics struct
/// is built field by field, each field's name and help beside it.
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// [`add`] for a metric with a unit (seconds, bytes), which the encoder
/// appends to its name.
fn add_in<M: Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Unit,
    metric: M,
) -> M {
    registry.register_with_unit(name, help, unit, metric.clone());
    metric
}

impl DiskMetrics {
    /// The disk tier's counters, registered in `registry`.
    fn register(r: &mut Registry) -> DiskMetrics {
        DiskMetrics {
            hits: add(r, "cache_disk_hits", "Requests answered from the disk tier (CACHE_DIR)", Counter::default()),
            misses: add(r, "cache_disk_misses", "Disk tier lookups that found nothing usable", Counter::default()),
            corrupt: add(r, "cache_disk_corrupt", "Disk entries refused by a checksum, format or image check, then dropped and fetched again", Counter::default()),
            errors: add(r, "cache_disk_errors", "Disk tier reads that failed or timed out, and health checks that failed", Counter::default()),
            writes: add(r, "cache_disk_writes", "Entries handed to the disk tier to be written", Counter::default()),
            degraded: add(r, "cache_disk_degraded", "1 while the disk tier refuses writes because its disk is full or failing", Gauge::default()),
        }
    }
}

impl GatewayMetrics {
    /// Creates the gateway's metrics, registered in `registry`. One flat
    /// list, over 80 lines on purpose: each metric built beside its field
    /// reads better than the same list cut in pieces.
    fn register(r: &mut Registry) -> GatewayMetrics {
        GatewayMetrics {
            requests: add(
                r,
                "gateway_requests",
                "User requests answered by the gateway, by HTTP status",
                Family::default(),
            ),
            request_duration: add_in(
                r,
                "gateway_request_duration",
                "Time for the gateway to answer a user request",
                Unit::Seconds,
                Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            ),
            routed: add(
                r,
                "gateway_routed",
                "Requests forwarded by the gateway, by the worker that answered",
                Family::default(),
            ),
            failovers: add(
                r,
                "gateway_failovers",
                "Times a worker could not be reached and the next worker in hash order was tried",
                Counter::default(),
            ),
            live_workers: add(
                r,
                "gateway_live_workers",
                "Workers currently live in this gateway's view of the cluster",
                Gauge::default(),
            ),
            hedges: add(
                r,
                "gateway_hedges",
                "Cache lookups sent to the next worker in hash order because the owner had not answered within the hedge delay",
                Counter::default(),
            ),
            hedges_won: add(
                r,
                "gateway_hedges_won",
                "Hedged cache lookups whose answer was served (the next worker held the image before the owner answered)",
                Counter::default(),
            ),
            ejections: add(
                r,
                "gateway_ejections",
                "Times this gateway ejected a worker (skipped it for a back-off) after it refused, timed out or did not answer a probe",
                Counter::default(),
            ),
            ejected_workers: add(
                r,
                "gateway_ejected_workers",
                "Workers this gateway currently skips (ejected, waiting out their back-off)",
                Gauge::default(),
            ),
            cache_hits: add(
                r,
                "gateway_cache_hits",
                "Requests answered from the gateway's own cache of hot images",
                Counter::default(),
            ),
            cache_misses: add(
                r,
                "gateway_cache_misses",
                "Requests the gateway's own cache did not hold, forwarded to a worker",
                Counter::default(),
            ),
            cache_entries: add(
                r,
                "gateway_cache_entries",
                "Entries in the gateway's own cache",
                Gauge::default(),
            ),
            cache_bytes: add_in(
                r,
                "gateway_cache_size",
                "Bytes held in the gateway's own cache",
                Unit::Bytes,
                Gauge::default(),
            ),
        }
    }
}

/// The revalidation counters, each result present (at 0) from the start.
fn refused_job_reasons() -> Family<ReasonLabel, Counter> {
    let family = Family::default();
    for reason in ["queue_full", "queue_timeout"] {
        drop(family.get_or_create(&ReasonLabel {
            reason: reason.to_string(),
        }));
    }
    family
}

fn revalidation_results() -> Family<RevalidationLabel, Counter> {
    let family = Family::default();
    for result in ["304", "changed", "failed"] {
        drop(family.get_or_create(&RevalidationLabel {
            result: result.to_string(),
        }));
    }
    family
}

impl WorkerMetrics {
    /// Creates the worker's metrics, registered in `registry` (a flat
    /// list, longer than 80 lines on purpose, as for the gateway's).
    fn register(r: &mut Registry) -> WorkerMetrics {
        WorkerMetrics {
            cache_hits: add(
                r,
                "cache_hits",
                "Requests answered from the worker cache",
                Counter::default(),
            ),
            cache_memory_hits: add(
                r,
                "cache_memory_hits",
                "Requests answered from the memory tier",
                Counter::default(),
            ),
            cache_misses: add(
                r,
                "cache_misses",
                "Requests that found nothing in the worker cache",
                Counter::default(),
            ),
            cache_evictions: add(
                r,
                "cache_evictions",
                "Cache entries removed because of the byte budget or the TTL",
                Counter::default(),
            ),
            cache_entries: add(
                r,
                "cache_entries",
                "Entries in the worker cache",
                Gauge::default(),
            ),
            cache_bytes: add_in(
                r,
                "cache_size",
                "Bytes held in the worker cache",
                Unit::Bytes,
                Gauge::default(),
            ),
            purged: add(
                r,
                "cache_purged_entries",
                "Cache entries removed by purges (DELETE /image)",
                Counter::default(),
            ),
            stale_answers: add(
                r,
                "cache_stale_answers",
                "Expired entries served within STALE_TTL (X-Cache: STALE) while revalidated or while their origin is down",
                Counter::default(),
            ),
            revalidations: add(
                r,
                "cache_revalidations",
                "Background revalidations of expired entries, by result: 304 (renewed, also for the same bytes again), changed (replaced), failed",
                revalidation_results(),
            ),
            cache_disk_bytes: add_in(
                r,
                "cache_disk_size",
                "Bytes the disk tier's files occupy on disk",
                Unit::Bytes,
                Gauge::default(),
            ),
            cache_disk_entries: add(
                r,
                "cache_disk_entries",
                "Entries in the disk tier (approximate after a crash, see README)",
                Gauge::default(),
            ),
            disk: DiskMetrics::register(r),
            peer_fill_hits: add(
                r,
                "cache_peer_fill_hits",
                "Cache misses answered by the previous owner's copy instead of the origin",
                Counter::default(),
            ),
            peer_fill_misses: add(
                r,
                "cache_peer_fill_misses",
                "Cache misses the previous owner could not answer (not held, timed out)",
                Counter::default(),
            ),
            peer_fill_skipped: add(
                r,
                "cache_peer_fill_skipped",
                "Cache misses that did not ask the previous owner: it timed out here, or a gateway passed over it, within the last 2 s",
                Counter::default(),
            ),
            handoff_sent: add(
                r,
                "cache_handoff_sent_entries",
                "Entries this worker handed off to their new owners when it left",
                Counter::default(),
            ),
            handoff_received: add(
                r,
                "cache_handoff_received_entries",
                "Entries this worker stored from a leaving worker's hand-off",
                Counter::default(),
            ),
            fetch_duration: add_in(
                r,
                "origin_fetch_duration",
                "Time to fetch an image from its origin",
                Unit::Seconds,
                Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            ),
            fetch_errors: add(
                r,
                "origin_fetch_errors",
                "Origin fetches that failed, by kind",
                Family::default(),
            ),
            image_jobs_refused: add(
                r,
                "image_jobs_refused",
                "Transformations refused with 503: queue_full (MAX_QUEUE waiting) or queue_timeout (no CPU free within QUEUE_TIMEOUT)",
                refused_job_reasons(),
            ),
        }
    }
}

/// All of one node's metrics and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    /// Present on gateway and standalone nodes.
    pub gateway: Option<GatewayMetrics>,
    /// Present on worker and standalone nodes.
    pub worker: Option<WorkerMetrics>,
    /// Gossip datagrams that failed authentication and were dropped.
    pub gossip_rejected: Counter,
    /// Connections and refusals at the edge (every role).
    pub edge: crate::edge::metrics::EdgeMetrics,
}

impl Metrics {
    /// Registers the metrics for a node that runs the given parts.
    pub fn new(gateway: bool, worker: bool) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("img_proxy");
        let gateway = gateway.then(|| GatewayMetrics::register(&mut registry));
        let worker = worker.then(|| WorkerMetrics::register(&mut registry));
        let gossip_rejected = add(
            &mut registry,
            "gossip_rejected_datagrams",
            "Gossip datagrams dropped because they failed authentication",
            Counter::default(),
        );
        let edge = crate::edge::metrics::EdgeMetrics::register(&mut registry);
        Arc::new(Metrics {
            registry,
            gateway,
            worker,
            gossip_rejected,
            edge,
        })
    }

    /// Renders the registry in the Prometheus text exposition format
    /// (version 0.0.4), which every scraper and `promtool` read.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        openmetrics_to_prometheus(&out)
    }
}

/// The encoder writes OpenMetrics, where a counter family `x` has samples
/// `x_total`; the classic Prometheus text format names the family after its
/// samples and has no `# UNIT` or `# EOF` lines. Converting here keeps the
/// output valid for both Prometheus and `promtool check metrics`.
fn openmetrics_to_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_registered_metrics_by_role() {
        let m = Metrics::new(true, false);
        m.gateway
            .as_ref()
            .unwrap()
            .requests
            .get_or_create(&StatusLabel { status: 200 })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("img_proxy_gateway_requests_total{status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("img_proxy_gossip_rejected_datagrams_total 0"));
        assert!(!text.contains("img_proxy_cache_hits"));
        assert!(text.contains("# TYPE img_proxy_gateway_requests_total counter"));
        assert!(text.contains("# HELP img_proxy_gateway_requests_total User requests"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        let w = Metrics::new(false, true).encode();
        assert!(w.contains("img_proxy_cache_hits_total 0"));
        assert!(w.contains("img_proxy_cache_size_bytes 0"));
        assert!(!w.contains("gateway_requests"));
    }
}
