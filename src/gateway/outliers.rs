//! Outlier ejection: workers this gateway skips for a while.
//!
//! Gossip takes seconds to declare a worker dead, and a frozen worker
//! (stopped, swapping, stuck) may never be declared dead at all while its
//! kernel still accepts connections. So each gateway keeps its own short
//! list, as Envoy's outlier detection does: a worker that refused a
//! connection, timed out or did not answer a probe is *ejected* for a
//! back-off of [`FIRST_BACKOFF`], doubled at each failure in a row up to
//! [`MAX_BACKOFF`], and tried again after it; an answer resets it.
//!
//! An ejected worker is not removed from the ranking, only moved behind the
//! others ([`Outliers::order`]): if every worker is ejected the ranking is
//! used as it is, so ejection never leaves a gateway with nobody to ask.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The back-off after a first failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest back-off, however long a worker keeps failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One worker's failures.
#[derive(Clone, Copy, Debug)]
struct Record {
    /// Skipped until then.
    until: Instant,
    /// Ejections in a row without an answer in between.
    streak: u32,
}

/// What [`Outliers::failed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ejection {
    /// Newly ejected for this long.
    Ejected(Duration),
    /// Already ejected: a burst of failures counts once.
    AlreadyEjected,
}

/// The workers this gateway currently skips, by name.
#[derive(Default)]
pub struct Outliers {
    records: Mutex<HashMap<String, Record>>,
    /// Entries in `records`, read without the lock: zero on the hot path
    /// of a healthy cluster, so ordering costs nothing then.
    tracked: AtomicUsize,
    /// When each worker last answered anything: a worker that answers
    /// other requests is loaded, not frozen, even if a probe was late.
    heard: Mutex<HashMap<String, Instant>>,
}

impl Outliers {
    /// Records that `worker` failed at `now`; ejects it unless it already is.
    pub fn failed(&self, worker: &str, now: Instant) -> Ejection {
        let mut records = self.lock();
        let record = records.entry(worker.to_string()).or_insert(Record {
            until: now,
            streak: 0,
        });
        if record.until > now {
            return Ejection::AlreadyEjected;
        }
        record.streak = record.streak.saturating_add(1);
        let backoff = backoff(record.streak);
        record.until = now + backoff;
        self.tracked.store(records.len(), Ordering::Relaxed);
        Ejection::Ejected(backoff)
    }

    /// Records that `worker` answered a request sent at `sent`: it was
    /// working at least until it read that request. The send time, not the
    /// arrival: an answer that arrives after a probe was sent may have left
    /// the worker just before it froze, and proves nothing about the probe.
    pub fn heard_from(&self, worker: &str, sent: Instant) {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        match heard.get_mut(worker) {
            Some(at) => *at = (*at).max(sent),
            None => {
                heard.insert(worker.to_string(), sent);
            }
        }
    }

    /// Whether `worker` answered a request sent after `since`.
    pub fn heard_since(&self, worker: &str, since: Instant) -> bool {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard.get(worker).is_some_and(|at| *at > since)
    }

    /// Records that `worker` answered: it is no longer an outlier.
    pub fn answered(&self, worker: &str) {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut records = self.lock();
        if records.remove(worker).is_some() {
            self.tracked.store(records.len(), Ordering::Relaxed);
        }
    }

    /// Workers skipped at `now`.
    pub fn ejected_count(&self, now: Instant) -> usize {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.lock().values().filter(|r| r.until > now).count()
    }

    /// `ranked` with the workers ejected at `now` moved to the end, each
    /// group in ranking order.
    pub fn order<'a, T>(
        &self,
        ranked: Vec<&'a T>,
        name: impl Fn(&T) -> &str,
        now: Instant,
    ) -> Vec<&'a T> {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return ranked;
        }
        let records = self.lock();
        let ejected = |w: &T| records.get(name(w)).is_some_and(|r| r.until > now);
        let (skipped, kept): (Vec<&T>, Vec<&T>) = ranked.into_iter().partition(|w| ejected(w));
        kept.into_iter().chain(skipped).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A panic while holding this lock leaves consistent records.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The back-off for the `streak`th failure in a row: 2 s, 4 s, ... 30 s.
fn backoff(streak: u32) -> Duration {
    let doublings = streak.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn order(o: &Outliers, now: Instant) -> Vec<&'static str> {
        let ranked: Vec<&&str> = NAMES.iter().collect();
        o.order(ranked, |w| w, now).into_iter().copied().collect()
    }

    #[test]
    fn an_ejected_worker_goes_last_until_its_backoff_ends() {
        let o = Outliers::default();
        let t = Instant::now();
        assert_eq!(order(&o, t), ["a", "b", "c"]);
        assert_eq!(o.failed("a", t), Ejection::Ejected(FIRST_BACKOFF));
        assert_eq!(order(&o, t), ["b", "c", "a"]);
        assert_eq!(order(&o, t + Duration::from_millis(1999)), ["b", "c", "a"]);
        assert_eq!(o.ejected_count(t), 1);
        assert_eq!(order(&o, t + FIRST_BACKOFF), ["a", "b", "c"]);
        assert_eq!(o.ejected_count(t + FIRST_BACKOFF), 0);
    }

    #[test]
    fn backoff_doubles_while_failing_and_resets_on_an_answer() {
        let o = Outliers::default();
        let mut t = Instant::now();
        let mut seen = vec![];
        for _ in 0..6 {
            let Ejection::Ejected(d) = o.failed("b", t) else {
                panic!("not ejected")
            };
            seen.push(d.as_secs());
            t += d;
        }
        assert_eq!(seen, [2, 4, 8, 16, 30, 30]);
        o.answered("b");
        assert_eq!(o.failed("b", t), Ejection::Ejected(FIRST_BACKOFF));
    }

    #[test]
    fn failures_during_a_backoff_count_once() {
        let o = Outliers::default();
        let t = Instant::now();
        o.failed("c", t);
        assert_eq!(
            o.failed("c", t + Duration::from_millis(10)),
            Ejection::AlreadyEjected
        );
        let Ejection::Ejected(d) = o.failed("c", t + FIRST_BACKOFF) else {
            panic!("not ejected")
        };
        assert_eq!(d, FIRST_BACKOFF * 2);
    }

    #[test]
    fn a_worker_is_heard_from_after_it_answers() {
        let o = Outliers::default();
        let t = Instant::now();
        assert!(!o.heard_since("a", t));
        o.heard_from("a", t + Duration::from_millis(5));
        assert!(o.heard_since("a", t));
        assert!(!o.heard_since("a", t + Duration::from_millis(5)));
        assert!(!o.heard_since("b", t));
    }

    #[test]
    fn ejecting_every_worker_keeps_the_ranking() {
        let o = Outliers::default();
        let t = Instant::now();
        for n in NAMES {
            o.failed(n, t);
        }
        assert_eq!(order(&o, t), ["a", "b", "c"]);
        assert_eq!(o.ejected_count(t), 3);
    }
}
