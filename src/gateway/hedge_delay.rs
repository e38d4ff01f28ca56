//! How long to wait for a worker's cache answer before hedging.
//!
//! The delay follows observed cache-lookup latency the way TCP's
//! retransmission timer follows round-trip time (RFC 6298): a smoothed
//! mean and a smoothed mean deviation, updated in O(1) per answer, and
//! `mean + 4 x deviation` as the delay, which sits above nearly every
//! normal answer (a high percentile) without keeping a window of samples.
//! It is clamped to [[`MIN_DELAY`], [`MAX_DELAY`]]: never so short that a
//! healthy worker's jitter doubles the internal traffic, never so long that
//! a frozen owner stalls users.
//!
//! Only answers that did not wait for an origin are samples (cache hits
//! and lookups), so a slow origin does not stretch the delay.

use std::sync::Mutex;
use std::time::Duration;

/// The shortest hedge delay.
pub const MIN_DELAY: Duration = Duration::from_millis(5);
/// The longest hedge delay.
pub const MAX_DELAY: Duration = Duration::from_millis(250);
/// The delay before any answer was seen.
const INITIAL_DELAY: Duration = Duration::from_millis(50);
/// The shortest and longest wait for a probe (see [`HedgeDelay::probe_wait`]).
pub const PROBE_MIN: Duration = Duration::from_millis(300);
pub const PROBE_MAX: Duration = Duration::from_secs(3);
/// The wait for a probe before any answer was seen: how fast this machine
/// answers is unknown yet (a gateway that just started, maybe beside a
/// busy worker), so as long as TCP's initial retransmission timeout.
const PROBE_INITIAL: Duration = Duration::from_secs(1);

/// Weight of a new sample in the mean (RFC 6298's alpha).
const ALPHA: f64 = 1.0 / 8.0;
/// Weight of a new sample in the deviation (RFC 6298's beta).
const BETA: f64 = 1.0 / 4.0;

/// Smoothed lookup latency, in seconds.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    mean: f64,
    deviation: f64,
}

/// The estimator shared by a gateway's requests.
#[derive(Default)]
pub struct HedgeDelay {
    estimate: Mutex<Option<Estimate>>,
}

impl HedgeDelay {
    /// Adds the latency of one cache answer.
    pub fn observe(&self, latency: Duration) {
        let x = latency.as_secs_f64();
        let mut est = self.estimate.lock().unwrap_or_else(|e| e.into_inner());
        *est = Some(match *est {
            None => Estimate {
                mean: x,
                deviation: x / 2.0,
            },
            Some(e) => Estimate {
                deviation: (1.0 - BETA) * e.deviation + BETA * (e.mean - x).abs(),
                mean: (1.0 - ALPHA) * e.mean + ALPHA * x,
            },
        });
    }

    /// How long to wait for an owner's answer before hedging.
    pub fn delay(&self) -> Duration {
        self.high()
            .map_or(INITIAL_DELAY, |d| d.clamp(MIN_DELAY, MAX_DELAY))
    }

    /// How long a cache lookup may take before its worker counts as frozen:
    /// twice the high estimate, unclamped by [`MAX_DELAY`], so that on a
    /// machine where every answer is slow a slow worker is not mistaken
    /// for a frozen one and ejected.
    pub fn probe_wait(&self) -> Duration {
        self.high()
            .map_or(PROBE_INITIAL, |d| (d * 2).clamp(PROBE_MIN, PROBE_MAX))
    }

    /// `mean + 4 x deviation`, once there is a sample.
    fn high(&self) -> Option<Duration> {
        let est = *self.estimate.lock().unwrap_or_else(|e| e.into_inner());
        est.map(|e| Duration::from_secs_f64(e.mean + 4.0 * e.deviation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_at_the_initial_delay_and_clamps_fast_answers_to_the_minimum() {
        let h = HedgeDelay::default();
        assert_eq!(h.delay(), INITIAL_DELAY);
        assert_eq!(h.probe_wait(), PROBE_INITIAL);
        for _ in 0..100 {
            h.observe(Duration::from_micros(300));
        }
        assert_eq!(h.delay(), MIN_DELAY);
        assert_eq!(h.probe_wait(), PROBE_MIN);
    }

    #[test]
    fn sits_above_most_answers_and_follows_a_slowdown() {
        let h = HedgeDelay::default();
        for i in 0..200 {
            h.observe(ms(10 + (i % 5)));
        }
        let steady = h.delay();
        assert!(steady > ms(14) && steady < ms(30), "{steady:?}");
        for _ in 0..50 {
            h.observe(ms(80));
        }
        let slower = h.delay();
        assert!(slower > ms(80), "{slower:?}");
        for _ in 0..50 {
            h.observe(ms(400));
        }
        assert_eq!(h.delay(), MAX_DELAY);
        let probe = h.probe_wait();
        assert!(probe >= PROBE_MIN && probe < PROBE_MAX, "{probe:?}");
    }
}
