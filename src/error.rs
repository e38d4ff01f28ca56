//! The one place where errors become HTTP statuses.
//!
//! Each layer has its own error type ([`FetchError`], [`WorkerError`],
//! [`AuthError`], ...); handlers wrap them in [`ApiError`], and the match in
//! [`ApiError::status`] decides the status for all of them. Bodies are one
//! line of text that says what went wrong.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::cluster::auth::AuthError;
use crate::protocol::RequestError;
use crate::worker::fetch::FetchError;
use crate::worker::WorkerError;

/// Any error a handler answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong: missing or invalid `url`, an invalid
    /// option (the message names it), an unreadable body.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Internal API call without valid cluster credentials.
    #[error(transparent)]
    Auth(AuthError),
    /// Internal API: the image is not in this worker's cache.
    #[error("not cached")]
    NotCached,
    /// No worker could be reached for this URL.
    #[error("no worker reachable")]
    NoWorker,
    /// The owning worker could not produce the image.
    #[error(transparent)]
    Worker(Arc<WorkerError>),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Request(_) => StatusCode::BAD_REQUEST,
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotCached => StatusCode::NOT_FOUND,
            ApiError::NoWorker => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Worker(e) => match e.as_ref() {
                WorkerError::Fetch(f) => match f {
                    FetchError::InvalidUrl(_) => StatusCode::BAD_REQUEST,
                    FetchError::Forbidden(_) => StatusCode::FORBIDDEN,
                    FetchError::NotFound => StatusCode::NOT_FOUND,
                    FetchError::TooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                    FetchError::Upstream(_) => StatusCode::BAD_GATEWAY,
                    FetchError::Timeout => StatusCode::GATEWAY_TIMEOUT,
                },
                WorkerError::NotAnImage => StatusCode::UNPROCESSABLE_ENTITY,
                WorkerError::Pipeline(p) if p.is_client_error() => StatusCode::UNPROCESSABLE_ENTITY,
                WorkerError::Pipeline(_) => StatusCode::INTERNAL_SERVER_ERROR,
                WorkerError::Busy => StatusCode::SERVICE_UNAVAILABLE,
                WorkerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// Seconds a client should wait before retrying, for overload answers.
    fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::NoWorker => Some(1),
            ApiError::Worker(e) if matches!(e.as_ref(), WorkerError::Busy) => Some(1),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), format!("{self}\n")).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
