//! The one log line per request, and the request id it is filed under.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::info;

use crate::protocol::header::{X_CACHE, X_REQUEST_ID, X_SERVED_BY};
use crate::protocol::RequestId;

/// Assigns the request id (kept in the request's extensions for handlers
/// and echoed in the answer) and writes the one log line per request.
pub async fn log_request(mut req: Request, next: Next) -> Response {
    let RequestId(id) = RequestId::from_headers(req.headers());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    info!(
        request_id = %id,
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        cache = %header(X_CACHE),
        served_by = %header(X_SERVED_BY),
        "request"
    );
    resp
}
