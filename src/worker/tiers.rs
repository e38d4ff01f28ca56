//! The cache tiers in lookup order: memory (moka, `CACHE_MAX_BYTES`), then
//! disk (foyer, `CACHE_DIR`, optional), with purge records applied to both.
//!
//! A disk hit is copied into memory so the next request does not touch the
//! disk. Everything stored goes to both tiers; the disk write happens in
//! the background and never delays an answer. An entry that a purge
//! covers, or whose freshness and stale window (`CACHE_TTL` +
//! `STALE_TTL`) both ran out (also while the worker was down), is not
//! served from either tier; an entry in its stale window is found as
//! [`Freshness::Stale`], for the worker to serve while it revalidates.
//!
//! A variant follows its original: it carries the original's fetch time,
//! so once expired it is renewed with a revalidated original of the same
//! time and dropped when the original was replaced by changed bytes. That
//! is how variants kept only on disk, which cannot be listed, are renewed
//! or dropped too.

use std::sync::Arc;
use std::time::SystemTime;

use super::cache::{CachedImage, Freshness, ImageCache};
use super::disk::{DiskRecord, DiskTier};
use super::fetch::Validators;
use crate::cluster::purges::{unix_millis, PurgeList};

/// Which tier answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Disk,
}

/// An entry found in a tier.
pub struct Found {
    pub image: Arc<CachedImage>,
    pub tier: Tier,
    /// Fresh or stale (dead entries are not found).
    pub freshness: Freshness,
}

/// Memory in front of an optional disk.
#[derive(Clone)]
pub struct Tiers {
    memory: ImageCache,
    disk: Option<Arc<DiskTier>>,
    purges: Arc<PurgeList>,
}

impl Tiers {
    pub fn new(memory: ImageCache, disk: Option<Arc<DiskTier>>, purges: Arc<PurgeList>) -> Tiers {
        Tiers {
            memory,
            disk,
            purges,
        }
    }

    /// The memory tier, for single-flight fills, `max-age` and gauges.
    pub fn memory(&self) -> &ImageCache {
        &self.memory
    }

    /// The disk tier, if `CACHE_DIR` is set.
    pub fn disk(&self) -> Option<&Arc<DiskTier>> {
        self.disk.as_ref()
    }

    /// The purge records this worker applies.
    pub fn purges(&self) -> &Arc<PurgeList> {
        &self.purges
    }

    /// Whether `img`, cached for `url`, may be served now as fresh (what a
    /// peer fill or a hand-off accepts: stale copies are not passed on).
    pub fn servable(&self, url: &str, img: &CachedImage) -> bool {
        !self.memory.remaining_ttl(img).is_zero() && !self.purges.is_purged(url, img.stored_at)
    }

    /// The fresh entry for `key` (an entry of source `url`) from memory or
    /// else disk, and which tier had it.
    pub async fn get(&self, key: &str, url: &str) -> Option<(Arc<CachedImage>, Tier)> {
        let found = self.lookup(key, url).await?;
        (found.freshness == Freshness::Fresh).then_some((found.image, found.tier))
    }

    /// The fresh or stale entry for `key` (an entry of source `url`) from
    /// memory or else disk. Dead entries met on the way are removed.
    pub async fn lookup(&self, key: &str, url: &str) -> Option<Found> {
        if let Some(img) = self.memory.get(key).await {
            if let Some((image, freshness)) = self.judge(key, url, Arc::clone(&img)).await {
                image.touch();
                if !Arc::ptr_eq(&image, &img) {
                    self.memory
                        .insert(key.to_string(), Arc::clone(&image))
                        .await;
                }
                let tier = Tier::Memory;
                return Some(Found {
                    image,
                    tier,
                    freshness,
                });
            }
            self.memory.remove(key).await;
        }
        let disk = self.disk.as_ref()?;
        self.purges.wait_synced().await;
        let record = disk.get(key).await?;
        let img = CachedImage::restored(record.body, record.stored_at)
            .fresh_until(record.fresh_until)
            .with_validators(Validators {
                etag: record.origin_etag,
                last_modified: record.origin_last_modified,
            });
        let Some((image, freshness)) = self.judge(key, url, Arc::new(img)).await else {
            disk.remove(key);
            return None;
        };
        self.memory
            .insert(key.to_string(), Arc::clone(&image))
            .await;
        let tier = Tier::Disk;
        Some(Found {
            image,
            tier,
            freshness,
        })
    }

    /// How `img`, held under `key` for source `url`, may be served: `None`
    /// when purged or dead. An expired variant takes its original's
    /// expiry (a renewed copy is returned) if it was made from the same
    /// bytes, and is dead if the original was replaced since.
    async fn judge(
        &self,
        key: &str,
        url: &str,
        img: Arc<CachedImage>,
    ) -> Option<(Arc<CachedImage>, Freshness)> {
        if self.purges.is_purged(url, img.stored_at) {
            return None;
        }
        let own = self.memory.freshness(&img);
        let alive =
            |img: Arc<CachedImage>, f: Freshness| (f != Freshness::Dead).then_some((img, f));
        if key == url || own == Freshness::Fresh {
            return alive(img, own);
        }
        // Not recursive past one level: the original's key is its URL.
        let Some(original) = Box::pin(self.lookup(url, url)).await else {
            return alive(img, own);
        };
        if unix_millis(original.image.stored_at) != unix_millis(img.stored_at) {
            return None;
        }
        let until = self.memory.fresh_until(&original.image);
        if until <= self.memory.fresh_until(&img) {
            return alive(img, own);
        }
        let renewed = Arc::new(img.renewed(until, img.validators.clone()));
        alive(renewed, original.freshness)
    }

    /// Removes the original of `url` and every variant from memory, and the
    /// original from disk; variants on disk are refused when read (the
    /// purge record covers them). Returns the entries removed.
    pub async fn remove_source(&self, url: &str) -> usize {
        let in_memory = self.memory.contains(url);
        let mut removed = self.memory.remove_source(url).await;
        if let Some(disk) = &self.disk {
            if disk.contains(url) {
                // One entry held in both tiers counts once.
                removed += usize::from(!in_memory);
                disk.remove(url);
            }
        }
        removed
    }

    /// Writes a freshly made entry to disk (memory has it already, through
    /// the single-flight fill).
    pub async fn persist(&self, key: &str, img: &CachedImage) {
        let Some(disk) = &self.disk else { return };
        let record = DiskRecord {
            body: img.body.clone(),
            stored_at: img.stored_at,
            fresh_until: self.memory.fresh_until(img),
            origin_etag: img.validators.etag.clone(),
            origin_last_modified: img.validators.last_modified.clone(),
        };
        disk.put(key.to_string(), record).await;
    }

    /// A revalidation found the original of `url` unchanged: stores it
    /// with a new expiry (`CACHE_TTL` from now) in both tiers and renews
    /// the variants held in memory; variants on disk follow the original
    /// when next read. Nothing is downloaded or re-encoded.
    pub async fn renew(&self, url: &str, original: &CachedImage, validators: Validators) {
        let until = SystemTime::now() + self.memory.ttl();
        let renewed = Arc::new(original.renewed(until, validators));
        self.memory
            .insert(url.to_string(), Arc::clone(&renewed))
            .await;
        self.persist(url, &renewed).await;
        let made_at = unix_millis(original.stored_at);
        for key in self.memory.variant_keys(url) {
            let Some(variant) = self.memory.get(&key).await else {
                continue;
            };
            if unix_millis(variant.stored_at) == made_at {
                let copy = Arc::new(variant.renewed(until, variant.validators.clone()));
                self.memory.insert(key.to_string(), copy).await;
            }
        }
    }

    /// A revalidation found changed bytes: `original` replaces the old one
    /// in both tiers and the old variants go from memory (those on disk
    /// are refused when read: their time no longer matches the original's).
    pub async fn replace(&self, url: &str, original: Arc<CachedImage>) {
        for key in self.memory.variant_keys(url) {
            self.memory.remove(&key).await;
        }
        self.memory
            .insert(url.to_string(), Arc::clone(&original))
            .await;
        self.persist(url, &original).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    const URL: &str = "http://origin.example/a.png";
    const VARIANT: &str = "http://origin.example/a.png\nw=20";

    fn tiers() -> Tiers {
        let memory = ImageCache::with_stale(
            1 << 20,
            Duration::from_secs(60),
            Duration::from_secs(3600),
            Counter::default(),
        );
        let purges = Arc::new(PurgeList::standalone(Duration::from_secs(3600)));
        Tiers::new(memory, None, purges)
    }

    /// An entry stored `ago` seconds back (so expired past 60 s).
    fn entry(body: &'static [u8], ago: u64) -> CachedImage {
        let mut img = CachedImage::new(Bytes::from_static(body), "image/png");
        img.stored_at = SystemTime::now() - Duration::from_secs(ago);
        img
    }

    /// A variant of `original`, as one read back from disk would be: made
    /// from it, with its time and expiry, and not renewed since.
    async fn put_old_variant(t: &Tiers, original: &CachedImage) {
        let mut v = CachedImage::new(Bytes::from_static(b"variant"), "image/png");
        v.stored_at = original.stored_at;
        let v = v.fresh_until(t.memory.fresh_until(original));
        t.memory.insert(VARIANT.into(), Arc::new(v)).await;
    }

    async fn freshness(t: &Tiers, key: &str) -> Option<Freshness> {
        t.lookup(key, URL).await.map(|f| f.freshness)
    }

    #[tokio::test]
    async fn an_expired_variant_follows_its_renewed_original() {
        let t = tiers();
        let original = entry(b"original", 120);
        t.memory
            .insert(URL.into(), Arc::new(entry(b"original", 120)))
            .await;
        put_old_variant(&t, &original).await;
        assert_eq!(freshness(&t, URL).await, Some(Freshness::Stale));
        assert_eq!(freshness(&t, VARIANT).await, Some(Freshness::Stale));

        t.renew(URL, &original, Validators::default()).await;
        assert_eq!(freshness(&t, URL).await, Some(Freshness::Fresh));
        // Renewed in memory, and one that was not (read back from disk)
        // follows the original when read.
        assert_eq!(freshness(&t, VARIANT).await, Some(Freshness::Fresh));
        put_old_variant(&t, &original).await;
        let found = t.lookup(VARIANT, URL).await.unwrap();
        assert_eq!(found.freshness, Freshness::Fresh);
        assert!(t.memory.remaining_ttl(&found.image) > Duration::from_secs(50));
    }

    #[tokio::test]
    async fn a_variant_of_replaced_bytes_is_dropped() {
        let t = tiers();
        let original = entry(b"original", 120);
        t.memory
            .insert(URL.into(), Arc::new(entry(b"original", 120)))
            .await;
        put_old_variant(&t, &original).await;

        let new = entry(b"changed", 0);
        t.replace(URL, Arc::new(new)).await;
        assert_eq!(freshness(&t, VARIANT).await, None, "dropped from memory");
        put_old_variant(&t, &original).await;
        assert_eq!(freshness(&t, VARIANT).await, None, "refused when read");
        assert_eq!(freshness(&t, URL).await, Some(Freshness::Fresh));
    }
}
