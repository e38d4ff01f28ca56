//! Peer fill: on a miss, before the origin, the worker asks the worker
//! that held the key before it (see [`super::peers`]) for its copy, so a
//! scale-up does not send the newcomer's share of the keys to their origins
//! again. A copy keeps its time of storage: it is refused when expired or
//! purged here, and it expires here when it would have there.

use std::sync::Arc;
use std::time::SystemTime;

use tracing::debug;
use url::Url;

use super::cache::CachedImage;
use super::peers::{PeerCopy, PeerError};
use super::Worker;
use crate::pipeline::sniff::sniff;
use crate::pipeline::TransformOptions;

impl Worker {
    /// The copy of `url` with `opts` (cache key `key`) from its previous
    /// owner, stored on disk too; `None` when there is no peer, it holds
    /// none, it did not answer within its short deadline, or it is skipped
    /// for a while (see [`super::unreachable_peers`]).
    pub(super) async fn copy_from_peer(
        &self,
        url: &Url,
        opts: &TransformOptions,
        key: &str,
    ) -> Option<Arc<CachedImage>> {
        let peers = self.peers.as_ref()?;
        // Right after start-up, learn the cluster (its workers and purges)
        // before asking it: bounded, once.
        self.tiers.purges().wait_synced().await;
        let found = match peers.lookup(url, opts).await {
            Ok(found) => found,
            Err(PeerError::Skipped(_)) => {
                self.metrics.peer_fill_skipped.inc();
                return None;
            }
            Err(e) => {
                debug!(url = url.as_str(), key, error = %e, "peer fill failed");
                None
            }
        };
        let Some(img) = found.and_then(|copy| self.accept_copy(url.as_str(), copy)) else {
            self.metrics.peer_fill_misses.inc();
            return None;
        };
        self.metrics.peer_fill_hits.inc();
        self.tiers.persist(key, &img).await;
        Some(img)
    }

    /// A copy from another worker as a cache entry of source `url`, if it
    /// is an image we serve, still fresh and not purged. Its time of
    /// storage is kept (a time in the future, from a clock ahead of ours,
    /// counts as now).
    pub(super) fn accept_copy(&self, url: &str, copy: PeerCopy) -> Option<Arc<CachedImage>> {
        sniff(&copy.body)?;
        let stored_at = copy.stored_at.min(SystemTime::now());
        let img = Arc::new(CachedImage::restored(copy.body, stored_at).from_peer());
        self.tiers.servable(url, &img).then_some(img)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::worker::tests_support::worker_with_ttl;

    fn png() -> Bytes {
        let mut body = b"\x89PNG\r\n\x1a\n".to_vec();
        body.extend([0u8; 32]);
        body.into()
    }

    #[tokio::test]
    async fn a_copy_keeps_its_age_and_an_expired_or_purged_one_is_refused() {
        let w = worker_with_ttl(Duration::from_secs(60));
        let url = "https://img.example/a.png";
        let ten_s_ago = SystemTime::now() - Duration::from_secs(10);
        let copy = w.accept_copy(
            url,
            PeerCopy {
                body: png(),
                stored_at: ten_s_ago,
            },
        );
        let img = copy.expect("a fresh copy is accepted");
        assert_eq!(img.stored_at, ten_s_ago);
        let left = w.cache().remaining_ttl(&img);
        assert!(left <= Duration::from_secs(50), "{left:?}");

        let old = SystemTime::now() - Duration::from_secs(61);
        assert!(w
            .accept_copy(
                url,
                PeerCopy {
                    body: png(),
                    stored_at: old
                }
            )
            .is_none());

        w.tiers().purges().record(url, SystemTime::now());
        let before = PeerCopy {
            body: png(),
            stored_at: ten_s_ago,
        };
        assert!(
            w.accept_copy(url, before).is_none(),
            "purged after it was stored"
        );
        let html = PeerCopy {
            body: Bytes::from_static(b"<html>"),
            stored_at: SystemTime::now(),
        };
        assert!(w.accept_copy("https://img.example/b.png", html).is_none());
    }

    #[tokio::test]
    async fn a_copy_from_the_future_counts_as_stored_now() {
        let w = worker_with_ttl(Duration::from_secs(60));
        let later = SystemTime::now() + Duration::from_secs(3600);
        let img = w
            .accept_copy(
                "https://img.example/c.png",
                PeerCopy {
                    body: png(),
                    stored_at: later,
                },
            )
            .expect("accepted");
        assert!(img.stored_at <= SystemTime::now());
        assert!(w.cache().remaining_ttl(&img) <= Duration::from_secs(60));
    }
}
