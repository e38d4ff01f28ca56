//! The cache tiers in lookup order: memory (moka, `CACHE_MAX_BYTES`), then
//! disk (foyer, `CACHE_DIR`, optional), with purge records applied to both.
//!
//! A disk hit is copied into memory so the next request does not touch the
//! disk. Everything stored goes to both tiers; the disk write happens in
//! the background and never delays an answer. An entry whose freshness ran
//! out (also one that expired while the worker was down) or that a purge
//! covers is not served from either tier.

use std::sync::Arc;
use std::time::SystemTime;

use super::cache::{CachedImage, ImageCache};
use super::disk::{DiskRecord, DiskTier};
use crate::cluster::purges::PurgeList;

/// Which tier answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Disk,
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

    /// Whether `img`, cached for `url`, may be served now.
    pub fn servable(&self, url: &str, img: &CachedImage) -> bool {
        !self.memory.remaining_ttl(img).is_zero() && !self.purges.is_purged(url, img.stored_at)
    }

    /// The fresh entry for `key` (an entry of source `url`) from memory or
    /// else disk, and which tier had it.
    pub async fn get(&self, key: &str, url: &str) -> Option<(Arc<CachedImage>, Tier)> {
        if let Some(img) = self.memory.get(key).await {
            if self.servable(url, &img) {
                img.touch();
                return Some((img, Tier::Memory));
            }
            self.memory.remove(key).await;
        }
        let disk = self.disk.as_ref()?;
        self.purges.wait_synced().await;
        let record = disk.get(key).await?;
        let img = Arc::new(CachedImage::restored(record.body, record.stored_at));
        if record.fresh_until <= SystemTime::now() || !self.servable(url, &img) {
            disk.remove(key);
            return None;
        }
        self.memory.insert(key.to_string(), Arc::clone(&img)).await;
        Some((img, Tier::Disk))
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
            fresh_until: img.stored_at + self.memory.ttl(),
            origin_etag: None,
            origin_last_modified: None,
        };
        disk.put(key.to_string(), record).await;
    }
}
