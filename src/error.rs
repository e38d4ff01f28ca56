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
use crate::edge::error::EdgeError;
use crate::protocol::RequestError;
use crate::worker::fetch::FetchError;
use crate::worker::WorkerError;

/// Why a request failed, attached to its response so that the request's
/// log line carries the same one-line reason the client got.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The text of the error body.
    pub reason: String,
    /// The level of the request's log line.
    pub level: tracing::Level,
}

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
    /// `DELETE /image` while `ADMIN_TOKEN` is unset.
    #[error("purge is disabled: set ADMIN_TOKEN on the gateways to enable it")]
    PurgeDisabled,
    /// `DELETE /image` without `Authorization: Bearer <ADMIN_TOKEN>`.
    #[error("purge needs `Authorization: Bearer <ADMIN_TOKEN>`")]
    AdminToken,
    /// Some live workers (or other gateways) did not confirm a purge (named).
    #[error("purge recorded, but these nodes did not confirm it yet: {0}")]
    PurgeIncomplete(String),
    /// Refused at the edge: signature, allowed sources, presets, limits.
    #[error(transparent)]
    Edge(EdgeError),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Request(_) => StatusCode::BAD_REQUEST,
            ApiError::Auth(_) | ApiError::AdminToken => StatusCode::UNAUTHORIZED,
            ApiError::PurgeDisabled => StatusCode::FORBIDDEN,
            ApiError::PurgeIncomplete(_) => StatusCode::BAD_GATEWAY,
            ApiError::NotCached => StatusCode::NOT_FOUND,
            ApiError::NoWorker => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Edge(e) => match e {
                EdgeError::UrlTooLong { .. } => StatusCode::URI_TOO_LONG,
                EdgeError::MissingSignature
                | EdgeError::BadSignature
                | EdgeError::SourceNotAllowed(_) => StatusCode::FORBIDDEN,
                EdgeError::UnknownPreset(_)
                | EdgeError::DuplicatePreset
                | EdgeError::Unexpandable(_)
                | EdgeError::OptionOutsidePreset(_) => StatusCode::BAD_REQUEST,
                EdgeError::InFlight(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
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
                WorkerError::Busy | WorkerError::QueueTimeout(_) | WorkerError::FetchesBusy(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                WorkerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// How loud the request's log line is: `info` for the client's
    /// mistakes, `warn` for refusals by policy (SSRF, signature, sources)
    /// and for overload or failing origins, `error` for our own faults.
    pub fn log_level(&self) -> tracing::Level {
        use tracing::Level;
        match self {
            ApiError::Auth(_) => Level::WARN,
            ApiError::NoWorker => Level::ERROR,
            ApiError::Edge(EdgeError::MissingSignature | EdgeError::BadSignature)
            | ApiError::Edge(EdgeError::SourceNotAllowed(_) | EdgeError::InFlight(_)) => {
                Level::WARN
            }
            ApiError::Worker(e) => match e.as_ref() {
                WorkerError::Fetch(FetchError::Forbidden(_))
                | WorkerError::Fetch(FetchError::Upstream(_) | FetchError::Timeout)
                | WorkerError::Busy
                | WorkerError::QueueTimeout(_)
                | WorkerError::FetchesBusy(_) => Level::WARN,
                WorkerError::Pipeline(p) if !p.is_client_error() => Level::ERROR,
                WorkerError::Internal(_) => Level::ERROR,
                _ => Level::INFO,
            },
            _ => Level::INFO,
        }
    }

    /// Seconds a client should wait before retrying, for overload answers.
    fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::NoWorker | ApiError::Edge(EdgeError::InFlight(_)) => Some(1),
            ApiError::Worker(e)
                if matches!(
                    e.as_ref(),
                    WorkerError::Busy | WorkerError::QueueTimeout(_) | WorkerError::FetchesBusy(_)
                ) =>
            {
                Some(1)
            }
            _ => None,
        }
    }
}

/// A refusal at the edge answers through the same table, so the edge's
/// middlewares name only their own error type.
impl IntoResponse for EdgeError {
    fn into_response(self) -> Response {
        ApiError::Edge(self).into_response()
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
        if matches!(self, ApiError::AdminToken) {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Edge(e) = &self {
            resp.extensions_mut().insert(e.clone());
        }
        resp.extensions_mut().insert(Failure {
            reason: self.to_string(),
            level: self.log_level(),
        });
        resp
    }
}
