//! One probe per worker at a time.
//!
//! When a worker is slow, every request waiting on it would send its own
//! probe (see [`super::attempt`]): a burst of a hundred requests for a
//! worker under load would add a hundred lookups to its queue exactly when
//! it can least afford them, and make all of them late together. So the
//! requests of one gateway share the probe in flight for a worker and its
//! verdict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};

/// What a probe found out about a worker.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// It answered a cache lookup in time.
    Alive,
    /// It did not answer in time, or failed; the message says how.
    Failed(Arc<String>),
}

/// A probe's verdict, awaited by every request that asked for it.
pub type SharedProbe = Shared<BoxFuture<'static, Verdict>>;

/// The probes in flight, by worker name.
#[derive(Default)]
pub struct Probes {
    in_flight: Mutex<HashMap<String, SharedProbe>>,
}

impl Probes {
    /// The probe in flight for `worker`, or a new one made by `start`
    /// (which is then `Some` of it, so the caller can drive it to the end).
    pub fn join(
        &self,
        worker: &str,
        start: impl FnOnce() -> BoxFuture<'static, Verdict>,
    ) -> (SharedProbe, Option<SharedProbe>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(probe) = map.get(worker) {
            if probe.peek().is_none() {
                return (probe.clone(), None);
            }
        }
        let probe = start().shared();
        map.insert(worker.to_string(), probe.clone());
        (probe.clone(), Some(probe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_share_the_probe_in_flight_and_a_finished_one_is_replaced() {
        let probes = Probes::default();
        let (a, started) = probes.join("w", || async { Verdict::Alive }.boxed());
        assert!(started.is_some());
        let (_, again) = probes.join("w", || unreachable!("a probe is in flight"));
        assert!(again.is_none());
        assert!(matches!(a.await, Verdict::Alive));
        let (b, started) = probes.join("w", || {
            async { Verdict::Failed(Arc::new("late".into())) }.boxed()
        });
        assert!(started.is_some());
        assert!(matches!(b.await, Verdict::Failed(_)));
    }
}
