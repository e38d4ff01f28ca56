//! The request rate shown on the dashboard: answers over the last few
//! seconds, from a counter sampled once a second.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far back the rate looks.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Samples `(when, total so far)` of a growing counter, the oldest no
/// more than [`WINDOW`] before the newest.
#[derive(Default)]
pub struct RateWindow {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl RateWindow {
    /// Records the counter's value at `now`.
    pub fn record(&self, now: Instant, total: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((now, total));
        while samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Events per second between the oldest sample and `total` at `now`;
    /// `None` until a sample is at least a second old.
    pub fn per_second(&self, now: Instant, total: u64) -> Option<f64> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let (t, old) = *samples.front()?;
        let secs = now.duration_since(t).as_secs_f64();
        (secs >= 1.0).then(|| total.saturating_sub(old) as f64 / secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_the_growth_over_the_window() {
        let w = RateWindow::default();
        let t0 = Instant::now();
        assert_eq!(w.per_second(t0, 5), None);
        w.record(t0, 0);
        assert_eq!(w.per_second(t0 + Duration::from_millis(500), 5), None);
        assert_eq!(w.per_second(t0 + Duration::from_secs(2), 10), Some(5.0));
        // Samples older than the window are dropped.
        for s in 1..=12 {
            w.record(t0 + Duration::from_secs(s), s * 3);
        }
        let rate = w.per_second(t0 + Duration::from_secs(12), 36).unwrap();
        assert!((rate - 3.0).abs() < 1e-9, "{rate}");
    }
}
