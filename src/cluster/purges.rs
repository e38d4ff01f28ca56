//! Purge records: "every cached copy of URL U stored before time T is
//! gone", kept by every node and carried in gossip.
//!
//! A purge removes entries at once from every worker the gateway reaches,
//! but a worker that is down at that moment comes back later with its disk
//! tier, and so with the old bytes. So the purge is also a fact in the
//! cluster state: the gateway that takes the purge publishes the key
//! `purge:<xxh3-128 of U>` = `<T in Unix ms>` in its own gossip state, and
//! every node that learns it publishes it again in its own state. Any
//! entry of U stored at or before T is refused wherever it is found
//! (memory or disk). Because every node republishes what it hears, a
//! record outlives the restart of the node that made it as long as one
//! node stays up; a node drops a record once it is older than
//! `CACHE_TTL + STALE_TTL`, when no entry stored before it could be served
//! anyway.
//!
//! Times are wall-clock milliseconds from the purging gateway; entries
//! carry the storing worker's clock. Clocks are assumed to agree within a
//! few seconds (NTP); an entry stored in the skew window after a purge is
//! merely refetched once more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Prefix of purge keys in a node's gossip state.
pub const KEY_PREFIX: &str = "purge:";

/// The gossip key of the purge record for `url`.
pub fn key_for(url: &str) -> String {
    format!(
        "{KEY_PREFIX}{:032x}",
        xxhash_rust::xxh3::xxh3_128(url.as_bytes())
    )
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The purge records this node knows: gossip key -> latest purge time.
#[derive(Debug)]
pub struct PurgeList {
    records: RwLock<HashMap<String, u64>>,
    /// How long a record is kept: `CACHE_TTL + STALE_TTL`.
    lifetime: Duration,
    /// Whether the records of the cluster have been heard at least once.
    synced: AtomicBool,
    created: Instant,
}

/// How long a node waits to hear the cluster's purge records before it
/// serves from its disk tier anyway.
pub const SYNC_WAIT: Duration = Duration::from_secs(3);

impl PurgeList {
    /// An empty list whose records live for `lifetime`.
    pub fn new(lifetime: Duration) -> PurgeList {
        PurgeList {
            records: RwLock::new(HashMap::new()),
            lifetime,
            synced: AtomicBool::new(false),
            created: Instant::now(),
        }
    }

    /// A list with nothing to hear from (a standalone node): synced at once.
    pub fn standalone(lifetime: Duration) -> PurgeList {
        let list = PurgeList::new(lifetime);
        list.mark_synced();
        list
    }

    /// How long a record is kept; nothing may be served from before a
    /// purge for longer than this, or the record would be gone first.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Notes that another node's state (with its purge records) was heard.
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    /// Waits until the cluster's records were heard, at most until
    /// [`SYNC_WAIT`] after start-up: a worker restarted from disk must not
    /// serve what a purge during its downtime removed.
    pub async fn wait_synced(&self) {
        while !self.synced.load(Ordering::Relaxed) && self.created.elapsed() < SYNC_WAIT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Records that `url` was purged at `at`; returns the gossip key and
    /// value to publish.
    pub fn record(&self, url: &str, at: SystemTime) -> (String, String) {
        let key = key_for(url);
        let ms = unix_millis(at);
        self.merge_one(&key, ms);
        (key, ms.to_string())
    }

    /// Adopts a record heard in gossip; malformed ones are ignored. Returns
    /// whether it was news (newer than what we knew), i.e. whether this
    /// node should publish it too.
    pub fn merge(&self, key: &str, value: &str) -> bool {
        if !key.starts_with(KEY_PREFIX) {
            return false;
        }
        match value.parse::<u64>() {
            Ok(ms) => self.merge_one(key, ms),
            Err(_) => false,
        }
    }

    fn merge_one(&self, key: &str, ms: u64) -> bool {
        let mut records = match self.records.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match records.get(key) {
            Some(&known) if known >= ms => false,
            _ => {
                records.insert(key.to_string(), ms);
                true
            }
        }
    }

    /// Whether an entry of `url` stored at `stored_at` was purged since.
    pub fn is_purged(&self, url: &str, stored_at: SystemTime) -> bool {
        let records = match self.records.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        records
            .get(&key_for(url))
            .is_some_and(|&ms| unix_millis(stored_at) <= ms)
    }

    /// Drops records older than the lifetime; returns their keys, which
    /// this node should stop publishing.
    pub fn expire(&self, now: SystemTime) -> Vec<String> {
        let cutoff = unix_millis(now)
            .saturating_sub(u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX));
        let mut records = match self.records.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let old: Vec<String> = records
            .iter()
            .filter(|(_, &ms)| ms < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &old {
            records.remove(k);
        }
        old
    }

    /// Every record, for publishing our own copy.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let records = match self.records.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        records.iter().map(|(k, &v)| (k.clone(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.com/cat.jpg";

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn entries_stored_before_a_purge_are_purged() {
        let list = PurgeList::new(Duration::from_secs(3600));
        assert!(!list.is_purged(URL, at(1_000)));
        list.record(URL, at(5_000));
        assert!(list.is_purged(URL, at(1_000)));
        assert!(list.is_purged(URL, at(5_000)));
        assert!(!list.is_purged(URL, at(5_001)));
        assert!(!list.is_purged("https://example.com/dog.jpg", at(1_000)));
    }

    #[test]
    fn gossip_records_merge_by_latest_time() {
        let list = PurgeList::new(Duration::from_secs(3600));
        let key = key_for(URL);
        assert!(list.merge(&key, "5000"));
        assert!(!list.merge(&key, "4000"), "older news is not news");
        assert!(!list.merge(&key, "5000"));
        assert!(list.merge(&key, "6000"));
        assert!(list.is_purged(URL, at(5_500)));
        assert!(!list.merge("role", "worker"));
        assert!(!list.merge("purge:x", "soon"));
    }

    #[test]
    fn records_expire_after_their_lifetime() {
        let list = PurgeList::new(Duration::from_secs(10));
        list.record(URL, at(1_000));
        assert!(list.expire(at(5_000)).is_empty());
        assert_eq!(list.expire(at(20_000)), vec![key_for(URL)]);
        assert!(!list.is_purged(URL, at(500)));
    }
}
