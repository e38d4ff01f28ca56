//! `MAX_IN_FLIGHT`: a bound on the requests a gateway answers at once.
//!
//! Past it the answer is 503 with `Retry-After` at once: a queue would only
//! hold memory and descriptors for requests whose clients may have given
//! up, and would make cache hits wait behind misses.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::error::EdgeError;

/// The permits of one gateway.
pub struct InFlight {
    permits: Arc<Semaphore>,
    max: usize,
}

impl InFlight {
    /// A bound of `max` requests.
    pub fn new(max: usize) -> InFlight {
        InFlight {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }
}

/// Middleware: answers 503 when `MAX_IN_FLIGHT` requests are in progress.
pub async fn limit(State(in_flight): State<Arc<InFlight>>, req: Request, next: Next) -> Response {
    let Ok(_permit) = Arc::clone(&in_flight.permits).try_acquire_owned() else {
        return EdgeError::InFlight(in_flight.max).into_response();
    };
    next.run(req).await
}
