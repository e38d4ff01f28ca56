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
//!   probing again every [`REPROBE_EVERY`]); a worker that does not answer
//!   it within the probe deadline is frozen or overloaded, and the attempt
//!   fails, so the caller ejects it and fills on the next worker.
//!
//! Lookups never fetch, so hedging never makes a second origin fetch: the
//! fill goes to one worker, and to the next only once the first has shown
//! it cannot answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::Response;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, timeout};
use tracing::warn;

use super::internal::{relay, Call, Unreachable};
use super::outliers::Ejection;
use super::Gateway;
use crate::cluster::membership::Member;
use crate::protocol::header::X_CACHE;

/// How often a worker busy with our fill is probed again.
pub(super) const REPROBE_EVERY: Duration = Duration::from_secs(1);

type Pending<'c> =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, Unreachable>> + Send + 'c>>;

/// The answer of a successful attempt and the worker that gave it.
pub(super) struct Answered<'w> {
    pub response: Response,
    pub by: &'w Member,
}

/// Asks `worker` (hedging to `next`, if any) for the call's image.
pub(super) async fn attempt<'w>(
    call: &Call<'_>,
    worker: &'w Member,
    next: Option<&'w Member>,
) -> Result<Answered<'w>, Unreachable> {
    let started = Instant::now();
    let delay = call.gw.hedge_delay.delay();
    let mut fill: Pending<'_> = Box::pin(call.get_or_fill(worker));
    let resp = match (timeout(delay, &mut fill).await, next) {
        (Ok(answer), _) => answer?,
        // Nobody to hedge to: wait for the one worker there is.
        (Err(_), None) => fill.await?,
        (Err(_), Some(next)) => {
            call.gw.metrics.hedges.inc();
            let probe_wait = call.gw.hedge_delay.probe_wait();
            return race(call, fill, worker, next, probe_wait).await;
        }
    };
    if resp.headers().get(X_CACHE).is_some_and(|v| v == "HIT") {
        call.gw.hedge_delay.observe(started.elapsed());
    }
    answered(resp, worker).await
}

/// What a probe (a cache lookup sent to the worker we wait for) found.
enum Probe {
    /// The worker holds the image: its answer.
    Hit(reqwest::Response),
    /// The worker answers but has no copy yet (it is filling it for us).
    Alive,
    /// No answer in time, or a failure.
    Failed(Unreachable),
}

/// Probes `worker` within `wait`, in a task of its own: if the user's
/// request is answered first (the hedge won), the probe still finishes and
/// ejects a worker that failed it, so a frozen owner does not keep costing
/// every request for its keys a hedge delay.
fn spawn_probe(call: &Call<'_>, worker: &Member, wait: Duration) -> oneshot::Receiver<Probe> {
    let lookup = call.lookup(worker);
    let (gw, member, request_id) = (Arc::clone(call.gw), worker.clone(), call.request_id.clone());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let found = match timeout(wait, lookup).await {
            Ok(Ok(r)) if r.status() == reqwest::StatusCode::OK => Probe::Hit(r),
            Ok(Ok(_)) => Probe::Alive,
            Ok(Err(e)) => Probe::Failed(e),
            Err(_) => Probe::Failed(Unreachable::Unresponsive(wait)),
        };
        // Nobody waits for the answer any more: report the failure here.
        if let Err(Probe::Failed(e)) = tx.send(found) {
            worker_failed(&gw, &member, &e, &request_id);
        }
    });
    rx
}

/// Waits for the first good answer among the fill, the hedge and probes.
async fn race<'w>(
    call: &Call<'_>,
    mut fill: Pending<'_>,
    worker: &'w Member,
    next: &'w Member,
    probe_wait: Duration,
) -> Result<Answered<'w>, Unreachable> {
    let mut hedge: Option<Pending<'_>> = Some(Box::pin(call.lookup(next)));
    let mut probe = Some(spawn_probe(call, worker, probe_wait));
    let mut reprobe_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            resp = &mut fill => return answered(resp?, worker).await,
            resp = poll(&mut hedge), if hedge.is_some() => {
                hedge = None;
                match resp {
                    Ok(r) if r.status() == reqwest::StatusCode::OK => {
                        call.gw.metrics.hedges_won.inc();
                        return answered(r, next).await;
                    }
                    Ok(_) => {}
                    Err(e) => worker_failed(call.gw, next, &e, call.request_id),
                }
            }
            found = poll(&mut probe), if probe.is_some() => {
                probe = None;
                match found {
                    Ok(Probe::Hit(r)) => return answered(r, worker).await,
                    // Busy with our fill: check on it again later.
                    Ok(Probe::Alive) => reprobe_at = tokio::time::Instant::now() + REPROBE_EVERY,
                    Ok(Probe::Failed(e)) => return Err(e),
                    Err(_) => return Err(Unreachable::Unresponsive(probe_wait)),
                }
            }
            _ = sleep_until(reprobe_at), if probe.is_none() => {
                probe = Some(spawn_probe(call, worker, probe_wait));
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

async fn answered(resp: reqwest::Response, by: &Member) -> Result<Answered<'_>, Unreachable> {
    let response = relay(resp).await?;
    Ok(Answered { response, by })
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
