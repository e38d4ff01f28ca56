//! Hand-off on a graceful leave: a worker told to stop (SIGTERM) sends the
//! entries of its memory tier, most recently used first, to the workers
//! that own them once it is gone, within `HANDOFF_TIMEOUT`, so a scale-down
//! does not send its share of the keys to their origins again. The
//! receiving side ([`Worker::receive`], `PUT /v1/cache`) stores a copy as
//! if it had filled it, keeping its time of storage, and refuses expired
//! or purged copies. Entries kept only on disk are not sent (nothing lists
//! them; a restart with the same `CACHE_DIR` still has them).

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tracing::{info, warn};
use url::Url;

use super::cache::CachedImage;
use super::peers::PeerCopy;
use super::{cache_key, Worker};
use crate::pipeline::TransformOptions;
use crate::protocol::MAX_HANDOFF_BYTES;

/// Transfers in flight at once: enough to fill a link with small images,
/// few enough not to swamp the receivers.
const HANDOFF_CONCURRENCY: usize = 8;

/// What a hand-off receiver did with a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored in memory (and on disk, if any).
    Stored,
    /// Not stored: this worker holds the entry already, or the copy is
    /// expired or purged.
    Refused,
}

impl Worker {
    /// Sends this worker's entries to their next owners, most recently
    /// used first, until they are all sent or `budget` is spent. Returns
    /// how many were stored by their new owners.
    pub async fn hand_off(&self, budget: Duration) -> usize {
        let Some(peers) = self.peers.as_ref() else {
            return 0;
        };
        if budget.is_zero() {
            return 0;
        }
        let entries = self.handoff_order();
        let total = entries.len();
        let started = Instant::now();
        let sends = futures::stream::iter(entries)
            .map(|(key, img)| async move {
                let (url, options) = key.split_once('\n').unwrap_or((key.as_str(), ""));
                let peer = peers.successor(url)?;
                let copy = PeerCopy {
                    body: img.body.clone(),
                    stored_at: img.stored_at,
                };
                match peers
                    .hand_off(&peer, url, options, &copy, img.content_type)
                    .await
                {
                    Ok(stored) => Some(stored),
                    Err(e) => {
                        warn!(key = key.as_str(), peer = %peer.name, error = %e, "hand-off of an entry failed");
                        None
                    }
                }
            })
            .buffer_unordered(HANDOFF_CONCURRENCY);
        let mut sent = 0;
        let all = sends.for_each(|stored| {
            if stored == Some(true) {
                sent += 1;
                self.metrics.handoff_sent.inc();
            }
            async {}
        });
        let finished = tokio::time::timeout(budget, all).await.is_ok();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if finished {
            info!(sent, total, elapsed_ms, "hand-off done");
        } else {
            warn!(
                sent,
                total,
                elapsed_ms,
                "hand-off budget (HANDOFF_TIMEOUT) spent; the rest is not handed off"
            );
        }
        sent
    }

    /// The memory tier's servable entries that fit a hand-off, most
    /// recently used first.
    fn handoff_order(&self) -> Vec<(Arc<String>, Arc<CachedImage>)> {
        let mut entries: Vec<_> = self
            .tiers
            .memory()
            .entries()
            .into_iter()
            .filter(|(key, img)| {
                let url = key.split_once('\n').map_or(key.as_str(), |(u, _)| u);
                img.body.len() <= MAX_HANDOFF_BYTES && self.tiers.servable(url, img)
            })
            .collect();
        entries.sort_by_key(|(_, img)| Reverse(img.last_used()));
        entries
    }

    /// Stores a copy handed off by a leaving worker, as if it had been
    /// filled here: in memory (within the byte budget) and on disk.
    pub async fn receive(&self, url: &Url, opts: &TransformOptions, copy: PeerCopy) -> Received {
        let key = cache_key(url, opts);
        if self.tiers.memory().get(&key).await.is_some() {
            return Received::Refused;
        }
        let Some(img) = self.accept_copy(url.as_str(), copy) else {
            return Received::Refused;
        };
        self.tiers
            .memory()
            .insert(key.clone(), Arc::clone(&img))
            .await;
        self.tiers.persist(&key, &img).await;
        self.metrics.handoff_received.inc();
        Received::Stored
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::worker::tests_support::worker_with_ttl;

    fn png(seed: u8) -> Bytes {
        let mut body = b"\x89PNG\r\n\x1a\n".to_vec();
        body.extend([seed; 32]);
        body.into()
    }

    #[tokio::test]
    async fn a_received_copy_is_served_with_its_age_once() {
        let w = worker_with_ttl(Duration::from_secs(60));
        let url = Url::parse("https://img.example/a.png").unwrap();
        let opts = TransformOptions::default();
        let stored_at = SystemTime::now() - Duration::from_secs(30);
        let copy = PeerCopy {
            body: png(1),
            stored_at,
        };
        assert_eq!(w.receive(&url, &opts, copy).await, Received::Stored);
        let img = w.lookup(&url, &opts).await.expect("served as a hit").image;
        assert_eq!(img.stored_at, stored_at);
        assert!(w.cache().remaining_ttl(&img) <= Duration::from_secs(30));
        let again = PeerCopy {
            body: png(2),
            stored_at: SystemTime::now(),
        };
        assert_eq!(w.receive(&url, &opts, again).await, Received::Refused);
        assert_eq!(w.lookup(&url, &opts).await.unwrap().image.body, png(1));
        let expired = PeerCopy {
            body: png(3),
            stored_at: stored_at - Duration::from_secs(60),
        };
        let other = Url::parse("https://img.example/b.png").unwrap();
        assert_eq!(w.receive(&other, &opts, expired).await, Received::Refused);
        assert!(w.lookup(&other, &opts).await.is_none());
    }

    #[tokio::test]
    async fn entries_go_most_recently_used_first() {
        let w = worker_with_ttl(Duration::from_secs(60));
        let opts = TransformOptions::default();
        let urls: Vec<Url> = (0..3)
            .map(|i| Url::parse(&format!("https://img.example/{i}.png")).unwrap())
            .collect();
        for (i, url) in urls.iter().enumerate() {
            let copy = PeerCopy {
                body: png(i as u8),
                stored_at: SystemTime::now(),
            };
            w.receive(url, &opts, copy).await;
        }
        w.lookup(&urls[0], &opts).await.unwrap();
        let order: Vec<String> = w
            .handoff_order()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        let want: Vec<String> = [0, 2, 1].iter().map(|i| urls[*i].to_string()).collect();
        assert_eq!(order, want);
    }
}
