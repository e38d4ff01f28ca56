//! The gateway's cache of hot images (`GATEWAY_CACHE_BYTES`): the answers
//! a gateway serves again and again are kept in its own memory, so a hit
//! costs no internal round trip (groupcache's "hot keys near callers").
//!
//! - **Key**: what the gateway forwards: the source URL and the resolved
//!   options (the format negotiated from `Accept` included), so variants
//!   never mix.
//! - **Admission**: only keys asked for repeatedly. A doorkeeper (a bounded
//!   set of key hashes seen once) lets a key in on its second request, so a
//!   scan of cold URLs stores nothing; among admitted keys moka's TinyLFU
//!   policy decides what stays when the budget is full (an entry enters only
//!   if it is asked for more often than the one it would evict).
//! - **Freshness**: each entry lives only as long as the worker's
//!   `Cache-Control: max-age` said, counted from when the request was sent
//!   (before the worker counted), so it never outlives the worker's own
//!   entry, and at most as long as this gateway keeps purge records
//!   (its `CACHE_TTL`); an answer with `max-age=0`, `no-store`, `no-cache` or `private`
//!   is not stored.
//! - **Purges**: `DELETE /image` on this gateway drops the URL's entries
//!   (original and variants) before it answers, and every hit checks the
//!   purge records heard in gossip: an entry stored at or before a purge of
//!   its URL (less [`PURGE_MARGIN`]) is dropped, not served.
//!
//! - **Merged misses**: requests for a key that is not stored, arriving
//!   while one of them is asked of a worker, get a copy of that answer
//!   ([`super::merge`]): one worker request per key at a time.
//!
//! An answer from here carries the worker's headers (`X-Served-By` names
//! the worker that made it), `X-Cache: HIT`, `max-age` counted down, and
//! `X-Cache-Tier: gateway`. A standalone node has no such tier: its worker
//! cache is already in the process.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use moka::future::Cache;
use moka::Expiry;
use url::Url;

use super::merge::{follow, InFlight, Turn};
use crate::cluster::purges::PurgeList;
use crate::metrics::GatewayMetrics;
use crate::pipeline::TransformOptions;
use crate::protocol::header::{X_CACHE, X_CACHE_TIER};

/// Bytes charged per entry on top of its body: key, headers, bookkeeping.
const ENTRY_OVERHEAD: u64 = 512;

/// Key hashes the doorkeeper remembers (8 bytes each, plus moka's own).
const DOORKEEPER_KEYS: u64 = 100_000;

/// How far before its storing time an entry counts as made: a purge answers
/// once each worker dropped the URL, within the purge's 5 s deadline per
/// worker, so bytes fetched up to then may be old; another 5 s cover clock
/// skew between the purging gateway and this one. An entry stored in that
/// window after a purge is merely fetched once more.
pub const PURGE_MARGIN: Duration = Duration::from_secs(10);

/// One stored answer.
struct HotEntry {
    url: String,
    headers: HeaderMap,
    body: Bytes,
    /// When the request that brought it was sent, less [`PURGE_MARGIN`].
    made_at: SystemTime,
    expires: Instant,
}

/// Tells moka when each entry expires: its own worker-given freshness.
struct UntilExpiry;

impl Expiry<String, Arc<HotEntry>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<HotEntry>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(value.expires.saturating_duration_since(created_at))
    }
}

/// The cache, or nothing when `GATEWAY_CACHE_BYTES` is 0 (and on a
/// standalone node).
pub struct HotCache {
    parts: Option<Parts>,
    purges: Arc<PurgeList>,
    metrics: GatewayMetrics,
}

struct Parts {
    entries: Cache<String, Arc<HotEntry>>,
    seen_once: Cache<u64, ()>,
    /// Misses being asked of a worker, by key: one request per key.
    in_flight: InFlight,
}

impl HotCache {
    /// A cache of at most `max_bytes` (weighed); 0 disables it.
    pub fn new(max_bytes: u64, purges: Arc<PurgeList>, metrics: GatewayMetrics) -> HotCache {
        let parts = (max_bytes > 0).then(|| Parts {
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, e: &Arc<HotEntry>| {
                    let w = e.body.len() as u64 + key.len() as u64 + ENTRY_OVERHEAD;
                    u32::try_from(w).unwrap_or(u32::MAX)
                })
                .expire_after(UntilExpiry)
                .build(),
            seen_once: Cache::new(DOORKEEPER_KEYS),
            in_flight: InFlight::default(),
        });
        HotCache {
            parts,
            purges,
            metrics,
        }
    }

    /// Answers from the cache, or runs `forward` and offers its answer to
    /// the cache.
    pub async fn through<E>(
        &self,
        url: &Url,
        opts: &TransformOptions,
        forward: impl Future<Output = Result<Response, E>>,
    ) -> Result<Response, E> {
        let Some(parts) = &self.parts else {
            return forward.await;
        };
        let key = cache_key(url, opts);
        if let Some(hit) = self.lookup(parts, &key).await {
            self.metrics.cache_hits.inc();
            return Ok(hit);
        }
        self.metrics.cache_misses.inc();
        let leader = match parts.in_flight.join(&key) {
            Turn::Lead(leader) => leader,
            Turn::Follow(slot) => {
                return match follow(slot).await {
                    Some(a) if !self.purges.is_purged(url.as_str(), a.made_at) => Ok(a.response()),
                    _ => forward.await,
                };
            }
        };
        let sent = (Instant::now(), SystemTime::now());
        let made_at = sent.1.checked_sub(PURGE_MARGIN).unwrap_or(sent.1);
        let resp = forward.await?;
        let resp = self.offer(parts, key, url, resp, sent).await;
        Ok(leader.publish(resp, made_at).await)
    }

    /// A fresh, unpurged entry as an answer; drops one that is purged.
    async fn lookup(&self, parts: &Parts, key: &str) -> Option<Response> {
        let entry = parts.entries.get(key).await?;
        let now = Instant::now();
        if entry.expires <= now {
            return None;
        }
        if self.purges.is_purged(&entry.url, entry.made_at) {
            parts.entries.invalidate(key).await;
            return None;
        }
        Some(answer(&entry, entry.expires - now))
    }

    /// Stores a cacheable answer if its key was asked for before; hands the
    /// answer back either way.
    async fn offer(
        &self,
        parts: &Parts,
        key: String,
        url: &Url,
        resp: Response,
        (sent, sent_wall): (Instant, SystemTime),
    ) -> Response {
        if resp.status() != StatusCode::OK {
            return resp;
        }
        // Never longer than this gateway keeps purge records, so a record
        // outlives every entry it must refuse.
        let Some(fresh_for) = freshness(resp.headers()).map(|f| f.min(self.purges.lifetime()))
        else {
            return resp;
        };
        let hash = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
        if !parts.seen_once.contains_key(&hash) {
            parts.seen_once.insert(hash, ()).await;
            return resp;
        }
        let (head, body) = resp.into_parts();
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            return Response::from_parts(head, Body::empty());
        };
        let entry = HotEntry {
            url: url.as_str().to_string(),
            headers: head.headers.clone(),
            body: body.clone(),
            made_at: sent_wall.checked_sub(PURGE_MARGIN).unwrap_or(sent_wall),
            expires: sent + fresh_for,
        };
        if !self.purges.is_purged(&entry.url, entry.made_at) {
            parts.entries.insert(key, Arc::new(entry)).await;
        }
        Response::from_parts(head, Body::from(body))
    }

    /// Drops the original of `url` and every variant of it; returns how
    /// many entries that was.
    pub async fn purge(&self, url: &str) -> usize {
        let Some(parts) = &self.parts else { return 0 };
        let prefix = format!("{url}\n");
        let keys: Vec<Arc<String>> = parts
            .entries
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(&prefix))
            .collect();
        for k in &keys {
            parts.entries.invalidate(k.as_str()).await;
        }
        keys.len()
    }

    /// Samples entries and bytes into the gauges (at scrape time).
    pub async fn update_gauges(&self) {
        if let Some(parts) = &self.parts {
            parts.entries.run_pending_tasks().await;
            let entries = i64::try_from(parts.entries.entry_count()).unwrap_or(i64::MAX);
            let bytes = i64::try_from(parts.entries.weighted_size()).unwrap_or(i64::MAX);
            self.metrics.cache_entries.set(entries);
            self.metrics.cache_bytes.set(bytes);
        }
    }
}

/// The key of a request: URL, newline, the resolved options as a query.
fn cache_key(url: &Url, opts: &TransformOptions) -> String {
    let mut key = format!("{}\n", url.as_str());
    for (i, (k, v)) in opts.to_query().iter().enumerate() {
        if i > 0 {
            key.push('&');
        }
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    key
}

/// How long an answer may be reused, from its `Cache-Control`; `None` when
/// it must not be stored.
fn freshness(headers: &HeaderMap) -> Option<Duration> {
    let cc = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let mut max_age = None;
    for d in cc.split(',').map(str::trim) {
        let d = d.to_ascii_lowercase();
        if matches!(d.as_str(), "no-store" | "no-cache" | "private") {
            return None;
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.filter(|&s| s > 0).map(Duration::from_secs)
}

/// The stored answer with `X-Cache: HIT`, `X-Cache-Tier: gateway` and
/// `max-age` counted down to what is `left`.
fn answer(entry: &HotEntry, left: Duration) -> Response {
    let mut resp = Response::new(Body::from(entry.body.clone()));
    let h = resp.headers_mut();
    h.clone_from(&entry.headers);
    h.insert(X_CACHE, HeaderValue::from_static("HIT"));
    h.insert(X_CACHE_TIER, HeaderValue::from_static("gateway"));
    if let Some(cc) = entry
        .headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(v) = HeaderValue::from_str(&with_max_age(cc, left.as_secs())) {
            h.insert(header::CACHE_CONTROL, v);
        }
    }
    resp
}

/// `cc` with its `max-age` replaced by `secs`, other directives kept.
fn with_max_age(cc: &str, secs: u64) -> String {
    cc.split(',')
        .map(str::trim)
        .map(|d| {
            if d.to_ascii_lowercase().starts_with("max-age=") {
                format!("max-age={secs}")
            } else {
                d.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cc: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_str(cc).unwrap());
        h
    }

    #[test]
    fn freshness_follows_the_workers_cache_control() {
        assert_eq!(
            freshness(&headers("public, max-age=42")),
            Some(Duration::from_secs(42))
        );
        assert_eq!(freshness(&headers("public, max-age=0")), None);
        assert_eq!(freshness(&headers("no-store")), None);
        assert_eq!(freshness(&headers("private, max-age=9")), None);
        assert_eq!(freshness(&HeaderMap::new()), None);
    }

    #[test]
    fn max_age_is_counted_down_and_other_directives_kept() {
        assert_eq!(
            with_max_age("public, max-age=3600, stale-while-revalidate=60", 7),
            "public, max-age=7, stale-while-revalidate=60"
        );
    }

    #[test]
    fn variants_have_their_own_keys_under_the_url() {
        let url = Url::parse("http://o.example/a.jpg").unwrap();
        let (_, plain) =
            crate::protocol::parse_image_query(Some("url=http://o.example/a.jpg")).unwrap();
        let (_, small) =
            crate::protocol::parse_image_query(Some("url=http://o.example/a.jpg&w=10&format=webp"))
                .unwrap();
        let a = cache_key(&url, &plain.resolve(None).options);
        let b = cache_key(&url, &small.resolve(None).options);
        assert_ne!(a, b);
        assert!(a.starts_with("http://o.example/a.jpg\n"));
        assert!(b.starts_with("http://o.example/a.jpg\n"));
    }
}
