//! `fastant`'s API (the part foyer uses) on `std::time::Instant`.
//!
//! See Cargo.toml for why this crate exists. An [`Instant`] is the number of
//! nanoseconds since a process-wide anchor taken on first use, so that it
//! fits in a `u64` and can live in an [`Atomic`], as the original's does.

use std::ops::{Add, Sub};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The process's time origin, taken the first time anyone asks the time.
fn anchor() -> std::time::Instant {
    static ANCHOR: OnceLock<std::time::Instant> = OnceLock::new();
    *ANCHOR.get_or_init(std::time::Instant::now)
}

/// A monotonic point in time, in nanoseconds since [`anchor`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Instant(u64);

impl Instant {
    pub fn now() -> Instant {
        let nanos = anchor().elapsed().as_nanos();
        Instant(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }

    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    pub fn checked_add(&self, duration: Duration) -> Option<Instant> {
        let nanos = u64::try_from(duration.as_nanos()).ok()?;
        self.0.checked_add(nanos).map(Instant)
    }

    pub fn checked_sub(&self, duration: Duration) -> Option<Instant> {
        let nanos = u64::try_from(duration.as_nanos()).ok()?;
        self.0.checked_sub(nanos).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, other: Duration) -> Instant {
        self.checked_add(other)
            .expect("overflow when adding duration to instant")
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, other: Duration) -> Instant {
        self.checked_sub(other)
            .expect("overflow when subtracting duration from instant")
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, other: Instant) -> Duration {
        self.duration_since(other)
    }
}

/// An [`Instant`] that can be shared between threads.
#[derive(Debug)]
pub struct Atomic(AtomicU64);

impl Atomic {
    pub fn new(v: Instant) -> Atomic {
        Atomic(AtomicU64::new(v.0))
    }

    pub fn load(&self, order: Ordering) -> Instant {
        Instant(self.0.load(order))
    }

    pub fn store(&self, val: Instant, order: Ordering) {
        self.0.store(val.0, order)
    }

    pub fn swap(&self, val: Instant, order: Ordering) -> Instant {
        Instant(self.0.swap(val.0, order))
    }

    pub fn fetch_max(&self, val: Instant, order: Ordering) -> Instant {
        Instant(self.0.fetch_max(val.0, order))
    }

    pub fn fetch_min(&self, val: Instant, order: Ordering) -> Instant {
        Instant(self.0.fetch_min(val.0, order))
    }

    pub fn into_instant(self) -> Instant {
        Instant(self.0.into_inner())
    }
}

impl From<Instant> for Atomic {
    fn from(v: Instant) -> Atomic {
        Atomic::new(v)
    }
}

/// The original reports whether it reads the CPU's TSC; this one never does.
pub fn is_tsc_available() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_moves_forward_and_atomics_keep_it() {
        let a = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        let b = Instant::now();
        assert!(b.duration_since(a) >= Duration::from_millis(5));
        assert_eq!(a.duration_since(b), Duration::ZERO);
        let shared = Atomic::new(a);
        shared.store(b, Ordering::Relaxed);
        assert_eq!(shared.load(Ordering::Relaxed), b);
        assert_eq!((a + Duration::from_millis(5)) - a, Duration::from_millis(5));
    }
}
