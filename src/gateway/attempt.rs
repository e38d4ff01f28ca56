//! One hedged attempt: ask a worker for an image, and do not wait on it
//! blindly.
//!
//! The attempt sends the one get-or-fill request (`POST /v1/cache`, which
//! answers from the cache or fetches, caches and answers). If no answer
//! came within the hedge delay ([`super::hedge_delay`]), two cache-only
//! lookups go out at once:
//!
//! - the **hedge**, to the next worker in the URL's hash order: if it holds
//!   the image, its answer wins;
//! - the **probe**, to the worker itself: a cache lookup never waits for an
//!   origin, so a live worker answers it at once even while it fetches a
//!   slow origin for our request (then we keep waiting for that fill,
//!   probing again after a third of the probe deadline); a worker that does not answer
//!   it within the probe deadline is frozen or overloaded, and the attempt
//!   fails, so the caller ejects it and fills on the next worker. Requests
//!   waiting on one worker share one probe ([`super::probes`]).
//!
//! Lookups never fetch, so hedging never makes a second origin fetch: the
//! fill goes to one worker, and to the next only once the first has shown
//! it cannot answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use futures::FutureExt;
use tokio::time::{sleep_until, timeout};
use tracing::warn;

use super::internal::{relay, Call, Unreachable};
use super::outliers::Ejection;
use super::probes::{SharedProbe, Verdict};
use super::worker_client::WorkerAnswer;
use super::Gateway;
use crate::cluster::membership::Member;
use crate::protocol::header::X_CACHE;

/// A worker busy with our fill is probed again after this part of the
/// probe deadline: a worker that answered a probe and froze just after is
/// found within a third of the deadline plus the deadline (at the 300 ms
/// minimum, 400 ms), not a whole second later. Probes are shared by every
/// request waiting on that worker, so this costs one lookup per worker per
/// interval while its fills are slow.
const REPROBE_FRACTION: u32 = 3;

type Pending<'c> = Pin<Box<dyn Future<Output = Result<WorkerAnswer, Unreachable>> + Send + 'c>>;

/// Hedges one gateway may have in flight at once.
pub(super) const MAX_HEDGES_IN_FLIGHT: usize = 8;

/// A hedge counted against [`MAX_HEDGES_IN_FLIGHT`] until dropped.
struct HedgeBudget<'a>(&'a AtomicUsize);

impl<'a> HedgeBudget<'a> {
    fn take(in_flight: &'a AtomicUsize) -> Option<HedgeBudget<'a>> {
        let before = in_flight.fetch_add(1, Ordering::AcqRel);
        let taken = HedgeBudget(in_flight);
        (before < MAX_HEDGES_IN_FLIGHT).then_some(taken)
    }
}

impl Drop for HedgeBudget<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer of a successful attempt and the worker that gave it.
pub(super) struct Answered<'w> {
    pub response: Response,
    pub by: &'w Member,
}

/// Asks `worker` (hedging to `next`, if any) for the call's image.
/// `passed_over`: see [`Call::get_or_fill`].
pub(super) async fn attempt<'w>(
    call: &Call<'_>,
    worker: &'w Member,
    next: Option<&'w Member>,
    passed_over: Option<&HeaderValue>,
) -> Result<Answered<'w>, Unreachable> {
    let started = Instant::now();
    let delay = call.gw.hedge_delay.delay();
    let mut fill: Pending<'_> = Box::pin(call.get_or_fill(worker, passed_over));
    let resp = match (timeout(delay, &mut fill).await, next) {
        (Ok(answer), _) => answer?,
        // Nobody to hedge to: wait for the one worker there is.
        (Err(_), None) => fill.await?,
        (Err(_), Some(next)) => {
            let probe_wait = call.gw.hedge_delay.probe_wait();
            return race(call, (fill, started), worker, next, probe_wait).await;
        }
    };
    if resp.headers.get(X_CACHE).is_some_and(|v| v == "HIT") {
        call.gw.hedge_delay.observe(started.elapsed());
    }
    Ok(answered(call.gw, resp, worker, started))
}

/// The probe of `worker` (a cache lookup that must answer within `wait`),
/// shared with the other requests waiting on it ([`super::probes`]). A new
/// probe runs to its end in a task of its own, which ejects the worker if
/// it fails: even when the user's request was answered first (the hedge
/// won), a frozen owner is ejected, and stops costing every request for its
/// keys a hedge delay.
fn probe(call: &Call<'_>, worker: &Member, wait: Duration) -> SharedProbe {
    let (shared, started) = call.gw.probes.join(&worker.name, || {
        let lookup = call.lookup(worker);
        let (gw, name) = (Arc::clone(call.gw), worker.name.clone());
        async move {
            let sent = Instant::now();
            let failed = match timeout(wait, lookup).await {
                Ok(Ok(_)) => return Verdict::Alive,
                Ok(Err(e)) => e,
                // Late, but it answered other requests meanwhile: loaded,
                // not frozen (ejecting it would move its fills elsewhere
                // and fetch their origins twice).
                Err(_) if gw.outliers.heard_since(&name, sent) => return Verdict::Alive,
                Err(_) => Unreachable::Unresponsive(wait),
            };
            Verdict::Failed(Arc::new(failed.to_string()))
        }
        .boxed()
    });
    if let Some(run) = started {
        let (gw, member, request_id) =
            (Arc::clone(call.gw), worker.clone(), call.request_id.clone());
        tokio::spawn(async move {
            if let Verdict::Failed(why) = run.await {
                worker_failed(&gw, &member, &Unreachable::Probe(why), &request_id);
            }
        });
    }
    shared
}

/// Waits for the first good answer among the fill, the hedge and probes.
async fn race<'w>(
    call: &Call<'_>,
    (mut fill, fill_sent): (Pending<'_>, Instant),
    worker: &'w Member,
    next: &'w Member,
    probe_wait: Duration,
) -> Result<Answered<'w>, Unreachable> {
    // Within the budget only: a burst of slow requests must not double
    // the load on workers that are slow because of it.
    let budget = HedgeBudget::take(&call.gw.hedges_in_flight);
    let hedged_at = Instant::now();
    let mut hedge: Option<Pending<'_>> = budget.as_ref().map(|_| {
        call.gw.metrics.hedges.inc();
        Box::pin(call.lookup(next)) as Pending<'_>
    });
    let mut probe = Some(probe(call, worker, probe_wait));
    let mut reprobe_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            resp = &mut fill => return Ok(answered(call.gw, resp?, worker, fill_sent)),
            resp = poll(&mut hedge), if hedge.is_some() => {
                hedge = None;
                match resp {
                    Ok(r) if r.status == StatusCode::OK => {
                        call.gw.metrics.hedges_won.inc();
                        return Ok(answered(call.gw, r, next, hedged_at));
                    }
                    Ok(_) => {}
                    Err(e) => worker_failed(call.gw, next, &e, call.request_id),
                }
            }
            found = poll(&mut probe), if probe.is_some() => {
                probe = None;
                match found {
                    // Busy with our fill: check on it again later.
                    Verdict::Alive => {
                        reprobe_at = tokio::time::Instant::now() + probe_wait / REPROBE_FRACTION;
                    }
                    Verdict::Failed(why) => return Err(Unreachable::Probe(why)),
                }
            }
            _ = sleep_until(reprobe_at), if probe.is_none() => {
                probe = Some(self::probe(call, worker, probe_wait));
            }
        }
    }
}

/// Awaits the future in `slot` (which the caller checked is set).
async fn poll<F: Future + Unpin>(slot: &mut Option<F>) -> F::Output {
    match slot.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// `by`'s answer to a request sent at `sent`, relayed.
fn answered<'w>(gw: &Gateway, resp: WorkerAnswer, by: &'w Member, sent: Instant) -> Answered<'w> {
    gw.outliers.heard_from(&by.name, sent);
    Answered {
        response: relay(resp),
        by,
    }
}

/// Ejects `worker` for a back-off (unless it already is) and says why.
pub(super) fn worker_failed(
    gw: &Gateway,
    worker: &Member,
    error: &Unreachable,
    request_id: &crate::protocol::RequestId,
) {
    warn!(request_id = %request_id.0, worker = %worker.name, error = %error, "worker unreachable");
    if let Ejection::Ejected(backoff) = gw.outliers.failed(&worker.name, Instant::now()) {
        gw.metrics.ejections.inc();
        warn!(worker = %worker.name, backoff_ms = backoff.as_millis() as u64, "worker ejected");
    }
}
