//! Worker: owns a share of the cache, fills it from origins on a miss.
//!
//! Gateways ask a worker (over [`crate::protocol`], served by
//! [`crate::worker_api`]) whether an image is cached ([`Worker::lookup`]),
//! and to get it from the cache or else fill the cache with it
//! ([`Worker::get_or_fill`]). The fill path is where every safety rule
//! lives: the address guard, the size cap, the timeout and the magic-byte
//! check all run here, before anything is stored.

pub mod cache;
pub mod disk;
pub mod fetch;
pub mod fetch_slots;
pub mod handoff;
pub mod netguard;
pub mod peer_fill;
pub mod peers;
pub mod purge;
pub mod revalidate;
pub mod revalidations;
mod stats;
#[cfg(test)]
pub(crate) mod tests_support;
pub mod tiers;
mod unreachable_peers;

use std::sync::Arc;
use std::time::Instant;

use url::Url;

use crate::metrics::{KindLabel, ReasonLabel, WorkerMetrics};
use crate::pipeline::complete::check_complete;
use crate::pipeline::info::describe;
use crate::pipeline::sniff::sniff;
use crate::pipeline::{transform, Limits, PipelineError, Pool, PoolError, TransformOptions};
use crate::protocol::CacheStatus;
use cache::{CachedImage, Freshness, ImageCache, Provenance, INFO_TYPE};
use fetch::{FetchConfig, FetchError, Fetched, OriginClient};
use fetch_slots::{FetchSlots, SlotsFull};
use revalidations::Revalidations;
use tiers::{Found, Tier, Tiers};

/// Why the worker could not produce an image. Mapped to an HTTP status in
/// [`crate::error`]. `Clone` because one failed fill is reported to every
/// request that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkerError {
    /// The origin fetch failed (bad URL, refused address, origin error...).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The origin answered with something that is not a supported image.
    #[error(
        "the origin's answer is not a supported image (JPEG, PNG, GIF, WebP, AVIF, SVG or JPEG XL)"
    )]
    NotAnImage,
    /// The image could not be transformed (corrupt, too large, unsupported)
    /// or an encoder failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Every image thread is busy and the queue is full: retry shortly.
    #[error("too many images are being processed; retry shortly")]
    Busy,
    /// Accepted, but no image thread was free within `QUEUE_TIMEOUT`.
    #[error("no CPU was free for this image within QUEUE_TIMEOUT ({}); retry shortly", humantime::format_duration(*.0))]
    QueueTimeout(std::time::Duration),
    /// `MAX_ORIGIN_FETCHES` or `MAX_FETCHES_PER_HOST` fetches are running.
    #[error(transparent)]
    FetchesBusy(#[from] SlotsFull),
    /// A bug or a crashed task; never the user's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Everything a worker needs to serve the internal API.
pub struct Worker {
    /// Reported in `X-Served-By` so users and tests can see who answered.
    pub name: String,
    tiers: Tiers,
    origin: OriginClient,
    metrics: WorkerMetrics,
    pool: Pool,
    limits: Limits,
    fetch_slots: Arc<FetchSlots>,
    /// URLs whose stale entries are being revalidated.
    revalidations: Revalidations,
    /// The other workers (peer fill, hand-off); `None` in a standalone node.
    peers: Option<peers::Peers>,
}

/// The answer of [`Worker::get_or_fill`].
pub struct Filled {
    pub image: Arc<CachedImage>,
    /// Whether it was already cached.
    pub cache: CacheStatus,
}

/// What a worker needs besides its name and metrics: the cache budget and
/// TTL, the origin rules and the image limits.
pub struct WorkerConfig {
    pub cache_max_bytes: u64,
    pub cache_ttl: std::time::Duration,
    /// How long after expiry an entry may still be served (`STALE_TTL`).
    pub stale_ttl: std::time::Duration,
    pub fetch: FetchConfig,
    pub limits: Limits,
    /// Threads of the image pool: the CPU count.
    pub threads: usize,
    /// Transformations that may wait for a thread (`MAX_QUEUE`).
    pub max_queue: usize,
    /// How long one may wait for a thread (`QUEUE_TIMEOUT`).
    pub queue_timeout: std::time::Duration,
    /// The disk tier, opened by the caller when `CACHE_DIR` is set.
    pub disk: Option<Arc<disk::DiskTier>>,
    /// Purge records to apply to every tier.
    pub purges: Arc<crate::cluster::purges::PurgeList>,
    /// Concurrent origin fetches (`MAX_ORIGIN_FETCHES`).
    pub max_fetches: usize,
    /// Concurrent fetches from one host (`MAX_FETCHES_PER_HOST`).
    pub max_fetches_per_host: usize,
    /// The other workers, in a cluster.
    pub peers: Option<peers::Peers>,
}

/// The cache key of `url` transformed by `opts`: the URL alone for the
/// original, so every variant of one image shares one original entry.
pub(crate) fn cache_key(url: &Url, opts: &TransformOptions) -> String {
    if opts.is_identity() {
        url.as_str().to_string()
    } else {
        variant_key(url, opts)
    }
}

/// A made entry's key: under the URL's prefix, so a purge of the URL
/// removes it. For identity options (`"url\n"`) it holds what an SVG or
/// JPEG XL original is served as.
fn variant_key(url: &Url, opts: &TransformOptions) -> String {
    format!("{}\n{}", url.as_str(), opts.cache_key())
}

/// The key of the URL's `GET /info` answer.
fn info_key(url: &Url) -> String {
    format!("{}\n{}", url.as_str(), crate::protocol::INFO_PARAM)
}

/// What a fill makes from the original.
#[derive(Clone)]
enum Job {
    Variant(TransformOptions),
    Info,
}

impl Worker {
    /// A worker with an empty cache, an origin client and an image pool.
    pub fn new(
        name: String,
        cfg: WorkerConfig,
        metrics: WorkerMetrics,
    ) -> Result<Arc<Worker>, WorkerError> {
        Ok(Arc::new(Worker {
            name,
            tiers: Tiers::new(
                ImageCache::with_stale(
                    cfg.cache_max_bytes,
                    cfg.cache_ttl,
                    cfg.stale_ttl,
                    metrics.cache_evictions.clone(),
                ),
                cfg.disk,
                cfg.purges,
            ),
            origin: OriginClient::new(cfg.fetch)?,
            metrics,
            pool: Pool::new(cfg.threads, cfg.max_queue, cfg.queue_timeout),
            limits: cfg.limits,
            fetch_slots: FetchSlots::new(cfg.max_fetches, cfg.max_fetches_per_host),
            revalidations: Revalidations::default(),
            peers: cfg.peers,
        }))
    }

    /// The cache, for response headers (`max-age`) and usage gauges.
    pub fn cache(&self) -> &ImageCache {
        self.tiers.memory()
    }

    /// The cache tiers (memory, disk) and the purge records they apply.
    pub fn tiers(&self) -> &Tiers {
        &self.tiers
    }

    /// Counts a hit by tier.
    fn count_hit(&self, tier: Tier) {
        self.metrics.cache_hits.inc();
        match tier {
            Tier::Memory => self.metrics.cache_memory_hits.inc(),
            Tier::Disk => self.metrics.disk.hits.inc(),
        };
    }

    /// The cached image for `url` with `opts`, if any: the answer to
    /// `GET /v1/image`. A stale one is answered too (and revalidated).
    pub async fn lookup(self: &Arc<Self>, url: &Url, opts: &TransformOptions) -> Option<Filled> {
        let mut found = self
            .tiers
            .lookup(&cache_key(url, opts), url.as_str())
            .await?;
        if !found.image.served_as_is() {
            found = self
                .tiers
                .lookup(&variant_key(url, opts), url.as_str())
                .await?;
        }
        Some(self.cached(url, found))
    }

    /// A cached entry as an answer: a hit, or a stale answer whose
    /// revalidation starts in the background.
    fn cached(self: &Arc<Self>, url: &Url, found: Found) -> Filled {
        self.count_hit(found.tier);
        let cache = match found.freshness {
            Freshness::Stale => {
                self.served_stale(url);
                CacheStatus::Stale
            }
            Freshness::Fresh | Freshness::Dead => CacheStatus::Hit,
        };
        Filled {
            image: found.image,
            cache,
        }
    }

    /// The cached info of `url`, if any.
    pub async fn lookup_info(self: &Arc<Self>, url: &Url) -> Option<Filled> {
        let found = self.tiers.lookup(&info_key(url), url.as_str()).await?;
        Some(self.cached(url, found))
    }

    /// The info of `url` (JSON, see [`crate::pipeline::info`]), from the
    /// cache or made from the cached original: the answer to an info fill.
    pub async fn get_or_fill_info(self: &Arc<Self>, url: &Url) -> Result<Filled, Arc<WorkerError>> {
        self.made(url, info_key(url), Job::Info).await
    }

    /// Skips the workers a gateway could not reach (its fill named them) as
    /// peers for a while: their copies would cost a peer-fill deadline.
    pub fn peers_unreachable<'a>(&self, names: impl Iterator<Item = &'a str>) {
        if let Some(peers) = &self.peers {
            names.for_each(|name| peers.unreachable(name));
        }
    }

    /// The image for `url` with `opts`, from the cache or else produced
    /// (once, however many callers ask at the same time) and cached: the
    /// answer to `POST /v1/cache`. A variant is made from the cached
    /// original, so many variants of one image cost one origin fetch.
    pub async fn get_or_fill(
        self: &Arc<Self>,
        url: &Url,
        opts: &TransformOptions,
    ) -> Result<Filled, Arc<WorkerError>> {
        let job = Job::Variant(opts.clone());
        if !opts.is_identity() {
            return self.made(url, variant_key(url, opts), job).await;
        }
        // The original, unless it is an SVG or JPEG XL: those are served
        // as their default conversion, made once under its own key.
        match self.tiers.lookup(url.as_str(), url.as_str()).await {
            Some(found) if found.image.served_as_is() => return Ok(self.cached(url, found)),
            Some(_) => return self.made(url, variant_key(url, opts), job).await,
            None => {}
        }
        self.metrics.cache_misses.inc();
        let image = self.original(url).await?;
        if !image.served_as_is() {
            return self.made(url, variant_key(url, opts), job).await;
        }
        Ok(Filled {
            cache: self.fill_status(&image),
            image,
        })
    }

    /// The entry `key` made by `job` from the original of `url`: cached, or
    /// copied from a peer, or made once for all callers (fetching the
    /// original if needed).
    async fn made(
        self: &Arc<Self>,
        url: &Url,
        key: String,
        job: Job,
    ) -> Result<Filled, Arc<WorkerError>> {
        if let Some(found) = self.tiers.lookup(&key, url.as_str()).await {
            return Ok(self.cached(url, found));
        }
        self.metrics.cache_misses.inc();
        let this = Arc::clone(self);
        let url = url.clone();
        let disk_key = key.clone();
        let init = async move {
            if let Job::Variant(opts) = &job {
                if let Some(copy) = this.copy_from_peer(&url, opts, &disk_key).await {
                    return Ok(copy);
                }
            }
            let original = this.original(&url).await.map_err(Arc::unwrap_or_clone)?;
            let made = this.make(original, job).await?;
            this.tiers.persist(&disk_key, &made).await;
            Ok(made)
        };
        let image = self.tiers.memory().get_or_try_insert(key, init).await?;
        Ok(Filled {
            cache: self.fill_status(&image),
            image,
        })
    }

    /// How a fill is answered: something made from a stale original is
    /// stale too; a peer's copy (peer fill) is a hit for the cluster's cache.
    fn fill_status(&self, image: &CachedImage) -> CacheStatus {
        match self.tiers.memory().freshness(image) {
            Freshness::Stale | Freshness::Dead => {
                self.metrics.stale_answers.inc();
                CacheStatus::Stale
            }
            Freshness::Fresh if image.provenance == Provenance::Peer => CacheStatus::Hit,
            Freshness::Fresh => CacheStatus::Miss,
        }
    }

    /// The original bytes of `url`: cached (a stale copy is used, and
    /// revalidated), or fetched once for all callers.
    async fn original(self: &Arc<Self>, url: &Url) -> Result<Arc<CachedImage>, Arc<WorkerError>> {
        if let Some(found) = self.tiers.lookup(url.as_str(), url.as_str()).await {
            if found.freshness == Freshness::Stale {
                self.revalidate_in_background(url);
            }
            return Ok(found.image);
        }
        let this = Arc::clone(self);
        let owned = url.clone();
        // The fetch runs in its own task so that it completes, and its result
        // is cached, even if the request that started it goes away.
        let init = async move {
            tokio::spawn(async move {
                let identity = TransformOptions::default();
                if let Some(copy) = this.copy_from_peer(&owned, &identity, owned.as_str()).await {
                    return Ok(copy);
                }
                let img = this.download_original(&owned).await?;
                this.tiers.persist(owned.as_str(), &img).await;
                Ok::<_, WorkerError>(img)
            })
            .await
            .map_err(|e| WorkerError::Internal(format!("fetch task failed: {e}")))?
        };
        self.tiers
            .memory()
            .get_or_try_insert(url.as_str().to_string(), init)
            .await
    }

    /// Transforms or describes an original on the image pool.
    async fn make(
        &self,
        original: Arc<CachedImage>,
        job: Job,
    ) -> Result<Arc<CachedImage>, WorkerError> {
        let limits = self.limits;
        // What is made carries its original's times: it expires, is renewed
        // and is dropped with it (see [`tiers`]).
        let stored_at = original.stored_at;
        let fresh_until = self.tiers.memory().fresh_until(&original);
        let work = move || match job {
            Job::Variant(opts) => {
                transform(&original.body, &opts, &limits).map(|t| (t.bytes, t.format.mime()))
            }
            Job::Info => describe(&original.body, &limits)
                .map(|info| (serde_json::to_vec(&info).unwrap_or_default(), INFO_TYPE)),
        };
        let (bytes, content_type) = match self.pool.run(work).await {
            Ok(result) => result?,
            Err(PoolError::Busy) => {
                self.count_refused_job("queue_full");
                return Err(WorkerError::Busy);
            }
            Err(PoolError::QueueTimeout(waited)) => {
                self.count_refused_job("queue_timeout");
                return Err(WorkerError::QueueTimeout(waited));
            }
            Err(PoolError::Panicked(msg)) => {
                return Err(WorkerError::Internal(format!("image job panicked: {msg}")))
            }
        };
        let mut made = CachedImage::new(bytes.into(), content_type);
        made.stored_at = stored_at;
        Ok(Arc::new(made.fresh_until(fresh_until)))
    }

    /// Downloads `url` and checks that it is a whole image of a format we
    /// serve: a truncated body must not be cached and passed on as is.
    async fn download_original(&self, url: &Url) -> Result<Arc<CachedImage>, WorkerError> {
        let host = url.host_str().unwrap_or("");
        let _slot = self.fetch_slots.try_acquire(host).inspect_err(|_| {
            self.count_error("busy");
        })?;
        let started = Instant::now();
        let result = self.origin.fetch(url).await;
        self.metrics
            .fetch_duration
            .observe(started.elapsed().as_secs_f64());
        let fetched = result.inspect_err(|e| self.count_error(e.kind()))?;
        Ok(Arc::new(self.checked_image(fetched)?))
    }

    /// A fetched body as a fresh cache entry, if it is a whole image of a
    /// format we serve.
    fn checked_image(&self, fetched: Fetched) -> Result<CachedImage, WorkerError> {
        let Some(format) = sniff(&fetched.body) else {
            self.count_error("not_image");
            return Err(WorkerError::NotAnImage);
        };
        if let Err(e) = check_complete(&fetched.body, format) {
            self.count_error("truncated");
            return Err(e.into());
        }
        let img = CachedImage::new(fetched.body, format.mime());
        let fresh_until = img.stored_at + self.tiers.memory().ttl();
        Ok(img
            .fresh_until(fresh_until)
            .with_validators(fetched.validators))
    }

    /// Counts a transformation refused for overload, by reason
    /// (`queue_full`, `queue_timeout`).
    fn count_refused_job(&self, reason: &str) {
        self.metrics
            .image_jobs_refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    fn count_error(&self, kind: &str) {
        // Labels are a small fixed set (FetchError::kind, "not_image",
        // "truncated" and "busy").
        self.metrics
            .fetch_errors
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Samples cache usage into the gauges, at scrape time.
    pub async fn update_gauges(&self) {
        let (entries, bytes) = self.tiers.memory().usage().await;
        self.metrics.cache_entries.set(entries as i64);
        self.metrics.cache_bytes.set(bytes as i64);
        if let Some(disk) = self.tiers.disk() {
            let disk = Arc::clone(disk);
            let (on_disk, entries) =
                tokio::task::spawn_blocking(move || (disk.bytes_on_disk(), disk.entries()))
                    .await
                    .unwrap_or((0, 0));
            self.metrics.cache_disk_bytes.set(on_disk as i64);
            self.metrics.cache_disk_entries.set(entries as i64);
        }
    }
}
