//! Single-use nonces within a time window: what turns "authentic" into
//! "authentic and not seen before".
//!
//! Both sealed gossip datagrams and signed gateway-to-worker requests carry
//! a timestamp and a random nonce under their authentication tag. A
//! message older (or newer) than the window is refused outright; within
//! the window each nonce is accepted once. So a captured message cannot be
//! re-sent later (stale) nor now (seen), and the memory needed is bounded
//! by the messages of one window, capped at [`NonceWindow::new`]'s
//! `capacity`: past it, the oldest nonces are forgotten early, and a
//! replay of those is still refused if it is older than the
//! oldest remembered timestamp.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Its timestamp is outside the window around our clock.
    Stale,
    /// Its nonce was already accepted within the window.
    Seen,
}

#[derive(Default)]
struct Inner {
    seen: HashSet<Vec<u8>>,
    /// Accepted nonces in arrival order, with their timestamps, to forget
    /// them once they leave the window.
    order: VecDeque<(u64, Vec<u8>)>,
    /// Timestamps at or below this were forgotten early (capacity): refuse.
    floor: u64,
}

/// Remembers the nonces accepted within `window_ms` of now.
pub struct NonceWindow {
    window_ms: u64,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl NonceWindow {
    /// A window of `window_ms` milliseconds either side of now, remembering
    /// at most `capacity` nonces.
    pub fn new(window_ms: u64, capacity: usize) -> NonceWindow {
        NonceWindow {
            window_ms,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Accepts `nonce` stamped `ts_ms` at `now_ms` once; refuses it if
    /// stale or seen.
    pub fn check(&self, nonce: &[u8], ts_ms: u64, now_ms: u64) -> Result<(), Replay> {
        if ts_ms.abs_diff(now_ms) > self.window_ms {
            return Err(Replay::Stale);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let expired_before = now_ms.saturating_sub(self.window_ms);
        while inner
            .order
            .front()
            .is_some_and(|(ts, _)| *ts < expired_before)
        {
            if let Some((_, n)) = inner.order.pop_front() {
                inner.seen.remove(&n);
            }
        }
        if ts_ms <= inner.floor {
            return Err(Replay::Stale);
        }
        if inner.seen.contains(nonce) {
            return Err(Replay::Seen);
        }
        if inner.order.len() >= self.capacity {
            if let Some((ts, n)) = inner.order.pop_front() {
                inner.seen.remove(&n);
                inner.floor = inner.floor.max(ts);
            }
        }
        inner.seen.insert(nonce.to_vec());
        inner.order.push_back((ts_ms, nonce.to_vec()));
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let w = NonceWindow::new(1000, 100);
        assert_eq!(w.check(b"a", 5000, 5000), Ok(()));
        assert_eq!(w.check(b"a", 5000, 5500), Err(Replay::Seen));
        assert_eq!(w.check(b"b", 5000, 5500), Ok(()));
    }

    #[test]
    fn old_and_future_timestamps_are_stale() {
        let w = NonceWindow::new(1000, 100);
        assert_eq!(w.check(b"a", 3000, 5000), Err(Replay::Stale));
        assert_eq!(w.check(b"a", 7000, 5000), Err(Replay::Stale));
    }

    #[test]
    fn expired_nonces_are_forgotten_and_their_replays_are_stale() {
        let w = NonceWindow::new(1000, 100);
        assert_eq!(w.check(b"a", 5000, 5000), Ok(()));
        assert_eq!(w.check(b"z", 7000, 7000), Ok(()));
        assert_eq!(w.check(b"a", 5000, 7000), Err(Replay::Stale));
    }

    #[test]
    fn at_capacity_forgotten_nonces_stay_refused() {
        let w = NonceWindow::new(10_000, 2);
        assert_eq!(w.check(b"a", 5000, 5000), Ok(()));
        assert_eq!(w.check(b"b", 5001, 5001), Ok(()));
        assert_eq!(w.check(b"c", 5002, 5002), Ok(()));
        // "a" was forgotten early; its timestamp is now below the floor.
        assert_eq!(w.check(b"a", 5000, 5003), Err(Replay::Stale));
        assert_eq!(w.check(b"b", 5001, 5003), Err(Replay::Seen));
    }
}
