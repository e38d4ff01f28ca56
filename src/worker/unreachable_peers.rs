//! Peers this worker does not ask for a copy for a while.
//!
//! A peer fill waits up to [`super::peers::PEER_FILL_DEADLINE`] for the
//! previous owner before going to the origin. When that owner is frozen
//! (stopped, swapping), its kernel still accepts connections, so every
//! miss would wait out the deadline: exactly the misses a gateway sends
//! here because it gave up on that owner. So a peer is skipped for
//! [`SKIP_FOR`] after it timed out here, or after a gateway said it
//! could not reach it (the `x-unreachable-workers` header of a fill, see
//! [`crate::protocol::header::X_UNREACHABLE_WORKERS`]); each new report
//! extends it. Skipping a peer only costs an origin fetch.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a peer is skipped after a report; as long as a gateway's first
/// ejection ([`crate::gateway`]'s outlier back-off).
pub const SKIP_FOR: Duration = Duration::from_secs(2);

/// Most peers remembered: reports name cluster members, but a header is
/// input, so the map is bounded.
const MAX_TRACKED: usize = 256;

/// Peer names and until when they are skipped.
#[derive(Default)]
pub struct UnreachablePeers {
    until: Mutex<HashMap<String, Instant>>,
}

impl UnreachablePeers {
    /// Skips `peer` until [`SKIP_FOR`] after `now`.
    pub fn report(&self, peer: &str, now: Instant) {
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if until.len() >= MAX_TRACKED && !until.contains_key(peer) {
            until.retain(|_, t| *t > now);
            if until.len() >= MAX_TRACKED {
                return;
            }
        }
        until.insert(peer.to_string(), now + SKIP_FOR);
    }

    /// Whether `peer` is skipped at `now`.
    pub fn skipped(&self, peer: &str, now: Instant) -> bool {
        let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.get(peer).is_some_and(|t| *t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_peer_is_skipped_for_a_while_then_asked_again() {
        let peers = UnreachablePeers::default();
        let now = Instant::now();
        assert!(!peers.skipped("w1", now));
        peers.report("w1", now);
        assert!(peers.skipped("w1", now + SKIP_FOR / 2));
        assert!(!peers.skipped("w2", now));
        assert!(!peers.skipped("w1", now + SKIP_FOR));
    }

    #[test]
    fn reports_are_bounded() {
        let peers = UnreachablePeers::default();
        let now = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            peers.report(&format!("w{i}"), now);
        }
        assert!(!peers.skipped(&format!("w{}", MAX_TRACKED + 5), now));
        // Once the old reports ran out, new ones are taken again.
        peers.report("late", now + SKIP_FOR);
        assert!(peers.skipped("late", now + SKIP_FOR));
    }
}
