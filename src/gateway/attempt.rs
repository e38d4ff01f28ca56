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
use std::time::{Duration, Instant};

use axum::response::Response;
use tokio::time::{sleep_until, timeout};
use tracing::warn;

use super::internal::{relay, Call, Unreachable};
use super::outliers::Ejection;
use super::Gateway;
use crate::cluster::membership::Member;
use crate::protocol::header::X_CACHE;

/// How often a worker busy with our fill is probed again.
pub(super) const REPROBE_EVERY: Duration = Duration::from_secs(1);

/// The shortest and longest wait for a probe's answer.
const PROBE_MIN: Duration = Duration::from_millis(100);
const PROBE_MAX: Duration = Duration::from_millis(200);

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
            return race(call, fill, worker, next, probe_deadline(delay)).await;
        }
    };
    if resp.headers().get(X_CACHE).is_some_and(|v| v == "HIT") {
        call.gw.hedge_delay.observe(started.elapsed());
    }
    answered(resp, worker).await
}

/// How long a probe may take: a few hedge delays, within bounds.
fn probe_deadline(delay: Duration) -> Duration {
    (delay * 4).clamp(PROBE_MIN, PROBE_MAX)
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
    let mut probe: Option<Pending<'_>> = Some(Box::pin(call.lookup(worker)));
    let mut deadline = tokio::time::Instant::now() + probe_wait;
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
            resp = poll(&mut probe), if probe.is_some() => {
                probe = None;
                let r = resp?;
                if r.status() == reqwest::StatusCode::OK {
                    return answered(r, worker).await;
                }
                // Alive and busy (our fill is on its way): check again later.
                deadline = tokio::time::Instant::now() + REPROBE_EVERY;
            }
            _ = sleep_until(deadline) => {
                if probe.is_some() {
                    return Err(Unreachable::Unresponsive(probe_wait));
                }
                probe = Some(Box::pin(call.lookup(worker)));
                deadline = tokio::time::Instant::now() + probe_wait;
            }
        }
    }
}

/// Awaits the pending request in `slot` (which the caller checked is set).
async fn poll(slot: &mut Option<Pending<'_>>) -> Result<reqwest::Response, Unreachable> {
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
