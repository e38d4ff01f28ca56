//! The worker's image cache: bytes-weighed, TTL-bound, single-flight.
//!
//! `moka` does the hard parts: a byte budget (each entry weighs its body
//! plus a fixed overhead, so resident memory tracks `CACHE_MAX_BYTES`), a
//! TTL after which an entry is never served, and `try_get_with`, which makes
//! any number of concurrent misses for one key wait on a single
//! initialisation. Failed initialisations are not stored, so an origin error
//! now does not stop a success later.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use moka::future::Cache;
use moka::notification::RemovalCause;
use prometheus_client::metrics::counter::Counter;

use super::fetch::Validators;
use crate::pipeline::sniff::sniff;

/// The `Content-Type` of an info entry (`GET /info`).
pub const INFO_TYPE: &str = "application/json";

/// The type of cached bytes, from the bytes: an image format we read, or
/// the info JSON (which starts with its first field); `None` otherwise.
pub fn stored_type(body: &[u8]) -> Option<&'static str> {
    match sniff(body) {
        Some(f) => Some(f.mime()),
        None => body.starts_with(b"{\"width\":").then_some(INFO_TYPE),
    }
}

/// Bytes charged per entry on top of its body: key, headers, bookkeeping.
const ENTRY_OVERHEAD: u64 = 256;

/// One cached answer: an original image or a transformed variant.
#[derive(Debug)]
pub struct CachedImage {
    /// The image bytes, shared with every response that serves them.
    pub body: Bytes,
    /// The MIME type, derived from the bytes, never from the origin header.
    pub content_type: &'static str,
    /// Strong validator: a hash of the bytes, quoted as HTTP wants it.
    pub etag: String,
    /// When the bytes were fetched (a variant carries its original's
    /// time): wall-clock time, so that it means the same after a restart
    /// from the disk tier. A revalidation that finds the image unchanged
    /// keeps it; a changed image gets a new one, so a variant whose time
    /// differs from its original's was made from older bytes.
    pub stored_at: SystemTime,
    /// Until when it is fresh; `None`: `CACHE_TTL` after `stored_at`.
    /// Renewed by a revalidation that finds the image unchanged.
    pub fresh_until: Option<SystemTime>,
    /// The origin's `ETag` / `Last-Modified` (originals only), sent back
    /// when revalidating.
    pub validators: Validators,
    /// When it was last served or stored, on a process-wide counter: the
    /// order in which a leaving worker hands entries off (most recent first).
    last_used: AtomicU64,
    /// Where this copy came from: a peer's copy answers `HIT` on the fill
    /// that fetched it (the cluster's cache had it).
    pub provenance: Provenance,
}

/// Where a cache entry's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Fetched from the origin or made here.
    Made,
    /// Copied from another worker's cache (peer fill or hand-off).
    Peer,
}

/// The process-wide use counter behind [`CachedImage::touch`].
static USE_CLOCK: AtomicU64 = AtomicU64::new(0);

impl CachedImage {
    /// Wraps bytes of a known type, computing the ETag once.
    pub fn new(body: Bytes, content_type: &'static str) -> CachedImage {
        let digest = xxhash_rust::xxh3::xxh3_128(&body);
        CachedImage {
            etag: format!("\"{digest:032x}\""),
            body,
            content_type,
            stored_at: SystemTime::now(),
            fresh_until: None,
            validators: Validators::default(),
            last_used: AtomicU64::new(USE_CLOCK.fetch_add(1, Ordering::Relaxed)),
            provenance: Provenance::Made,
        }
    }

    /// Marks the entry as just used.
    pub fn touch(&self) {
        let now = USE_CLOCK.fetch_add(1, Ordering::Relaxed);
        self.last_used.store(now, Ordering::Relaxed);
    }

    /// When it was last used: larger is more recent.
    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Whether these bytes may be answered as they are: not for an SVG or
    /// JPEG XL original (see `SourceFormat::served_as_is`).
    pub fn served_as_is(&self) -> bool {
        sniff(&self.body).is_none_or(|f| f.served_as_is())
    }

    /// An entry read back from the disk tier, keeping its original times.
    /// The type comes from the bytes (the disk record checked they are an
    /// image or an info we serve).
    pub fn restored(body: Bytes, stored_at: SystemTime) -> CachedImage {
        let content_type = stored_type(&body).unwrap_or("application/octet-stream");
        CachedImage {
            stored_at,
            ..CachedImage::new(body, content_type)
        }
    }

    /// The same entry marked as another worker's copy.
    pub fn from_peer(self) -> CachedImage {
        CachedImage {
            provenance: Provenance::Peer,
            ..self
        }
    }

    /// The same entry with its freshness set to `fresh_until`.
    pub fn fresh_until(self, fresh_until: SystemTime) -> CachedImage {
        CachedImage {
            fresh_until: Some(fresh_until),
            ..self
        }
    }

    /// The same entry carrying the origin's validators.
    pub fn with_validators(self, validators: Validators) -> CachedImage {
        CachedImage { validators, ..self }
    }

    /// A copy sharing the bytes, with new freshness and validators: what
    /// a revalidation that found the image unchanged stores.
    pub fn renewed(&self, fresh_until: SystemTime, validators: Validators) -> CachedImage {
        CachedImage {
            body: self.body.clone(),
            content_type: self.content_type,
            etag: self.etag.clone(),
            stored_at: self.stored_at,
            fresh_until: Some(fresh_until),
            validators,
            last_used: AtomicU64::new(self.last_used()),
            provenance: self.provenance,
        }
    }
}

/// How an entry may be served now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within `CACHE_TTL`: a hit.
    Fresh,
    /// Expired less than `STALE_TTL` ago: served as `STALE` while it is
    /// revalidated.
    Stale,
    /// Past both: never served.
    Dead,
}

/// The cache proper, with the TTL (`CACHE_TTL`) and the stale window
/// (`STALE_TTL`) kept alongside: entries stay in memory for both, and
/// answers say how long they may be reused (`Cache-Control: max-age`).
#[derive(Clone)]
pub struct ImageCache {
    inner: Cache<String, Arc<CachedImage>>,
    ttl: Duration,
    stale: Duration,
}

impl ImageCache {
    /// A cache holding at most `max_bytes` (weighed) for at most `ttl`,
    /// without a stale window.
    pub fn new(max_bytes: u64, ttl: Duration, evictions: Counter) -> ImageCache {
        ImageCache::with_stale(max_bytes, ttl, Duration::ZERO, evictions)
    }

    /// A cache holding at most `max_bytes` (weighed), each entry for at
    /// most `ttl + stale` after it was stored; evictions for size or age
    /// are counted in `evictions`.
    pub fn with_stale(
        max_bytes: u64,
        ttl: Duration,
        stale: Duration,
        evictions: Counter,
    ) -> ImageCache {
        let inner = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, img: &Arc<CachedImage>| {
                let w = img.body.len() as u64 + key.len() as u64 + ENTRY_OVERHEAD;
                u32::try_from(w).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl.saturating_add(stale))
            .eviction_listener(move |_key, _value, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    evictions.inc();
                }
            })
            .build();
        ImageCache { inner, ttl, stale }
    }

    /// The entry for `key`, if cached and not expired.
    pub async fn get(&self, key: &str) -> Option<Arc<CachedImage>> {
        self.inner.get(key).await
    }

    /// The entry for `key`, computing it with `init` if absent. Concurrent
    /// callers for one key share one `init`; an error is returned to all of
    /// them and nothing is stored.
    pub async fn get_or_try_insert<F, E>(
        &self,
        key: String,
        init: F,
    ) -> Result<Arc<CachedImage>, Arc<E>>
    where
        F: Future<Output = Result<Arc<CachedImage>, E>>,
        E: Send + Sync + 'static,
    {
        self.inner.try_get_with(key, init).await
    }

    /// Until when `img` is fresh.
    pub fn fresh_until(&self, img: &CachedImage) -> SystemTime {
        img.fresh_until.unwrap_or(img.stored_at + self.ttl)
    }

    /// Whether `img` is fresh, stale or dead now.
    pub fn freshness(&self, img: &CachedImage) -> Freshness {
        let until = self.fresh_until(img);
        let now = SystemTime::now();
        if now < until {
            Freshness::Fresh
        } else if now < until + self.stale {
            Freshness::Stale
        } else {
            Freshness::Dead
        }
    }

    /// How much longer `img` may be served: what `max-age` should say.
    pub fn remaining_ttl(&self, img: &CachedImage) -> Duration {
        self.fresh_until(img)
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// The freshness lifetime (`CACHE_TTL`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores `img` under `key`, replacing what was there.
    pub async fn insert(&self, key: String, img: Arc<CachedImage>) {
        self.inner.insert(key, img).await;
    }

    /// Whether `key` is held (fresh or not).
    pub fn contains(&self, key: &str) -> bool {
        self.inner.contains_key(key)
    }

    /// Removes `key`.
    pub async fn remove(&self, key: &str) {
        self.inner.invalidate(key).await;
    }

    /// The keys of the variants of `url` held in memory.
    pub fn variant_keys(&self, url: &str) -> Vec<Arc<String>> {
        let variant_prefix = format!("{url}\n");
        self.inner
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(&variant_prefix))
            .collect()
    }

    /// Removes the original of `url` and every variant made from it;
    /// returns how many entries that was.
    pub async fn remove_source(&self, url: &str) -> usize {
        let mut keys = self.variant_keys(url);
        if self.inner.contains_key(url) {
            keys.push(Arc::new(url.to_string()));
        }
        for k in &keys {
            self.inner.invalidate(k.as_str()).await;
        }
        keys.len()
    }

    /// Every entry held now, in no particular order (a worker's hand-off).
    pub fn entries(&self) -> Vec<(Arc<String>, Arc<CachedImage>)> {
        self.inner.iter().collect()
    }

    /// Entries and weighed bytes, after applying pending evictions, for the
    /// gauges sampled at scrape time.
    pub async fn usage(&self) -> (u64, u64) {
        self.inner.run_pending_tasks().await;
        (self.inner.entry_count(), self.inner.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_types_cover_images_and_info_and_only_them() {
        assert_eq!(stored_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(stored_type(b"{\"width\":1,\"height\":1}"), Some(INFO_TYPE));
        assert_eq!(stored_type(b"{\"other\":1}"), None);
        assert_eq!(stored_type(b"<html>"), None);
        let svg = CachedImage::new(Bytes::from_static(b"<svg/>"), "image/svg+xml");
        assert!(!svg.served_as_is());
        let png = CachedImage::new(Bytes::from_static(b"\x89PNG\r\n\x1a\n"), "image/png");
        assert!(png.served_as_is());
    }

    #[tokio::test]
    async fn byte_budget_evicts_and_counts() {
        let evictions = Counter::default();
        let cache = ImageCache::new(10_000, Duration::from_secs(60), evictions.clone());
        for i in 0..20 {
            let img = Arc::new(CachedImage::new(Bytes::from(vec![0u8; 1000]), "image/png"));
            let _ = cache
                .get_or_try_insert::<_, ()>(format!("k{i}"), async { Ok(img) })
                .await;
        }
        let (entries, bytes) = cache.usage().await;
        assert!(bytes <= 10_000, "weighed {bytes} bytes over budget");
        assert!(entries < 20);
        assert!(evictions.get() > 0);
    }

    #[tokio::test]
    async fn touching_an_entry_makes_it_the_most_recent() {
        let a = CachedImage::new(Bytes::from_static(b"a"), "image/png");
        let b = CachedImage::new(Bytes::from_static(b"b"), "image/png");
        assert!(b.last_used() > a.last_used());
        a.touch();
        assert!(a.last_used() > b.last_used());
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = ImageCache::new(1 << 20, Duration::from_secs(60), Counter::default());
        let err = cache
            .get_or_try_insert::<_, &str>("k".into(), async { Err("boom") })
            .await;
        assert!(err.is_err());
        let ok = cache
            .get_or_try_insert::<_, &str>("k".into(), async {
                Ok(Arc::new(CachedImage::new(
                    Bytes::from_static(b"x"),
                    "image/png",
                )))
            })
            .await;
        assert!(ok.is_ok());
        assert!(cache.get("k").await.is_some());
    }

    #[tokio::test]
    async fn ttl_expires_entries() {
        let cache = ImageCache::new(1 << 20, Duration::from_millis(200), Counter::default());
        let img = Arc::new(CachedImage::new(Bytes::from_static(b"x"), "image/png"));
        let _ = cache
            .get_or_try_insert::<_, ()>("k".into(), async { Ok(img) })
            .await;
        let got = cache.get("k").await;
        assert!(got.is_some());
        assert!(cache.remaining_ttl(&got.unwrap()) <= Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(cache.get("k").await.is_none());
    }

    #[test]
    fn entries_are_fresh_then_stale_then_dead() {
        let cache = ImageCache::with_stale(
            1 << 20,
            Duration::from_secs(60),
            Duration::from_secs(60),
            Counter::default(),
        );
        let now = SystemTime::now();
        let img = |stored_ago: u64| {
            let mut img = CachedImage::new(Bytes::from_static(b"x"), "image/png");
            img.stored_at = now - Duration::from_secs(stored_ago);
            img
        };
        assert_eq!(cache.freshness(&img(10)), Freshness::Fresh);
        assert_eq!(cache.freshness(&img(70)), Freshness::Stale);
        assert_eq!(cache.remaining_ttl(&img(70)), Duration::ZERO);
        assert_eq!(cache.freshness(&img(130)), Freshness::Dead);
        // A renewal moves the expiry, not the time the bytes were stored.
        let renewed = img(130).renewed(now + Duration::from_secs(30), Validators::default());
        assert_eq!(cache.freshness(&renewed), Freshness::Fresh);
        assert!(cache.remaining_ttl(&renewed) > Duration::from_secs(25));
    }
}
