//! Bounds on concurrent origin fetches: per worker (`MAX_ORIGIN_FETCHES`)
//! and per origin host (`MAX_FETCHES_PER_HOST`).
//!
//! Each fetch holds a socket, a buffer of up to `MAX_SOURCE_BYTES` and,
//! for a slow origin, up to `FETCH_TIMEOUT` of time. Without a bound per
//! host, one slow host asked for many different images would hold every
//! slot and starve fetches from every other host. Past either bound the
//! answer is 503 with `Retry-After` at once: a queue would hold the
//! requests (and their clients' connections) for the slow host anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which bound refused a fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotsFull {
    #[error("too many origin fetches in progress (MAX_ORIGIN_FETCHES {0}); retry shortly")]
    Total(usize),
    #[error(
        "too many fetches from {host} in progress (MAX_FETCHES_PER_HOST {max}); retry shortly"
    )]
    Host { host: String, max: usize },
}

/// The fetch slots of one worker.
pub struct FetchSlots {
    total: Arc<Semaphore>,
    max_total: usize,
    max_per_host: usize,
    per_host: Mutex<HashMap<String, usize>>,
}

/// One fetch's slot; released on drop.
pub struct FetchSlot {
    _total: OwnedSemaphorePermit,
    host: String,
    slots: Arc<FetchSlots>,
}

impl Drop for FetchSlot {
    fn drop(&mut self) {
        let mut per_host = self.slots.lock();
        if let Some(n) = per_host.get_mut(&self.host) {
            *n -= 1;
            if *n == 0 {
                per_host.remove(&self.host);
            }
        }
    }
}

impl FetchSlots {
    /// At most `max_total` fetches, and `max_per_host` from one host.
    pub fn new(max_total: usize, max_per_host: usize) -> Arc<FetchSlots> {
        Arc::new(FetchSlots {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            max_per_host,
            per_host: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // Counts are updated in one statement; a panic cannot tear them.
        self.per_host.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a fetch from `host`, or which bound is reached.
    pub fn try_acquire(self: &Arc<Self>, host: &str) -> Result<FetchSlot, SlotsFull> {
        let mut per_host = self.lock();
        let n = per_host.get(host).copied().unwrap_or(0);
        if n >= self.max_per_host {
            return Err(SlotsFull::Host {
                host: host.to_string(),
                max: self.max_per_host,
            });
        }
        let permit = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| SlotsFull::Total(self.max_total))?;
        per_host.insert(host.to_string(), n + 1);
        Ok(FetchSlot {
            _total: permit,
            host: host.to_string(),
            slots: Arc::clone(self),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_host_cannot_take_every_slot() {
        let slots = FetchSlots::new(3, 2);
        let a1 = slots.try_acquire("slow.example").unwrap();
        let _a2 = slots.try_acquire("slow.example").unwrap();
        assert_eq!(
            slots.try_acquire("slow.example").err(),
            Some(SlotsFull::Host {
                host: "slow.example".into(),
                max: 2
            })
        );
        let _b = slots.try_acquire("other.example").unwrap();
        assert_eq!(
            slots.try_acquire("third.example").err(),
            Some(SlotsFull::Total(3))
        );
        drop(a1);
        assert!(slots.try_acquire("third.example").is_ok());
        assert!(slots.try_acquire("slow.example").is_ok());
    }

    #[test]
    fn released_slots_leave_no_host_entries() {
        let slots = FetchSlots::new(4, 4);
        drop(slots.try_acquire("a").unwrap());
        assert!(slots.lock().is_empty());
    }
}
